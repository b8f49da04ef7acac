"""The final gate: the pilot's verdict collected from every gate's recorded decision."""

from __future__ import annotations

from typing import Any

from lab.gates.base import GATES, Recommendation
from lab.store import Store, Study


@GATES.register("final")
def _final(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    return overall_verdict(store, study)


def combine_decisions(verdicts: list[str]) -> str:
    """no-go if any gate said no-go; else inconclusive if any said inconclusive (more items would
    decide it); go only if every gate said go; otherwise (revise, or a gate not decided yet) undecided."""
    if "no-go" in verdicts:
        return "no-go"
    if "inconclusive" in verdicts:
        return "inconclusive"
    if verdicts and all(v == "go" for v in verdicts):
        return "go"
    return "undecided"


def overall_verdict(store: Store, study: Study) -> Recommendation:
    """The pilot's verdict over every gate's latest recorded decision (combine_decisions)."""
    from protocols import load_protocol

    protocol = load_protocol(study.protocol, store.home.root)
    reasons, verdicts = [], []
    for spec in protocol.stage:
        if spec.gate is None or spec.gate.rule == "final":
            continue
        d = store.latest_decision(study.id, spec.name)
        if d is None:
            verdicts.append("undecided")
            reasons.append(f"{spec.name}: no decision yet")
        else:
            verdicts.append(d.verdict)
            reasons.append(f"{spec.name}: {d.verdict} ({d.by}) — {d.rationale}")
    return Recommendation(combine_decisions(verdicts), reasons, {})
