"""Evaluation fan-out: with [compute] max_parallel = 2 the evaluate stage's distinct (language, condition)
runs are scored by two units in parallel, and the stage's own unit summarises them: the same metric rows
and artifacts (paired_items.json included, one bootstrap with the same seed) as the sequential run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from lab.store import StageState, Store
from tests.run.slurm_pilot import artifacts, make_study, metrics, one_thread, run_through  # noqa: F401


@pytest.mark.slow
def test_fanned_out_evaluate_equals_the_sequential_one(one_thread: Any, tiny_llama_dir: Path,  # noqa: F811
                                                       tiny_corpus_dir: Path, tmp_path: Path) -> None:
    seq, sid = make_study(tmp_path, "pilot", tiny_llama_dir, tiny_corpus_dir)
    run_through(seq, sid, "intervene")
    shutil.copytree(seq.home.root, tmp_path / "fanned")  # the same study up to evaluate, in a second home
    fan = Store(tmp_path / "fanned")
    cfg = json.loads(fan.study(sid).config_json)
    cfg["compute"]["max_parallel"] = 2
    with fan.engine.begin() as conn:
        conn.execute(text("UPDATE study SET config_json=:c WHERE id=:i"), {"c": json.dumps(cfg), "i": sid})

    run_through(seq, sid, "evaluate")
    run_through(fan, sid, "evaluate")

    units = {u.unit: u for u in fan.unit_runs(sid, "evaluate")}
    assert set(units) == {"runs-1-of-2", "runs-2-of-2"} and all(u.state == StageState.done for u in units.values())
    assert not seq.unit_runs(sid, "evaluate")  # max_parallel = 1: one unit, as before
    scored = [line.message for line in fan.logs(sid, "evaluate", limit=1000) if "scored" in line.message]
    assert len(scored) == 2 and all(" 0 of " not in m for m in scored)  # both units scored runs
    assert metrics(fan, sid, "evaluate") == metrics(seq, sid, "evaluate")
    got, ref = artifacts(fan, sid, "evaluate"), artifacts(seq, sid, "evaluate")
    assert "paired_items.json" in ref and got["paired_items.json"] == ref["paired_items.json"]
    assert got == ref


def test_fanned_out_finetune_variants_equal_the_sequential_ones(tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fine-tune intervene with max_parallel = 2: two units each train every other adapter (here in this
    process, as their workers would), then the stage's own unit finds them trained and writes the plan:
    the same adapters (bytes), metric rows and plan as training them one after another (the plan's
    resumed_from says the stage's own unit found them finished)."""
    from lab.stages import part_info, unit_parts
    from lab.stages.intervene import run as run_intervene
    from lab.study.create import create_study
    from tests.stages.test_finetune_stage import CONTROL, NEURONS, STUDY_TOML, _ctx

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    homes = {}
    for mode in ("sequential", "fanned"):
        study_file = tmp_path / f"{mode}.toml"
        study_file.write_text(STUDY_TOML.format(model=tiny_llama_dir, corpus=tiny_corpus_dir)
                              + ("\n[compute]\nmax_parallel = 2\n" if mode == "fanned" else ""), encoding="utf-8")
        store = Store(tmp_path / mode)
        study = create_study(store, study_file)
        ident = _ctx(store, study, "identify")
        ident.write_json("neurons.json", {"method": "lape", "params": {}, "languages": NEURONS})
        ident.write_json("control.json", {"method": "random", "params": {}, "languages": CONTROL})
        parts = unit_parts("intervene", json.loads(study.config_json))
        assert parts == ([] if mode == "sequential" else ["variants-1-of-2", "variants-2-of-2"])
        for part in parts:
            ctx = _ctx(store, study, "intervene")
            ctx.part = part_info(part)
            run_intervene(ctx)
        assert not store.artifacts(study.id, "intervene")  # the units write no artifact of the stage
        run_intervene(_ctx(store, study, "intervene"))
        homes[mode] = (store, int(study.id))  # type: ignore[arg-type]

    (seq, sid), (fan, fid) = homes["sequential"], homes["fanned"]
    trained = [line.message for line in fan.logs(fid, "intervene", limit=1000) if line.message.startswith("trained ")]
    assert len(trained) == 5  # each adapter trained once, by one of the two units
    rows = lambda st, i: sorted((m.name, m.language, m.condition, m.value) for m in st.metrics(i, "intervene"))  # noqa: E731
    assert rows(fan, fid) == rows(seq, sid)
    digests = lambda st, i: {a.name: a.sha256 for a in st.artifacts(i, "intervene") if a.name.startswith("adapters/")}  # noqa: E731
    assert len(digests(seq, sid)) == 15 and digests(fan, fid) == digests(seq, sid)
    plans = [json.loads((st.home.stage_dir(i, "intervene") / "intervention.json").read_text()) for st, i in
             ((seq, sid), (fan, fid))]
    for plan in plans:
        for v in plan["variants"]:
            v.pop("resumed_from")
    assert plans[0] == plans[1]
