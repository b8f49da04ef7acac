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
    """done/total in the stage's unit, its label, the worker's timestamp, and the event's other keys
    (`extra`): `unit_label` (the unit of work now, e.g. "hi 3/6"), `overall_done` / `overall_total`
    (the whole stage's work when done/total count one part of it), `fraction` (of the whole stage)."""

    def __init__(self, study: int, stage: str, done: int, total: int, unit: str, label: Optional[str],
                 t: float, extra: Optional[dict[str, Any]] = None) -> None:
        super().__init__()
        self.study, self.stage = study, stage
        self.done, self.total, self.unit, self.label, self.t = done, total, unit, label, t
        self.extra: dict[str, Any] = extra or {}

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


def progress_extra(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("done", "total", "unit", "label")}


def message_for(event: Event, study: int) -> Message:
    """The UI message for one worker event (study falls back to the runner's when missing)."""
    sid = event.study or study
    data: dict[str, Any] = event.data
    if event.event == "progress":
        return StageProgress(sid, event.stage, int(data.get("done") or 0), int(data.get("total") or 0),
                             str(data.get("unit") or ""), data.get("label"), event.t, progress_extra(data))
    if event.event in ("done", "error", "interrupted"):
        return StageFinished(sid, event.stage, event.event, event.describe())
    level = str(data.get("level") or "info") if event.event == "log" else "info"
    return StageLog(sid, event.stage, level, event.describe())
