"""What a stage implementation gets: the study, its config, and ways to report and store results."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

from lab.core.artifacts import atomic_write, sha256_file, verify
from lab.core.errors import StageInterrupted
from lab.core.events import Event
from lab.core.paths import Home
from lab.store import Store, Study
from lab.study.studyfile import StudyFile, typed
from protocols import Protocol, StageSpec


def part_checkpoint_dir(home: Home, study_id: int, stage: str, part: str) -> Path:
    """The checkpoint folder of one unit of a stage that runs as several (lab.stages.unit_parts): inside
    the stage's own, so a fresh start of the stage clears every unit's checkpoints with it."""
    return home.checkpoint_dir(study_id, stage) / part


class StageContext:
    """`store` is where results go: the Store itself when a stage runs in this process (tests), or a
    stage unit's lab.run.unit.UnitSink, which records nothing and leaves every result to the events
    (the coordinator ingests the event file; a unit never opens lab.db). `attempt` numbers a unit's
    events (each gets `attempt` and `seq`, the key they are ingested by). `part` is set in one unit of a
    stage that runs as several (``{"name": "shard-2-of-3", "index": 1, "count": 3}``; lab.stages.unit_parts)."""

    def __init__(self, store: Any, study: Study, protocol: Protocol, spec: StageSpec,
                 out: Optional[TextIO] = None, event_log: Optional[Path] = None,
                 attempt: Optional[int] = None, part: Optional[dict[str, Any]] = None) -> None:
        self.store = store
        self.part = part
        self.attempt = attempt
        self._seq = 0
        self._reader: Optional[Store] = None
        self.home: Home = store.home
        self.study = study
        self.study_id: int = int(study.id)  # type: ignore[arg-type]
        self.protocol = protocol
        self.spec = spec
        self.stage = spec.name
        self.cfg: dict[str, Any] = json.loads(study.config_json)
        self.config: StudyFile = typed(self.cfg)
        self.seed: int = study.seed
        self._out = out if out is not None else sys.stdout
        self._event_log = event_log
        self._stop = threading.Event()
        self._last_progress = 0.0
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self.stage_dir = self.home.stage_dir(self.study_id, self.stage)
        self.stage_dir.mkdir(parents=True, exist_ok=True)

    # ---- control ------------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait_for_stop(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early when SIGTERM arrives; True if it did."""
        return self._stop.wait(seconds)

    def check_stop(self) -> None:
        """Call right after a checkpoint: stops the stage if SIGTERM arrived."""
        if self._stop.is_set():
            raise StageInterrupted(f"stage {self.stage} stopped on request after its last checkpoint")

    @property
    def checkpoint_dir(self) -> Path:
        path = (self.home.checkpoint_dir(self.study_id, self.stage) if self.part is None
                else part_checkpoint_dir(self.home, self.study_id, self.stage, str(self.part["name"])))
        path.mkdir(parents=True, exist_ok=True)
        return path

    def continue_numbering(self, last_seq: int) -> None:
        """Number this unit's events on from `last_seq` (a requeued job re-running its attempt)."""
        self._seq = max(self._seq, int(last_seq))

    # ---- events -------------------------------------------------------------------------------
    def emit(self, kind: str, **data: Any) -> None:
        with self._lock:
            if self.attempt is not None:
                self._seq += 1
                data = {**data, "attempt": self.attempt, "seq": self._seq}
            line = Event(kind, self.stage, self.study_id, data).to_json()
            if self._event_log is not None:
                with open(self._event_log, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            if self._out is not None:
                try:
                    self._out.write(line + "\n")
                    self._out.flush()
                except (BrokenPipeError, OSError, ValueError):
                    self._out = None  # the runner went away; the stage goes on and still writes the DB

    def progress(self, done: int, total: int, unit: str, label: Optional[str] = None, force: bool = False,
                 **extra: Any) -> None:
        """Throttled to ~10 events/s; the first and last always go out. Also the DB's progress field."""
        now = time.monotonic()
        if not force and done not in (0, total) and now - self._last_progress < 0.1:
            return
        self._last_progress = now
        data = {"done": int(done), "total": int(total), "unit": unit, "label": label, **extra}
        self.emit("progress", **data)
        self.store.heartbeat(self.study_id, self.stage, progress=data)

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", level=level, message=message)
        self.store.log(self.study_id, self.stage, message, level)

    # ---- results ------------------------------------------------------------------------------
    def metric(self, name: str, value: float, *, language: str = "", condition: str = "",
               ci_low: Optional[float] = None, ci_high: Optional[float] = None, n: Optional[int] = None) -> None:
        self.metrics([dict(name=name, value=value, language=language, condition=condition,
                           ci_low=ci_low, ci_high=ci_high, n=n)])

    def metrics(self, rows: list[dict[str, Any]]) -> None:
        """Store many metric rows in one transaction, then announce them."""
        rows = [{**r, "stage": self.stage} for r in rows]
        self.store.put_metrics(self.study_id, rows)
        for r in rows:
            self.emit("metric", **{k: v for k, v in r.items() if k != "stage"})

    def write_artifact(self, name: str, writer: Callable[[Path], None]) -> Path:
        """Atomically write stage_dir/name with writer(tmp_path), hash it, then record it in the DB."""
        path = self.stage_dir / name
        atomic_write(path, writer)
        digest, size = sha256_file(path), path.stat().st_size
        self.store.put_artifact(self.study_id, self.stage, name, path, digest, size)
        self.emit("artifact", name=name, path=str(path), rel_path=str(path.resolve().relative_to(self.home.root)),
                  sha256=digest, bytes=size)
        return path

    def write_json(self, name: str, obj: Any) -> Path:
        text = json.dumps(obj, indent=1, ensure_ascii=False)
        return self.write_artifact(name, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def artifact_path(self, stage: str, name: str) -> Path:
        """An earlier stage's artifact, verified against its recorded sha256 before use."""
        row = self.store.artifact(self.study_id, stage, name)
        return verify(self.home.inside(Path(row.path)), row.sha256)

    def read_json(self, stage: str, name: str) -> Any:
        return json.loads(self.artifact_path(stage, name).read_text(encoding="utf-8"))

    @property
    def reads(self) -> Store:
        """The store, for a stage that reads recorded results (the verdict stage): the Store itself in
        this process, or, in a unit, lab.db opened for reading only (that unit runs on the coordinator's
        machine, never on a cluster node: lab.stages.READS_STORE)."""
        if not getattr(self.store, "writes_events_only", False):
            return self.store  # type: ignore[no-any-return]
        if self._reader is None:
            self._reader = Store(self.home, create=False, migrate=False)
        return self._reader

    # ---- shared heavy state -------------------------------------------------------------------
    def cached(self, key: str, factory: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]
