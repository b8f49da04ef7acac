"""The evidence tables behind a verdict, as pandas DataFrames built from stored metrics and artifacts.

Frames hold numbers (accuracies and deltas in points, i.e. x100); each frame's `attrs["fmt"]` says
how a renderer should print its columns, so Markdown and HTML show the same digits.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Optional

import pandas as pd

from lab.report.facts import StudyFacts

BASE_CONDITIONS = ("baseline", "intervention", "control")


def _with_fmt(df: pd.DataFrame, fmt: dict[str, str]) -> pd.DataFrame:
    df.attrs["fmt"] = fmt
    return df


def conditions(facts: StudyFacts) -> list[str]:
    """Accuracy conditions in display order: baseline, intervention, control, then named variants."""
    seen = {m.condition for m in facts.rows("evaluate", "accuracy")}
    return [c for c in BASE_CONDITIONS if c in seen] + sorted(seen - set(BASE_CONDITIONS))


def language_order(facts: StudyFacts, langs: Any) -> list[str]:
    """Targets first, then the other languages in the study file's order, then anything else."""
    have = list(dict.fromkeys(langs))
    known = facts.targets + [x for x in facts.cfg["languages"]["all"] if x not in facts.targets]
    return [x for x in known if x in have] + sorted(x for x in have if x not in known)


def _ordered(facts: StudyFacts, wide: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    """A language x condition pivot with rows in study order and the named conditions first."""
    cols = [c for c in first if c in wide.columns] + sorted(c for c in wide.columns if c not in first)
    out = wide.reindex(index=language_order(facts, wide.index), columns=cols)
    out.index.name = "language"
    out = out.reset_index()
    out.columns.name = None
    return out


def _role(facts: StudyFacts, lang: str) -> str:
    if lang == "targets":
        return "targets pooled"
    if lang in facts.targets:
        return "target"
    return "high-resource" if lang in facts.high_resource else "other"


def accuracy_table(facts: StudyFacts) -> pd.DataFrame:
    """Per language: accuracy (%) per condition, the intervention's paired delta with CI, McNemar p."""
    acc = pd.DataFrame([{"language": m.language, "condition": m.condition, "value": 100 * m.value, "n": m.n}
                        for m in facts.rows("evaluate", "accuracy")])
    delta = pd.DataFrame([{"language": m.language, "condition": m.condition, "delta": 100 * m.value,
                           "lo": None if m.ci_low is None else 100 * m.ci_low,
                           "hi": None if m.ci_high is None else 100 * m.ci_high}
                          for m in facts.rows("evaluate", "accuracy_delta")])
    pvals = pd.DataFrame([{"language": m.language, "condition": m.condition, "p": m.value}
                          for m in facts.rows("evaluate", "mcnemar_p")])
    if acc.empty and delta.empty:
        return _with_fmt(pd.DataFrame(), {})
    langs = language_order(facts, acc["language"] if not acc.empty else [])
    if not delta.empty and "targets" in set(delta["language"]):
        langs.append("targets")
    out = pd.DataFrame({"language": langs})
    out["role"] = [_role(facts, lang) for lang in langs]
    if not acc.empty:
        wide = acc.pivot(index="language", columns="condition", values="value")
        n = acc.groupby("language")["n"].max()
        out["n"] = out["language"].map(n)
        for cond in conditions(facts):
            out[cond] = out["language"].map(wide[cond])
    fmt = {"n": "int", **{c: "{:.1f}" for c in conditions(facts)}}
    merge: dict[str, tuple[str, str]] = {}
    for cond in [c for c in conditions(facts) if c != "baseline"] or ["intervention", "control"]:
        sub = delta[delta["condition"] == cond].set_index("language") if not delta.empty else pd.DataFrame()
        psub = pvals[pvals["condition"] == cond].set_index("language") if not pvals.empty else pd.DataFrame()
        if sub.empty:
            continue
        label = f"Δ {cond} (pts)"
        out[label] = out["language"].map(sub["delta"])
        out[f"{cond} CI low"] = out["language"].map(sub["lo"])
        out[f"{cond} CI high"] = out["language"].map(sub["hi"])
        fmt.update({label: "{:+.2f}", f"{cond} CI low": "{:+.2f}", f"{cond} CI high": "{:+.2f}"})
        merge[f"{cond} 95% CI"] = (f"{cond} CI low", f"{cond} CI high")
        if not psub.empty:
            out[f"McNemar p ({cond})"] = out["language"].map(psub["p"])
            fmt[f"McNemar p ({cond})"] = "{:.3g}"
    out.attrs["merge"] = merge
    return _with_fmt(out, fmt)


def stability_table(facts: StudyFacts) -> pd.DataFrame:
    rows = [{"language": m.language, "condition": m.condition, "jaccard": m.value}
            for m in facts.rows("reproduce", "stability_jaccard")]
    if not rows:
        return _with_fmt(pd.DataFrame(), {})
    wide = pd.DataFrame(rows).pivot(index="language", columns="condition", values="jaccard")
    wide = _ordered(facts, wide, first=["identified", "control"])
    return _with_fmt(wide, {c: "{:.3f}" for c in wide.columns if c != "language"})


def ppxc_table(facts: StudyFacts) -> pd.DataFrame:
    """Per language: baseline PPL, own-language PPL change with its neurons off vs random, diagnostics."""
    ppxc = facts.read_json("reproduce", "ppxc.json")
    rows = facts.rows("reproduce")
    by = {(m.name, m.language, m.condition): m.value for m in rows}
    langs = list(ppxc["languages"]) if isinstance(ppxc, dict) and "languages" in ppxc else \
        sorted({m.language for m in rows if m.name.startswith("ppxc_") and m.language})
    if not langs:
        return _with_fmt(pd.DataFrame(), {})
    out = pd.DataFrame({"language": langs})
    if isinstance(ppxc, dict):
        out["baseline PPL"] = [ppxc.get("baseline_ppl", {}).get(lang) for lang in langs]
        out["own ΔPPL (identified)"] = [ppxc["identified"][i][i] for i in range(len(langs))]
        out["own ΔPPL (control)"] = [ppxc["control"][i][i] for i in range(len(langs))]
    out["control ratio"] = [by.get(("ppxc_control_ratio", lang, "identified"), by.get(("ppxc_control_ratio", lang, "")))
                            for lang in langs]
    out["diagonal dominant"] = [_yes_no(by.get(("ppxc_diagonal_dominant", lang, "identified"))) for lang in langs]
    return _with_fmt(out, {"baseline PPL": "{:.2f}", "own ΔPPL (identified)": "{:+.3f}",
                           "own ΔPPL (control)": "{:+.3f}", "control ratio": "{:.2f}"})


def _yes_no(v: Optional[float]) -> Optional[str]:
    return None if v is None else ("yes" if v >= 0.5 else "no")


def ppxc_matrix(facts: StudyFacts) -> Optional[dict[str, Any]]:
    """ppxc.json's languages and identified/control PPL-change grids, if the artifact is there."""
    ppxc = facts.read_json("reproduce", "ppxc.json")
    if not isinstance(ppxc, dict) or not ppxc.get("languages") or not ppxc.get("identified"):
        return None
    return {"languages": list(ppxc["languages"]), "identified": ppxc["identified"], "control": ppxc.get("control")}


def neuron_counts(facts: StudyFacts) -> pd.DataFrame:
    """Per language: neurons found (identification method) and in the random control."""
    rows = [{"language": m.language, "condition": m.condition, "count": m.value}
            for m in facts.rows("identify", "neurons") if m.language]
    if not rows:
        return _with_fmt(pd.DataFrame(), {})
    wide = pd.DataFrame(rows).pivot(index="language", columns="condition", values="count")
    wide = _ordered(facts, wide, first=[facts.cfg["identify"]["method"], "control"])
    return _with_fmt(wide, {c: "int" for c in wide.columns if c != "language"})


def neurons_per_layer(facts: StudyFacts) -> pd.DataFrame:
    """Layer x language neuron counts from neurons.json ([[layer, index], ...] per language)."""
    data = facts.read_json("identify", "neurons.json")
    if not isinstance(data, dict) or not isinstance(data.get("languages"), dict):
        return _with_fmt(pd.DataFrame(), {})
    pairs = [{"layer": int(p[0]), "language": lang} for lang, ps in data["languages"].items() for p in ps]
    langs = list(data["languages"])
    if not pairs:
        return _with_fmt(pd.DataFrame({"layer": []}), {})
    counts = pd.DataFrame(pairs).groupby(["layer", "language"]).size().unstack(fill_value=0)
    info = facts.model_info()
    n_layers = int(info.get("n_layers") or counts.index.max() + 1)
    counts = counts.reindex(index=range(n_layers), columns=langs, fill_value=0).fillna(0).astype(int)
    counts.index.name = "layer"
    out = counts.reset_index()
    out.columns.name = None
    return _with_fmt(out, {c: "int" for c in out.columns})


def _iso(t: Optional[dt.datetime]) -> str:
    return "" if t is None else t.replace(tzinfo=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def gates_table(facts: StudyFacts) -> pd.DataFrame:
    """Each gated stage: the rule's recommendation and the latest recorded decision."""
    from protocols import ProtocolError, load_protocol

    try:
        final = {s.name for s in load_protocol(facts.study.protocol, facts.store.home.root).stage
                 if s.gate is not None and s.gate.rule == "final"}
    except ProtocolError:
        final = set()
    latest = {d.stage: d for d in facts.store.decisions(facts.sid)}
    rows = []
    for run in facts.runs:
        rec = json.loads(run.recommendation_json) if run.recommendation_json else None
        d = latest.get(run.stage)
        if rec is None and d is None:
            continue
        derived = run.stage in final and d is None
        rows.append({"stage": run.stage,
                     "recommendation": rec.get("verdict") if rec else "",
                     "reasons": ("the pilot verdict, derived from the gates above" if derived else
                                 "; ".join(rec.get("reasons") or []) if rec else ""),
                     "decision": d.verdict if d else ("(derived)" if derived else "pending"),
                     "rationale": d.rationale if d else "", "by": d.by if d else "", "at": _iso(d.at) if d else ""})
    return _with_fmt(pd.DataFrame(rows), {})


def decisions_table(facts: StudyFacts) -> pd.DataFrame:
    """Every decision ever recorded, oldest first (a revised gate shows its history)."""
    rows = [{"stage": d.stage, "decision": d.verdict, "rationale": d.rationale, "by": d.by, "at": _iso(d.at)}
            for d in facts.store.decisions(facts.sid)]
    return _with_fmt(pd.DataFrame(rows), {})


def format_cell(value: Any, fmt: Optional[str]) -> str:
    """One cell as text: '—' for missing, ints without decimals, floats per the column's format."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    try:
        if pd.isna(value):
            return "—"
    except (TypeError, ValueError):
        pass
    if fmt == "int":
        return f"{int(round(float(value))):d}"
    if fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt.format(float(value))
    return str(value)


def formatted(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of a frame with every cell as display text (shared by Markdown and HTML); column pairs
    named in attrs["merge"] (CI low / high) become one "[low, high]" column."""
    fmt = df.attrs.get("fmt", {})
    merge: dict[str, tuple[str, str]] = df.attrs.get("merge", {})
    first_of = {lo: name for name, (lo, _) in merge.items()}
    skip = {hi for _, hi in merge.values()}
    out: dict[str, list[str]] = {}
    for c in df.columns:
        if c in skip:
            continue
        if c in first_of:
            lo_col, hi_col = merge[first_of[c]]
            out[first_of[c]] = [_interval(lo, hi, fmt.get(lo_col)) for lo, hi in zip(df[lo_col], df[hi_col])]
        else:
            out[c] = [format_cell(v, fmt.get(c)) for v in df[c].tolist()]
    return pd.DataFrame(out)


def _interval(lo: Any, hi: Any, fmt: Optional[str]) -> str:
    a, b = format_cell(lo, fmt), format_cell(hi, fmt)
    return "—" if a == "—" and b == "—" else f"[{a}, {b}]"
