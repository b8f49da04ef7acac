"""The activation statistics artifact: finished per-language results and activation_stats.safetensors.

The artifact (``ActivationStats.save``) holds DESIGN.md's tensors — float32 ``act_prob``,
``act_mean``, ``act_p10``, ``act_p90`` [n_lang, n_layers, d_ff], int64 ``tokens`` [n_lang] — and
metadata ``languages``, ``model``, ``revision``, ``hook``, plus documented extensions:
``act_count`` (int64, exact counts), ``act_sum`` (float64), ``threshold_90p`` (float32),
``above_90p`` (int64), ``tokens_90p`` (int64 [n_lang], score-sample tokens) — the per-language
samples of act_prob_90p_published —, ``threshold_pooled90`` (float32 [n_layers, d_ff], the P90
of all languages' tokens pooled, as a bin edge) and ``above_pooled90`` (int64 [n_lang, L, F], each
language's tokens above it) for act_prob_90p, ``hist_lo`` and ``hist_width`` (float32
[n_layers, d_ff], the bin layout and so the quantile error bound), and metadata ``histogram_bins``,
``quantiles``, ``out_of_range`` (JSON), ``bos`` (the BOS token id, or "none") and
``position0_excluded`` ("true"/"false").

Byte-identical files: safetensors writes the metadata in a hash map's order, which varies between
processes, so ``save`` rewrites the header with every key sorted (the tensor bytes are untouched) and
identical statistics give identical files (same sha256).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import torch

from lab.neurons.statistics import BinLayout


@dataclass
class LanguageResult:
    """One language's finished statistics (on the CPU); `hist` is kept until the pooled threshold is known."""

    count: torch.Tensor  # int64 [L, F]
    sum: torch.Tensor  # float64 [L, F]
    tokens: int
    p10: torch.Tensor  # float32 [L, F]
    p90: torch.Tensor
    threshold: torch.Tensor  # float32 [L, F]; NaN when there is no score sample
    above: torch.Tensor  # int64 [L, F]
    score_tokens: int
    out_of_range: dict[str, int]
    hist: torch.Tensor  # int32 [L, F, bins + 2]: a slot of the pass's histogram store (not in tensors())
    bound: Optional[torch.Tensor] = None  # float32 [L, F]: |p10/p90 error| bound (bin width; inf out of range)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"count": self.count, "sum": self.sum, "p10": self.p10, "p90": self.p90,
               "threshold": self.threshold, "above": self.above}
        if self.bound is not None:
            out["bound"] = self.bound
        return out


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
    threshold_pooled: Optional[torch.Tensor] = None  # float32 [L, F]; None in artifacts written before it existed
    above_pooled: Optional[torch.Tensor] = None  # int64 [n, L, F]
    # float32 [n, L, F]: |act_p10/act_p90 − exact| is below this (0: exact, from refine_quantiles; inf: the
    # quantile fell outside the histogram range); None in artifacts written before it existed
    quantile_bound: Optional[torch.Tensor] = None
    # not saved: the pass's per-language histograms [n, L, F, bins+2] (refine_quantiles reads them, then drops them)
    hists: Optional[torch.Tensor] = field(default=None, repr=False)
    state_bytes: int = 0  # not saved: bytes of the pass's statistics state (lab.neurons.statistics.state_bytes)

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
                     meta: Optional[dict[str, str]] = None, threshold_pooled: Optional[torch.Tensor] = None,
                     above_pooled: Optional[torch.Tensor] = None) -> "ActivationStats":
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
            meta=dict(meta or {}), threshold_pooled=threshold_pooled, above_pooled=above_pooled,
            quantile_bound=(torch.stack([r.bound for r in results])
                            if all(r.bound is not None for r in results) else None),
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {
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
        if self.threshold_pooled is not None and self.above_pooled is not None:
            out["threshold_pooled90"] = self.threshold_pooled.contiguous()
            out["above_pooled90"] = self.above_pooled.contiguous()
        if self.quantile_bound is not None:
            out["quantile_bound"] = self.quantile_bound.contiguous()
        return out

    def metadata(self) -> dict[str, str]:
        md = {"model": "", "revision": "", "hook": "", "bos": "none", "position0_excluded": "false"}
        md.update({k: str(v) for k, v in self.meta.items()})
        md.update({"languages": ",".join(self.languages), "histogram_bins": str(self.bins),
                   "quantiles": "nearest rank k=ceil(q*n); the exact value where quantile_bound is 0, else linear "
                                "inside the histogram bin with |error| < quantile_bound (hist_width; inf out of range)",
                   "out_of_range": json.dumps(self.out_of_range, sort_keys=True)})
        return md

    def save(self, path: Path) -> None:
        Path(path).write_bytes(deterministic_safetensors(self.tensors(), self.metadata()))

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
                   meta={k: v for k, v in md.items() if k not in known},
                   threshold_pooled=t.get("threshold_pooled90"), above_pooled=t.get("above_pooled90"),
                   quantile_bound=t.get("quantile_bound"))


def deterministic_safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """safetensors bytes whose header lists tensors and metadata in sorted key order (same input, same bytes).

    The library lays the tensor data out deterministically but serialises the metadata map in a
    per-process order; the header is JSON, so it is re-written sorted and padded to 8 bytes as the
    format requires; the data offsets are relative to the end of the header, so they stay valid."""
    from safetensors.torch import save

    raw = save({k: tensors[k] for k in sorted(tensors)}, metadata=dict(sorted(metadata.items())))
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + raw[8 + n:]
