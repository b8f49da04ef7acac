"""Where things live: the lab home (DB, artifacts, exports, logs) and the project's shipped assets."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT_ROOT / "examples"
DEMO_STUDY = EXAMPLES / "studies" / "demo.toml"
DEMO_MODEL = EXAMPLES / "models" / "tiny-polyglot"
DEMO_TASKS = EXAMPLES / "tasks"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """--home, else $NEURON_PILOT_HOME, else the user data dir."""
    if home is None:
        home = os.environ.get("NEURON_PILOT_HOME") or platformdirs.user_data_dir("neuron-pilot")
    try:
        return Path(home).expanduser().resolve()
    except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13, OSError after)
        from lab.core.errors import BadInput

        raise BadInput(f"--home {home} is a symlink loop or cannot be resolved; point --home at a real folder") from None


class Home:
    """The folder that holds lab.db, artifacts/, exports/ and logs/."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = resolve_home(root)

    @property
    def db(self) -> Path:
        return self.root / "lab.db"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def ensure(self) -> "Home":
        for p in (self.root, self.artifacts, self.exports, self.logs):
            p.mkdir(parents=True, exist_ok=True)
        return self

    def stage_dir(self, study_id: int, stage: str) -> Path:
        return self.artifacts / f"study-{study_id}" / stage

    def checkpoint_dir(self, study_id: int, stage: str) -> Path:
        return self.artifacts / f"study-{study_id}" / stage / ".checkpoint"

    def event_log(self, study_id: int, stage: str) -> Path:
        return self.logs / f"study-{study_id}" / f"{stage}.jsonl"

    def unit_input(self, study_id: int, stage: str) -> Path:
        """What the coordinator hands a stage unit (lab.run.unit): the unit reads this, never lab.db."""
        return self.logs / f"study-{study_id}" / f"{stage}.unit.json"

    def heartbeat_file(self, study_id: int, stage: str) -> Path:
        """A running unit rewrites this every few seconds; the coordinator's ingest reads it."""
        return self.logs / f"study-{study_id}" / f"{stage}.beat"

    def inside(self, path: Path) -> Path:
        """Refuse paths that escape the home folder (artifact paths come from the DB)."""
        resolved = (self.root / path).resolve()
        if not resolved.is_relative_to(self.root):
            from lab.core.errors import BadInput

            raise BadInput(f"artifact path {path} escapes the lab home {self.root}; the DB may be tampered with")
        return resolved


BUSY_TIMEOUT_MS = 30_000
TIMEOUT_ENV = "NEURON_PILOT_DB_TIMEOUT_S"  # how long a command waits for a locked lab.db (default 30 s)


def busy_timeout_ms() -> int:
    """How long SQLite waits for a locked lab.db, in ms: NEURON_PILOT_DB_TIMEOUT_S (seconds) or 30 s."""
    raw = os.environ.get(TIMEOUT_ENV)
    try:
        return BUSY_TIMEOUT_MS if raw is None else max(0, int(float(raw) * 1000))
    except ValueError:
        from lab.core.errors import BadInput

        raise BadInput(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds; set it to e.g. 30") from None
