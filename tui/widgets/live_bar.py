"""The bottom bar: the running stage's progress (units, rate, ETA) and the last status message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, Static

from tui.formatting import fmt_duration


@dataclass
class RateTracker:
    """Rate and ETA from the first and latest progress seen for one stage (worker timestamps)."""

    first: Optional[tuple[float, int]] = None
    last: Optional[tuple[float, int]] = None
    total: int = 0
    unit: str = ""
    label: Optional[str] = None

    def add(self, t: float, done: int, total: int, unit: str, label: Optional[str]) -> None:
        if self.first is None or done < self.first[1] or total != self.total:
            self.first = (t, done)
        self.last = (t, done)
        self.total, self.unit, self.label = total, unit, label

    @property
    def rate(self) -> Optional[float]:
        if self.first is None or self.last is None:
            return None
        dt = self.last[0] - self.first[0]
        dn = self.last[1] - self.first[1]
        return dn / dt if dt > 0 and dn > 0 else None

    @property
    def eta(self) -> Optional[float]:
        rate = self.rate
        if rate is None or self.last is None:
            return None
        return max(self.total - self.last[1], 0) / rate


def progress_text(stage: str, done: int, total: int, unit: str, label: Optional[str],
                  tracker: Optional[RateTracker]) -> str:
    """Counts, rate and ETA first (they matter most on a narrow terminal), the label last."""
    rate = tracker.rate if tracker else None
    eta = tracker.eta if tracker else None
    rate_s = f" · {rate:.3g} {unit}/s" if rate else ""
    what = f" · {label}" if label else ""
    return f"{stage} {done}/{total} {unit}{rate_s} · ETA {fmt_duration(eta)}{what}"


class LiveBar(Vertical):
    status_text: str = ""

    def compose(self) -> ComposeResult:
        with Horizontal(id="live-row"):
            yield ProgressBar(total=1, show_eta=False, id="live-progress")
            yield Label("idle", id="live-text")
        yield Static("", id="status-line")

    def show_progress(self, stage: str, done: int, total: int, unit: str, label: Optional[str],
                      tracker: Optional[RateTracker]) -> None:
        bar = self.query_one("#live-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(total, 1), progress=min(done, max(total, 1)))
        self.query_one("#live-text", Label).update(progress_text(stage, done, total, unit, label, tracker))

    def show_idle(self, text: str = "idle") -> None:
        self.query_one("#live-progress", ProgressBar).display = False
        self.query_one("#live-text", Label).update(text)

    def on_mount(self) -> None:
        self.query_one("#live-progress", ProgressBar).display = False

    def set_status(self, text: str) -> None:
        self.status_text = text
        self.query_one("#status-line", Static).update(text)
