"""Short, stable text for numbers, times and names (relative times take the app's clock so tests
can freeze it)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import PurePath
from typing import Optional


def as_utc(t: dt.datetime) -> dt.datetime:
    """SQLite hands datetimes back naive; they were written in UTC."""
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone.utc)


def relative_time(then: Optional[dt.datetime], now: dt.datetime) -> str:
    if then is None:
        return "—"
    seconds = (as_utc(now) - as_utc(then)).total_seconds()
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{round(seconds / 60)}m ago"
    if seconds < 86400:
        return f"{round(seconds / 3600)}h ago"
    return f"{round(seconds / 86400)}d ago"


def fmt_value(v: Optional[float]) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.1f}"
    return f"{v:.4g}"


def fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None or seconds < 0 or math.isinf(seconds) or math.isnan(seconds):
        return "—"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def short_model(model_id: str, width: int = 22) -> str:
    """A path shows as its last part; a hub id as is; both cut to width."""
    name = PurePath(model_id).name if model_id.startswith(("/", ".", "~")) else model_id
    return name if len(name) <= width else name[: width - 1] + "…"


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def fmt_sig(v: Optional[float], digits: int = 3) -> str:
    """A value to `digits` significant digits in fixed notation (trailing zeros kept, so a column of
    them lines up): 0.0123, 0.500, 21.3, 412; 1,234 and up grouped without decimals; tiny values in
    scientific notation. Integers stay integers."""
    if v is None:
        return "—"
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v == 0:
        return "0"
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    magnitude = math.floor(math.log10(abs(v)))
    if magnitude < -3:
        return f"{v:.{digits - 1}e}"
    if magnitude >= digits - 1:
        return f"{round(v):,}"
    decimals = digits - 1 - magnitude
    text = f"{v:.{decimals}f}"
    if abs(float(text)) >= 10 ** (magnitude + 1):  # 0.9996 rounds up to 1.000: one decimal fewer
        text = f"{v:.{max(decimals - 1, 0)}f}"
    return text


def fmt_points(points: Optional[float], signed: bool = True) -> str:
    """Accuracy (or a change of it) in points, x100 already applied: two decimals, as the gates and
    reports write it (`+1.25`, `-0.50`)."""
    if points is None or math.isnan(points) or math.isinf(points):
        return "—"
    return f"{points:+.2f}" if signed else f"{points:.2f}"
