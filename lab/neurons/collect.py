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

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import torch
from torch import nn

from lab.core import faults
from lab.core.artifacts import atomic_write, atomic_write_json, sha256_file
from lab.core.errors import BadInput, StageFailed
from lab.core.resources import run_halving
from lab.inputs.corpus import BlockFeed
from lab.model.adapters import ArchitectureAdapter
from lab.neurons.activations import ActivationStats, LanguageResult
from lab.neurons.statistics import (STAGING_MAX, STATE_BUDGET, Accumulators, BinLayout, StatsHooks, above_bin,
                                    fit_bins, hist_quantile, pooled_threshold, rank_for, state_bytes)

ProgressFn = Callable[[str, int, int], None]  # (language, tokens done, tokens total)
STATS_BATCHES = "statistics"  # what lab.core.resources halves (and the batch_halvings metric's condition)
CHECKPOINT_FORMAT = 3  # 3: one histogram store [n_languages, L, F, bins+2], bins fitted to the budget; older ones are ignored
REFINE_BUDGET = 256 << 20  # bytes of values one refine_quantiles pass may hold (12 bytes a value): more takes more passes


def forward_layers(model: nn.Module, ids: torch.Tensor) -> Any:
    """The decoder stack without the LM head: the hooks need the layers, not the logits."""
    base = getattr(model, "base_model", model)
    return base(input_ids=ids, use_cache=False)


def check_seen(seen: Sequence[int], before: Sequence[int], fed: int, adapter: ArchitectureAdapter, where: str) -> None:
    """Every layer's hook must have counted exactly the `fed` tokens of the last forward pass."""
    got = [a - b for a, b in zip(seen, before)]
    if all(g == 0 for g in got):
        raise BadInput(f"the model never called its activation module ({adapter.name} adapter, {adapter.hook}) in a "
                       f"forward pass, so no statistics can be collected: its MLP probably uses a fused kernel that "
                       f"applies act_fn internally; load it without fused MLP kernels")
    bad = [(layer, g) for layer, g in enumerate(got) if g != fed]
    if bad:
        layer, g = bad[0]
        raise StageFailed(f"{where}: layer {layer}'s hook counted {g} tokens but {fed} were fed (the activation "
                          f"module is skipped or called more than once per forward pass); statistics would be wrong")


def check_finite(out: Any, acc_sum: torch.Tensor, where: str) -> None:
    """NaN or infinite activations (the running sums) or final hidden states stop the pass, named."""
    hidden = getattr(out, "last_hidden_state", None)
    if bool(torch.isfinite(acc_sum).all()) and (hidden is None or bool(torch.isfinite(hidden).all())):
        return
    bad = (~torch.isfinite(acc_sum)).flatten(1).any(1).nonzero().flatten().tolist()
    what = f"activations at layer {bad[0]}" if bad else "hidden states"
    raise StageFailed(f"{where}: non-finite {what} (NaN or inf); the model overflows in this dtype or its weights "
                      f"are broken; load it in float32 or bfloat16 and check the weights")


DEFER_FINITE_CHECK: Optional[bool] = None  # None: deferred on accelerators (no host sync per batch), immediate on the CPU


class FiniteGuard:
    """``check_finite`` for every batch of the pass, without a host synchronisation per batch when deferred.

    Deferred, each batch's verdict stays on the device: the number of the first batch with non-finite
    sums or hidden states. It is read (one sync) before every checkpoint and at the end of each
    language, so nothing non-finite is ever saved, and the error names that first batch as the
    immediate check does (a NaN stays in the running sums, so its layer is still found)."""

    def __init__(self, device: torch.device, defer: Optional[bool] = None) -> None:
        self.defer = device.type != "cpu" if defer is None else defer
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        self.where: list[str] = []

    def batch(self, out: Any, acc_sum: torch.Tensor, where: str) -> None:
        if not self.defer:
            check_finite(out, acc_sum, where)
            return
        ok = torch.isfinite(acc_sum).all()
        hidden = getattr(out, "last_hidden_state", None)
        if hidden is not None:
            ok = ok & torch.isfinite(hidden).all()
        mark = torch.full_like(self.first_bad, len(self.where))
        self.first_bad = torch.where(~ok & (self.first_bad < 0), mark, self.first_bad)
        self.where.append(where)

    def check(self, acc_sum: torch.Tensor) -> None:
        if not self.defer or not self.where:
            return
        i = int(self.first_bad)  # the one host sync
        if i >= 0:
            bad = (~torch.isfinite(acc_sum)).flatten(1).any(1).nonzero().flatten().tolist()
            what = f"activations at layer {bad[0]}" if bad else "hidden states"
            raise StageFailed(f"{self.where[i]}: non-finite {what} (NaN or inf); the model overflows in this dtype or "
                              f"its weights are broken; load it in float32 or bfloat16 and check the weights")
        self.where.clear()
        self.first_bad.fill_(-1)


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


def plan_batches(feed: BlockFeed, batch_size: int) -> list[tuple[int, int]]:
    """Block ranges [start, end) of each batch: the threshold sample [0, n//2), then the score sample.

    Batches never cross the sample boundary and a short last block is alone, so a batch is a
    rectangle of real tokens and the plan depends only on the block count (resume replays it).
    """
    n, mid = feed.n_blocks, feed.n_blocks // 2
    plan: list[tuple[int, int]] = []
    for a, b in ((0, mid), (mid, n)):
        full_end = b - 1 if (b == n and feed.last_len != feed.block_size) else b
        plan.extend((s, min(s + batch_size, full_end)) for s in range(a, full_end, batch_size))
        if full_end < b:
            plan.append((full_end, b))
    return plan


class StatsCheckpoint:
    """Accumulators + feed position in ``folder`` (safetensors + JSON, atomic), every `every` blocks.

    The tensors go to a new file first, then the JSON that names it (with its sha256), then older
    tensor files are removed: a crash at any point leaves a consistent checkpoint. A checkpoint whose
    fingerprint (languages, data, model, batch plan, bins, checkpoint format) differs from this run's
    is ignored.
    """

    def __init__(self, folder: Path, every: int, fingerprint: dict[str, Any],
                 stop_requested: Callable[[], bool] = lambda: False, check_stop: Callable[[], None] = lambda: None,
                 on_save: Optional[Callable[[dict[str, Any]], None]] = None) -> None:
        self.folder = Path(folder)
        self.every = max(1, int(every))
        self.fingerprint = json.loads(json.dumps({**fingerprint, "format": CHECKPOINT_FORMAT}, sort_keys=True))
        self.stop_requested = stop_requested
        self.check_stop = check_stop
        self.on_save = on_save
        self.saves = 0
        self.resumed_from: Optional[dict[str, Any]] = None

    @property
    def info_path(self) -> Path:
        return self.folder / "stats.json"

    def load(self) -> Optional[tuple[dict[str, Any], dict[str, torch.Tensor]]]:
        from safetensors.torch import load_file

        if not self.info_path.is_file():
            return None
        try:
            info = json.loads(self.info_path.read_text(encoding="utf-8"))
            if info.get("fingerprint") != self.fingerprint:
                return None
            path = self.folder / info["file"]
            if sha256_file(path) != info["sha256"]:
                return None
            tensors = load_file(str(path))
        except (OSError, ValueError, KeyError):
            return None
        self.resumed_from = info
        return info, tensors

    def save(self, info: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        with faults.checkpoint_save():  # tests only: kills around the save
            self.saves += 1
            name = f"stats-{info['language_index']:03d}-{info['next_block']:09d}-{self.saves}.safetensors"
            host = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
            atomic_write(self.folder / name, lambda tmp: save_file(host, str(tmp)))
            full = {**info, "fingerprint": self.fingerprint, "file": name, "sha256": sha256_file(self.folder / name)}
            atomic_write_json(self.info_path, full)
            for old in self.folder.glob("stats-*.safetensors"):
                if old.name != name:
                    old.unlink(missing_ok=True)
        if self.on_save is not None:
            self.on_save(full)


def feeds_fingerprint(feeds: Sequence[BlockFeed]) -> str:
    h = hashlib.sha256()
    for f in feeds:
        h.update(f"{f.lang}|{f.n_tokens}|{f.block_size}|{f.bos}|{f.fingerprint};".encode())
    return h.hexdigest()[:16]


def _to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """On CUDA through pinned memory, asynchronously: a pageable copy would make the host wait for the GPU."""
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def _take(it: Iterator[torch.Tensor], n: int, lang: str) -> list[torch.Tensor]:
    out = []
    for _ in range(n):
        b = next(it, None)
        if b is None:
            raise RuntimeError(f"the {lang} feed ended before its planned blocks; the corpus changed during the run")
        out.append(b)
    return out


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
                  keep_hists: bool = False) -> ActivationStats:
    """One statistics pass per language over its feed; resumes from `checkpoint` when it holds one.

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
                                              checkpoint=checkpoint, progress=progress, meta=meta, budget=budget),
                        batch_size, STATS_BATCHES, device=device)
    if not keep_hists:
        stats.hists = None
    return stats


def _collect(model: nn.Module, adapter: ArchitectureAdapter, feeds: Sequence[BlockFeed], *, bins: int,
             batch_size: int, device: torch.device, checkpoint: Optional[StatsCheckpoint],
             progress: Optional[ProgressFn], meta: Optional[dict[str, str]], budget: int) -> ActivationStats:
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
    start_lang, next_block = 0, 0
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
                next_block, tokens, score_tokens = 0, 0, 0
            mid = feed.n_blocks // 2
            it = feed.open(next_block)
            if progress is not None:
                progress(feed.lang, tokens, feed.n_tokens)
            for s, e in plan_batches(feed, batch_size):
                if e <= next_block:
                    continue
                s = max(s, next_block)  # a checkpoint written at another batch size may fall inside a batch
                in_score = s >= mid and mid > 0
                if in_score and acc.threshold is None:
                    acc.flush()
                    acc.threshold, _ = hist_quantile(acc.hist, tokens, 0.9, layout)
                hooks.score = in_score
                batch = _to_device(torch.stack(_take(it, e - s, feed.lang)), device)
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
                    progress(feed.lang, tokens, feed.n_tokens)
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
            if tokens != feed.n_tokens:
                raise RuntimeError(f"{feed.lang}: counted {tokens} tokens, expected {feed.n_tokens}")
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


# ---- exact P10/P90 for the neurons an intervention can use -----------------------------------------

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
                batch = torch.stack(_take(it, e - s, feed.lang)).to(device)
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
