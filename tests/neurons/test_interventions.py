"""Test-time interventions: each kind changes the logits while active and leaves no trace after."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lab.core.errors import BadInput
from lab.neurons.interventions import INTERVENTIONS, intervene, read_activation_stats
from lab.neurons.sets import neurons_by_layer
from lab.model.loading import LoadedModel, load_model
from lab.stages.intervene import replacement_values, restore_check

from tests.helpers import LANG_TEXT

KINDS = ["zero", "mean", "p10", "p90", "scale"]


@pytest.fixture(scope="module")
def loaded(tiny_llama_dir: Path) -> LoadedModel:
    return load_model({"id": str(tiny_llama_dir), "device": "cpu", "dtype": "float32"})


def activation_stats(loaded: LoadedModel, languages: list[str]) -> dict[str, torch.Tensor]:
    """Real per-language statistics at the hook point (the shape identify writes)."""
    mods = loaded.adapter.act_modules(loaded.model)
    per_lang = []
    for lang in languages:
        seen: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(out[0].detach())) for m in mods]
        try:
            with torch.no_grad():
                loaded.model(loaded.tokenizer(LANG_TEXT[lang] * 3, return_tensors="pt")["input_ids"])
        finally:
            for h in hooks:
                h.remove()
        per_lang.append(torch.stack(seen))  # [layers, tokens, d_ff]
    acts = torch.stack([a[:, : min(x.shape[1] for x in per_lang)] for a in per_lang])  # [lang, layer, tok, d_ff]
    return {"act_prob": (acts > 0).float().mean(2), "act_mean": acts.mean(2),
            "act_p10": acts.quantile(0.1, dim=2), "act_p90": acts.quantile(0.9, dim=2),
            "tokens": torch.full((len(languages),), acts.shape[2], dtype=torch.int64)}


@pytest.fixture(scope="module")
def stats(loaded: LoadedModel) -> dict[str, torch.Tensor]:
    return activation_stats(loaded, ["en", "sw"])


@pytest.mark.parametrize("kind", KINDS)
def test_removing_hooks_restores_logits_bit_for_bit(loaded: LoadedModel, stats: dict[str, torch.Tensor], kind: str) -> None:
    ids = loaded.tokenizer(LANG_TEXT["sw"], return_tensors="pt")["input_ids"]
    neurons = {0: [1, 5, 9, 33], 1: [0, 2, 63]}
    with torch.no_grad():
        before = loaded.model(ids).logits.clone()
        with intervene(loaded.model, loaded.adapter, neurons, kind, stats=stats, stat_languages=["en", "sw"],
                       language="sw", scale=3.0):
            during = loaded.model(ids).logits.clone()
        after = loaded.model(ids).logits
    assert not torch.equal(before, during), f"{kind} had no effect on the logits"
    assert torch.equal(before, after), f"{kind} left a trace after its hooks were removed"
    assert all(not m._forward_hooks for m in loaded.adapter.act_modules(loaded.model))


@pytest.mark.parametrize("kind", KINDS)
def test_hooks_write_the_planned_values(loaded: LoadedModel, stats: dict[str, torch.Tensor], kind: str) -> None:
    """The hooked activation equals the language's statistic (or 0, or factor × original) at the chosen neurons."""
    mods = loaded.adapter.act_modules(loaded.model)
    ids = loaded.tokenizer(LANG_TEXT["en"], return_tensors="pt")["input_ids"]
    idx = [3, 7, 40]
    plain: list[torch.Tensor] = []
    h = mods[1].register_forward_hook(lambda _m, _i, out: plain.append(out.detach().clone()))
    with torch.no_grad():
        loaded.model(ids)
    h.remove()
    seen: list[torch.Tensor] = []
    with intervene(loaded.model, loaded.adapter, {1: idx}, kind, stats=stats, stat_languages=["en", "sw"],
                   language="en", scale=3.0), torch.no_grad():
        # registered after the intervention's hook, so it sees the replaced output
        h = mods[1].register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
        loaded.model(ids)
        h.remove()
    got = seen[0][..., idx]
    iv = INTERVENTIONS.get(kind)
    if iv.stat is not None:
        want = stats[iv.stat][0, 1, idx].expand_as(got)
    elif kind == "scale":
        want = plain[0][..., idx] * 3.0
    else:
        want = torch.zeros_like(got)
    assert torch.equal(got, want)
    others = [j for j in range(seen[0].shape[-1]) if j not in idx]
    assert torch.equal(seen[0][..., others], plain[0][..., others])


def test_restore_check_reports_change_and_restoration(loaded: LoadedModel, stats: dict[str, torch.Tensor]) -> None:
    ids = loaded.tokenizer(LANG_TEXT["sw"], return_tensors="pt")["input_ids"]
    res = restore_check(loaded, {0: list(range(64)), 1: list(range(64))}, "zero", ids)
    assert res["changed"] and res["restored_bit_identical"] and res["max_abs_change"] > 0
    empty = restore_check(loaded, {}, "p90", ids, stats=stats, stat_languages=["en", "sw"], language="sw")
    assert empty == {"changed": False, "max_abs_change": 0.0, "restored_bit_identical": True}


def test_replacement_values_summarise_the_language_statistics(stats: dict[str, torch.Tensor]) -> None:
    by_layer = neurons_by_layer([[1, 4], [0, 2], [0, 1]])
    assert by_layer == {0: [1, 2], 1: [4]}
    v = replacement_values("p90", by_layer, stats, ["en", "sw"], "sw", 2.0)
    vals = torch.stack([stats["act_p90"][1, 0, 1], stats["act_p90"][1, 0, 2], stats["act_p90"][1, 1, 4]])
    assert v["neurons"] == 3
    assert v["value_mean"] == pytest.approx(float(vals.mean()))
    assert v["value_max"] == pytest.approx(float(vals.max()))
    assert replacement_values("scale", by_layer, None, [], "sw", 2.5) == {"neurons": 3, "factor": 2.5}
    with pytest.raises(BadInput, match="activation statistics for hi"):
        replacement_values("mean", by_layer, stats, ["en", "sw"], "hi", 2.0)


def test_stat_kinds_need_statistics(loaded: LoadedModel) -> None:
    with pytest.raises(BadInput, match="needs the activation statistics"):
        with intervene(loaded.model, loaded.adapter, {0: [1]}, "p90"):
            pass
    with pytest.raises(BadInput, match="layer 9"):
        with intervene(loaded.model, loaded.adapter, {9: [1]}, "zero"):
            pass
    assert all(not m._forward_hooks for m in loaded.adapter.act_modules(loaded.model))


def test_activation_stats_file_round_trip(tmp_path: Path, stats: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "activation_stats.safetensors"
    save_file({k: v.contiguous() for k, v in stats.items()}, str(path), metadata={"languages": "en,sw"})
    got, langs = read_activation_stats(path)
    assert langs == ["en", "sw"] and torch.equal(got["act_p90"], stats["act_p90"])
    save_file({k: v.contiguous() for k, v in stats.items()}, str(path), metadata={"languages": "en"})
    with pytest.raises(BadInput, match="re-run the identify stage"):
        read_activation_stats(path)

