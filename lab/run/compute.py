"""The executor a study's `[compute]` table names: local worker processes, or Slurm jobs through submitit.

Kept apart from the seam (lab.run.executor) so that the Slurm executor, which builds on the seam's
types, is imported only when a study names it (and submitit with it).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from lab.core.errors import BadInput
from lab.run.executor import Executor, LocalExecutor


def executor_for(compute: Optional[Mapping[str, Any]] = None) -> Executor:
    """The executor a study's `[compute]` table names (local when absent)."""
    compute = dict(compute or {})
    name = str(compute.get("executor") or "local")
    if name == "local":
        return LocalExecutor()
    if name == "slurm":
        from lab.run.slurm import SlurmExecutor

        return SlurmExecutor(compute)
    raise BadInput(f"[compute] executor {name!r} is not known; use \"local\" or \"slurm\"")
