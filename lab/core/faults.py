"""Test-only fault injection: a crash or a resource error at a named point of a running stage.

Why: recovery code (checkpoints, atomic writes, halving the batch on out-of-memory, resuming after a
full disk) only earns trust when a test can make the fault happen at an exact, repeatable place.
With ``NEURON_PILOT_TEST_FAULT`` unset (normal use) every function here is a no-op.

Spec (one fault per process; it fires only inside the stage it names, which the worker sets):

- ``kill:<stage>:<point>[:<n>]`` — SIGKILL this process at the n-th (default 1st) passing of
  <point>: ``before_checkpoint`` / ``after_checkpoint`` (around a checkpoint save),
  ``artifact_write`` (an artifact's temp file is written and synced, not yet renamed into place) or
  ``db_commit`` (a metric or artifact row is inside its open transaction, not yet committed);
- ``oom:<stage>:<n>`` — the n-th batch raises an out-of-memory error, once (CUDA's
  torch.OutOfMemoryError on a CUDA device, the CPU allocator's RuntimeError otherwise);
- ``enospc:<stage>[:<n>]`` — the n-th artifact write raises OSError(ENOSPC) after writing part of
  its temp file, once;
- ``slow:<stage>:<seconds>`` — every checkpoint save of the stage is followed by a pause of <seconds>
  (a float), so a test can stop, cancel or preempt a unit that is reliably mid-stage;
- ``dbfull:<command>`` — lab.db may not grow by a single page (SQLite's own "database or disk is
  full", as on a full disk); <command> is the CLI command that sets it as its stage (`new`, `export`).

Counts are per process, so a resumed worker counts from zero again.
"""

from __future__ import annotations

import errno
import os
import signal
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

FAULT_ENV = "NEURON_PILOT_TEST_FAULT"
KILL_POINTS = ("before_checkpoint", "after_checkpoint", "artifact_write", "db_commit")
CHECKPOINT_DIR_NAME = ".checkpoint"  # lab.core.paths.Home.checkpoint_dir: writes under it are checkpoints


@dataclass(frozen=True)
class Fault:
    kind: str  # kill | oom | enospc
    stage: str
    point: str  # a KILL_POINTS name, "batch" (oom) or "artifact_write" (enospc)
    n: int
    seconds: float = 0.0  # slow: the pause after each checkpoint


_stage: Optional[str] = None
_counts: Counter[str] = Counter()
_fired: set[str] = set()


def parse(spec: str) -> Fault:
    """The fault a spec names; a malformed spec raises ValueError (a typo must not pass silently)."""
    parts = spec.strip().split(":")
    kind = parts[0]
    try:
        if kind == "kill" and len(parts) in (3, 4) and parts[2] in KILL_POINTS:
            return Fault("kill", parts[1], parts[2], int(parts[3]) if len(parts) == 4 else 1)
        if kind == "oom" and len(parts) == 3:
            return Fault("oom", parts[1], "batch", int(parts[2]))
        if kind == "slow" and len(parts) == 3 and float(parts[2]) >= 0:
            return Fault("slow", parts[1], "after_checkpoint", 1, float(parts[2]))
        if kind == "dbfull" and len(parts) == 2:
            return Fault("dbfull", parts[1], "db", 1)
        if kind == "enospc" and len(parts) in (2, 3):
            return Fault("enospc", parts[1], "artifact_write", int(parts[2]) if len(parts) == 3 else 1)
    except ValueError:
        pass
    raise ValueError(f"{FAULT_ENV}={spec!r} is not a fault spec: use kill:<stage>:<point>[:<n>] "
                     f"(point: {', '.join(KILL_POINTS)}), oom:<stage>:<n>, enospc:<stage>[:<n>], slow:<stage>:<seconds> or "
                     f"dbfull:<command>")


def armed() -> Optional[Fault]:
    """The fault configured for the running stage, or None (always None when the variable is unset)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec or _stage is None:
        return None
    fault = parse(spec)
    return fault if fault.stage == _stage else None


def set_stage(stage: Optional[str]) -> None:
    """Called by the worker when a stage starts: faults fire only in the stage they name."""
    global _stage
    _stage = stage
    _counts.clear()
    _fired.clear()
    if stage is not None and os.environ.get(FAULT_ENV):
        parse(os.environ[FAULT_ENV])  # fail at once on a malformed spec


def _reached(fault: Fault, point: str) -> bool:
    """Count one passing of `point`; True exactly when this is the fault's n-th (and it has not fired)."""
    if fault.point != point:
        return False
    _counts[point] += 1
    if _counts[point] == fault.n and point not in _fired:
        _fired.add(point)
        return True
    return False


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def point(name: str) -> None:
    """A kill point (one of KILL_POINTS other than artifact_write, which `artifact_written` handles;
    checkpoint saves use `checkpoint_save`)."""
    fault = armed()
    if fault is not None and fault.kind == "kill" and _reached(fault, name):
        _die()


@contextmanager
def checkpoint_save() -> Iterator[None]:
    """Wrap a checkpoint save: the before_checkpoint and after_checkpoint kill points."""
    point("before_checkpoint")
    yield
    point("after_checkpoint")
    fault = armed()
    if fault is not None and fault.kind == "slow":
        import time

        time.sleep(fault.seconds)


def artifact_written(path: Path) -> None:
    """Called by atomic_write after the temp file is written, before it is synced and renamed."""
    fault = armed()
    if fault is None or CHECKPOINT_DIR_NAME in Path(path).parts:
        return
    if fault.kind == "kill" and _reached(fault, "artifact_write"):
        _die()
    if fault.kind == "enospc" and _reached(fault, "artifact_write"):
        raise OSError(errno.ENOSPC, f"No space left on device (injected by {FAULT_ENV})", str(path))


def db_connected(cursor: Any) -> None:
    """Called on every new lab.db connection: the dbfull fault caps the file at its current size."""
    fault = armed()
    if fault is not None and fault.kind == "dbfull":
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count={max(1, int(pages))}")


def oom_error(device: Any = None) -> RuntimeError:
    """The error the device's allocator raises when a batch does not fit."""
    import torch

    if device is not None and torch.device(device).type == "cuda":
        return torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (injected by {FAULT_ENV})")
    return RuntimeError(f"[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                        f"you tried to allocate 2147483648 bytes (injected by {FAULT_ENV})")


def batch(device: Any = None) -> None:
    """Called once per batch, before its forward pass: the oom fault fires at the n-th."""
    fault = armed()
    if fault is not None and fault.kind == "oom" and _reached(fault, "batch"):
        raise oom_error(device)


@contextmanager
def batches_of(model: Any, device: Any = None) -> Iterator[None]:
    """Count every forward call of `model` as a batch (for loops we do not own, e.g. lm-eval's)."""
    fault = armed()
    if fault is None or fault.kind != "oom":
        yield
        return
    handle = model.register_forward_pre_hook(lambda _m, _a: batch(device))
    try:
        yield
    finally:
        handle.remove()
