"""The reproduce gate decides on the block-bootstrap interval of the own-language perplexity increase over
the random control: the interval itself (paired, calibrated on synthetic blocks) and the gate's verdicts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lab.gates.base import GATES
from lab.gates import rules  # noqa: F401  (registers every gate rule)
from lab.neurons.ppl_interval import increase_over_control
from lab.store import Store
from tests.helpers import write_study_toml


# ---- the interval on synthetic blocks ------------------------------------------------------------

def synthetic_blocks(rng: np.random.Generator, n: int, shift_off: float, shift_ctrl: float,
                     noise: float) -> tuple[np.ndarray, ...]:
    """n blocks of 127 predicted tokens with very different difficulty (mean NLL 1..4 nats); switching
    neurons off adds `shift` nats per token on average, with per-block noise."""
    tokens = np.full(n, 127.0)
    base = tokens * rng.uniform(1.0, 4.0, n)
    off = base + tokens * (shift_off + noise * rng.standard_normal(n))
    ctrl = base + tokens * (shift_ctrl + noise * rng.standard_normal(n))
    return tokens, base, off, ctrl


def test_value_is_identified_increase_minus_control_increase_in_percent() -> None:
    tokens, base, off, ctrl = synthetic_blocks(np.random.default_rng(1), 32, 0.05, 0.01, 0.0)
    r = increase_over_control(tokens, base, off, ctrl, confidence=0.95, seed=0)
    assert r.identified_pct == pytest.approx(100 * math.expm1(0.05))
    assert r.control_pct == pytest.approx(100 * math.expm1(0.01))
    assert r.value_pct == pytest.approx(r.identified_pct - r.control_pct)
    assert (r.blocks, r.tokens) == (32, 32 * 127)


def test_pairing_cancels_what_blocks_share() -> None:
    """Blocks differ by a factor of 4 in difficulty, but switching neurons off shifts every token by the
    same amount: a paired bootstrap sees no uncertainty in the shift, an unpaired one would see the
    blocks' spread."""
    tokens, base, off, ctrl = synthetic_blocks(np.random.default_rng(2), 32, 0.03, 0.0, 0.0)
    r = increase_over_control(tokens, base, off, ctrl, confidence=0.95, seed=0)
    assert r.ci_high - r.ci_low < 1e-9
    assert r.ci_low == pytest.approx(100 * math.expm1(0.03))
    # the same blocks resampled independently per condition would not cancel: far wider
    rng = np.random.default_rng(0)
    draws = [100 * (math.exp(off[i].sum() / tokens[i].sum() - base[j].sum() / tokens[j].sum()) - 1)
             for i, j in (rng.integers(0, 32, (2, 32)) for _ in range(500))]
    assert np.quantile(draws, 0.975) - np.quantile(draws, 0.025) > 10


def test_interval_covers_the_true_difference_at_its_level() -> None:
    """400 simulated held-out texts of 32 blocks with a known true difference: the 90% percentile
    block bootstrap covers it in about 90% of them."""
    rng = np.random.default_rng(7)
    true = 100 * (math.exp(0.02) - math.exp(0.005))
    covered = 0
    sims = 400
    for s in range(sims):
        # per-block effects vary around their means; the population value is approximately `true`
        tokens, base, off, ctrl = synthetic_blocks(rng, 32, 0.02, 0.005, 0.01)
        r = increase_over_control(tokens, base, off, ctrl, confidence=0.90, seed=s, resamples=1000)
        covered += r.ci_low <= true <= r.ci_high
    assert 0.84 <= covered / sims <= 0.96, covered / sims


def test_equal_increases_give_zero_whatever_the_set_size_did() -> None:
    """A large set raises perplexity a lot, and so does its random control with the same per-layer
    counts: the difference is about zero, and the interval excludes a 1% threshold."""
    tokens, base, off, ctrl = synthetic_blocks(np.random.default_rng(3), 32, 0.20, 0.20, 0.002)
    r = increase_over_control(tokens, base, off, ctrl, confidence=0.95, seed=0)
    assert r.identified_pct > 20 and r.control_pct > 20
    assert abs(r.value_pct) < 0.5 and r.ci_high < 1.0


def test_interval_needs_two_blocks_and_matching_inputs() -> None:
    one = increase_over_control([127], [300.0], [310.0], [301.0])
    assert one.ci_low is None and one.ci_high is None and one.blocks == 1
    with pytest.raises(ValueError, match="differ in length"):
        increase_over_control([127, 127], [1.0, 2.0], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="no scored blocks"):
        increase_over_control([], [], [], [])


def test_interval_is_seeded() -> None:
    data = synthetic_blocks(np.random.default_rng(4), 20, 0.02, 0.0, 0.01)
    a = increase_over_control(*data, seed=11)
    assert a == increase_over_control(*data, seed=11)
    assert (a.ci_low, a.ci_high) != (increase_over_control(*data, seed=12).ci_low,
                                     increase_over_control(*data, seed=12).ci_high)


# ---- the gate on stored metrics --------------------------------------------------------------------

@pytest.fixture()
def study_with(tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path):
    """A two-target study (sw, de) whose reproduce metrics the test writes; returns (store, study)."""
    from lab.study.create import create_study

    path = write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir, "gate-test", seed=1)
    path.write_text(path.read_text(encoding="utf-8").replace('targets = ["sw"]', 'targets = ["sw", "de"]'),
                    encoding="utf-8")
    store = Store(tmp_path / "home")
    study = create_study(store, path)

    def put(stability: float, over: dict[str, tuple[float, float | None, float | None]], blocks: int = 32,
            extra: list[dict[str, Any]] | None = None):
        rows: list[dict[str, Any]] = []
        for lang in ("sw", "de"):
            rows.append(dict(stage="reproduce", name="stability_jaccard", language=lang, condition="identified",
                             value=stability, n=10))
            rows.append(dict(stage="reproduce", name="stability_jaccard", language=lang, condition="control",
                             value=0.0, n=20))
        for lang, (value, low, high) in over.items():
            rows.append(dict(stage="reproduce", name="ppl_increase_over_control", language=lang,
                             condition="identified", value=value, ci_low=low, ci_high=high, n=blocks))
        store.put_metrics(int(study.id), rows + [{"stage": "reproduce", **r} for r in extra or []])
        return store, study
    return put


PARAMS = {"min_median_stability": 0.3, "min_ppl_increase_over_control": 1.0, "confidence": 0.95}


def gate(store: Store, study: Any, **override: Any):
    return GATES.get("reproduce")(store, study, {**PARAMS, **override})


def test_go_when_every_target_interval_clears_the_threshold(study_with) -> None:
    rec = gate(*study_with(0.8, {"sw": (3.2, 2.1, 4.4), "de": (2.0, 1.3, 2.8)}))
    assert rec.verdict == "go"
    n = rec.numbers
    assert n["targets"]["sw"]["increase_over_control_pct"] == 3.2 and n["targets"]["sw"]["ci"] == [2.1, 4.4]
    assert n["targets"]["de"]["verdict"] == "go"
    assert n["confidence"] == 0.95 and n["multiplicity"] == "bonferroni"
    assert n["per_target_confidence"] == pytest.approx(0.975) == n["targets"]["sw"]["confidence"]
    assert n["thresholds"] == PARAMS
    assert n["median_stability_targets"] == 0.8


def test_inconclusive_when_an_interval_straddles_and_says_how_much_text_would_decide(study_with) -> None:
    rec = gate(*study_with(0.8, {"sw": (3.2, 2.1, 4.4), "de": (1.5, 0.5, 2.5)}))
    assert rec.verdict == "inconclusive"
    de = rec.numbers["targets"]["de"]
    assert de["verdict"] == "inconclusive"
    # half-width 1.0 on the threshold's side, gap 0.5: (1.0/0.5)^2 = 4 times the 32 blocks
    assert de["blocks_to_decide"] == 128
    assert any("128 held-out blocks would likely decide it" in r for r in rec.reasons)


def test_no_go_when_any_target_falls_short_even_if_another_clears(study_with) -> None:
    rec = gate(*study_with(0.8, {"sw": (3.2, 2.1, 4.4), "de": (0.3, -0.2, 0.8)}))
    assert rec.verdict == "no-go"
    assert rec.numbers["targets"]["de"]["verdict"] == "no-go"
    assert rec.numbers["specificity"] == "no-go"


def test_a_tiny_effect_no_longer_passes_through_the_control_floor(study_with) -> None:
    """The old rule passed a 0.15% own-language increase when the random control changed nothing
    (ratio against a floored denominator) and the own set was diagonal dominant. Now the interval
    decides, and those display-only numbers do not."""
    shown = [dict(name="ppxc_control_ratio", language=t, condition="identified", value=20.0, n=4000) for t in ("sw", "de")]
    shown += [dict(name="ppxc_diagonal_dominant", language=t, condition="identified", value=1.0, n=5) for t in ("sw", "de")]
    rec = gate(*study_with(0.9, {"sw": (0.15, 0.10, 0.20), "de": (0.15, 0.09, 0.21)}, extra=shown))
    assert rec.verdict == "no-go"
    assert rec.numbers["median_control_ratio"] == 20.0 and rec.numbers["diagonal_share_targets"] == 1.0


def test_stability_is_a_precondition(study_with) -> None:
    put = study_with
    assert gate(*put(0.1, {"sw": (3.2, 2.1, 4.4), "de": (2.0, 1.3, 2.8)})).verdict == "revise"
    assert gate(*put(0.1, {"sw": (3.2, 2.1, 4.4), "de": (1.4, 0.6, 2.2)})).verdict == "revise"
    assert gate(*put(0.1, {"sw": (0.3, -0.2, 0.8), "de": (2.0, 1.3, 2.8)})).verdict == "no-go"


def test_missing_interval_or_few_blocks_is_said_plainly(study_with) -> None:
    rec = gate(*study_with(0.8, {"sw": (3.2, None, None)}))
    assert rec.verdict == "inconclusive"
    assert rec.numbers["targets"]["sw"]["ci"] is None
    assert any("de: no perplexity increase over the control was stored" in r for r in rec.reasons)
    few = gate(*study_with(0.8, {"sw": (3.2, 2.1, 4.4), "de": (2.0, 1.3, 2.8)}, blocks=4))
    assert few.verdict == "go" and any("only 4 held-out blocks" in r for r in few.reasons)


def test_frozen_criteria_reach_the_gate(study_with, tmp_path: Path) -> None:
    """A study's [criteria] override of the threshold and the confidence is what the gate uses."""
    import json

    from lab.gates.rules import recommend
    from protocols import load_protocol

    store, study = study_with(0.8, {"sw": (3.2, 2.1, 4.4), "de": (2.0, 1.3, 2.8)})
    cfg = json.loads(study.config_json)
    protocol = load_protocol(study.protocol, store.home.root)
    spec = protocol.get("reproduce")
    assert spec.gate is not None and spec.gate.params["min_ppl_increase_over_control"] == 1.0
    assert recommend(store, study, protocol, spec).verdict == "go"
    cfg["criteria"] = {"min_ppl_increase_over_control": 2.5, "confidence": 0.9}
    study.config_json = json.dumps(cfg)
    rec = recommend(store, study, protocol, spec)
    assert rec.verdict == "inconclusive"  # both intervals now straddle 2.5
    assert rec.numbers["thresholds"]["min_ppl_increase_over_control"] == 2.5
    assert rec.numbers["per_target_confidence"] == pytest.approx(0.95)


def test_gate_rule_error_rates_on_simulated_texts() -> None:
    """400 simulated held-out texts (32 blocks) per case, decided at the demo's per-target level
    (0.975, Bonferroni over two targets) against a 1% threshold: a true difference of exactly 1% is
    called go rarely; a true difference of 2% (about 4 standard errors above) is called go mostly."""
    from lab.gates.intervals import GO, three_way

    def go_rate(true_pct: float, seed: int) -> float:
        rng = np.random.default_rng(seed)
        shift = math.log1p(true_pct / 100)
        gos = 0
        for s in range(400):
            data = synthetic_blocks(rng, 32, shift, 0.0, 0.01)
            r = increase_over_control(*data, confidence=0.975, seed=s, resamples=1000)
            gos += three_way(r.ci_low, r.ci_high, 1.0) == GO
        return gos / 400

    assert go_rate(1.0, 21) <= 0.05
    assert go_rate(2.0, 22) >= 0.80
