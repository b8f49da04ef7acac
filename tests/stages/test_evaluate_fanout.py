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
