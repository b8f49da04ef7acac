"""The executor seam: where a stage unit runs (submit, poll, cancel, its event file); local today.

The coordinator (lab.run.coordinator, through lab.run.runner.Runner) never starts or signals a stage
process itself: it asks an Executor to submit a stage unit, or to adopt one that is already running,
and talks to the returned StageUnit. `LocalExecutor` runs a unit as a worker process on this machine
(lab.run.workers.StageWorker). A cluster executor (issue #17: submitit's Slurm executor) implements
the same two protocols: its unit's events come from the event file the worker writes under the study
home, its state from the scheduler, and its cancel is the scheduler's cancel. See docs/coordinator.md.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator, Optional, Protocol

from lab.core.events import Event, WorkerExit
from lab.run.workers import StageWorker
from lab.store import StageRun, Store


class StageUnit(Protocol):
    """One submitted (or adopted) stage: what the coordinator needs from wherever it runs."""

    stage: str

    def describe(self) -> str: ...                       # "worker pid 12 on host" / "job 345 on node7"
    def events(self) -> Iterator[Event]: ...             # a submitted unit's events until it ends
    def wait(self) -> WorkerExit | int: ...              # a submitted unit's exit code
    def poll(self) -> list[Event]: ...                   # new events from its event file
    def run(self) -> StageRun: ...                       # its state now (a dead unit's stage is marked interrupted)
    def wait_ended(self, stop: Optional[threading.Event] = None) -> StageRun: ...  # an adopted unit's end
    def cancel(self) -> bool: ...                        # ask it to checkpoint and stop
    def detach(self) -> None: ...                        # nobody follows it any more; it goes on


class Executor(Protocol):
    """Where stage units run."""

    name: str

    def submit(self, store: Store, study_id: int, stage: str) -> StageUnit: ...
    def adopt(self, store: Store, study_id: int, stage: str) -> Optional[StageUnit]: ...
    def event_file(self, store: Store, study_id: int, stage: str) -> Path: ...


class LocalExecutor:
    """Stage units as worker processes on this machine, each in its own session (lab.run.workers)."""

    name = "local"

    def submit(self, store: Store, study_id: int, stage: str) -> StageUnit:
        return StageWorker.start(store, study_id, stage)

    def adopt(self, store: Store, study_id: int, stage: str) -> Optional[StageUnit]:
        return StageWorker.adopt(store, study_id, stage)

    def event_file(self, store: Store, study_id: int, stage: str) -> Path:
        return store.home.event_log(study_id, stage)


def executor_for(name: str = "local") -> Executor:
    """The executor a study names; only `local` exists today (`slurm` is issue #17)."""
    if name != "local":
        from lab.core.errors import BadInput

        raise BadInput(f"executor {name!r} is not available; use executor = \"local\"")
    return LocalExecutor()
