"""Three-outcome decisions on intervals: the rule, the family level and the items estimate."""

from __future__ import annotations

import pytest

from lab.gates.intervals import (
    GO,
    INCONCLUSIVE,
    NO_GO,
    bonferroni_confidence,
    combine,
    decide,
    items_to_decide,
    three_way,
)


def test_three_way_on_both_sides_and_straddling() -> None:
    assert three_way(1.2, 3.0, 1.0) == GO
    assert three_way(-2.0, 0.9, 1.0) == NO_GO
    assert three_way(0.5, 1.5, 1.0) == INCONCLUSIVE
    # touching the threshold has not cleared it
    assert three_way(1.0, 2.0, 1.0) == INCONCLUSIVE
    # lower is better (e.g. a cost that must stay under a ceiling)
    assert three_way(0.1, 0.4, 0.5, higher_is_better=False) == GO
    assert three_way(0.6, 0.9, 0.5, higher_is_better=False) == NO_GO
    with pytest.raises(ValueError):
        three_way(2.0, 1.0, 0.0)


def test_combine_no_go_dominates_then_inconclusive() -> None:
    assert combine([GO, GO]) == GO
    assert combine([GO, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([INCONCLUSIVE, NO_GO, GO]) == NO_GO
    assert combine([]) == "undecided"


def test_bonferroni_level() -> None:
    assert bonferroni_confidence(0.95, 5) == pytest.approx(0.99)
    assert bonferroni_confidence(0.95, 1) == pytest.approx(0.95)
    with pytest.raises(ValueError):
        bonferroni_confidence(1.0, 3)


def test_items_to_decide_scales_with_squared_half_width() -> None:
    # estimate 2, interval [0, 4], threshold 1: lower half-width 2 must shrink to the gap 1 → 4x items
    assert items_to_decide(200, 2.0, 0.0, 4.0, 1.0) == 800
    # estimate below the threshold uses the upper side: half 3, gap 0.5 → 36x
    assert items_to_decide(100, 0.5, -2.0, 3.5, 1.0) == 3600
    assert items_to_decide(100, 1.0, 0.0, 2.0, 1.0) is None  # on the threshold
    assert items_to_decide(100, 3.0, 2.0, 4.0, 1.0) == 100  # already decided


def test_decide_reports_items_only_when_inconclusive() -> None:
    c = decide("gain", 2.0, 0.0, 4.0, 1.0, confidence=0.95, n_per_stratum=200)
    assert c.verdict == INCONCLUSIVE and c.items_needed == 800
    assert "800 items per language" in c.reason()
    g = decide("gain", 3.0, 2.0, 4.0, 1.0, confidence=0.95, n_per_stratum=200)
    assert g.verdict == GO and g.items_needed is None and g.reason().startswith("✓")
