"""Gate rules: turn a finished stage's stored metrics into a go / no-go / revise recommendation.

Rules are registered by name (protocol files refer to them); thresholds come from the protocol's
gate params, overridden by the study's [criteria]. Reads only the store: no torch here, so the UI
and the runner can evaluate gates in-process.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from lab.registry import Registry
from lab.store import Store, Study
from protocols import Protocol, StageSpec


@dataclass
class Recommendation:
    verdict: str  # go | no-go | revise | undecided
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


def recommend(store: Store, study: Study, protocol: Protocol, spec: StageSpec) -> Recommendation | None:
    if spec.gate is None:
        return None
    params = {**spec.gate.params, **{k: v for k, v in criteria_for(study, protocol).items() if k in spec.gate.params}}
    return GATES.get(spec.gate.rule)(store, study, params)


def _cfg(study: Study) -> dict[str, Any]:
    return json.loads(study.config_json)


@GATES.register("criteria")
def _criteria(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    from protocols import load_protocol

    crit = criteria_for(study, load_protocol(study.protocol, store.home.root))
    return Recommendation("go", ["criteria frozen before any result: " + ", ".join(f"{k}={v}" for k, v in sorted(crit.items()))], crit)


@GATES.register("identify")
def _identify(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    cfg = _cfg(study)
    method = cfg["identify"]["method"]
    counts = {m.language: m.value for m in store.metrics(study.id, "identify", "neurons") if m.condition == method}
    need = float(params.get("min_neurons_per_target", 1))
    short = [t for t in cfg["languages"]["targets"] if counts.get(t, 0) < need]
    numbers = {f"neurons_{k}": v for k, v in counts.items()}
    if short:
        return Recommendation("no-go", [f"too few neurons (< {need:g}) for target(s) {', '.join(short)}"], numbers)
    return Recommendation("go", [f"every target has at least {need:g} neurons ({', '.join(f'{t}: {counts[t]:g}' for t in cfg['languages']['targets'])})"], numbers)


@GATES.register("reproduce")
def _reproduce(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    cfg = _cfg(study)
    targets = cfg["languages"]["targets"]
    rows = store.metrics(study.id, "reproduce")
    stab = [m.value for m in rows if m.name == "stability_jaccard" and m.condition == "identified" and m.language in targets]
    ctrl = [m.value for m in rows if m.name == "stability_jaccard" and m.condition == "control" and m.language in targets]
    diag = [m.value for m in rows if m.name == "ppxc_diagonal_dominant" and m.condition == "identified" and m.language in targets]
    ratio = [m.value for m in rows if m.name == "ppxc_control_ratio" and m.language in targets]
    med = statistics.median(stab) if stab else 0.0
    share = sum(diag) / len(diag) if diag else 0.0
    med_ratio = statistics.median(ratio) if ratio else 0.0
    numbers = {"median_stability_targets": med, "median_stability_control": statistics.median(ctrl) if ctrl else None,
               "diagonal_share_targets": share, "median_control_ratio": med_ratio}
    reasons = [f"median split-half stability on targets {med:.2f} (min {params['min_median_stability']})",
               f"share of targets whose own neurons hurt them most {share:.2f} (min {params['min_diagonal_share']})",
               f"own-language PPL increase vs random control x{med_ratio:.2f} (min {params['min_control_ratio']})"]
    stable = med >= float(params["min_median_stability"])
    specific = share >= float(params["min_diagonal_share"]) and med_ratio >= float(params["min_control_ratio"])
    verdict = "go" if stable and specific else ("revise" if stable or specific else "no-go")
    return Recommendation(verdict, reasons, numbers)


@GATES.register("evaluate")
def _evaluate(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    cfg = _cfg(study)
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
