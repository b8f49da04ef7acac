"""The go/no-go report: JSON / Markdown / HTML / CSV exports, the headline numbers, cost, comparison,
escaping, secrets, and the HTML rendered in headless Chromium.

The studies are built directly in a Store through the real APIs (StageContext, the model stage,
lab.eval.stats' paired bootstrap and McNemar, the gate rules), with per-item results drawn from a seeded
RNG, so no test waits for the identify/reproduce/evaluate stages to run.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import sqlite3
import zlib
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lab.cli import main as cli_main
from lab.store import StageState, Store

NASTY = "Swahili <script>alert(\"pwn\")</script> & 'quotes'"
RATIONALE = "Looks <b>fine</b> & \"solid\" — <script>steal()</script>"
SECRET = "hf_TESTSECRETtoken0123456789abcdef"
LANGS = ["en", "fr", "de", "sw"]
SECONDS = {"criteria": 0.2, "model": 3.0, "identify": 40.0, "reproduce": 25.0, "intervene": 2.0, "evaluate": 90.0,
           "decide": 0.3}


def _study_toml(path: Path, name: str, model: Path, corpus: Path, description: str = "") -> Path:
    path.write_text(f"""
[study]
name = {json.dumps(name)}
seed = 7
description = {json.dumps(description)}

[model]
id = "{model}"

[languages]
all = {json.dumps(LANGS)}
targets = ["sw"]

[corpus]
path = "{corpus}"
tokens_per_language = 1000

[evaluate]
tasks = ["demo_xnli"]
""", encoding="utf-8")
    return path


def _ctx(store: Store, study: Any, stage: str) -> Any:
    from lab.stages.context import StageContext
    from protocols import load_protocol

    protocol = load_protocol(study.protocol, store.home.root)
    return StageContext(store, study, protocol, protocol.get(stage), out=io.StringIO())


def _finish(store: Store, study: Any, stage: str, *, gpu: bool = False) -> None:
    import datetime as dt

    from lab.gates.rules import recommend
    from protocols import load_protocol

    protocol = load_protocol(study.protocol, store.home.root)
    rec = recommend(store, study, protocol, protocol.get(stage))
    now = dt.datetime.now(dt.timezone.utc)
    secs = SECONDS[stage]
    store.update_stage(study.id, stage, state=StageState.done, started_at=now - dt.timedelta(seconds=secs),
                       finished_at=now, compute_seconds=secs, gpu_seconds=secs if gpu else 0.0,
                       recommendation_json=json.dumps(rec.to_dict()) if rec else None)


def _eval_rows(results: dict[str, dict[str, np.ndarray]], targets: list[str], seed: int) -> list[dict[str, Any]]:
    """The evaluate stage's metric rows (DESIGN.md names) from per-item correctness, via lab.eval.stats."""
    from lab.eval.stats import bootstrap_mean_ci, mcnemar_p, paired_bootstrap_diff_ci

    rows: list[dict[str, Any]] = []
    for lang, by_cond in results.items():
        for cond, correct in by_cond.items():
            ci = bootstrap_mean_ci(correct.astype(float), resamples=300, seed=seed)
            rows.append(dict(name="accuracy", language=lang, condition=cond, value=ci.value, ci_low=ci.low,
                             ci_high=ci.high, n=ci.n))
    for cond in ("intervention", "control"):
        for lang in [*results, "targets"]:
            langs = targets if lang == "targets" else [lang]
            treated = np.concatenate([results[x][cond] for x in langs]).astype(float)
            base = np.concatenate([results[x]["baseline"] for x in langs]).astype(float)
            strata = [x for x in langs for _ in results[x][cond]] if lang == "targets" else None
            d = paired_bootstrap_diff_ci(treated, base, resamples=300, seed=seed, strata=strata)
            rows.append(dict(name="accuracy_delta", language=lang, condition=cond, value=d.value, ci_low=d.low,
                             ci_high=d.high, n=d.n))
            rows.append(dict(name="mcnemar_p", language=lang, condition=cond, value=mcnemar_p(treated, base), n=d.n))
    return rows


def build_study(store: Store, tmp: Path, model: Path, corpus: Path, *, name: str, gain: float,
                until: str = "decide", decide_by: str = "Ana <ana@example.org>", gpu: bool = False) -> Any:
    """A study with real stored results up to `until`; `gain` = share of wrong sw items the intervention fixes."""
    from safetensors.numpy import save_file

    from lab.stages.model import run as model_stage
    from lab.study.create import create_study

    study = create_study(store, _study_toml(tmp / f"{zlib.crc32(name.encode())}.toml", name, model, corpus,
                                            description=f"Pilot for {name}"))
    order = ["criteria", "model", "identify", "reproduce", "intervene", "evaluate", "decide"]
    stages = order[: order.index(until) + 1]
    rng = np.random.default_rng(zlib.crc32(name.encode()) % 2**32)

    def decide(stage: str) -> None:
        rec = json.loads(store.stage_run(study.id, stage).recommendation_json or "null")
        if rec is not None and rec["verdict"] != "undecided":
            store.add_decision(study.id, stage, rec["verdict"], f"{RATIONALE} ({stage})", decide_by, rec)

    ctx = _ctx(store, study, "criteria")
    ctx.write_json("criteria.json", {"criteria": "frozen"})
    _finish(store, study, "criteria")
    decide("criteria")
    if "model" in stages:
        model_stage(_ctx(store, study, "model"))
        _finish(store, study, "model", gpu=gpu)
    if "identify" in stages:
        ctx = _ctx(store, study, "identify")
        n_layers, d_ff = 2, 64
        tokens = np.array([1000, 1000, 1000, 1000], dtype=np.int64)
        probs = rng.random((4, n_layers, d_ff)).astype(np.float32)
        tensors = {"act_prob": probs, "act_mean": probs, "act_p10": probs, "act_p90": probs, "tokens": tokens}
        ctx.write_artifact("activation_stats.safetensors", lambda p: save_file(
            tensors, str(p), metadata={"languages": ",".join(LANGS), "model": "tiny", "revision": "x", "hook": "act_fn"}))
        ident = {lang: [[i % n_layers, 3 * i + k] for i in range(4 + k)] for k, lang in enumerate(LANGS)}
        control = {lang: [[layer, (idx + 7) % d_ff] for layer, idx in pairs] for lang, pairs in ident.items()}
        ctx.write_json("neurons.json", {"method": "lape", "params": {}, "languages": ident})
        ctx.write_json("control.json", {"method": "random", "params": {}, "languages": control})
        ctx.metrics([dict(name="neurons", language=lang, condition=c, value=len(ident[lang]))
                     for lang in LANGS for c in ("lape", "control")])
        _finish(store, study, "identify", gpu=gpu)
        decide("identify")
    if "reproduce" in stages:
        ctx = _ctx(store, study, "reproduce")
        grid = [[2.0 if a == b else 0.3 for b in range(4)] for a in range(4)]
        cgrid = [[0.1 for _ in range(4)] for _ in range(4)]
        ctx.write_json("ppxc.json", {"languages": LANGS, "baseline_ppl": {x: 40.0 + i for i, x in enumerate(LANGS)},
                                     "identified": grid, "control": cgrid})
        rows = []
        for i, lang in enumerate(LANGS):
            rows += [dict(name="stability_jaccard", language=lang, condition="identified", value=0.6 + 0.05 * i),
                     dict(name="stability_jaccard", language=lang, condition="control", value=0.02),
                     dict(name="ppxc_diagonal_dominant", language=lang, condition="identified", value=1.0),
                     dict(name="ppxc_control_ratio", language=lang, condition="identified", value=20.0),
                     # own-language PPL increase minus the control's, % with its block-bootstrap interval
                     dict(name="ppl_increase_over_control", language=lang, condition="identified", value=150.0,
                          ci_low=120.0, ci_high=185.0, n=24)]
        ctx.metrics(rows)
        _finish(store, study, "reproduce", gpu=gpu)
        decide("reproduce")
    if "intervene" in stages:
        _ctx(store, study, "intervene").write_json("intervention.json", {"value": "p90", "check": {"passed": True}})
        _finish(store, study, "intervene", gpu=gpu)
    if "evaluate" in stages:
        n = 200
        results = {}
        for lang in ["sw", "en", "fr", "de"]:
            base = rng.random(n) < 0.5
            fix = (~base) & (rng.random(n) < (gain if lang == "sw" else 0.02))
            inter = base | fix
            ctrl = base.copy()
            flip = rng.choice(n, 3, replace=False)
            ctrl[flip] = ~ctrl[flip]
            results[lang] = {"baseline": base, "intervention": inter, "control": ctrl}
        ctx = _ctx(store, study, "evaluate")
        ctx.metrics(_eval_rows(results, ["sw"], seed=7))
        # the per-item outcomes the evaluate gate decides on (paired_items.json, version 1); the
        # high-resource "intervention" is each language under sw's intervention (deployment spillover)
        as_list = lambda a: a.astype(float).tolist()  # noqa: E731
        ctx.write_json("paired_items.json", {
            "version": 1, "metric": "acc", "item_keys": {x: [f"demo_xnli_{x}:{i}" for i in range(n)] for x in results},
            "targets": {"sw": {c: as_list(results["sw"][c]) for c in ("baseline", "intervention", "control")}},
            "high_resource": {"sw": {h: {c: as_list(results[h][c]) for c in ("baseline", "intervention")}
                                     for h in ("en", "fr", "de")}}})
        _finish(store, study, "evaluate", gpu=gpu)
        decide("evaluate")
    if "decide" in stages:
        _finish(store, study, "decide")
    return store.study(study.id)


# ---- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_corpus_dir: Path) -> dict[str, Any]:
    """One lab home holding a finished go study, a finished no-go study and one stopped after identify."""
    tmp = tmp_path_factory.mktemp("report")
    store = Store(tmp / "home")
    go = build_study(store, tmp, tiny_llama_dir, tiny_corpus_dir, name=NASTY, gain=0.5)
    nogo = build_study(store, tmp, tiny_llama_dir, tiny_corpus_dir, name="flat-pilot", gain=0.0, gpu=True)
    early = build_study(store, tmp, tiny_llama_dir, tiny_corpus_dir, name="early-stop", gain=0.0, until="identify")
    return {"store": store, "home": tmp / "home", "go": go, "nogo": nogo, "early": early, "tmp": tmp}


@pytest.fixture(scope="module")
def exports(lab: dict[str, Any]) -> dict[str, Path]:
    """Every format of the go study, and the go-vs-no-go comparison, exported once through the CLI
    with an HF token in the environment (the secrets test checks none of them carries it)."""
    out = lab["tmp"] / "exports"
    go, nogo = str(lab["go"].id), str(lab["nogo"].id)
    paths: dict[str, Path] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", SECRET)
        mp.setenv("HUGGING_FACE_HUB_TOKEN", SECRET)
        for fmt in ("json", "md", "html", "csv"):
            paths[fmt] = _export(lab, go, "--format", fmt, "-o", str(out / f"go report.{fmt}"))
        for fmt in ("csv", "md", "html", "json"):
            paths[f"compare.{fmt}"] = _export(lab, "--compare", go, "flat-pilot", "--format", fmt,
                                              "-o", str(out / f"compare.{fmt}"))
    return paths


def _db(lab: dict[str, Any]) -> sqlite3.Connection:
    return sqlite3.connect(lab["home"] / "lab.db")


def _export(lab: dict[str, Any], *args: str) -> Path:
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        code = cli_main(["export", *args, "--home", str(lab["home"])])
    assert code == 0
    return Path(out.getvalue().strip().splitlines()[-1])


# ---- headline: every number recomputed straight from the DB -------------------------------------

def _expected_headline(con: sqlite3.Connection, sid: int) -> dict[str, Any]:
    def one(lang: str, cond: str) -> tuple[float, float, float]:
        return con.execute("SELECT value, ci_low, ci_high FROM metric WHERE study_id=? AND stage='evaluate' AND "
                           "name='accuracy_delta' AND language=? AND condition=?", (sid, lang, cond)).fetchone()

    gain, lo, hi = one("targets", "intervention")
    ctrl = one("targets", "control")[0]
    # a target's intervention on the high-resource languages (spillover_<target>) when the study has it
    high = con.execute("SELECT language, value FROM metric WHERE study_id=? AND name='accuracy_delta' AND "
                       "condition LIKE 'spillover!_%' ESCAPE '!' AND language IN ('en','fr','de')", (sid,)).fetchall() \
        or con.execute("SELECT language, value FROM metric WHERE study_id=? AND name='accuracy_delta' AND "
                       "condition='intervention' AND language IN ('en','fr','de')", (sid,)).fetchall()
    worst = min(high, key=lambda r: r[1])
    return {"gain": 100 * gain, "lo": 100 * lo, "hi": 100 * hi, "over": 100 * (gain - ctrl),
            "worst_lang": worst[0], "worst": 100 * worst[1]}


def _expected_verdict(con: sqlite3.Connection, sid: int) -> str:
    gated = ["criteria", "identify", "reproduce", "evaluate"]
    latest = {}
    for stage, verdict in con.execute("SELECT stage, verdict FROM decision WHERE study_id=? ORDER BY id", (sid,)):
        latest[stage] = verdict
    got = [latest.get(s, "undecided") for s in gated]
    return "no-go" if "no-go" in got else ("go" if all(v == "go" for v in got) else "undecided")


@pytest.mark.parametrize("which", ["go", "nogo"])
def test_headline_numbers_match_the_database(lab: dict[str, Any], which: str) -> None:
    from lab.report import headline

    study = lab[which]
    h = headline(lab["store"], study)
    with _db(lab) as con:
        exp = _expected_headline(con, study.id)
        verdict = _expected_verdict(con, study.id)
    assert h["verdict"] == verdict == ("go" if which == "go" else "no-go")
    assert h["mean_gain_points"] == pytest.approx(exp["gain"], abs=1e-9)
    assert h["mean_gain_ci_low_points"] == pytest.approx(exp["lo"], abs=1e-9)
    assert h["mean_gain_ci_high_points"] == pytest.approx(exp["hi"], abs=1e-9)
    assert h["gain_over_control_points"] == pytest.approx(exp["over"], abs=1e-9)
    assert h["worst_high_resource"]["language"] == exp["worst_lang"]
    assert h["worst_high_resource"]["points"] == pytest.approx(exp["worst"], abs=1e-9)
    assert h["sentence"].startswith("Go:" if which == "go" else "No-go:")
    assert f"{exp['gain']:+.2f} points" in h["sentence"]  # rounded as the tables round points
    assert h["model"]["revision"].startswith("sha256:")
    assert h["languages"]["targets"] == ["sw"] and h["languages"]["high_resource"] == ["en", "fr", "de"]
    assert "demo_xnli" in h["question"] and "random neurons" in h["question"]


def test_cost_and_return_from_stage_times(lab: dict[str, Any]) -> None:
    from lab.report.cost import FullSize, cost
    from lab.report.facts import load_facts
    from lab.report.headline import headline

    for which, unit in (("go", "CPU-hour"), ("nogo", "GPU-hour")):
        study = lab[which]
        facts = load_facts(lab["store"], study)
        c = cost(facts, headline(lab["store"], study, facts), FullSize.stated_as(tokens=50_000, items=500))
        with _db(lab) as con:
            total, gpu = con.execute("SELECT sum(compute_seconds), sum(gpu_seconds) FROM stagerun WHERE study_id=?",
                                     (study.id,)).fetchone()
            gain = 100 * con.execute("SELECT value FROM metric WHERE study_id=? AND name='accuracy_delta' AND "
                                     "language='targets' AND condition='intervention'", (study.id,)).fetchone()[0]
            items = con.execute("SELECT sum(n) FROM metric WHERE study_id=? AND name='accuracy'", (study.id,)).fetchone()[0]
        hours = (gpu if gpu else total) / 3600
        assert c["unit"] == unit
        assert c["total_compute_seconds"] == pytest.approx(total)
        assert c["points_per_hour"] == pytest.approx(gain / hours)
        thr = c["throughput"]
        assert thr["identify"]["tokens"] == 4000  # the activation_stats tokens tensor
        assert thr["identify"]["tokens_per_second"] == pytest.approx(4000 / SECONDS["identify"])
        assert thr["evaluate"]["items"] == items == 4 * 3 * 200
        fs = c["full_scale"]
        assert fs["estimate"] is True and fs["size_stated"] == {"tokens": True, "items": True}
        assert fs["identify_seconds"] == pytest.approx(50_000 * 4 / (4000 / SECONDS["identify"]))
        assert fs["evaluate_seconds"] == pytest.approx(500 * 4 * 3 / (items / SECONDS["evaluate"]))
        other = sum(v for k, v in SECONDS.items() if k not in ("identify", "evaluate"))
        assert fs["total_seconds"] == pytest.approx(fs["identify_seconds"] + fs["evaluate_seconds"] + other)
        assert any("linearly" in a for a in fs["assumptions"])


# ---- the four formats ----------------------------------------------------------------------------

def _walk_shape(data: dict[str, Any]) -> None:
    """Every key DESIGN.md's JSON export names, with the right types."""
    assert set(data) >= {"study", "stages", "metrics", "artifacts", "verdict", "provenance"}
    st = data["study"]
    assert set(st) >= {"id", "name", "protocol", "model", "languages"}
    assert set(st["model"]) >= {"id", "revision", "dtype", "device"}
    assert set(st["languages"]) >= {"all", "targets"}
    for s in data["stages"]:
        assert set(s) >= {"name", "status", "started_at", "finished_at", "compute_seconds", "decision"}
        if s["decision"] is not None:
            assert set(s["decision"]) >= {"verdict", "rationale", "by", "at"}
            assert s["decision"]["verdict"] in ("go", "no-go", "revise")
    for m in data["metrics"]:
        assert set(m) >= {"stage", "name", "language", "condition", "value", "ci_low", "ci_high", "n"}
    for a in data["artifacts"]:
        assert set(a) >= {"stage", "name", "path", "sha256", "bytes"}
        assert re.fullmatch(r"[0-9a-f]{64}", a["sha256"])
    assert data["verdict"]["decision"] in ("go", "no-go", "undecided")
    assert isinstance(data["verdict"]["reasons"], list)
    assert set(data["provenance"]) >= {"python", "packages", "git", "seed", "hardware"}


def test_json_export_has_the_design_shape(lab: dict[str, Any], exports: dict[str, Path]) -> None:
    data = json.loads(exports["json"].read_text(encoding="utf-8"))
    _walk_shape(data)
    assert data["study"]["name"] == NASTY
    assert data["verdict"]["decision"] == "go" and data["headline"]["verdict"] == "go"
    assert data["provenance"]["seed"] == 7
    # every gated stage carries the rule's verdict and its evidence; ungated ones carry null
    gates = {st["name"]: st["gate"] for st in data["stages"]}
    assert gates["model"] is None and gates["intervene"] is None
    assert {k for k, g in gates.items() if g} == {"criteria", "identify", "reproduce", "evaluate", "decide"}
    ev = gates["evaluate"]
    assert ev["recommendation"] == "go"
    n = ev["numbers"]
    assert n["gain_ci_points"][0] <= n["gain_points"] <= n["gain_ci_points"][1]
    assert n["gain_over_control_ci_points"][0] > 0
    assert set(n["high_resource"]) == {"en", "fr", "de"}
    assert all(len(v["ci_points"]) == 2 and "change_points" in v for v in n["high_resource"].values())
    assert n["confidence"] == 0.95 and n["multiplicity"] == "bonferroni"
    assert n["items_per_language"] == {"sw": 200, "en": 200, "fr": 200, "de": 200}
    assert n["thresholds"]["min_gain_points"] == 1.0 and n["thresholds"]["max_regression_points"] == 0.5
    # the gate's gain is the same paired difference the metric rows hold (same items, same mean)
    delta = next(m for m in data["metrics"] if m["name"] == "accuracy_delta" and m["language"] == "sw"
                 and m["condition"] == "intervention")
    assert n["gain_points"] == pytest.approx(100 * delta["value"])
    assert data["headline"]["evaluate_gate"]["recommendation"] == "go"
    assert data["study"]["trust_remote_code"] is False
    assert all(a["check"] == "ok" for a in data["artifacts"])
    with _db(lab) as con:
        n_metrics = con.execute("SELECT count(*) FROM metric WHERE study_id=?", (lab["go"].id,)).fetchone()[0]
        shas = dict(((s, n), h) for s, n, h in con.execute(
            "SELECT stage, name, sha256 FROM artifact WHERE study_id=?", (lab["go"].id,)))
    assert len(data["metrics"]) == n_metrics
    assert {(a["stage"], a["name"]): a["sha256"] for a in data["artifacts"]} == shas
    langs = [f["language"] for f in data["provenance"]["data"]["corpus"]["files"]]
    assert langs == LANGS


def test_csv_round_trips_through_pandas(lab: dict[str, Any], exports: dict[str, Path]) -> None:
    df = pd.read_csv(exports["csv"], keep_default_na=False, na_values=[""], dtype={"language": str, "condition": str})
    assert list(df.columns) == ["stage", "name", "language", "condition", "value", "ci_low", "ci_high", "n"]
    with _db(lab) as con:
        db = pd.read_sql_query("SELECT stage, name, language, condition, value, ci_low, ci_high, n FROM metric "
                               "WHERE study_id=? ORDER BY id", con, params=(lab["go"].id,))
    assert len(df) == len(db) > 40
    df = df.fillna({"language": "", "condition": ""})
    pd.testing.assert_frame_equal(df.reset_index(drop=True), db.reset_index(drop=True), check_dtype=False)


def test_markdown_has_headline_tables_and_chart_files(exports: dict[str, Path]) -> None:
    out = exports["md"]
    text = out.read_text(encoding="utf-8")
    h = json.loads(exports["json"].read_text(encoding="utf-8"))["headline"]
    assert "## Verdict: GO" in text
    assert f"{h['mean_gain_points']:+.2f}" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(Path(x).name for x in links) == ["accuracy.png", "gate_intervals.png", "neurons_per_layer.png",
                                                   "ppxc.png"]
    # the evaluate gate's intervals, as in the JSON export
    gate = next(st for st in json.loads(exports["json"].read_text(encoding="utf-8"))["stages"]
                if st["name"] == "evaluate")["gate"]
    lo, hi = gate["numbers"]["gain_ci_points"]
    assert "Evaluate gate: intervals against thresholds" in text
    row = f"| mean gain on targets | {gate['numbers']['gain_points']:+.2f} | \\[{lo:+.2f}, {hi:+.2f}\\] | 95% | ≥ +1.00 | go |"
    assert row in text
    for link in links:
        assert link.startswith("go%20report_charts/")
        png = (out.parent / link.replace("%20", " ")).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    assert "| language | role | n | baseline | intervention | control |" in text
    assert "ESTIMATE" in text and "points per CPU-hour" in text


def test_html_escapes_user_text(exports: dict[str, Path]) -> None:
    text = exports["html"].read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert "<b>fine</b>" not in text
    assert "&lt;script&gt;alert(&quot;pwn&quot;)&lt;/script&gt; &amp; &#x27;quotes&#x27;" in text
    assert "Looks &lt;b&gt;fine&lt;/b&gt; &amp; &quot;solid&quot;" in text
    assert "Ana &lt;ana@example.org&gt;" in text
    assert text.count('src="data:image/png;base64,') == 4
    assert "@media print" in text
    assert not re.search(r'(src|href)="(https?:)?//', text)  # self-contained: nothing fetched


def test_no_secret_from_the_environment_in_any_format(exports: dict[str, Path]) -> None:
    files = list(exports.values()) + list(exports["md"].parent.glob("*_charts/*.png"))
    assert len(files) == 8 + 4
    for path in files:
        blob = path.read_bytes()
        assert SECRET.encode() not in blob, path
        assert SECRET[:12].encode() not in blob, path
        assert base64.b64encode(SECRET.encode())[:16] not in blob, path
    data = json.loads(exports["json"].read_text(encoding="utf-8"))
    assert "HF_TOKEN" not in json.dumps(data)


def test_study_stopped_early_still_exports(lab: dict[str, Any]) -> None:
    study = lab["early"]
    data = json.loads(_export(lab, str(study.id), "--format", "json", "-o", str(lab["tmp"] / "e.json")).read_text())
    _walk_shape(data)
    assert data["verdict"]["decision"] == "undecided"
    assert data["headline"]["mean_gain_points"] is None
    assert data["headline"]["sentence"].startswith("Undecided: no decision yet on reproduce, evaluate")
    assert data["cost"]["full_scale"]["total_seconds"] is None
    assert data["cost"]["full_scale"]["missing"]
    out = lab["tmp"] / "early" / "e.md"
    text = _export(lab, str(study.id), "--format", "md", "-o", str(out)).read_text(encoding="utf-8")
    assert "No evaluation results" in text
    assert [p.name for p in (out.parent / "e_charts").iterdir()] == ["neurons_per_layer.png"]
    html_text = _export(lab, str(study.id), "--format", "html", "-o", str(lab["tmp"] / "e.html")).read_text()
    assert html_text.count("data:image/png;base64,") == 1


def test_tampered_artifact_is_flagged(lab: dict[str, Any], tmp_path: Path, tiny_llama_dir: Path,
                                      tiny_corpus_dir: Path) -> None:
    store = Store(tmp_path / "home")
    study = build_study(store, tmp_path, tiny_llama_dir, tiny_corpus_dir, name="tampered", gain=0.3, until="reproduce")
    row = store.artifact(study.id, "reproduce", "ppxc.json")
    (store.home.root / row.path).write_text('{"languages": ["en"], "identified": [[99.0]]}', encoding="utf-8")
    from lab.report import summary

    data = summary(store, study)
    checks = {(a["stage"], a["name"]): a["check"] for a in data["artifacts"]}
    assert checks[("reproduce", "ppxc.json")] == "modified"
    assert checks[("identify", "neurons.json")] == "ok"
    path = store.home.exports / "t.html"
    from lab.report import write_export

    text = write_export(store, study, "html", path).read_text()
    assert "WARNING: these artifacts no longer match" in text and "reproduce/ppxc.json" in text
    assert "own ΔPPL (identified)" not in text and "+99.0" not in text  # its numbers were not used
    assert text.count("data:image/png;base64,") == 1  # neurons per layer only: no PPXC heatmap


def test_comparison_side_by_side(lab: dict[str, Any], exports: dict[str, Path]) -> None:
    from lab.report import headline

    go, nogo = lab["go"], lab["nogo"]
    df = pd.read_csv(exports["compare.csv"]).set_index("field")
    hg, hn = headline(lab["store"], go), headline(lab["store"], nogo)
    col_go, col_no = f"#{go.id} {NASTY}", f"#{nogo.id} flat-pilot"
    delta = f"Δ {col_no} − {col_go}"
    assert list(df.columns) == [col_go, col_no, delta]
    assert df.loc["verdict", col_go] == "go" and df.loc["verdict", col_no] == "no-go"
    for row, key in (("mean gain on targets (pts)", "mean_gain_points"),
                     ("gain over control (pts)", "gain_over_control_points")):
        assert float(df.loc[row, col_go]) == pytest.approx(hg[key])
        assert float(df.loc[row, col_no]) == pytest.approx(hn[key])
        assert float(df.loc[row, delta]) == pytest.approx(hn[key] - hg[key])
    assert df.loc["hour unit", col_no] == "GPU-hour" and df.loc["hour unit", col_go] == "CPU-hour"
    assert pd.isna(df.loc["compute (hours)", delta])  # GPU-hours minus CPU-hours would mean nothing
    for fmt in ("md", "html"):
        text = exports[f"compare.{fmt}"].read_text(encoding="utf-8")
        assert f"{hn['mean_gain_points'] - hg['mean_gain_points']:+.2f}" in text
        if fmt == "html":  # the no-go sentence carries the decision's rationale, escaped
            assert html.escape(hn["sentence"]) in text and "<b>fine</b>" not in text
        assert "<script>" not in text
    data = json.loads(exports["compare.json"].read_text(encoding="utf-8"))
    assert [d["study"]["id"] for d in data["studies"]] == [go.id, nogo.id]
    assert data["studies"][1]["headline"]["mean_gain_points"] == pytest.approx(hn["mean_gain_points"])


def test_export_bad_input_exits_2(lab: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(lab["home"])]
    cases = [["export", str(lab["go"].id), "--format", "pdf"],
             ["export", "--format", "md"],
             ["export", str(lab["go"].id), "--compare", "1", "2"],
             ["export", "--compare", str(lab["go"].id)],
             ["export", "--compare", str(lab["go"].id), str(lab["go"].id)],
             ["export", str(lab["go"].id), "--full-tokens", "0"],
             ["export", "no-such-study"]]
    for argv in cases:
        assert cli_main(argv + home) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, argv


# ---- the HTML in a real browser ------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
PROBE = ("<script>addEventListener('load', () => { const imgs = [...document.images];"
         " document.body.dataset.images = imgs.length;"
         " document.body.dataset.decoded = imgs.every(i => i.complete && i.naturalWidth > 0) ? 'yes' : 'no';"
         " console.log('probe-ran ' + imgs.length); });</script>")


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr",
             "--v=0", "--virtual-time-budget=5000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90,
                          env={k: v for k, v in os.environ.items() if k != "HF_TOKEN"})


def test_html_renders_in_headless_chromium(exports: dict[str, Path], tmp_path: Path) -> None:
    assert Path(CHROMIUM).is_file(), "install chromium: apt-get install -y chromium (.ci/run does it)"
    page = exports["html"]
    probed = tmp_path / "probed.html"  # the shipped HTML has no script; the probe is added to a copy
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    res = _chromium(["--dump-dom", probed.as_uri()], tmp_path / "profile-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'data-images="4"' in res.stdout and 'data-decoded="yes"' in res.stdout
    assert res.stdout.count("<img ") == 4
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line]
    assert any("probe-ran 4" in line for line in console), res.stderr[-2000:]  # the console log is captured
    assert not [line for line in console if "Uncaught" in line or ":ERROR:" in line]
    assert "Refused to" not in res.stderr and "Failed to load" not in res.stderr

    shot = tmp_path / "shot.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1200,1800", page.as_uri()], tmp_path / "profile-shot")
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    from matplotlib.image import imread

    img = imread(str(shot))
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    gray = img[..., :3].mean(axis=2)
    assert gray.std() > 0.05  # not a blank page
    assert (gray < 0.5).mean() > 0.005  # some dark text/chart ink is on it
