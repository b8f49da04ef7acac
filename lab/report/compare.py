"""Comparing studies: each one's headline and return side by side, with differences against the
first study named. Numbers come from the same headline() and cost() as the single-study report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd

from lab.core.artifacts import atomic_write_bytes
from lab.core.text import escape_controls
from lab.report.cost import FullSize, cost
from lab.report.document import Bullets, Document, Para, Section, Table
from lab.report.evidence import format_cell
from lab.report.facts import load_facts
from lab.report.headline import headline
from lab.store import Store, Study

Getter = Callable[[dict[str, Any], dict[str, Any]], Any]

# (row label, getter(headline, cost), numeric format or None for text). Rows measured in the
# study's hour unit (GPU- or CPU-hours) get no difference when the units differ.
PER_HOUR_ROWS = {"compute (hours)", "points per hour", "full-scale estimate (hours)"}
ROWS: list[tuple[str, Getter, Optional[str]]] = [
    ("verdict", lambda h, c: h["verdict"], None),
    ("model", lambda h, c: h["model"]["id"], None),
    ("targets", lambda h, c: ", ".join(h["languages"]["targets"]), None),
    ("method / intervention", lambda h, c: f"{h['method']} / {h['intervention']['kind']} {h['intervention']['value']}", None),
    ("mean gain on targets (pts)", lambda h, c: h["mean_gain_points"], "{:+.2f}"),
    ("mean gain CI low (pts)", lambda h, c: h["mean_gain_ci_low_points"], "{:+.2f}"),
    ("mean gain CI high (pts)", lambda h, c: h["mean_gain_ci_high_points"], "{:+.2f}"),
    ("random-control gain (pts)", lambda h, c: h["control_gain_points"], "{:+.2f}"),
    ("gain over control (pts)", lambda h, c: h["gain_over_control_points"], "{:+.2f}"),
    ("worst high-resource change (pts)", lambda h, c: (h["worst_high_resource"] or {}).get("points"), "{:+.2f}"),
    ("worst high-resource language", lambda h, c: (h["worst_high_resource"] or {}).get("language"), None),
    ("compute (hours)", lambda h, c: c["hours"], "{:.4g}"),
    ("hour unit", lambda h, c: c["unit"], None),
    ("points per hour", lambda h, c: c["points_per_hour"], "{:+.4g}"),
    ("full-scale estimate (hours)", lambda h, c: c["full_scale"]["hours"], "{:.4g}"),
]


def compare_data(store: Store, studies: list[Study], size: Optional[FullSize] = None) -> list[dict[str, Any]]:
    """Per study: its headline and cost dicts."""
    out = []
    for s in studies:
        facts = load_facts(store, s)
        h = headline(store, s, facts)
        out.append({"study": {"id": int(s.id), "name": s.name}, "headline": h,  # type: ignore[arg-type]
                    "cost": cost(facts, h, size)})
    return out


def compare_frame(data: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows = headline fields; a column per study, then `Δ <study> − <first>` for numeric rows."""
    labels = [f"#{d['study']['id']} {escape_controls(d['study']['name'])}" for d in data]
    table: dict[str, list[Any]] = {"field": [r[0] for r in ROWS]}
    for label, d in zip(labels, data):
        table[label] = [get(d["headline"], d["cost"]) for _, get, _ in ROWS]
    first = table[labels[0]]
    units = [d["cost"]["unit"] for d in data]
    for label, unit in zip(labels[1:], units[1:]):
        diffs = []
        for (row, _, fmt), a, b in zip(ROWS, first, table[label]):
            comparable = fmt and a is not None and b is not None and (row not in PER_HOUR_ROWS or unit == units[0])
            diffs.append(b - a if comparable else None)
        table[f"Δ {label} − {labels[0]}"] = diffs
    df = pd.DataFrame(table)
    df.attrs["row_formats"] = [fmt for _, _, fmt in ROWS]
    return df


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    fmts = df.attrs["row_formats"]
    out = df.copy().astype(object)
    for col in df.columns[1:]:
        out[col] = [format_cell(v, fmt) for v, fmt in zip(df[col].tolist(), fmts)]
    return out


def compare_document(data: list[dict[str, Any]]) -> Document:
    df = compare_frame(data)
    sentences = [f"#{d['study']['id']} {d['study']['name']}: {d['headline']['sentence']}" for d in data]
    questions = sorted({d["headline"]["question"] for d in data})
    blocks = [Table(display_frame(df), "Headline numbers side by side; Δ = each study minus the first "
                    "(no Δ for hour figures when one study ran on GPU and the other on CPU)"),
              Para("Verdicts", strong=True), Bullets(sentences),
              Para("Questions tested", strong=True), Bullets(questions)]
    title = "Study comparison: " + " vs ".join(f"#{d['study']['id']} {d['study']['name']}" for d in data)
    verdicts = {d["headline"]["verdict"] for d in data}
    return Document(title=title, verdict=verdicts.pop() if len(verdicts) == 1 else "undecided",
                    sections=[Section("Headline", blocks)], data={"studies": data})


def write_compare(store: Store, studies: list[Study], fmt: str, path: Path, size: Optional[FullSize] = None) -> Path:
    data = compare_data(store, studies, size)
    if fmt == "csv":
        atomic_write_bytes(path, compare_frame(data).to_csv(index=False).encode("utf-8"))
    elif fmt == "json":
        df = compare_frame(data)
        payload = {"studies": data, "table": json.loads(df.to_json(orient="records"))}
        atomic_write_bytes(path, json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8"))
    elif fmt == "md":
        from lab.report.markdown import write_markdown

        write_markdown(compare_document(data), path)
    else:
        from lab.report.html import render_html

        atomic_write_bytes(path, render_html(compare_document(data)).encode("utf-8"))
    return path
