"""The reproduce gate: split-half stability, then per target the own-language perplexity increase over the
random control, decided on its block bootstrap interval (go / no-go / inconclusive)."""

from __future__ import annotations

import statistics
from typing import Any, Optional

from lab.gates.base import GATES, Recommendation, study_config
from lab.gates.intervals import GO, INCONCLUSIVE, NO_GO, bonferroni_confidence, combine, decide
from lab.store import Store, Study

FEW_BLOCKS = 10  # below this many held-out blocks a percentile block bootstrap is too narrow to trust
BLOCK_TOKENS_HINT = "[corpus] heldout_tokens"


def with_stability(stable: bool, specific: str) -> str:
    """Stability is a precondition: unstable sets cannot pass (revise), unless specificity already fails
    (no-go). Stable sets take the specificity verdict as it is."""
    if specific == NO_GO:
        return NO_GO
    if not stable:
        return "revise"
    return specific


@GATES.register("reproduce")
def _reproduce(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    cfg = study_config(study)
    targets = list(cfg["languages"]["targets"])
    rows = store.metrics(study.id, "reproduce")
    pick = lambda name, cond: {m.language: m for m in rows if m.name == name and m.condition == cond}  # noqa: E731
    stab = [m.value for lang, m in pick("stability_jaccard", "identified").items() if lang in targets]
    ctrl = [m.value for lang, m in pick("stability_jaccard", "control").items() if lang in targets]
    over = pick("ppl_increase_over_control", "identified")
    med = statistics.median(stab) if stab else 0.0
    min_stab = float(params["min_median_stability"])
    threshold = float(params.get("min_ppl_increase_over_control", 1.0))
    confidence = float(params.get("confidence", 0.95))
    level = bonferroni_confidence(confidence, len(targets))  # the level the stage computed its intervals at
    stable = med >= min_stab
    reasons = [("✓ " if stable else "✗ ") + f"median split-half stability on targets {med:.2f} (need ≥ {min_stab})"]
    per_target: dict[str, dict[str, Any]] = {}
    for t in targets:
        m = over.get(t)
        if m is None:
            per_target[t] = {"verdict": INCONCLUSIVE, "increase_over_control_pct": None, "ci": None}
            reasons.append(f"? {t}: no perplexity increase over the control was stored; rerun the reproduce stage")
            continue
        blocks = int(m.n or 0)
        if m.ci_low is None or m.ci_high is None:
            per_target[t] = {"increase_over_control_pct": m.value, "ci": None, "blocks": blocks,
                             "verdict": INCONCLUSIVE}
            reasons.append(f"? {t}: own-language PPL increase over the random control {m.value:+.2f}% has no interval "
                           f"(fewer than 2 held-out blocks); raise {BLOCK_TOKENS_HINT}")
            continue
        c = decide(f"{t}: own-language PPL increase over the random control", m.value, m.ci_low, m.ci_high, threshold,
                   confidence=level, n_per_stratum=blocks)
        per_target[t] = {"increase_over_control_pct": c.value, "ci": [c.low, c.high], "blocks": blocks,
                         "confidence": level, "verdict": c.verdict, "blocks_to_decide": c.items_needed}
        why = (f"{c.name} {c.value:+.2f}%, {100 * level:.4g}% CI [{c.low:+.2f}, {c.high:+.2f}] "
               f"(need > {threshold:+.2f}%): {c.verdict}")
        if c.verdict == INCONCLUSIVE:
            why += (f" — about {c.items_needed} held-out blocks would likely decide it (now {blocks}; raise "
                    f"{BLOCK_TOKENS_HINT})" if c.items_needed is not None else
                    " — the estimate sits on the threshold; more text is unlikely to decide it")
        if blocks < FEW_BLOCKS:
            why += f"; only {blocks} held-out blocks: too few for a trustworthy interval, raise {BLOCK_TOKENS_HINT}"
        reasons.append({GO: "✓ ", NO_GO: "✗ "}.get(c.verdict, "? ") + why)
    specific = combine(e["verdict"] for e in per_target.values())
    numbers: dict[str, Any] = {
        "median_stability_targets": med, "median_stability_control": statistics.median(ctrl) if ctrl else None,
        "targets": per_target, "specificity": specific, "confidence": confidence,
        "per_target_confidence": level, "multiplicity": "bonferroni",
        "thresholds": {"min_median_stability": min_stab, "min_ppl_increase_over_control": threshold,
                       "confidence": confidence},
        # shown, not decided on: both depend on set size (docs/reproduce.md)
        "diagonal_share_targets": _share(pick("ppxc_diagonal_dominant", "identified"), targets),
        "median_control_ratio": _median(pick("ppxc_control_ratio", "identified"), targets),
    }
    return Recommendation(with_stability(stable, specific), reasons, numbers)


def _share(by_lang: dict[str, Any], targets: list[str]) -> Optional[float]:
    vals = [by_lang[t].value for t in targets if t in by_lang]
    return sum(vals) / len(vals) if vals else None


def _median(by_lang: dict[str, Any], targets: list[str]) -> Optional[float]:
    vals = [by_lang[t].value for t in targets if t in by_lang]
    return statistics.median(vals) if vals else None
