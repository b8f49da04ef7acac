"""The identify gate: every target language must have enough identified neurons."""

from __future__ import annotations

from typing import Any

from lab.gates.base import GATES, Recommendation, study_config
from lab.store import Store, Study


@GATES.register("identify")
def _identify(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    cfg = study_config(study)
    method = cfg["identify"]["method"]
    counts = {m.language: m.value for m in store.metrics(study.id, "identify", "neurons") if m.condition == method}
    need = float(params.get("min_neurons_per_target", 1))
    short = [t for t in cfg["languages"]["targets"] if counts.get(t, 0) < need]
    numbers = {f"neurons_{k}": v for k, v in counts.items()}
    if short:
        return Recommendation("no-go", [f"too few neurons (< {need:g}) for target(s) {', '.join(short)}"], numbers)
    return Recommendation("go", [f"every target has at least {need:g} neurons ({', '.join(f'{t}: {counts[t]:g}' for t in cfg['languages']['targets'])})"], numbers)
