"""Paired statistics for per-item correctness: bootstrap confidence intervals and exact McNemar.

Baseline and intervention are scored on the *same* items, so their accuracies are not independent:
the CI of the difference resamples items jointly (one index draw serves both conditions), and
McNemar looks only at the items where the two disagree. Everything is seeded, so a re-run gives
the same interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

CI_LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    n: int


def _as_array(x: Sequence[float]) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError("per-item scores must be a flat sequence")
    return arr


def _percentiles(draws: np.ndarray) -> tuple[float, float]:
    alpha = (1.0 - CI_LEVEL) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _strata_index(strata: Optional[Sequence[object]], n: int) -> list[np.ndarray]:
    if strata is None:
        return [np.arange(n)]
    if len(strata) != n:
        raise ValueError(f"{len(strata)} strata labels for {n} items")
    groups: dict[object, list[int]] = {}
    for i, s in enumerate(strata):
        groups.setdefault(s, []).append(i)
    return [np.asarray(v) for _, v in sorted(groups.items(), key=lambda kv: str(kv[0]))]


def bootstrap_mean_ci(scores: Sequence[float], *, resamples: int = 2000, seed: int = 0) -> Interval:
    """Percentile bootstrap CI of a mean (e.g. accuracy over items)."""
    x = _as_array(scores)
    n = len(x)
    if n == 0:
        raise ValueError("no items to bootstrap")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    low, high = _percentiles(x[idx].mean(axis=1))
    return Interval(float(x.mean()), low, high, n)


def paired_bootstrap_diff_ci(treated: Sequence[float], base: Sequence[float], *, resamples: int = 2000,
                             seed: int = 0, strata: Optional[Sequence[object]] = None) -> Interval:
    """CI of mean(treated − base) over the same items, resampling items jointly.

    With `strata` (e.g. the language of each item) items are resampled within each stratum and the
    statistic is the unweighted mean of the per-stratum differences, so pooled target languages
    count equally however many items each has.
    """
    t, b = _as_array(treated), _as_array(base)
    if len(t) != len(b):
        raise ValueError(f"paired scores differ in length ({len(t)} vs {len(b)}); score the same items")
    if len(t) == 0:
        raise ValueError("no items to bootstrap")
    d = t - b
    groups = _strata_index(strata, len(d))
    rng = np.random.default_rng(seed)
    value = float(np.mean([d[g].mean() for g in groups]))
    draws = np.zeros(resamples)
    for g in groups:
        idx = rng.integers(0, len(g), size=(resamples, len(g)))
        draws += d[g][idx].mean(axis=1)
    draws /= len(groups)
    low, high = _percentiles(draws)
    return Interval(value, low, high, len(d))


def discordant_counts(treated: Sequence[float], base: Sequence[float]) -> tuple[int, int]:
    """(items only base got right, items only treated got right) for 0/1 correctness."""
    t, b = _as_array(treated) > 0.5, _as_array(base) > 0.5
    if len(t) != len(b):
        raise ValueError(f"paired scores differ in length ({len(t)} vs {len(b)}); score the same items")
    return int(np.sum(b & ~t)), int(np.sum(t & ~b))


def mcnemar_exact_p(only_base: int, only_treated: int) -> float:
    """Two-sided exact McNemar test: a binomial(n, 1/2) test on the n discordant pairs (scipy's
    binomtest, fast at any n); no discordant pairs → p = 1."""
    if only_base < 0 or only_treated < 0:
        raise ValueError("discordant counts must be non-negative")
    n = only_base + only_treated
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(min(1.0, binomtest(min(only_base, only_treated), n, 0.5, alternative="two-sided").pvalue))


def wilson_interval(successes: int, n: int, *, confidence: float = CI_LEVEL) -> Interval:
    """Wilson score interval of a proportion: never zero width (20/20 correct is not [1, 1])."""
    if n <= 0:
        raise ValueError("no items for a proportion")
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}")
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2.0))
    p = successes / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n)


def mcnemar_p(treated: Sequence[float], base: Sequence[float]) -> float:
    return mcnemar_exact_p(*discordant_counts(treated, base))
