"""Three-outcome decisions on confidence intervals, shared by every gate that compares a measured
effect with a frozen threshold (go / no-go / inconclusive, Bonferroni levels, items to decide)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Optional

GO, NO_GO, INCONCLUSIVE = "go", "no-go", "inconclusive"


def three_way(interval_low: float, interval_high: float, threshold: float, higher_is_better: bool = True,
              *, strict: bool = True) -> str:
    """`go` when the whole interval clears the threshold, `no-go` when the whole interval falls short
    of it, `inconclusive` when it straddles it (more items would decide).

    strict=True ("must beat"): an interval that touches the threshold has not cleared it.
    strict=False ("at least"): a bound equal to the threshold clears it (gain ≥ 1 point). An interval
    wholly on the wrong side is no-go either way.
    """
    if interval_low > interval_high:
        raise ValueError(f"interval low {interval_low} is above its high {interval_high}")
    if higher_is_better:
        if interval_low > threshold or (not strict and interval_low == threshold):
            return GO
        if interval_high < threshold:
            return NO_GO
    else:
        if interval_high < threshold or (not strict and interval_high == threshold):
            return GO
        if interval_low > threshold:
            return NO_GO
    return INCONCLUSIVE


def combine(verdicts: Iterable[str]) -> str:
    """Overall verdict of several comparisons: no-go if any is no-go, go if all are go, else
    inconclusive (no comparisons at all: undecided)."""
    vs = list(verdicts)
    if not vs:
        return "undecided"
    if NO_GO in vs:
        return NO_GO
    if all(v == GO for v in vs):
        return GO
    return INCONCLUSIVE


def bonferroni_confidence(confidence: float, k: int) -> float:
    """Per-comparison confidence for a family of k comparisons (Bonferroni: each at 1 − α/k), so the
    chance that any interval in the family misses its true value is at most α."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence} must lie strictly between 0 and 1 (e.g. 0.95)")
    return 1.0 - (1.0 - confidence) / max(1, int(k))


def items_to_decide(n: int, value: float, low: float, high: float, threshold: float) -> Optional[int]:
    """Items (per stratum, e.g. per language) that would likely decide an inconclusive comparison.

    The interval's half-width on the side facing the threshold shrinks as 1/sqrt(n) if the per-item
    variance and the effect stay as observed, so the needed n is
        n_needed = ceil(n · (observed half-width / |value − threshold|)²),
    the n at which that side just reaches the threshold. Returns None when the estimate sits on the
    threshold (no number of items is expected to decide it), and n when the interval decides already.
    """
    if n <= 0:
        raise ValueError("items_to_decide needs the current item count (> 0)")
    if low >= threshold or high <= threshold:
        return int(n)
    gap = abs(value - threshold)
    if gap <= 1e-12:
        return None
    half = (value - low) if value > threshold else (high - value)
    return int(math.ceil(n * (half / gap) ** 2))


@dataclass
class Comparison:
    """One decided comparison: what was compared, its estimate and interval, and the verdict."""

    name: str
    value: float
    low: float
    high: float
    threshold: float
    confidence: float
    verdict: str
    n_per_stratum: int
    items_needed: Optional[int] = None  # per stratum; only for inconclusive comparisons
    higher_is_better: bool = True
    strict: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def reason(self, unit: str = " points") -> str:
        mark = {GO: "✓", NO_GO: "✗"}.get(self.verdict, "?")
        need = (">" if self.higher_is_better else "<") + ("" if self.strict else "=")
        need = {">=": "≥", "<=": "≤"}.get(need, need)
        text = (f"{mark} {self.name} {self.value:+.2f}{unit}, {100 * self.confidence:.4g}% CI "
                f"[{self.low:+.2f}, {self.high:+.2f}] (need {need} {self.threshold:+.2f}): {self.verdict}")
        if self.verdict == INCONCLUSIVE:
            more = (f"about {self.items_needed} items per language would likely decide it"
                    if self.items_needed is not None else "the estimate sits on the threshold; more items are unlikely to decide it")
            text += f" — {more}"
        return text


def decide(name: str, value: float, low: float, high: float, threshold: float, *, confidence: float,
           n_per_stratum: int, higher_is_better: bool = True, strict: bool = True) -> Comparison:
    """Build the Comparison for one interval against one threshold."""
    verdict = three_way(low, high, threshold, higher_is_better, strict=strict)
    needed = items_to_decide(n_per_stratum, value, low, high, threshold) if verdict == INCONCLUSIVE and n_per_stratum > 0 else None
    return Comparison(name, float(value), float(low), float(high), float(threshold), float(confidence), verdict,
                      int(n_per_stratum), needed, higher_is_better, strict)
