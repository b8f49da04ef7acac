"""Test-time interventions: overwrite chosen neurons at the adapter's hook point, at every position.

Registered by name (`zero`, `mean`, `p10`, `p90`, `scale`). `intervene(...)` is a context manager that
adds forward hooks on the activation modules and removes them on exit, so outputs afterwards are
bit-identical to before. Values for `mean`/`p10`/`p90` are the target language's own per-neuron
statistics from `activation_stats.safetensors`. `HookPlan` is intervention.json's recipe with those
statistics loaded: every stage that applies the intervention builds its hooks from it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Mapping, Optional, Sequence

import torch
from torch import nn

from lab.model.adapters import ArchitectureAdapter
from lab.core.errors import BadInput
from lab.core.registry import Registry
from lab.neurons.sets import LayerNeurons



@dataclass(frozen=True)
class Intervention:
    name: str
    description: str
    # (activation slice [..., k], per-neuron stat values [k] or None, scale) -> replacement slice
    apply: Callable[[torch.Tensor, Optional[torch.Tensor], float], torch.Tensor]
    stat: Optional[str] = None  # which activation_stats tensor supplies the values


INTERVENTIONS: Registry[Intervention] = Registry("intervention")


def register(iv: Intervention) -> Intervention:
    return INTERVENTIONS.register(iv.name)(iv)


register(Intervention("zero", "set the neurons to 0 (deactivate)", lambda x, v, s: torch.zeros_like(x)))
register(Intervention("mean", "set the neurons to the language's mean activation", lambda x, v, s: v.expand_as(x), "act_mean"))
register(Intervention("p10", "set the neurons to the language's 10th-percentile activation", lambda x, v, s: v.expand_as(x), "act_p10"))
register(Intervention("p90", "set the neurons to the language's 90th-percentile activation", lambda x, v, s: v.expand_as(x), "act_p90"))
register(Intervention("scale", "multiply the neurons by a factor", lambda x, v, s: x * s))


def stat_values(stats: Mapping[str, torch.Tensor], languages: Sequence[str], stat: str, language: str,
                layer: int, index: Sequence[int]) -> torch.Tensor:
    if language not in languages:
        raise BadInput(f"language {language!r} has no activation statistics (have: {', '.join(languages)})")
    return stats[stat][languages.index(language), layer, list(index)]


@contextmanager
def intervene(model: nn.Module, adapter: ArchitectureAdapter, neurons: LayerNeurons, kind: str = "zero", *,
              stats: Optional[Mapping[str, torch.Tensor]] = None, stat_languages: Sequence[str] = (),
              language: Optional[str] = None, scale: float = 2.0) -> Iterator[None]:
    """Within the block, the given neurons' activations are replaced per `kind`; hooks go on exit."""
    iv = INTERVENTIONS.get(kind)
    modules = adapter.act_modules(model)
    handles = []
    try:
        for layer, index in neurons.items():
            if not index:
                continue
            if not 0 <= layer < len(modules):
                raise BadInput(f"neuron set names layer {layer}, but the model has {len(modules)} layers; "
                               f"the neurons were identified on another model")
            values = None
            if iv.stat is not None:
                if stats is None or language is None:
                    raise BadInput(f"intervention {kind!r} needs the activation statistics of the target language")
                values = stat_values(stats, stat_languages, iv.stat, language, layer, index)
            handles.append(modules[layer].register_forward_hook(_make_hook(iv, list(index), values, scale)))
        yield
    finally:
        for h in handles:
            h.remove()


def _make_hook(iv: Intervention, index: list[int], values: Optional[torch.Tensor], scale: float) -> Callable[..., Any]:
    cache: dict[tuple[Any, Any], tuple[torch.Tensor, Optional[torch.Tensor]]] = {}

    def hook(_mod: nn.Module, _inp: Any, out: torch.Tensor) -> torch.Tensor:
        key = (out.device, out.dtype)
        if key not in cache:
            idx_t = torch.tensor(index, device=out.device, dtype=torch.long)
            cache[key] = (idx_t, None if values is None else values.to(device=out.device, dtype=out.dtype))
        idx_t, vals = cache[key]
        new = out.clone() if torch.is_grad_enabled() and out.requires_grad else out
        new[..., idx_t] = iv.apply(new[..., idx_t], vals, scale)
        return new

    return hook


def read_activation_stats(path: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """activation_stats.safetensors → (tensors, languages in tensor order)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    languages = [x for x in meta.get("languages", "").split(",") if x]
    stats = load_file(str(path))
    if not languages or "act_prob" not in stats or stats["act_prob"].shape[0] != len(languages):
        raise BadInput(f"{path.name} lacks its 'languages' metadata or does not match it; re-run the identify stage")
    return stats, languages


@dataclass(frozen=True)
class HookPlan:
    """What the hooks write (intervention.json's value and scale) with the statistics they read."""

    kind: str
    scale: float
    stats: Optional[Mapping[str, torch.Tensor]]
    stat_languages: tuple[str, ...]

    def hooks(self, model: nn.Module, adapter: ArchitectureAdapter, neurons: LayerNeurons,
              language: str) -> ContextManager[None]:
        """The intervention on `neurons`, with `language`'s statistics (the set's owner)."""
        return intervene(model, adapter, neurons, self.kind, stats=self.stats, stat_languages=self.stat_languages,
                         language=language, scale=self.scale)
