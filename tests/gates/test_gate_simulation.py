"""Simulation evidence: the real evaluate gate (`decide_evaluate`) on 2,000 simulated studies per
scenario with known true effects, beside the point-estimate rule it replaced (docs/statistics.md)."""

from __future__ import annotations

import pytest

from lab.gates.simulate import Scenario, run_scenario, scenarios

STUDIES = 2000


def _scenario(prefix: str) -> Scenario:
    return next(sc for sc in scenarios() if sc.name.startswith(prefix))


@pytest.mark.slow
def test_false_go_at_zero_true_gain_is_rare() -> None:
    r = run_scenario(_scenario("true gain 0"), STUDIES, seed=0)
    assert r.interval["go"] <= 0.05
    print(f"\nfalse go at true gain 0: interval {r.interval['go']:.3%}, point rule {r.point['go']:.3%}")


@pytest.mark.slow
def test_regression_noise_rarely_gives_a_false_no_go() -> None:
    r = run_scenario(_scenario("5 high-resource"), STUDIES, seed=2)
    assert r.interval["no-go"] <= 0.05
    # the point-estimate rule takes the minimum of five noisy point changes against −0.5 points
    assert r.point["no-go"] > 0.15
    print(f"\nfalse no-go from noise: interval {r.interval['no-go']:.3%}, point rule {r.point['no-go']:.3%}")


@pytest.mark.slow
def test_a_gain_four_standard_errors_above_the_threshold_is_go() -> None:
    sc = _scenario("true gain = threshold + 4 SE")
    assert sc.true_gain_points == pytest.approx(1.0 + 4 * sc.se_points(), abs=1e-3)
    r = run_scenario(sc, STUDIES, seed=4)
    assert r.interval["go"] >= 0.80
    print(f"\ngo at threshold + 4 SE: interval {r.interval['go']:.3%}, point rule {r.point['go']:.3%}")


def test_at_the_threshold_the_interval_gate_rarely_says_go_but_the_point_rule_often_does() -> None:
    r = run_scenario(_scenario("true gain = threshold"), 300, seed=1)
    assert r.interval["go"] <= 0.05
    assert r.point["go"] > 0.10
    assert r.interval["inconclusive"] > 0.5


def test_a_true_regression_is_caught() -> None:
    r = run_scenario(_scenario("one high-resource language truly loses"), 300, seed=3)
    assert r.interval["no-go"] >= 0.6
    assert r.interval["go"] == 0.0
