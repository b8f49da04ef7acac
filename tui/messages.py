"""Typed messages that carry a stage worker's events into the UI thread.

Worker events arrive on the runner's thread (or from a followed event log); they become these
messages so widgets update on the UI thread only. Progress is high-rate, so a queued StageProgress
for the same stage is replaced by the next one instead of piling up.
"""

from __future__ import annotations

from typing import Any, Optional

from textual.message import Message

from lab.core.events import Event


class StageProgress(Message):
    def __init__(self, study: int, stage: str, done: int, total: int, unit: str, label: Optional[str],
                 t: float) -> None:
        super().__init__()
        self.study, self.stage = study, stage
        self.done, self.total, self.unit, self.label, self.t = done, total, unit, label, t

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StageProgress) and (message.study, message.stage) == (self.study, self.stage)


class StageLog(Message):
    def __init__(self, study: int, stage: str, level: str, text: str) -> None:
        super().__init__()
        self.study, self.stage, self.level, self.text = study, stage, level, text


class StageFinished(Message):
    """A stage's worker ended: kind is done, error or interrupted."""

    def __init__(self, study: int, stage: str, kind: str, text: str) -> None:
        super().__init__()
        self.study, self.stage, self.kind, self.text = study, stage, kind, text


def message_for(event: Event, study: int) -> Message:
    """The UI message for one worker event (study falls back to the runner's when missing)."""
    sid = event.study or study
    data: dict[str, Any] = event.data
    if event.event == "progress":
        return StageProgress(sid, event.stage, int(data.get("done") or 0), int(data.get("total") or 0),
                             str(data.get("unit") or ""), data.get("label"), event.t)
    if event.event in ("done", "error", "interrupted"):
        return StageFinished(sid, event.stage, event.event, event.describe())
    level = str(data.get("level") or "info") if event.event == "log" else "info"
    return StageLog(sid, event.stage, level, event.describe())
