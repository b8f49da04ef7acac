"""Evaluating a stage's gate: looks up the protocol's rule (every rule module registers itself on
import) with the study's frozen thresholds."""

from __future__ import annotations

from lab.gates import criteria, evaluate, final, identify, reproduce  # noqa: F401  (registers the rules)
from lab.gates.base import GATES, Recommendation, criteria_for
from lab.store import Store, Study
from protocols import Protocol, StageSpec


def recommend(store: Store, study: Study, protocol: Protocol, spec: StageSpec) -> Recommendation | None:
    if spec.gate is None:
        return None
    params = {**spec.gate.params, **{k: v for k, v in criteria_for(study, protocol).items() if k in spec.gate.params}}
    return GATES.get(spec.gate.rule)(store, study, params)
