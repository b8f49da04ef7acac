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
from typing import Any

from torch import nn

from lab.errors import BadInput
from lab.registry import Registry


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
                             "output of activation_fn(fc1(x))"))
register(ArchitectureAdapter("xglm", ("xglm",), "model.layers", "activation_fn", ("fc1",), "fc2", False,
                             "output of activation_fn(fc1(x))"))


def adapter_for(model_or_config: Any) -> ArchitectureAdapter:
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    if model_type not in ADAPTERS:
        known = ", ".join(ADAPTERS.names())
        raise BadInput(f"architecture {model_type!r} has no neuron adapter (supported: {known}); add an "
                       f"ArchitectureAdapter for it in lab/adapters.py naming its layers and FFN activation module")
    return ADAPTERS.get(model_type)
