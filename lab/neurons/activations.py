"""Per-language activation statistics at the adapter's neuron hook point, accumulated on the device.

Why streaming accumulators: identification needs, per language, layer and neuron, the share of tokens
with activation > 0, the mean, P10/P90 and (for act_prob_90p) a count above a threshold. Storing the
activations would grow with the corpus; these accumulators have a fixed size, so memory does not.

One pass per language. Forward hooks on ``adapter.act_modules(model)`` (the post-activation value,
the point interventions write) update, for every token of every batch, without any host copy:

- ``count[l, j]``  tokens with activation > 0 (int64; per batch an exact float32 sum of 0/1 flags,
  exact because a batch has far fewer than 2^24 tokens);
- ``sum[l, j]``    sum of activations (a float32 per-batch sum, added into float64);
- ``hist[l, j, :]`` a fixed-bin histogram (int32) with ``bins`` equal bins per neuron plus an
  underflow and an overflow bin;
- ``above[l, j]``  tokens above the neuron's act_prob_90p threshold (second half of the pass only).

Histogram range. Before the first language, one calibration forward pass over the first block of
every language records each neuron's min and max; the range is [min − m, max + m] with
m = 25 % of (max − min) (``CAL_MARGIN``), split into ``bins`` bins of width w[l, j]. The range is
fixed for the whole run (and stored in checkpoints), so all languages share bins.

P10/P90 (nearest rank: the k-th smallest value, k = ceil(q·n)): the bin holding the k-th value is
found from the cumulative counts, and the estimate interpolates linearly inside it. The exact k-th
value lies in the same bin, so **|estimate − exact| < one bin width w[l, j]** (``hist_width`` in the
artifact). A quantile that falls in the underflow/overflow bin is reported as the range edge and
counted in ``out_of_range`` (and the stage's ``quantile_out_of_range`` metric): the bound does not
hold for those neurons.

act_prob_90p samples. Each language's blocks are split into two disjoint samples: the first
⌊n_blocks/2⌋ blocks (threshold sample) and the rest (score sample). When the pass reaches the second
sample, each neuron's P90 threshold is taken from the histogram so far (threshold sample only),
and from then on the hooks also count tokens above it. So act_prob_90p needs no extra pass.

Batches hold blocks of one length only (the short last block of a language, if any, is a batch of
its own), so there is never padding and every position is a real token.

Exact resume. Batches are planned from the block count alone (``plan_batches``) and every
accumulator is exact or deterministic given the same batches, so a run resumed from a checkpoint
(``StatsCheckpoint``: safetensors + JSON, atomic, every ``every`` blocks) ends with statistics
identical to an uninterrupted one.

The artifact (``ActivationStats.save``) holds DESIGN.md's tensors — float32 ``act_prob``,
``act_mean``, ``act_p10``, ``act_p90`` [n_lang, n_layers, d_ff], int64 ``tokens`` [n_lang] — and
metadata ``languages``, ``model``, ``revision``, ``hook``, plus documented extensions:
``act_count`` (int64, exact counts), ``act_sum`` (float64), ``threshold_90p`` (float32),
``above_90p`` (int64), ``tokens_90p`` (int64 [n_lang], score-sample tokens), ``hist_lo`` and
``hist_width`` (float32 [n_layers, d_ff], the bin layout and so the P10/P90 error bound), and
metadata ``histogram_bins``, ``quantiles``, ``out_of_range`` (JSON).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from lab.core import faults
from lab.model.adapters import ArchitectureAdapter
from lab.core.artifacts import atomic_write, atomic_write_json, sha256_file
from lab.inputs.corpus import BlockFeed
from lab.core.resources import run_halving

CAL_MARGIN = 0.25  # histogram range = calibration [min, max] widened by this share of its span on each side
MIN_SPAN = 1e-4  # a neuron that is constant in calibration still gets a range this wide
STAGING_MAX = 32767  # int16 staging histogram (CPU): flushed before a bin could pass this
ProgressFn = Callable[[str, int, int], None]  # (language, tokens done, tokens total)
STATS_BATCHES = "statistics"  # what lab.core.resources halves (and the batch_halvings metric's condition)


# ---- bins ------------------------------------------------------------------------------------------

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


def calibrate(model: nn.Module, adapter: ArchitectureAdapter, blocks: Sequence[torch.Tensor], bins: int,
              device: torch.device) -> BinLayout:
    """Per-neuron min/max over the calibration blocks → the fixed histogram layout."""
    modules = adapter.act_modules(model)
    n_layers, d_ff = len(modules), adapter.d_ff(model)
    mn = torch.full((n_layers, d_ff), math.inf, device=device)
    mx = torch.full((n_layers, d_ff), -math.inf, device=device)

    def make(layer: int) -> Callable[..., None]:
        def hook(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
            x = out.reshape(-1, out.shape[-1]).float()
            torch.minimum(mn[layer], x.amin(0), out=mn[layer])
            torch.maximum(mx[layer], x.amax(0), out=mx[layer])
        return hook

    handles = [m.register_forward_hook(make(i)) for i, m in enumerate(modules)]
    try:
        with torch.no_grad():
            for b in blocks:
                forward_layers(model, b.reshape(1, -1).to(device))
    finally:
        for h in handles:
            h.remove()
    return BinLayout.from_minmax(mn, mx, bins)


def forward_layers(model: nn.Module, ids: torch.Tensor) -> None:
    """The decoder stack without the LM head: the hooks need the layers, not the logits."""
    base = getattr(model, "base_model", model)
    base(input_ids=ids, use_cache=False)


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


# ---- accumulators and hooks ----------------------------------------------------------------------

class Accumulators:
    """The on-device state of one language's pass.

    On the CPU the hooks add into an int16 *staging* histogram (half the memory traffic of int32,
    which is what a scatter-add pays for) that is added into the int32 histogram before any bin
    could overflow: a bin gains at most one count per token, so a flush every
    ⌊32767 / tokens per batch⌋ batches is always in time. The totals are exact integers either way.
    """

    def __init__(self, n_layers: int, d_ff: int, bins: int, device: torch.device,
                 max_batch_tokens: int = 0) -> None:
        self.count = torch.zeros(n_layers, d_ff, dtype=torch.int64, device=device)
        self.sum = torch.zeros(n_layers, d_ff, dtype=torch.float64, device=device)
        self.hist = torch.zeros(n_layers, d_ff, bins + 2, dtype=torch.int32, device=device)
        self.above = torch.zeros(n_layers, d_ff, dtype=torch.int64, device=device)
        self.threshold: Optional[torch.Tensor] = None  # [L, F] float32 once the score sample starts
        use_staging = device.type == "cpu" and 0 < max_batch_tokens <= STAGING_MAX
        self.staging = torch.zeros_like(self.hist, dtype=torch.int16) if use_staging else None
        self.max_batch_tokens = max_batch_tokens
        self.staged = 0  # tokens added into `staging` since its last flush

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

    def reset(self) -> None:
        """Zero everything for the next language (same tensors, so memory stays put)."""
        for t in (self.count, self.sum, self.hist, self.above):
            t.zero_()
        if self.staging is not None:
            self.staging.zero_()
        self.staged = 0
        self.threshold = None

    def tensors(self) -> dict[str, torch.Tensor]:
        self.flush()
        out = {"count": self.count, "sum": self.sum, "hist": self.hist, "above": self.above}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        for name in ("count", "sum", "hist", "above"):
            getattr(self, name).copy_(tensors[name])
        if self.staging is not None:
            self.staging.zero_()
        self.staged = 0
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
        self._ws: dict[int, _Workspace] = {}
        self._handles: list[Any] = []

    def _workspace(self, n: int, d_ff: int, device: torch.device) -> _Workspace:
        ws = self._ws.get(n)
        if ws is None:
            if len(self._ws) >= 2:  # full batches and one short tail: never more
                self._ws.clear()
            ws = self._ws[n] = _Workspace(n, d_ff, device, self.acc.target.dtype)
        return ws

    def _make(self, layer: int) -> Callable[..., None]:
        acc, top = self.acc, self.layout.bins + 1
        inv, shift = self.inv[layer], self.shift[layer]

        def hook(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
            x = out.reshape(-1, out.shape[-1])
            ws = self._workspace(x.shape[0], x.shape[1], x.device)
            torch.gt(x, 0, out=ws.flag)
            acc.count[layer] += ws.flag.sum(0).to(torch.int64)
            acc.sum[layer] += x.sum(0, dtype=torch.float32)
            torch.addcmul(shift, x.float() if x.dtype != torch.float32 else x, inv, out=ws.y)
            ws.y_t.copy_(ws.y.t())  # neuron-major: each neuron's updates hit one histogram row
            ws.idx.copy_(ws.y_t)  # truncation toward zero: floor for y >= 0, and y in (-1, 1) -> 0
            ws.idx.clamp_(0, top)  # below/above the range -> under/overflow bin (NaN lands in one too)
            acc.target[layer].scatter_add_(1, ws.idx, ws.ones)
            if self.score:
                assert acc.threshold is not None
                torch.gt(x, acc.threshold[layer], out=ws.flag)
                acc.above[layer] += ws.flag.sum(0).to(torch.int64)

        return hook

    def __enter__(self) -> "StatsHooks":
        self._handles = [m.register_forward_hook(self._make(i)) for i, m in enumerate(self.modules)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []  # the workspace stays for the next `with` and goes with this object


# ---- results -------------------------------------------------------------------------------------

@dataclass
class LanguageResult:
    """One language's finished statistics (on the CPU)."""

    count: torch.Tensor  # int64 [L, F]
    sum: torch.Tensor  # float64 [L, F]
    tokens: int
    p10: torch.Tensor  # float32 [L, F]
    p90: torch.Tensor
    threshold: torch.Tensor  # float32 [L, F]; NaN when there is no score sample
    above: torch.Tensor  # int64 [L, F]
    score_tokens: int
    out_of_range: dict[str, int]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"count": self.count, "sum": self.sum, "p10": self.p10, "p90": self.p90,
                "threshold": self.threshold, "above": self.above}


@dataclass
class ActivationStats:
    """All languages' statistics; `save`/`load` the activation_stats.safetensors artifact."""

    languages: list[str]
    count: torch.Tensor  # int64 [n, L, F]
    sum: torch.Tensor  # float64 [n, L, F]
    tokens: torch.Tensor  # int64 [n]
    p10: torch.Tensor  # float32 [n, L, F]
    p90: torch.Tensor
    threshold90: torch.Tensor  # float32 [n, L, F]
    above90: torch.Tensor  # int64 [n, L, F]
    score_tokens: torch.Tensor  # int64 [n]
    hist_lo: torch.Tensor  # float32 [L, F]
    hist_width: torch.Tensor  # float32 [L, F]
    bins: int
    out_of_range: dict[str, dict[str, int]] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return int(self.count.shape[1])

    @property
    def d_ff(self) -> int:
        return int(self.count.shape[2])

    @property
    def act_prob(self) -> torch.Tensor:
        """float64 [n, L, F]: share of tokens with activation > 0, from the exact counts."""
        return self.count.double() / self.tokens.double().view(-1, 1, 1)

    @property
    def act_mean(self) -> torch.Tensor:
        return self.sum / self.tokens.double().view(-1, 1, 1)

    @property
    def score_90p(self) -> torch.Tensor:
        """float64 [n, L, F]: share of score-sample tokens above the threshold-sample P90."""
        return self.above90.double() / self.score_tokens.double().clamp(min=1).view(-1, 1, 1)

    @classmethod
    def from_results(cls, languages: Sequence[str], results: Sequence[LanguageResult], layout: BinLayout,
                     meta: Optional[dict[str, str]] = None) -> "ActivationStats":
        return cls(
            languages=list(languages),
            count=torch.stack([r.count for r in results]),
            sum=torch.stack([r.sum for r in results]),
            tokens=torch.tensor([r.tokens for r in results], dtype=torch.int64),
            p10=torch.stack([r.p10 for r in results]),
            p90=torch.stack([r.p90 for r in results]),
            threshold90=torch.stack([r.threshold for r in results]),
            above90=torch.stack([r.above for r in results]),
            score_tokens=torch.tensor([r.score_tokens for r in results], dtype=torch.int64),
            hist_lo=layout.lo.detach().cpu(), hist_width=layout.width.detach().cpu(), bins=layout.bins,
            out_of_range={lang: r.out_of_range for lang, r in zip(languages, results)},
            meta=dict(meta or {}),
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            "act_prob": self.act_prob.float().contiguous(),
            "act_mean": self.act_mean.float().contiguous(),
            "act_p10": self.p10.contiguous(),
            "act_p90": self.p90.contiguous(),
            "tokens": self.tokens.contiguous(),
            "act_count": self.count.contiguous(),
            "act_sum": self.sum.contiguous(),
            "threshold_90p": self.threshold90.contiguous(),
            "above_90p": self.above90.contiguous(),
            "tokens_90p": self.score_tokens.contiguous(),
            "hist_lo": self.hist_lo.contiguous(),
            "hist_width": self.hist_width.contiguous(),
        }

    def metadata(self) -> dict[str, str]:
        md = {"model": "", "revision": "", "hook": ""}
        md.update({k: str(v) for k, v in self.meta.items()})
        md.update({"languages": ",".join(self.languages), "histogram_bins": str(self.bins),
                   "quantiles": "nearest rank k=ceil(q*n), linear inside the histogram bin; |error| < hist_width",
                   "out_of_range": json.dumps(self.out_of_range, sort_keys=True)})
        return md

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file(self.tensors(), str(path), metadata=self.metadata())

    @classmethod
    def load(cls, path: Path) -> "ActivationStats":
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as fh:
            md = dict(fh.metadata() or {})
        t = load_file(str(path))
        languages = [x for x in md.get("languages", "").split(",") if x]
        known = {"languages", "histogram_bins", "quantiles", "out_of_range"}
        return cls(languages=languages, count=t["act_count"], sum=t["act_sum"], tokens=t["tokens"],
                   p10=t["act_p10"], p90=t["act_p90"], threshold90=t["threshold_90p"], above90=t["above_90p"],
                   score_tokens=t["tokens_90p"], hist_lo=t["hist_lo"], hist_width=t["hist_width"],
                   bins=int(md.get("histogram_bins", "0")), out_of_range=json.loads(md.get("out_of_range", "{}")),
                   meta={k: v for k, v in md.items() if k not in known})


# ---- batches, checkpoints and the pass -----------------------------------------------------------

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
    fingerprint (languages, data, model, batch plan, bins) differs from this run's is ignored.
    """

    def __init__(self, folder: Path, every: int, fingerprint: dict[str, Any],
                 stop_requested: Callable[[], bool] = lambda: False, check_stop: Callable[[], None] = lambda: None,
                 on_save: Optional[Callable[[dict[str, Any]], None]] = None) -> None:
        self.folder = Path(folder)
        self.every = max(1, int(every))
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))
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
        h.update(f"{f.lang}|{f.n_tokens}|{f.block_size}|{f.fingerprint};".encode())
    return h.hexdigest()[:16]


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
    if not bool(torch.isfinite(acc.sum).all()):
        raise RuntimeError("the model produced NaN or infinite activations; check its weights and dtype")
    return LanguageResult(count=acc.count.cpu().clone(), sum=acc.sum.cpu().clone(), tokens=tokens,
                          p10=p10.cpu(), p90=p90.cpu(), threshold=thr.float().cpu().clone(),
                          above=acc.above.cpu().clone(), score_tokens=score_tokens,
                          out_of_range={"p10": int(oor10.sum()), "p90": int(oor90.sum())})


def _result_from(tensors: dict[str, torch.Tensor], prefix: str, info: dict[str, Any]) -> LanguageResult:
    t = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    return LanguageResult(count=t["count"], sum=t["sum"], tokens=int(info["tokens"]), p10=t["p10"], p90=t["p90"],
                          threshold=t["threshold"], above=t["above"], score_tokens=int(info["score_tokens"]),
                          out_of_range=dict(info["out_of_range"]))


def collect_stats(model: nn.Module, adapter: ArchitectureAdapter, feeds: Sequence[BlockFeed], *, bins: int = 2048,
                  batch_size: int = 8, device: Optional[torch.device] = None,
                  checkpoint: Optional[StatsCheckpoint] = None, progress: Optional[ProgressFn] = None,
                  meta: Optional[dict[str, str]] = None) -> ActivationStats:
    """One statistics pass per language over its feed; resumes from `checkpoint` when it holds one.

    Out of memory in a batch: the hooks may already have counted part of it, so the pass starts over
    from the last checkpoint (or the beginning) with half the batch size (lab.core.resources). Counts and
    histograms are exact integers, so the statistics do not depend on the batch size (sums only up
    to float32 rounding)."""
    if not feeds:
        raise ValueError("no languages to collect")
    device = device or next(model.parameters()).device
    return run_halving(lambda size: _collect(model, adapter, feeds, bins=bins, batch_size=size, device=device,
                                             checkpoint=checkpoint, progress=progress, meta=meta),
                       batch_size, STATS_BATCHES, device=device)


def _collect(model: nn.Module, adapter: ArchitectureAdapter, feeds: Sequence[BlockFeed], *, bins: int,
             batch_size: int, device: torch.device, checkpoint: Optional[StatsCheckpoint],
             progress: Optional[ProgressFn], meta: Optional[dict[str, str]]) -> ActivationStats:
    modules = adapter.act_modules(model)
    n_layers, d_ff = len(modules), adapter.d_ff(model)
    languages = [f.lang for f in feeds]
    done: list[LanguageResult] = []
    start_lang, next_block = 0, 0
    acc = Accumulators(n_layers, d_ff, bins, device,
                       max_batch_tokens=max(batch_size * f.block_size for f in feeds))
    layout: Optional[BinLayout] = None
    tokens = score_tokens = 0

    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        info, tensors = state
        layout = BinLayout(tensors["layout.lo"].to(device), tensors["layout.width"].to(device), bins)
        done = [_result_from(tensors, f"done{i}.", d) for i, d in enumerate(info["done"])]
        start_lang, next_block = int(info["language_index"]), int(info["next_block"])
        tokens, score_tokens = int(info["tokens"]), int(info["score_tokens"])
        if start_lang < len(feeds):
            acc.load({k[4:]: v.to(device) for k, v in tensors.items() if k.startswith("acc.")})
    if layout is None:
        cal = [next(iter(f.open(0))) for f in feeds]
        layout = calibrate(model, adapter, cal, bins, device)

    since = 0
    with torch.no_grad(), StatsHooks(modules, acc, layout) as hooks:
        for li in range(start_lang, len(feeds)):
            feed = feeds[li]
            if li != start_lang:
                acc.reset()
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
                batch = torch.stack(_take(it, e - s, feed.lang)).to(device)
                faults.batch(device)  # tests only: an out-of-memory error here
                forward_layers(model, batch)
                acc.after_batch(batch.numel())
                tokens += batch.numel()
                if in_score:
                    score_tokens += batch.numel()
                next_block = e
                if progress is not None:
                    progress(feed.lang, tokens, feed.n_tokens)
                since += e - s
                if checkpoint is not None and (since >= checkpoint.every or checkpoint.stop_requested()):
                    _save(checkpoint, li, next_block, tokens, score_tokens, acc, layout, done)
                    since = 0
                    checkpoint.check_stop()
            hooks.score = False
            if tokens != feed.n_tokens:
                raise RuntimeError(f"{feed.lang}: counted {tokens} tokens, expected {feed.n_tokens}")
            done.append(_finish(acc, tokens, score_tokens, layout))
    return ActivationStats.from_results(languages, done, layout, meta)


def _save(cp: StatsCheckpoint, li: int, next_block: int, tokens: int, score_tokens: int, acc: Accumulators,
          layout: BinLayout, done: list[LanguageResult]) -> None:
    tensors = {"layout.lo": layout.lo, "layout.width": layout.width}
    tensors.update({f"acc.{k}": v for k, v in acc.tensors().items()})
    for i, r in enumerate(done):
        tensors.update({f"done{i}.{k}": v for k, v in r.tensors().items()})
    info = {"language_index": li, "next_block": next_block, "tokens": tokens, "score_tokens": score_tokens,
            "done": [{"tokens": r.tokens, "score_tokens": r.score_tokens, "out_of_range": r.out_of_range}
                     for r in done]}
    cp.save(info, tensors)
