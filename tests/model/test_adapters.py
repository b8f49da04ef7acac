"""Architecture adapters: for every supported family, a tiny randomly initialised model built from
its config; the hook module of each layer must output exactly the FFN neuron vector [B, T, d_ff]."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig
from transformers.activations import ACT2FN

from lab.model.adapters import ADAPTERS, adapter_for
from lab.core.errors import BadInput

B, T, V = 2, 5, 64
HEADS = dict(num_attention_heads=4, num_key_value_heads=2, vocab_size=V)
# model_type -> small config kwargs (three layers, d_ff 48 where the family lets it be set)
FAMILIES: dict[str, dict[str, Any]] = {
    "llama": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, **HEADS),
    "mistral": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, **HEADS),
    "qwen2": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, **HEADS),
    "gemma": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, head_dim=8, **HEADS),
    "gpt2": dict(n_embd=32, n_inner=48, n_layer=3, n_head=4, vocab_size=V, n_positions=64, bos_token_id=0,
                 eos_token_id=0),
    "gpt_neox": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4, vocab_size=V),
    "bloom": dict(hidden_size=32, n_layer=3, n_head=4, vocab_size=V),
    "opt": dict(hidden_size=32, ffn_dim=48, num_hidden_layers=3, num_attention_heads=4, word_embed_proj_dim=32,
                vocab_size=V, max_position_embeddings=64),
    "xglm": dict(d_model=32, ffn_dim=48, num_layers=3, attention_heads=4, vocab_size=V, max_position_embeddings=64),
}


def _reference_act(model_type: str, config: Any) -> Any:
    """The family's activation, built independently of the model's own modules."""
    if model_type == "bloom":  # BloomGelu is the tanh approximation
        return lambda x: torch.nn.functional.gelu(x, approximate="tanh")
    name = (getattr(config, "hidden_act", None) or getattr(config, "hidden_activation", None)
            or getattr(config, "activation_function"))
    return ACT2FN[name]


def _build(model_type: str) -> nn.Module:
    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, **FAMILIES[model_type])
    return AutoModelForCausalLM.from_config(config).eval()


def test_every_registered_family_is_covered() -> None:
    assert set(FAMILIES) <= set(ADAPTERS.names())


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_hook_module_outputs_the_neuron_vector(model_type: str) -> None:
    model = _build(model_type)
    adapter = adapter_for(model)
    ids = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(ids).logits

    mods = adapter.act_modules(model)
    d_ff = adapter.d_ff(model)
    n_layers = adapter.n_layers(model)
    assert n_layers == 3 and len(mods) == n_layers
    assert len({id(m) for m in mods}) == n_layers  # one distinct module per layer
    assert d_ff == (128 if model_type == "bloom" else 48)  # BLOOM's FFN is 4 x hidden

    layers = adapter.layers(model)
    outs: dict[int, torch.Tensor] = {}
    ins: dict[int, torch.Tensor] = {}
    handles = []
    for i, (layer, mod) in enumerate(zip(layers, mods)):
        handles.append(mod.register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(i, o.detach().clone())))
        # the FFN's input: the gated MLP module's input, or the first projection's input
        where = layer.get_submodule("mlp") if adapter.gated else layer.get_submodule(adapter.neuron_in[0])
        handles.append(where.register_forward_pre_hook(lambda m, a, i=i: ins.__setitem__(i, a[0].detach().clone())))
    with torch.no_grad():
        after = model(ids).logits
    for h in handles:
        h.remove()
    assert torch.equal(before, after)  # finding the hook point changes nothing the model computes

    act = _reference_act(model_type, model.config)
    for i, layer in enumerate(layers):
        out = outs[i]
        assert tuple(out.shape) == (B, T, d_ff), (model_type, i, tuple(out.shape))
        first = layer.get_submodule(adapter.neuron_in[0])
        x = ins[i].reshape(B, T, -1)
        with torch.no_grad():
            expected = act(first(x))
        assert torch.allclose(out, expected, atol=1e-5), (model_type, i)
        if adapter.gated:
            assert adapter.neuron_in == ("mlp.gate_proj", "mlp.up_proj")
            assert torch.allclose(out, act(layer.mlp.gate_proj(x)), atol=1e-5)


@pytest.mark.parametrize("model_type", ["llama", "opt"])
def test_replacing_the_hook_output_changes_the_model(model_type: str) -> None:
    """What a hook returns is what the layer uses: zeroing every neuron of layer 0 changes the logits."""
    model = _build(model_type)
    adapter = adapter_for(model)
    ids = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(2))
    mods = adapter.act_modules(model)
    with torch.no_grad():
        base = model(ids).logits
        h = mods[0].register_forward_hook(lambda m, a, o: torch.zeros_like(o))
        zeroed = model(ids).logits
        h.remove()
        again = model(ids).logits
    assert not torch.allclose(base, zeroed) and torch.equal(base, again)
    assert adapter.act_modules(model)[0] is mods[0]  # asking again returns the same hook modules


def test_a_shared_activation_module_is_split_per_layer() -> None:
    model = _build("llama")
    adapter = adapter_for(model)
    shared = model.model.layers[0].mlp.act_fn
    for layer in model.model.layers:
        layer.mlp.act_fn = shared
    mods = adapter.act_modules(model)
    assert len({id(m) for m in mods}) == len(mods) == 3
    assert [layer.mlp.act_fn for layer in model.model.layers] == mods


def test_unknown_architecture_names_the_adapter_file() -> None:
    with pytest.raises(BadInput) as exc:
        adapter_for(AutoConfig.for_model("t5"))
    assert "'t5'" in str(exc.value) and "lab/model/adapters.py" in str(exc.value) and "llama" in str(exc.value)

    class MadeUpConfig(PretrainedConfig):
        model_type = "made-up-lm"

    with pytest.raises(BadInput, match=r"'made-up-lm' has no neuron adapter .*lab/model/adapters.py"):
        adapter_for(MadeUpConfig())
