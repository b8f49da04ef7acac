"""Running a study's stages from the UI without ever blocking it or tying stages to it.

lab.run.runner.Runner does the work (worker subprocesses, gates, lease). Its event callback turns each
worker event into a typed message posted to the app. The runner itself runs on a daemon thread that
the Textual thread worker waits on: when the app quits, the Textual worker is cancelled, returns at
once, and the runner is detached — its next event raises Detached, which ends it (the runner then
stops reading the worker's pipe). The stage's worker process, in its own session, keeps running and
keeps writing its event log and the DB, where a reopened UI finds it again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from lab.core.events import Event
from lab.run.runner import RunOutcome, Runner
from tui.messages import message_for


class Detached(Exception):
    """Raised inside the runner's thread once the UI no longer follows it."""


@dataclass
class RunHandle:
    """One UI-started run of a study; the app holds at most one."""

    study_id: int
    post: Callable[[Any], Any]
    runner: Optional[Runner] = None
    detached: threading.Event = field(default_factory=threading.Event)
    current_stage: Optional[str] = None

    def on_event(self, event: Event) -> None:
        if self.detached.is_set():
            raise Detached()
        if event.stage:
            self.current_stage = event.stage
        self.post(message_for(event, self.study_id))

    def cancel(self) -> bool:
        """SIGTERM to the running stage (it checkpoints and exits); no further stages start."""
        if self.runner is None:
            return False
        self.runner.cancel()
        return True

    def detach(self) -> None:
        self.detached.set()


def run_in_daemon(handle: RunHandle, make_runner: Callable[[RunHandle], Runner], is_cancelled: Callable[[], bool],
                  poll_s: float = 0.1) -> Optional[RunOutcome]:
    """Run the study on a daemon thread; return its outcome, or None once the caller is cancelled."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            handle.runner = make_runner(handle)
            box["outcome"] = handle.runner.run()
        except Detached:
            pass  # the runner let go of its worker (lab.run.runner._spawn); the worker goes on alone
        except BaseException as exc:  # handed to the Textual worker, which reports it in the UI
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"runner-study-{handle.study_id}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(poll_s)
        if is_cancelled():
            handle.detach()
            return None
    if "error" in box:
        raise box["error"]
    return box.get("outcome")
