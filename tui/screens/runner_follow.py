"""How a study screen follows a background runner (lab.run.coordinator): the log read back from the
event files, the runner's relayed events, its end, and a pilot that waits on a gate. A mixin of
StudyScreen; it touches no process, only lab.run's files and the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from lab.core.events import Event
from lab.run.coordinator import DetachedRun, coordinator_of, read_back, runner_events, runner_log
from lab.run.workers import EventLog
from tui.messages import StageFinished, StageLog, message_for
from tui.study_state import end_message
from tui.widgets.live_bar import LiveBar
from tui.widgets.stepper import StageStepper


def last_line(path: Path) -> str:
    """The runner log's last line (how it ended: its outcome, or a one-line error)."""
    try:
        lines = [x for x in path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:] if x.strip()]
    except OSError:
        return "see the Log tab"
    return lines[-1] if lines else "see the Log tab"


class RunnerFollowing:
    """Following a study's background runner (StudyScreen provides the attributes typed below)."""

    study_id: int
    store: Any
    protocol: Any
    runner_proc: Optional[DetachedRun]
    following_runner: bool
    _runner_log: Optional[EventLog]
    _shown: set[str]
    query_one: Any
    write_log: Any
    set_status: Any
    ensure_recommendations: Any
    refresh_view: Any
    open_decision: Any
    _dispatch: Any

    def read_back_log(self) -> None:
        """The whole log from the event files (every stage's and the background runner's), so nothing
        written while no UI watched is lost; the store's log lines when there are no event files."""
        events = read_back(self.store, self.study_id, self.protocol.stage_names)
        if not events:
            for line in self.store.logs(self.study_id, limit=100):
                self.write_log(line.stage, line.level, line.message)
        for event in events:
            self._shown.add(event.to_json())
            if event.event not in ("progress", "metric"):
                msg = message_for(event, self.study_id)
                if isinstance(msg, StageFinished):
                    self.write_log(msg.stage, "info" if msg.kind == "done" else "warning", f"{msg.kind}: {msg.text}")
                elif isinstance(msg, StageLog):
                    self.write_log(msg.stage, msg.level, msg.text)

    def follow_runner(self, started: Optional[DetachedRun]) -> None:
        """Follow a background runner: its relayed events, and each stage worker it starts."""
        self.runner_proc = started
        self.following_runner = True
        self._runner_log = EventLog(runner_events(self.store, self.study_id))

    def _runner_alive(self) -> bool:
        if self.runner_proc is not None and self.runner_proc.alive():
            return True
        return self.runner_proc is None and coordinator_of(self.store, self.study_id) is not None

    def _runner_ended(self) -> None:
        self.following_runner = False
        self.runner_proc = None
        self.query_one("#live", LiveBar).show_idle("idle")
        self.ensure_recommendations()
        self.refresh_view()
        if not self._say_waiting(open_form=True):
            views = self.query_one("#stepper", StageStepper).views
            ended = end_message(views)
            if ended:
                self.set_status(ended)
                return
            hint = " — press r to resume" if any(v.state == "interrupted" for v in views) else ""
            self.set_status(f"the background runner ended: {last_line(runner_log(self.store, self.study_id))}{hint}")

    def _say_waiting(self, open_form: bool = False) -> bool:
        """When the pilot waits on a gate for a person: say so (and open its form when asked). When a
        gate ended the pilot and only the final verdict waits, say that the pilot ended and where."""
        views = self.query_one("#stepper", StageStepper).views
        waiting = next((v for v in views if v.awaiting_decision), None)
        if waiting is None:
            return False
        ended = end_message(views)
        self.set_status(ended if ended and waiting.is_final else f"the pilot waits on gate {waiting.name}: press d to decide")
        if open_form:
            self.open_decision(waiting.name)
        return True

    def _relay(self, events: list[Event]) -> None:
        for event in events:
            key = event.to_json()
            if key in self._shown:
                continue
            self._shown.add(key)
            self._dispatch(message_for(event, self.study_id))
