"""The evaluate gate: gain on the target languages, against the random control, without regressions."""

from __future__ import annotations

import statistics
from typing import Any

from lab.gates.base import GATES, Recommendation, study_config
from lab.store import Store, Study


@GATES.register("evaluate")
def _evaluate(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    cfg = study_config(study)
    targets = cfg["languages"]["targets"]
    high = cfg["languages"]["high_resource"]
    rows = store.metrics(study.id, "evaluate", "accuracy_delta")
    pick = lambda cond, langs: [m for m in rows if m.condition == cond and m.language in langs]  # noqa: E731
    interv, control, regress = pick("intervention", targets), pick("control", targets), pick("intervention", high)
    if not interv:
        return Recommendation("undecided", ["no evaluation results for the target languages"], {})
    gain = 100 * statistics.fmean(m.value for m in interv)
    ctrl_gain = 100 * statistics.fmean(m.value for m in control) if control else 0.0
    mean_row = [m for m in rows if m.condition == "intervention" and m.language == "targets"]
    ci_low = 100 * mean_row[0].ci_low if mean_row and mean_row[0].ci_low is not None else None
    worst = min((100 * m.value for m in regress), default=0.0)
    numbers = {"mean_gain_points": gain, "mean_gain_ci_low_points": ci_low, "control_gain_points": ctrl_gain,
               "gain_over_control_points": gain - ctrl_gain, "worst_high_resource_points": worst}
    checks = [(gain >= float(params["min_gain_points"]), f"mean gain on targets {gain:+.2f} points (need ≥ {params['min_gain_points']})")]
    if params.get("require_ci_above_zero"):
        checks.append((ci_low is not None and ci_low > 0, f"95% CI lower bound {ci_low:+.2f} points (need > 0)" if ci_low is not None else "no CI for the mean gain"))
    if params.get("require_beats_control"):
        checks.append((gain > ctrl_gain, f"random-neuron control {ctrl_gain:+.2f} points (intervention must beat it)"))
    checks.append((worst >= -float(params["max_regression_points"]), f"worst high-resource change {worst:+.2f} points (floor −{params['max_regression_points']})"))
    verdict = "go" if all(ok for ok, _ in checks) else "no-go"
    return Recommendation(verdict, [("✓ " if ok else "✗ ") + why for ok, why in checks], numbers)
