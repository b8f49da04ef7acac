"""peft LoRA adapters for fine-tuning: the masked adapter, its saved form, and loading a trained one merged."""

from __future__ import annotations

import contextlib
import copy
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import torch
from torch import nn

from lab.core.errors import BadInput
from lab.model.loading import LoadedModel
from lab.neurons.finetune.config import TrainSettings
from lab.neurons.finetune.targets import Targets, count_adapter_changes, count_changes, is_conv1d

META_FILE = "finetune.json"  # written beside peft's adapter files; says what the adapter may change
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", META_FILE)


@contextmanager
def own_rng(device: torch.device) -> Iterator[None]:
    """Training seeds and restores torch's RNG; the caller's RNG stream is left as it was."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def peft_model(loaded: LoadedModel, targets: Targets, settings: TrainSettings, seed: int) -> nn.Module:
    """The base model itself wrapped with a LoRA adapter (no copy: peft freezes the base weights and only
    the adapter trains), unselected lora_B rows zero and their gradients masked. ``release`` undoes it."""
    from peft import LoraConfig, get_peft_model

    base = loaded.model
    base._lab_requires_grad = {n: p.requires_grad for n, p in base.named_parameters()}  # restored by release
    conv = [is_conv1d(base.get_submodule(n)) for n in targets]
    if any(conv) and not all(conv):
        raise BadInput("the fine-tuning targets mix Conv1D and Linear projections; peft needs one kind per adapter")
    config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=0.0, bias="none",
                        target_modules=sorted(targets), fan_in_fan_out=all(conv), init_lora_weights=True)
    torch.manual_seed(int(seed))  # lora_A's initialisation
    model = get_peft_model(base, config)
    for name, rows in targets.items():
        if rows is None:
            continue
        weight = lora_b(model, name)
        mask = torch.zeros(weight.shape[0], 1, dtype=weight.dtype, device=weight.device)
        mask[rows] = 1
        with torch.no_grad():
            weight.mul_(mask)  # peft starts lora_B at 0 already; this makes it a guarantee, not a default
        weight.register_hook(lambda grad, m=mask: grad * m)
    return model


def release(loaded: LoadedModel, model: nn.Module) -> None:
    """Take the training adapter out of the base model (peft's unload: the original modules are put back,
    their weights never changed) and restore its requires_grad flags and eval mode."""
    base = model.unload()
    flags = getattr(base, "_lab_requires_grad", {})
    for n, p in base.named_parameters():
        p.requires_grad_(flags.get(n, p.requires_grad))
    if hasattr(base, "_lab_requires_grad"):
        del base._lab_requires_grad
    base.eval()
    loaded.model = base


def lora_layer(model: nn.Module, name: str) -> nn.Module:
    """The LoRA layer peft put at `name`, through peft's public API (get_base_model: the wrapped model
    with the adapter layers injected, under the base model's module names)."""
    layer = model.get_base_model().get_submodule(name)
    if not hasattr(layer, "lora_B"):
        raise RuntimeError(f"peft did not put a LoRA layer at {name}; the installed peft is not one this was built for")
    return layer


def lora_b(model: nn.Module, name: str) -> torch.Tensor:
    return lora_layer(model, name).lora_B[model.active_adapter].weight


def masked_rows_are_zero(model: nn.Module, targets: Targets) -> bool:
    for name, rows in targets.items():
        if rows is None:
            continue
        weight = lora_b(model, name)
        keep = torch.zeros(weight.shape[0], dtype=torch.bool, device=weight.device)
        keep[rows] = True
        if bool((weight[~keep] != 0).any()):
            return False
    return True


def effective_parameters(model: nn.Module, targets: Targets) -> int:
    """Adapter entries that can move: all of lora_A, and lora_B's unmasked rows."""
    total = 0
    for name, rows in targets.items():
        module = lora_layer(model, name)
        a, b = module.lora_A[model.active_adapter].weight, module.lora_B[model.active_adapter].weight
        total += a.numel() + (b.numel() if rows is None else len(rows) * b.shape[1])
    return total


def save_adapter(model: nn.Module, folder: Path) -> None:
    model.save_pretrained(str(folder), safe_serialization=True)
    (folder / "README.md").unlink(missing_ok=True)  # peft's model card: artifacts are safetensors/JSON only

def adapter_targets(adapter_dir: Path) -> Targets:
    """What a saved adapter may change, from its finetune.json."""
    meta_path = Path(adapter_dir) / META_FILE
    if not meta_path.is_file():
        raise BadInput(f"{adapter_dir} has no {META_FILE}; it was not written by neuron-pilot — re-run the "
                       f"intervene stage")
    return {k: (None if v is None else list(v)) for k, v in json.loads(meta_path.read_text(encoding="utf-8"))["targets"].items()}


def load_condition(loaded: LoadedModel, adapter_dir: Optional[Path], *, verify: bool = True) -> nn.Module:
    """The model for one condition: a copy of the base with the saved adapter loaded by peft and merged.

    `adapter_dir` None is the baseline (the loaded model itself). With `verify`, an adapter that
    changes any weight outside what its condition may change is refused.
    """
    if adapter_dir is None:
        return loaded.model
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise BadInput(f"{adapter_dir} holds no peft adapter (adapter_config.json); re-run the intervene stage")
    targets = adapter_targets(adapter_dir)
    with own_rng(loaded.device):  # peft initialises lora_A before loading the saved weights
        model = PeftModel.from_pretrained(copy.deepcopy(loaded.model), str(adapter_dir), is_trainable=False)
        merged = model.merge_and_unload()
    merged.eval()
    if verify:
        counts = count_changes(loaded.model, merged, targets)
        if counts.outside:
            raise BadInput(f"adapter {adapter_dir} changes {counts.outside} weights outside its trained neurons or "
                           f"modules ({', '.join(counts.outside_tensors[:3])}); it was altered — re-run intervene")
    return merged


class AdapterSwitch:
    """One base model for every fine-tune condition: peft loads each trained adapter onto it in turn
    (``load_adapter``, ``set_adapter``), the previous one is deleted, and nothing is merged or copied. So
    memory is the base model plus one adapter (plus activations), where merging into a copy per
    condition took twice the model. ``model(dir, name)`` hands out the base model with that adapter
    active (the same module tree, LoRA layers in it), checked first: an adapter whose deltas would change
    any weight outside what its condition may change is refused. ``baseline()`` is the base model with
    the adapters switched off (peft's ``disable_adapter``); ``close()`` takes the LoRA layers out again
    (peft's ``unload``), leaving the base model as it was loaded."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.peft: Optional[nn.Module] = None
        self.active: Optional[str] = None
        self._off: Optional[contextlib.AbstractContextManager[None]] = None

    def model(self, adapter_dir: Path, name: str, *, verify: bool = True) -> nn.Module:
        from peft import PeftModel

        adapter_dir = Path(adapter_dir)
        if not (adapter_dir / "adapter_config.json").is_file():
            raise BadInput(f"{adapter_dir} holds no peft adapter (adapter_config.json); re-run the intervene stage")
        targets = adapter_targets(adapter_dir)
        self._enable()
        with own_rng(self.loaded.device):  # peft initialises lora_A before loading the saved weights
            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.loaded.model, str(adapter_dir), adapter_name=name,
                                                      is_trainable=False)
            elif name != self.active:
                self.peft.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
        previous, self.active = self.active, name
        self.peft.set_adapter(name)
        if previous is not None and previous != name:
            self.peft.delete_adapter(previous)  # one adapter in memory at a time
        base = self.peft.get_base_model()
        base.eval()
        if verify:
            counts = count_adapter_changes(base, name, targets)
            if counts.outside:
                raise BadInput(f"adapter {adapter_dir} changes {counts.outside} weights outside its trained neurons "
                               f"or modules ({', '.join(counts.outside_tensors[:3])}); it was altered — re-run "
                               f"intervene")
        return base

    def baseline(self) -> nn.Module:
        """The base model with every adapter switched off (peft's disable_adapter)."""
        if self.peft is not None and self._off is None:
            self._off = self.peft.disable_adapter()
            self._off.__enter__()
        return self.loaded.model if self.peft is None else self.peft.get_base_model()

    def _enable(self) -> None:
        if self._off is not None:
            self._off.__exit__(None, None, None)
            self._off = None

    def close(self) -> None:
        """Unload the LoRA layers: the base model's own modules are back, its weights never touched."""
        self._enable()
        if self.peft is not None:
            self.loaded.model = self.peft.unload()
        self.peft, self.active = None, None

