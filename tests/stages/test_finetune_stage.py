"""The fine-tune intervention through the intervene and evaluate stages on a real study.

identify's outputs are recorded by hand (as identify writes them); intervene then really trains
the peft adapters and evaluate really scores each merged variant through lm-eval.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from lab.core.errors import BadInput
from lab.eval.conditions import FT_CONDITIONS, FT_TREATED, finetune_assignment

STUDY_TOML = """
[study]
name = "ft-stage"
seed = 5
[model]
id = "{model}"
device = "cpu"
dtype = "float32"
[languages]
all = ["en", "fr", "de", "sw"]
targets = ["sw", "de"]
high_resource = ["en"]
[corpus]
path = "{corpus}"
block_size = 16
[intervention]
kind = "finetune"
steps = 4
checkpoint_every = 2
lora_r = 4
learning_rate = 0.05
weight_decay = 0.1
[evaluate]
tasks = ["demo_real"]
limit = 8
bootstrap = 200
batch_size = 8
"""

NEURONS = {"en": [[0, 7], [1, 3]], "fr": [[1, 9]], "de": [[0, 11], [0, 12], [1, 30]],
           "sw": [[0, 1], [0, 5], [1, 2], [1, 40]]}
CONTROL = {"en": [[0, 8], [1, 4]], "fr": [[1, 10]], "de": [[0, 21], [0, 22], [1, 31]],
           "sw": [[0, 20], [0, 30], [1, 50], [1, 60]]}


def _ctx(store: Any, study: Any, stage: str) -> Any:
    from lab.stages.context import StageContext
    from protocols import load_protocol

    protocol = load_protocol(study.protocol, store.home.root)
    return StageContext(store, study, protocol, protocol.get(stage), out=io.StringIO())


def test_high_resource_languages_use_the_first_targets_adapters() -> None:
    plan = {"variants": [{"name": n} for n in ("ft_neurons-sw", "ft_random-sw", "ft_neurons-de", "ft_random-de",
                                               "ft_lora_attn")]}
    got = finetune_assignment(plan, ["sw", "de"], ["sw", "de", "en", "fr"])
    assert got["de"] == {"intervention": "ft_neurons-de", "control": "ft_random-de", "ft_lora_attn": "ft_lora_attn"}
    assert got["en"] == got["fr"] == got["sw"] == {"intervention": "ft_neurons-sw", "control": "ft_random-sw",
                                                   "ft_lora_attn": "ft_lora_attn"}
    with pytest.raises(BadInput, match="no adapter ft_random-de"):
        finetune_assignment({"variants": plan["variants"][:3] + plan["variants"][4:]}, ["sw", "de"], ["de"])
    with pytest.raises(BadInput, match="targets is empty"):
        finetune_assignment(plan, [], ["en"])


@pytest.mark.slow
def test_finetune_intervene_and_evaluate_stages(tiny_llama_dir: Path, tiny_corpus_dir: Path, home: Path,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.gates.rules import recommend
    from lab.stages.evaluate import run as run_evaluate
    from lab.stages.intervene import run as run_intervene
    from lab.store import Store
    from lab.study.create import create_study
    from protocols import load_protocol

    study_file = tmp_path / "ft.toml"
    study_file.write_text(STUDY_TOML.format(model=tiny_llama_dir, corpus=tiny_corpus_dir), encoding="utf-8")
    store = Store(home)
    study = create_study(store, study_file)
    ident = _ctx(store, study, "identify")
    ident.write_json("neurons.json", {"method": "lape", "params": {}, "languages": NEURONS})
    ident.write_json("control.json", {"method": "random", "params": {}, "languages": CONTROL})

    run_intervene(_ctx(store, study, "intervene"))
    plan = json.loads((store.home.stage_dir(study.id, "intervene") / "intervention.json").read_text())
    assert plan["kind"] == "finetune"
    assert [v["name"] for v in plan["variants"]] == ["ft_neurons-sw", "ft_random-sw", "ft_neurons-de",
                                                     "ft_random-de", "ft_lora_attn"]
    outside = {(m.condition, m.language): m.value
               for m in store.metrics(study.id, name="weights_changed_outside_neurons")}
    assert outside == {(c, t): 0.0 for c in ("ft_neurons", "ft_random") for t in ("sw", "de")}

    run_evaluate(_ctx(store, study, "evaluate"))
    get = {(m.name, m.language, m.condition): m for m in store.metrics(study.id, "evaluate")}
    for lang in ("sw", "de", "en"):
        for cond in FT_CONDITIONS:
            acc = get[("accuracy", lang, cond)]
            assert acc.n == 8 and 0 <= acc.ci_low <= acc.value <= acc.ci_high <= 1
        for cond in FT_TREATED:
            d = get[("accuracy_delta", lang, cond)]
            assert d.value == pytest.approx(get[("accuracy", lang, cond)].value - get[("accuracy", lang, "baseline")].value)
            assert d.ci_low <= d.value <= d.ci_high
            assert 0 < get[("mcnemar_p", lang, cond)].value <= 1
    for cond in FT_TREATED:  # the stratified mean over targets, as at test time
        mean = get[("accuracy_delta", "targets", cond)]
        assert mean.n == 16
        assert mean.value == pytest.approx((get[("accuracy_delta", "sw", cond)].value +
                                            get[("accuracy_delta", "de", cond)].value) / 2)
    assert ("accuracy", "fr", "baseline") not in get  # fr is neither a target nor high-resource
    assert all(get[("compute_seconds", "", c)].value > 0 for c in FT_CONDITIONS)

    out = store.home.stage_dir(study.id, "evaluate")
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["intervention"]["variants"]["en"]["intervention"] == "ft_neurons-sw"
    assert evaluation["intervention"]["variants"]["de"]["control"] == "ft_random-de"
    samples = {c: json.loads((out / f"samples_{c}.json").read_text()) for c in FT_CONDITIONS}
    lls = {c: [s["lls"] for s in samples[c]["sw"]["demo_real_sw"]["samples"]] for c in FT_CONDITIONS}
    assert len(lls["baseline"]) == 8
    for cond in FT_TREATED:  # every adapter really changed the model's scores
        assert lls[cond] != lls["baseline"]
    assert lls["intervention"] != lls["control"] != lls["ft_lora_attn"]

    protocol = load_protocol(study.protocol, store.home.root)
    rec = recommend(store, study, protocol, protocol.get("evaluate"))
    assert rec is not None and rec.verdict in ("go", "no-go", "inconclusive", "revise")
    assert rec.numbers["mean_gain_points"] == pytest.approx(
        100 * (get[("accuracy_delta", "sw", "intervention")].value + get[("accuracy_delta", "de", "intervention")].value) / 2)
    # regression = deployment spillover: English under each target's neuron adapter, the worst of them
    spill = {t: get[("accuracy_delta", "en", f"spillover_{t}")].value for t in ("sw", "de")}
    assert rec.numbers["worst_high_resource_points"] == pytest.approx(100 * min(spill.values()))
    # spillover_sw is the first target's adapter, which is also en's `intervention`: scored once, same items
    assert spill["sw"] == get[("accuracy_delta", "en", "intervention")].value
    assert json.loads((out / "samples_spillover_sw.json").read_text())["en"] == samples["intervention"]["en"]
    assert set(json.loads((out / "samples_spillover_de.json").read_text())) == {"en"}
    paired = json.loads((out / "paired_items.json").read_text())
    assert paired["version"] == 1 and set(paired["targets"]) == {"sw", "de"} and set(paired["high_resource"]) == {"sw", "de"}
    keys = paired["item_keys"]["en"]
    assert len(keys) == 8 and keys[0] == "demo_real_en:0"
    for t in ("sw", "de"):
        en = paired["high_resource"][t]["en"]
        assert len(en["baseline"]) == len(en["intervention"]) == 8
        assert sum(en["intervention"]) / 8 - sum(en["baseline"]) / 8 == pytest.approx(spill[t])
    sw = paired["targets"]["sw"]
    assert sum(sw["control"]) / 8 == pytest.approx(get[("accuracy", "sw", "control")].value)
    assert sum(sw["intervention"]) / 8 == pytest.approx(get[("accuracy", "sw", "intervention")].value)

    # a rerun reuses every checkpointed (language, condition): no adapter loaded, no lm-eval call
    import lab.neurons.finetune.adapters
    import lab.stages.evaluate as evaluate_stage

    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("work repeated although every (language, condition) was checkpointed")

    monkeypatch.setattr(evaluate_stage, "run_tasks", refuse)
    monkeypatch.setattr(lab.neurons.finetune.adapters, "load_condition", refuse)
    before = {k: (m.value, m.ci_low, m.ci_high) for k, m in get.items() if k[0] != "compute_seconds"}
    run_evaluate(_ctx(store, study, "evaluate"))
    again = {(m.name, m.language, m.condition): (m.value, m.ci_low, m.ci_high)
             for m in store.metrics(study.id, "evaluate") if m.name != "compute_seconds"}
    assert again == before


def test_evaluate_refuses_a_plan_of_another_kind(tiny_llama_dir: Path, tiny_corpus_dir: Path, home: Path,
                                                 tmp_path: Path) -> None:
    from lab.stages.evaluate import run as run_evaluate
    from lab.store import Store
    from lab.study.create import create_study

    study_file = tmp_path / "ft.toml"
    study_file.write_text(STUDY_TOML.format(model=tiny_llama_dir, corpus=tiny_corpus_dir), encoding="utf-8")
    store = Store(home)
    study = create_study(store, study_file)
    _ctx(store, study, "intervene").write_json("intervention.json", {"kind": "test_time", "value": "p90"})
    with pytest.raises(BadInput, match="re-run the intervene stage"):
        run_evaluate(_ctx(store, study, "evaluate"))
