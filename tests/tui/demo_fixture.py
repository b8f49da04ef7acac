"""The demo study's results as a real headless `neuron-pilot demo` run stored them (tests/tui/data/
demo_results.json: stage states, gate recommendations, decisions, every metric row, every artifact
row with the JSON the Results tab reads), loaded into a fresh store so the UI can be shown on them
without minutes of compute. Times are fixed, so screens render the same on every run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

from lab.store import StageState, Store
from protocols import load_protocol

DATA = Path(__file__).parent / "data" / "demo_results.json"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def demo_data() -> dict[str, Any]:
    return json.loads(DATA.read_text(encoding="utf-8"))


def load_demo_study(home: Path, *, until: str | None = None, decisions: bool = True) -> int:
    """The demo study in `home`; `until` keeps only the stages up to that one (later ones pending),
    `decisions=False` leaves every gate waiting. Returns the study id."""
    data = demo_data()
    store = Store(home)
    protocol = load_protocol("lsn-staged")
    cfg = data["config"]
    study = store.create_study(name=data["name"], protocol="lsn-staged", model_id=cfg["model"]["id"], seed=0,
                               trust_remote_code=False, config=cfg, source_toml="", source_path="",
                               stages=protocol.stage_names)
    sid = int(study.id)  # type: ignore[arg-type]
    kept: list[str] = []
    for run in data["runs"]:
        kept.append(run["stage"])
        store.update_stage(sid, run["stage"], state=StageState(run["state"]), attempts=1,
                           compute_seconds=run["compute_seconds"],
                           progress_json=json.dumps({"done": 1, "total": 1, "unit": "steps"}),
                           recommendation_json=json.dumps(run["recommendation"]) if run["recommendation"] else None)
        if run["stage"] == until:
            break
    store.put_metrics(sid, [m for m in data["metrics"] if m["stage"] in kept])
    for art in data["artifacts"]:
        if art["stage"] not in kept:
            continue
        path = store.home.stage_dir(sid, art["stage"]) / art["name"]
        sha, size = art["sha256"], art["bytes"]
        if "content" in art:  # written as the stage wrote it: the Results tab re-hashes it before reading
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(art["content"], encoding="utf-8")
        store.put_artifact(sid, art["stage"], art["name"], path, sha, size)
    if decisions:
        for d in data["decisions"]:
            if d["stage"] in kept:
                store.add_decision(sid, d["stage"], d["verdict"], d["rationale"], d["by"])
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE study SET updated_at=:t WHERE id=:s"), {"t": NOW - dt.timedelta(hours=1), "s": sid})
    return sid
