"""A stage's stored results as Rich tables, with no knowledge of particular stages.

Metric rows are grouped by name. A group without languages or conditions is a scalar; a group whose
languages and conditions are both study languages is a language × language matrix (a heatmap); any
other group is pivoted language × condition, with confidence intervals under the value. JSON
artifacts holding square matrices over their "languages" are drawn as heatmaps too. So a stage
built later shows its results here without a UI change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from lab.core.artifacts import verify
from lab.core.errors import BadInput
from lab.store import Metric, Store
from tui.formatting import fmt_value
from tui.render.heatmap import heatmap, is_square_matrix

CONDITION_ORDER = ("baseline", "intervention", "identified")
MAX_JSON_BYTES = 2_000_000
PANE_WIDTH = 50  # the results pane's width at 80 columns
CAPTIONS = {"ppxc.json": "row: whose neurons were switched off · column: language scored"}


def _ordered(values: Sequence[str], preferred: Sequence[str] = (), last: Sequence[str] = ()) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    first = [p for p in preferred if p in seen]
    end = [p for p in last if p in seen and p not in first]
    return first + [v for v in seen if v not in first and v not in end] + end


def _cell(m: Metric) -> Text:
    text = Text(fmt_value(m.value))
    if m.ci_low is not None or m.ci_high is not None:
        text.append(f"\n[{fmt_value(m.ci_low)}, {fmt_value(m.ci_high)}]", style="dim")
    return text


def scalar_table(rows: list[Metric]) -> Table:
    table = Table(title="values", title_justify="left", show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right")
    for m in rows:
        table.add_row(m.name, _cell(m))
    return table


def _width(row_keys: Sequence[str], col_keys: Sequence[str]) -> int:
    """Rough rendered width of a pivot with these row and column labels (values take ~6 columns)."""
    return max(len(k) for k in row_keys) + sum(max(len(c), 6) + 3 for c in col_keys)


def pivot_table(name: str, rows: list[Metric], languages: Sequence[str]) -> Table:
    """Languages down, conditions across; transposed when conditions outnumber languages (long
    condition names then sit in rows, where they have room)."""
    conds = _ordered([m.condition or "value" for m in rows], CONDITION_ORDER, ("control",))
    langs = _ordered([m.language or "—" for m in rows], languages)
    cells = {((m.language or "—"), (m.condition or "value")): m for m in rows}
    transpose = _width(langs, conds) > PANE_WIDTH and _width(conds, langs) < _width(langs, conds)
    row_keys, col_keys = (conds, langs) if transpose else (langs, conds)
    ns = {m.n for m in rows if m.n is not None}
    caption = f"n = {fmt_value(ns.pop())}" if len(ns) == 1 else ""
    table = Table(title=name, caption=caption or None, title_justify="left", caption_justify="left",
                  show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD)
    table.add_column("condition" if transpose else "language", no_wrap=True)
    for c in col_keys:
        table.add_column(c, justify="right")
    for r in row_keys:
        keys = [(c, r) if transpose else (r, c) for c in col_keys]
        table.add_row(r, *[_cell(cells[k]) if k in cells else Text("") for k in keys])
    return table


def metric_matrix(rows: list[Metric], languages: Sequence[str]) -> Optional[tuple[list[str], list[list[Optional[float]]]]]:
    """Rows keyed (language, condition) where both are study languages form a square matrix."""
    lang_set = set(languages)
    if len(rows) < 2 or not all(m.language in lang_set and m.condition in lang_set for m in rows):
        return None
    labels = [lang for lang in languages if any(lang in (m.language, m.condition) for m in rows)]
    if len(labels) < 2:
        return None
    values = {(m.language, m.condition): m.value for m in rows}
    return labels, [[values.get((a, b)) for b in labels] for a in labels]


def metric_renderables(rows: list[Metric], languages: Sequence[str]) -> list[RenderableType]:
    groups: dict[str, list[Metric]] = {}
    for m in rows:
        groups.setdefault(m.name, []).append(m)
    scalars = [g[0] for g in groups.values() if len(g) == 1 and not g[0].language and not g[0].condition]
    out: list[RenderableType] = []
    if scalars:
        out.append(scalar_table(scalars))
    for name, group in groups.items():
        if len(group) == 1 and group[0] in scalars:
            continue
        matrix = metric_matrix(group, languages)
        if matrix is not None:
            out.append(heatmap(name, matrix[0], matrix[1], "row: language · column: compared language"))
        else:
            out.append(pivot_table(name, group, languages))
    return out


def json_matrices(name: str, data: Any) -> list[RenderableType]:
    """Heatmaps for every square matrix over data["languages"]; small tables for language → number maps."""
    if not isinstance(data, dict) or not isinstance(data.get("languages"), list):
        return []
    labels = [str(x) for x in data["languages"]]
    out: list[RenderableType] = []
    for key, value in data.items():
        if is_square_matrix(value, len(labels)):
            out.append(heatmap(f"{name} · {key}", labels, value, CAPTIONS.get(name, "")))
        elif isinstance(value, dict) and value and all(k in labels for k in value) \
                and all(isinstance(v, (int, float)) for v in value.values()):
            table = Table(title=f"{name} · {key}", title_justify="left", show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD)
            keys = [lang for lang in labels if lang in value]
            for k in keys:
                table.add_column(k, justify="right")
            table.add_row(*[fmt_value(float(value[k])) for k in keys])
            out.append(table)
    return out


def artifact_renderables(store: Store, study_id: int, stage: str) -> list[RenderableType]:
    out: list[RenderableType] = []
    arts = store.artifacts(study_id, stage)
    for art in arts:
        if not art.name.endswith(".json") or art.bytes > MAX_JSON_BYTES:
            continue
        try:
            # inside the home and unmodified since its stage wrote it, or not shown
            data = json.loads(verify(store.home.inside(Path(art.path)), art.sha256).read_text(encoding="utf-8"))
        except (OSError, ValueError, BadInput):
            continue
        out.extend(json_matrices(art.name, data))
    if arts:
        table = Table(title="artifacts", title_justify="left", show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD)
        table.add_column("name", no_wrap=True)
        table.add_column("bytes", justify="right")
        table.add_column("sha256", no_wrap=True, style="dim")
        for art in arts:
            table.add_row(art.name, fmt_value(art.bytes), art.sha256[:12])
        out.append(table)
    return out


def stage_results(store: Store, study_id: int, stage: str, languages: Sequence[str]) -> RenderableType:
    parts = metric_renderables(store.metrics(study_id, stage), languages)
    parts += artifact_renderables(store, study_id, stage)
    if not parts:
        return Text(f"No results for {stage} yet.", style="dim")
    spaced: list[RenderableType] = []
    for p in parts:
        spaced.extend([p, Text("")])
    return Group(*spaced[:-1])
