"""Simulated studies with known true effects, fed to the real evaluate gate (`decide_evaluate`) and,
for contrast, to the point-estimate rule it replaced. `python -m lab.gates.simulate` prints the table
in docs/statistics.md.

Each simulated study draws paired 0/1 outcomes per item: baseline correct with probability
`base_acc`; the intervention flips a wrong item to right with probability a and a right item to
wrong with probability b, chosen so the true gain is Δ = (1−p)a − pb and the discordance rate is
ψ = (1−p)a + pb. The random control flips independently the same way with gain 0 and its own ψ.
High-resource languages get the target's intervention with their own (gain, ψ).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from lab.gates.evaluate import _stratified, decide_evaluate

THRESHOLDS: dict[str, Any] = {"min_gain_points": 1.0, "max_regression_points": 0.5, "confidence": 0.95,
                              "min_gain_over_control_points": 0.0, "require_beats_control": True,
                              "require_ci_above_zero": True}


SIM_RESAMPLES = 1000  # bootstrap resamples per comparison in simulations (the gate uses RESAMPLES = 4000)


def point_estimate_rule(data: Mapping[str, Any], thresholds: Mapping[str, Any],
                        gain_ci_low: float | None = None) -> str:
    """The rule the evaluate gate used before intervals (kept ONLY for the contrast table): go when the
    mean target gain ≥ min_gain_points, its 95% CI lower bound > 0, the gain beats the control's gain
    (point estimates), and the worst high-resource point change ≥ −max_regression_points; else no-go.
    `gain_ci_low` (points) reuses an already computed 95% stratified interval of the gain."""
    tg = data["targets"]
    gain = 100 * float(np.mean([np.mean(np.asarray(c["intervention"]) - np.asarray(c["baseline"])) for c in tg.values()]))
    low = gain_ci_low
    if low is None:
        low = _stratified([(np.asarray(c["intervention"]), np.asarray(c["baseline"])) for c in tg.values()],
                          0.95, SIM_RESAMPLES, 0)[1]
    ctrl = 100 * float(np.mean([np.mean(np.asarray(c["control"]) - np.asarray(c["baseline"])) for c in tg.values()]))
    worst = min((100 * float(np.mean(np.asarray(c["intervention"]) - np.asarray(c["baseline"])))
                 for per in (data.get("high_resource") or {}).values() for c in per.values()), default=0.0)
    ok = (gain >= float(thresholds["min_gain_points"]) and low > 0 and gain > ctrl
          and worst >= -float(thresholds["max_regression_points"]))
    return "go" if ok else "no-go"


@dataclass(frozen=True)
class Scenario:
    name: str
    true_gain_points: float
    items_per_target: int
    discordance: float = 0.10
    control_discordance: float = 0.05  # random neurons: fewer flips than the language's own, no gain
    targets: int = 2
    high_resource: int = 5
    items_per_high: int = 2000
    high_change_points: float = 0.0
    regressed: int = 0  # how many high-resource languages truly change by regressed_points instead
    regressed_points: float = 0.0
    high_discordance: float = 0.10
    base_acc: float = 0.55
    expect: str = ""  # what the issue asks of the interval rule, for the table

    def se_points(self) -> float:
        """SE of the stratified mean gain over targets, from the per-item difference variance ψ − Δ²."""
        d = self.true_gain_points / 100
        return 100 * math.sqrt((self.discordance - d * d) / self.items_per_target / self.targets)


def _flip_rates(p: float, gain: float, psi: float) -> tuple[float, float]:
    a, b = (psi + gain) / (2 * (1 - p)), (psi - gain) / (2 * p)
    if not (0 <= a <= 1 and 0 <= b <= 1):
        raise ValueError(f"gain {gain} and discordance {psi} are impossible at baseline accuracy {p}")
    return a, b


def _treat(rng: np.random.Generator, base: np.ndarray, p: float, gain: float, psi: float) -> np.ndarray:
    a, b = _flip_rates(p, gain, psi)
    u = rng.random(base.shape)
    return np.where(base > 0, (u >= b).astype(float), (u < a).astype(float))


def simulate_study(sc: Scenario, rng: np.random.Generator) -> dict[str, Any]:
    """One paired-items dataset (the paired_items.json shape) drawn under the scenario."""
    p = sc.base_acc
    data: dict[str, Any] = {"version": 1, "metric": "acc", "targets": {}, "high_resource": {"t0": {}}}
    for t in range(sc.targets):
        base = (rng.random(sc.items_per_target) < p).astype(float)
        data["targets"][f"t{t}"] = {"baseline": base,
                                    "intervention": _treat(rng, base, p, sc.true_gain_points / 100, sc.discordance),
                                    "control": _treat(rng, base, p, 0.0, sc.control_discordance)}
    for h in range(sc.high_resource):
        base = (rng.random(sc.items_per_high) < p).astype(float)
        change = (sc.regressed_points if h < sc.regressed else sc.high_change_points) / 100
        data["high_resource"]["t0"][f"h{h}"] = {
            "baseline": base, "intervention": _treat(rng, base, p, change, sc.high_discordance)}
    return data


def simulate_studies(sc: Scenario, n_studies: int, seed: int) -> Iterator[dict[str, Any]]:
    """`n_studies` independent simulated studies, one at a time (study s uses the seed [seed, s])."""
    for s in range(n_studies):
        yield simulate_study(sc, np.random.default_rng([seed, s]))


@dataclass
class Rates:
    scenario: Scenario
    studies: int
    interval: dict[str, float] = field(default_factory=dict)  # verdict → share, the interval gate
    point: dict[str, float] = field(default_factory=dict)  # verdict → share, the old point rule
    seconds: float = 0.0


def run_scenario(sc: Scenario, n_studies: int = 2000, seed: int = 0,
                 thresholds: Mapping[str, Any] = THRESHOLDS, resamples: int = SIM_RESAMPLES) -> Rates:
    """Both rules on the same simulated studies; the interval verdicts come from `decide_evaluate`."""
    start = time.perf_counter()
    interval, point = [], []
    for data in simulate_studies(sc, n_studies, seed):
        rec = decide_evaluate(data, thresholds, resamples=resamples)
        interval.append(rec.verdict)
        low = rec.numbers["gain_ci_points"][0] if float(thresholds["confidence"]) == 0.95 else None
        point.append(point_estimate_rule(data, thresholds, low))
    share = lambda vs, v: sum(x == v for x in vs) / len(vs)  # noqa: E731
    return Rates(sc, n_studies, {v: share(interval, v) for v in ("go", "no-go", "inconclusive")},
                 {v: share(point, v) for v in ("go", "no-go")}, time.perf_counter() - start)


def scenarios() -> list[Scenario]:
    """The issue's three checks, plus the boundary case (true gain = threshold) where the rules differ most."""
    def power(gain: float) -> Scenario:
        return Scenario("true gain = threshold + 4 SE", gain, 1000, items_per_high=10000, high_discordance=0.005,
                        expect="go ≥ 80%")

    sc = power(1.0)
    for _ in range(3):  # SE depends (weakly) on the gain through ψ − Δ²: a few fixed-point steps
        sc = power(1.0 + 4 * sc.se_points())
    return [
        Scenario("true gain 0 (threshold 1 point)", 0.0, 1000, high_discordance=0.005, expect="false go ≤ 5%"),
        Scenario("true gain = threshold (1 point)", 1.0, 1000, high_discordance=0.005, expect="go ≤ 2.5% (one-sided)"),
        Scenario("5 high-resource × 2,000 items, no true regression", 3.0, 1000, high_discordance=0.10,
                 expect="false no-go ≤ 5%"),
        Scenario("one high-resource language truly loses 3 points", 3.0, 1000, high_discordance=0.10,
                 expect="no-go (power)", regressed=1, regressed_points=-3.0),
        sc,
    ]


def table(rates: Sequence[Rates]) -> str:
    """The markdown table docs/statistics.md shows."""
    rows = ["| scenario | asked | interval gate: go / no-go / inconclusive | point rule: go / no-go |",
            "|---|---|---|---|"]
    for r in rates:
        sc = r.scenario
        pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
        rows.append(f"| {sc.name} (Δ {sc.true_gain_points:.2f} pts, {sc.targets}×{sc.items_per_target} target items, "
                    f"ψ {sc.discordance:g}, control ψ {sc.control_discordance:g}; "
                    f"{sc.high_resource}×{sc.items_per_high} high-resource, ψ {sc.high_discordance:g}) "
                    f"| {sc.expect} | {pct(r.interval['go'])} / {pct(r.interval['no-go'])} / {pct(r.interval['inconclusive'])} "
                    f"| {pct(r.point['go'])} / {pct(r.point['no-go'])} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.gates.simulate", description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    results = [run_scenario(sc, args.studies, args.seed + i) for i, sc in enumerate(scenarios())]
    print(table(results))
    print(f"\n{args.studies} simulated studies per scenario, seed {args.seed}; thresholds {THRESHOLDS}; "
          f"{sum(r.seconds for r in results):.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
