"""What the screens show, read from the store: one row per study, one view per stage.

Pure reads (no widgets) so the same logic serves the studies table, the stepper and the command
palette, and can be tested without a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Optional

from lab.gates.final import overall_verdict
from lab.core.text import escape_controls
from lab.store import Decision, StageRun, StageState, Store, Study
from protocols import Protocol, ProtocolError, StageSpec, load_protocol


@dataclass
class StageView:
    spec: StageSpec
    run: StageRun
    decision: Optional[Decision]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> str:
        return self.run.state.value if hasattr(self.run.state, "value") else str(self.run.state)

    @property
    def progress(self) -> Optional[dict[str, Any]]:
        return json.loads(self.run.progress_json) if self.run.progress_json else None

    @property
    def recommendation(self) -> Optional[dict[str, Any]]:
        return json.loads(self.run.recommendation_json) if self.run.recommendation_json else None

    @property
    def has_gate(self) -> bool:
        return self.spec.gate is not None

    @property
    def awaiting_decision(self) -> bool:
        return self.has_gate and self.state == "done" and self.decision is None

    @property
    def is_final(self) -> bool:
        """The verdict stage (gate rule `final`): it collects every gate's decision."""
        return self.spec.gate is not None and self.spec.gate.rule == "final"

    @property
    def stopped_here(self) -> bool:
        """A non-go decision at a gate that stops the pilot."""
        gate = self.spec.gate
        return (self.decision is not None and self.decision.verdict != "go" and gate is not None
                and gate.on_no_go == "stop" and gate.rule != "final")

    @property
    def status_word(self) -> str:
        """One word for tables: the state, or what the stage is waiting for."""
        if self.awaiting_decision:
            return "decide"
        if self.stopped_here:
            return f"stop:{self.decision.verdict}"  # type: ignore[union-attr]
        return self.state


def stop_point(views: list[StageView]) -> Optional[StageView]:
    """The gate that ended the pilot (a non-go at a stopping gate), if one did."""
    return next((v for v in views if v.stopped_here), None)


def not_run(views: list[StageView]) -> set[str]:
    """Stages that will not run because a gate before them ended the pilot (the verdict stage still runs)."""
    stop = stop_point(views)
    if stop is None:
        return set()
    after = views[views.index(stop) + 1:]
    return {v.name for v in after if v.state == "pending" and not v.is_final}


def final_view(views: list[StageView]) -> Optional[StageView]:
    return next((v for v in views if v.is_final), None)


def end_message(views: list[StageView]) -> Optional[str]:
    """Where and why the pilot ended, and what to do next; None while it has not ended. The same
    words serve the status line, the Stage tab and the studies list's reading of the study."""
    stop = stop_point(views)
    final = final_view(views)
    if stop is None:
        if final is not None and final.decision is not None and all(v.state == "done" for v in views):
            return f"The pilot ended: every stage ran; verdict {final.decision.verdict} recorded."
        return None
    d = stop.decision
    assert d is not None
    head = f"The pilot ended at the {stop.name} gate: {d.verdict} (by {escape_controls(d.by)})."
    if final is not None and final.awaiting_decision:
        return head + " Record the final verdict (d on decide); stages after the gate do not run."
    return (head + " To revise and rerun: copy the study file under a new name, change what the gate "
            "faulted, then create it (n) and run it.")


def study_protocol(store: Store, study: Study) -> Optional[Protocol]:
    try:
        return load_protocol(study.protocol, store.home.root)
    except ProtocolError:
        return None


def stage_views(store: Store, study: Study, protocol: Protocol) -> list[StageView]:
    sid = int(study.id)  # type: ignore[arg-type]
    runs = {r.stage: r for r in store.stage_runs(sid)}
    latest: dict[str, Decision] = {}
    for d in store.decisions(sid):
        latest[d.stage] = d  # ordered by id: the last one wins
    views = []
    for spec in protocol.stage:
        run = runs.get(spec.name) or StageRun(study_id=sid, stage=spec.name, state=StageState.pending)
        views.append(StageView(spec, run, latest.get(spec.name)))
    return views


def current_stage(views: list[StageView]) -> Optional[StageView]:
    """The first stage that still needs something (a run or a decision), or the stop point."""
    for v in views:
        if v.stopped_here:
            return v
        if v.state != "done" or v.awaiting_decision:
            return v
    return None


@dataclass
class StudyRow:
    id: int
    name: str
    model: str
    stage: str
    state: str
    last_activity: dt.datetime
    verdict: str


def study_rows(store: Store) -> list[StudyRow]:
    rows = []
    for study in store.studies():
        protocol = study_protocol(store, study)
        if protocol is None:
            rows.append(StudyRow(int(study.id), escape_controls(study.name), study.model_id, "?", "protocol missing",  # type: ignore[arg-type]
                                 study.updated_at, "—"))
            continue
        views = stage_views(store, study, protocol)
        cur = current_stage(views)
        verdict = overall_verdict(store, study).verdict
        rows.append(StudyRow(int(study.id), escape_controls(study.name), study.model_id,  # type: ignore[arg-type]
                             cur.name if cur else "complete", cur.status_word if cur else "done",
                             study.updated_at, verdict))
    return rows
