"""Evaluation through lm-eval on a tiny model: hooks inside lm-eval, built-in tasks from local data,
metric rows, and the intervene + evaluate stages on a real study."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from lab.inputs import tasks
from lab.core.errors import BadInput
from lab.eval.harness import NonFiniteLogits, TaskRun, align, compact_samples, make_lm, run_tasks
from lab.eval.paired import stratified_signflip_p
from lab.neurons.interventions import intervene
from lab.model.loading import LoadedModel, load_model
from lab.eval.paired import summarise

from tests.helpers import LANG_TEXT


@pytest.fixture(scope="module")
def loaded(tiny_llama_dir: Path) -> LoadedModel:
    return load_model({"id": str(tiny_llama_dir), "device": "cpu", "dtype": "float32"})


@pytest.fixture(scope="module")
def lm(loaded: LoadedModel) -> Any:
    return make_lm(loaded.model, loaded.tokenizer, batch_size=4)


@pytest.fixture(scope="module")
def toy_tasks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """A multiple-choice and a generative task in the demo tasks' shape (relative data_files)."""
    root = tmp_path_factory.mktemp("toy_tasks") / "toy"
    root.mkdir()
    words = (LANG_TEXT["sw"] * 3).split()
    mc = [{"context": " ".join(words[i:i + 4]), "choices": [words[i + 4], words[i + 5], words[i + 6]], "gold": i % 3}
          for i in range(6)]
    qa = [{"context": " ".join(words[i:i + 6]), "question": words[i], "answers": {"text": [words[i + 1]]}}
          for i in range(3)]
    (root / "toy_mc_sw.test.jsonl").write_text("\n".join(json.dumps(r) for r in mc))
    (root / "toy_qa_sw.test.jsonl").write_text("\n".join(json.dumps(r) for r in qa))
    (root / "toy_mc_sw.yaml").write_text(
        "task: toy_mc_sw\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: toy_mc_sw.test.jsonl\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{context}}'\ndoc_to_choice: choices\n"
        "doc_to_target: gold\nmetric_list:\n  - metric: acc\n")
    (root / "toy_qa_sw.yaml").write_text(
        "task: toy_qa_sw\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: toy_qa_sw.test.jsonl\n"
        "test_split: test\noutput_type: generate_until\ndoc_to_text: '{{context}} {{question}}:'\n"
        "doc_to_target: '{{answers.text[0]}}'\ngeneration_kwargs:\n  until: ['\\n']\n  max_gen_toks: 4\n"
        "  do_sample: false\nmetric_list:\n  - metric: exact_match\n")
    return [tasks.task_config(tasks.TaskRef(n, "sw", n, "demo", root / f"{n}.yaml")) for n in ("toy_mc_sw", "toy_qa_sw")]


def _outputs(runs: dict[str, TaskRun]) -> dict[str, list[Any]]:
    return {name: [s.get("lls", s.get("response")) for s in run.samples] for name, run in runs.items()}


def test_hooks_are_active_inside_lm_eval_and_leave_no_trace(loaded: LoadedModel, lm: Any,
                                                            toy_tasks: list[dict[str, Any]]) -> None:
    every = {layer: list(range(loaded.adapter.d_ff(loaded.model))) for layer in range(loaded.adapter.n_layers(loaded.model))}
    before = run_tasks(lm, toy_tasks, limit=None, seed=1)
    during = run_tasks(lm, toy_tasks, limit=None, seed=1, hooks=intervene(loaded.model, loaded.adapter, every, "zero"))
    after = run_tasks(lm, toy_tasks, limit=None, seed=1)

    mc_before, mc_during = before["toy_mc_sw"].samples, during["toy_mc_sw"].samples
    assert [s["doc_id"] for s in mc_before] == list(range(6))
    assert all(len(s["lls"]) == 3 for s in mc_before)
    changed = [a["lls"] != b["lls"] for a, b in zip(mc_before, mc_during)]
    assert all(changed), "zeroing every neuron must change every item's log-likelihoods"
    assert _outputs(after) == _outputs(before)  # bit-identical floats once the hooks are gone
    assert [s["correct"] for s in after["toy_mc_sw"].samples] == [s["correct"] for s in mc_before]
    # accuracy per item agrees with lm-eval's own aggregate
    for run in before.values():
        key = "acc" if run.output_type == "multiple_choice" else "exact_match"
        assert sum(run.correct) / len(run.correct) == pytest.approx(run.aggregate[key])
    assert before["toy_qa_sw"].output_type == "generate_until"
    assert {"response", "exact_match", "correct"} <= set(before["toy_qa_sw"].samples[0])
    assert all(not m._forward_hooks for m in loaded.adapter.act_modules(loaded.model))


def test_limit_and_item_alignment(lm: Any, toy_tasks: list[dict[str, Any]]) -> None:
    runs = run_tasks(lm, toy_tasks[:1], limit=4, seed=0)
    assert [s["doc_id"] for s in runs["toy_mc_sw"].samples] == [0, 1, 2, 3]
    short = run_tasks(lm, toy_tasks[:1], limit=3, seed=0)
    with pytest.raises(RuntimeError, match="different items"):
        align([runs["toy_mc_sw"]], [short["toy_mc_sw"]])


def test_builtin_xnli_runs_offline_from_local_data(lm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    words = (LANG_TEXT["sw"] * 3).split()
    rows = [{"premise": " ".join(words[i:i + 5]), "hypothesis": " ".join(words[i + 2:i + 6]), "label": i % 3}
            for i in range(7)]
    data = tmp_path / "data"
    data.mkdir()
    (data / "xnli_sw.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    cfg = {"languages": {"all": ["sw", "en"], "targets": ["sw"], "high_resource": []},
           "evaluate": {"tasks": ["xnli"], "data_dir": str(data)}}
    tasks.check_tasks(cfg)
    (ref,) = tasks.resolve_tasks(cfg)
    assert ref.source == "builtin" and ref.yaml_path.parent.name == "xnli"
    runs = run_tasks(lm, [tasks.task_config(ref, str(data))], limit=None, seed=0)
    run = runs["xnli_sw"]
    assert len(run.samples) == 7 and all(len(s["lls"]) == 3 for s in run.samples)  # entail / neutral / contradict
    assert [s["target"] for s in run.samples] == [r["label"] for r in rows]
    assert run.aggregate["acc"] == pytest.approx(sum(run.correct) / 7)


def test_builtin_task_without_local_data_fails_before_evaluating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.stages.evaluate import plan_configs

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty"))
    cfg = {"languages": {"all": ["sw", "en"], "targets": ["sw"], "high_resource": ["en"]},
           "evaluate": {"tasks": ["xnli"], "data_dir": None}}
    with pytest.raises(BadInput, match=r"xnli_sw reads facebook/xnli .* offline .* data_dir"):
        plan_configs(cfg)


def test_samples_without_an_accuracy_metric_are_refused() -> None:
    with pytest.raises(BadInput, match="per-item accuracy metric"):
        compact_samples("t", [{"doc_id": 0, "target": 1, "filtered_resps": [(-1.0, False)], "bleu": 3.0}],
                        "multiple_choice")


def _run(task: str, correct: list[int], otype: str = "multiple_choice") -> TaskRun:
    samples = [{"doc_id": i, "target": 0, "correct": float(c), "exact_match": float(c), "f1": 0.5 * c}
               for i, c in enumerate(correct)]
    return TaskRun(task, otype, samples)


def test_summary_rows_hand_computed() -> None:
    results = {
        "sw": {"baseline": [_run("t_sw", [0, 0, 0, 0, 1])], "intervention": [_run("t_sw", [1, 1, 0, 0, 1])],
               "control": [_run("t_sw", [0, 0, 0, 0, 1])]},
        "ur": {"baseline": [_run("t_ur", [1, 0])], "intervention": [_run("t_ur", [1, 0])],
               "control": [_run("t_ur", [0, 0])]},
        "en": {"baseline": [_run("q_en", [1, 1, 1, 1], "generate_until")],
               "intervention": [_run("q_en", [1, 1, 0, 1], "generate_until")],
               "control": [_run("q_en", [1, 1, 1, 1], "generate_until")]},
    }
    rows = summarise(results, ["sw", "ur"], resamples=500, seed=0)
    get = {(r["name"], r["language"], r["condition"]): r for r in rows}
    assert get[("accuracy", "sw", "baseline")]["value"] == pytest.approx(0.2)
    assert get[("accuracy", "sw", "intervention")]["n"] == 5
    assert get[("accuracy_delta", "sw", "intervention")]["value"] == pytest.approx(0.4)
    assert get[("mcnemar_p", "sw", "intervention")]["value"] == 0.5  # 0 vs 2 discordant: 2 · 1/4
    # accuracy: Wilson 95% interval, 1/5 → [0.0362, 0.6245]; never zero width (4/4 is not [1, 1])
    acc = get[("accuracy", "sw", "baseline")]
    assert (acc["ci_low"], acc["ci_high"]) == (pytest.approx(0.03623, abs=1e-4), pytest.approx(0.62449, abs=1e-4))
    em = get[("exact_match", "en", "baseline")]
    assert em["value"] == 1.0 and em["ci_low"] < 1.0 and em["ci_high"] == 1.0
    assert get[("accuracy_delta", "sw", "control")]["value"] == 0.0
    assert get[("mcnemar_p", "sw", "control")]["value"] == 1.0
    assert get[("accuracy_delta", "ur", "control")]["value"] == pytest.approx(-0.5)
    # mean gain over targets: (0.4 + 0.0) / 2, CI from the language-stratified paired bootstrap
    tgt = get[("accuracy_delta", "targets", "intervention")]
    assert tgt["value"] == pytest.approx(0.2) and tgt["n"] == 7 and tgt["ci_low"] <= 0.2 <= tgt["ci_high"]
    assert get[("accuracy_delta", "targets", "control")]["value"] == pytest.approx(-0.25)
    # the pooled row's p tests the same stratified mean: no McNemar over pooled items any more
    assert ("mcnemar_p", "targets", "intervention") not in get
    assert 0 < get[("stratified_p", "targets", "intervention")]["value"] <= 1
    assert get[("stratified_p", "targets", "intervention")]["n"] == 7
    assert get[("exact_match", "en", "intervention")]["value"] == pytest.approx(0.75)
    assert get[("f1", "en", "intervention")]["value"] == pytest.approx(0.375)
    assert ("exact_match", "sw", "baseline") not in get  # multiple-choice only
    assert ("accuracy_delta", "en", "baseline") not in get


def test_test_time_conditions_score_high_resource_languages_under_each_targets_intervention() -> None:
    from lab.eval.conditions import Recipe, conditions_of, test_time_slots

    slots = test_time_slots(["sw", "ur", "en"], ["sw", "ur"], spillover=True)
    got = {(s.language, s.condition): s.recipe for s in slots}
    assert got[("sw", "intervention")] == Recipe(neurons="intervention", owner="sw")
    assert got[("ur", "control")] == Recipe(neurons="control", owner="ur")
    assert got[("en", "spillover_ur")] == Recipe(neurons="intervention", owner="ur")  # ur's neurons and statistics
    assert got[("en", "spillover_sw")] == got[("en", "intervention")]  # one recipe: scored once, two names
    assert got[("en", "control")] == Recipe(neurons="control", owner="sw")
    assert got[("en", "own_intervention")] == Recipe(neurons="intervention", owner="en")
    assert ("sw", "spillover_ur") not in got and ("sw", "own_intervention") not in got
    assert conditions_of(slots) == ["baseline", "intervention", "control", "spillover_sw", "spillover_ur",
                                    "own_intervention"]
    assert len({(s.language, s.recipe) for s in slots}) == 3 + 3 + 5  # distinct runs
    # the generation probe keeps every language on its own sets
    own = {(s.language, s.condition): s.recipe for s in test_time_slots(["en"], ["sw"], spillover=False)}
    assert own[("en", "intervention")] == Recipe(neurons="intervention", owner="en") and len(own) == 3


def test_paired_items_document_lines_up_items_across_conditions() -> None:
    from lab.eval.paired import paired_items

    def two(task: str, a: list[int], b: list[int]) -> list[TaskRun]:  # two tasks, given out of name order
        return [_run(f"z_{task}", b), _run(f"a_{task}", a)]

    results = {"sw": {"baseline": two("sw", [0, 1], [1]), "intervention": two("sw", [1, 1], [0]),
                      "control": two("sw", [0, 0], [1])},
               "en": {"baseline": two("en", [1, 1], [1]), "spillover_sw": two("en", [0, 1], [1]),
                      "own_intervention": two("en", [1, 1], [0])}}
    doc = paired_items(results, ["sw"], ["en"])
    assert doc["version"] == 1 and doc["metric"] == "acc"
    assert doc["item_keys"] == {"sw": ["a_sw:0", "a_sw:1", "z_sw:0"], "en": ["a_en:0", "a_en:1", "z_en:0"]}
    assert doc["targets"] == {"sw": {"baseline": [0, 1, 1], "intervention": [1, 1, 0], "control": [0, 0, 1]}}
    assert doc["high_resource"] == {"sw": {"en": {"baseline": [1, 1, 1], "intervention": [0, 1, 1]}}}
    json.dumps(doc)  # plain JSON


def test_stratified_signflip_p_tests_the_stratified_mean() -> None:
    # no discordant item anywhere: nothing to flip, p = 1
    assert stratified_signflip_p([1, 0, 1], [1, 0, 1], ["a", "a", "b"], resamples=500, seed=0) == 1.0
    # one stratum, 2 items better and none worse: the exact sign-test p is 2 · 1/4 = 0.5
    p = stratified_signflip_p([1, 1, 0, 0], [0, 0, 0, 0], ["a"] * 4, resamples=20000, seed=1)
    assert p == pytest.approx(0.5, abs=0.02)
    # 30 of 30 items better in each of two languages: tiny p, bounded below by 1/(1 + resamples)
    p = stratified_signflip_p([1] * 60, [0] * 60, ["a"] * 30 + ["b"] * 30, resamples=999, seed=0)
    assert p == pytest.approx(1 / 1000)
    # the statistic weights languages equally: a big gain in a small stratum and a small loss in a large
    # one give a positive stratified mean, and the test sees it at the same size as the interval does
    treated = [1] * 10 + [0] * 200
    base = [0] * 10 + [0] * 190 + [1] * 10
    strata = ["small"] * 10 + ["large"] * 200
    assert stratified_signflip_p(treated, base, strata, resamples=4000, seed=0) < 0.01
    with pytest.raises(ValueError):
        stratified_signflip_p([1], [0, 1], ["a"])


def test_non_finite_logits_stop_the_run_naming_condition_language_and_batch(
        loaded: LoadedModel, lm: Any, toy_tasks: list[dict[str, Any]]) -> None:
    """A NaN written into the activations is a numeric failure, never a wrong answer."""
    mods = loaded.adapter.act_modules(loaded.model)
    handle = mods[0].register_forward_hook(lambda _m, _i, out: out * float("nan"))
    try:
        with pytest.raises(NonFiniteLogits, match=r"condition intervention, language sw, batch 1 of \d+"):
            run_tasks(lm, toy_tasks[:1], limit=None, seed=0, where="condition intervention, language sw")
    finally:
        handle.remove()
    assert not any(m._forward_hooks for m in mods) and not loaded.model._forward_hooks  # the guard is gone too
    clean = run_tasks(lm, toy_tasks[:1], limit=None, seed=0)
    assert len(clean["toy_mc_sw"].samples) == 6


def test_non_finite_log_likelihood_in_samples_is_refused() -> None:
    raw = [{"doc_id": 0, "target": 0, "filtered_resps": [(float("-inf"), False), (-1.0, False)], "acc": 0.0}]
    with pytest.raises(NonFiniteLogits, match="condition control, language ur, task t, document 0"):
        compact_samples("t", raw, "multiple_choice", "condition control, language ur")


# ---- the intervene + evaluate stages on a real study -------------------------------------------

def _identify_artifacts(ctx: Any, loaded: LoadedModel, languages: list[str], per_lang: int = 6) -> None:
    """What identify writes, from the tiny model's real activations: stats, neuron sets, random controls."""
    from safetensors.torch import save_file

    mods = loaded.adapter.act_modules(loaded.model)
    acts = []
    for lang in languages:
        seen: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(out[0].detach())) for m in mods]
        with torch.no_grad():
            loaded.model(loaded.tokenizer(LANG_TEXT[lang] * 8, return_tensors="pt")["input_ids"][:, :32])
        for h in hooks:
            h.remove()
        acts.append(torch.stack(seen))
    a = torch.stack(acts)  # [lang, layer, tokens, d_ff]
    stats = {"act_prob": (a > 0).float().mean(2), "act_mean": a.mean(2), "act_p10": a.quantile(0.1, dim=2),
             "act_p90": a.quantile(0.9, dim=2), "tokens": torch.full((len(languages),), a.shape[2], dtype=torch.int64)}
    ctx.write_artifact("activation_stats.safetensors", lambda p: save_file(
        {k: v.contiguous() for k, v in stats.items()}, str(p), metadata={"languages": ",".join(languages)}))
    prob = stats["act_prob"]
    specific = prob - prob.mean(0, keepdim=True)
    n_layers, d_ff = prob.shape[1], prob.shape[2]
    rng = random.Random(0)
    ident, control = {}, {}
    for li, lang in enumerate(languages):
        top = specific[li].flatten().topk(per_lang).indices.tolist()
        pairs = sorted([[i // d_ff, i % d_ff] for i in top])
        ident[lang] = pairs
        control[lang] = sorted([layer, j] for layer in range(n_layers)
                               for j in rng.sample(range(d_ff), sum(1 for p in pairs if p[0] == layer)))
    ctx.write_json("neurons.json", {"method": "test-top-specific", "params": {"k": per_lang}, "languages": ident})
    ctx.write_json("control.json", {"method": "random", "params": {"seed": 0}, "languages": control})


@pytest.mark.slow
def test_intervene_and_evaluate_stages_on_a_study(tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.gates.rules import recommend
    from lab.stages.context import StageContext
    from lab.stages.evaluate import run as run_evaluate
    from lab.stages.intervene import run as run_intervene
    from lab.store import Store
    from lab.study.create import create_study

    study_file = tmp_path / "study.toml"
    study_file.write_text(f"""[study]\nname = "eval-test"\nseed = 7
[model]\nid = "{tiny_llama_dir}"\ndevice = "cpu"\ndtype = "float32"
[languages]\nall = ["en", "fr", "sw"]\ntargets = ["sw"]\nhigh_resource = ["en"]
[corpus]\npath = "{tiny_corpus_dir}"\ntokens_per_language = 1000
[intervention]\nkind = "test_time"\nvalue = "p90"
[evaluate]\ntasks = ["demo_real"]\nlimit = 8\nbootstrap = 200\nbatch_size = 8
""")
    store = Store(tmp_path / "home")
    study = create_study(store, study_file)
    from protocols import load_protocol

    protocol = load_protocol(study.protocol, store.home.root)
    ctx = lambda stage: StageContext(store, study, protocol, protocol.get(stage), out=None)  # noqa: E731
    ident_ctx = ctx("identify")
    loaded = load_model({"id": str(tiny_llama_dir), "device": "cpu", "dtype": "float32"})
    _identify_artifacts(ident_ctx, loaded, ["en", "fr", "sw"])

    run_intervene(ctx("intervene"))
    plan = json.loads((store.home.stage_dir(study.id, "intervene") / "intervention.json").read_text())
    assert plan["value"] == "p90" and plan["check"]["passed"] is True
    assert plan["languages"]["sw"]["identified"]["neurons"] == 6 == plan["languages"]["sw"]["control"]["neurons"]
    assert plan["check"]["languages"]["sw"]["source"].endswith("heldout/sw.txt")
    assert plan["check"]["languages"]["sw"]["identified"]["restored_bit_identical"] is True

    run_evaluate(ctx("evaluate"))
    rows = store.metrics(study.id, "evaluate")
    get = {(m.name, m.language, m.condition): m for m in rows}
    for lang in ("sw", "en"):
        for cond in ("baseline", "intervention", "control"):
            acc = get[("accuracy", lang, cond)]
            assert acc.n == 8 and 0 <= acc.ci_low <= acc.value <= acc.ci_high <= 1
        for cond in ("intervention", "control"):
            d = get[("accuracy_delta", lang, cond)]
            assert d.value == pytest.approx(get[("accuracy", lang, cond)].value - get[("accuracy", lang, "baseline")].value)
            assert d.ci_low <= d.value <= d.ci_high
            assert 0 < get[("mcnemar_p", lang, cond)].value <= 1
    assert get[("accuracy_delta", "targets", "intervention")].value == pytest.approx(get[("accuracy_delta", "sw", "intervention")].value)
    assert all(get[("compute_seconds", "", c)].value > 0 for c in ("baseline", "intervention", "control"))
    assert ("accuracy", "fr", "baseline") not in get  # fr is neither a target nor high-resource
    # English: scored with sw's intervention on (the deployment question), and with its own neurons apart
    assert get[("accuracy_delta", "en", "spillover_sw")].value == get[("accuracy_delta", "en", "intervention")].value
    assert ("accuracy", "en", "own_intervention") in get and ("spillover_sw", "sw") not in {(k[2], k[1]) for k in get}
    paired = json.loads((store.home.stage_dir(study.id, "evaluate") / "paired_items.json").read_text())
    assert paired["version"] == 1 and paired["metric"] == "acc"
    assert paired["item_keys"]["sw"] == [f"demo_real_sw:{i}" for i in range(8)]
    assert set(paired["targets"]["sw"]) == {"baseline", "intervention", "control"}
    en = paired["high_resource"]["sw"]["en"]
    assert sum(en["intervention"]) / 8 == pytest.approx(get[("accuracy", "en", "spillover_sw")].value)
    assert sum(en["baseline"]) / 8 == pytest.approx(get[("accuracy", "en", "baseline")].value)

    samples = json.loads((store.home.stage_dir(study.id, "evaluate") / "samples_intervention.json").read_text())
    assert set(samples) == {"sw", "en"} and len(samples["sw"]["demo_real_sw"]["samples"]) == 8
    base = json.loads((store.home.stage_dir(study.id, "evaluate") / "samples_baseline.json").read_text())
    assert base["sw"]["demo_real_sw"]["samples"] != samples["sw"]["demo_real_sw"]["samples"]  # the hooks acted
    names = {a.name for a in store.artifacts(study.id, "evaluate")}
    assert {"samples_baseline.json", "samples_intervention.json", "samples_control.json", "samples_spillover_sw.json",
            "samples_own_intervention.json", "evaluation.json", "paired_items.json"} <= names

    rec = recommend(store, study, protocol, protocol.get("evaluate"))
    assert rec is not None and rec.verdict in ("go", "no-go", "inconclusive") and "mean_gain_points" in rec.numbers

    # resuming after an interruption re-uses the checkpointed (language, condition) results: no lm-eval call
    import lab.stages.evaluate as evaluate_stage

    def no_more_runs(*_a: Any, **_k: Any) -> None:
        raise AssertionError("lm-eval ran again although every (language, condition) was checkpointed")

    monkeypatch.setattr(evaluate_stage, "run_tasks", no_more_runs)
    run_evaluate(ctx("evaluate"))
    again = {(m.name, m.language, m.condition): (m.value, m.ci_low, m.ci_high) for m in store.metrics(study.id, "evaluate")}
    assert again == {k: (m.value, m.ci_low, m.ci_high) for k, m in get.items()}
