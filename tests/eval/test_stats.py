"""Paired statistics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lab.eval.stats import (
    bootstrap_mean_ci,
    discordant_counts,
    mcnemar_exact_p,
    mcnemar_p,
    bootstrap_means,
    items_for_mde,
    mde_points,
    paired_bootstrap_diff_ci,
    wilson_interval,
)


def test_mcnemar_exact_hand_computed() -> None:
    # b = 1 item only baseline got right, c = 6 only the intervention got right: n = 7 discordant.
    # P[X <= 1] with X ~ Bin(7, 1/2) = (C(7,0) + C(7,1)) / 2^7 = 8/128; two-sided p = 16/128 = 0.125.
    assert mcnemar_exact_p(1, 6) == pytest.approx(0.125, abs=0)
    assert mcnemar_exact_p(6, 1) == pytest.approx(0.125, abs=0)
    # 0 vs 5: 2 * 1/32
    assert mcnemar_exact_p(0, 5) == 0.0625
    # balanced discordance: 2 * (1+6+15+20)/64 > 1 → capped at 1
    assert mcnemar_exact_p(3, 3) == 1.0
    assert mcnemar_exact_p(0, 0) == 1.0


def test_mcnemar_from_items_counts_only_discordant_pairs() -> None:
    base = [1, 1, 0, 0, 0, 0, 0, 0, 1, 1]
    treated = [1, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert discordant_counts(treated, base) == (1, 6)
    assert mcnemar_p(treated, base) == 0.125


def test_mcnemar_large_n_does_not_underflow() -> None:
    # 0 vs 2000: p = 2 / 2^2000, far below float range → 0.0, not an exception or NaN
    p = mcnemar_exact_p(0, 2000)
    assert p == 0.0 and not math.isnan(p)
    # 480 vs 520 is unremarkable; exact value from the integer tail
    tail = sum(math.comb(1000, i) for i in range(481))
    assert mcnemar_exact_p(480, 520) == pytest.approx(2 * tail / 2**1000, rel=1e-12)
    assert 0.2 < mcnemar_exact_p(480, 520) < 0.3


def test_paired_bootstrap_resamples_items_jointly() -> None:
    # Identical per-item scores: every joint resample has difference exactly 0 (independent resampling
    # of the two conditions would give a wide interval).
    scores = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
    d = paired_bootstrap_diff_ci(scores, scores, resamples=500, seed=3)
    assert (d.value, d.low, d.high, d.n) == (0.0, 0.0, 0.0, 10)


def test_paired_bootstrap_hand_computed_quantiles() -> None:
    # differences [1, 0, 0, 0]: the resampled mean is k/4 with k ~ Bin(4, 1/4).
    # P[k >= 3] = 4·(1/4)^3·(3/4) + (1/4)^4 = 0.0508 > 2.5% and P[k = 4] = 0.0039 < 2.5% → upper bound 0.75;
    # P[k = 0] = (3/4)^4 = 0.316 > 2.5% → lower bound 0.
    d = paired_bootstrap_diff_ci([1, 1, 0, 0], [0, 1, 0, 0], resamples=20000, seed=0)
    assert d.value == 0.25
    assert d.low == 0.0
    assert d.high == 0.75


def test_paired_bootstrap_is_seeded() -> None:
    t = [1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1]
    b = [0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0]
    assert paired_bootstrap_diff_ci(t, b, resamples=300, seed=7) == paired_bootstrap_diff_ci(t, b, resamples=300, seed=7)
    assert paired_bootstrap_diff_ci(t, b, resamples=300, seed=7) != paired_bootstrap_diff_ci(t, b, resamples=300, seed=8)


def test_stratified_bootstrap_weights_languages_equally() -> None:
    # language A: 2 items, both gained; language B: 8 items, none changed.
    treated = [1, 1] + [1, 0] * 4
    base = [0, 0] + [1, 0] * 4
    strata = ["A", "A"] + ["B"] * 8
    pooled = paired_bootstrap_diff_ci(treated, base, resamples=400, seed=0)
    per_lang = paired_bootstrap_diff_ci(treated, base, resamples=400, seed=0, strata=strata)
    assert pooled.value == pytest.approx(0.2)
    # mean of per-language gains (1.0 + 0.0) / 2; every stratified resample gives exactly that
    assert (per_lang.value, per_lang.low, per_lang.high) == (0.5, 0.5, 0.5)


def test_bootstrap_mean_ci_brackets_the_mean() -> None:
    x = [1] * 30 + [0] * 70
    ci = bootstrap_mean_ci(x, resamples=2000, seed=0)
    assert ci.value == pytest.approx(0.3)
    assert ci.low < 0.3 < ci.high
    # normal approximation: 0.3 ± 1.96·sqrt(0.21/100) = [0.21, 0.39]
    assert ci.low == pytest.approx(0.21, abs=0.025) and ci.high == pytest.approx(0.39, abs=0.025)
    assert bootstrap_mean_ci([1, 1, 1], resamples=100).low == 1.0


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap_diff_ci([1, 0], [1], resamples=100)
    with pytest.raises(ValueError):
        bootstrap_mean_ci([], resamples=100)
    with pytest.raises(ValueError):
        mcnemar_exact_p(-1, 2)


def test_mcnemar_at_ten_thousand_discordant_pairs_is_fast() -> None:
    import time

    start = time.perf_counter()
    p = mcnemar_exact_p(4900, 5100)
    assert time.perf_counter() - start < 0.5
    # normal approximation of the binomial test: z = (5100 − 5000) / sqrt(10000/4) = 2 → p ≈ 0.0455
    assert p == pytest.approx(0.0455, abs=0.003)


def test_wilson_never_has_zero_width() -> None:
    for k, n in [(20, 20), (0, 20), (1, 1), (0, 1)]:
        ci = wilson_interval(k, n)
        assert ci.high - ci.low > 0.05
        assert 0.0 <= ci.low <= ci.value <= ci.high <= 1.0
    # 20/20: lower bound n / (n + z²) = 20 / 23.84 = 0.839
    assert wilson_interval(20, 20).low == pytest.approx(20 / (20 + 1.959964**2), abs=1e-4)


def test_count_bootstrap_has_the_index_bootstrap_distribution() -> None:
    rng = np.random.default_rng(5)
    d = rng.choice([-1.0, 0.0, 1.0], p=[0.1, 0.75, 0.15], size=300)
    by_counts = bootstrap_means(d, 20000, np.random.default_rng(1))
    by_index = d[np.random.default_rng(2).integers(0, 300, size=(20000, 300))].mean(axis=1)
    assert by_counts.mean() == pytest.approx(by_index.mean(), abs=0.002)
    assert by_counts.std() == pytest.approx(by_index.std(), rel=0.03)
    assert np.quantile(by_counts, 0.025) == pytest.approx(np.quantile(by_index, 0.025), abs=0.0051)
    # many distinct values (F1-like scores) take the index path and give the same spread
    f1 = rng.random(400)
    draws = bootstrap_means(f1, 4000, np.random.default_rng(3))
    assert draws.std() == pytest.approx(f1.std() / np.sqrt(400), rel=0.06)


def test_higher_confidence_gives_a_wider_interval_and_large_n_is_fast() -> None:
    import time

    rng = np.random.default_rng(0)
    base = (rng.random(20000) < 0.6).astype(float)
    treated = np.where(rng.random(20000) < 0.1, 1 - base, base)
    start = time.perf_counter()
    ci95 = paired_bootstrap_diff_ci(treated, base, resamples=4000, seed=0)
    ci99 = paired_bootstrap_diff_ci(treated, base, resamples=4000, seed=0, confidence=0.99)
    assert time.perf_counter() - start < 1.0
    assert ci99.low < ci95.low < ci95.value < ci95.high < ci99.high
    # analytic SE of the mean difference: sqrt(var(d)/n)
    se = float(np.std(treated - base) / np.sqrt(20000))
    assert (ci95.high - ci95.low) / 2 == pytest.approx(1.96 * se, rel=0.08)


def test_mde_hand_computed() -> None:
    # two languages of 400 items, ψ = 0.2, 95 %, 80 % power: SE = sqrt(2 · 0.2/400) / 2 = 0.0158;
    # (1.95996 + 0.84162) · 0.0158 · 100 = 4.43 points
    assert mde_points([400, 400], discordance=0.2) == pytest.approx(4.430, abs=0.005)
    # the items needed for a 1-point MDE bring the MDE down to 1 point
    n = items_for_mde(1.0, 2, discordance=0.2)
    assert mde_points([n, n], discordance=0.2) <= 1.0 < mde_points([n - 5, n - 5], discordance=0.2)
    with pytest.raises(ValueError):
        mde_points([0, 10], discordance=0.2)
