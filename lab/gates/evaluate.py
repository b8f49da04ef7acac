"""The evaluate gate: gain on the target languages, over the random control, without high-resource
regressions, each decided on a paired bootstrap interval (go / no-go / inconclusive).

`decide_evaluate` is pure (per-item outcomes and thresholds in, Recommendation out) so simulations
call exactly the code that decides a real study; the registered rule only loads `paired_items.json`.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

import numpy as np

from lab.core.errors import BadInput
from lab.eval.stats import paired_bootstrap_diff_ci
from lab.gates.base import GATES, Recommendation
from lab.gates.intervals import Comparison, bonferroni_confidence, combine, decide
from lab.store import Store, Study

PAIRED_ITEMS = "paired_items.json"
RESAMPLES = 4000  # bootstrap resamples per comparison (count-multinomial draws: cheap at any n)
SEED = 0  # fixed: the same study always gets the same interval
MULTIPLICITY = "bonferroni"
DEFAULTS: dict[str, Any] = {"confidence": 0.95, "min_gain_over_control_points": 0.0, "require_beats_control": True,
                            "require_ci_above_zero": True}


def _arrays(cond: Mapping[str, Any], names: tuple[str, ...], where: str) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        if name not in cond:
            raise BadInput(f"{PAIRED_ITEMS}: {where} has no {name!r} scores; re-run the evaluate stage")
        out[name] = np.asarray(cond[name], dtype=np.float64)
    lengths = {len(v) for v in out.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise BadInput(f"{PAIRED_ITEMS}: {where} conditions score different or no items ({sorted(lengths)}); "
                       f"re-run the evaluate stage")
    return out


def _stratified(pairs: list[tuple[np.ndarray, np.ndarray]], confidence: float, resamples: int,
                seed: int) -> tuple[float, float, float]:
    """Mean over languages of the paired difference (each language weighs the same), in points."""
    treated = np.concatenate([t for t, _ in pairs])
    base = np.concatenate([b for _, b in pairs])
    strata = np.concatenate([np.full(len(t), i) for i, (t, _) in enumerate(pairs)])
    ci = paired_bootstrap_diff_ci(treated, base, resamples=resamples, seed=seed, confidence=confidence,
                                  strata=strata if len(pairs) > 1 else None)
    return 100 * ci.value, 100 * ci.low, 100 * ci.high


def decide_evaluate(data: Mapping[str, Any], thresholds: Mapping[str, Any], *, resamples: int = RESAMPLES,
                    seed: int = SEED) -> Recommendation:
    """The evaluate gate's verdict from paired per-item outcomes (the paired_items.json shape).

    Comparisons (all paired over the same items, percentile bootstrap at the frozen confidence):
    1. gain: mean over targets of (intervention − baseline), stratified by language; its lower bound
       must reach min_gain_points (≥; and exceed 0 when require_ci_above_zero);
    2. over control: mean over targets of (intervention − control); must clear
       min_gain_over_control_points (default 0: "beats the random control" means the interval of the
       difference lies above 0);
    3. each (target, high-resource language) change with the target's intervention on; its lower
       bound must stay at or above −max_regression_points. These k comparisons are one Bonferroni family: each interval at 1 − α/k.
    """
    th = {**DEFAULTS, **thresholds}
    confidence = float(th["confidence"])
    targets = data.get("targets") or {}
    if not targets:
        return Recommendation("undecided", ["no per-item evaluation results for the target languages"], {})
    per_target = {t: _arrays(c, ("baseline", "intervention") + (("control",) if "control" in c else ()), f"target {t}")
                  for t, c in targets.items()}
    items = {t: len(a["baseline"]) for t, a in per_target.items()}
    n_targets = int(round(float(np.mean(list(items.values())))))
    comps: list[Comparison] = []

    gain_threshold, strict = float(th["min_gain_points"]), False  # "a gain of at least min_gain_points"
    if th.get("require_ci_above_zero") and gain_threshold <= 0:
        gain_threshold, strict = 0.0, True  # "... and above zero"
    g, lo, hi = _stratified([(a["intervention"], a["baseline"]) for a in per_target.values()], confidence, resamples, seed)
    comps.append(decide("mean gain on targets", g, lo, hi, gain_threshold, confidence=confidence, n_per_stratum=n_targets,
                        strict=strict))
    numbers: dict[str, Any] = {"gain_points": g, "gain_ci_points": [lo, hi]}

    with_control = [a for a in per_target.values() if "control" in a]
    if with_control:
        c, clo, chi = _stratified([(a["control"], a["baseline"]) for a in with_control], confidence, resamples, seed + 1)
        o, olo, ohi = _stratified([(a["intervention"], a["control"]) for a in with_control], confidence, resamples, seed + 2)
        numbers.update({"control_gain_points": c, "control_gain_ci_points": [clo, chi],
                        "gain_over_control_points": o, "gain_over_control_ci_points": [olo, ohi]})
        if th.get("require_beats_control"):
            comps.append(decide("gain over the random control", o, olo, ohi, float(th["min_gain_over_control_points"]),
                                confidence=confidence, n_per_stratum=n_targets))
    elif th.get("require_beats_control"):
        return Recommendation("undecided", ["no random-control scores for the targets; re-run the evaluate stage"], numbers)

    high = data.get("high_resource") or {}
    family = [(t, h, _arrays(c, ("baseline", "intervention"), f"high-resource {h} under {t}'s intervention"))
              for t, per_h in high.items() for h, c in per_h.items()]
    hr_conf = bonferroni_confidence(confidence, len(family))
    hr_numbers: dict[str, dict[str, Any]] = {}
    for i, (t, h, a) in enumerate(family):
        v, vlo, vhi = _stratified([(a["intervention"], a["baseline"])], hr_conf, resamples, seed + 10 + i)
        comp = decide(f"{h} change under {t}'s intervention", v, vlo, vhi, -float(th["max_regression_points"]),
                      confidence=hr_conf, n_per_stratum=len(a["baseline"]), strict=False)
        comps.append(comp)
        entry = hr_numbers.setdefault(h, {"by_target": {}})
        entry["by_target"][t] = {"change_points": v, "ci_points": [vlo, vhi], "verdict": comp.verdict,
                                 "items_needed": comp.items_needed, "items": len(a["baseline"])}
        items.setdefault(h, len(a["baseline"]))
    for entry in hr_numbers.values():  # the headline per language: its worst target (lowest lower bound)
        t, worst = min(entry["by_target"].items(), key=lambda kv: kv[1]["ci_points"][0])
        entry.update({"change_points": worst["change_points"], "ci_points": worst["ci_points"], "target": t,
                      "verdict": worst["verdict"]})

    verdict = combine(c.verdict for c in comps)
    numbers.update({
        # the names the point-estimate gate reported, kept so older readers still find them
        "mean_gain_points": g, "mean_gain_ci_low_points": lo,
        "worst_high_resource_points": min((e["change_points"] for e in hr_numbers.values()), default=0.0),
        "high_resource": hr_numbers, "confidence": confidence, "high_resource_confidence": hr_conf,
        "multiplicity": MULTIPLICITY, "family_size": len(family), "items_per_language": items,
        "interval": "paired percentile bootstrap over items, stratified by language", "resamples": resamples,
        "thresholds": {k: th[k] for k in ("min_gain_points", "max_regression_points", "min_gain_over_control_points",
                                          "require_beats_control", "require_ci_above_zero", "confidence") if k in th},
        "comparisons": [c.to_dict() for c in comps],
        "items_to_decide": _items_to_decide(comps, verdict),
    })
    reasons = [c.reason() for c in comps]
    if family:
        reasons.append(f"high-resource family of {len(family)} corrected by Bonferroni: each interval at "
                       f"{100 * hr_conf:.4g}%")
    return Recommendation(verdict, reasons, numbers)


def _items_to_decide(comps: list[Comparison], verdict: str) -> Optional[int]:
    """Items per language that would likely decide every inconclusive comparison (None: not inconclusive,
    or some estimate sits on its threshold)."""
    if verdict != "inconclusive":
        return None
    needed = [c.items_needed for c in comps if c.verdict == "inconclusive"]
    return None if any(n is None for n in needed) else max(n for n in needed if n is not None)


def load_paired_items(store: Store, study: Study) -> dict[str, Any]:
    """The evaluate stage's per-item outcomes, verified against the hash recorded when written."""
    from lab.core.artifacts import verify

    try:
        row = store.artifact(int(study.id), "evaluate", PAIRED_ITEMS)  # type: ignore[arg-type]
    except BadInput:
        raise BadInput(f"study {study.id} has no evaluate/{PAIRED_ITEMS} (per-item outcomes the evaluate gate "
                       f"decides on); re-run the evaluate stage") from None
    path = verify(store.home.root / row.path, row.sha256)
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != 1:
        raise BadInput(f"{path}: paired-items version {data.get('version')!r} is not 1; re-run the evaluate stage")
    return data


@GATES.register("evaluate")
def _evaluate(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    try:
        data = load_paired_items(store, study)
    except BadInput as exc:
        return Recommendation("undecided", [str(exc)], {})
    rec = decide_evaluate(data, params)
    rec.numbers["metric"] = data.get("metric", "acc")
    return rec
