"""Pictures for results that read faster than a table: each target's accuracy gain with its interval
against the gate's threshold, and the fine-tune loss over steps (Textual's Sparkline renderable).
Like the tables, they are Rich renderables for the Results tab; `natural_width` says how wide the
whole results group wants to be, so the pane scrolls sideways instead of cutting numbers."""

from __future__ import annotations

import io
import math
import re
from typing import Any, Optional, Sequence

from rich.console import Console, Group, RenderableType
from rich.constrain import Constrain
from rich.measure import Measurement
from rich.color import Color
from rich.table import Table
from rich.text import Text
from textual.renderables.sparkline import Sparkline

from lab.store import Metric, Store
from tui.formatting import fmt_points, fmt_sig
from tui.study_state import StageView

CHART_WIDTH = 20  # columns of the interval axis (with labels and numbers it fits the 80-column results pane)
GAIN_METRIC = "accuracy_delta"
POOLED = "targets"  # the evaluate stage's row pooling every target's items (what the gate decides on)
LOSS_LABEL = re.compile(r"^(?P<name>.+?) step (?P<step>\d+)/(?P<steps>\d+)$")


def natural_width(renderable: RenderableType, at_least: int = 1) -> int:
    """The width the tables and charts of a renderable take when nothing constrains them. Lines of
    plain text (titles, captions) do not count: they wrap at the pane's width."""
    console = Console(width=1000, color_system=None, file=io.StringIO())
    widest = at_least
    stack = [renderable]
    while stack:
        item = stack.pop()
        if isinstance(item, Group):
            stack.extend(item.renderables)
        elif not isinstance(item, (Text, str, Constrain)):
            widest = max(widest, Measurement.get(console, console.options, item).maximum)
    return widest


# ---- gain per target against the threshold -----------------------------------------------------------
def _threshold(view: StageView, cfg: dict[str, Any]) -> Optional[float]:
    rec = view.recommendation or {}
    th = (rec.get("numbers") or {}).get("thresholds") or {}
    for source in (th, cfg.get("criteria") or {}, view.spec.gate.params if view.spec.gate else {}):
        if isinstance(source.get("min_gain_points"), (int, float)):
            return float(source["min_gain_points"])
    return None


def gain_chart(rows: Sequence[Metric], targets: Sequence[str], threshold: Optional[float],
               confidence: Optional[float] = None, width: int = CHART_WIDTH) -> Optional[RenderableType]:
    """One line per target (and `pooled`, the targets' items together, which the gate decides on): its
    gain in points as `●`, its interval as `├──┤`, zero as `┆` and the threshold as `┃` on one axis."""
    gains = {m.language: m for m in rows if m.name == GAIN_METRIC and m.condition == "intervention"
             and (m.language in targets or m.language == POOLED)}
    order = [t for t in targets if t in gains] + ([POOLED] if POOLED in gains else [])
    if not order:
        return None
    pts = {k: (100 * gains[k].value,
               None if gains[k].ci_low is None else 100 * gains[k].ci_low,
               None if gains[k].ci_high is None else 100 * gains[k].ci_high) for k in order}
    span = [v for trio in pts.values() for v in trio if v is not None and math.isfinite(v)] + [0.0]
    if threshold is not None:
        span.append(threshold)
    lo, hi = min(span), max(span)
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad

    def col(x: float) -> int:
        return min(width - 1, max(0, int(round((x - lo) / (hi - lo) * (width - 1)))))

    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, justify="right")
    for key in order:
        value, ci_lo, ci_hi = pts[key]
        cells = [" "] * width
        styles: list[str] = [""] * width
        if ci_lo is not None and ci_hi is not None:
            a, b = col(ci_lo), col(ci_hi)
            for i in range(a, b + 1):
                cells[i], styles[i] = "─", "cyan"
            cells[a], cells[b] = "├", "┤"
        zero = col(0.0)
        cells[zero], styles[zero] = ("┼", "cyan") if cells[zero] == "─" else ("┆", "dim")
        if threshold is not None:
            cells[col(threshold)], styles[col(threshold)] = "┃", "bold yellow"
        passed = threshold is not None and ci_lo is not None and ci_lo >= threshold
        cells[col(value)], styles[col(value)] = "●", "bold green" if passed else "bold red"
        bar = Text()
        for ch, st in zip(cells, styles):
            bar.append(ch, style=st)
        interval = "" if ci_lo is None or ci_hi is None else f" [{fmt_points(ci_lo)}, {fmt_points(ci_hi)}]"
        table.add_row("pooled" if key == POOLED else key, bar, fmt_points(value) + interval)
    level = f"{confidence:.0%} " if confidence else ""
    head = Text("gain per target (points, ", style="bold")
    head.append(f"{level}CI) vs threshold ", style="bold")
    head.append("┃ " + ("—" if threshold is None else fmt_points(threshold, signed=False)), style="bold yellow")
    scale = Text(f"axis {fmt_points(lo + pad)} … {fmt_points(hi - pad)} points · ┆/┼ zero · ● green: the interval "
                 f"clears the threshold", style="dim")
    return Group(head, table, scale)


# ---- fine-tune loss over steps ------------------------------------------------------------------------
def loss_series(events: Sequence[Any]) -> dict[str, list[float]]:
    """variant → loss per step, from the stage's progress events (`<variant> step i/n`, loss=...)."""
    series: dict[str, dict[int, float]] = {}
    for ev in events:
        data = getattr(ev, "data", {}) or {}
        if getattr(ev, "event", "") != "progress" or not isinstance(data.get("loss"), (int, float)):
            continue
        match = LOSS_LABEL.match(str(data.get("label") or ""))
        if match is None:
            continue
        series.setdefault(match["name"], {})[int(match["step"])] = float(data["loss"])
    return {name: [steps[k] for k in sorted(steps)] for name, steps in series.items() if steps}


def loss_chart(series: dict[str, list[float]], width: int = 24) -> Optional[RenderableType]:
    """One Sparkline per fine-tuned variant (green low, red high), first and last loss beside it."""
    if not series:
        return None
    spark_width = min(width, max(len(v) for v in series.values()))
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(no_wrap=True, width=spark_width)
    table.add_column(no_wrap=True, justify="right")
    for name, losses in series.items():
        spark = Sparkline(losses, width=spark_width, min_color=Color.parse("green"), max_color=Color.parse("red"))
        table.add_row(name, spark, f"{fmt_sig(losses[0])} → {fmt_sig(losses[-1])} ({len(losses)} steps)")
    return Group(Text("fine-tune loss over steps (first → last)", style="bold"), table)


def _stage_events(store: Store, study_id: int, stage: str) -> list[Any]:
    from lab.run.workers import EventLog

    path = store.home.event_log(study_id, stage)
    if not path.exists():
        return []
    return EventLog(path, from_start=True).poll(max_bytes=1 << 24)


def results_charts(store: Store, study_id: int, view: StageView, cfg: dict[str, Any]) -> list[RenderableType]:
    """The pictures the highlighted stage's results call for (none for most stages)."""
    out: list[RenderableType] = []
    rows = [m for m in store.metrics(study_id, view.name) if m.name == GAIN_METRIC]
    if rows:
        targets = list((cfg.get("languages") or {}).get("targets") or [])
        rec = view.recommendation or {}
        confidence = (rec.get("numbers") or {}).get("confidence")
        chart = gain_chart(rows, targets, _threshold(view, cfg),
                           float(confidence) if isinstance(confidence, (int, float)) else None)
        if chart is not None:
            out.append(chart)
    if (cfg.get("intervention") or {}).get("kind") == "finetune" and view.state != "pending":
        chart = loss_chart(loss_series(_stage_events(store, study_id, view.name)))
        if chart is not None:
            out.append(chart)
    return out
