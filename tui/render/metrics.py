"""A stage's stored results as Rich tables, with no knowledge of particular stages.

Metric rows are grouped by name. A group without languages or conditions is a scalar; a group over
two study languages is a language × language matrix drawn as a heatmap: rows keyed (language,
condition) with both study languages, rows keyed (language, "prefix:language") (one heatmap per
prefix, e.g. the perplexity matrix with identified and with control neurons off), and rows keyed by
a pair "a|b" (a symmetric matrix per condition, e.g. overlap). Any other group is pivoted
language × condition, with confidence intervals under the value. JSON artifacts holding square
matrices over their "languages" are drawn as heatmaps too (unless a metric heatmap already shows
the same matrix). So a stage built later shows its results here without a UI change.

Numbers: accuracies and their changes, and the generation probe's shares of continuations, are
shown in percent and points rounded as the reports round them (fmt_metric); everything else to 3
significant digits. Every `n` under a table says what it counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.constrain import Constrain
from rich.table import Table
from rich.text import Text

from lab.core.artifacts import verify
from lab.core.errors import BadInput
from lab.store import Metric, Store
from tui.formatting import fmt_points, fmt_sig
from tui.render.heatmap import heatmap, is_square_matrix, titled

CONDITION_ORDER = ("baseline", "intervention", "identified")
MAX_JSON_BYTES = 2_000_000
PANE_WIDTH = 50  # the results pane's width at 80 columns
CAPTIONS = {"ppxc.json": "row: whose neurons were switched off · column: language scored"}
# What a metric matrix's rows, columns and values are, where the metric's name tells (else a generic line).
MATRIX_CAPTIONS = {
    "ppxc": "row: whose neurons are off · column: language scored · value: perplexity change",
    "ppxc_nll": "row: whose neurons are off · column: language scored · value: NLL change (nats/token)",
}

# What a metric's `n` counts, by metric name (exact, then by prefix); the fallback still says it.
N_COUNTS = {
    "accuracy": "items scored per language and condition",
    "accuracy_delta": "paired items (same items with and without the change)",
    "mde_points": "items per target language",
    "neurons": "candidate neurons (layers × FFN width)",
    "neurons_layer": "neurons in one layer (FFN width)",
    "quantile_out_of_range": "candidate neurons",
    "tokens": "corpus tokens read",
    "overlap_jaccard": "neurons in the union of the two languages' sets",
    "stability_jaccard": "neurons in the union of the two halves' sets",
    "stability_jaccard_full": "neurons in the union of a half's set and the full set",
    "neurons_half": "neurons in the half's set",
    "ppxc_diagonal_dominant": "neurons in the language's set",
    "ppl_increase_over_control": "held-out blocks resampled for the interval",
    "intervention_neurons": "neurons changed",
    "language_fidelity": "continuations scored",
    "language_fidelity_delta": "paired continuations",
}
N_PREFIXES = (("ppl", "held-out tokens scored"), ("nll", "held-out tokens scored"),
              ("ppxc", "held-out tokens scored"), ("accuracy", "items scored"),
              ("switch", "continuations scored"), ("degenerate", "continuations scored"),
              ("continuation", "continuations scored"), ("generation", "continuations scored"))


def n_meaning(name: str) -> str:
    if name in N_COUNTS:
        return N_COUNTS[name]
    for prefix, meaning in N_PREFIXES:
        if name.startswith(prefix):
            return meaning
    return "observations behind each value"


def n_caption(name: str, rows: Sequence[Metric]) -> str:
    """`n = 2,048 candidate neurons (…)`; a range when the rows differ."""
    ns = sorted({int(m.n) for m in rows if m.n is not None})
    if not ns:
        return ""
    count = f"{ns[0]:,}" if len(ns) == 1 else f"{ns[0]:,}–{ns[-1]:,}"
    return f"n = {count} {n_meaning(name)}"


SHARES = ("language_fidelity", "switch_to_english", "switch_to_other", "degenerate_rate", "continuation_changed")


def in_points(name: str) -> bool:
    """Accuracies and their changes (and the generation probe's shares of continuations), which the
    gates and reports state in percent and points."""
    return name == "accuracy" or name.startswith("accuracy_") or name.startswith(SHARES)


def _is_change(name: str) -> bool:
    return "delta" in name or "gain" in name


def metric_title(name: str) -> str:
    if not in_points(name):
        return name
    return f"{name} (points)" if name.startswith("accuracy") or _is_change(name) else f"{name} (%)"


def fmt_metric(name: str, value: Optional[float]) -> str:
    """As the reports write them: accuracy `71.2`, its change `+1.25` points; a share of
    continuations `85.9` %, its change `+3.1` points; anything else to 3 significant digits."""
    if value is None:
        return "—"
    if not in_points(name):
        return fmt_sig(value)
    points = 100.0 * value
    if name.startswith("accuracy"):
        return fmt_points(points) if _is_change(name) else f"{points:.1f}"
    return f"{points:+.1f}" if _is_change(name) else f"{points:.1f}"


def _ordered(values: Sequence[str], preferred: Sequence[str] = (), last: Sequence[str] = ()) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    first = [p for p in preferred if p in seen]
    end = [p for p in last if p in seen and p not in first]
    return first + [v for v in seen if v not in first and v not in end] + end


def _cell(m: Metric) -> Text:
    text = Text(fmt_metric(m.name, m.value))
    if m.ci_low is not None or m.ci_high is not None:
        text.append(f"\n[{fmt_metric(m.name, m.ci_low)}, {fmt_metric(m.name, m.ci_high)}]", style="dim")
    return text


def scalar_table(rows: list[Metric]) -> Group:
    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    for m in rows:
        table.add_row(metric_title(m.name), _cell(m))
    return titled("values", table)


def _width(row_keys: Sequence[str], col_keys: Sequence[str]) -> int:
    """Rough rendered width of a pivot with these row and column labels (values take ~8 columns)."""
    return max(len(k) for k in row_keys) + sum(max(len(c), 8) + 3 for c in col_keys)


def pivot_table(name: str, rows: list[Metric], languages: Sequence[str]) -> Group:
    """Languages down, conditions across; transposed when conditions outnumber languages (long
    condition names then sit in rows, where they have room). Columns never wrap or cut: a table
    wider than the pane scrolls sideways."""
    conds = _ordered([m.condition or "value" for m in rows], CONDITION_ORDER, ("control",))
    langs = _ordered([m.language or "—" for m in rows], languages)
    cells = {((m.language or "—"), (m.condition or "value")): m for m in rows}
    transpose = _width(langs, conds) > PANE_WIDTH and _width(conds, langs) < _width(langs, conds)
    row_keys, col_keys = (conds, langs) if transpose else (langs, conds)
    caption = n_caption(name, rows)
    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD)
    table.add_column("condition" if transpose else "language", no_wrap=True)
    for c in col_keys:
        table.add_column(c, justify="right", no_wrap=True)
    for r in row_keys:
        keys = [(c, r) if transpose else (r, c) for c in col_keys]
        table.add_row(r, *[_cell(cells[k]) if k in cells else Text("") for k in keys])
    return titled(metric_title(name), table, caption)


@dataclass
class Matrix:
    title: str
    labels: list[str]
    values: list[list[Optional[float]]]
    caption: str


def _labels(languages: Sequence[str], used: set[str]) -> list[str]:
    return [lang for lang in languages if lang in used]


def metric_matrices(name: str, rows: list[Metric], languages: Sequence[str]) -> Optional[list[Matrix]]:
    """The heatmaps a group of rows over two study languages forms, or None when it forms none."""
    langs = set(languages)
    if len(rows) < 2:
        return None
    n = n_caption(name, rows)
    if all(m.language in langs and m.condition in langs for m in rows):
        labels = _labels(languages, {m.language for m in rows} | {m.condition for m in rows})
        if len(labels) < 2:
            return None
        values = {(m.language, m.condition): m.value for m in rows}
        caption = "row: language · column: compared language" + (f"\n{n}" if n else "")
        return [Matrix(name, labels, [[values.get((a, b)) for b in labels] for a in labels], caption)]
    split = [(m, *m.condition.split(":", 1)) for m in rows if ":" in (m.condition or "")]
    if len(split) == len(rows) and all(m.language in langs and lang in langs for m, _, lang in split):
        out = []
        for prefix in _ordered([p for _, p, _ in split], CONDITION_ORDER, ("control",)):
            values = {(lang, m.language): m.value for m, p, lang in split if p == prefix}
            labels = _labels(languages, {a for a, _ in values} | {b for _, b in values})
            caption = MATRIX_CAPTIONS.get(name, f"row: the language in {prefix}:LANG · column: language measured")
            caption += f"\n{n}" if n else ""
            out.append(Matrix(f"{name} · {prefix}", labels, [[values.get((a, b)) for b in labels] for a in labels],
                              caption))
        return out if all(len(m.labels) >= 2 for m in out) else None
    pairs = [(m, *m.language.split("|", 1)) for m in rows if "|" in (m.language or "")]
    if len(pairs) == len(rows) and all(a in langs and b in langs for _, a, b in pairs):
        out = []
        for cond in _ordered([m.condition or "value" for m, _, _ in pairs], CONDITION_ORDER, ("control",)):
            values: dict[tuple[str, str], float] = {}
            for m, a, b in pairs:
                if (m.condition or "value") == cond:
                    values[(a, b)] = values[(b, a)] = m.value
            labels = _labels(languages, {a for a, _ in values})
            caption = "language pairs (symmetric; the diagonal is left out)" + (f"\n{n}" if n else "")
            out.append(Matrix(f"{name} · {cond}", labels, [[values.get((a, b)) for b in labels] for a in labels],
                              caption))
        return out
    return None


def metric_matrix(rows: list[Metric], languages: Sequence[str]) -> Optional[tuple[list[str], list[list[Optional[float]]]]]:
    """The first matrix of a group (labels, values), or None."""
    found = metric_matrices(rows[0].name if rows else "", rows, languages)
    return (found[0].labels, found[0].values) if found else None


def signature(values: Sequence[Sequence[Optional[float]]]) -> tuple[str, ...]:
    """A matrix as its shown values: two matrices that would look the same have the same signature."""
    return tuple(fmt_sig(None if v is None else float(v)) for row in values for v in row)


def metric_renderables(rows: list[Metric], languages: Sequence[str],
                       drawn: Optional[set[tuple[str, ...]]] = None) -> list[RenderableType]:
    """Tables and heatmaps of a stage's metric rows; `drawn` collects the heatmaps' signatures."""
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
        matrices = metric_matrices(name, group, languages)
        if matrices:
            for mat in matrices:
                out.append(heatmap(mat.title, mat.labels, mat.values, mat.caption))
                if drawn is not None:
                    drawn.add(signature(mat.values))
        else:
            out.append(pivot_table(name, group, languages))
    return out


def json_matrices(name: str, data: Any, skip: Optional[set[tuple[str, ...]]] = None) -> list[RenderableType]:
    """Heatmaps for every square matrix over data["languages"]; small tables for language → number
    maps. A matrix that a metric heatmap already shows (the same values, e.g. `ppxc.json`'s
    `identified` and the `ppxc` rows) is left out: its title is listed under the metric's heatmap."""
    if not isinstance(data, dict) or not isinstance(data.get("languages"), list):
        return []
    labels = [str(x) for x in data["languages"]]
    out: list[RenderableType] = []
    for key, value in data.items():
        if is_square_matrix(value, len(labels)):
            if skip is not None and signature(value) in skip:
                continue
            out.append(heatmap(f"{name} · {key}", labels, value, CAPTIONS.get(name, "")))
        elif isinstance(value, dict) and value and all(k in labels for k in value) \
                and all(isinstance(v, (int, float)) for v in value.values()):
            table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD)
            keys = [lang for lang in labels if lang in value]
            for k in keys:
                table.add_column(k, justify="right", no_wrap=True)
            table.add_row(*[fmt_sig(float(value[k])) for k in keys])
            out.append(titled(f"{name} · {key}", table))
    return out


def artifact_renderables(store: Store, study_id: int, stage: str,
                         skip: Optional[set[tuple[str, ...]]] = None) -> list[RenderableType]:
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
        out.extend(json_matrices(art.name, data, skip))
    if arts:
        table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD)
        table.add_column("name", no_wrap=True)
        table.add_column("bytes", justify="right", no_wrap=True)
        table.add_column("sha256", no_wrap=True, style="dim")
        for art in arts:
            table.add_row(art.name, f"{art.bytes:,}", art.sha256[:12])
        out.append(titled("artifacts", table))
    return out


def wrap_texts(renderable: RenderableType, width: int) -> RenderableType:
    """Lines of text (titles, captions) wrapped at `width`, the pane's visible width, while the
    tables beside them keep their natural width (and scroll): a caption never runs off-screen."""
    if isinstance(renderable, Text):
        return Constrain(renderable, width)
    if isinstance(renderable, Group):
        return Group(*[wrap_texts(r, width) for r in renderable.renderables])
    return renderable


def stage_results(store: Store, study_id: int, stage: str, languages: Sequence[str],
                  extra: Sequence[RenderableType] = (), text_width: Optional[int] = None) -> RenderableType:
    """Everything a stage stored; `extra` (charts) goes first; text wraps at `text_width`."""
    drawn: set[tuple[str, ...]] = set()
    parts = list(extra) + metric_renderables(store.metrics(study_id, stage), languages, drawn)
    parts += artifact_renderables(store, study_id, stage, drawn)
    if not parts:
        return Text(f"No results for {stage} yet.", style="dim")
    spaced: list[RenderableType] = []
    for p in parts:
        spaced.extend([p, Text("")])
    out = Group(*spaced[:-1])
    return wrap_texts(out, text_width) if text_width else out
