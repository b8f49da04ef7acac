"""Fine-tune conditions and what each may change: target modules, neuron rows, and counting changes after a merge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn

from lab.core.errors import BadInput
from lab.model.adapters import ArchitectureAdapter
from lab.neurons.sets import LayerNeurons, normalise_neurons, random_like

# full module name in the base model -> owned neuron rows (None: the whole module may change)
Targets = dict[str, Optional[list[int]]]


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

# ---- what each condition may change ------------------------------------------------------------

def is_conv1d(module: nn.Module) -> bool:
    """GPT-2's Conv1D stores its weight as [in, out]: its neuron rows are weight columns."""
    return type(module).__name__ == "Conv1D"


def _out_features(module: nn.Module) -> int:
    if is_conv1d(module):
        return int(module.weight.shape[1])
    if hasattr(module, "out_features"):
        return int(module.out_features)
    raise BadInput(f"module {type(module).__name__} is neither nn.Linear nor Conv1D; neuron-only fine-tuning "
                   f"needs a linear projection — extend lab/neurons/finetune/targets.py for it")


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
                       f"ATTENTION_PROJECTIONS in lab/neurons/finetune/targets.py")
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
    allowed = {f"{name}.weight": (rows, is_conv1d(base.get_submodule(name))) for name, rows in targets.items()}
    tally = _Tally()
    for key, old in base_sd.items():
        new = new_sd[key].to(old.device)
        if old.shape != new.shape:
            raise RuntimeError(f"{key} changed shape in the merge: {tuple(old.shape)} -> {tuple(new.shape)}")
        rows, conv = allowed.get(key, ("outside", False))
        tally.add(key, old != new, rows, conv)
    return tally.count()


class _Tally:
    """Changed weight entries, split into those a condition may change (its rows of a target module, or a
    whole target module when rows is None) and those it may not (any other row, any other module)."""

    def __init__(self) -> None:
        self.outside = self.inside = 0
        self.where: list[str] = []

    def add(self, key: str, diff: torch.Tensor, rows: Any, transposed: bool) -> None:
        if rows is None:
            self.inside += int(diff.sum())
            return
        if rows == "outside":
            n_out = int(diff.sum())
        else:
            by_row = diff.T if transposed else diff  # [neurons, in]
            mask = torch.zeros(by_row.shape[0], dtype=torch.bool, device=by_row.device)
            mask[rows] = True
            self.inside += int(by_row[mask].sum())
            n_out = int(by_row[~mask].sum())
        if n_out:
            self.outside += n_out
            self.where.append(key)

    def count(self) -> ChangeCount:
        return ChangeCount(self.outside, self.inside, tuple(self.where))


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
    if control is None:  # a fresh draw, disjoint from the chosen neurons where the layer has room
        pairs = [[layer, i] for layer, idx in chosen.items() for i in idx]
        drawn = random_like({"ft_random": pairs}, max(chosen) + 1, d_ff, seed, salt="finetune", disjoint=True)
        return {layer: sorted(i for l2, i in drawn["ft_random"] if l2 == layer) for layer in chosen}
    ctrl = normalise_neurons(control)
    if {k: len(v) for k, v in ctrl.items()} != {k: len(v) for k, v in chosen.items()}:
        raise BadInput("the control neuron set does not have the chosen set's per-layer counts; re-run identify")
    return ctrl


def count_adapter_changes(model: nn.Module, adapter_name: str, targets: Targets) -> ChangeCount:
    """The same count as ``count_changes`` after a merge, from the adapter's deltas alone: for every module
    that carries `adapter_name` (peft LoRA layers of the model, merged or not), W + ΔW is compared with W,
    one module at a time, in the weight's dtype (what peft's merge writes). Entries that would change
    outside the targets' allowed rows, or in a module that is not a target, are `outside`. No copy of the
    model is made: the extra memory is one module's ΔW."""
    tally = _Tally()
    for name, module in model.named_modules():
        lora_b = getattr(module, "lora_B", None)
        if lora_b is None or adapter_name not in lora_b:
            continue
        weight = module.get_base_layer().weight
        with torch.no_grad():
            delta = module.get_delta_weight(adapter_name).to(weight.dtype)
            diff = (weight + delta) != weight
        tally.add(f"{name}.weight", diff, targets.get(name, "outside"), getattr(module, "fan_in_fan_out", False))
    return tally.count()

