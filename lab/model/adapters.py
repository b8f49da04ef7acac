"""Architecture adapters: where a model family's FFN neurons live.

A neuron is one output channel of the FFN non-linearity (DESIGN.md). Each adapter names the decoder
layers, the per-layer activation module whose forward output *is* the neuron vector (the hook
point for statistics and interventions alike), the projections whose rows own a neuron (for
neuron-only fine-tuning) and the projection whose input columns read it.

To support a new family, register an adapter with the model_type(s) it covers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from lab.core.errors import BadInput
from lab.core.registry import Registry


@dataclass(frozen=True)
class ArchitectureAdapter:
    name: str
    model_types: tuple[str, ...]
    layers_path: str  # dotted path from the CausalLM to the ModuleList of decoder layers
    act: str  # dotted path inside a layer to the activation module (the hook point)
    neuron_in: tuple[str, ...]  # projections inside a layer whose output rows are the neurons
    neuron_out: str  # projection inside a layer whose input columns read the neurons
    gated: bool
    hook: str  # human description of the hook point, stored as safetensors metadata
    # The layer calls its FFN on [B*T, H] (OPT flattens the batch); the hook point is then wrapped so
    # hooks still see [B, T, d_ff] like every other family.
    flat_ffn: bool = False

    def layers(self, model: nn.Module) -> list[nn.Module]:
        obj: Any = model
        for part in self.layers_path.split("."):
            obj = getattr(obj, part)
        return list(obj)

    def act_modules(self, model: nn.Module) -> list[nn.Module]:
        """The hook modules, one per layer (a module shared across layers is split first)."""
        mods = []
        for layer in self.layers(model):
            parent, _, leaf = f".{self.act}".rpartition(".")
            owner = layer.get_submodule(parent.lstrip(".")) if parent.strip(".") else layer
            mod = getattr(owner, leaf)
            if not isinstance(mod, nn.Module):
                raise BadInput(f"{self.name} adapter: {self.act} is not a module in this model; the adapter needs updating")
            if self.flat_ffn:
                if not isinstance(mod, Unflattened):
                    mod = Unflattened(mod)
                    setattr(owner, leaf, mod)
                    layer.register_forward_pre_hook(_remember_lead(self.act), with_kwargs=True)
                owner, leaf, mod = mod, "inner", mod.inner
            if any(mod is m for m in mods):  # one shared instance would fire for every layer
                mod = copy.deepcopy(mod)
                setattr(owner, leaf, mod)
            mods.append(mod)
        return mods

    def d_ff(self, model: nn.Module) -> int:
        layer = self.layers(model)[0]
        first = layer.get_submodule(self.neuron_in[0])
        if hasattr(first, "out_features"):
            return int(first.out_features)
        return int(first.weight.shape[1])  # GPT-2 Conv1D stores [in, out]

    def n_layers(self, model: nn.Module) -> int:
        return len(self.layers(model))


class Unflattened(nn.Module):
    """Stands in for an activation its layer applies to [B*T, d_ff]: the wrapped module (the hook
    point) sees [B, T, d_ff], and the layer gets back the flat shape it expects."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.lead: Optional[tuple[int, int]] = None  # (B, T) of the layer's current input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = self.lead
        if x.dim() == 2 and lead is not None and lead[0] * lead[1] == x.shape[0]:
            return self.inner(x.view(lead[0], lead[1], x.shape[-1])).reshape(x.shape)
        return self.inner(x)


def _remember_lead(act_path: str) -> Any:
    """A layer pre-hook that tells the layer's Unflattened activation the (B, T) of this call.

    It finds the wrapper through the layer it is called on, so a deep-copied model stays correct."""

    def hook(layer: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        wrapper = layer.get_submodule(act_path)
        hidden = args[0] if args else kwargs.get("hidden_states")
        if isinstance(wrapper, Unflattened):
            ok = isinstance(hidden, torch.Tensor) and hidden.dim() == 3
            wrapper.lead = (int(hidden.shape[0]), int(hidden.shape[1])) if ok else None

    return hook


ADAPTERS: Registry[ArchitectureAdapter] = Registry("architecture adapter")


def register(adapter: ArchitectureAdapter) -> ArchitectureAdapter:
    for mt in adapter.model_types:
        ADAPTERS.register(mt)(adapter)
    return adapter


_GATED = "output of act_fn(gate_proj(x)), the input of the product with up_proj(x)"
for _name, _types in {
    "llama": ("llama",),
    "mistral": ("mistral",),
    "qwen2": ("qwen2", "qwen3"),
    "gemma": ("gemma", "gemma2"),
}.items():
    register(ArchitectureAdapter(_name, _types, "model.layers", "mlp.act_fn", ("mlp.gate_proj", "mlp.up_proj"),
                                 "mlp.down_proj", True, _GATED))

register(ArchitectureAdapter("gpt2", ("gpt2",), "transformer.h", "mlp.act", ("mlp.c_fc",), "mlp.c_proj", False,
                             "output of act(c_fc(x))"))
register(ArchitectureAdapter("gpt_neox", ("gpt_neox",), "gpt_neox.layers", "mlp.act", ("mlp.dense_h_to_4h",),
                             "mlp.dense_4h_to_h", False, "output of act(dense_h_to_4h(x))"))
register(ArchitectureAdapter("bloom", ("bloom",), "transformer.h", "mlp.gelu_impl", ("mlp.dense_h_to_4h",),
                             "mlp.dense_4h_to_h", False, "output of gelu(dense_h_to_4h(x))"))
register(ArchitectureAdapter("opt", ("opt",), "model.decoder.layers", "activation_fn", ("fc1",), "fc2", False,
                             "output of activation_fn(fc1(x))", flat_ffn=True))
register(ArchitectureAdapter("xglm", ("xglm",), "model.layers", "activation_fn", ("fc1",), "fc2", False,
                             "output of activation_fn(fc1(x))"))


def adapter_for(model_or_config: Any) -> ArchitectureAdapter:
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    if model_type not in ADAPTERS:
        known = ", ".join(ADAPTERS.names())
        raise BadInput(f"architecture {model_type!r} has no neuron adapter (supported: {known}); add an "
                       f"ArchitectureAdapter for it in lab/model/adapters.py naming its layers and FFN activation module")
    return ADAPTERS.get(model_type)
