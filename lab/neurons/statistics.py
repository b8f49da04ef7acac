"""The on-device statistics of one language's pass: histogram bins, accumulators, the hooks that feed them, quantiles.

Why streaming accumulators: identification needs, per language, layer and neuron, the share of tokens
with activation > 0, the mean, P10/P90 and counts above thresholds. Storing the activations would
grow with the corpus; these accumulators have a fixed size, so memory does not.

Forward hooks on ``adapter.act_modules(model)`` (the post-activation value, the point interventions
write) update, for every counted token of every batch, without any host copy:

- ``count[l, j]``  tokens with activation > 0 (int64; per batch an exact float32 sum of 0/1 flags,
  exact because a batch has far fewer than 2^24 tokens);
- ``sum[l, j]``    sum of activations (a float32 per-batch sum, added into float64);
- ``hist[l, j, :]`` a fixed-bin histogram (int32) with ``bins`` equal bins per neuron plus an
  underflow and an overflow bin;
- ``above[l, j]``  tokens above the neuron's act_prob_90p_published threshold (score sample only).

Position 0 of every block is the tokenizer's BOS when the feed adds one (lab.inputs.corpus): the
hooks drop it (``StatsHooks.skip``), so it is in no count, sum or histogram. The hooks also count
the tokens each layer saw (``seen``), which the pass compares with the tokens it fed.

P10/P90 (nearest rank: the k-th smallest value, k = ceil(q·n)): the bin holding the k-th value is
found from the cumulative counts, and the estimate interpolates linearly inside it. The exact k-th
value lies in the same bin, so **|estimate − exact| < one bin width w[l, j]**. A quantile that falls
in the underflow/overflow bin is reported as the range edge and flagged out of range.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

STATE_BUDGET = 1 << 30  # bytes: the statistics state (accumulators, histograms, results) of a pass stays under this
CAL_MARGIN = 0.25  # histogram range = calibration [min, max] widened by this share of its span on each side
MIN_SPAN = 1e-4  # a neuron that is constant in calibration still gets a range this wide
STAGING_MAX = 32767  # int16 staging histogram (CPU): flushed before a bin could pass this


# ---- bins and quantiles --------------------------------------------------------------------------


@dataclass
class BinLayout:
    """Per-neuron histogram bins: bin b (1..bins) covers [lo + (b-1)·w, lo + b·w); 0 and bins+1 are under/overflow."""

    lo: torch.Tensor  # [L, F] float32
    width: torch.Tensor  # [L, F] float32
    bins: int

    @property
    def inv(self) -> torch.Tensor:
        return 1.0 / self.width

    @property
    def shift(self) -> torch.Tensor:
        """1 − lo/w, so that floor(x/w + shift) is the bin index of x."""
        return 1.0 - self.lo * self.inv

    @classmethod
    def from_minmax(cls, mn: torch.Tensor, mx: torch.Tensor, bins: int) -> "BinLayout":
        mn, mx = mn.float(), mx.float()
        span = torch.clamp(mx - mn, min=MIN_SPAN)
        lo = mn - CAL_MARGIN * span
        width = (span * (1 + 2 * CAL_MARGIN)) / bins
        return cls(lo.contiguous(), width.contiguous(), bins)

    def to(self, device: torch.device) -> "BinLayout":
        return BinLayout(self.lo.to(device), self.width.to(device), self.bins)


def rank_for(q: float, n: int) -> int:
    """Nearest-rank quantile: the k-th smallest of n values, k = ceil(q·n) (exact rational arithmetic)."""
    f = Fraction(q).limit_denominator(10**6)
    return max(1, min(n, -(-(f.numerator * n) // f.denominator)))


def hist_quantile(hist: torch.Tensor, n: int, q: float, layout: BinLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """(estimate [L, F] float32, out-of-range flags [L, F]) of the q-quantile from histograms [L, F, bins+2]."""
    k = rank_for(q, n)
    est = torch.empty(hist.shape[:2], dtype=torch.float32, device=hist.device)
    oor = torch.empty(hist.shape[:2], dtype=torch.bool, device=hist.device)
    last = layout.bins + 1
    for layer in range(hist.shape[0]):  # per layer: the cumulative counts of one layer at a time
        h = hist[layer].to(torch.int64)
        cum = h.cumsum(-1)
        target = torch.full((h.shape[0], 1), k, dtype=torch.int64, device=h.device)
        b = torch.searchsorted(cum, target).clamp_(max=last)  # first bin with cum >= k
        before = torch.where(b > 0, cum.gather(1, (b - 1).clamp(min=0)), torch.zeros_like(b))
        inside = h.gather(1, b).clamp(min=1)
        frac = (k - before).double() / inside.double()
        lo, w = layout.lo[layer].double(), layout.width[layer].double()
        b1 = b.squeeze(1)
        val = lo + w * ((b1 - 1).double() + frac.squeeze(1))
        val = torch.where(b1 == 0, lo, val)
        val = torch.where(b1 == last, lo + w * layout.bins, val)
        est[layer] = val.float()
        oor[layer] = (b1 == 0) | (b1 == last)
    return est, oor

def pooled_threshold(hists: Sequence[torch.Tensor], q: float, layout: BinLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """(edge [L, F] float32, bin index [L, F] int64): the upper edge of the bin that holds the pooled q-quantile.

    The languages' histograms share one bin layout, so their sum is the histogram of all their tokens
    pooled, and its nearest-rank q-quantile lies in bin b. The threshold is that bin's upper edge
    lo + b·w: at most one bin width above the exact pooled quantile, and a bin edge, so the tokens
    above it are exactly the tokens in bins > b (``above_bin``). A quantile in the overflow bin gives
    +inf (nothing above it). One layer at a time, so the int64 sums stay one layer big."""
    n_layers, d_ff = hists[0].shape[:2]
    n = int(sum(int(h[0, 0].sum()) for h in hists))
    k = rank_for(q, n)
    b = torch.empty(n_layers, d_ff, dtype=torch.int64)
    for layer in range(n_layers):
        total = torch.zeros(hists[0].shape[1:], dtype=torch.int64)
        for h in hists:
            total += h[layer].to(torch.int64)
        target = torch.full((d_ff, 1), k, dtype=torch.int64)
        b[layer] = torch.searchsorted(total.cumsum(-1), target).squeeze(-1).clamp(max=layout.bins + 1)
    lo, w = layout.lo.double().cpu(), layout.width.double().cpu()
    edge = torch.where(b > layout.bins, torch.full_like(lo, float("inf")), lo + w * b.double())
    return edge.float(), b


def above_bin(hist: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """int64 [L, F]: tokens of one language in bins strictly above bin b[l, j] (exact, from the counts)."""
    out = torch.zeros(b.shape, dtype=torch.int64)
    last = hist.shape[-1] - 1
    for layer in range(hist.shape[0]):
        tail = hist[layer].to(torch.int64).flip(-1).cumsum(-1).flip(-1)  # tail[:, i] = tokens in bins >= i
        nxt = (b[layer] + 1).clamp(max=last).unsqueeze(-1)
        out[layer] = torch.where(b[layer] >= last, torch.zeros_like(b[layer]), tail.gather(-1, nxt).squeeze(-1))
    return out


# ---- how much state a pass keeps ----------------------------------------------------------------

# bytes per neuron that do not depend on the bin count: Accumulators (count 8 + sum 8 + above 8 +
# threshold 4), the bin layout (lo, width) and the hooks' copies (inv, shift) 16, and per language
# the finished result (count 8, sum 8, p10 4, p90 4, threshold 4, above 8, bound 4) twice (the list
# and the stacked ActivationStats), plus above_pooled 8 per language and threshold_pooled 4.
FIXED_PER_NEURON = 28 + 16 + 4
PER_LANGUAGE_PER_NEURON = 2 * 40 + 8


def state_bytes(n_layers: int, d_ff: int, n_languages: int, bins: int, staging: bool = True) -> int:
    """Bytes of the statistics state of one pass: every language's int32 histogram [L, F, bins+2] (kept
    for the pooled P90), the int16 staging histogram (CPU), the accumulators and the results.

    Scratch buffers of the hooks (proportional to batch tokens × d_ff, freed after the pass) and the
    model itself are not included."""
    neurons = n_layers * d_ff
    per_bin = n_languages * 4 + (2 if staging else 0)
    return neurons * ((bins + 2) * per_bin + FIXED_PER_NEURON + n_languages * PER_LANGUAGE_PER_NEURON)


def fit_bins(n_layers: int, d_ff: int, n_languages: int, bins: int, budget: int = STATE_BUDGET,
             staging: bool = True, minimum: int = 16) -> int:
    """The most bins (at most `bins`, at least `minimum`) whose `state_bytes` fits in `budget`.

    The study's ``histogram_bins`` is used whole when it fits (the demo: 4 × 512 neurons, 6 languages,
    2048 bins, 110 MB); at Llama-3.1-8B's shape (32 × 14,336) with 6 languages it gives 65 bins (71 on a GPU)."""
    neurons = n_layers * d_ff
    per_bin = neurons * (n_languages * 4 + (2 if staging else 0))
    fixed = neurons * (FIXED_PER_NEURON + n_languages * PER_LANGUAGE_PER_NEURON)
    fit = (budget - fixed) // per_bin - 2 if budget > fixed else 0
    return int(max(minimum, min(bins, fit)))


# ---- accumulators and hooks ----------------------------------------------------------------------

class Accumulators:
    """The on-device state of one language's pass.

    On the CPU the hooks add into an int16 *staging* histogram (half the memory traffic of int32,
    which is what a scatter-add pays for) that is added into the int32 histogram before any bin
    could overflow: a bin gains at most one count per token, so a flush every
    ⌊32767 / tokens per batch⌋ batches is always in time. The totals are exact integers either way.
    """

    def __init__(self, n_layers: int, d_ff: int, bins: int, device: torch.device,
                 max_batch_tokens: int = 0, hist: Optional[torch.Tensor] = None) -> None:
        self.count = torch.zeros(n_layers, d_ff, dtype=torch.int64, device=device)
        self.sum = torch.zeros(n_layers, d_ff, dtype=torch.float64, device=device)
        # `hist` may be a slot of the pass's [n_languages, L, F, bins+2] store (collect.py): no copy per language
        self.hist = hist if hist is not None else torch.zeros(n_layers, d_ff, bins + 2, dtype=torch.int32,
                                                              device=device)
        self.above = torch.zeros(n_layers, d_ff, dtype=torch.int64, device=device)
        self.threshold: Optional[torch.Tensor] = None  # [L, F] float32 once the score sample starts
        use_staging = device.type == "cpu" and 0 < max_batch_tokens <= STAGING_MAX
        self.staging = torch.zeros_like(self.hist, dtype=torch.int16) if use_staging else None
        self.max_batch_tokens = max_batch_tokens
        self.staged = 0  # tokens added into `staging` since its last flush
        # layers that run on another device than this state (a model split by device_map): their hooks add
        # into partial accumulators on that layer's device (no activation copy), folded in here by flush()
        self.remote: dict[int, dict[str, torch.Tensor]] = {}

    @property
    def target(self) -> torch.Tensor:
        """Where the hooks add histogram counts."""
        return self.staging if self.staging is not None else self.hist

    def after_batch(self, tokens: int) -> None:
        """Call after each batch of `tokens` tokens: flushes the staging histogram in time."""
        if self.staging is None:
            return
        if tokens > self.max_batch_tokens:
            raise ValueError("a batch larger than announced to Accumulators")
        self.staged += tokens
        if self.staged + self.max_batch_tokens > STAGING_MAX:
            self.flush()

    def flush(self) -> None:
        if self.staging is not None and self.staged:
            self.hist += self.staging
            self.staging.zero_()
        self.staged = 0
        for layer, part in self.remote.items():
            for name in ("count", "sum", "hist", "above"):
                getattr(self, name)[layer] += part[name].to(self.count.device)
                part[name].zero_()

    def remote_part(self, layer: int, device: torch.device) -> dict[str, torch.Tensor]:
        """The partial accumulators of a layer whose activations are on `device`, not on this state's device."""
        part = self.remote.get(layer)
        if part is None or part["count"].device != device:
            d_ff, width = self.hist.shape[1], self.hist.shape[2]
            part = self.remote[layer] = {
                "count": torch.zeros(d_ff, dtype=torch.int64, device=device),
                "sum": torch.zeros(d_ff, dtype=torch.float64, device=device),
                "hist": torch.zeros(d_ff, width, dtype=torch.int32, device=device),
                "above": torch.zeros(d_ff, dtype=torch.int64, device=device)}
        return part

    def reset(self, hist: Optional[torch.Tensor] = None) -> None:
        """Zero everything for the next language (same tensors, so memory stays put); with `hist`, the
        histogram goes on in that (zeroed) slot instead and the previous one is left as it is."""
        self.flush()
        if hist is not None:
            self.hist = hist
        for t in (self.count, self.sum, self.hist, self.above):
            t.zero_()
        if self.staging is not None:
            self.staging.zero_()
        self.staged = 0
        self.threshold = None

    def tensors(self, with_hist: bool = True) -> dict[str, torch.Tensor]:
        self.flush()
        out = {"count": self.count, "sum": self.sum, "above": self.above}
        if with_hist:
            out["hist"] = self.hist
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        for name in ("count", "sum", "hist", "above"):
            if name in tensors:
                getattr(self, name).copy_(tensors[name])
        if self.staging is not None:
            self.staging.zero_()
        self.staged = 0
        for part in self.remote.values():
            for t in part.values():
                t.zero_()
        thr = tensors.get("threshold")
        self.threshold = None if thr is None else thr.to(self.count.device)


class _Workspace:
    """Scratch buffers reused by every layer's hook (one set per batch shape), so nothing grows."""

    def __init__(self, n: int, d_ff: int, device: torch.device, count_dtype: torch.dtype) -> None:
        self.flag = torch.empty(n, d_ff, dtype=torch.float32, device=device)
        self.y = torch.empty(n, d_ff, dtype=torch.float32, device=device)
        self.y_t = torch.empty(d_ff, n, dtype=torch.float32, device=device)
        self.idx = torch.empty(d_ff, n, dtype=torch.int64, device=device)
        self.ones = torch.ones(d_ff, n, dtype=count_dtype, device=device)


class StatsHooks:
    """Forward hooks that feed Accumulators; a context manager, so hooks never outlive the pass."""

    def __init__(self, modules: Sequence[nn.Module], acc: Accumulators, layout: BinLayout) -> None:
        self.modules = list(modules)
        self.acc = acc
        self.layout = layout
        self.inv = layout.inv
        self.shift = layout.shift
        self.score = False  # count tokens above the threshold (second sample)
        self.skip = 0  # leading positions of every block left out of the statistics (1 = the BOS)
        self.seen = [0] * len(self.modules)  # tokens each layer's hook counted (host ints: no device sync)
        self._ws: dict[tuple[int, torch.device, torch.dtype], _Workspace] = {}
        self._handles: list[Any] = []

    def _workspace(self, n: int, d_ff: int, device: torch.device, count_dtype: torch.dtype) -> _Workspace:
        key = (n, device, count_dtype)  # one set per device when the layers are spread over several
        ws = self._ws.get(key)
        if ws is None:
            if sum(1 for k in self._ws if k[1:] == key[1:]) >= 2:  # full batches and one short tail: never more
                for k in [k for k in self._ws if k[1:] == key[1:]]:
                    del self._ws[k]
            ws = self._ws[key] = _Workspace(n, d_ff, device, count_dtype)
        return ws

    def _local(self, layer: int, x: torch.Tensor) -> bool:
        """Whether `layer`'s activations are on the accumulators' device (else it adds into remote partials)."""
        return x.device == self.acc.count.device

    def _make(self, layer: int) -> Callable[..., None]:
        acc, top = self.acc, self.layout.bins + 1
        inv, shift = self.inv[layer], self.shift[layer]
        moved: dict[str, Any] = {}  # a remote layer's bin layout and threshold, copied to its device once

        def hook(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
            if self.skip:
                if out.dim() != 3:
                    raise RuntimeError(f"layer {layer}'s activation module gave shape {tuple(out.shape)}, not "
                                       f"[batch, positions, d_ff]; the BOS position cannot be left out")
                out = out[:, self.skip:]
            x = out.reshape(-1, out.shape[-1])
            self.seen[layer] += x.shape[0]
            if self._local(layer, x):
                count, total, hist, above = acc.count[layer], acc.sum[layer], acc.target[layer], acc.above[layer]
                lin, lshift = inv, shift
                thr = acc.threshold[layer] if self.score and acc.threshold is not None else None
            else:  # this layer sits on another device (device_map): its partial accumulators live there
                part = acc.remote_part(layer, x.device)
                count, total, hist, above = part["count"], part["sum"], part["hist"], part["above"]
                if moved.get("device") != x.device:
                    moved.update(device=x.device, inv=inv.to(x.device), shift=shift.to(x.device), thr=(None, None))
                lin, lshift = moved["inv"], moved["shift"]
                thr = None
                if self.score and acc.threshold is not None:
                    if moved["thr"][0] is not acc.threshold:
                        moved["thr"] = (acc.threshold, acc.threshold[layer].to(x.device))
                    thr = moved["thr"][1]
            ws = self._workspace(x.shape[0], x.shape[1], x.device, hist.dtype)
            torch.gt(x, 0, out=ws.flag)
            count += ws.flag.sum(0).to(torch.int64)
            total += x.sum(0, dtype=torch.float32)
            torch.addcmul(lshift, x.float() if x.dtype != torch.float32 else x, lin, out=ws.y)
            ws.y_t.copy_(ws.y.t())  # neuron-major: each neuron's updates hit one histogram row
            ws.idx.copy_(ws.y_t)  # truncation toward zero: floor for y >= 0, and y in (-1, 1) -> 0
            ws.idx.clamp_(0, top)  # below/above the range -> under/overflow bin (NaN lands in one too)
            hist.scatter_add_(1, ws.idx, ws.ones)
            if self.score:
                assert thr is not None
                torch.gt(x, thr, out=ws.flag)
                above += ws.flag.sum(0).to(torch.int64)

        return hook

    def __enter__(self) -> "StatsHooks":
        self._handles = [m.register_forward_hook(self._make(i)) for i, m in enumerate(self.modules)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []  # the workspace stays for the next `with` and goes with this object

