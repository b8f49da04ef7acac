"""Stale stages, and the rows of a stage's several units (UnitRun, schema v3): read, update, reset, ingest."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any, Optional

from sqlalchemy import text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import select

from lab.core.paths import Home
from lab.store.leases import pid_alive
from lab.store.tables import StageRun, StageState, UnitRun, utcnow

STALE_HEARTBEAT = dt.timedelta(seconds=30)


def unit_key(stage: str, unit: str) -> str:
    """The name a unit's files (unit input, event file, heartbeat, log) and its ingest cursor go by."""
    return f"{stage}.{unit}"


class UnitsMixin:
    """Store's methods for UnitRun rows (`self.engine`, `self.session()` and `self.home` come from Store)."""

    engine: Any
    home: Home

    def session(self) -> Any:  # pragma: no cover - Store defines it
        raise NotImplementedError

    def stage_runs(self, study_id: int) -> list[StageRun]:  # pragma: no cover - Store defines it
        raise NotImplementedError

    def update_stage(self, study_id: int, stage: str, **fields: Any) -> StageRun:  # pragma: no cover - Store's
        raise NotImplementedError

    def mark_stale(self, study_id: int, *, stale_after: dt.timedelta = STALE_HEARTBEAT) -> list[str]:
        """Stages marked running whose worker is gone (dead pid here, or silent heartbeat) → interrupted."""
        marked = []
        now = utcnow()
        host = socket.gethostname()
        units_gone = self.mark_stale_units(study_id, stale_after)  # a stage that runs as several units
        busy = {r.stage for r in self.unit_runs(study_id) if r.state == StageState.running}
        for run in self.stage_runs(study_id):
            if run.state != StageState.running or run.stage in busy:
                continue  # units still running: the stage is alive
            if run.stage in units_gone and not run.job_id:
                self.update_stage(study_id, run.stage, state=StageState.interrupted, pid=None,
                                  error="its units stopped without finishing (killed or lost); run again to resume")
                marked.append(run.stage)
                continue
            if run.executor != "local":
                continue  # a cluster job's liveness is the scheduler's to say (the coordinator asks it)
            if run.host == host:  # this machine: the pid says it (a worker still importing has no beat yet)
                gone = not pid_alive(run.pid)
            else:  # another machine's worker: only its heartbeat (ingested from its beat file) can say
                gone = run.heartbeat_at is None or now - run.heartbeat_at > stale_after
            if gone:
                self.update_stage(study_id, run.stage, state=StageState.interrupted, pid=None,
                                  error="worker stopped without finishing (killed or lost); run again to resume")
                marked.append(run.stage)
        return marked

    def unit_runs(self, study_id: int, stage: Optional[str] = None) -> list[UnitRun]:
        with self.session() as s:
            q = select(UnitRun).where(UnitRun.study_id == study_id)
            if stage is not None:
                q = q.where(UnitRun.stage == stage)
            return list(s.exec(q.order_by(UnitRun.id)))

    def unit_run(self, study_id: int, stage: str, unit: str) -> UnitRun:
        """The unit's row, made (pending) when it has none."""
        with self.engine.begin() as conn:
            conn.execute(sqlite_insert(UnitRun).values(study_id=study_id, stage=stage, unit=unit,
                                                       state=StageState.pending).on_conflict_do_nothing())
        with self.session() as s:
            return s.exec(select(UnitRun).where((UnitRun.study_id == study_id) & (UnitRun.stage == stage)
                                                & (UnitRun.unit == unit))).one()

    def update_unit(self, study_id: int, stage: str, unit: str, **fields: Any) -> None:
        self.unit_run(study_id, stage, unit)
        with self.engine.begin() as conn:
            conn.execute(update(UnitRun).where((UnitRun.study_id == study_id) & (UnitRun.stage == stage)
                                               & (UnitRun.unit == unit)).values(**fields))

    def reset_units(self, study_id: int, stage: str) -> None:
        """A stage that starts over: every unit of it is pending again (attempts keep counting, so their
        events stay ahead of the ingest cursors); units of another layout (a changed shard count) go."""
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE unitrun SET state='pending', job_id=NULL, job_state=NULL, pid=NULL, error=NULL, "
                              "progress_json=NULL, compute_seconds=0, gpu_seconds=0 WHERE study_id=:s AND stage=:g"),
                         {"s": study_id, "g": stage})

    def ingest_unit(self, study_id: int, stage: str, unit: str) -> list[Any]:
        """Apply a unit's new events to its row (and its log lines to the stage's): lab.store.ingest."""
        from lab.store.ingest import ingest_events

        key = unit_key(stage, unit)
        return ingest_events(self.engine, study_id, stage, self.home.event_log(study_id, key),
                             self.home.heartbeat_file(study_id, key), unit=unit)

    def mark_stale_units(self, study_id: int, stale_after: dt.timedelta) -> list[str]:
        """Local units marked running whose worker is gone → interrupted. Returns the stages that ran as
        units and have none left alive (their own row is then stale too)."""
        host, now = socket.gethostname(), utcnow()
        stages: dict[str, bool] = {}
        for run in self.unit_runs(study_id):
            if run.state != StageState.running:
                continue
            if run.executor != "local":
                stages[run.stage] = True  # the scheduler's to say; the coordinator asks it
                continue
            if run.host == host:
                gone = not pid_alive(run.pid)
            else:
                beat = run.heartbeat_at if run.heartbeat_at is None or run.heartbeat_at.tzinfo else \
                    run.heartbeat_at.replace(tzinfo=dt.timezone.utc)
                gone = beat is None or now - beat > stale_after
            if gone:
                self.update_unit(study_id, run.stage, run.unit, state=StageState.interrupted, pid=None,
                                 error="worker stopped without finishing (killed or lost); run again to resume")
            stages[run.stage] = stages.get(run.stage, False) or not gone
        return [stage for stage, alive in stages.items() if not alive]

    def units_alive(self, study_id: int, stage: str) -> bool:
        """Whether any unit of the stage is marked running (its coordinator follows it)."""
        return any(r.state == StageState.running for r in self.unit_runs(study_id, stage))
