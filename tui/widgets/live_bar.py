"""The bottom bar: one progress bar per running stage over all of its work, with the unit of work now
(`identify · hi 3/6`), the rate and ETA from the measured throughput, the time between stages said
as what it is (`identify · starting worker · loading model 12 s`), and the last status message."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Label, ProgressBar, Static

from tui.formatting import clip, fmt_duration

WINDOW_S = 30.0  # throughput is measured over the last half minute of progress
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
TEXT_WIDTH = 64  # the live text's columns at 80 (the bar takes the rest)


@dataclass
class Work:
    """Where a stage stands over ALL of its work: done/total in `unit`, or a fraction of it."""

    done: float
    total: float
    unit: str
    unit_label: Optional[str]
    label: Optional[str]

    @property
    def fraction(self) -> float:
        return min(max(self.done / self.total, 0.0), 1.0) if self.total > 0 else 0.0


def stage_work(done: int, total: int, unit: str, label: Optional[str], extra: Optional[dict[str, Any]] = None) -> Work:
    """The whole stage's work from one progress event: `overall_done`/`overall_total` when the event
    counts one part of the stage (identify: one language's tokens), `fraction` when the stage says
    how far it is inside its units (reproduce: inside a pass), else done/total. The unit of work now
    is the stage's `unit_label`, or `<label> i/n` from `language_index`/`languages`."""
    extra = extra or {}
    unit_label = extra.get("unit_label")
    if unit_label is None and isinstance(extra.get("language_index"), int) and extra.get("languages"):
        unit_label = f"{label} {extra['language_index'] + 1}/{extra['languages']}"
        label = None  # said by the unit label
    if isinstance(extra.get("overall_done"), (int, float)) and extra.get("overall_total"):
        return Work(float(extra["overall_done"]), float(extra["overall_total"]), unit, unit_label, label)
    if isinstance(extra.get("fraction"), (int, float)) and total > 0:
        return Work(float(extra["fraction"]) * total, float(total), unit, unit_label, label)
    return Work(float(done), float(total), unit, unit_label, label)


@dataclass
class RateTracker:
    """Rate and ETA from the throughput measured over the last WINDOW_S seconds of progress (worker
    timestamps), in the stage's own unit of overall work."""

    points: deque = field(default_factory=deque)  # (t, done)
    total: float = 0.0
    unit: str = ""
    label: Optional[str] = None

    def add(self, t: float, done: float, total: float, unit: str, label: Optional[str] = None) -> None:
        if self.points and (done < self.points[-1][1] or total != self.total):
            self.points.clear()  # the work restarted or changed size: measure afresh
        self.points.append((t, done))
        while len(self.points) > 2 and t - self.points[1][0] >= WINDOW_S:
            self.points.popleft()
        self.total, self.unit, self.label = total, unit, label

    @property
    def rate(self) -> Optional[float]:
        if len(self.points) < 2:
            return None
        (t0, d0), (t1, d1) = self.points[0], self.points[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 and d1 > d0 else None

    @property
    def eta(self) -> Optional[float]:
        rate = self.rate
        if rate is None or not self.points:
            return None
        return max(self.total - self.points[-1][1], 0) / rate


def fmt_rate(rate: float, unit: str) -> str:
    """`1.9k tokens/s`; slow work per minute (`3.2 passes/min`)."""
    per = "s"
    if rate < 0.5:
        rate, per = rate * 60, "min"
    for step, suffix in ((1e6, "M"), (1e3, "k")):
        if rate >= step:
            return f"{rate / step:.3g}{suffix} {unit}/{per}"
    return f"{rate:.2g} {unit}/{per}" if rate < 10 else f"{rate:.0f} {unit}/{per}"


def progress_text(stage: str, work: Work, tracker: Optional[RateTracker], width: int = TEXT_WIDTH) -> str:
    """`identify · hi 3/6 · 52% · 1.9k tokens/s · ETA 0:41 · label`, fitted to `width` by shortening
    the words first: the label, then the unit label, then the stage name; numbers are never cut."""
    rate = tracker.rate if tracker else None
    eta = tracker.eta if tracker else None
    numbers = [f"{int(100 * work.fraction)}%"]
    if rate:
        numbers.append(fmt_rate(rate, work.unit))
    numbers.append(f"ETA {fmt_duration(eta)}")
    tail = " · ".join(numbers)
    words = [stage] + ([work.unit_label] if work.unit_label else [])
    label = work.label or ""

    def join(ws: list[str], lab: str) -> str:
        return " · ".join([*ws, tail] + ([lab] if lab else []))

    text = join(words, label)
    if len(text) <= width:
        return text
    room = width - len(join(words, ""))
    if room >= 6 + 3:  # the label, shortened
        return join(words, clip(label, room - 3))
    for i in range(len(words) - 1, -1, -1):  # then the unit label, then the stage name
        others = len(join(words[:i] + words[i + 1:], "")) + 3
        keep = max(width - others, 4)
        words[i] = clip(words[i], keep)
        if len(join(words, "")) <= width:
            break
    return join(words, "")


class LiveBar(Vertical):
    status_text: str = ""
    _spin_timer: Optional[Timer] = None
    _spin_frame: int = 0
    _wait_timer: Optional[Timer] = None
    _waiting: Optional[tuple[str, str, float]] = None  # (stage, what, since)

    def compose(self) -> ComposeResult:
        with Horizontal(id="live-row"):
            yield ProgressBar(total=1, show_eta=False, show_percentage=False, id="live-progress")  # the text says it
            yield Label("idle", id="live-text")
        yield Static("", id="status-line")

    def on_mount(self) -> None:
        self.query_one("#live-progress", ProgressBar).display = False

    def _text_width(self) -> int:
        width = self.query_one("#live-text", Label).size.width
        return width if width > 10 else TEXT_WIDTH

    def show_progress(self, stage: str, work: Work, tracker: Optional[RateTracker]) -> None:
        self._stop_waiting()
        bar = self.query_one("#live-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(work.total, 1), progress=min(work.done, max(work.total, 1)))
        self.query_one("#live-text", Label).update(progress_text(stage, work, tracker, self._text_width()))

    def show_waiting(self, stage: str, what: str) -> None:
        """Time between stages (a worker starting, a model loading), counted up each second; a later
        step keeps the clock of the first (`starting worker · loading model 12 s`)."""
        since = time.monotonic()
        if self._waiting is not None and self._waiting[0] == stage:
            since = self._waiting[2]
            if what not in self._waiting[1]:
                what = f"{self._waiting[1]} · {what}"
            else:
                what = self._waiting[1]
        self._waiting = (stage, what, since)
        self.query_one("#live-progress", ProgressBar).display = False
        self._tick()
        if self._wait_timer is None:
            self._wait_timer = self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        if self._waiting is None:
            return
        stage, what, since = self._waiting
        text = f"{stage} · {what} {int(time.monotonic() - since)} s"
        self.query_one("#live-text", Label).update(clip(text, self._text_width()))

    def _stop_waiting(self) -> None:
        self._waiting = None
        if self._wait_timer is not None:
            self._wait_timer.stop()
            self._wait_timer = None

    def show_idle(self, text: str = "idle") -> None:
        self._stop_waiting()
        self.query_one("#live-progress", ProgressBar).display = False
        self.query_one("#live-text", Label).update(text)

    def set_status(self, text: str) -> None:
        self._stop_spinner()
        self.status_text = text
        self.query_one("#status-line", Static).update(text)

    def set_busy(self, text: str) -> None:
        """A status that is still going on (e.g. an export being written): a spinner turns before it
        until the next set_status replaces it."""
        self._stop_spinner()
        self.status_text = text
        self._spin_frame = 0
        self._spin()
        self._spin_timer = self.set_interval(0.1, self._spin)

    def _spin(self) -> None:
        frame = SPINNER[self._spin_frame % len(SPINNER)]
        self._spin_frame += 1
        self.query_one("#status-line", Static).update(f"{frame} {self.status_text}")

    def _stop_spinner(self) -> None:
        if self._spin_timer is not None:
            self._spin_timer.stop()
            self._spin_timer = None
