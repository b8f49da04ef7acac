"""Sharded identification: each shard's block ranges, and the exact merge of the shards' statistics.

A sharded run splits every language's blocks into `count` contiguous, disjoint ranges; shard i reads
range i of every language (lab.neurons.collect.collect_stats(..., ranges=...)) and leaves its finished
pass in its own checkpoint. Every shard calibrates the histogram range from the same blocks (the first
block of every language) with the same model, so they share one bin layout; the merge checks that
they do (bit for bit) before adding anything. Counts, token totals and histograms are integers and add
up exactly; sums are float64 additions of float32 batch sums, so they agree with an unsharded run to
float rounding. Quantiles, the pooled P90 and everything after are computed from the merged
histograms, as an unsharded pass computes them from its own.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch

from lab.core.errors import BadInput, StageFailed
from lab.neurons.activations import ActivationStats, LanguageResult
from lab.neurons.statistics import BinLayout, above_bin, hist_quantile, pooled_threshold
from lab.neurons.stats_checkpoint import StatsCheckpoint


def shard_ranges(n_blocks: Sequence[int], index: int, count: int) -> list[tuple[int, int]]:
    """Shard `index` (0-based) of `count`: the block range [start, end) of each language."""
    return [(n * index // count, n * (index + 1) // count) for n in n_blocks]


def check_shards(count: int, n_blocks: Sequence[int], languages: Sequence[str]) -> None:
    """Every shard must get at least one block of every language."""
    fewest = min(n_blocks)
    if count > fewest:
        lang = languages[list(n_blocks).index(fewest)]
        raise BadInput(f"[identify] shards = {count} is more than the {fewest} blocks of {lang}'s corpus; "
                       f"use at most {fewest} shards, or raise [corpus] tokens_per_language")


def merge_shards(checkpoints: Sequence[StatsCheckpoint], languages: Sequence[str],
                 meta: Optional[dict[str, str]] = None, bos: Any = None, skip: int = 0) -> ActivationStats:
    """The statistics of all shards' finished passes, as one pass over all blocks would give them (the
    histograms kept on ``stats.hists`` for lab.neurons.refine.refine_quantiles)."""
    layout: Optional[BinLayout] = None
    hists: Optional[torch.Tensor] = None
    count: list[torch.Tensor] = []
    sums: list[torch.Tensor] = []
    tokens = [0] * len(languages)
    for k, cp in enumerate(checkpoints):
        state = cp.load()
        if state is None or int(state[0].get("language_index", -1)) != len(languages):
            raise StageFailed(f"shard {k + 1} of {len(checkpoints)} has no finished statistics in {cp.folder}; "
                              f"run the study again to finish it")
        info, t = state
        here = BinLayout(t["layout.lo"], t["layout.width"], int(info["bins"]))
        if layout is None:
            layout, hists = here, t["hists"].to(torch.int64)
            count = [t[f"done{i}.count"].clone() for i in range(len(languages))]
            sums = [t[f"done{i}.sum"].clone() for i in range(len(languages))]
        else:
            if here.bins != layout.bins or not (torch.equal(here.lo, layout.lo) and torch.equal(here.width, layout.width)):
                raise StageFailed(f"shard {k + 1} calibrated another histogram layout than shard 1 (different "
                                  f"devices or dtypes?); run every shard on the same kind of device")
            hists += t["hists"].to(torch.int64)  # type: ignore[operator]
            for i in range(len(languages)):
                count[i] += t[f"done{i}.count"]
                sums[i] += t[f"done{i}.sum"]
        for i, d in enumerate(info["done"]):
            tokens[i] += int(d["tokens"])
    assert layout is not None and hists is not None
    if int(hists.max()) > torch.iinfo(torch.int32).max:
        raise StageFailed("a merged histogram bin exceeds int32; lower [corpus] tokens_per_language")
    hists32 = hists.to(torch.int32)
    done = [_result(count[i], sums[i], tokens[i], hists32[i], layout) for i in range(len(languages))]
    thr, b = pooled_threshold([r.hist for r in done], 0.9, layout)
    above = torch.stack([above_bin(r.hist, b) for r in done])
    md = {**(meta or {}), "bos": "none" if bos is None else str(bos), "position0_excluded": "true" if skip else "false",
          "shards": str(len(checkpoints))}
    stats = ActivationStats.from_results(languages, done, layout, md, threshold_pooled=thr, above_pooled=above)
    stats.hists = hists32
    return stats


def _result(count: torch.Tensor, total: torch.Tensor, tokens: int, hist: torch.Tensor,
            layout: BinLayout) -> LanguageResult:
    """One language's finished statistics from its merged accumulators (no published samples: NaN / 0)."""
    p10, oor10 = hist_quantile(hist, tokens, 0.1, layout)
    p90, oor90 = hist_quantile(hist, tokens, 0.9, layout)
    bound = torch.where(oor10 | oor90, torch.full_like(layout.width, math.inf), layout.width)
    return LanguageResult(count=count, sum=total, tokens=tokens, p10=p10, p90=p90,
                          threshold=torch.full_like(p90, math.nan).float(), above=torch.zeros_like(count),
                          score_tokens=0, out_of_range={"p10": int(oor10.sum()), "p90": int(oor90.sum())},
                          hist=hist, bound=bound.float())
