"""The criteria gate: records the thresholds frozen before any result is seen."""

from __future__ import annotations

from typing import Any

from lab.gates.base import GATES, Recommendation, criteria_for
from lab.store import Store, Study


@GATES.register("criteria")
def _criteria(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    from protocols import load_protocol

    crit = criteria_for(study, load_protocol(study.protocol, store.home.root))
    return Recommendation("go", ["criteria frozen before any result: " + ", ".join(f"{k}={v}" for k, v in sorted(crit.items()))], crit)
