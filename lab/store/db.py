"""Opening the SQLite store: WAL, busy timeout, foreign keys, ordered migrations, typed helpers."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel, create_engine, select

from lab.core import faults
from lab.core.errors import BadInput
from lab.core.filesystems import journal_mode
from lab.core.paths import Home, busy_timeout_ms
from lab.store import health
from lab.store.leases import LeaseMixin, pid_alive  # noqa: F401  (pid_alive: re-exported)
from lab.store.tables import (
    Artifact,
    Decision,
    IngestCursor,
    LogLine,
    Metric,
    StageRun,
    Study,
    UnitRun,
    utcnow,
)
from lab.store.units import STALE_HEARTBEAT, UnitsMixin  # noqa: F401  (STALE_HEARTBEAT: re-exported)



def _migration_1(conn: Any) -> None:
    """v1: the initial schema, exactly as the SQLModel tables define it."""
    SQLModel.metadata.create_all(conn)


def _migration_2(conn: Any) -> None:
    """v2: stage units that never open lab.db (issue #17): where each runs (executor, job id, the
    scheduler's state) and the ingestion cursor of its event file. A v1 store gains the three columns;
    a store made new at v1 by this code's create_all already has them."""
    have = {row[1] for row in conn.execute(text("PRAGMA table_info(stagerun)"))}
    for column, ddl in (("executor", "VARCHAR NOT NULL DEFAULT 'local'"), ("job_id", "VARCHAR"),
                        ("job_state", "VARCHAR")):
        if column not in have:
            conn.execute(text(f"ALTER TABLE stagerun ADD COLUMN {column} {ddl}"))
    SQLModel.metadata.create_all(conn, tables=[IngestCursor.__table__])  # type: ignore[list-item]


def _migration_3(conn: Any) -> None:
    """v3: a stage that runs as several units (identify's shards, issue #18): one UnitRun row per unit."""
    SQLModel.metadata.create_all(conn, tables=[UnitRun.__table__])  # type: ignore[list-item]


# Ordered: entry i upgrades a DB at version i to version i + 1. Append, never edit.
MIGRATIONS: list[Callable[[Any], None]] = [_migration_1, _migration_2, _migration_3]
SCHEMA_VERSION = len(MIGRATIONS)


def _on_connect(dbapi_conn: Any, _record: Any, journal: str = "WAL") -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms()}")
    cur.execute(f"PRAGMA journal_mode={journal}")  # WAL; DELETE on a network filesystem (lab.core.filesystems)
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    faults.db_connected(cur)  # tests only: a full disk for lab.db
    cur.close()


def make_engine(path: Path, journal: Optional[str] = None) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": busy_timeout_ms() / 1000, "check_same_thread": False},
    )
    journal = journal or journal_mode(path.parent)
    event.listen(engine, "connect", lambda conn, record: _on_connect(conn, record, journal))
    return engine


class Store(LeaseMixin, UnitsMixin):
    """All reads and writes of lab.db go through here."""

    def __init__(self, home: Home | str | os.PathLike[str] | None = None, *, create: bool = True,
                 migrate: Optional[bool] = None) -> None:
        """Open the home's store. `create`: make lab.db if there is none (only `new`, `demo` and the TUI
        do); `migrate` (default: `create`): bring an older schema up to date. A reader (both False)
        writes nothing to open a store and says what is missing instead. Every fault of the home or
        of lab.db is a one-line BadInput raised here, before anything is written."""
        self.home = home if isinstance(home, Home) else Home(home)
        migrate = create if migrate is None else migrate
        root, db = self.home.root, self.home.db
        health.check_home(root, must_exist=not create)
        journal = journal_mode(root)  # a bad NEURON_PILOT_DB_JOURNAL is refused before anything is written
        existed = db.exists()
        if not existed and not create:
            raise health.missing_store(root)
        if (create or migrate) and root.exists():
            health.check_writable(root)
        version = health.schema_version(db) if existed else None
        if version is not None and version > SCHEMA_VERSION:
            raise BadInput(
                f"lab database {db} has schema version {version}, newer than this neuron-pilot understands "
                f"({SCHEMA_VERSION}); upgrade neuron-pilot or use another --home")
        if not migrate and version != SCHEMA_VERSION:
            if version is None:
                raise BadInput(f"{db} holds no neuron-pilot store (no schema); create a study with "
                               f"`neuron-pilot new STUDY.toml` in another --home, or move the file away")
            raise BadInput(f"lab database {db} has schema version {version}, older than this neuron-pilot's "
                           f"({SCHEMA_VERSION}); run `neuron-pilot run STUDY --home {root}` once to upgrade it")
        made = [p for p in (root, self.home.artifacts, self.home.exports, self.home.logs) if not p.exists()]
        if create or migrate:
            try:
                self.home.ensure()
            except OSError as exc:
                raise BadInput(f"cannot create the lab home {root} ({exc.strerror}); check the folder's "
                               f"permissions and free space, or use another --home") from None
        self.engine = make_engine(db, journal)
        if migrate and version != SCHEMA_VERSION:
            try:
                self._migrate()
            except (BadInput, DBAPIError) as exc:
                error = exc if isinstance(exc, BadInput) else health.explain(exc, root)
                self.engine.dispose()
                if not existed:  # no partial schema: a store we were creating goes away entirely
                    for name in health.STORE_FILES:
                        (root / name).unlink(missing_ok=True)
                    for folder in reversed(made):
                        try:
                            folder.rmdir()
                        except OSError:
                            pass
                raise error from None

    # ---- schema -------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"))
            row = conn.execute(text("SELECT value FROM meta WHERE key='schema_version'")).first()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise BadInput(
                    f"lab database {self.home.db} has schema version {current}, newer than this neuron-pilot "
                    f"understands ({SCHEMA_VERSION}); upgrade neuron-pilot or use another --home"
                )
            for version in range(current, SCHEMA_VERSION):
                MIGRATIONS[version](conn)
                conn.execute(
                    text("INSERT INTO meta(key, value) VALUES('schema_version', :v) "
                         "ON CONFLICT(key) DO UPDATE SET value=:v"),
                    {"v": str(version + 1)},
                )

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT value FROM meta WHERE key='schema_version'")).scalar_one())

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    def integrity_check(self) -> str:
        with self.engine.connect() as conn:
            return str(conn.execute(text("PRAGMA integrity_check")).scalar_one())

    # ---- studies ------------------------------------------------------------------------------
    def create_study(self, *, name: str, protocol: str, model_id: str, seed: int, trust_remote_code: bool,
                     config: dict[str, Any], source_toml: str, source_path: str,
                     stages: Sequence[str]) -> Study:
        with self.session() as s:
            study = Study(name=name, protocol=protocol, model_id=model_id, seed=seed,
                          trust_remote_code=trust_remote_code, config_json=json.dumps(config, sort_keys=True),
                          source_toml=source_toml, source_path=source_path)
            s.add(study)
            s.flush()
            for i, stage in enumerate(stages):
                s.add(StageRun(study_id=study.id, stage=stage, position=i))
            s.commit()
            s.refresh(study)
            return study

    def studies(self) -> list[Study]:
        with self.session() as s:
            return list(s.exec(select(Study).order_by(Study.id)))

    def study(self, ref: str | int) -> Study:
        """A study by id or by (unique) name."""
        with self.session() as s:
            found: Optional[Study] = None
            if isinstance(ref, int) or str(ref).isdigit():
                found = s.get(Study, int(ref))
            if found is None:
                rows = list(s.exec(select(Study).where(Study.name == str(ref))))
                if len(rows) > 1:
                    ids = ", ".join(str(r.id) for r in rows)
                    raise BadInput(f"study name {ref!r} is ambiguous (ids {ids}); pass the id instead")
                found = rows[0] if rows else None
            if found is None:
                raise BadInput(f"no study {ref!r} in {self.home.root}; list them with `neuron-pilot studies --home {self.home.root}`")
            return found

    def touch_study(self, study_id: int) -> None:
        with self.session() as s:
            study = s.get(Study, study_id)
            if study:
                study.updated_at = utcnow()
                s.add(study)
                s.commit()

    # ---- stage runs ---------------------------------------------------------------------------
    def stage_runs(self, study_id: int) -> list[StageRun]:
        with self.session() as s:
            return list(s.exec(select(StageRun).where(StageRun.study_id == study_id).order_by(StageRun.position)))

    def sync_stages(self, study_id: int, stages: Sequence[str]) -> list[str]:
        """Give the study a row for every stage of its protocol, in protocol order (a study created
        before its protocol gained a stage gets that stage as `pending`); returns the stages added."""
        with self.session() as s:
            rows = {r.stage: r for r in s.exec(select(StageRun).where(StageRun.study_id == study_id))}
            added = [st for st in stages if st not in rows]
            for st in added:
                rows[st] = StageRun(study_id=study_id, stage=st, position=0)
            order = list(stages) + [st for st in sorted(rows, key=lambda k: rows[k].position) if st not in stages]
            for i, st in enumerate(order):
                if rows[st].position != i or st in added:
                    rows[st].position = i
                    s.add(rows[st])
            s.commit()
            return added

    def stage_run(self, study_id: int, stage: str) -> StageRun:
        with self.session() as s:
            row = s.exec(select(StageRun).where(StageRun.study_id == study_id, StageRun.stage == stage)).first()
            if row is None:
                raise BadInput(f"study {study_id} has no stage {stage!r}")
            return row

    def update_stage(self, study_id: int, stage: str, **fields: Any) -> StageRun:
        with self.session() as s:
            row = s.exec(select(StageRun).where(StageRun.study_id == study_id, StageRun.stage == stage)).one()
            for k, v in fields.items():
                setattr(row, k, v)
            s.add(row)
            s.commit()
            s.refresh(row)
        self.touch_study(study_id)
        return row

    def heartbeat(self, study_id: int, stage: str, progress: Optional[dict[str, Any]] = None) -> None:
        with self.engine.begin() as conn:
            if progress is None:
                conn.execute(text("UPDATE stagerun SET heartbeat_at=:t WHERE study_id=:s AND stage=:g"),
                             {"t": utcnow(), "s": study_id, "g": stage})
            else:
                conn.execute(text("UPDATE stagerun SET heartbeat_at=:t, progress_json=:p WHERE study_id=:s AND stage=:g"),
                             {"t": utcnow(), "p": json.dumps(progress), "s": study_id, "g": stage})

    def ingest(self, study_id: int, stage: str) -> list[Any]:
        """Apply a stage unit's new events (its event file past the cursor) to the rows: lab.store.ingest."""
        from lab.store.ingest import ingest_events

        return ingest_events(self.engine, study_id, stage, self.home.event_log(study_id, stage),
                             self.home.heartbeat_file(study_id, stage))

    # ---- metrics ------------------------------------------------------------------------------
    def put_metric(self, study_id: int, stage: str, name: str, value: float, *, language: str = "",
                   condition: str = "", ci_low: Optional[float] = None, ci_high: Optional[float] = None,
                   n: Optional[int] = None) -> None:
        self.put_metrics(study_id, [dict(stage=stage, name=name, value=value, language=language,
                                         condition=condition, ci_low=ci_low, ci_high=ci_high, n=n)])

    def put_metrics(self, study_id: int, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert many metric rows in one transaction (a re-run replaces, never duplicates)."""
        if not rows:
            return
        values = []
        for r in rows:
            values.append(dict(study_id=study_id, stage=r["stage"], name=r["name"],
                               language=r.get("language") or "", condition=r.get("condition") or "",
                               value=float(r["value"]), ci_low=_opt_float(r.get("ci_low")),
                               ci_high=_opt_float(r.get("ci_high")),
                               n=None if r.get("n") is None else int(r["n"]), created_at=utcnow()))
        stmt = sqlite_insert(Metric.__table__).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["study_id", "stage", "name", "language", "condition"],
            set_={c: stmt.excluded[c] for c in ("value", "ci_low", "ci_high", "n", "created_at")},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
            faults.point("db_commit")  # tests only: a kill inside the open transaction

    def metrics(self, study_id: int, stage: Optional[str] = None, name: Optional[str] = None) -> list[Metric]:
        with self.session() as s:
            q = select(Metric).where(Metric.study_id == study_id)
            if stage:
                q = q.where(Metric.stage == stage)
            if name:
                q = q.where(Metric.name == name)
            return list(s.exec(q.order_by(Metric.id)))

    def clear_stage_outputs(self, study_id: int, stage: str) -> None:
        """Before a stage runs from scratch: its old metrics, artifact rows and recommendation go."""
        with self.engine.begin() as conn:
            for table in ("metric", "artifact"):
                conn.execute(text(f"DELETE FROM {table} WHERE study_id=:s AND stage=:g"), {"s": study_id, "g": stage})
            conn.execute(text("UPDATE stagerun SET recommendation_json=NULL WHERE study_id=:s AND stage=:g"),
                         {"s": study_id, "g": stage})

    # ---- artifacts ----------------------------------------------------------------------------
    def put_artifact(self, study_id: int, stage: str, name: str, path: Path, sha256: str, size: int) -> Artifact:
        rel = str(path.resolve().relative_to(self.home.root))
        with self.session() as s:
            row = s.exec(select(Artifact).where(Artifact.study_id == study_id, Artifact.stage == stage,
                                                Artifact.name == name)).first()
            if row is None:
                row = Artifact(study_id=study_id, stage=stage, name=name, path=rel, sha256=sha256, bytes=size)
            else:
                row.path, row.sha256, row.bytes, row.created_at = rel, sha256, size, utcnow()
            s.add(row)
            s.flush()
            faults.point("db_commit")  # tests only: a kill inside the open transaction
            s.commit()
            s.refresh(row)
            return row

    def artifacts(self, study_id: int, stage: Optional[str] = None) -> list[Artifact]:
        with self.session() as s:
            q = select(Artifact).where(Artifact.study_id == study_id)
            if stage:
                q = q.where(Artifact.stage == stage)
            return list(s.exec(q.order_by(Artifact.id)))

    def artifact(self, study_id: int, stage: str, name: str) -> Artifact:
        with self.session() as s:
            row = s.exec(select(Artifact).where(Artifact.study_id == study_id, Artifact.stage == stage,
                                                Artifact.name == name)).first()
        if row is None:
            raise BadInput(f"study {study_id} has no artifact {stage}/{name}; run the {stage} stage first")
        return row

    # ---- decisions ----------------------------------------------------------------------------
    def add_decision(self, study_id: int, stage: str, verdict: str, rationale: str, by: str,
                     recommendation: Optional[dict[str, Any]] = None) -> Decision:
        if verdict not in ("go", "no-go", "revise", "inconclusive"):
            raise BadInput(f"verdict must be go, no-go, revise or inconclusive, not {verdict!r}")
        if not rationale.strip():
            raise BadInput("a decision needs a rationale; say why in a sentence")
        if not by.strip():
            raise BadInput("a decision needs an author (by)")
        with self.session() as s:
            row = Decision(study_id=study_id, stage=stage, verdict=verdict, rationale=rationale, by=by,
                           recommendation_json=json.dumps(recommendation) if recommendation else None)
            s.add(row)
            s.commit()
            s.refresh(row)
        self.touch_study(study_id)
        return row

    def decisions(self, study_id: int) -> list[Decision]:
        with self.session() as s:
            return list(s.exec(select(Decision).where(Decision.study_id == study_id).order_by(Decision.id)))

    def latest_decision(self, study_id: int, stage: str) -> Optional[Decision]:
        with self.session() as s:
            return s.exec(select(Decision).where(Decision.study_id == study_id, Decision.stage == stage)
                          .order_by(Decision.id.desc())).first()  # type: ignore[union-attr]

    # ---- logs ---------------------------------------------------------------------------------
    def log(self, study_id: int, stage: str, message: str, level: str = "info") -> None:
        with self.session() as s:
            s.add(LogLine(study_id=study_id, stage=stage, level=level, message=message))
            s.commit()

    def logs(self, study_id: int, stage: Optional[str] = None, limit: int = 200) -> list[LogLine]:
        with self.session() as s:
            q = select(LogLine).where(LogLine.study_id == study_id)
            if stage:
                q = q.where(LogLine.stage == stage)
            rows = list(s.exec(q.order_by(LogLine.id.desc()).limit(limit)))  # type: ignore[union-attr]
        return rows[::-1]

def _opt_float(v: Any) -> Optional[float]:
    return None if v is None else float(v)
