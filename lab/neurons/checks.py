"""Reproducibility checks on identified neurons: split-half stability and the perplexity-change matrix.

Why: a neuron set is only worth intervening on if (1) identifying it again on other text of the same
language gives (mostly) the same neurons, and (2) switching it off hurts its own language more than
any other language's set does, and more than a random set with the same per-layer counts does.

- Split-half stability: Jaccard overlap |S1 ∩ S2| / |S1 ∪ S2| of the sets identified on two disjoint
  halves of a language's identification corpus (and of each half with the full-corpus set), beside
  the same overlap for random control sets drawn with different seeds (the chance floor).
- PPXC (perplexity-change matrix): on held-out text of every language B, mean token NLL and
  perplexity with no intervention, then with language A's neurons set to zero at every position.
  PPXC(A, B) = PPL_B(A off) − PPL_B(baseline). Every run scores exactly the same token ids.

Conventions (docs/reproduce.md): row A = whose neurons were switched off, column B = language scored.
Diagonal dominance of B: B's own set raises B's NLL strictly more than every other language's set,
and by more than zero. Control ratio of B: own-language PPL increase of the identified set divided by
that of the random control set, with the denominator floored at CONTROL_FLOOR × baseline PPL so
the ratio stays finite when the random set changes nothing. Both are diagnostics only: the
reproduce gate decides on PPXC.over_control (own-language increase minus the control's, with a
paired block bootstrap interval, lab.neurons.ppl_interval), which set size does not confound.

Identification itself is never re-implemented here: the halves go through lab.neurons.activations
(collect_stats) and lab.neurons.identify (identify, random_like, jaccard), the identify stage's own code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import torch
from torch import nn

from lab.neurons.activations import ActivationStats
from lab.neurons.collect import StatsCheckpoint, collect_stats
from lab.model.adapters import ArchitectureAdapter
from lab.inputs.corpus import BlockFeed, corpus_feed
from lab.core.errors import BadInput, StageFailed
from lab.neurons.identify import TWO_SAMPLE_METHODS, identify, jaccard
from lab.neurons.interventions import intervene
from lab.neurons.sets import LayerNeurons, NeuronSets, neurons_by_layer, random_like
from lab.neurons.ppl_interval import OverControl, increase_over_control

# A held-out text as blocks of token ids (1-D LongTensors; lengths may differ).
Blocks = Sequence[torch.Tensor]
# A neuron set as stored in neurons.json: [[layer, index], ...]
NeuronPairs = Sequence[Sequence[int]]

CONTROL_FLOOR = 1e-3  # denominator floor of the control ratio, as a share of the baseline PPL


# ---- split-half stability ------------------------------------------------------------------------

HALF_SALT = "reproduce/half"  # random_like salt of the half controls: f"{HALF_SALT}{h}" (h = 1, 2)


def split_point(n_tokens: int, block_size: int, method: str) -> int:
    """Tokens in half 1: the first ⌊n_blocks/2⌋ whole blocks; half 2 is the rest (disjoint).

    Each half must hold as many blocks as the method needs on its own (act_prob_90p_published splits every
    language's blocks again into a threshold and a score sample)."""
    n_blocks = -(-n_tokens // block_size)
    per_half = 2 if method in TWO_SAMPLE_METHODS else 1
    if n_blocks // 2 < per_half:
        need = 2 * per_half * block_size
        raise BadInput(f"split-half stability needs at least {2 * per_half} blocks per language for {method}, but "
                       f"[corpus] tokens_per_language = {n_tokens} gives {n_blocks} block(s) of {block_size}; "
                       f"raise tokens_per_language to at least {need} or lower block_size")
    return (n_blocks // 2) * block_size


def corpus_halves(tokenizer: Any, corpus: str, languages: Sequence[str], n_tokens: int, block_size: int,
                  seed: int, method: str) -> tuple[list[BlockFeed], list[BlockFeed]]:
    """The identify stage's token stream of every language, cut into two disjoint halves."""
    half = split_point(n_tokens, block_size, method)
    first = [corpus_feed(tokenizer, corpus, lang, half, block_size, seed) for lang in languages]
    second = [corpus_feed(tokenizer, corpus, lang, n_tokens - half, block_size, seed, skip_tokens=half)
              for lang in languages]
    return first, second


COUNT_ONLY_METHODS = ("lape",)  # methods that read only the exact activation counts, not the histograms
MIN_BINS = 16


def half_bins(method: str, bins: int) -> int:
    """Histogram bins for a half's statistics pass. LAPE reads only exact counts (act_prob), so its
    halves skip the fine histogram (≈ a third of the pass on small models); other methods keep the
    identify stage's bins because their thresholds come from the histogram."""
    return MIN_BINS if method in COUNT_ONLY_METHODS else bins


def half_stats(model: nn.Module, adapter: ArchitectureAdapter, feeds: Sequence[BlockFeed], *, bins: int,
               batch_size: int, device: Optional[torch.device] = None,
               checkpoint: Optional[StatsCheckpoint] = None,
               progress: Optional[Callable[[str, int, int], None]] = None) -> ActivationStats:
    """Activation statistics of one half, by the identify stage's own statistics pass."""
    return collect_stats(model, adapter, feeds, bins=bins, batch_size=batch_size, device=device,
                         checkpoint=checkpoint, progress=progress)


def identify_half(stats: ActivationStats, method: str, params: Mapping[str, Any], seed: int) -> NeuronSets:
    """The neuron sets of one half: the same registered method with the same parameters."""
    sets, _ = identify(stats, method, params, seed)
    return sets


def half_controls(half1: NeuronSets, half2: NeuronSets, n_layers: int, d_ff: int,
                  seed: int) -> tuple[NeuronSets, NeuronSets]:
    """Random sets with each half's per-layer counts, drawn with a different seed per half (and language)."""
    return (random_like(half1, n_layers, d_ff, seed, salt=f"{HALF_SALT}1"),
            random_like(half2, n_layers, d_ff, seed, salt=f"{HALF_SALT}2"))


@dataclass
class Stability:
    """The sets of both halves beside the full-corpus sets, and their overlaps."""

    languages: list[str]
    half1: NeuronSets
    half2: NeuronSets
    control1: NeuronSets
    control2: NeuronSets
    full: NeuronSets
    full_control: NeuronSets

    def pairs(self) -> dict[str, dict[str, tuple[float, int]]]:
        """language → comparison → (Jaccard, |union|)."""
        out = {}
        for lang in self.languages:
            g = lambda sets: sets.get(lang, [])  # noqa: E731
            out[lang] = {
                "identified": jaccard(g(self.half1), g(self.half2)),
                "control": jaccard(g(self.control1), g(self.control2)),
                "identified_half1": jaccard(g(self.half1), g(self.full)),
                "identified_half2": jaccard(g(self.half2), g(self.full)),
                "control_half1": jaccard(g(self.control1), g(self.full_control)),
                "control_half2": jaccard(g(self.control2), g(self.full_control)),
            }
        return out

    def rows(self) -> list[dict[str, Any]]:
        """stability_jaccard (identified / control: half vs half) and stability_jaccard_full (half vs full)."""
        rows = []
        for lang, comp in self.pairs().items():
            for cond, (value, union) in comp.items():
                name = "stability_jaccard" if cond in ("identified", "control") else "stability_jaccard_full"
                rows.append(dict(name=name, language=lang, condition=cond, value=value, n=union))
            for h, sets in (("half1", self.half1), ("half2", self.half2)):
                rows.append(dict(name="neurons_half", language=lang, condition=h, value=len(sets.get(lang, [])),
                                 n=len(sets.get(lang, []))))
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "languages": list(self.languages),
            "jaccard": {lang: {k: v for k, (v, _) in comp.items()} for lang, comp in self.pairs().items()},
            "union": {lang: {k: n for k, (_, n) in comp.items()} for lang, comp in self.pairs().items()},
            "half1": self.half1, "half2": self.half2,
            "control_half1": self.control1, "control_half2": self.control2,
            "convention": "half1 = first floor(n_blocks/2) blocks of each language's identification stream, "
                          "half2 = the rest; control_halfN = random sets with halfN's per-layer counts",
        }


# ---- scoring -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Score:
    """Summed token NLL (nats) over `tokens` predicted tokens, and the same per block (in block order),
    so that a block bootstrap can resample blocks."""

    nll_sum: float
    tokens: int
    block_nll: tuple[float, ...] = ()
    block_tokens: tuple[int, ...] = ()

    @property
    def nll(self) -> float:
        return self.nll_sum / self.tokens if self.tokens else float("nan")

    @property
    def ppl(self) -> float:
        return math.exp(self.nll) if self.tokens else float("nan")

    def to_json(self) -> list[Any]:
        return [self.nll_sum, self.tokens, list(self.block_nll), list(self.block_tokens)]

    @classmethod
    def from_json(cls, obj: Sequence[Any]) -> "Score":
        blocks = (tuple(float(x) for x in obj[2]), tuple(int(x) for x in obj[3])) if len(obj) >= 4 else ((), ())
        return cls(float(obj[0]), int(obj[1]), *blocks)


class NonFiniteScore(StageFailed):
    """The model produced NaN or infinite logits or losses while scoring: never a score, always a stop."""


def _batches(blocks: Blocks, batch_size: int) -> Iterable[list[torch.Tensor]]:
    items = [b.reshape(-1) for b in blocks]
    items = [b for b in items if b.numel() >= 2]  # a block of one token predicts nothing
    for i in range(0, len(items), batch_size):
        yield items[i:i + batch_size]


@torch.inference_mode()
def score_blocks(model: nn.Module, blocks: Blocks, *, batch_size: int = 8,
                 device: Optional[torch.device] = None, where: str = "") -> Score:
    """Next-token NLL of every block, summed in float64 (in total and per block). Blocks shorter than the
    longest in a batch are right-padded and the padding is masked out of both attention and loss, so
    the scored token ids depend only on the blocks — never on an intervention.

    Non-finite logits or losses raise NonFiniteScore naming `where` (pass and language) and the batch."""
    device = device or next(model.parameters()).device
    per_block: list[float] = []
    counts: list[int] = []
    batches = list(_batches(blocks, batch_size))
    for k, batch in enumerate(batches, start=1):
        lengths = [int(b.numel()) for b in batch]
        width = max(lengths)
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for row, (b, n) in enumerate(zip(batch, lengths)):
            ids[row, :n] = b.to(torch.long)
            mask[row, :n] = 1
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = ids[:, 1:]
        keep = mask[:, 1:].bool()
        _finite(torch.isfinite(logits).all(dim=-1), keep, "logits", where, k, len(batches))
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                reduction="none").reshape(target.shape)
        _finite(torch.isfinite(nll), keep, "losses", where, k, len(batches))
        per_block += nll.double().masked_fill(~keep, 0.0).sum(dim=1).tolist()
        counts += keep.sum(dim=1).tolist()
    return Score(math.fsum(per_block), sum(counts), tuple(per_block), tuple(int(c) for c in counts))


def _finite(ok: torch.Tensor, keep: torch.Tensor, what: str, where: str, batch: int, batches: int) -> None:
    bad = int((~ok & keep).sum())
    if bad:
        raise NonFiniteScore(f"non-finite {what} (NaN or inf) at {bad} scored token(s) in the perplexity pass "
                             f"{where or '(unnamed)'}, batch {batch} of {batches}; nothing was scored as a loss — "
                             f"the model is numerically unstable at this dtype: load it in float32 (or bfloat16) "
                             f"and check its weights")


# ---- the perplexity-change matrix ----------------------------------------------------------------

@dataclass
class PPXC:
    """Scores of every pass: baseline[B], identified[A][B], control[A][B] (A = neurons off)."""

    languages: list[str]
    baseline: dict[str, Score]
    identified: dict[str, dict[str, Score]]
    control: dict[str, dict[str, Score]]
    set_sizes: dict[str, dict[str, int]] = field(default_factory=dict)  # condition -> A -> |set|

    def _grid(self, cond: str) -> dict[str, dict[str, Score]]:
        return {"identified": self.identified, "control": self.control}[cond]

    def ppl_delta(self, cond: str) -> list[list[float]]:
        """Row A, column B: PPL_B(A off) − PPL_B(baseline)."""
        grid = self._grid(cond)
        return [[grid[a][b].ppl - self.baseline[b].ppl for b in self.languages] for a in self.languages]

    def nll_delta(self, cond: str) -> list[list[float]]:
        """Row A, column B: mean NLL_B(A off) − mean NLL_B(baseline), in nats per token."""
        grid = self._grid(cond)
        return [[grid[a][b].nll - self.baseline[b].nll for b in self.languages] for a in self.languages]

    def diagonal_dominant(self, cond: str = "identified") -> dict[str, bool]:
        """Per scored language B: is B's own set the one that raises B's NLL most (strictly, and > 0)?"""
        delta = self.nll_delta(cond)
        out = {}
        for j, b in enumerate(self.languages):
            own = delta[j][j]
            others = [delta[i][j] for i in range(len(self.languages)) if i != j]
            out[b] = own > 0 and all(own > o for o in others)
        return out

    def control_ratio(self) -> dict[str, float]:
        """Per language: own-language PPL increase, identified set / random control set (floored)."""
        ident, ctrl = self.ppl_delta("identified"), self.ppl_delta("control")
        out = {}
        for j, b in enumerate(self.languages):
            floor = CONTROL_FLOOR * self.baseline[b].ppl
            out[b] = ident[j][j] / max(ctrl[j][j], floor)
        return out

    def over_control(self, lang: str, *, confidence: float, seed: int) -> OverControl:
        """Language `lang`'s own-set PPL increase minus its control's, with a paired block bootstrap CI."""
        base, off, ctrl = self.baseline[lang], self.identified[lang][lang], self.control[lang][lang]
        if not base.block_tokens or not (base.block_tokens == off.block_tokens == ctrl.block_tokens):
            raise ValueError(f"per-block scores of {lang} are missing or differ between passes; rerun the stage fresh")
        return increase_over_control(base.block_tokens, base.block_nll, off.block_nll, ctrl.block_nll,
                                     confidence=confidence, seed=seed)

    def blocks_json(self) -> dict[str, Any]:
        """ppxc_blocks.json: every pass's summed NLL per held-out block, for block bootstraps."""
        keys = pass_keys(self.languages)
        grids = {"baseline": {"": self.baseline}, "identified": self.identified, "control": self.control}
        passes = {}
        for key in keys:
            cond, _, a = key.partition(":")
            row = grids[cond][a] if a else grids[cond][""]
            passes[key] = {b: list(row[b].block_nll) for b in self.languages}
        return {"languages": list(self.languages),
                "block_tokens": {b: list(self.baseline[b].block_tokens) for b in self.languages},
                "block_nll_sum": passes,
                "convention": "block_nll_sum[pass][B][i] = summed next-token NLL (nats) of held-out block i of "
                              "language B in that pass ('baseline', 'identified:A' = A's neurons off, 'control:A' "
                              "= A's random control off); block_tokens[B][i] = its predicted tokens"}

    def to_json(self) -> dict[str, Any]:
        """ppxc.json (DESIGN.md) plus NLL deltas, token counts and the diagnostics derived from them."""
        return {
            "languages": list(self.languages),
            "baseline_ppl": {b: self.baseline[b].ppl for b in self.languages},
            "identified": self.ppl_delta("identified"),
            "control": self.ppl_delta("control"),
            "baseline_nll": {b: self.baseline[b].nll for b in self.languages},
            "nll_delta_identified": self.nll_delta("identified"),
            "nll_delta_control": self.nll_delta("control"),
            "tokens": {b: self.baseline[b].tokens for b in self.languages},
            "set_sizes": self.set_sizes,
            "diagonal_dominant": self.diagonal_dominant("identified"),
            "diagonal_dominant_control": self.diagonal_dominant("control"),
            "control_ratio": self.control_ratio(),
            "convention": "row A = language whose neurons were set to zero, column B = language scored; "
                          "values = PPL_B(A off) - PPL_B(baseline)",
        }


def pass_keys(languages: Sequence[str]) -> list[str]:
    """The scoring passes in order: 'baseline', then 'identified:A' and 'control:A' for every A."""
    keys = ["baseline"]
    for a in languages:
        keys += [f"identified:{a}", f"control:{a}"]
    return keys


def compute_ppxc(model: nn.Module, adapter: ArchitectureAdapter, heldout: Mapping[str, Blocks],
                 identified: Mapping[str, NeuronPairs], control: Mapping[str, NeuronPairs], *,
                 batch_size: int = 8, done: Optional[Mapping[str, Mapping[str, Sequence[float]]]] = None,
                 on_pass: Optional[Callable[[int, int, str, dict[str, Score]], None]] = None) -> PPXC:
    """Score every held-out language under every pass (see pass_keys).

    `done` holds finished passes (key → {B: [nll_sum, tokens]}) from a checkpoint; they are not rerun.
    `on_pass(i, total, key, scores)` is called after each pass (for progress and checkpointing).
    """
    languages = list(heldout)
    missing = [a for a in languages if a not in identified or a not in control]
    if missing:
        raise BadInput(f"no neuron set for {', '.join(missing)} in the identify stage's output; "
                       f"re-run the identify stage for every language in [languages] all")
    sets = {"identified": {a: neurons_by_layer(identified[a]) for a in languages},
            "control": {a: neurons_by_layer(control[a]) for a in languages}}
    results: dict[str, dict[str, Score]] = {}
    keys = pass_keys(languages)
    for i, key in enumerate(keys):
        if done and key in done:
            results[key] = {b: Score.from_json(v) for b, v in done[key].items()}
        else:
            cond, _, a = key.partition(":")
            neurons: LayerNeurons = sets[cond][a] if a else {}
            with intervene(model, adapter, neurons, "zero"):
                results[key] = {b: score_blocks(model, heldout[b], batch_size=batch_size,
                                                where=f"'{key}' (condition) on language {b}") for b in languages}
        if on_pass is not None:
            on_pass(i + 1, len(keys), key, results[key])
    return PPXC(
        languages=languages,
        baseline=results["baseline"],
        identified={a: results[f"identified:{a}"] for a in languages},
        control={a: results[f"control:{a}"] for a in languages},
        set_sizes={cond: {a: sum(len(v) for v in s[a].values()) for a in languages} for cond, s in sets.items()},
    )
