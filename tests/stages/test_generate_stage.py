"""The generate stage on a real study (tiny fixture model): metrics for every evaluated language and
condition, continuations.json, resume from checkpoints; generative tasks (demo_qa, xquad/mlqa from
local data) through lm-eval with exact match and F1 per condition; the fine-tune variants; and the
report's fidelity table and example pairs."""

from __future__ import annotations

from tests.helpers import ROOT_DIR

import io
import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from lab.inputs import qa_scoring
from lab.core.errors import BadInput

@pytest.fixture
def one_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ctx(store: Any, study: Any, stage: str) -> Any:
    from lab.stages.context import StageContext
    from protocols import load_protocol

    protocol = load_protocol(study.protocol, store.home.root)
    return StageContext(store, study, protocol, protocol.get(stage), out=io.StringIO())


def _study(tmp_path: Path, model: Path, corpus: Path, extra: str = "", kind: str = "test_time") -> tuple[Any, Any]:
    from lab.store import Store
    from lab.study.create import create_study

    ft = "steps = 2\ncheckpoint_every = 1\nlora_r = 2\nlearning_rate = 0.05\n" if kind == "finetune" else ""
    task = "demo_real" if kind == "finetune" else "demo_qa"  # fine-tuning trains on an English training split
    path = tmp_path / "gen.toml"
    path.write_text(f"""[study]\nname = "gen-{kind}"\nseed = 4
[model]\nid = "{model}"\ndevice = "cpu"\ndtype = "float32"
[languages]\nall = ["en", "fr", "de", "sw"]\ntargets = ["sw"]\nhigh_resource = ["en"]
[corpus]\npath = "{corpus}"\ntokens_per_language = 1000\nblock_size = 16
[intervention]\nkind = "{kind}"\nvalue = "zero"\n{ft}
[evaluate]\ntasks = ["{task}"]\nlimit = 4\nbootstrap = 200\nbatch_size = 8
[generate]\nn_prompts = 3\nmax_new_tokens = 8\nsamples = 2
{extra}""", encoding="utf-8")
    store = Store(tmp_path / "home")
    return store, create_study(store, path)


def _identify_artifacts(store: Any, study: Any) -> None:
    """What identify writes, by hand: the intervention zeroes the even neurons of layer 0 (half the
    layer: it must show in the text), the control the odd ones (same per-layer counts)."""
    import torch
    from safetensors.torch import save_file

    ctx = _ctx(store, study, "identify")
    langs = ["en", "fr", "de", "sw"]
    ident = {lang: [[0, j] for j in range(0, 64, 2)] for lang in langs}
    control = {lang: [[0, j] for j in range(1, 64, 2)] for lang in langs}
    ctx.write_json("neurons.json", {"method": "lape", "params": {}, "languages": ident})
    ctx.write_json("control.json", {"method": "random", "params": {}, "languages": control})
    stats = {k: torch.rand(4, 2, 64) for k in ("act_prob", "act_mean", "act_p10", "act_p90")}
    stats["tokens"] = torch.full((4,), 1000, dtype=torch.int64)
    ctx.write_artifact("activation_stats.safetensors",
                       lambda p: save_file(stats, str(p), metadata={"languages": ",".join(langs)}))


def test_generate_stage_metrics_artifact_and_resume(tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    from lab.stages.generate import run as run_generate
    from lab.stages.intervene import run as run_intervene

    store, study = _study(tmp_path, tiny_llama_dir, tiny_corpus_dir)
    _identify_artifacts(store, study)
    run_intervene(_ctx(store, study, "intervene"))
    run_generate(_ctx(store, study, "generate"))

    rows = store.metrics(study.id, "generate")
    get = {(m.name, m.language, m.condition): m for m in rows}
    for lang in ("sw", "en"):  # every evaluated language (fr, de are neither targets nor high-resource)
        for cond in ("baseline", "intervention", "control"):
            for name in ("language_fidelity", "switch_to_other", "degenerate_rate"):
                m = get[(name, lang, cond)]
                assert m.n == 3 and 0 <= m.ci_low <= m.value <= m.ci_high <= 1
                assert m.ci_low < m.ci_high  # Wilson over 3 prompts: never zero width
        for cond in ("intervention", "control"):
            d = get[("language_fidelity_delta", lang, cond)]
            assert d.value == pytest.approx(get[("language_fidelity", lang, cond)].value
                                            - get[("language_fidelity", lang, "baseline")].value)
            assert d.ci_low <= d.value <= d.ci_high
            assert ("degenerate_rate_delta", lang, cond) in get
    assert ("switch_to_english", "sw", "intervention") in get and ("switch_to_english", "en", "baseline") not in get
    assert ("language_fidelity", "fr", "baseline") not in get
    assert get[("continuation_changed", "sw", "intervention")].value > 0  # half of layer 0 switched off shows in the text

    art = json.loads((store.home.stage_dir(study.id, "generate") / "continuations.json").read_text(encoding="utf-8"))
    assert art["conditions"] == ["baseline", "intervention", "control"]
    assert art["intervention"] == {"kind": "test_time", "value": "zero", "scale": None}
    lid = art["language_id"]
    assert lid["library"] == "py3langid" and lid["label_set"] == "full" and lid["labels"] > 100
    assert lid["codes"] == {"en": "en", "fr": "fr", "de": "de", "sw": "sw"}
    assert art["settings"]["n_prompts"] == 3 and art["settings"]["prompts_per_language"] == {"sw": 3, "en": 3}
    assert art["settings"]["confidence"] == 0.95  # the protocol's level (no [criteria] override)
    assert art["settings"]["samples"] == 2 and art["settings"]["max_new_tokens"] == 8
    sw = art["languages"]["sw"]["prompts"]
    assert [p["prompt"] for p in sw] == (ROOT_DIR / "examples/prompts/sw.txt").read_text(
        encoding="utf-8").splitlines()[:3]
    first = sw[0]["conditions"]
    assert set(first) == {"baseline", "intervention", "control"}
    assert len(first["baseline"]["samples"]) == 2 and isinstance(first["baseline"]["greedy"]["language"], str)
    assert {"text", "tokens", "degenerate", "language", "confidence"} <= set(first["intervention"]["greedy"])
    # the stored fidelity is what the artifact's detections say
    detected = [c["language"] for p in sw for c in [p["conditions"]["baseline"]["greedy"], *p["conditions"]["baseline"]["samples"]]]
    per_prompt = [sum(d == "sw" for d in detected[i * 3:(i + 1) * 3]) / 3 for i in range(3)]
    assert get[("language_fidelity", "sw", "baseline")].value == pytest.approx(sum(per_prompt) / 3)
    from lab.eval.stats import wilson_interval

    w = wilson_interval(round(sum(per_prompt), 9), 3)
    m = get[("language_fidelity", "sw", "baseline")]
    assert (m.ci_low, m.ci_high) == pytest.approx((w.low, w.high))
    # every detection outside sw and English is a switch to another language, and is counted by name
    others = [d for d in detected if d not in ("sw", "en", "und")]
    assert get[("switch_to_other", "sw", "baseline")].value == pytest.approx(len(others) / 9)
    summary = art["languages"]["sw"]["summary"]["baseline"]
    assert sum(summary["other_languages"].values()) == len(others) + detected.count("en")
    assert "sw" not in summary["other_languages"] and "und" not in summary["other_languages"]

    # interrupted after everything was checkpointed: a rerun generates nothing and stores the same numbers
    import lab.stages.generate as generate_stage

    def no_more(*_a: Any, **_k: Any) -> None:
        raise AssertionError("generated again although every (language, condition) was checkpointed")

    monkeypatch.setattr(generate_stage, "generate_continuations", no_more)
    monkeypatch.setattr(generate_stage, "load_for_stage", no_more)
    run_generate(_ctx(store, study, "generate"))
    again = {(m.name, m.language, m.condition): (m.value, m.ci_low, m.ci_high) for m in store.metrics(study.id, "generate")
             if m.name != "compute_seconds"}
    assert again == {k: (m.value, m.ci_low, m.ci_high) for k, m in get.items() if k[0] != "compute_seconds"}


def test_generate_stage_refuses_a_failed_hook_check_and_a_stale_plan(tmp_path: Path, tiny_llama_dir: Path,
                                                                     tiny_corpus_dir: Path) -> None:
    from lab.stages.generate import run as run_generate

    store, study = _study(tmp_path, tiny_llama_dir, tiny_corpus_dir)
    ctx = _ctx(store, study, "intervene")
    ctx.write_json("intervention.json", {"kind": "test_time", "value": "zero", "check": {"passed": False}})
    with pytest.raises(BadInput, match="hook check did not pass"):
        run_generate(_ctx(store, study, "generate"))
    ctx.write_json("intervention.json", {"kind": "finetune", "variants": []})
    with pytest.raises(BadInput, match="re-run the intervene stage"):
        run_generate(_ctx(store, study, "generate"))


# ---- generative tasks through lm-eval ------------------------------------------------------------

def test_demo_qa_runs_offline_with_exact_match_and_f1_per_condition(tmp_path: Path, tiny_llama_dir: Path,
                                                                    tiny_corpus_dir: Path, one_thread: None) -> None:
    from lab.stages.evaluate import run as run_evaluate
    from lab.stages.intervene import run as run_intervene

    store, study = _study(tmp_path, tiny_llama_dir, tiny_corpus_dir)
    _identify_artifacts(store, study)
    run_intervene(_ctx(store, study, "intervene"))
    run_evaluate(_ctx(store, study, "evaluate"))
    get = {(m.name, m.language, m.condition): m for m in store.metrics(study.id, "evaluate")}
    out = store.home.stage_dir(study.id, "evaluate")
    responses = {}
    for cond in ("baseline", "intervention", "control"):
        samples = json.loads((out / f"samples_{cond}.json").read_text(encoding="utf-8"))
        for lang in ("sw", "en"):
            run = samples[lang][f"demo_qa_{lang}"]
            assert run["output_type"] == "generate_until" and len(run["samples"]) == 4
            for metric in ("exact_match", "f1"):
                m = get[(metric, lang, cond)]
                per_item = [s[metric] for s in run["samples"]]
                assert m.n == 4 and m.value == pytest.approx(sum(per_item) / 4) and 0 <= m.value <= 1
            responses[(lang, cond)] = [s["response"] for s in run["samples"]]
    assert responses[("sw", "intervention")] != responses[("sw", "baseline")]  # the hooks acted inside lm-eval


def _qa_rows(lang: str) -> list[dict[str, Any]]:
    from tests.helpers import LANG_TEXT

    words = LANG_TEXT[lang].split()
    return [{"id": f"q{i}", "context": " ".join(words[i:i + 8]), "question": f"{words[i]}?",
             "answers": {"text": [words[i + 1]], "answer_start": [len(words[i]) + 1]}} for i in range(3)]


def test_xquad_and_mlqa_families_run_offline_from_local_data(tmp_path: Path, tiny_llama_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    from lab.inputs import tasks
    from lab.eval.harness import make_lm, run_tasks
    from lab.model.loading import load_model

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty-cache"))
    cfg = {"languages": {"all": ["de", "en", "sw"], "targets": ["sw"], "high_resource": ["de", "en"]},
           "evaluate": {"tasks": ["xquad", "mlqa", "demo_qa"], "data_dir": None}}
    names = {(r.entry, r.language): r.name for r in tasks.resolve_tasks(cfg)}
    assert {k: v for k, v in names.items() if k[0] != "demo_qa"} == {
        ("xquad", "de"): "xquad_de", ("xquad", "en"): "xquad_en", ("mlqa", "de"): "mlqa_de_de",
        ("mlqa", "en"): "mlqa_en_en"}  # neither family has Swahili: demo_qa covers it
    with pytest.raises(BadInput, match=r"xquad_de reads google/xquad from the Hugging Face hub, which is offline"):
        tasks.check_tasks(cfg)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("xquad_de", "xquad_en", "mlqa_de_de", "mlqa_en_en"):
        (data / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in _qa_rows(name.split("_")[1])),
                                            encoding="utf-8")
    cfg["evaluate"]["data_dir"] = str(data)
    tasks.check_tasks(cfg)
    refs = [r for r in tasks.resolve_tasks(cfg) if r.language == "de"]
    loaded = load_model({"id": str(tiny_llama_dir), "device": "cpu", "dtype": "float32"})
    runs = run_tasks(make_lm(loaded.model, loaded.tokenizer, 4), [tasks.task_config(r, str(data)) for r in refs],
                     limit=None, seed=0)
    for name in ("xquad_de", "mlqa_de_de"):
        run = runs[name]
        assert run.output_type == "generate_until" and len(run.samples) == 3
        assert all({"response", "exact_match", "f1"} <= set(s) for s in run.samples)
        assert run.aggregate["f1"] == pytest.approx(sum(run.values("f1")) / 3)
    # lm-eval's own xquad scorer cannot load under transformers 5: lab.inputs.qa_scoring's SQuAD scorer stands in
    for s in runs["xquad_de"].samples:
        assert s["f1"] == pytest.approx(qa_scoring.f1(s["target"], s["response"]))
        assert s["exact_match"] == qa_scoring.exact(s["target"], s["response"])


def test_squad_scoring() -> None:
    assert qa_scoring.normalize(" The  Bristol, UK! ") == "bristol uk"
    assert qa_scoring.exact("in the garden", "In garden.") == 1
    assert qa_scoring.f1("in the garden", "garden party") == pytest.approx(0.5)
    assert qa_scoring.f1("", " ") == 1.0 and qa_scoring.f1("map", "") == 0.0 and qa_scoring.f1("map", "dog") == 0.0
    got = qa_scoring.process_results_xquad({"answers": {"text": ["a map", "map"]}}, [" the map"])
    assert got == {"f1": 1.0, "exact_match": 1.0}


# ---- fine-tune variants --------------------------------------------------------------------------

def test_generate_stage_probes_the_finetune_variants(tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                     one_thread: None) -> None:
    from lab.stages.generate import run as run_generate
    from lab.stages.intervene import run as run_intervene

    store, study = _study(tmp_path, tiny_llama_dir, tiny_corpus_dir, kind="finetune")
    _identify_artifacts(store, study)
    run_intervene(_ctx(store, study, "intervene"))
    run_generate(_ctx(store, study, "generate"))
    get = {(m.name, m.language, m.condition): m for m in store.metrics(study.id, "generate")}
    for lang in ("sw", "en"):
        for cond in ("baseline", "intervention", "control", "ft_lora_attn"):
            assert get[("language_fidelity", lang, cond)].n == 3
        for cond in ("intervention", "control", "ft_lora_attn"):
            assert ("language_fidelity_delta", lang, cond) in get
    art = json.loads((store.home.stage_dir(study.id, "generate") / "continuations.json").read_text(encoding="utf-8"))
    assert art["conditions"] == ["baseline", "intervention", "control", "ft_lora_attn"]
    assert art["intervention"]["variants"]["en"]["intervention"] == "ft_neurons-sw"
    texts = {c: [p["conditions"][c]["greedy"]["text"] for p in art["languages"]["sw"]["prompts"]]
             for c in art["conditions"]}
    assert texts["intervention"] != texts["baseline"]  # the merged neuron adapter changes the text


# ---- the report ----------------------------------------------------------------------------------

def test_report_has_the_fidelity_table_and_escaped_example_pairs(tmp_path: Path) -> None:
    from lab.report import write_export
    from lab.store import StageState, Store
    from protocols import load_protocol

    store = Store(tmp_path / "home")
    cfg = {"study": {"name": "rep", "protocol": "lsn-staged", "seed": 0, "description": ""},
           "model": {"id": "/m", "dtype": "auto", "device": "auto", "trust_remote_code": False},
           "languages": {"all": ["en", "sw"], "targets": ["sw"], "high_resource": ["en"]},
           "corpus": {"path": "/c", "tokens_per_language": 100}, "identify": {"method": "lape"},
           "intervention": {"kind": "test_time", "value": "zero"}, "evaluate": {"tasks": ["demo_qa"]}, "criteria": {}}
    sid = int(store.create_study(name="rep", protocol="lsn-staged", model_id="/m", seed=0, trust_remote_code=False,
                                 config=cfg, source_toml="", source_path="",
                                 stages=load_protocol("lsn-staged").stage_names).id)
    store.update_stage(sid, "generate", state=StageState.done, attempts=1, compute_seconds=3.0)
    rows = []
    for lang, base, inter in (("sw", 1.0, 0.25), ("en", 0.9, 0.9)):
        for cond, v in (("baseline", base), ("intervention", inter), ("control", base)):
            rows.append(dict(stage="generate", name="language_fidelity", language=lang, condition=cond, value=v,
                             ci_low=v, ci_high=v, n=4))
            rows.append(dict(stage="generate", name="degenerate_rate", language=lang, condition=cond, value=0.0, n=4))
            rows.append(dict(stage="generate", name="switch_to_other", language=lang, condition=cond,
                             value=0.5 if (lang, cond) == ("sw", "intervention") else 0.0, n=4))
            if cond != "baseline":
                rows.append(dict(stage="generate", name="language_fidelity_delta", language=lang, condition=cond,
                                 value=v - base, ci_low=v - base - 0.1, ci_high=min(v - base + 0.1, 0), n=4))
                rows.append(dict(stage="generate", name="continuation_changed", language=lang, condition=cond,
                                 value=0.5, n=4))
    store.put_metrics(sid, rows)
    g = lambda text, lang: {"greedy": {"text": text, "language": lang, "degenerate": None}, "samples": []}  # noqa: E731
    art = {"conditions": ["baseline", "intervention", "control"], "languages": {
        "en": {"prompts": [{"prompt": "Yesterday", "conditions": {"baseline": g("went home.", "en"),
                                                                "intervention": g("went out.", "en"),
                                                                "control": g("went home.", "en")}}]},
        "sw": {"prompts": [{"prompt": "Jana <b>jioni</b>", "conditions": {
            "baseline": g("watoto walikwenda sokoni.", "sw"), "intervention": g("<script>alert(1)</script> went", "en"),
            "control": g("watoto walikwenda sokoni.", "sw")}}],
               "summary": {"intervention": {"other_languages": {"en": 3, "it": 2, "es": 1, "pt": 1}}}}}}
    path = store.home.stage_dir(sid, "generate") / "continuations.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(art), encoding="utf-8")
    from lab.core.artifacts import sha256_file

    store.put_artifact(sid, "generate", "continuations.json", path, sha256_file(path), path.stat().st_size)
    study = store.study(sid)

    md = write_export(store, study, "md", tmp_path / "r.md").read_text(encoding="utf-8")
    section = md[md.index("**Generation side effects**"):md.index("**Reproducibility**")]
    assert "| sw | target | intervention | 4 | 25.0 | -75.0 | \\[-85.0, -65.0\\] |" in section
    assert "| en | high-resource | baseline | 4 | 90.0 | — |" in section
    # example pairs: the prompt whose language changed comes first, its text escaped
    assert section.index("| sw | Jana &lt;b&gt;jioni&lt;/b&gt;") < section.index("| en | Yesterday")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; went \\[en\\]" in section and "<script>" not in md
    html = write_export(store, study, "html", tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Generation side effects" in html and "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; went [en]" in html
    data = json.loads(write_export(store, study, "json", tmp_path / "r.json").read_text(encoding="utf-8"))
    assert {"study", "stages", "metrics", "artifacts", "verdict", "provenance"} <= set(data)  # DESIGN's keys
    gen = data["generation"]
    rec = next(r for r in gen["fidelity"] if r["language"] == "sw" and r["condition"] == "intervention")
    assert rec["language_fidelity"] == 0.25 and rec["fidelity_delta"] == -0.75 and rec["continuation_changed"] == 0.5
    assert rec["switch_to_other"] == 0.5 and (rec["language_fidelity_ci_low"], rec["language_fidelity_ci_high"]) == (0.25, 0.25)
    assert rec["top_other_languages"] == {"en": 3, "it": 2, "es": 1}  # the top three, largest first
    base = next(r for r in gen["fidelity"] if r["language"] == "sw" and r["condition"] == "baseline")
    assert base["top_other_languages"] == {}  # no summary for that condition: none named
    assert [e["language"] for e in gen["examples"]] == ["sw", "en"]
    assert gen["examples"][0]["intervention"] == {"text": "<script>alert(1)</script> went", "language": "en"}


def test_a_third_language_in_the_stage_scores_is_a_switch_and_is_named() -> None:
    """The stage's scoring on our own text: Swahili prompts whose continuations under the intervention
    come out in Italian and Portuguese (languages outside the study) are switches, not Swahili, and
    continuations.json's summary names those languages."""
    from lab.eval.fidelity import LanguageID, fidelity_rows
    from lab.eval.generation import Continuation, PromptResult
    from lab.stages.generate import score_language

    def res(prompt: str, greedy: str, sample: str) -> PromptResult:
        return PromptResult(prompt, Continuation(greedy, 12), [Continuation(sample, 12)])

    prompts = ["Kila asubuhi mama yangu", "Jana jioni watoto walikwenda", "Sokoni leo kuna"]
    sw = [" huamka mapema na kupika chai kwa ajili ya familia nzima kabla ya kwenda kazini.",
          " sokoni kununua mboga, matunda na samaki kwa ajili ya chakula cha jioni.",
          " watu wengi wanaouza viazi, ndizi na vitunguu kwa bei nafuu sana leo."]
    it = " e poi siamo andati tutti insieme a mangiare una pizza vicino alla stazione."
    pt = " e depois fomos todos juntos almoçar na casa da minha avó, perto do rio."
    by_cond = {"baseline": [res(p, s, s) for p, s in zip(prompts, sw)],
               "intervention": [res(prompts[0], it, pt), res(prompts[1], it, sw[1]), res(prompts[2], sw[2], sw[2])]}
    scores, entry = score_language(LanguageID(["en", "sw", "ur"]), "sw", by_cond)
    assert entry["summary"]["intervention"]["other_languages"] == {"it": 2, "pt": 1}
    assert entry["summary"]["baseline"]["other_languages"] == {}
    assert entry["prompts"][0]["conditions"]["intervention"]["greedy"]["language"] == "it"
    rows = {(r["name"], r["condition"]): r for r in
            fidelity_rows("sw", scores, compared=("intervention",), resamples=200, seed=1)}
    assert rows[("language_fidelity", "baseline")]["value"] == 1.0
    assert rows[("language_fidelity", "intervention")]["value"] == pytest.approx(0.5)  # 3 of 6 continuations
    assert rows[("switch_to_other", "intervention")]["value"] == pytest.approx(0.5)
    assert rows[("switch_to_english", "intervention")]["value"] == 0.0
    assert rows[("language_fidelity", "baseline")]["ci_low"] < 1.0  # Wilson: 3 of 3 prompts is not [1, 1]
