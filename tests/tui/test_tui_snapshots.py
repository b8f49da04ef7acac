"""Snapshots of the TUI at 80x24 from DB states built directly through the Store (fixed ids, a
frozen clock, pinned set of built stages), so every run renders the same screen."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
from pathlib import Path

import pytest
from sqlalchemy import text

from lab.store import StageState, Store
from lab.store.tables import utcnow
from tui.app import NeuronPilotApp
from protocols import load_protocol

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
SIZE = (80, 24)


def config(name: str, languages: list[str], targets: list[str]) -> dict:
    return {"study": {"name": name, "protocol": "lsn-staged", "seed": 0, "description": ""},
            "model": {"id": "/models/tiny-polyglot", "dtype": "auto", "device": "auto", "trust_remote_code": False},
            "languages": {"all": languages, "targets": targets,
                          "high_resource": [x for x in languages if x not in targets]},
            "corpus": {"path": "/data/corpora", "tokens_per_language": 20000},
            "identify": {"method": "lape"}, "intervention": {"kind": "test_time", "value": "p90"},
            "evaluate": {"tasks": ["demo_xnli"]}, "criteria": {}}


def new_study(store: Store, name: str, languages=("en", "fr", "sw"), targets=("sw",)) -> int:
    protocol = load_protocol("lsn-staged")
    study = store.create_study(name=name, protocol="lsn-staged", model_id="/models/tiny-polyglot", seed=0,
                               trust_remote_code=False, config=config(name, list(languages), list(targets)),
                               source_toml="", source_path="", stages=protocol.stage_names)
    return int(study.id)


def finish(store: Store, sid: int, stage: str, seconds: float, rec: dict | None = None) -> None:
    store.update_stage(sid, stage, state=StageState.done, attempts=1, compute_seconds=seconds,
                       progress_json=json.dumps({"done": 1, "total": 1, "unit": "steps"}),
                       recommendation_json=json.dumps(rec) if rec else None)


def freeze_times(store: Store, updated: dict[int, dt.datetime]) -> None:
    with store.engine.begin() as conn:
        for sid, t in updated.items():
            conn.execute(text("UPDATE study SET updated_at=:t WHERE id=:s"), {"t": t, "s": sid})


def criteria_and_model(store: Store, sid: int) -> None:
    finish(store, sid, "criteria", 0.1, {"verdict": "go", "reasons": ["criteria frozen before any result"], "numbers": {}})
    store.add_decision(sid, "criteria", "go", "thresholds agreed with the team", "alice")
    finish(store, sid, "model", 6.2)
    store.put_metrics(sid, [dict(stage="model", name="n_layers", value=2), dict(stage="model", name="d_ff", value=64),
                            dict(stage="model", name="parameters", value=43936)])


def decided_study(store: Store) -> int:
    """criteria → evaluate done with results and decisions; reproduce said revise but the team went on."""
    sid = new_study(store, "swahili-pilot", ("en", "fr", "de", "sw"), ("sw",))
    criteria_and_model(store, sid)
    finish(store, sid, "identify", 41.5, {"verdict": "go", "reasons": ["every target has at least 1 neurons (sw: 12)"],
                                          "numbers": {"neurons_sw": 12}})
    store.put_metrics(sid, [dict(stage="identify", name="neurons", language=lang, condition=cond, value=v)
                            for lang, n in (("en", 30), ("fr", 18), ("de", 21), ("sw", 12))
                            for cond, v in (("lape", n), ("control", n))])
    store.add_decision(sid, "identify", "go", "enough neurons for sw", "bob")
    finish(store, sid, "reproduce", 88.0, {"verdict": "revise", "reasons": ["median split-half stability on targets 0.41 (min 0.3)",
                                                                            "share of targets whose own neurons hurt them most 0.00 (min 0.5)"],
                                           "numbers": {"median_stability_targets": 0.41}})
    store.put_metrics(sid, [dict(stage="reproduce", name="stability_jaccard", language=lang, condition=cond, value=v)
                            for lang, a, b in (("en", 0.62, 0.02), ("fr", 0.55, 0.01), ("de", 0.48, 0.03), ("sw", 0.41, 0.02))
                            for cond, v in (("identified", a), ("control", b))])
    ppxc = {"languages": ["en", "fr", "de", "sw"], "baseline_ppl": {"en": 21.3, "fr": 25.1, "de": 27.9, "sw": 40.2},
            "identified": [[3.1, 0.4, 0.6, 0.2], [0.5, 2.7, 0.3, 0.1], [0.4, 0.5, 2.2, 0.3], [0.1, 0.2, 0.2, 1.9]],
            "control": [[0.1, 0.0, 0.1, 0.0], [0.0, 0.1, 0.0, 0.1], [0.1, 0.0, 0.1, 0.0], [0.0, 0.1, 0.0, 0.1]]}
    path = store.home.stage_dir(sid, "reproduce") / "ppxc.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(ppxc).encode()
    path.write_bytes(data)
    store.put_artifact(sid, "reproduce", "ppxc.json", path, hashlib.sha256(data).hexdigest(), len(data))
    store.add_decision(sid, "reproduce", "revise", "diagonal weak; continue at small scale", "alice")
    finish(store, sid, "intervene", 1.2)
    finish(store, sid, "evaluate", 301.0, {"verdict": "no-go", "reasons": ["✗ mean gain on targets +0.40 points (need ≥ 1.0)"],
                                          "numbers": {"mean_gain_points": 0.4}})
    rows = []
    for lang, base, inter, ctrl in (("en", 0.712, 0.705, 0.710), ("sw", 0.431, 0.435, 0.430)):
        rows += [dict(stage="evaluate", name="accuracy", language=lang, condition="baseline", value=base, n=500),
                 dict(stage="evaluate", name="accuracy", language=lang, condition="intervention", value=inter, n=500),
                 dict(stage="evaluate", name="accuracy", language=lang, condition="control", value=ctrl, n=500),
                 dict(stage="evaluate", name="accuracy_delta", language=lang, condition="intervention",
                      value=inter - base, ci_low=inter - base - 0.02, ci_high=inter - base + 0.02, n=500)]
    store.put_metrics(sid, rows)
    return sid


def running_study(store: Store) -> int:
    sid = new_study(store, "urdu-pilot", ("en", "hi", "ur"), ("ur",))
    criteria_and_model(store, sid)
    store.update_stage(sid, "identify", state=StageState.running, attempts=1, pid=os.getpid(),
                       host=socket.gethostname(), heartbeat_at=utcnow(),
                       progress_json=json.dumps({"done": 45, "total": 100, "unit": "blocks", "label": "ur"}))
    return sid


def make_app(home: Path, study: str | None = None) -> NeuronPilotApp:
    return NeuronPilotApp(home=str(home), study=study, clock=lambda: NOW)


@pytest.fixture
def lab_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    store = Store(home)
    a = decided_study(store)
    b = running_study(store)
    c = new_study(store, "fresh-study")
    freeze_times(store, {a: NOW - dt.timedelta(hours=3), b: NOW - dt.timedelta(seconds=20),
                         c: NOW - dt.timedelta(days=2)})
    return home


def test_home_screen(lab_home: Path, snap_compare) -> None:
    assert snap_compare(make_app(lab_home), terminal_size=SIZE)


def test_study_mid_run(lab_home: Path, snap_compare) -> None:
    async def settle(pilot) -> None:
        await pilot.pause(0.1)

    assert snap_compare(make_app(lab_home, "urdu-pilot"), terminal_size=SIZE, run_before=settle)


def test_study_after_decisions(lab_home: Path, snap_compare) -> None:
    async def show_reproduce(pilot) -> None:
        pilot.app.screen.select_stage("reproduce")
        await pilot.pause(0.1)

    assert snap_compare(make_app(lab_home, "swahili-pilot"), terminal_size=SIZE, run_before=show_reproduce)


def test_results_heatmap(lab_home: Path, snap_compare) -> None:
    async def results_of_reproduce(pilot) -> None:
        pilot.app.screen.select_stage("reproduce")
        await pilot.press("m")
        await pilot.pause(0.1)

    assert snap_compare(make_app(lab_home, "swahili-pilot"), terminal_size=SIZE, run_before=results_of_reproduce)


def test_results_accuracy_with_cis(lab_home: Path, snap_compare) -> None:
    async def results_of_evaluate(pilot) -> None:
        pilot.app.screen.select_stage("evaluate")
        await pilot.press("m")
        await pilot.pause(0.1)

    assert snap_compare(make_app(lab_home, "swahili-pilot"), terminal_size=SIZE, run_before=results_of_evaluate)
