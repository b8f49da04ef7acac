"""Identification methods: which neurons are specific to which language, from ActivationStats.

Registered by name in ``METHODS`` (``@method("name", "...")``); each takes the statistics, the
study's [identify] parameters and the study seed, and returns ``{language: [[layer, index], ...]}``
sorted by (layer, index). Other stages call ``identify`` and ``random_like`` — never re-implement.

``lape`` (Tang et al. 2024). p[l, j, k] = share of language k's tokens on which neuron (l, j) is > 0
(from exact counts, float64). Normalise over languages, q = p / Σ_k p, and take the entropy
H = −Σ q·ln q (0·ln 0 = 0). Two cut-offs come from *all* values of p (every layer, neuron and
language): the filter value (the ``filter_rate`` quantile) and the activation bar (the
``activation_bar_ratio`` quantile), where the r-quantile of N values is the k-th smallest with
k = max(1, round-half-up(r·N)). Neurons whose p exceeds the filter value in no language are
excluded. Of the rest, the ``top_rate``·L·d_ff (rounded half up, at least 1) with the lowest entropy
are kept — entropies equal to 12 decimals count as ties and go in (layer, index) order, so the
result does not depend on the last bit of a log routine. A kept neuron belongs to every language k
with p[l, j, k] > activation bar, so a neuron may belong to several languages (or none).

``act_prob_90p`` (method_version 2: what Mondal et al. 2025 meant). Each neuron's threshold τ[l, j]
is its P90 over *all* languages' tokens pooled: the upper edge of the histogram bin holding the
pooled nearest-rank P90 (the languages share one bin layout, so the pooled histogram is their sum;
τ − exact pooled P90 ∈ [0, w[l, j]), one bin width). Language k's share s_k = (its tokens above τ) /
(its tokens), exact for τ. The margin of neuron (l, j) for k is s_k minus its share over the other
languages' tokens pooled, s_¬k = Σ_{k'≠k} above_k' / Σ_{k'≠k} tokens_k'. Per language, neurons with
margin ≥ ``MIN_MARGIN`` (0.05) are ranked by margin (ties in (layer, index) order) and at most
``top_m``·L·d_ff (rounded half up, at least 1) are kept, so a language may get fewer, or none.

``act_prob_90p_published`` (method_version 1: the published code's behaviour, flaw included, at one
hook point: the statistics and the interventions both use the post-activation value). Per
language, each neuron's P90 is estimated on the threshold sample (first half of the language's
blocks); its score is the share of the *disjoint* score sample's tokens above that P90. The top
``top_m``·L·d_ff neurons per language are kept; ties go in (layer, index) order.
*What the score measures*: a neuron whose activations are distributed the same way in both halves
scores about 0.1 whatever it does, because P90 is by definition exceeded by 10 % of its own tokens.
The score ranks how far a neuron's upper tail moved between two samples of the *same* language, so
bursty neurons rank high; it is not a comparison across languages. Studies whose neurons.json says
``act_prob_90p`` without a ``method_version`` ran this method (``stored_method``).

``random``: for each language, as many neurons per layer as a reference method's set, drawn
uniformly without replacement with a generator seeded from the study seed and the language
(``derive_seed``). It is the control for every later stage; ``control.json`` holds these sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from lab.core.errors import BadInput
from lab.core.registry import Registry
from lab.neurons.sets import NeuronSets, random_like

if TYPE_CHECKING:  # torch is imported inside the methods: `neuron-pilot new` reads METHODS without it
    import torch

    from lab.neurons.activations import ActivationStats

ENTROPY_DECIMALS = 12
MIN_MARGIN = 0.05  # act_prob_90p: a kept neuron's share above τ in its language exceeds its share elsewhere by this
TWO_SAMPLE_METHODS = ("act_prob_90p_published",)  # need a threshold and a score sample per language (2+ blocks)
METHOD_VERSIONS = {"act_prob_90p": 2, "act_prob_90p_published": 1}  # recorded as params.method_version


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    params: tuple[str, ...]  # the [identify] keys it reads
    select: Callable[[ActivationStats, dict[str, Any], int], tuple[NeuronSets, dict[str, Any]]]


METHODS: Registry[Method] = Registry("identification method")


def method(name: str, description: str, params: tuple[str, ...] = ()) -> Callable[..., Any]:
    """Decorator: register `fn(stats, params, seed) -> (sets, details)` as an identification method."""
    def deco(fn: Callable[[ActivationStats, dict[str, Any], int], tuple[NeuronSets, dict[str, Any]]]) -> Any:
        METHODS.register(name)(Method(name, description, params, fn))
        return fn
    return deco


# ---- helpers -------------------------------------------------------------------------------------

def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def count_for(rate: float, total: int) -> int:
    """rate·total rounded half up, at least 1 and at most total."""
    return max(1, min(total, round_half_up(rate * total)))


def kth_smallest(values: torch.Tensor, rate: float) -> float:
    """The `rate` quantile as the k-th smallest value, k = count_for(rate, N)."""
    import torch

    flat = values.reshape(-1)
    return float(torch.kthvalue(flat, count_for(rate, flat.numel())).values)


def as_pairs(flat_index: torch.Tensor, d_ff: int) -> list[list[int]]:
    """Flat (layer·d_ff + index) positions → sorted [[layer, index], ...]."""
    idx = sorted(int(i) for i in flat_index.reshape(-1).tolist())
    return [[i // d_ff, i % d_ff] for i in idx]


def jaccard(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]]) -> tuple[float, int]:
    """(|A ∩ B| / |A ∪ B|, |A ∪ B|); two empty sets give (0.0, 0)."""
    sa = {(int(x), int(y)) for x, y in a}
    sb = {(int(x), int(y)) for x, y in b}
    union = len(sa | sb)
    return (len(sa & sb) / union if union else 0.0), union


def params_for(name: str, identify_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The [identify] values a method reads (what neurons.json records as its params)."""
    return {k: identify_cfg[k] for k in METHODS.get(name).params if k in identify_cfg}


# ---- methods -------------------------------------------------------------------------------------

def lape_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy over languages of p normalised per neuron; p is [L, F, n] float64."""
    import torch

    total = p.sum(-1, keepdim=True)
    q = torch.where(total > 0, p / torch.where(total > 0, total, torch.ones_like(total)), torch.zeros_like(p))
    logs = torch.where(q > 0, torch.log(torch.where(q > 0, q, torch.ones_like(q))), torch.zeros_like(q))
    return -(q * logs).sum(-1)


@method("lape", "language activation probability entropy (Tang et al. 2024)",
        ("top_rate", "filter_rate", "activation_bar_ratio"))
def lape(stats: ActivationStats, params: dict[str, Any], seed: int) -> tuple[NeuronSets, dict[str, Any]]:
    import torch

    p = stats.act_prob.permute(1, 2, 0).contiguous()  # [L, F, n]
    n_layers, d_ff, _ = p.shape
    filter_value = kth_smallest(p, float(params.get("filter_rate", 0.95)))
    bar = kth_smallest(p, float(params.get("activation_bar_ratio", 0.95)))
    entropy = lape_entropy(p).reshape(-1)
    eligible = (p > filter_value).any(-1).reshape(-1)
    candidates = torch.nonzero(eligible).reshape(-1)  # ascending flat index
    keep_n = min(count_for(float(params.get("top_rate", 0.01)), n_layers * d_ff), int(candidates.numel()))
    key = torch.round(entropy[candidates] * 10**ENTROPY_DECIMALS).to(torch.int64)
    order = torch.sort(key, stable=True).indices[:keep_n]
    kept = candidates[order]
    flat_p = p.reshape(-1, p.shape[-1])
    sets: NeuronSets = {}
    for k, lang in enumerate(stats.languages):
        mine = kept[flat_p[kept, k] > bar] if keep_n else kept
        sets[lang] = as_pairs(mine, d_ff)
    details = {"filter_value": filter_value, "activation_bar": bar, "kept": keep_n,
               "eligible": int(candidates.numel())}
    return sets, details


@method("act_prob_90p", "share of a language's tokens above the neuron's P90 over all languages pooled, against "
        "its share elsewhere (method_version 2)", ("top_m",))
def act_prob_90p(stats: ActivationStats, params: dict[str, Any], seed: int) -> tuple[NeuronSets, dict[str, Any]]:
    import torch

    if stats.above_pooled is None or stats.threshold_pooled is None:
        raise BadInput("these activation statistics predate the pooled P90 counts that act_prob_90p (method_version 2) "
                       "needs; run the identify stage again, or use act_prob_90p_published")
    _, margin = pooled_margins(stats)
    n_layers, d_ff = stats.n_layers, stats.d_ff
    m = count_for(float(params.get("top_m", 0.00125)), n_layers * d_ff)
    sets: NeuronSets = {}
    eligible: dict[str, int] = {}
    for k, lang in enumerate(stats.languages):
        mk = margin[k].reshape(-1)
        ok = torch.nonzero(mk >= MIN_MARGIN).reshape(-1)  # ascending flat index
        key = torch.round(mk[ok] * 10**ENTROPY_DECIMALS).to(torch.int64)
        order = ok[torch.sort(-key, stable=True).indices[:m]]  # largest margin first; ties by flat index
        sets[lang] = as_pairs(order, d_ff)
        eligible[lang] = int(ok.numel())
    details = {"method_version": METHOD_VERSIONS["act_prob_90p"], "m": m, "min_margin": MIN_MARGIN,
               "eligible": eligible, "threshold": "pooled P90 over all languages (upper edge of its histogram bin)"}
    return sets, details


def pooled_margins(stats: ActivationStats) -> tuple[torch.Tensor, torch.Tensor]:
    """(share [n, L, F], margin [n, L, F]) of act_prob_90p: each language's share of tokens above the pooled
    P90, and that share minus the share over all other languages' tokens pooled (float64)."""
    assert stats.above_pooled is not None
    above = stats.above_pooled.double()
    tokens = stats.tokens.double().view(-1, 1, 1)
    share = above / tokens
    other_above = above.sum(0, keepdim=True) - above
    other_tokens = (tokens.sum() - tokens).clamp(min=1)
    return share, share - other_above / other_tokens


def stored_method(document: Mapping[str, Any]) -> str:
    """The method a stored neurons.json was made with: ``act_prob_90p`` without a ``method_version``
    ran before version 2 existed, so it means ``act_prob_90p_published``."""
    name = str(document.get("method", ""))
    version = (document.get("params") or {}).get("method_version")
    if name == "act_prob_90p" and version is None:
        return "act_prob_90p_published"
    return name


@method("act_prob_90p_published", "the published code: share of a language's tokens above the neuron's own P90 in "
        "that language, on a disjoint sample (Mondal et al. 2025; flawed, kept for reproduction)",
        ("top_m",))
def act_prob_90p_published(stats: ActivationStats, params: dict[str, Any], seed: int) -> tuple[NeuronSets, dict[str, Any]]:
    import torch

    short = [lang for lang, n in zip(stats.languages, stats.score_tokens.tolist()) if n == 0]
    if short:
        raise BadInput(f"act_prob_90p_published needs two samples per language (threshold and score) but {', '.join(short)} "
                       f"had a single block; raise [corpus] tokens_per_language to at least 2 x block_size")
    n_layers, d_ff = stats.n_layers, stats.d_ff
    m = count_for(float(params.get("top_m", 0.00125)), n_layers * d_ff)
    sets: NeuronSets = {}
    for k, lang in enumerate(stats.languages):
        counts = stats.above90[k].reshape(-1)
        order = torch.sort(-counts, stable=True).indices[:m]  # most tokens above first; ties by flat index
        sets[lang] = as_pairs(order, d_ff)
    details = {"method_version": METHOD_VERSIONS["act_prob_90p_published"], "m": m, "threshold_tokens": (stats.tokens - stats.score_tokens).tolist(),
               "score_tokens": stats.score_tokens.tolist()}
    return sets, details


@method("random", "random neurons with a reference method's per-layer counts (the control)", ("reference",))
def random_control(stats: ActivationStats, params: dict[str, Any], seed: int) -> tuple[NeuronSets, dict[str, Any]]:
    ref_name = str(params.get("reference", "lape"))
    if ref_name == "random":
        raise BadInput("the random control needs a reference method other than random (lape, act_prob_90p or "
                       "act_prob_90p_published)")
    reference, _ = METHODS.get(ref_name).select(stats, params, seed)
    return random_like(reference, stats.n_layers, stats.d_ff, seed), {"reference": ref_name}


def identify(stats: ActivationStats, name: str, params: Mapping[str, Any], seed: int) -> tuple[NeuronSets, dict[str, Any]]:
    """Run a registered method: (sets, details such as the cut-offs it computed)."""
    return METHODS.get(name).select(stats, dict(params), seed)


def neurons_document(name: str, params: Mapping[str, Any], sets: NeuronSets, **extra: Any) -> dict[str, Any]:
    """neurons.json / control.json: {"method", "params", "languages"} (DESIGN.md)."""
    return {"method": name, "params": {**params, **extra}, "languages": sets}


def overlap_rows(sets: NeuronSets, languages: Sequence[str], condition: str) -> list[dict[str, Any]]:
    """Metric rows of the pairwise Jaccard overlap, language = "a|b" in study order."""
    rows = []
    for i, a in enumerate(languages):
        for b in languages[i + 1:]:
            j, union = jaccard(sets.get(a, []), sets.get(b, []))
            rows.append(dict(name="overlap_jaccard", language=f"{a}|{b}", condition=condition, value=j, n=union))
    return rows
