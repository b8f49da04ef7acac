"""A stage unit's input: what the coordinator hands a worker so that the worker never opens lab.db.

The coordinator (on the login node, the only writer of lab.db) decides whether the stage resumes or
starts over, clears what a fresh start discards, and writes <home>/logs/study-N/STAGE.unit.json: the
study's row, the attempt number, resume or not, the compute time so far, and every recorded artifact
of the study (path and sha256, so the unit verifies its inputs as before). The unit (lab.run.worker)
reads only this file and the artifacts; it reports through its event file (lab.store.ingest).
`UnitSink` is what the unit's StageContext writes through: artifacts are looked up in the input, and
metrics, logs and progress travel as events only.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from lab.core import resources
from lab.core.artifacts import atomic_write_json
from lab.core.errors import BadInput
from lab.core.paths import Home
from lab.store import Artifact, StageState, Store, Study

UNIT_FORMAT = 1
STUDY_FIELDS = ("id", "name", "protocol", "model_id", "seed", "trust_remote_code", "config_json", "source_toml",
                "source_path")


@dataclass
class UnitInput:
    study: dict[str, Any]
    stage: str
    attempt: int
    resume: bool
    prior_seconds: float
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    format: int = UNIT_FORMAT
    # one unit of a stage that runs as several (lab.stages.unit_parts): {"name", "index", "count"}; None for
    # the stage's own unit
    part: Optional[dict[str, Any]] = None

    @property
    def study_id(self) -> int:
        return int(self.study["id"])

    def study_row(self) -> Study:
        return Study(**self.study)


def resumes(run: Any) -> bool:
    """Resume from checkpoints only after an interruption or a resource failure (full disk, out of memory
    at batch 1: lab.core.resources); any other start is from scratch."""
    return run.state == StageState.interrupted or (
        run.state == StageState.failed and resources.resumable_failure(run.error))


def start_stage(store: Store, study_id: int, stage: str, fresh: bool = False) -> bool:
    """Resume or start over: a fresh start clears the stage's rows and checkpoints (every unit's, for a
    stage that runs as several, whose units are pending again). Returns whether it resumes."""
    resume = not fresh and resumes(store.stage_run(study_id, stage))
    if not resume:
        store.clear_stage_outputs(study_id, stage)
        shutil.rmtree(store.home.checkpoint_dir(study_id, stage), ignore_errors=True)
        store.reset_units(study_id, stage)
    return resume


def prepare_unit(store: Store, study_id: int, stage: str, fresh: bool = False, resume: Optional[bool] = None,
                 prior_seconds: float = 0.0) -> UnitInput:
    """The coordinator's half of starting a unit: resume or start over (`start_stage`; `resume` given: that
    was decided already, as for the merge unit after a stage's several units), then write the unit's input
    file. `prior_seconds` adds compute time spent elsewhere (the stage's other units). Returns what it wrote."""
    previous = store.stage_run(study_id, stage)
    if resume is None:
        resume = start_stage(store, study_id, stage, fresh)
    unit = _unit_input(store, study_id, stage, previous.attempts + 1, resume,
                       (previous.compute_seconds if resume else 0.0) + prior_seconds)
    _write(store.home.unit_input(study_id, stage), unit)
    return unit


def prepare_part(store: Store, study_id: int, stage: str, part: dict[str, Any]) -> UnitInput:
    """The input of one unit of a stage that runs as several: it always resumes from its own checkpoint
    (the stage's fresh start, `start_stage`, cleared them all)."""
    from lab.store.units import unit_key

    row = store.unit_run(study_id, stage, str(part["name"]))
    unit = _unit_input(store, study_id, stage, row.attempts + 1, True, row.compute_seconds)
    unit.part = dict(part)
    _write(store.home.unit_input(study_id, unit_key(stage, str(part["name"]))), unit)
    return unit


def _unit_input(store: Store, study_id: int, stage: str, attempt: int, resume: bool, prior: float) -> UnitInput:
    study = store.study(study_id)
    return UnitInput(
        study={k: getattr(study, k) for k in STUDY_FIELDS}, stage=stage, attempt=attempt, resume=resume,
        prior_seconds=prior, artifacts=[dict(stage=a.stage, name=a.name, path=a.path, sha256=a.sha256, bytes=a.bytes)
                                        for a in store.artifacts(study_id)])


def _write(path: Path, unit: UnitInput) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, asdict(unit))


def read_unit(home: Home, study_id: int, stage: str, part: Optional[str] = None) -> UnitInput:
    path = home.unit_input(study_id, stage if part is None else f"{stage}.{part}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        unit = UnitInput(**obj)
    except FileNotFoundError:
        raise BadInput(f"no unit input {path}: stage units are started by the coordinator "
                       f"(`neuron-pilot run STUDY`), not by hand") from None
    except (ValueError, TypeError) as exc:
        raise BadInput(f"unit input {path} is not readable ({exc}); run the study again to rewrite it") from None
    if unit.format != UNIT_FORMAT or unit.stage != stage or unit.study_id != study_id or \
            (unit.part or {}).get("name") != part:
        raise BadInput(f"unit input {path} is for another stage or format; run the study again to rewrite it")
    return unit


class UnitSink:
    """The store-shaped object a unit's StageContext writes through: reads artifact rows from the unit
    input (plus those this unit wrote), and records nothing itself: every metric, log line, progress
    update and artifact reaches lab.db as an event the coordinator ingests."""

    writes_events_only = True

    def __init__(self, home: Home, unit: UnitInput) -> None:
        self.home = home
        self._artifacts = {(a["stage"], a["name"]): dict(a) for a in unit.artifacts}

    def artifact(self, study_id: int, stage: str, name: str) -> Artifact:
        row = self._artifacts.get((stage, name))
        if row is None:
            raise BadInput(f"study {study_id} has no artifact {stage}/{name}; run the {stage} stage first")
        return Artifact(study_id=study_id, **row)

    def put_artifact(self, study_id: int, stage: str, name: str, path: Path, sha256: str, size: int) -> Artifact:
        rel = str(path.resolve().relative_to(self.home.root))
        self._artifacts[(stage, name)] = dict(stage=stage, name=name, path=rel, sha256=sha256, bytes=size)
        return Artifact(study_id=study_id, stage=stage, name=name, path=rel, sha256=sha256, bytes=size)

    def put_metrics(self, study_id: int, rows: Any) -> None:
        return None

    def log(self, study_id: int, stage: str, message: str, level: str = "info") -> None:
        return None

    def heartbeat(self, study_id: int, stage: str, progress: Optional[dict[str, Any]] = None) -> None:
        return None
