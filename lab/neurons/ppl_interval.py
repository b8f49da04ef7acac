"""Block bootstrap of the own-language perplexity increase over the random control (the reproduce gate's number).

Why this number: switching off any set of neurons raises perplexity a little, and more neurons raise it
more. The random control has the identified set's per-layer counts, so the identified increase minus
the control's increase is what the *choice* of neurons adds, with set size held fixed.

Why blocks: the held-out text is scored in blocks, and tokens inside a block are not independent
(one hard passage raises all of its tokens' losses). The block is therefore the resampling unit.
The bootstrap is paired: one draw of block indices serves the baseline, identified-off and
control-off scores of the same language, so what the blocks share cancels out of the difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

RESAMPLES = 4000


@dataclass(frozen=True)
class OverControl:
    """Own-language PPL increases (% of baseline PPL) and their difference, with a block bootstrap CI."""

    value_pct: float  # identified_pct − control_pct = 100·(PPL_off − PPL_control-off) / PPL_baseline
    identified_pct: float  # 100·(PPL_off / PPL_baseline − 1)
    control_pct: float  # 100·(PPL_control-off / PPL_baseline − 1)
    ci_low: Optional[float]  # None with fewer than 2 blocks
    ci_high: Optional[float]
    confidence: float
    blocks: int
    tokens: int

    def to_json(self) -> dict[str, Any]:
        ci = None if self.ci_low is None else [self.ci_low, self.ci_high]
        return {"increase_over_control_pct": self.value_pct, "ci": ci, "identified_pct": self.identified_pct,
                "control_pct": self.control_pct, "confidence": self.confidence, "blocks": self.blocks,
                "tokens": self.tokens}


def _statistic(tokens: np.ndarray, base: np.ndarray, off: np.ndarray, ctrl: np.ndarray,
               axis: int = -1) -> np.ndarray:
    """100·(PPL_off − PPL_ctrl)/PPL_base with token-weighted NLL over the (resampled) blocks."""
    t = tokens.sum(axis=axis)
    nb = base.sum(axis=axis) / t
    return 100.0 * (np.exp(off.sum(axis=axis) / t - nb) - np.exp(ctrl.sum(axis=axis) / t - nb))


def increase_over_control(block_tokens: Sequence[int], baseline: Sequence[float], identified: Sequence[float],
                          control: Sequence[float], *, confidence: float = 0.95, seed: int = 0,
                          resamples: int = RESAMPLES) -> OverControl:
    """The identified set's own-language PPL increase minus the control's, in % of baseline PPL, with a
    paired percentile block-bootstrap interval at `confidence` (scipy.stats.bootstrap, seeded).

    Inputs are per block, in the same block order: predicted tokens and summed NLL (nats) under the
    baseline, with the language's identified neurons off, and with its control neurons off."""
    arrays = [np.asarray(x, dtype=np.float64) for x in (block_tokens, baseline, identified, control)]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("per-block scores differ in length; score the same blocks in every pass")
    if n == 0 or arrays[0].sum() <= 0:
        raise ValueError("no scored blocks")
    t, base, off, ctrl = arrays
    tot = t.sum()
    ident_pct = 100.0 * math.expm1(off.sum() / tot - base.sum() / tot)
    ctrl_pct = 100.0 * math.expm1(ctrl.sum() / tot - base.sum() / tot)
    value = float(_statistic(t, base, off, ctrl))
    low = high = None
    if n >= 2:
        from scipy.stats import bootstrap

        res = bootstrap((t, base, off, ctrl), _statistic, paired=True, vectorized=True, n_resamples=resamples,
                        confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        # a percentile interval of a statistic that never varies is [v, v]; keep it exactly that
        low, high = min(low, value), max(high, value)
    return OverControl(value, ident_pct, ctrl_pct, low, high, confidence, n, int(tot))

