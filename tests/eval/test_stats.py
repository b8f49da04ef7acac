"""Paired statistics against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from lab.eval.stats import (
    bootstrap_mean_ci,
    discordant_counts,
    mcnemar_exact_p,
    mcnemar_p,
    paired_bootstrap_diff_ci,
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
