"""The CSV export: one tidy table of every stored metric, one row per metric row in the store."""

from __future__ import annotations

import pandas as pd

from lab.report.facts import StudyFacts

COLUMNS = ["stage", "name", "language", "condition", "value", "ci_low", "ci_high", "n"]


def metrics_frame(facts: StudyFacts) -> pd.DataFrame:
    """Columns stage,name,language,condition,value,ci_low,ci_high,n; n as a nullable integer."""
    df = pd.DataFrame([{"stage": m.stage, "name": m.name, "language": m.language or "", "condition": m.condition or "",
                        "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "n": m.n}
                       for m in facts.metrics], columns=COLUMNS)
    df["n"] = df["n"].astype("Int64")
    for col in ("value", "ci_low", "ci_high"):
        df[col] = df[col].astype("float64")
    return df
