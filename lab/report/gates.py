"""Gate evidence for exports: each gated stage's rule verdict with its numbers (the JSON `gate` entry),
and the evaluate gate's intervals against their thresholds as a table (charts.py draws them)."""

from __future__ import annotations

import json
from typing import Any, Optional

import pandas as pd

from lab.report.facts import StudyFacts
from lab.store import StageRun


def gate_entry(run: StageRun) -> Optional[dict[str, Any]]:
    """{"recommendation", "reasons", "numbers"} from the rule's stored recommendation (None: no gate ran).

    The recommendation is what the rule said when the stage finished; the recorded decision may differ.
    """
    if not run.recommendation_json:
        return None
    rec = json.loads(run.recommendation_json)
    return {"recommendation": rec.get("verdict"), "reasons": rec.get("reasons") or [], "numbers": rec.get("numbers") or {}}


def gate_numbers(facts: StudyFacts, stage: str) -> dict[str, Any]:
    run = facts.run(stage)
    entry = gate_entry(run) if run is not None else None
    return entry["numbers"] if entry else {}


def _ci(lo: float, hi: float) -> str:
    return f"[{lo:+.2f}, {hi:+.2f}]"


def interval_table(numbers: dict[str, Any]) -> pd.DataFrame:
    """One row per comparison the interval gate decided (empty for a gate without comparisons)."""
    rows = []
    for c in numbers.get("comparisons") or []:
        strict, up = c.get("strict", True), c.get("higher_is_better", True)
        need = (">" if strict else "≥") if up else ("<" if strict else "≤")
        rows.append({
            "comparison": c["name"], "estimate (points)": f"{c['value']:+.2f}",
            "interval (points)": _ci(c["low"], c["high"]), "level": f"{100 * c['confidence']:.4g}%",
            "must be": f"{need} {c['threshold']:+.2f}", "verdict": c["verdict"],
            "items per language to decide": "" if c["verdict"] != "inconclusive" else
            (str(c["items_needed"]) if c.get("items_needed") is not None else "not expected to decide"),
        })
    return pd.DataFrame(rows)


def interval_caption(numbers: dict[str, Any]) -> str:
    conf = numbers.get("confidence")
    if conf is None:
        return ""
    multi = numbers.get("multiplicity")
    k = numbers.get("family_size") or 0
    fam = (f"; the {k} high-resource changes are one {multi} family, each interval at "
           f"{100 * numbers['high_resource_confidence']:.4g}%" if k else "")
    items = ", ".join(f"{lang}: {n}" for lang, n in (numbers.get("items_per_language") or {}).items())
    return (f"Evaluate gate: paired bootstrap intervals over items (stratified by language for the mean over "
            f"targets) at {100 * conf:.4g}%{fam}. go = the interval clears the threshold, no-go = it falls short, "
            f"inconclusive = it straddles it. Items per language: {items}.")
