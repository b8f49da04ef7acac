"""SQLModel tables: the schema is owned here. Changing it means adding a migration in db.py."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Optional

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class StageState(str, Enum):
    """pending → running → done | failed | interrupted (interrupted and failed can run again)."""

    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"
    interrupted = "interrupted"


class Study(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    protocol: str
    model_id: str
    seed: int = 0
    trust_remote_code: bool = False
    # The validated study file, normalised (absolute paths) as JSON, and the source text as given.
    config_json: str = Field(sa_column=Column(Text, nullable=False))
    source_toml: str = Field(sa_column=Column(Text, nullable=False))
    source_path: str = ""
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class StageRun(SQLModel, table=True):
    """One row per (study, stage): its state machine, worker pid and heartbeat."""

    __table_args__ = (UniqueConstraint("study_id", "stage"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    stage: str
    position: int = 0
    state: StageState = StageState.pending
    attempts: int = 0
    pid: Optional[int] = None
    host: Optional[str] = None
    heartbeat_at: Optional[dt.datetime] = None
    started_at: Optional[dt.datetime] = None
    finished_at: Optional[dt.datetime] = None
    compute_seconds: float = 0.0
    gpu_seconds: float = 0.0
    error: Optional[str] = Field(default=None, sa_column=Column(Text))
    progress_json: Optional[str] = Field(default=None, sa_column=Column(Text))
    recommendation_json: Optional[str] = Field(default=None, sa_column=Column(Text))
    # where its unit runs (schema v2): "local" (pid/host above) or "slurm" (job_id), and the scheduler's
    # last word on it ("PENDING (Priority)", "RUNNING on node7"), refreshed by the coordinator
    executor: str = "local"
    job_id: Optional[str] = None
    job_state: Optional[str] = None


class Metric(SQLModel, table=True):
    """A tidy metric row. (study, stage, name, language, condition) is unique: writes are upserts."""

    __table_args__ = (UniqueConstraint("study_id", "stage", "name", "language", "condition"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    stage: str
    name: str
    language: str = ""  # "" when the metric is not per language
    condition: str = ""
    value: float
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    n: Optional[int] = None
    created_at: dt.datetime = Field(default_factory=utcnow)


class Decision(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    stage: str
    verdict: str  # go | no-go | revise | inconclusive
    rationale: str = Field(sa_column=Column(Text, nullable=False))
    by: str
    at: dt.datetime = Field(default_factory=utcnow)
    recommendation_json: Optional[str] = Field(default=None, sa_column=Column(Text))


class Artifact(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("study_id", "stage", "name"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    stage: str
    name: str
    path: str  # relative to the lab home
    sha256: str
    bytes: int
    created_at: dt.datetime = Field(default_factory=utcnow)


class Lease(SQLModel, table=True):
    """One runner per study: whoever holds an unexpired lease runs its stages."""

    study_id: int = Field(foreign_key="study.id", primary_key=True)
    holder: str
    pid: int
    host: str
    acquired_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime


class LogLine(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    stage: str
    level: str = "info"
    message: str = Field(sa_column=Column(Text, nullable=False))
    at: dt.datetime = Field(default_factory=utcnow)


class IngestCursor(SQLModel, table=True):
    """How far the coordinator has ingested a stage unit's event file (schema v2): the last (attempt, seq)
    applied and the byte offset after it. Advanced in the same transaction as the rows it applies, so
    ingesting twice, or after a crash mid-ingest, gives the same rows (lab.store.ingest)."""

    study_id: int = Field(foreign_key="study.id", primary_key=True)
    stage: str = Field(primary_key=True)
    attempt: int = 0
    seq: int = 0
    offset: int = 0


class UnitRun(SQLModel, table=True):
    """One unit of a stage that runs as several (schema v3): e.g. identify's `shard-2-of-3`. Its own state,
    attempts, job id and heartbeat; its events are ingested with the cursor keyed `STAGE.UNIT`. The stage's
    own row (StageRun) stays running while its units run, and ends with its merge unit."""

    __table_args__ = (UniqueConstraint("study_id", "stage", "unit"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    stage: str
    unit: str
    state: StageState = StageState.pending
    attempts: int = 0
    executor: str = "local"
    job_id: Optional[str] = None
    job_state: Optional[str] = None
    pid: Optional[int] = None
    host: Optional[str] = None
    heartbeat_at: Optional[dt.datetime] = None
    started_at: Optional[dt.datetime] = None
    finished_at: Optional[dt.datetime] = None
    compute_seconds: float = 0.0
    gpu_seconds: float = 0.0
    error: Optional[str] = Field(default=None, sa_column=Column(Text))
    progress_json: Optional[str] = Field(default=None, sa_column=Column(Text))
