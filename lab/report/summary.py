"""The go/no-go summary as a plain dict in DESIGN.md's JSON export shape (lab.report.exports writes it).

DESIGN.md's keys are kept exactly; extensions (documented in docs/report.md): study.trust_remote_code,
headline, cost, generation (the generation probe), incomplete (first, only while the pilot has not
reached its end: why), artifacts[].check, provenance.model and provenance.data;
stages[].gate = {"recommendation", "reasons", "numbers"}: the rule's verdict and evidence (may differ
from the recorded decision).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from lab.gates.final import overall_verdict
from lab.core.provenance import provenance
from lab.report.cost import FullSize, cost
from lab.report.facts import StudyFacts, load_facts
from lab.report.gates import gate_entry
from lab.report.generation import generation_summary
from lab.report.headline import headline
from lab.report.sources import artifact_list, corpus_files, model_record
from lab.store import Store, Study


def _iso(t: Optional[dt.datetime]) -> Optional[str]:
    return None if t is None else t.replace(tzinfo=dt.timezone.utc).isoformat()


def incomplete_reason(store: Store, study: Study, facts: StudyFacts) -> Optional[str]:
    """Why the pilot has not reached its end yet (None when it has): a stage before the verdict not
    run (or still running, failed, interrupted), or a gate that waits for a decision. A pilot that a
    gate stopped (a non-go at a stopping gate) has reached its end."""
    from protocols import load_protocol

    protocol = load_protocol(study.protocol, store.home.root)
    for spec in protocol.stage:
        if spec.gate is not None and spec.gate.rule == "final":
            continue
        run = facts.run(spec.name)
        state = "pending" if run is None else getattr(run.state, "value", str(run.state))
        if state != "done":
            return f"the pilot has not finished: stage {spec.name} is {state}"
        if spec.gate is None:
            continue
        decision = store.latest_decision(facts.sid, spec.name)
        if decision is None:
            return f"the pilot has not finished: the {spec.name} gate waits for a decision"
        if decision.verdict != "go" and spec.gate.on_no_go == "stop":
            return None
    return None


def summary(store: Store, study: Study, size: Optional[FullSize] = None,
            facts: Optional[StudyFacts] = None) -> dict[str, Any]:
    facts = facts or load_facts(store, study)
    cfg = facts.cfg
    sid = facts.sid
    model_info = facts.model_info()
    decisions = {}
    for d in store.decisions(sid):
        decisions[d.stage] = {"verdict": d.verdict, "rationale": d.rationale, "by": d.by, "at": _iso(d.at)}
    stages = [{
        "name": r.stage, "status": r.state.value if hasattr(r.state, "value") else str(r.state),
        "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at),
        "compute_seconds": round(r.compute_seconds, 3), "decision": decisions.get(r.stage),
        "gate": gate_entry(r),
    } for r in facts.runs]
    metrics = [{
        "stage": m.stage, "name": m.name, "language": m.language or None, "condition": m.condition or None,
        "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "n": m.n,
    } for m in facts.metrics]
    verdict = overall_verdict(store, study)
    head = headline(store, study, facts)
    prov = provenance(study.seed, model_info)
    prov["model"] = model_record(facts)
    prov["data"] = {"corpus": corpus_files(facts)}
    out = {
        "study": {
            "id": sid, "name": study.name, "protocol": study.protocol,
            "model": {"id": study.model_id, "revision": model_info.get("revision"),
                      "dtype": model_info.get("dtype", cfg["model"]["dtype"]),
                      "device": model_info.get("device", cfg["model"]["device"])},
            "languages": {"all": cfg["languages"]["all"], "targets": cfg["languages"]["targets"]},
            "trust_remote_code": study.trust_remote_code,
        },
        "stages": stages,
        "metrics": metrics,
        "artifacts": artifact_list(facts),
        "verdict": {"decision": verdict.verdict, "reasons": verdict.reasons},
        "provenance": prov,
        "headline": head,
        "cost": cost(facts, head, size),
        "generation": generation_summary(facts),
    }
    reason = incomplete_reason(store, study, facts)
    # a partial export says so first: nobody should read a pilot stopped half-way as its result
    return {"incomplete": reason, **out} if reason else out
