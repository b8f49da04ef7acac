"""Neuron-only fine-tuning with peft LoRA, against random neurons and a standard attention LoRA.

Why LoRA rather than gradient masks on the full weights: AdamW's decoupled weight decay moves every
entry it touches, masked or not (FIELD-NOTES, "Training only some neurons"). Here the LoRA adapter
sits on the projections whose output rows *are* the neurons (``adapter.neuron_in``); the ``lora_B``
rows of unselected neurons start at exactly 0 and their gradients are masked to 0, so their AdamW
step is 0 and decay of 0 is 0. After merging, only the chosen neurons' rows differ from the base
model — and that is counted on every run (`weights_changed_outside_neurons`), not assumed.

Conditions (same data, steps, seed, rank and learning rate for each): ``baseline`` (untouched),
``ft_neurons``, ``ft_random`` (random neurons, same per-layer counts) and ``ft_lora_attn`` (standard
LoRA on the attention projections). Checkpoints are safetensors + JSON only and resume bit-exactly
on CPU. See docs/finetune.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from lab.core import faults
from lab.model.adapters import ArchitectureAdapter
from lab.core.errors import BadInput
from lab.model.loading import LoadedModel

LayerNeurons = Mapping[int, Sequence[int]]
# full module name in the base model -> owned neuron rows (None: the whole module may change)
Targets = dict[str, Optional[list[int]]]
ProgressFn = Callable[[int, int, float], None]

META_FILE = "finetune.json"  # written beside peft's adapter files; says what the adapter may change


# ---- conditions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    name: str
    trains: str  # none | neurons | random | attention
    description: str


CONDITIONS: tuple[Condition, ...] = (
    Condition("baseline", "none", "the untouched model"),
    Condition("ft_neurons", "neurons", "LoRA on the chosen neurons' rows only (target language, or English+target)"),
    Condition("ft_random", "random", "LoRA on random neurons with the same per-layer counts (the control)"),
    Condition("ft_lora_attn", "attention", "standard LoRA on the attention projections (q/k/v/o)"),
)


def finetune_conditions() -> list[Condition]:
    """The four conditions every fine-tuning comparison runs, baseline first."""
    return list(CONDITIONS)


def condition_named(name: str) -> Condition:
    for cond in CONDITIONS:
        if cond.name == name:
            return cond
    known = ", ".join(c.name for c in CONDITIONS)
    raise BadInput(f"unknown fine-tuning condition {name!r}; use one of {known}")


# Attention projections inside one decoder layer, per architecture adapter (for ft_lora_attn).
ATTENTION_PROJECTIONS: dict[str, tuple[str, ...]] = {
    **{name: ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
       for name in ("llama", "mistral", "qwen2", "gemma")},
    "gpt2": ("attn.c_attn", "attn.c_proj"),
    "gpt_neox": ("attention.query_key_value", "attention.dense"),
    "bloom": ("self_attention.query_key_value", "self_attention.dense"),
    "opt": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"),
    "xglm": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"),
}


# ---- neuron sets -------------------------------------------------------------------------------

def normalise_neurons(neurons: LayerNeurons) -> dict[int, list[int]]:
    """{layer: sorted unique indices}, empty layers dropped."""
    return {int(layer): sorted({int(i) for i in idx}) for layer, idx in sorted(neurons.items()) if len(idx)}


def chosen_neurons(languages: Mapping[str, Sequence[Sequence[int]]], target: str,
                   neurons_from: str = "target") -> dict[int, list[int]]:
    """The set ft_neurons trains: the target's neurons, or English's and the target's (neurons.json)."""
    wanted = {"target": [target], "english+target": ["en", target]}.get(neurons_from)
    if wanted is None:
        raise BadInput(f"[intervention] neurons_from = {neurons_from!r}; use \"target\" or \"english+target\"")
    out: dict[int, set[int]] = {}
    for lang in wanted:
        if lang not in languages:
            raise BadInput(f"neurons.json has no neuron set for {lang!r} (have: {', '.join(sorted(languages))}); "
                           f"add {lang} to [languages] all and re-run identify")
        for layer, idx in languages[lang]:
            out.setdefault(int(layer), set()).add(int(idx))
    return {k: sorted(v) for k, v in sorted(out.items())}


def random_like(neurons: LayerNeurons, d_ff: int, seed: int) -> dict[int, list[int]]:
    """Random neurons with the same per-layer counts, disjoint from the given set where the layer allows."""
    gen = torch.Generator().manual_seed(int(seed))
    out: dict[int, list[int]] = {}
    for layer, idx in normalise_neurons(neurons).items():
        chosen = set(idx)
        pool = [j for j in range(d_ff) if j not in chosen]
        if len(pool) < len(chosen):  # more than half the layer chosen: draw from all of it
            pool = list(range(d_ff))
        pick = torch.randperm(len(pool), generator=gen)[: len(chosen)].tolist()
        out[layer] = sorted(pool[i] for i in pick)
    return out


# ---- what each condition may change ------------------------------------------------------------

def _is_conv1d(module: nn.Module) -> bool:
    """GPT-2's Conv1D stores its weight as [in, out]: its neuron rows are weight columns."""
    return type(module).__name__ == "Conv1D"


def _out_features(module: nn.Module) -> int:
    if _is_conv1d(module):
        return int(module.weight.shape[1])
    if hasattr(module, "out_features"):
        return int(module.out_features)
    raise BadInput(f"module {type(module).__name__} is neither nn.Linear nor Conv1D; neuron-only fine-tuning "
                   f"needs a linear projection — extend lab/neurons/finetune.py for it")


def _layer_prefix(adapter: ArchitectureAdapter, layer: int) -> str:
    return f"{adapter.layers_path}.{layer}"


def _module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise BadInput(f"module {name} is not in this model; the architecture adapter does not match it") from None


def neuron_targets(model: nn.Module, adapter: ArchitectureAdapter, neurons: LayerNeurons) -> Targets:
    """For each layer with chosen neurons, every neuron_in projection with the neurons' rows."""
    n_layers = adapter.n_layers(model)
    targets: Targets = {}
    for layer, idx in normalise_neurons(neurons).items():
        if not 0 <= layer < n_layers:
            raise BadInput(f"neuron set names layer {layer}, but the model has {n_layers} layers; "
                           f"the neurons were identified on another model")
        for proj in adapter.neuron_in:
            name = f"{_layer_prefix(adapter, layer)}.{proj}"
            width = _out_features(_module(model, name))
            if idx[-1] >= width or idx[0] < 0:
                raise BadInput(f"neuron index {idx[-1]} in layer {layer} is outside 0..{width - 1}; "
                               f"the neurons were identified on another model")
            targets[name] = list(idx)
    if not targets:
        raise BadInput("the neuron set to fine-tune is empty; identify found no neurons for this language")
    return targets


def attention_targets(model: nn.Module, adapter: ArchitectureAdapter) -> Targets:
    """Every attention projection of every layer (the standard LoRA baseline)."""
    projs = ATTENTION_PROJECTIONS.get(adapter.name)
    if projs is None:
        raise BadInput(f"no attention projections are known for the {adapter.name} adapter; add them to "
                       f"ATTENTION_PROJECTIONS in lab/neurons/finetune.py")
    targets: Targets = {}
    for layer in range(adapter.n_layers(model)):
        for proj in projs:
            name = f"{_layer_prefix(adapter, layer)}.{proj}"
            _out_features(_module(model, name))
            targets[name] = None
    return targets


# ---- counting changes after a merge ------------------------------------------------------------

@dataclass(frozen=True)
class ChangeCount:
    outside: int  # changed weight entries outside what the condition may change (must be 0)
    inside: int  # changed entries inside it (> 0 once training did something)
    outside_tensors: tuple[str, ...] = ()  # state-dict keys with changes outside, for messages


def count_changes(base: nn.Module, merged: nn.Module, targets: Targets) -> ChangeCount:
    """Compare every state-dict entry of merged vs base; only the targets' allowed rows may differ."""
    base_sd, new_sd = base.state_dict(), merged.state_dict()
    if set(base_sd) != set(new_sd):
        extra = sorted(set(new_sd) ^ set(base_sd))[:3]
        raise RuntimeError(f"merged model's tensors differ in name from the base model's (e.g. {extra}); "
                           f"the adapter was not fully merged")
    allowed = {f"{name}.weight": (rows, _is_conv1d(base.get_submodule(name))) for name, rows in targets.items()}
    outside = inside = 0
    where: list[str] = []
    for key, old in base_sd.items():
        new = new_sd[key].to(old.device)
        if old.shape != new.shape:
            raise RuntimeError(f"{key} changed shape in the merge: {tuple(old.shape)} -> {tuple(new.shape)}")
        diff = old != new
        if key not in allowed:
            n_out = int(diff.sum())
        else:
            rows, conv = allowed[key]
            if rows is None:
                inside += int(diff.sum())
                continue
            by_row = diff.T if conv else diff  # [neurons, in]
            mask = torch.zeros(by_row.shape[0], dtype=torch.bool, device=by_row.device)
            mask[rows] = True
            inside += int(by_row[mask].sum())
            n_out = int(by_row[~mask].sum())
        if n_out:
            outside += n_out
            where.append(key)
    return ChangeCount(outside, inside, tuple(where))


# ---- settings and data -------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes a run; identical across conditions (the fair-comparison budget)."""

    steps: int = 60
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    lora_r: int = 8
    lora_alpha: float = 16.0
    batch_size: int = 8
    block_size: int = 128
    checkpoint_every: int = 20
    max_grad_norm: float = 1.0
    warmup_steps: int = 0

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> "TrainSettings":
        """From the study's [intervention] section; keys it lacks take the defaults above."""
        r = int(cfg.get("lora_r", cls.lora_r))
        steps = int(cfg.get("steps", cls.steps))
        s = cls(steps=steps, learning_rate=float(cfg.get("learning_rate", cls.learning_rate)),
                weight_decay=float(cfg.get("weight_decay", cls.weight_decay)), lora_r=r,
                lora_alpha=float(cfg.get("lora_alpha", 2 * r)), batch_size=int(cfg.get("batch_size", cls.batch_size)),
                block_size=int(cfg.get("block_size", cls.block_size)),
                checkpoint_every=int(cfg.get("checkpoint_every", cls.checkpoint_every)),
                max_grad_norm=float(cfg.get("max_grad_norm", cls.max_grad_norm)),
                warmup_steps=int(cfg.get("warmup_steps", max(1, steps // 10))))
        for key in ("steps", "lora_r", "batch_size", "block_size", "checkpoint_every"):
            if getattr(s, key) < 1:
                raise BadInput(f"[intervention] {key} = {getattr(s, key)}; it must be at least 1")
        if s.learning_rate <= 0 or s.weight_decay < 0:
            raise BadInput("[intervention] learning_rate must be > 0 and weight_decay >= 0; fix the study file")
        return s

    def lr_factor(self, step: int) -> float:
        """Linear warm-up, then linear decay that stays above 0 on the last step."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        return max(0.0, (self.steps - step) / max(1, self.steps - self.warmup_steps))


def make_blocks(tokenizer: Any, texts: Sequence[str], block_size: int) -> torch.Tensor:
    """Token blocks [n, block_size]: texts joined with EOS, cut into full blocks (no padding to mask)."""
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        if eos is not None:
            ids.append(int(eos))
    n = len(ids) // block_size
    if n == 0:
        raise BadInput(f"the fine-tuning text has {len(ids)} tokens, fewer than one block of {block_size}; "
                       f"give more training text or a smaller block size")
    return torch.tensor(ids[: n * block_size], dtype=torch.long).view(n, block_size)


def batch_indices(n_blocks: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The blocks of one step: a seeded permutation per epoch, so any step is known without replay."""
    out = []
    for pos in range(step * batch_size, (step + 1) * batch_size):
        epoch, k = divmod(pos, n_blocks)
        gen = torch.Generator().manual_seed((int(seed) * 1_000_003 + epoch) % (2**63))
        out.append(int(torch.randperm(n_blocks, generator=gen)[k]))
    return out


# ---- safetensors + JSON state (no pickle) ------------------------------------------------------

def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "s") -> Any:
    """A state_dict as JSON with its tensors moved to `tensors` (for a safetensors file)."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().to("cpu").clone().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, flatten_state(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint at {prefix}")


def unflatten_state(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _commit_dir(tmp: Path, final: Path) -> None:
    """Rename a fully written folder into place: a reader sees all of it or none."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


# ---- the peft model ----------------------------------------------------------------------------

def _peft_model(loaded: LoadedModel, targets: Targets, settings: TrainSettings, seed: int) -> nn.Module:
    """A LoRA-wrapped copy of the base model, unselected lora_B rows zero and their gradients masked."""
    from peft import LoraConfig, get_peft_model

    base = copy.deepcopy(loaded.model)
    conv = [_is_conv1d(base.get_submodule(n)) for n in targets]
    if any(conv) and not all(conv):
        raise BadInput("the fine-tuning targets mix Conv1D and Linear projections; peft needs one kind per adapter")
    config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=0.0, bias="none",
                        target_modules=sorted(targets), fan_in_fan_out=all(conv), init_lora_weights=True)
    torch.manual_seed(int(seed))  # lora_A's initialisation
    model = get_peft_model(base, config)
    for name, rows in targets.items():
        if rows is None:
            continue
        weight = _lora_b(model, name)
        mask = torch.zeros(weight.shape[0], 1, dtype=weight.dtype, device=weight.device)
        mask[rows] = 1
        with torch.no_grad():
            weight.mul_(mask)  # peft starts lora_B at 0 already; this makes it a guarantee, not a default
        weight.register_hook(lambda grad, m=mask: grad * m)
    return model


def _lora_b(model: nn.Module, name: str) -> torch.Tensor:
    module = model.base_model.model.get_submodule(name)
    return module.lora_B["default"].weight


def _masked_rows_are_zero(model: nn.Module, targets: Targets) -> bool:
    for name, rows in targets.items():
        if rows is None:
            continue
        weight = _lora_b(model, name)
        keep = torch.zeros(weight.shape[0], dtype=torch.bool, device=weight.device)
        keep[rows] = True
        if bool((weight[~keep] != 0).any()):
            return False
    return True


def _effective_parameters(model: nn.Module, targets: Targets) -> int:
    """Adapter entries that can move: all of lora_A, and lora_B's unmasked rows."""
    total = 0
    for name, rows in targets.items():
        module = model.base_model.model.get_submodule(name)
        a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
        total += a.numel() + (b.numel() if rows is None else len(rows) * b.shape[1])
    return total


def _save_adapter(model: nn.Module, folder: Path) -> None:
    model.save_pretrained(str(folder), safe_serialization=True)
    (folder / "README.md").unlink(missing_ok=True)  # peft's model card: artifacts are safetensors/JSON only


# ---- checkpoints -------------------------------------------------------------------------------

def _checkpoints(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for d in checkpoint_dir.glob("step-*"):
        if d.is_dir() and (d / "state.json").is_file() and d.name[5:].isdigit():
            found.append((int(d.name[5:]), d))
    return sorted(found)


def _save_checkpoint(checkpoint_dir: Path, step: int, model: nn.Module, opt: torch.optim.Optimizer,
                     sched: Any, param_names: list[str], losses: list[float], fingerprint: str) -> Path:
    from safetensors.torch import save_file

    tmp = checkpoint_dir / f".step-{step:07d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _save_adapter(model, tmp / "adapter")
    tensors: dict[str, torch.Tensor] = {}
    _write_json(tmp / "optimizer.json", {"param_names": param_names,
                                         "state_dict": flatten_state(opt.state_dict(), tensors, "opt")})
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    _write_json(tmp / "scheduler.json", flatten_state(sched.state_dict(), {}, "sched"))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(rng, str(tmp / "rng.safetensors"))
    _write_json(tmp / "state.json", {"step": step, "losses": losses, "fingerprint": fingerprint})
    final = checkpoint_dir / f"step-{step:07d}"
    _commit_dir(tmp, final)
    for old_step, old in _checkpoints(checkpoint_dir):
        if old_step != step:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _restore_checkpoint(checkpoint_dir: Path, fingerprint: str, model: nn.Module, opt: torch.optim.Optimizer,
                        sched: Any, param_names: list[str]) -> tuple[int, list[float]]:
    """Load the latest checkpoint of this exact run; (0, []) when there is none (or it is another run's)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    found = _checkpoints(checkpoint_dir)
    if not found:
        return 0, []
    step, folder = found[-1]
    state = _read_json(folder / "state.json")
    if state.get("fingerprint") != fingerprint:  # settings, data or neurons changed: start over
        for _, d in found:
            shutil.rmtree(d, ignore_errors=True)
        return 0, []
    result = set_peft_model_state_dict(model, load_file(str(folder / "adapter" / "adapter_model.safetensors")))
    if getattr(result, "unexpected_keys", None):
        raise RuntimeError(f"checkpoint {folder} holds adapter tensors this run does not have: "
                           f"{result.unexpected_keys[:3]}")
    saved = _read_json(folder / "optimizer.json")
    if saved["param_names"] != param_names:
        raise RuntimeError(f"checkpoint {folder} was written for other adapter parameters; delete it")
    opt.load_state_dict(unflatten_state(saved["state_dict"], load_file(str(folder / "optimizer.safetensors"))))
    sched.load_state_dict(unflatten_state(_read_json(folder / "scheduler.json"), {}))
    rng = load_file(str(folder / "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    if torch.cuda.is_available():
        states = [rng[f"cuda.{i}"] for i in range(torch.cuda.device_count()) if f"cuda.{i}" in rng]
        if states:
            torch.cuda.set_rng_state_all(states)
    return step, list(state["losses"])


# ---- training ----------------------------------------------------------------------------------

@dataclass
class TrainResult:
    condition: str
    adapter_dir: Optional[Path]  # peft adapter folder (None for baseline, or a run stopped early)
    steps_done: int
    total_steps: int
    finished: bool
    final_loss: Optional[float]
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0  # the checkpoint step this call started from (0: from scratch)
    neurons: Optional[dict[int, list[int]]] = None  # the neurons actually trained
    target_modules: list[str] = field(default_factory=list)
    trainable_parameters: int = 0  # adapter entries that could move
    weights_changed_outside_neurons: Optional[int] = None  # neuron conditions only; must be 0
    weights_changed_outside_target: Optional[int] = None  # any condition; must be 0
    weights_changed_inside_target: Optional[int] = None
    merged: Optional[nn.Module] = field(default=None, repr=False)  # only with keep_merged=True

    def to_json(self) -> dict[str, Any]:
        out = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "merged"}
        out["adapter_dir"] = str(self.adapter_dir) if self.adapter_dir else None
        out["neurons"] = None if self.neurons is None else {str(k): v for k, v in self.neurons.items()}
        return out


@contextmanager
def _own_rng(device: torch.device) -> Iterator[None]:
    """Training seeds and restores torch's RNG; the caller's RNG stream is left as it was."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def _fingerprint(condition: str, targets: Targets, settings: TrainSettings, seed: int, blocks: torch.Tensor,
                 revision: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"condition": condition, "targets": targets, "settings": asdict(settings), "seed": seed,
                         "revision": revision}, sort_keys=True).encode())
    h.update(blocks.to("cpu", torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()


def resolve_neurons(condition: Condition, neurons: Optional[LayerNeurons], d_ff: int, seed: int,
                    control: Optional[LayerNeurons] = None) -> Optional[dict[int, list[int]]]:
    """The neurons a condition trains: the given set, a same-count random set (identify's control
    when given), or none."""
    if condition.trains in ("none", "attention"):
        return None
    if not neurons or not normalise_neurons(neurons):
        raise BadInput(f"condition {condition.name} needs a non-empty neuron set; identify found none for this "
                       f"language — lower [identify] thresholds or drop the language from targets")
    chosen = normalise_neurons(neurons)
    if condition.trains == "neurons":
        return chosen
    if control is None:
        return random_like(chosen, d_ff, seed)
    ctrl = normalise_neurons(control)
    if {k: len(v) for k, v in ctrl.items()} != {k: len(v) for k, v in chosen.items()}:
        raise BadInput("the control neuron set does not have the chosen set's per-layer counts; re-run identify")
    return ctrl


def train_condition(loaded: LoadedModel, neurons: Optional[LayerNeurons], condition: str,
                    data: Union[Sequence[str], torch.Tensor], cfg_intervention: Mapping[str, Any],
                    checkpoint_dir: Path, seed: int, progress: Optional[ProgressFn] = None,
                    should_stop: Optional[Callable[[], bool]] = None, *, output_dir: Optional[Path] = None,
                    keep_merged: bool = False, control: Optional[LayerNeurons] = None) -> TrainResult:
    """Train one condition (resuming from its last checkpoint), save the adapter, verify the merge.

    `neurons` is the chosen set (ft_neurons trains it; ft_random trains `control` if given — it must
    have the same per-layer counts — else draws such a set with `seed`). `data` is texts or a
    [n, block] tensor of token ids. `should_stop` is asked after each checkpoint; when it says yes
    the run returns unfinished and the next call resumes.
    The final adapter goes to `output_dir` (default checkpoint_dir/"adapter"); a finished adapter of
    the same run is reused rather than retrained.
    """
    cond = condition_named(condition)
    settings = TrainSettings.from_cfg(cfg_intervention)
    if cond.trains == "none":
        return TrainResult(cond.name, None, 0, 0, True, None)
    model = loaded.model
    blocks = data if isinstance(data, torch.Tensor) else make_blocks(loaded.tokenizer, data, settings.block_size)
    if blocks.ndim != 2 or blocks.shape[0] == 0:
        raise BadInput("fine-tuning data must be a non-empty [n, block] tensor of token ids or a list of texts")
    trained = resolve_neurons(cond, neurons, loaded.adapter.d_ff(model), seed, control)
    targets = (attention_targets(model, loaded.adapter) if trained is None
               else neuron_targets(model, loaded.adapter, trained))
    fingerprint = _fingerprint(cond.name, targets, settings, seed, blocks, str(loaded.provenance.get("revision")))
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    output_dir = Path(output_dir) if output_dir is not None else checkpoint_dir / "adapter"
    for leftover in [*checkpoint_dir.glob(".step-*.tmp-*"), *output_dir.parent.glob(f".{output_dir.name}.tmp-*")]:
        shutil.rmtree(leftover, ignore_errors=True)  # half-written folders of a killed run

    if (output_dir / META_FILE).is_file():
        meta = _read_json(output_dir / META_FILE)
        if meta.get("fingerprint") == fingerprint:  # this exact run already finished
            result = _result_from_meta(meta, output_dir)
            if keep_merged:
                result.merged = load_condition(loaded, output_dir)
            if progress is not None:
                progress(result.steps_done, result.total_steps, result.final_loss or 0.0)
            return result

    with _own_rng(loaded.device):
        return _train(loaded, cond, trained, targets, blocks, settings, fingerprint, checkpoint_dir, output_dir,
                      seed, progress, should_stop, keep_merged)


def _train(loaded: LoadedModel, cond: Condition, trained: Optional[dict[int, list[int]]], targets: Targets,
           blocks: torch.Tensor, settings: TrainSettings, fingerprint: str, checkpoint_dir: Path, output_dir: Path,
           seed: int, progress: Optional[ProgressFn], should_stop: Optional[Callable[[], bool]],
           keep_merged: bool) -> TrainResult:
    model = _peft_model(loaded, targets, settings, seed)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    param_names = [n for n, _ in named]
    opt = torch.optim.AdamW([p for _, p in named], lr=settings.learning_rate, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, settings.lr_factor)
    start, losses = _restore_checkpoint(checkpoint_dir, fingerprint, model, opt, sched, param_names)
    if start == 0:
        torch.manual_seed(int(seed) + 1)  # the training RNG stream (dropout), the same for every condition
    base = dict(condition=cond.name, total_steps=settings.steps, resumed_from=start, neurons=trained,
                target_modules=sorted(targets), trainable_parameters=_effective_parameters(model, targets))
    params = [p for _, p in named]
    batch_size = min(settings.batch_size, blocks.shape[0])
    model.train()
    for step in range(start, settings.steps):
        idx = batch_indices(blocks.shape[0], batch_size, step, seed)
        batch = blocks[idx].to(loaded.device)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        if settings.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        done = step + 1
        if progress is not None:
            progress(done, settings.steps, losses[-1])
        if done % settings.checkpoint_every == 0 and done < settings.steps:
            if not _masked_rows_are_zero(model, targets):
                raise RuntimeError("an unselected neuron's adapter row moved during training; the mask failed")
            with faults.checkpoint_save():  # tests only: kills around the save
                _save_checkpoint(checkpoint_dir, done, model, opt, sched, param_names, losses, fingerprint)
            if should_stop is not None and should_stop():
                return TrainResult(adapter_dir=None, steps_done=done, finished=False, final_loss=losses[-1],
                                   losses=list(losses), **base)
    if not _masked_rows_are_zero(model, targets):
        raise RuntimeError("an unselected neuron's adapter row moved during training; the mask failed")

    tmp = output_dir.parent / f".{output_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    _save_adapter(model, tmp)
    merged = model.merge_and_unload()
    merged.eval()
    counts = count_changes(loaded.model, merged, targets)
    if counts.outside:
        raise RuntimeError(f"{cond.name}: {counts.outside} weight entries changed outside the trained "
                           f"{'neurons' if trained else 'modules'} (in {', '.join(counts.outside_tensors[:3])})")
    result = TrainResult(adapter_dir=output_dir, steps_done=settings.steps, finished=True,
                         final_loss=losses[-1] if losses else None, losses=list(losses),
                         weights_changed_outside_neurons=counts.outside if trained is not None else None,
                         weights_changed_outside_target=counts.outside, weights_changed_inside_target=counts.inside,
                         **base)
    _write_json(tmp / META_FILE, {"fingerprint": fingerprint, "settings": asdict(settings), "seed": seed,
                                  "targets": targets, **result.to_json(), "adapter_dir": None})
    _commit_dir(tmp, output_dir)
    for _, d in _checkpoints(checkpoint_dir):  # the finished adapter is the resume point now
        shutil.rmtree(d, ignore_errors=True)
    result.merged = merged if keep_merged else None
    return result


def _result_from_meta(meta: Mapping[str, Any], adapter_dir: Path) -> TrainResult:
    values = {f.name: meta[f.name] for f in fields(TrainResult) if f.name in meta and f.name != "merged"}
    if values.get("neurons") is not None:
        values["neurons"] = {int(k): list(v) for k, v in values["neurons"].items()}
    values["adapter_dir"] = adapter_dir
    values["resumed_from"] = int(meta.get("steps_done", 0))
    return TrainResult(**values)


# ---- loading a trained condition ---------------------------------------------------------------

def adapter_targets(adapter_dir: Path) -> Targets:
    """What a saved adapter may change, from its finetune.json."""
    meta_path = Path(adapter_dir) / META_FILE
    if not meta_path.is_file():
        raise BadInput(f"{adapter_dir} has no {META_FILE}; it was not written by neuron-pilot — re-run the "
                       f"intervene stage")
    return {k: (None if v is None else list(v)) for k, v in _read_json(meta_path)["targets"].items()}


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
    with _own_rng(loaded.device):  # peft initialises lora_A before loading the saved weights
        model = PeftModel.from_pretrained(copy.deepcopy(loaded.model), str(adapter_dir), is_trainable=False)
        merged = model.merge_and_unload()
    merged.eval()
    if verify:
        counts = count_changes(loaded.model, merged, targets)
        if counts.outside:
            raise BadInput(f"adapter {adapter_dir} changes {counts.outside} weights outside its trained neurons or "
                           f"modules ({', '.join(counts.outside_tensors[:3])}); it was altered — re-run intervene")
    return merged


# ---- training text: the English training split of the study's tasks ---------------------------

def _render_doc(task: Any, doc: Mapping[str, Any]) -> str:
    """One training document as plain text: the prompt, the delimiter, and the gold answer."""
    prompt = task.doc_to_text(doc)
    target = task.doc_to_target(doc)
    if task.OUTPUT_TYPE == "multiple_choice":
        choices = task.doc_to_choice(doc)
        answer = choices[target] if isinstance(target, int) else str(target)
    else:
        answer = target[0] if isinstance(target, list) and target else str(target)
    prompt = str(prompt) if prompt is not None else ""
    return f"{prompt}{task.config.target_delimiter}{answer}".strip() if prompt else str(answer).strip()


def english_training_texts(cfg: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(texts, task names): every [evaluate] task's English variant that has a training split.

    The same texts train every condition; evaluation splits are never used for training.
    """
    import logging

    from lm_eval.api.task import ConfigurableTask

    from lab.inputs.tasks import resolve_tasks, task_config

    langs = dict(cfg["languages"])
    probe = {"languages": {"all": sorted(set(langs["all"]) | {"en"}), "targets": ["en"], "high_resource": []},
             "evaluate": cfg["evaluate"]}
    try:
        refs = resolve_tasks(probe)
    except BadInput:
        refs = []
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    texts: list[str] = []
    used: list[str] = []
    for ref in refs:
        task = ConfigurableTask(config=task_config(ref, cfg["evaluate"].get("data_dir")))
        if not task.has_training_docs():
            continue
        docs = [_render_doc(task, doc) for doc in task.training_docs()]
        docs = [d for d in docs if d]
        if docs:
            texts.extend(docs)
            used.append(ref.name)
    if not texts:
        names = ", ".join(cfg["evaluate"]["tasks"])
        raise BadInput(f"none of the [evaluate] tasks ({names}) has an English task with a training split; "
                       f"fine-tuning trains on it — add one (training_split in its YAML, or <data_dir>/<task>/"
                       f"train.jsonl) or use [intervention] kind = \"test_time\"")
    return texts, used


# ---- the intervene stage's fine-tune path ------------------------------------------------------

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", META_FILE)


def _by_layer(pairs: Sequence[Sequence[int]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for layer, idx in pairs:
        out.setdefault(int(layer), []).append(int(idx))
    return normalise_neurons(out)


def finetune_runs(cfg: Mapping[str, Any], identified: Mapping[str, Any],
                  control: Mapping[str, Any]) -> list[tuple[str, str, Optional[dict[int, list[int]]],
                                                             Optional[dict[int, list[int]]]]]:
    """(condition, language, chosen neurons, control neurons) for every adapter a study trains.

    Per target language: ft_neurons and ft_random; once for the study: ft_lora_attn (it trains no
    language's neurons). With neurons_from = english+target the control is drawn afresh with the
    union's per-layer counts; otherwise it is identify's control set of the target.
    """
    neurons_from = cfg["intervention"].get("neurons_from", "target")
    runs: list[tuple[str, str, Optional[dict[int, list[int]]], Optional[dict[int, list[int]]]]] = []
    for lang in cfg["languages"]["targets"]:
        chosen = chosen_neurons(identified, lang, neurons_from)
        ctrl = _by_layer(control[lang]) if neurons_from == "target" and lang in control else None
        runs.append(("ft_neurons", lang, chosen, None))
        runs.append(("ft_random", lang, chosen, ctrl))
    runs.append(("ft_lora_attn", "", None, None))
    return runs


def variant_name(condition: str, language: str) -> str:
    return f"{condition}-{language}" if language else condition


def run_finetune_intervention(ctx: Any) -> dict[str, Any]:
    """The intervene stage for [intervention] kind = "finetune": train every condition, keep the adapters.

    Writes adapters/<variant>/{adapter_config.json, adapter_model.safetensors, finetune.json} and
    intervention.json (the plan evaluate reads), and the metric weights_changed_outside_neurons per
    neuron variant. Stops cleanly (StageInterrupted) at a checkpoint when SIGTERM arrives; the next
    run resumes there. Returns the plan.
    """
    from lab.model.loading import load_for_stage

    cfg = ctx.cfg
    identified = ctx.read_json("identify", "neurons.json")["languages"]
    control = ctx.read_json("identify", "control.json")["languages"]
    runs = finetune_runs(cfg, identified, control)
    texts, sources = english_training_texts(cfg)
    settings_cfg = {**cfg["intervention"], "block_size": int(cfg["corpus"].get("block_size", 128))}
    settings = TrainSettings.from_cfg(settings_cfg)
    total = settings.steps * len(runs)
    ctx.progress(0, total, "steps", "loading model")
    loaded = load_for_stage(ctx)
    blocks = make_blocks(loaded.tokenizer, texts, settings.block_size)
    ctx.log(f"fine-tuning {len(runs)} adapters on {blocks.shape[0]} blocks of {settings.block_size} tokens from "
            f"{', '.join(sources)} ({settings.steps} steps each, rank {settings.lora_r}, weight decay "
            f"{settings.weight_decay})")

    plan: dict[str, Any] = {"kind": "finetune", "conditions": [c.name for c in CONDITIONS],
                            "neurons_from": cfg["intervention"].get("neurons_from", "target"),
                            "training": {"tasks": sources, "documents": len(texts), "blocks": int(blocks.shape[0]),
                                         "settings": asdict(settings), "seed": ctx.seed},
                            "variants": []}
    metrics: list[dict[str, Any]] = []
    for i, (cond, lang, chosen, ctrl) in enumerate(runs):
        name = variant_name(cond, lang)
        offset = i * settings.steps

        def progress(step: int, steps: int, loss: float, _off: int = offset, _name: str = name) -> None:
            ctx.progress(_off + step, total, "steps", f"{_name} step {step}/{steps}", loss=round(loss, 4))

        result = train_condition(loaded, chosen, cond, blocks, settings_cfg, ctx.checkpoint_dir / name, ctx.seed,
                                 progress, lambda: ctx.stop_requested, control=ctrl)
        if not result.finished:
            ctx.check_stop()
            raise RuntimeError(f"{name} stopped at step {result.steps_done} without a stop request")
        assert result.adapter_dir is not None
        for fname in ADAPTER_FILES:
            src = result.adapter_dir / fname
            ctx.write_artifact(f"adapters/{name}/{fname}", lambda tmp, _src=src: shutil.copyfile(_src, tmp))
        plan["variants"].append({
            "name": name, "condition": cond, "language": lang, "adapter": f"adapters/{name}",
            "neurons": None if result.neurons is None else sum(len(v) for v in result.neurons.values()),
            "per_layer": None if result.neurons is None else {str(k): len(v) for k, v in result.neurons.items()},
            "target_modules": len(result.target_modules), "trainable_parameters": result.trainable_parameters,
            "final_loss": result.final_loss, "resumed_from": result.resumed_from,
            "weights_changed_outside_neurons": result.weights_changed_outside_neurons,
            "weights_changed_outside_target": result.weights_changed_outside_target,
            "weights_changed_inside_target": result.weights_changed_inside_target})
        if result.weights_changed_outside_neurons is not None:
            metrics.append(dict(name="weights_changed_outside_neurons", value=result.weights_changed_outside_neurons,
                                language=lang, condition=cond))
        metrics.append(dict(name="finetune_final_loss", value=result.final_loss or 0.0, language=lang, condition=cond))
        metrics.append(dict(name="finetune_trainable_parameters", value=result.trainable_parameters, language=lang,
                            condition=cond))
    ctx.write_json("intervention.json", plan)
    ctx.metrics(metrics)
    ctx.progress(total, total, "steps", "done")
    return plan


def variant_adapter_dir(ctx: Any, name: str, stage: str = "intervene") -> Path:
    """A trained variant's adapter folder, every file verified against its recorded sha256 first."""
    paths = [ctx.artifact_path(stage, f"adapters/{name}/{fname}") for fname in ADAPTER_FILES]
    return paths[0].parent
