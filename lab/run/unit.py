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


def prepare_unit(store: Store, study_id: int, stage: str, fresh: bool = False) -> UnitInput:
    """The coordinator's half of starting a unit: resume or start over (clearing the stage's rows and
    checkpoints), then write the unit's input file. Returns what it wrote."""
    previous = store.stage_run(study_id, stage)
    resume = not fresh and resumes(previous)
    if not resume:
        store.clear_stage_outputs(study_id, stage)
        shutil.rmtree(store.home.checkpoint_dir(study_id, stage), ignore_errors=True)
    study = store.study(study_id)
    unit = UnitInput(
        study={k: getattr(study, k) for k in STUDY_FIELDS}, stage=stage, attempt=previous.attempts + 1,
        resume=resume, prior_seconds=previous.compute_seconds if resume else 0.0,
        artifacts=[dict(stage=a.stage, name=a.name, path=a.path, sha256=a.sha256, bytes=a.bytes)
                   for a in store.artifacts(study_id)])
    path = store.home.unit_input(study_id, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, asdict(unit))
    return unit


def read_unit(home: Home, study_id: int, stage: str) -> UnitInput:
    path = home.unit_input(study_id, stage)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        unit = UnitInput(**obj)
    except FileNotFoundError:
        raise BadInput(f"no unit input {path}: stage units are started by the coordinator "
                       f"(`neuron-pilot run STUDY`), not by hand") from None
    except (ValueError, TypeError) as exc:
        raise BadInput(f"unit input {path} is not readable ({exc}); run the study again to rewrite it") from None
    if unit.format != UNIT_FORMAT or unit.stage != stage or unit.study_id != study_id:
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
