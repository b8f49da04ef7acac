"""The generation probe in the report: the language-fidelity table (language x condition) and a few
example pairs of baseline vs intervention greedy continuations, from the generate stage's metrics
and continuations.json. A study without the stage gets empty results, never an error."""

from __future__ import annotations

from typing import Any, Optional

import pandas as pd

from lab.report.evidence import _role, _with_fmt, language_order
from lab.report.facts import StudyFacts

STAGE = "generate"
ARTIFACT = "continuations.json"
BASE_ORDER = ("baseline", "intervention", "control")
MAX_TEXT = 160


def _conditions(facts: StudyFacts) -> list[str]:
    seen = {m.condition for m in facts.rows(STAGE, "language_fidelity")}
    return [c for c in BASE_ORDER if c in seen] + sorted(seen - set(BASE_ORDER))


def _pct(x: Optional[float]) -> Optional[float]:
    return None if x is None else 100 * x


def fidelity_records(facts: StudyFacts) -> list[dict[str, Any]]:
    """One record per (language, condition): shares in [0, 1], the fidelity delta with its CI."""
    by = {(m.name, m.language, m.condition): m for m in facts.rows(STAGE)}
    langs = language_order(facts, {m.language for m in facts.rows(STAGE, "language_fidelity")})
    out = []
    for lang in langs:
        for cond in _conditions(facts):
            fid = by.get(("language_fidelity", lang, cond))
            if fid is None:
                continue
            delta = by.get(("language_fidelity_delta", lang, cond))
            get = lambda name: by[(name, lang, cond)].value if (name, lang, cond) in by else None  # noqa: E731
            out.append({"language": lang, "role": _role(facts, lang), "condition": cond, "prompts": fid.n,
                        "language_fidelity": fid.value, "language_fidelity_ci_low": fid.ci_low,
                        "language_fidelity_ci_high": fid.ci_high, "switch_to_english": get("switch_to_english"),
                        "switch_to_other": get("switch_to_other"),
                        "degenerate_rate": get("degenerate_rate"),
                        "fidelity_delta": delta.value if delta else None,
                        "fidelity_delta_ci_low": delta.ci_low if delta else None,
                        "fidelity_delta_ci_high": delta.ci_high if delta else None,
                        "continuation_changed": get("continuation_changed")})
    return out


def fidelity_table(facts: StudyFacts) -> pd.DataFrame:
    """Display frame (percent and points) of fidelity_records."""
    recs = fidelity_records(facts)
    if not recs:
        return _with_fmt(pd.DataFrame(), {})
    out = pd.DataFrame({
        "language": [r["language"] for r in recs], "role": [r["role"] for r in recs],
        "condition": [r["condition"] for r in recs], "prompts": [r["prompts"] for r in recs],
        "in language (%)": [_pct(r["language_fidelity"]) for r in recs],
        "Δ vs baseline (pts)": [_pct(r["fidelity_delta"]) for r in recs],
        "Δ CI low": [_pct(r["fidelity_delta_ci_low"]) for r in recs],
        "Δ CI high": [_pct(r["fidelity_delta_ci_high"]) for r in recs],
        "→ English (%)": [_pct(r["switch_to_english"]) for r in recs],
        "→ other (%)": [_pct(r["switch_to_other"]) for r in recs],
        "degenerate (%)": [_pct(r["degenerate_rate"]) for r in recs],
        "greedy text changed (%)": [_pct(r["continuation_changed"]) for r in recs],
    })
    out.attrs["merge"] = {"Δ 95% CI": ("Δ CI low", "Δ CI high")}
    return _with_fmt(out, {"prompts": "int", "in language (%)": "{:.1f}", "Δ vs baseline (pts)": "{:+.1f}",
                           "Δ CI low": "{:+.1f}", "Δ CI high": "{:+.1f}", "→ English (%)": "{:.1f}",
                           "→ other (%)": "{:.1f}", "degenerate (%)": "{:.1f}", "greedy text changed (%)": "{:.0f}"})


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def example_pairs(facts: StudyFacts, k: int = 3, treated: str = "intervention") -> list[dict[str, Any]]:
    """Up to k prompts whose greedy continuation changed under `treated`: those whose detected language
    changed first, targets before other languages, at most one per language while others remain."""
    data = facts.read_json(STAGE, ARTIFACT)
    if not isinstance(data, dict) or not isinstance(data.get("languages"), dict):
        return []
    candidates = []
    order = language_order(facts, data["languages"])
    for li, lang in enumerate(order):
        for pi, p in enumerate(data["languages"][lang].get("prompts", [])):
            conds = p.get("conditions", {})
            if "baseline" not in conds or treated not in conds:
                continue
            base, other = conds["baseline"]["greedy"], conds[treated]["greedy"]
            if base["text"] == other["text"]:
                continue
            switched = base.get("language") != other.get("language")
            candidates.append(((not switched, lang not in facts.targets, li, pi), lang, p["prompt"], base, other))
    candidates.sort(key=lambda c: c[0])
    picked: list[tuple[Any, ...]] = []
    for c in candidates:  # one per language first
        if len(picked) < k and all(c[1] != p[1] for p in picked):
            picked.append(c)
    for c in candidates:
        if len(picked) < k and c not in picked:
            picked.append(c)
    picked.sort(key=lambda c: c[0])
    return [{"language": lang, "prompt": prompt, "condition": treated,
             "baseline": {"text": base["text"], "language": base.get("language")},
             treated: {"text": other["text"], "language": other.get("language")}}
            for _, lang, prompt, base, other in picked]


def examples_table(pairs: list[dict[str, Any]]) -> pd.DataFrame:
    treated = pairs[0]["condition"] if pairs else "intervention"
    return _with_fmt(pd.DataFrame({
        "language": [p["language"] for p in pairs], "prompt": [_clip(p["prompt"]) for p in pairs],
        "baseline continuation": [f"{_clip(p['baseline']['text'])} [{p['baseline']['language']}]" for p in pairs],
        f"{treated} continuation": [f"{_clip(p[treated]['text'])} [{p[treated]['language']}]" for p in pairs],
    }), {})


def generation_summary(facts: StudyFacts) -> Optional[dict[str, Any]]:
    """The JSON export's `generation` extension: fidelity rows and example pairs (None without the stage)."""
    recs = fidelity_records(facts)
    if not recs:
        return None
    data = facts.read_json(STAGE, ARTIFACT)
    info = data if isinstance(data, dict) else {}
    for rec in recs:  # the top languages other than the prompt's, {code: continuations}, largest first
        summary = ((info.get("languages") or {}).get(rec["language"]) or {}).get("summary") or {}
        others = (summary.get(rec["condition"]) or {}).get("other_languages") or {}
        rec["top_other_languages"] = dict(list(others.items())[:3])
    return {"fidelity": recs, "examples": example_pairs(facts), "settings": info.get("settings"),
            "language_id": info.get("language_id"), "skipped": info.get("skipped", {})}
