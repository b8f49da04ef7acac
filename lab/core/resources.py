"""Running out of memory or disk: halve the batch and retry, or fail so the study can resume.

Why: a batch size that fits one GPU (or one CPU box) does not fit another; a stage should shrink its
batches and go on, and say that it did, rather than die hours in. A full disk cannot be worked
around; the stage fails with a plain message, its checkpoints stay, and the next run resumes.

``run_halving(fn, batch_size, what)`` calls ``fn(size)``; on an out-of-memory error it frees the
device cache, halves the size and calls ``fn`` again, down to 1. ``fn`` must be restartable: it
starts its unit of work over (from the last checkpoint) at the new size. The size that fitted is
remembered for `what` for the rest of the stage (this process), and every halving goes to the
recorder the worker installs (a ``batch_halvings`` metric and a log line).

This module imports torch only when an error has to be classified or a CUDA cache emptied.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, TypeVar

from lab.core.errors import StageFailed

T = TypeVar("T")
# (what, old size, new size, halvings so far for `what`)
HalveRecorder = Callable[[str, int, int, int], None]

HALVINGS_METRIC = "batch_halvings"
OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory")


class ResourceExhausted(StageFailed):
    """The machine ran out of something; the stage's checkpoints are kept and a rerun resumes them."""


class OutOfMemory(ResourceExhausted):
    """Out of memory even at batch size 1."""


class DiskFull(ResourceExhausted):
    """No space left while writing an artifact or checkpoint."""


RESUMABLE = tuple(cls.__name__ for cls in (OutOfMemory, DiskFull))


def resumable_failure(error: Optional[str]) -> bool:
    """Did a stage fail (its StageRun.error, 'Type: message') for a reason its checkpoints survive?"""
    return bool(error) and error.split(":", 1)[0] in RESUMABLE  # type: ignore[union-attr]


def is_oom(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, the CPU allocator's RuntimeError, or Python's MemoryError."""
    if isinstance(exc, MemoryError):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return any(m in text for m in OOM_MARKERS)


def free_memory(device: Any = None) -> None:
    """Drop the failed batch's tensors and give cached CUDA blocks back before the retry."""
    gc.collect()
    import torch

    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.empty_cache()


_fitted: dict[str, int] = {}
_halvings: dict[str, int] = {}
_recorder: Optional[HalveRecorder] = None
_in_stage = False  # sizes are remembered only inside a stage's `recording` scope


def reset(recorder: Optional[HalveRecorder] = None) -> None:
    """A new stage starts in this process: forget remembered sizes, record halvings with `recorder`."""
    global _recorder
    _fitted.clear()
    _halvings.clear()
    _recorder = recorder


@contextmanager
def recording(recorder: Optional[HalveRecorder]) -> Iterator[None]:
    """reset(recorder) for the duration of a stage, and forget it afterwards.

    Outside such a scope (a stage function called directly, a library caller) run_halving still
    halves, but nothing outlives the call: a size that fitted one run never leaks into the next."""
    global _in_stage
    reset(recorder)
    _in_stage = True
    try:
        yield
    finally:
        _in_stage = False
        reset(None)


def fitted_size(what: str, batch_size: int) -> int:
    """The batch size to start `what` with: the configured one, or the smaller one that fitted."""
    return max(1, min(int(batch_size), _fitted.get(what, int(batch_size))))


def run_halving(fn: Callable[[int], T], batch_size: int, what: str, *, device: Any = None,
                on_halve: Optional[HalveRecorder] = None) -> T:
    """fn(size) with the largest size <= batch_size that fits; halve and retry on out-of-memory."""
    size = fitted_size(what, batch_size)
    counts = _halvings if _in_stage else {}  # outside a stage, nothing outlives this call
    while True:
        failed = False
        try:
            result = fn(size)
        except (RuntimeError, MemoryError) as exc:
            if not is_oom(exc):
                raise
            if size <= 1:
                raise OutOfMemory(f"out of memory in a {what} batch even at batch size 1; use a smaller model, "
                                  f"dtype = \"bfloat16\" or a device with more memory, then run again "
                                  f"(it resumes)") from exc
            failed = True  # retry outside the except block, so the failed batch's frames are released
        if not failed:
            return result
        free_memory(device)
        old, size = size, size // 2
        counts[what] = counts.get(what, 0) + 1
        if _in_stage:  # a cap learned from running out of memory; a plain success teaches nothing
            _fitted[what] = size
        for record in (on_halve, _recorder):
            if record is not None:
                record(what, old, size, counts[what])


def stage_recorder(ctx: Any) -> HalveRecorder:
    """A recorder for a StageContext: metric batch_halvings (condition = what, value = the new batch
    size, n = halvings so far; the row is an upsert, so it ends at the final size) and a log line."""

    def record(what: str, old: int, new: int, count: int) -> None:
        ctx.log(f"out of memory in a {what} batch of {old}: halved the batch to {new} and retried", level="warning")
        ctx.metric(HALVINGS_METRIC, float(new), condition=what, n=count)

    return record
