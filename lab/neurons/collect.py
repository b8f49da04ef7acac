"""The statistics pass: calibration, the per-language collection loop with its guards, checkpoints and resume.

One pass per language over its BlockFeed (lab.inputs.corpus), with the hooks of lab.neurons.statistics.

Histogram range. Before the first language, one calibration forward pass over the first block of
every language records each neuron's min and max (BOS position excluded); the range is
[min − m, max + m] with m = 25 % of (max − min) (``CAL_MARGIN``), split into ``bins`` bins of width
w[l, j]. The range is fixed for the whole run (and stored in checkpoints), so all languages share
bins — which is what lets the pooled P90 of act_prob_90p come from the sum of their histograms.

act_prob_90p_published samples. Each language's blocks are split into two disjoint samples: the first
⌊n_blocks/2⌋ blocks (threshold sample) and the rest (score sample). When the pass reaches the second
sample, each neuron's P90 threshold is taken from the histogram so far, and from then on the hooks
also count tokens above it. After the last language, the pooled P90 and every language's count above
it come from the kept per-language histograms (``pooled_threshold``, ``above_bin``). No extra pass.

Guards (each stops the pass before anything is stored): a layer whose hook saw no token in a forward
pass (a fused MLP kernel that never calls act_fn) is a BadInput; a layer whose hook counted another
number of tokens than were fed, and NaN or infinite activations or hidden states, are StageFailed
errors naming the language and the batch.

Batches hold blocks of one length only (the short last block of a language, if any, is a batch of
its own), so there is never padding; position 0 is the BOS when the feed adds one, and the hooks
leave it out.

Exact resume. Batches are planned from the block count alone (``plan_batches``) and every
accumulator is exact or deterministic given the same batches, so a run resumed from a checkpoint
(``StatsCheckpoint``: safetensors + JSON, atomic, every ``every`` blocks) ends with statistics
identical to an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from lab.core import faults
from lab.core.resources import run_halving
from lab.inputs.corpus import BlockFeed
from lab.model.adapters import ArchitectureAdapter
from lab.neurons.activations import ActivationStats, LanguageResult
from lab.neurons.batches import forward_layers, plan_batches, plan_range, range_tokens, take, to_device
from lab.neurons.guards import FiniteGuard, check_finite, check_seen
from lab.neurons.refine import refine_quantiles
from lab.neurons.stats_checkpoint import CHECKPOINT_FORMAT, StatsCheckpoint, feeds_fingerprint
from lab.neurons.statistics import (STAGING_MAX, STATE_BUDGET, Accumulators, BinLayout, StatsHooks, above_bin,
                                    fit_bins, hist_quantile, pooled_threshold, state_bytes)

__all__ = ["CHECKPOINT_FORMAT", "StatsCheckpoint", "calibrate", "collect_stats", "feeds_fingerprint", "forward_layers",
           "plan_batches", "refine_quantiles", "check_finite", "check_seen"]

ProgressFn = Callable[[str, int, int], None]  # (language, tokens done, tokens total)
STATS_BATCHES = "statistics"  # what lab.core.resources halves (and the batch_halvings metric's condition)
DEFER_FINITE_CHECK: Optional[bool] = None  # None: deferred on accelerators (no host sync per batch), immediate on the CPU



def calibrate(model: nn.Module, adapter: ArchitectureAdapter, blocks: Sequence[torch.Tensor], bins: int,
              device: torch.device, skip: Sequence[int] = (), names: Sequence[str] = ()) -> BinLayout:
    """Per-neuron min/max over the calibration blocks (their first `skip[i]` positions left out) → the bin layout."""
    modules = adapter.act_modules(model)
    n_layers, d_ff = len(modules), adapter.d_ff(model)
    mn = torch.full((n_layers, d_ff), math.inf, device=device)
    mx = torch.full((n_layers, d_ff), -math.inf, device=device)
    seen = [0] * n_layers
    cut = [0]

    def make(layer: int) -> Callable[..., None]:
        def hook(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
            if cut[0] and out.dim() != 3:
                raise RuntimeError(f"layer {layer}'s activation module gave shape {tuple(out.shape)}, not "
                                   f"[batch, positions, d_ff]; the BOS position cannot be left out")
            x = (out[:, cut[0]:] if cut[0] else out).reshape(-1, out.shape[-1]).float()
            seen[layer] += x.shape[0]
            torch.minimum(mn[layer], x.amin(0).to(mn.device), out=mn[layer])  # .to: a layer on another device
            torch.maximum(mx[layer], x.amax(0).to(mx.device), out=mx[layer])
        return hook

    handles = [m.register_forward_hook(make(i)) for i, m in enumerate(modules)]
    try:
        with torch.no_grad():
            for i, b in enumerate(blocks):
                cut[0] = skip[i] if i < len(skip) else 0
                where = f"{names[i] if i < len(names) else 'block ' + str(i)} calibration block"
                before = list(seen)
                out = forward_layers(model, b.reshape(1, -1).to(device))
                check_seen(seen, before, b.numel() - cut[0], adapter, where)
                check_finite(out, torch.cat([mn, mx], 1), where)
    finally:
        for h in handles:
            h.remove()
    return BinLayout.from_minmax(mn, mx, bins)


def _finish(acc: Accumulators, tokens: int, score_tokens: int, layout: BinLayout) -> LanguageResult:
    acc.flush()
    p10, oor10 = hist_quantile(acc.hist, tokens, 0.1, layout)
    p90, oor90 = hist_quantile(acc.hist, tokens, 0.9, layout)
    thr = acc.threshold if acc.threshold is not None else torch.full_like(p90, math.nan)
    bound = torch.where(oor10 | oor90, torch.full_like(layout.width, math.inf), layout.width)
    return LanguageResult(count=acc.count.cpu().clone(), sum=acc.sum.cpu().clone(), tokens=tokens,
                          p10=p10.cpu(), p90=p90.cpu(), threshold=thr.float().cpu().clone(),
                          above=acc.above.cpu().clone(), score_tokens=score_tokens,
                          out_of_range={"p10": int(oor10.sum()), "p90": int(oor90.sum())},
                          hist=acc.hist, bound=bound.float().cpu())


def _result_from(tensors: dict[str, torch.Tensor], prefix: str, info: dict[str, Any],
                 hist: torch.Tensor) -> LanguageResult:
    t = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    return LanguageResult(count=t["count"], sum=t["sum"], tokens=int(info["tokens"]), p10=t["p10"], p90=t["p90"],
                          threshold=t["threshold"], above=t["above"], score_tokens=int(info["score_tokens"]),
                          out_of_range=dict(info["out_of_range"]), hist=hist, bound=t.get("bound"))


def collect_stats(model: nn.Module, adapter: ArchitectureAdapter, feeds: Sequence[BlockFeed], *, bins: int = 2048,
                  batch_size: int = 8, device: Optional[torch.device] = None,
                  checkpoint: Optional[StatsCheckpoint] = None, progress: Optional[ProgressFn] = None,
                  meta: Optional[dict[str, str]] = None, budget: int = STATE_BUDGET,
                  keep_hists: bool = False, ranges: Optional[Sequence[tuple[int, int]]] = None) -> ActivationStats:
    """One statistics pass per language over its feed; resumes from `checkpoint` when it holds one.

    With `ranges` (one [start, end) block range per feed: a shard of a sharded identification,
    lab.neurons.shards) only those blocks are read, and no published threshold/score samples are
    collected; the statistics of all shards add up to those of the whole feeds.

    Out of memory in a batch: the hooks may already have counted part of it, so the pass starts over
    from the last checkpoint (or the beginning) with half the batch size (lab.core.resources). Counts and
    histograms are exact integers, so the statistics do not depend on the batch size (sums only up
    to float32 rounding).

    Memory: the histograms get the study's `bins` when the state fits in `budget` bytes, else the most
    bins that fit (``fit_bins``); ``stats.state_bytes`` says how much it was. With `keep_hists` the
    per-language histograms stay on ``stats.hists`` for ``refine_quantiles`` (which drops them)."""
    if not feeds:
        raise ValueError("no languages to collect")
    if len({f.bos for f in feeds}) > 1:
        raise ValueError("every feed of one pass must start its blocks the same way (all with the BOS or none)")
    device = device or next(model.parameters()).device
    stats = run_halving(lambda size: _collect(model, adapter, feeds, bins=bins, batch_size=size, device=device,
                                              checkpoint=checkpoint, progress=progress, meta=meta, budget=budget,
                                              ranges=ranges),
                        batch_size, STATS_BATCHES, device=device)
    if not keep_hists:
        stats.hists = None
    return stats


def _collect(model: nn.Module, adapter: ArchitectureAdapter, feeds: Sequence[BlockFeed], *, bins: int,
             batch_size: int, device: torch.device, checkpoint: Optional[StatsCheckpoint],
             progress: Optional[ProgressFn], meta: Optional[dict[str, str]], budget: int,
             ranges: Optional[Sequence[tuple[int, int]]] = None) -> ActivationStats:
    modules = adapter.act_modules(model)
    n_layers, d_ff = len(modules), adapter.d_ff(model)
    languages = [f.lang for f in feeds]
    max_batch_tokens = max(batch_size * f.block_size for f in feeds)
    staging = device.type == "cpu" and max_batch_tokens <= STAGING_MAX
    # the bin count whose state fits the budget: the study's histogram_bins whenever it fits (counted with
    # the CPU staging copy whatever the batch size, so a batch halving never changes it)
    bins = fit_bins(n_layers, d_ff, len(feeds), bins, budget, staging=device.type == "cpu")
    # every language's histogram lives in one store: the pooled P90 needs them all at the end
    hists = torch.zeros(len(feeds), n_layers, d_ff, bins + 2, dtype=torch.int32, device=device)
    done: list[LanguageResult] = []
    start_lang, next_block = 0, ranges[0][0] if ranges else 0
    acc = Accumulators(n_layers, d_ff, bins, device, max_batch_tokens=max_batch_tokens, hist=hists[0])
    layout: Optional[BinLayout] = None
    tokens = score_tokens = 0

    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        info, tensors = state
        if int(info.get("bins", -1)) == bins and tuple(tensors["hists"].shape) == tuple(hists.shape):
            layout = BinLayout(tensors["layout.lo"].to(device), tensors["layout.width"].to(device), bins)
            hists.copy_(tensors["hists"])
            done = [_result_from(tensors, f"done{i}.", d, hists[i]) for i, d in enumerate(info["done"])]
            start_lang, next_block = int(info["language_index"]), int(info["next_block"])
            tokens, score_tokens = int(info["tokens"]), int(info["score_tokens"])
            if start_lang < len(feeds):
                acc.hist = hists[start_lang]
                acc.load({k[4:]: v.to(device) for k, v in tensors.items() if k.startswith("acc.")})
        del tensors, state
    if layout is None:
        cal = [next(iter(f.open(0))) for f in feeds]
        layout = calibrate(model, adapter, cal, bins, device, skip=[f.skip for f in feeds], names=languages)

    since = 0
    guard = FiniteGuard(device, DEFER_FINITE_CHECK)
    with torch.no_grad(), StatsHooks(modules, acc, layout) as hooks:
        for li in range(start_lang, len(feeds)):
            feed = feeds[li]
            hooks.skip = feed.skip
            if li != start_lang:
                acc.reset(hists[li])
                next_block, tokens, score_tokens = ranges[li][0] if ranges else 0, 0, 0
            mid = feed.n_blocks // 2 if ranges is None else 0  # a shard collects no published samples
            expected = feed.n_tokens if ranges is None else range_tokens(feed, *ranges[li])
            it = feed.open(next_block)
            if progress is not None:
                progress(feed.lang, tokens, expected)
            plan = plan_batches(feed, batch_size) if ranges is None else plan_range(feed, *ranges[li], batch_size)
            for s, e in plan:
                if e <= next_block:
                    continue
                s = max(s, next_block)  # a checkpoint written at another batch size may fall inside a batch
                in_score = s >= mid and mid > 0
                if in_score and acc.threshold is None:
                    acc.flush()
                    acc.threshold, _ = hist_quantile(acc.hist, tokens, 0.9, layout)
                hooks.score = in_score
                batch = to_device(torch.stack(take(it, e - s, feed.lang)), device)
                faults.batch(device)  # tests only: an out-of-memory error here
                fed = batch.shape[0] * (batch.shape[1] - feed.skip)
                before = list(hooks.seen)
                out = forward_layers(model, batch)
                where = f"{feed.lang} batch of blocks {s}-{e - 1}"
                check_seen(hooks.seen, before, fed, adapter, where)
                guard.batch(out, acc.sum, where)
                acc.after_batch(batch.numel())
                tokens += fed
                if in_score:
                    score_tokens += fed
                next_block = e
                if progress is not None:
                    progress(feed.lang, tokens, expected)
                since += e - s
                if checkpoint is not None and (since >= checkpoint.every or checkpoint.stop_requested()):
                    if acc.remote:  # layers on other devices: their partial sums join before the check
                        acc.flush()
                    guard.check(acc.sum)
                    _save(checkpoint, li, next_block, tokens, score_tokens, acc, layout, done, hists)
                    since = 0
                    checkpoint.check_stop()
            hooks.score = False
            if acc.remote:
                acc.flush()
            guard.check(acc.sum)
            if tokens != expected:
                raise RuntimeError(f"{feed.lang}: counted {tokens} tokens, expected {expected}")
            done.append(_finish(acc, tokens, score_tokens, layout))
    if checkpoint is not None and start_lang < len(feeds):
        # the whole pass, so that a stop in a later step (refine_quantiles) does not replay it
        _save(checkpoint, len(feeds), 0, 0, 0, acc, layout, done, hists)
    del acc
    thr, b = pooled_threshold([r.hist for r in done], 0.9, layout)
    above = torch.stack([above_bin(r.hist, b) for r in done])
    md = {**(meta or {}), "bos": "none" if feeds[0].bos is None else str(feeds[0].bos),
          "position0_excluded": "true" if feeds[0].skip else "false"}
    stats = ActivationStats.from_results(languages, done, layout, md, threshold_pooled=thr, above_pooled=above)
    stats.hists = hists
    stats.state_bytes = state_bytes(n_layers, d_ff, len(feeds), bins, staging=staging)
    return stats


def _save(cp: StatsCheckpoint, li: int, next_block: int, tokens: int, score_tokens: int, acc: Accumulators,
          layout: BinLayout, done: list[LanguageResult], hists: torch.Tensor) -> None:
    tensors = {"layout.lo": layout.lo, "layout.width": layout.width, "hists": hists}
    if li < len(hists):
        tensors.update({f"acc.{k}": v for k, v in acc.tensors(with_hist=False).items()})
    else:
        acc.flush()
    for i, r in enumerate(done):
        tensors.update({f"done{i}.{k}": v for k, v in r.tensors().items()})
    info = {"language_index": li, "next_block": next_block, "tokens": tokens, "score_tokens": score_tokens,
            "bins": layout.bins,
            "done": [{"tokens": r.tokens, "score_tokens": r.score_tokens, "out_of_range": r.out_of_range}
                     for r in done]}
    cp.save(info, tensors)
