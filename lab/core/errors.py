"""Error types that map onto the CLI's exit codes (DESIGN.md: 0 ok, 1 stage failed, 2 bad input)."""

from __future__ import annotations

from lab.core.events import WorkerExit


class BadInput(Exception):
    """Something the user gave is wrong. The message is one line: what is wrong and how to fix it.

    Raised before compute starts wherever possible; the CLI prints it to stderr and exits 2.
    """

    exit_code = WorkerExit.BAD_INPUT

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class StageFailed(Exception):
    """A stage ran and failed for a reason that is not the user's input (exit code 1)."""

    exit_code = WorkerExit.FAILED


class StageInterrupted(Exception):
    """The stage was asked to stop (SIGTERM) and has checkpointed; it can be resumed."""

    exit_code = WorkerExit.INTERRUPTED

