"""The final gate: the pilot's verdict collected from every gate's recorded decision."""

from __future__ import annotations

from typing import Any

from lab.gates.base import GATES, Recommendation
from lab.store import Store, Study


@GATES.register("final")
def _final(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    return overall_verdict(store, study)


def overall_verdict(store: Store, study: Study) -> Recommendation:
    """The pilot's verdict: no-go if any gate said no-go, go only if every gate so far said go."""
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
    if "no-go" in verdicts:
        verdict = "no-go"
    elif verdicts and all(v == "go" for v in verdicts):
        verdict = "go"
    else:
        verdict = "undecided"
    return Recommendation(verdict, reasons, {})
