"""The headline sentence rounds points as the report's tables do (two decimals), so a manager never reads
+1.2 in the sentence and +1.25 in the table beside it."""

from __future__ import annotations

from lab.report.headline import _numbers_clause


def test_the_sentence_rounds_points_like_the_tables() -> None:
    h = {"mean_gain_points": 1.25, "mean_gain_ci_low_points": -0.333, "mean_gain_ci_high_points": 2.8349,
         "gain_over_control_points": 0.004, "worst_high_resource": {"points": -1.5, "language": "en"}}
    text = _numbers_clause(h)
    assert "+1.25 points (95% CI -0.33 to +2.83)" in text
    assert "+0.00 points against random neurons" in text and "-1.50 points (en)" in text
    table = f"{h['mean_gain_points']:+.2f}"  # lab/report/compare.py and the evidence tables: "{:+.2f}"
    assert table in text
