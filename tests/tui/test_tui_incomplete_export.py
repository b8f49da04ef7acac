"""An export of a pilot that has not reached its end (quitting `neuron-pilot demo` at its first gate, an
export from the UI half-way) says `incomplete` at the top: the JSON summary's first key, the report's
title; a pilot that a gate ended has reached its end and carries no marker."""

from __future__ import annotations

import json
from pathlib import Path

from lab.report import write_export
from lab.store import Store
from tests.tui.demo_fixture import load_demo_study


def stopped_at_evaluate(home: Path) -> int:
    sid = load_demo_study(home, decisions=False)
    store = Store(home)
    for stage in ("criteria", "identify", "reproduce"):
        store.add_decision(sid, stage, "go", "checked", "ana")
    store.add_decision(sid, "evaluate", "no-go", "the gain interval lies below the 6-point threshold", "ana")
    return sid


def test_a_partial_export_says_incomplete_at_the_top(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sid = load_demo_study(home, until="identify", decisions=False)
    store = Store(home)
    store.add_decision(sid, "criteria", "go", "checked", "ana")
    data = json.loads(write_export(store, store.study(sid), "json").read_text(encoding="utf-8"))
    assert next(iter(data)) == "incomplete"
    assert data["incomplete"] == "the pilot has not finished: the identify gate waits for a decision"
    md = write_export(store, store.study(sid), "md").read_text(encoding="utf-8")
    assert md.startswith("# INCOMPLETE Go/no-go report") and "Incomplete: the pilot has not finished" in md
    # a pilot that a gate ended has reached its end: no marker
    stopped = stopped_at_evaluate(tmp_path / "stopped")
    store2 = Store(tmp_path / "stopped")
    data = json.loads(write_export(store2, store2.study(stopped), "json").read_text(encoding="utf-8"))
    assert "incomplete" not in data and not write_export(store2, store2.study(stopped), "md").read_text(
        encoding="utf-8").startswith("# INCOMPLETE")
