"""Ingesting a stage unit's event file into lab.db: the only way a unit's results reach the store.

A stage unit (`python -m lab.worker`, on this machine or on a cluster node) never opens lab.db: SQLite
over a network filesystem corrupts under writers on several hosts. It appends JSON-lines events to
<home>/logs/study-N/STAGE.jsonl (each with `attempt` and `seq`) and rewrites a small heartbeat file
beside it. The coordinator calls `ingest_events`, which applies every event after the stage's cursor,
and advances the cursor, in one transaction. So ingesting twice, two ingesters at once, or an ingest
killed half-way (the transaction rolls back) all leave the same rows: exactly once.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from lab.core import faults
from lab.core.events import Event
from lab.store.tables import Artifact, IngestCursor, LogLine, Metric, StageRun, StageState, Study, UnitRun

READ_LIMIT = 64 << 20  # bytes per call; the rest waits for the next call


def _when(t: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(t), tz=dt.timezone.utc)


def _opt_float(v: Any) -> Optional[float]:
    return None if v is None else float(v)


def read_new_events(path: Path, offset: int) -> tuple[list[tuple[Event, int]], int]:
    """Complete lines from byte `offset` on: (event, offset after its line) pairs and the new offset. A
    half-written last line waits; lines that are not unit events (no seq) are skipped."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            if size < offset:  # the file was replaced: read it all, the (attempt, seq) key dedupes
                offset = 0
            fh.seek(offset)
            chunk = fh.read(READ_LIMIT)
    except FileNotFoundError:
        return [], offset
    out: list[tuple[Event, int]] = []
    pos = offset
    for raw in chunk.split(b"\n")[:-1]:  # the piece after the last newline is incomplete
        pos += len(raw) + 1
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            continue
        try:
            ev = Event.from_json(line)
        except (ValueError, TypeError):
            continue
        if isinstance(ev.data.get("seq"), int) and isinstance(ev.data.get("attempt"), int):
            out.append((ev, pos))
    return out, pos


def _apply(conn: Any, study_id: int, stage: str, ev: Event, unit: Optional[str] = None) -> None:
    d = ev.data
    row: Any = StageRun if unit is None else UnitRun  # a unit of a stage that runs as several has its own row
    where = (row.study_id == study_id) & (row.stage == stage)
    if unit is not None:
        where = where & (UnitRun.unit == unit)
    at = _when(ev.t)
    if ev.event == "started":
        conn.execute(update(row).where(where).values(
            state=StageState.running, pid=d.get("pid"), host=d.get("host"), attempts=int(d["attempt"]),
            started_at=at, heartbeat_at=at, finished_at=None, error=None, progress_json=None))
    elif ev.event == "progress":
        progress = {k: d.get(k) for k in ("done", "total", "unit", "label")}
        progress.update({k: v for k, v in d.items() if k not in progress and k not in ("attempt", "seq")})
        conn.execute(update(row).where(where).values(heartbeat_at=at, progress_json=json.dumps(progress)))
    elif ev.event == "log":
        message = str(d.get("message", "")) if unit is None else f"[{unit}] {d.get('message', '')}"
        conn.execute(insert(LogLine).values(study_id=study_id, stage=stage, level=str(d.get("level") or "info"),
                                            message=message, at=at))
    elif ev.event == "metric":
        row = dict(study_id=study_id, stage=stage, name=str(d["name"]), language=d.get("language") or "",
                   condition=d.get("condition") or "", value=float(d["value"]), ci_low=_opt_float(d.get("ci_low")),
                   ci_high=_opt_float(d.get("ci_high")), n=None if d.get("n") is None else int(d["n"]),
                   created_at=at)
        stmt = sqlite_insert(Metric).values(row)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["study_id", "stage", "name", "language", "condition"],
            set_={c: stmt.excluded[c] for c in ("value", "ci_low", "ci_high", "n", "created_at")}))
    elif ev.event == "artifact":
        row = dict(study_id=study_id, stage=stage, name=str(d["name"]), path=str(d["rel_path"]),
                   sha256=str(d["sha256"]), bytes=int(d["bytes"]), created_at=at)
        existing = conn.execute(select(Artifact).where(
            (Artifact.study_id == study_id) & (Artifact.stage == stage) & (Artifact.name == row["name"]))).first()
        if existing is None:
            conn.execute(insert(Artifact).values(row))
        else:
            conn.execute(update(Artifact).where(Artifact.id == existing.id).values(
                path=row["path"], sha256=row["sha256"], bytes=row["bytes"], created_at=at))
    elif ev.event in ("done", "error", "interrupted"):
        state = {"done": StageState.done, "error": StageState.failed, "interrupted": StageState.interrupted}[ev.event]
        conn.execute(update(row).where(where).values(
            state=state, pid=None, finished_at=at, heartbeat_at=at,
            error=None if ev.event == "done" else str(d.get("message") or ""),
            compute_seconds=float(d.get("compute_seconds") or 0.0), gpu_seconds=float(d.get("gpu_seconds") or 0.0)))


def ingest_events(engine: Any, study_id: int, stage: str, path: Path, beat: Optional[Path] = None,
                  unit: Optional[str] = None) -> list[Event]:
    """Apply the events of `path` that lie past the stage's cursor; return them (for relaying). The rows
    and the cursor move together, in one transaction; a concurrent ingester that got there first makes
    this one apply nothing. `beat` (the unit's heartbeat file) refreshes the stage's heartbeat_at. With
    `unit` (one unit of a stage that runs as several), the cursor is the unit's own (`STAGE.UNIT`), its
    state and heartbeat go to its UnitRun row, its log lines (prefixed with its name) to the stage's."""
    key_name = stage if unit is None else f"{stage}.{unit}"
    with engine.connect() as conn:
        cur = conn.execute(select(IngestCursor).where(
            (IngestCursor.study_id == study_id) & (IngestCursor.stage == key_name))).first()
    key0 = (cur.attempt, cur.seq) if cur is not None else (0, 0)
    offset0 = cur.offset if cur is not None else 0
    pairs, end = read_new_events(path, offset0)
    fresh = [(ev, pos) for ev, pos in pairs if (ev.data["attempt"], ev.data["seq"]) > key0]
    beat_at = _read_beat(beat)
    if not fresh and end == offset0 and beat_at is None:
        return []
    key = max(((ev.data["attempt"], ev.data["seq"]) for ev, _ in fresh), default=key0)
    with engine.begin() as conn:
        if cur is None:
            stmt = sqlite_insert(IngestCursor).values(study_id=study_id, stage=key_name, attempt=key[0], seq=key[1],
                                                       offset=end).on_conflict_do_nothing()
            claimed = conn.execute(stmt).rowcount == 1
        else:  # claim the range: only if nobody moved the cursor since we read it
            claimed = conn.execute(update(IngestCursor).where(
                (IngestCursor.study_id == study_id) & (IngestCursor.stage == key_name)
                & (IngestCursor.attempt == key0[0]) & (IngestCursor.seq == key0[1])
                & (IngestCursor.offset == offset0)).values(attempt=key[0], seq=key[1], offset=end)).rowcount == 1
        if not claimed:
            conn.rollback()
            return []
        for ev, _ in fresh:
            _apply(conn, study_id, stage, ev, unit)
            faults.point("db_commit")  # tests only: a kill inside the open transaction
        if beat_at is not None:
            table: Any = StageRun if unit is None else UnitRun
            where = (table.study_id == study_id) & (table.stage == stage) & (table.state == StageState.running)
            if unit is not None:
                where = where & (UnitRun.unit == unit)
            row = conn.execute(select(table).where(where)).first()
            if row is not None and (row.heartbeat_at is None or _aware(row.heartbeat_at) < beat_at):
                conn.execute(update(table).where(where).values(heartbeat_at=beat_at))
        if fresh:
            conn.execute(update(Study).where(Study.id == study_id).values(updated_at=dt.datetime.now(dt.timezone.utc)))
    return [ev for ev, _ in fresh]


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone.utc)


def _read_beat(beat: Optional[Path]) -> Optional[dt.datetime]:
    if beat is None:
        return None
    try:
        return _when(json.loads(beat.read_text(encoding="utf-8"))["t"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
