"""Exact P10/P90 for the neurons an intervention can use: a second pass that keeps values near each quantile."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import nn

from lab.core.errors import StageFailed
from lab.inputs.corpus import BlockFeed
from lab.model.adapters import ArchitectureAdapter
from lab.neurons.activations import ActivationStats
from lab.neurons.batches import forward_layers, plan_batches, take
from lab.neurons.statistics import BinLayout, rank_for

ProgressFn = Callable[[str, int, int], None]  # (language, tokens done, tokens total)
REFINE_BUDGET = 256 << 20  # bytes of values one refine_quantiles pass may hold (12 bytes a value): more takes more passes

QUANTILES = (("p10", 0.1), ("p90", 0.9))


@dataclass
class _Window:
    """One language's refine plan: per selected neuron and quantile, the value window that holds its k-th value."""

    flat: torch.Tensor  # int64 [m]: layer·d_ff + index, ascending
    rank: dict[str, int]  # quantile name → k (nearest rank)
    lo: dict[str, torch.Tensor]  # float64 [m]: window [lo, hi) (±inf at the ends)
    hi: dict[str, torch.Tensor]
    expected: torch.Tensor  # int64 [m]: values pass 1 counted in the windows (both quantiles)


def _window(hist: torch.Tensor, flat: torch.Tensor, tokens: int, layout: BinLayout) -> _Window:
    """Bins b-1..b+1 around the bin b that holds each quantile's k-th value in pass 1's histogram."""
    last = hist.shape[2] - 1
    h = hist.reshape(-1, hist.shape[2])[flat.to(hist.device)].to(torch.int64).cpu()  # [m, bins+2]
    cum = h.cumsum(-1)
    lo_all = layout.lo.reshape(-1)[flat.to(layout.lo.device)].double().cpu()
    w_all = layout.width.reshape(-1)[flat.to(layout.width.device)].double().cpu()
    rank, lo, hi = {}, {}, {}
    expected = torch.zeros(flat.numel(), dtype=torch.int64)
    for name, q in QUANTILES:
        k = rank_for(q, tokens)
        b = torch.searchsorted(cum, torch.full((flat.numel(), 1), k, dtype=torch.int64)).squeeze(-1).clamp(max=last)
        first, end = (b - 1).clamp(min=0), (b + 1).clamp(max=last)
        lo[name] = torch.where(first <= 0, torch.full_like(lo_all, -math.inf), lo_all + (first - 1).double() * w_all)
        hi[name] = torch.where(end >= last, torch.full_like(lo_all, math.inf), lo_all + end.double() * w_all)
        before = torch.where(first > 0, cum.gather(1, (first - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1),
                             torch.zeros_like(first))
        expected += cum.gather(1, end.unsqueeze(-1)).squeeze(-1) - before
        rank[name] = k
    return _Window(flat, rank, lo, hi, expected)


def refine_quantiles(model: nn.Module, adapter: ArchitectureAdapter, feeds: Sequence[BlockFeed],
                     stats: ActivationStats, neurons: Mapping[str, Sequence[Sequence[int]]], *, batch_size: int = 8,
                     device: Optional[torch.device] = None, check_stop: Callable[[], None] = lambda: None,
                     progress: Optional[ProgressFn] = None, budget: int = REFINE_BUDGET) -> dict[str, int]:
    """Make act_p10/act_p90 exact for `neurons[lang]` ([[layer, index], ...]) of each language in `feeds`.

    Pass 1's histogram says, per neuron, which bin b holds the k-th value (k = ⌈q·n⌉). A second pass over
    that language's blocks (the same blocks, so the same activations) counts each such neuron's values
    below bin b−1 and keeps the values inside bins b−1..b+1; the k-th value is then the (k − below)-th
    smallest kept value: exact, whatever the bins. The values kept are what pass 1 counted in those bins,
    known before the pass, so memory is bounded: the neurons are split into groups of at most `budget`
    bytes (12 bytes a value), one pass each (one in practice). A neuron whose k-th value is not in its
    window (an activation within float rounding of a bin edge far from zero) keeps its histogram estimate
    and bound. Sets ``stats.quantile_bound`` to 0 where exact, records ``exact_quantiles`` in the
    metadata, drops ``stats.hists`` and returns {language: neurons made exact}.
    """
    if stats.hists is None:
        raise ValueError("refine_quantiles needs the pass's histograms: collect_stats(..., keep_hists=True)")
    device = device or next(model.parameters()).device
    layout = BinLayout(stats.hist_lo, stats.hist_width, stats.bins)
    d_ff = stats.d_ff
    plans: dict[str, _Window] = {}
    for feed in feeds:
        pairs = neurons.get(feed.lang) or []
        if not pairs:
            continue
        k = stats.languages.index(feed.lang)
        flat = torch.tensor(sorted({int(layer) * d_ff + int(j) for layer, j in pairs}), dtype=torch.int64)
        plans[feed.lang] = _window(stats.hists[k], flat, int(stats.tokens[k]), layout)
    stats.hists = None  # the windows are all the second pass needs; the histograms go before it allocates
    if stats.quantile_bound is None:
        stats.quantile_bound = stats.hist_width.unsqueeze(0).repeat(len(stats.languages), 1, 1)
    done: dict[str, int] = {}
    for feed in feeds:
        plan = plans.get(feed.lang)
        if plan is None:
            continue
        k = stats.languages.index(feed.lang)
        exact = {name: torch.full((plan.flat.numel(),), math.nan, dtype=torch.float32) for name, _ in QUANTILES}
        for group in _groups(plan.expected, budget // 12):
            _refine_group(model, adapter, feed, plan, group, exact, int(stats.tokens[k]), batch_size, device,
                          check_stop, progress)
        ok = ~(exact["p10"].isnan() | exact["p90"].isnan())
        for name, t in (("p10", stats.p10), ("p90", stats.p90)):
            view = t[k].reshape(-1)
            got = ~exact[name].isnan()
            view[plan.flat[got]] = exact[name][got]
        stats.quantile_bound[k].reshape(-1)[plan.flat[ok]] = 0.0
        done[feed.lang] = int(ok.sum())
    stats.meta["exact_quantiles"] = json.dumps(done, sort_keys=True)
    return done


def _groups(expected: torch.Tensor, cap: int) -> list[torch.Tensor]:
    """Positions 0..m-1 cut, in order, into runs whose expected values add up to at most `cap` (one or more)."""
    groups, start, total = [], 0, 0
    for i, n in enumerate(expected.tolist()):
        if i > start and total + n > cap:
            groups.append(torch.arange(start, i))
            start, total = i, 0
        total += n
    groups.append(torch.arange(start, expected.numel()))
    return groups


def _refine_group(model: nn.Module, adapter: ArchitectureAdapter, feed: BlockFeed, plan: _Window,
                  group: torch.Tensor, exact: dict[str, torch.Tensor], tokens: int, batch_size: int,
                  device: torch.device, check_stop: Callable[[], None], progress: Optional[ProgressFn]) -> None:
    modules = adapter.act_modules(model)
    d_ff = adapter.d_ff(model)
    flat = plan.flat[group]
    layers = flat // d_ff
    per_layer = {}  # layer → (positions in the group, neuron indices, windows per quantile)
    for layer in sorted(set(layers.tolist())):
        pos = torch.nonzero(layers == layer).reshape(-1)
        gpos = group[pos]
        per_layer[layer] = (pos, (flat[pos] % d_ff).to(device),
                            {name: (plan.lo[name][gpos].to(device), plan.hi[name][gpos].to(device))
                             for name, _ in QUANTILES})
    below = {name: torch.zeros(group.numel(), dtype=torch.int64, device=device) for name, _ in QUANTILES}
    kept: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {name: [] for name, _ in QUANTILES}
    seen = [0]

    def make(layer: int) -> Callable[..., None]:
        pos, idx, windows = per_layer[layer]
        pos_dev = pos.to(device)
        here: dict[str, Any] = {}  # idx and windows on the layer's device, when it is another (device_map)

        def hook(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
            if here.get("device") != out.device:
                here.update(device=out.device, idx=idx.to(out.device),
                            windows={n: (lo.to(out.device), hi.to(out.device)) for n, (lo, hi) in windows.items()})
            x = out[:, feed.skip:] if feed.skip else out
            x = x.reshape(-1, x.shape[-1]).index_select(1, here["idx"]).double()  # [tokens, neurons of this layer]
            if layer == min(per_layer):
                seen[0] += x.shape[0]
            for name, (lo, hi) in here["windows"].items():
                below[name].index_add_(0, pos_dev, (x < lo).sum(0).to(device))
                t, j = torch.nonzero((x >= lo) & (x < hi), as_tuple=True)  # the short pass: a host sync is fine
                kept[name].append((pos_dev[j.to(device)], x[t, j].float().to(device)))
        return hook

    handles = [modules[layer].register_forward_hook(make(layer)) for layer in per_layer]
    try:
        with torch.no_grad():
            it = feed.open(0)
            for s, e in plan_batches(feed, batch_size):
                batch = torch.stack(take(it, e - s, feed.lang)).to(device)
                forward_layers(model, batch)
                check_stop()
                if progress is not None:
                    progress(feed.lang, seen[0], tokens)
    finally:
        for h in handles:
            h.remove()
    if seen[0] != tokens:
        raise StageFailed(f"{feed.lang}: the exact-quantile pass saw {seen[0]} tokens, the statistics pass {tokens}")
    for name, _ in QUANTILES:
        pos = torch.cat([p for p, _ in kept[name]]).cpu() if kept[name] else torch.zeros(0, dtype=torch.int64)
        val = torch.cat([v for _, v in kept[name]]).cpu() if kept[name] else torch.zeros(0)
        order = torch.sort(val, stable=True).indices
        order = order[torch.sort(pos[order], stable=True).indices]  # by neuron, then by value
        val = val[order]
        counts = torch.bincount(pos, minlength=group.numel())
        starts = counts.cumsum(0) - counts
        r = plan.rank[name] - below[name].cpu()  # the k-th value is the r-th smallest inside the window
        ok = (r >= 1) & (r <= counts)
        got = torch.full((group.numel(),), math.nan, dtype=torch.float32)
        got[ok] = val[(starts + r - 1)[ok]]
        exact[name][group] = got
