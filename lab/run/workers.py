"""The one API for a stage's unit once it runs: submit one, find the live ones, follow, cancel, recover.

A unit (`python -m lab.worker`, lab.run.worker) runs where its executor put it (lab.run.executor: a
process in its own session here, or a Slurm job) and outlives whoever started it. It never opens
lab.db: its events reach the rows when they are ingested (lab.store.ingest), which the coordinator
does while it follows the unit, and `recover` does for units whose coordinator is gone. The runner and
the TUI use only this module (and the executors) for units; nothing else touches pids, signals or
job ids. Never imports torch.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Optional

from lab.core.errors import BadInput
from lab.core.events import Event
from lab.run.compute import executor_for
from lab.run.executor import Executor, LocalExecutor, LocalUnit, StageUnit, worker_command
from lab.run.unit import prepare_unit
from lab.store.tables import utcnow
from lab.store import StageRun, StageState, Store
from lab.store.tables import UnitRun
from lab.store.units import unit_key


class EventLog:
    """Tail of a stage's JSON-lines event log (<home>/logs/study-N/<stage>.jsonl): how a unit is watched
    for display (ingestion into lab.db keeps its own cursor, lab.store.ingest)."""

    def __init__(self, path: Path, from_start: bool = False) -> None:
        self.path = path
        self.offset = 0 if from_start or not path.exists() else path.stat().st_size
        self._partial = b""

    def poll(self, max_bytes: int = 1 << 20) -> list[Event]:
        """Events appended since the last poll (a half-written last line waits for the next poll)."""
        try:
            with open(self.path, "rb") as fh:
                size = fh.seek(0, 2)
                if size < self.offset:  # the log was replaced; start over
                    self.offset, self._partial = 0, b""
                fh.seek(self.offset)
                chunk = fh.read(max_bytes)
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        events = []
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                events.append(Event.from_json(line))
            except (ValueError, TypeError):
                continue
        return events


def submit_unit(store: Store, study_id: int, stage: str, executor: Executor, fresh: bool = False,
                resume: Optional[bool] = None, prior_seconds: float = 0.0) -> StageUnit:
    """Prepare the unit's input (resume or start over; lab.run.unit.prepare_unit), submit it, and record
    where it runs."""
    unit_input = prepare_unit(store, study_id, stage, fresh=fresh, resume=resume, prior_seconds=prior_seconds)
    unit = executor.submit(store.home, study_id, stage, worker_command(store.home, study_id, stage))
    local = executor.name == "local"
    store.update_stage(study_id, stage, state=StageState.running, executor=executor.name, job_id=unit.job_id,
                       pid=int(unit.job_id) if local else None, host=socket.gethostname() if local else None,
                       attempts=unit_input.attempt, heartbeat_at=utcnow(), finished_at=None, error=None,
                       progress_json=None, job_state=None if local else "submitted")
    return unit


def reattach(store: Store, run: StageRun | UnitRun, compute: Optional[dict] = None) -> Optional[StageUnit]:
    """A handle on the unit a stage row (or one of a stage's several units' rows) records (None when it
    records none)."""
    if not run.job_id and not run.pid:
        return None
    name = run.executor or "local"
    executor = LocalExecutor() if name == "local" else executor_for({**(compute or {}), "executor": name})
    key = unit_key(run.stage, run.unit) if isinstance(run, UnitRun) else run.stage
    return executor.reattach(store.home, int(run.study_id), key, run.job_id or str(run.pid), run.host or "")


def recover(store: Store, study_id: int) -> list[str]:
    """Bring the rows up to what the units of running stages have written (ingest their event files),
    then mark interrupted the local ones whose worker is gone (dead pid here, or a silent heartbeat), so
    the next run resumes them. Returns the stages marked. A cluster job's stage is left to the
    coordinator, which asks the scheduler."""
    for run in store.stage_runs(study_id):
        if run.state == StageState.running:
            store.ingest(study_id, run.stage)
            for part in store.unit_runs(study_id, run.stage):  # a stage that runs as several units
                if part.state == StageState.running:
                    store.ingest_unit(study_id, run.stage, part.unit)
    return store.mark_stale(study_id)


class StageWorker:
    """A handle on one stage's running unit, for whoever follows it without driving it (the TUI)."""

    def __init__(self, store: Store, study_id: int, stage: str, unit: StageUnit) -> None:
        self.store = store
        self.study_id = study_id
        self.stage = stage
        self.unit = unit
        self._log = EventLog(store.home.event_log(study_id, stage))

    @classmethod
    def start(cls, store: Store, study_id: int, stage: str) -> "StageWorker":
        """Submit the stage's unit on this machine (the runner does this through its executor)."""
        return cls(store, study_id, stage, submit_unit(store, study_id, stage, LocalExecutor()))

    @classmethod
    def adopt(cls, store: Store, study_id: int, stage: str) -> Optional["StageWorker"]:
        """The live unit of a stage marked running, or None (a dead local worker's stage becomes interrupted)."""
        recover(store, study_id)
        run = store.stage_run(study_id, stage)
        unit = reattach(store, run) if run.state == StageState.running else None
        return cls(store, study_id, stage, unit) if unit is not None else None

    @staticmethod
    def mark_dead(store: Store, study_id: int) -> list[str]:
        return recover(store, study_id)

    @classmethod
    def running(cls, store: Store, study_id: int) -> list["StageWorker"]:
        """Every live unit of the study (after `recover`), each running unit of a stage that runs as several
        included (under its stage's name: following it shows the stage, cancelling it stops that unit)."""
        recover(store, study_id)
        out = []
        for run in store.stage_runs(study_id):
            if run.state != StageState.running:
                continue
            unit = reattach(store, run)
            if unit is not None:
                out.append(cls(store, study_id, run.stage, unit))
            for part in store.unit_runs(study_id, run.stage):
                handle = reattach(store, part) if part.state == StageState.running else None
                if handle is not None:
                    out.append(cls(store, study_id, run.stage, handle))
        return out

    @property
    def pid(self) -> Optional[int]:
        return getattr(self.unit, "pid", None)

    def describe(self) -> str:
        """"worker pid N on HOST"; a cluster job with its scheduler state ("slurm job 12, PENDING (Priority)")."""
        if isinstance(self.unit, LocalUnit):
            return self.unit.describe()
        try:
            return f"{self.unit.describe()}, {self.unit.status().describe()}"
        except BadInput:
            return self.unit.describe()

    def poll(self) -> list[Event]:
        """New events from the stage's event log since the last poll (or since this handle was made)."""
        return self._log.poll()

    def is_alive(self) -> bool:
        return self.unit.status().alive

    def run(self) -> StageRun:
        """The stage's row now, after ingesting what its unit wrote; a dead local worker's stage is marked
        interrupted."""
        recover(self.store, self.study_id)
        return self.store.stage_run(self.study_id, self.stage)

    def cancel(self) -> bool:
        """Ask the unit to checkpoint and stop (SIGTERM locally, the scheduler's cancel on a cluster). False
        when there is nothing live this machine can reach."""
        return self.unit.cancel()


def last_progress(path: Path) -> Optional[dict]:
    """The last progress event in a unit's event file (read from its end), or None."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - 65536))
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if '"progress"' not in line:
            continue
        try:
            ev = Event.from_json(line)
        except (ValueError, TypeError):
            continue
        if ev.event == "progress":
            return {k: ev.data.get(k) for k in ("done", "total", "unit", "label")}
    return None


def unit_report(store: Store, run: StageRun, compute: Optional[dict] = None) -> Optional[dict]:
    """Where a running stage's unit stands, asked of its executor now (reads only): job id, state (with
    the scheduler's reason when pending), node, and progress read from its event file."""
    if run.state != StageState.running:
        return None
    report: dict = {"executor": run.executor or "local", "job_id": run.job_id or (str(run.pid) if run.pid else None),
                    "state": None, "reason": "", "node": run.host or "",
                    "progress": last_progress(store.home.event_log(int(run.study_id), run.stage))}
    try:
        unit = reattach(store, run, compute)
        status = unit.status() if unit is not None else None
    except BadInput as exc:  # no Slurm commands on this machine: say so, never fail the status
        report.update(state="UNKNOWN", reason=str(exc))
        return report
    if status is not None:
        report.update(state=status.state, reason=status.reason, node=status.node or report["node"],
                      describe=f"{unit.describe()} {status.describe()}")  # type: ignore[union-attr]
    parts = store.unit_runs(int(run.study_id), run.stage)
    if parts:  # a stage that runs as several units: each one's state, job and progress
        report["units"] = [_part_report(store, part, compute) for part in parts]
        if status is None:
            running = [u for u in report["units"] if u["state"] in ("RUNNING", "PENDING")]
            report.update(state="RUNNING" if running else "UNITS",
                          describe=", ".join(f"{u['unit']} {u['state'] or u['row_state']}" for u in report["units"]))
    return report


def _part_report(store: Store, part: UnitRun, compute: Optional[dict]) -> dict:
    key = unit_key(part.stage, part.unit)
    out: dict = {"unit": part.unit, "row_state": part.state.value, "executor": part.executor, "job_id": part.job_id,
                 "state": None, "reason": "", "node": part.host or "",
                 "progress": last_progress(store.home.event_log(int(part.study_id), key))}
    if part.state != StageState.running:
        out["state"] = part.state.value.upper()
        return out
    try:
        unit = reattach(store, part, compute)
        status = unit.status() if unit is not None else None
    except BadInput as exc:
        out.update(state="UNKNOWN", reason=str(exc))
        return out
    if status is not None:
        out.update(state=status.state, reason=status.reason, node=status.node or out["node"])
    return out


def cancel_units(store: Store, study_id: int, compute: Optional[dict] = None) -> list[str]:
    """Ask every running unit of the study to checkpoint and stop (SIGTERM here, the scheduler's cancel on a
    cluster); the stages stay resumable. Returns what was asked, one line each."""
    asked = []
    for run in store.stage_runs(study_id):
        if run.state != StageState.running:
            continue
        unit = reattach(store, run, compute)
        if unit is not None and unit.cancel():
            asked.append(f"stage {run.stage}: asked {unit.describe()} to checkpoint and stop")
        for part in store.unit_runs(study_id, run.stage):  # every unit of a stage that runs as several
            handle = reattach(store, part, compute) if part.state == StageState.running else None
            if handle is not None and handle.cancel():
                asked.append(f"stage {run.stage} unit {part.unit}: asked {handle.describe()} to checkpoint and stop")
    return asked
