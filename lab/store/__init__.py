"""The study store: SQLModel tables in one SQLite file (WAL), artifacts as hashed files.

Import from here: ``from lab.store import Store, Study, StageRun, Metric, Decision, Artifact``.
"""

from lab.store.tables import Artifact, Decision, Lease, LogLine, Metric, StageRun, Study, StageState
from lab.store.db import Store, SCHEMA_VERSION

__all__ = [
    "Artifact",
    "Decision",
    "Lease",
    "LogLine",
    "Metric",
    "StageRun",
    "StageState",
    "Study",
    "Store",
    "SCHEMA_VERSION",
]
