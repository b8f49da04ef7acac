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


def _percentiles(draws: np.ndarray, confidence: float = CI_LEVEL) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence} must lie strictly between 0 and 1")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return float(low), float(high)


MAX_DISTINCT_FOR_COUNTS = 256  # above this many distinct per-item values, resample indices instead
_CHUNK_CELLS = 4_000_000  # index-resampling work per chunk (resamples × items), bounds memory


def bootstrap_means(x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`resamples` bootstrap means of x (items drawn with replacement).

    Drawing n items with replacement and averaging depends only on how often each distinct value is
    drawn, which is multinomial(n, observed shares): for 0/1 correctness the differences take at most
    three values, so one multinomial draw of 3 counts replaces n index draws. Same distribution as
    index resampling, at any n in microseconds; many distinct values (e.g. F1 scores) fall back to
    index resampling in bounded chunks.
    """
    n = len(x)
    values, counts = np.unique(x, return_counts=True)
    if len(values) == 1:
        return np.full(resamples, float(values[0]))
    if len(values) <= MAX_DISTINCT_FOR_COUNTS:
        draws = rng.multinomial(n, counts / n, size=resamples)
        return draws @ values / n
    out = np.empty(resamples)
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        out[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return out


def _strata_index(strata: Optional[Sequence[object]], n: int) -> list[np.ndarray]:
    if strata is None:
        return [np.arange(n)]
    if len(strata) != n:
        raise ValueError(f"{len(strata)} strata labels for {n} items")
    labels = np.asarray(strata) if isinstance(strata, np.ndarray) else np.asarray([str(s) for s in strata])
    keys, inverse = np.unique(labels, return_inverse=True)
    order = sorted(range(len(keys)), key=lambda i: str(keys[i]))
    return [np.flatnonzero(inverse == i) for i in order]


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
                             seed: int = 0, strata: Optional[Sequence[object]] = None,
                             confidence: float = CI_LEVEL) -> Interval:
    """CI (percentile bootstrap at `confidence`) of mean(treated − base) over the same items,
    resampling items jointly (one draw per item serves both conditions: only the per-item difference
    matters, resampled through `bootstrap_means`).

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
        draws += bootstrap_means(d[g], resamples, rng)
    draws /= len(groups)
    low, high = _percentiles(draws, confidence)
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


def normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def mde_points(items_per_stratum: Sequence[int], *, discordance: float, confidence: float = CI_LEVEL,
               power: float = 0.8) -> float:
    """Minimum detectable effect, in points, of the mean paired difference over strata (languages).

    A paired 0/1 outcome has per-item difference variance at most the discordance rate ψ (share of
    items on which the two conditions disagree), so the stratified mean over S languages with n_s
    items each has SE = sqrt(Σ ψ/n_s) / S, and
        MDE = (z_{1−α/2} + z_{power}) · SE · 100   (α = 1 − confidence).
    """
    ns = [int(n) for n in items_per_stratum]
    if not ns or min(ns) <= 0:
        raise ValueError("the MDE needs a positive item count for every language")
    if not 0.0 < discordance <= 1.0:
        raise ValueError(f"discordance {discordance} must lie in (0, 1]")
    se = math.sqrt(sum(discordance / n for n in ns)) / len(ns)
    z = normal_quantile(0.5 + confidence / 2.0) + normal_quantile(power)
    return 100.0 * z * se


def items_for_mde(target_points: float, strata: int, *, discordance: float, confidence: float = CI_LEVEL,
                  power: float = 0.8) -> int:
    """Items per language (equal in every stratum) at which `mde_points` falls to `target_points`."""
    if target_points <= 0:
        raise ValueError("the target MDE must be positive")
    z = normal_quantile(0.5 + confidence / 2.0) + normal_quantile(power)
    return int(math.ceil(discordance * (z * 100.0 / target_points) ** 2 / max(1, strata)))
