"""The headline of a go/no-go report, computed in ONE place so Markdown, HTML, JSON and the comparison
never disagree: the verdict in a sentence, the question, and the decisive numbers.

Definitions (docs/report.md repeats them for readers):
- mean gain: the evaluate stage's `accuracy_delta` row with language "targets", condition
  "intervention" (items of every target language pooled, paired and language-stratified bootstrap
  95% CI), in points (x100). Without that row: the mean of the per-target deltas, without a CI.
- control gain: the same row for condition "control" (random neurons, same per-layer counts).
- gain over control: mean gain minus control gain (difference of the two means; no CI).
- worst high-resource change: the lowest `accuracy_delta` among the high-resource languages under a
  target's intervention (`spillover_<target>`, the deployment question the evaluate gate asks), with
  its CI and the target whose intervention caused it; a study evaluated before spillover existed
  falls back to its `intervention` rows.
- evaluate_gate: the evaluate gate's own verdict and intervals (docs/statistics.md), which decide.
"""

from __future__ import annotations

import statistics
from typing import Any, Optional

from lab.gates.final import overall_verdict
from lab.report.facts import StudyFacts, load_facts, metric_value
from lab.store import Store, Study

POINTS = 100.0


def _pts(x: Optional[float]) -> Optional[float]:
    return None if x is None else POINTS * float(x)


def _gain(facts: StudyFacts, condition: str) -> tuple[Optional[float], Optional[float], Optional[float], Optional[int], str]:
    """(value, ci_low, ci_high, n, source) in points for the targets under one condition."""
    rows = facts.rows("evaluate", "accuracy_delta")
    pooled = metric_value(rows, "accuracy_delta", "targets", condition)
    if pooled is not None:
        return _pts(pooled.value), _pts(pooled.ci_low), _pts(pooled.ci_high), pooled.n, "pooled target items"
    per_lang = [m.value for m in rows if m.condition == condition and m.language in facts.targets]
    if per_lang:
        return _pts(statistics.fmean(per_lang)), None, None, None, "mean of per-language deltas (no CI)"
    return None, None, None, None, "not evaluated"


def _worst_high(facts: StudyFacts) -> Optional[dict[str, Any]]:
    deltas = [m for m in facts.rows("evaluate", "accuracy_delta") if m.language in facts.high_resource]
    rows = [m for m in deltas if m.condition.startswith("spillover_")] or \
        [m for m in deltas if m.condition == "intervention"]
    if not rows:
        return None
    worst = min(rows, key=lambda m: m.value)
    target = worst.condition.removeprefix("spillover_") if worst.condition.startswith("spillover_") else None
    return {"language": worst.language, "points": _pts(worst.value), "ci_low": _pts(worst.ci_low),
            "ci_high": _pts(worst.ci_high), "under_target": target}


def _evaluate_gate(facts: StudyFacts) -> Optional[dict[str, Any]]:
    """The evaluate gate's verdict and intervals (None before the gate ran)."""
    from lab.report.gates import gate_entry

    run = facts.run("evaluate")
    entry = gate_entry(run) if run is not None else None
    if entry is None:
        return None
    n = entry["numbers"]
    keys = ("gain_points", "gain_ci_points", "gain_over_control_points", "gain_over_control_ci_points", "confidence",
            "multiplicity", "items_per_language", "items_to_decide", "thresholds")
    return {"recommendation": entry["recommendation"], **{k: n.get(k) for k in keys}}


def question(cfg: dict[str, Any]) -> str:
    """The question the protocol tests, spelled out from the study file."""
    targets = ", ".join(cfg["languages"]["targets"])
    high = cfg["languages"].get("high_resource") or []
    tasks = ", ".join(cfg["evaluate"]["tasks"])
    method = cfg["identify"]["method"]
    iv = cfg["intervention"]
    if iv["kind"] == "finetune":
        change = f"fine-tuning only the {method} neurons of {targets}"
    else:
        change = f"setting the {method} neurons of {targets} to their {iv['value']} activation at test time"
    guard = f", without hurting {', '.join(high)}" if high else ""
    return (f"Does {change} raise accuracy on {tasks} for {targets} by more than the same change on "
            f"random neurons{guard}?")


def _fmt(x: Optional[float]) -> str:
    """Points with two decimals, as every table of the report rounds them (the sentence and the tables
    beside it must never disagree, e.g. +1.2 against +1.25)."""
    return "n/a" if x is None else f"{x:+.2f}"


def _numbers_clause(h: dict[str, Any]) -> str:
    if h["mean_gain_points"] is None:
        return "no evaluation result yet"
    ci = (f" (95% CI {_fmt(h['mean_gain_ci_low_points'])} to {_fmt(h['mean_gain_ci_high_points'])})"
          if h["mean_gain_ci_low_points"] is not None else " (no CI)")
    parts = [f"the targets changed {_fmt(h['mean_gain_points'])} points{ci}"]
    if h["gain_over_control_points"] is not None:
        parts.append(f"{_fmt(h['gain_over_control_points'])} points against random neurons")
    w = h["worst_high_resource"]
    if w is not None:
        under = f" under {w['under_target']}'s intervention" if w.get("under_target") else ""
        parts.append(f"worst high-resource change {_fmt(w['points'])} points ({w['language']}{under})")
    return "; ".join(parts)


def _sentence(verdict: str, decisions: list[dict[str, Any]], pending: list[str], h: dict[str, Any]) -> str:
    numbers = _numbers_clause(h)
    if verdict == "go":
        return f"Go: every gate was passed; {numbers}."
    if verdict == "no-go":
        first = next(d for d in decisions if d["verdict"] == "no-go")
        return f"No-go: the {first['stage']} gate was decided no-go by {first['by']} ({first['rationale']}); {numbers}."
    if verdict == "inconclusive":
        stages = ", ".join(d["stage"] for d in decisions if d["verdict"] == "inconclusive")
        n = (h.get("evaluate_gate") or {}).get("items_to_decide")
        more = f"; about {n} items per language would likely decide it" if n else ""
        return (f"Inconclusive: the intervals of the {stages} gate straddle its thresholds, so neither go nor "
                f"no-go can be claimed{more}; {numbers}.")
    why = []
    if pending:
        why.append("no decision yet on " + ", ".join(pending))
    revised = [d["stage"] for d in decisions if d["verdict"] == "revise"]
    if revised:
        why.append("a revision was asked for at " + ", ".join(revised))
    return f"Undecided: {'; '.join(why) or 'no gate has been decided'}; {numbers}."


def headline(store: Store, study: Study, facts: Optional[StudyFacts] = None) -> dict[str, Any]:
    """The verdict, the question, the model and languages, and the decisive numbers (in points)."""
    facts = facts or load_facts(store, study)
    cfg = facts.cfg
    verdict = overall_verdict(store, study)
    latest: dict[str, Any] = {}
    for d in store.decisions(facts.sid):
        latest[d.stage] = d
    gated = [r.split(":", 1)[0] for r in verdict.reasons]
    decisions = [{"stage": s, "verdict": latest[s].verdict, "by": latest[s].by, "rationale": latest[s].rationale}
                 for s in gated if s in latest]
    pending = [r.split(":", 1)[0] for r in verdict.reasons if r.endswith("no decision yet")]
    gain, lo, hi, n, source = _gain(facts, "intervention")
    ctrl, ctrl_lo, ctrl_hi, _, _ = _gain(facts, "control")
    info = facts.model_info()
    h: dict[str, Any] = {
        "verdict": verdict.verdict,
        "question": question(cfg),
        "description": cfg["study"].get("description") or "",
        "study": {"id": facts.sid, "name": study.name},
        "model": {"id": study.model_id, "revision": info.get("revision")},
        "languages": {"all": list(cfg["languages"]["all"]), "targets": facts.targets,
                      "high_resource": facts.high_resource},
        "tasks": list(cfg["evaluate"]["tasks"]),
        "method": cfg["identify"]["method"],
        "intervention": {"kind": cfg["intervention"]["kind"], "value": cfg["intervention"]["value"]},
        "mean_gain_points": gain, "mean_gain_ci_low_points": lo, "mean_gain_ci_high_points": hi,
        "mean_gain_n": n, "mean_gain_source": source,
        "control_gain_points": ctrl, "control_gain_ci_low_points": ctrl_lo, "control_gain_ci_high_points": ctrl_hi,
        "gain_over_control_points": None if gain is None or ctrl is None else gain - ctrl,
        "worst_high_resource": _worst_high(facts),
        "pending_gates": pending,
        "evaluate_gate": _evaluate_gate(facts),
    }
    h["sentence"] = _sentence(verdict.verdict, decisions, pending, h)
    return h
