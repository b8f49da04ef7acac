"""What every gate rule shares: the Recommendation it returns, the rule registry, and the study's
frozen criteria (the protocol's thresholds with the study's [criteria] overrides)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from lab.core.registry import Registry
from lab.store import Store, Study
from protocols import Protocol


@dataclass
class Recommendation:
    verdict: str  # go | no-go | inconclusive | revise | undecided
    reasons: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def summary(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)


GateRule = Callable[[Store, Study, dict[str, Any]], Recommendation]
GATES: Registry[GateRule] = Registry("gate rule")


def criteria_for(study: Study, protocol: Protocol) -> dict[str, Any]:
    """The protocol's thresholds with the study's [criteria] overrides applied."""
    crit = dict(protocol.gate_params())
    crit.update(json.loads(study.config_json).get("criteria") or {})
    return crit


def study_config(study: Study) -> dict[str, Any]:
    return json.loads(study.config_json)
