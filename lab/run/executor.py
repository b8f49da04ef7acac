"""The executor seam: where a stage unit runs (submit, re-attach, status, cancel); local or Slurm.

The coordinator (lab.run.runner.Runner) never starts or signals a stage process itself: it writes the
unit's input file (lab.run.unit), asks an Executor to submit the worker command, records the job id
in the stage's row, and then only *reads files*: the unit's event file (which it ingests into lab.db,
lab.run.ingest) and the executor's status. A unit never opens lab.db, so local and Slurm units take
the same path through the coordinator and the same tests cover both. See docs/coordinator.md and
docs/cluster.md.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

from lab.core.paths import Home
from lab.run.launcher import launch, read_exit
from lab.store.leases import pid_alive

# Scheduler states a unit can end in that are not the worker's own doing, and what they mean.
# PREEMPTED and NODE_FAIL resubmit (up to [compute] max_resubmits) and resume from the checkpoint.
RESUBMIT_STATES = ("PREEMPTED", "NODE_FAIL", "BOOT_FAIL")


SETTLING = ("RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT")  # a job on its way out


@dataclass(frozen=True)
class UnitStatus:
    """Where a submitted unit stands. `state` is the scheduler's word (PENDING, RUNNING, COMPLETED, FAILED,
    CANCELLED, TIMEOUT, PREEMPTED, NODE_FAIL, OUT_OF_MEMORY; locally RUNNING / COMPLETED / FAILED / KILLED /
    GONE),
    `alive` whether it may still write events, `reason` the scheduler's reason (PENDING: Priority,
    Resources...), `node` where it runs or ran."""

    state: str
    alive: bool
    reason: str = ""
    node: str = ""
    exit_code: Optional[int] = None

    def describe(self) -> str:
        where = f" on {self.node}" if self.node else ""
        why = f" ({self.reason})" if self.reason and self.reason not in ("None", "(null)") else ""
        return f"{self.state}{why}{where}"


class StageUnit(Protocol):
    """One submitted (or re-attached) stage unit."""

    stage: str
    job_id: str  # what the stage row records to re-attach: a pid locally, the Slurm job id

    def describe(self) -> str: ...             # "worker pid 12 on host" / "slurm job 345"
    def status(self) -> UnitStatus: ...        # asks the scheduler (or the OS) now
    def cancel(self) -> bool: ...              # ask it to checkpoint and stop (SIGTERM / scancel)
    def log_tail(self, lines: int = 20) -> str: ...  # the end of its stdout+stderr log, for a unit that died


class Executor(Protocol):
    """Where stage units run."""

    name: str

    def submit(self, home: Home, study_id: int, stage: str, command: list[str],
               env: Optional[dict[str, str]] = None) -> StageUnit: ...
    # several units at once (a stage that runs as several): a Slurm job array; locally one process each
    def submit_array(self, home: Home, study_id: int, stage: str, keys: list[str],
                     commands: list[list[str]]) -> list[StageUnit]: ...
    def reattach(self, home: Home, study_id: int, stage: str, job_id: str, host: str) -> StageUnit: ...
    def advice(self, status: UnitStatus) -> str: ...  # what a unit's end means, and the knob to turn


ADVICE = {
    "TIMEOUT": "it reached its time limit; raise [compute] time_min (it resumes from its last checkpoint)",
    "PREEMPTED": "the scheduler preempted it; it is resubmitted automatically up to [compute] max_resubmits",
    "NODE_FAIL": "its node failed; it is resubmitted automatically up to [compute] max_resubmits",
    "OUT_OF_MEMORY": "it ran out of host memory; raise [compute] mem_gb, or lower the stage's batch_size",
    "CANCELLED": "it was cancelled; run the study again to resume from its last checkpoint",
    "GONE": "its process is gone (killed?); run the study again to resume from its last checkpoint",
    "KILLED": "its process was killed by a signal; run the study again to resume from its last checkpoint",
    "FAILED": "it failed before recording its end; see the end of its log below, fix that, and run again",
    "BOOT_FAIL": "its node failed to boot; run again (or exclude the node with [compute] extra)",
    "DEADLINE": "it reached its deadline; run again with a later deadline",
}


def settled(unit: StageUnit, timeout: float = 90.0) -> UnitStatus:
    """The unit's state once the scheduler is done with it (a job that wrote its end may still be
    RUNNING or COMPLETING for a few seconds); a requeued job shows as alive again (PENDING)."""
    deadline = time.monotonic() + timeout
    status = unit.status()
    while status.state in SETTLING and time.monotonic() < deadline:
        time.sleep(0.5)
        status = unit.status()
    return status


def failure_advice(status: UnitStatus) -> str:
    """What a local unit's end means, in plain words, and the knob to turn."""
    return ADVICE.get(status.state, f"it ended {status.state}; run the study again to resume")


def unit_log(home: Home, study_id: int, stage: str) -> Path:
    """Where a unit's own stdout and stderr go (a Slurm job's log lives in the executor's folder)."""
    return home.logs / f"study-{study_id}" / f"{stage}.out"


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class LocalUnit:
    """A worker process on this machine, in its own session (it outlives whoever started it)."""

    def __init__(self, home: Home, study_id: int, stage: str, pid: int, host: str,
                 proc: Optional[subprocess.Popen[bytes]] = None, launched: bool = False) -> None:
        self.home, self.study_id, self.stage = home, study_id, stage
        self.pid, self.host, self._proc = pid, host, proc
        self.launched = launched  # forked by a warm launcher (lab.run.launcher): its exit status is in a file
        self.job_id = str(pid)

    def describe(self) -> str:
        return f"worker pid {self.pid} on {self.host}"

    def status(self) -> UnitStatus:
        if self._proc is not None:
            return self._ended(self._proc.poll())
        if self.host != socket.gethostname():  # another login node started it: nothing here can see it
            return UnitStatus("UNKNOWN", True, reason=f"started on {self.host}", node=self.host)
        if pid_alive(self.pid):
            return UnitStatus("RUNNING", True, node=self.host)
        log = unit_log(self.home, self.study_id, self.stage)
        code = read_exit(log, self.pid)
        deadline = time.monotonic() + (2.0 if self.launched else 0.0)
        while code is None and time.monotonic() < deadline:  # the launcher records it right after reaping
            time.sleep(0.05)
            code = read_exit(log, self.pid)
        return UnitStatus("GONE", False, node=self.host) if code is None else self._ended(code)

    def _ended(self, code: Optional[int]) -> UnitStatus:
        if code is None:
            return UnitStatus("RUNNING", True, node=self.host)
        state = "COMPLETED" if code == 0 else ("KILLED" if code < 0 else "FAILED")
        return UnitStatus(state, False, node=self.host, exit_code=code)

    def cancel(self) -> bool:
        if self.host != socket.gethostname() or not self.status().alive:
            return False
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True

    def log_tail(self, lines: int = 20) -> str:
        return tail(unit_log(self.home, self.study_id, self.stage), lines)


class LocalExecutor:
    """Stage units as worker processes on this machine. Their stdout (the JSON-lines events, also in the
    event file) and stderr go to logs/study-N/STAGE.out."""

    name = "local"

    def submit(self, home: Home, study_id: int, stage: str, command: list[str],
               env: Optional[dict[str, str]] = None) -> StageUnit:
        """`stage` names the unit's files (STAGE, or STAGE.UNIT for one of a stage's several units); `env`
        adds to the worker's environment (CUDA_VISIBLE_DEVICES for a unit given one GPU)."""
        log = unit_log(home, study_id, stage)
        log.parent.mkdir(parents=True, exist_ok=True)
        full = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        pid = launch(command, log, full)  # forked from a warm launcher, where one runs (the test suite's)
        if pid is not None:
            return LocalUnit(home, study_id, stage, pid, socket.gethostname(), launched=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=full)
        return LocalUnit(home, study_id, stage, proc.pid, socket.gethostname(), proc)

    def submit_array(self, home: Home, study_id: int, stage: str, keys: list[str],
                     commands: list[list[str]]) -> list[StageUnit]:
        return [self.submit(home, study_id, key, cmd) for key, cmd in zip(keys, commands)]

    def reattach(self, home: Home, study_id: int, stage: str, job_id: str, host: str) -> StageUnit:
        return LocalUnit(home, study_id, stage, int(job_id), host or socket.gethostname())

    def advice(self, status: UnitStatus) -> str:
        return failure_advice(status)


def worker_command(home: Home, study_id: int, stage: str, part: Optional[str] = None) -> list[str]:
    """The stage unit's command line, the same for every executor (`part`: one of a stage's several units)."""
    return [sys.executable, "-m", "lab.worker", "--home", str(home.root), "--study", str(study_id), "--stage", stage,
            *(["--unit", part] if part else [])]
