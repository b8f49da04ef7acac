"""The evaluate gate on hand-built paired outcomes: three outcomes, the Bonferroni family, the items
estimate, the loader's message, and the pilot verdict with `inconclusive`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lab.gates.evaluate import decide_evaluate
from lab.gates.final import combine_decisions
from lab.gates.simulate import point_estimate_rule

TH = {"min_gain_points": 1.0, "max_regression_points": 0.5, "confidence": 0.95}


def _paired(n: int, gained: int, lost: int, acc: float = 0.5) -> dict[str, list[float]]:
    """n items; baseline right on the first acc·n; `gained` wrong items become right, `lost` right ones wrong."""
    base = np.zeros(n)
    base[: int(acc * n)] = 1
    inter = base.copy()
    inter[int(acc * n): int(acc * n) + gained] = 1
    inter[:lost] = 0
    return {"baseline": base.tolist(), "intervention": inter.tolist()}


def _study(gain_items: int, n: int = 1000, hr: dict[str, tuple[int, int, int]] | None = None,
           lost: int = 0) -> dict[str, Any]:
    targets = {}
    for t in ("sw", "ur"):
        p = _paired(n, gain_items, lost)
        p["control"] = p["baseline"]
        targets[t] = p
    high = {"sw": {h: _paired(*spec) for h, spec in (hr or {}).items()}}
    return {"version": 1, "metric": "acc", "targets": targets, "high_resource": high}


def test_clear_gain_is_go_with_the_interval_in_the_numbers() -> None:
    rec = decide_evaluate(_study(100, hr={"en": (2000, 0, 0)}), TH)  # +10 points on 1,000 items per target
    assert rec.verdict == "go"
    n = rec.numbers
    assert n["gain_points"] == pytest.approx(10.0)
    low, high = n["gain_ci_points"]
    assert 1.0 < low < 10.0 < high
    assert n["gain_over_control_points"] == pytest.approx(10.0) and n["gain_over_control_ci_points"][0] > 0
    assert n["high_resource"]["en"]["change_points"] == 0.0 and n["high_resource"]["en"]["ci_points"] == [0.0, 0.0]
    assert n["items_per_language"] == {"sw": 1000, "ur": 1000, "en": 2000}
    assert n["multiplicity"] == "bonferroni" and n["confidence"] == 0.95
    assert n["thresholds"]["min_gain_points"] == 1.0


def test_a_gain_that_cannot_reach_the_threshold_is_no_go_and_a_straddling_one_is_inconclusive() -> None:
    assert decide_evaluate(_study(0, n=2000), TH).verdict == "no-go"  # [0, 0] lies below 1 point
    rec = decide_evaluate(_study(30, n=600, lost=18), TH)  # +2 points, 48 discordant items: CI straddles 1
    assert rec.verdict == "inconclusive"
    gain = rec.numbers["comparisons"][0]
    assert gain["verdict"] == "inconclusive" and gain["items_needed"] > 600
    # the estimate: n · (half-width on the threshold side / distance to the threshold)²
    expect = int(np.ceil(600 * ((gain["value"] - gain["low"]) / (gain["value"] - 1.0)) ** 2))
    assert gain["items_needed"] == expect == rec.numbers["items_to_decide"]
    assert any("items per language would likely decide it" in r for r in rec.reasons)


def test_high_resource_family_is_bonferroni_corrected() -> None:
    hr = {h: (2000, 30, 40) for h in ("en", "fr", "de", "hi", "es")}  # −0.5 points each, 70 discordant
    rec = decide_evaluate(_study(100, hr=hr), TH)
    assert rec.numbers["family_size"] == 5
    assert rec.numbers["high_resource_confidence"] == pytest.approx(0.99)
    one = decide_evaluate(_study(100, hr={"en": hr["en"]}), TH)
    wide = rec.numbers["high_resource"]["en"]["ci_points"]
    narrow = one.numbers["high_resource"]["en"]["ci_points"]
    assert wide[0] < narrow[0] and wide[1] > narrow[1]
    assert any("Bonferroni" in r for r in rec.reasons)


def test_a_clear_regression_is_no_go_even_with_a_clear_gain() -> None:
    rec = decide_evaluate(_study(100, hr={"en": (2000, 0, 200)}), TH)  # English loses 10 points
    assert rec.verdict == "no-go"
    assert rec.numbers["high_resource"]["en"]["verdict"] == "no-go"


def test_several_targets_key_high_resource_by_language_then_target() -> None:
    data = _study(100)
    data["high_resource"] = {"sw": {"en": _paired(2000, 0, 0)}, "ur": {"en": _paired(2000, 0, 100)}}
    rec = decide_evaluate(data, TH)
    en = rec.numbers["high_resource"]["en"]
    assert set(en["by_target"]) == {"sw", "ur"}
    assert en["target"] == "ur" and en["change_points"] == pytest.approx(-5.0)  # the worst target heads the entry
    assert rec.numbers["family_size"] == 2


def test_control_must_be_beaten_on_the_interval() -> None:
    data = _study(100)
    for t in data["targets"].values():
        t["control"] = t["intervention"]  # random neurons do exactly as well
    rec = decide_evaluate(data, TH)
    assert rec.verdict != "go"
    assert rec.numbers["gain_over_control_ci_points"] == [0.0, 0.0]
    assert point_estimate_rule(data, TH) == "no-go"  # the old rule's strict > also fails here


def test_bad_shapes_are_one_line_errors() -> None:
    from lab.core.errors import BadInput

    data = _study(10)
    data["targets"]["sw"]["intervention"] = data["targets"]["sw"]["intervention"][:-1]
    with pytest.raises(BadInput, match="re-run the evaluate stage"):
        decide_evaluate(data, TH)
    assert decide_evaluate({"targets": {}}, TH).verdict == "undecided"


def test_pilot_verdict_with_inconclusive() -> None:
    assert combine_decisions(["go", "go", "inconclusive"]) == "inconclusive"
    assert combine_decisions(["go", "inconclusive", "undecided"]) == "inconclusive"
    assert combine_decisions(["go", "inconclusive", "no-go"]) == "no-go"
    assert combine_decisions(["go", "go"]) == "go"
    assert combine_decisions(["go", "revise"]) == "undecided"


def test_stored_inconclusive_decision_makes_the_pilot_inconclusive(tmp_path, tiny_llama_dir, tiny_corpus_dir,
                                                                   capsys) -> None:
    from lab.cli import main
    from lab.gates.final import overall_verdict
    from lab.gates.rules import recommend
    from lab.store import Store
    from lab.study.create import create_study
    from protocols import load_protocol
    from tests.helpers import write_study_toml

    store = Store(tmp_path / "h")
    study = create_study(store, write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir))
    protocol = load_protocol(study.protocol, store.home.root)
    # without the evaluate stage's per-item file the rule cannot decide, and says what to do
    rec = recommend(store, study, protocol, protocol.get("evaluate"))
    assert rec is not None and rec.verdict == "undecided" and "re-run the evaluate stage" in rec.reasons[0]
    for stage in ("criteria", "identify", "reproduce"):
        store.add_decision(study.id, stage, "go", "fine", "rule")
    from lab.store import StageState

    store.update_stage(study.id, "evaluate", state=StageState.done)  # `decide` needs a finished stage
    assert main(["decide", str(study.id), "evaluate", "inconclusive", "--rationale", "CI straddles 1 point",
                 "--by", "Ana", "--home", str(tmp_path / "h")]) == 0
    v = overall_verdict(store, study)
    assert v.verdict == "inconclusive" and any("evaluate: inconclusive (Ana)" in r for r in v.reasons)
    capsys.readouterr()
    assert main(["status", str(study.id), "--home", str(tmp_path / "h")]) == 0
    out = capsys.readouterr().out
    assert "decision: inconclusive by Ana" in out and out.rstrip().endswith("verdict: inconclusive")
    store.add_decision(study.id, "reproduce", "no-go", "not specific", "rule")
    assert overall_verdict(store, study).verdict == "no-go"
