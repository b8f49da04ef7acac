"""Any square language × language matrix as a Rich table whose cells are coloured by value."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from rich import box
from rich.color import Color
from rich.console import Group
from rich.color_triplet import ColorTriplet
from rich.style import Style
from rich.table import Table
from rich.text import Text

from tui.formatting import fmt_sig

LOW = ColorTriplet(38, 70, 120)      # blue: smallest (or most negative) values
MID = ColorTriplet(235, 235, 235)    # near white: zero on a diverging scale
HIGH = ColorTriplet(200, 50, 50)     # red: largest values


def _blend(a: ColorTriplet, b: ColorTriplet, f: float) -> ColorTriplet:
    f = min(max(f, 0.0), 1.0)
    return ColorTriplet(*(int(round(x + (y - x) * f)) for x, y in zip(a, b)))


def cell_colour(value: float, lo: float, hi: float) -> ColorTriplet:
    """Sequential blue→red for one-signed data; diverging around zero when both signs occur."""
    if lo < 0 < hi:
        span = max(-lo, hi)
        return _blend(MID, HIGH, value / span) if value >= 0 else _blend(MID, LOW, -value / span)
    if hi == lo:
        return MID
    return _blend(LOW, HIGH, (value - lo) / (hi - lo))


def _text_on(bg: ColorTriplet) -> str:
    luminance = 0.299 * bg.red + 0.587 * bg.green + 0.114 * bg.blue
    return "black" if luminance > 140 else "white"


def is_square_matrix(obj: object, n: Optional[int] = None) -> bool:
    if not isinstance(obj, list) or not obj:
        return False
    size = len(obj)
    if n is not None and size != n:
        return False
    return all(isinstance(row, list) and len(row) == size
               and all(isinstance(v, (int, float)) or v is None for v in row) for row in obj)


def heatmap(title: str, labels: Sequence[str], matrix: Sequence[Sequence[Optional[float]]],
            caption: str = "") -> Group:
    """Rows and columns share `labels` (both printed); the diagonal is bold. Every value is fitted to
    3 significant digits and every column gets the width of the widest one, so the table never
    cuts a number: a pane narrower than it scrolls sideways. Title above, caption below."""
    finite = [float(v) for row in matrix for v in row if v is not None and math.isfinite(float(v))]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    texts = [[fmt_sig(None if v is None else float(v)) for v in row] for row in matrix]
    width = max([len(t) for row in texts for t in row] + [len(label) for label in labels] + [1])
    table = Table(show_edge=False, pad_edge=False, padding=(0, 0), expand=False, box=box.SIMPLE_HEAD)
    label_width = max([len(label) for label in labels] + [1]) + 1
    table.add_column("", style="bold", no_wrap=True, min_width=label_width)
    for label in labels:
        table.add_column(label, justify="right", no_wrap=True, min_width=width)
    for i, (label, row) in enumerate(zip(labels, matrix)):
        cells: list[Text] = []
        for j, v in enumerate(row):
            text = texts[i][j].rjust(width)
            if v is None or not math.isfinite(float(v)):
                cells.append(Text(text, style="dim"))
                continue
            bg = cell_colour(float(v), lo, hi)
            style = Style(bgcolor=Color.from_triplet(bg), color=_text_on(bg), bold=(i == j))
            cells.append(Text(text, style=style))
        table.add_row(f"{label} ", *cells)
    return titled(title, table, "\n".join(x for x in (caption, scale_legend(lo, hi) if finite else "") if x))


def scale_legend(lo: float, hi: float) -> str:
    """What the colours mean for this heatmap's values."""
    if lo < 0 < hi:
        return f"colour: blue {fmt_sig(lo)} · white 0 · red {fmt_sig(hi)}"
    return f"colour: blue {fmt_sig(lo)} → red {fmt_sig(hi)}"


def titled(title: str, table: Table, caption: str = "") -> Group:
    """A table with its title above and its caption below as lines of their own: they wrap at the
    pane's width instead of being squeezed (or cut) to the table's."""
    parts: list[Any] = [Text(title, style="bold")] if title else []
    parts.append(table)
    if caption:
        parts.append(Text(caption, style="dim"))
    return Group(*parts)
