"""Stage `reproduce`: split-half stability of the neuron sets and the perplexity-change matrix.

Passes, in order, each checkpointed when it finishes (so an interrupted stage resumes after it):
``half1`` and ``half2`` (the identify stage's statistics pass over each half of the identification
corpus, then its method), then the PPXC passes of lab.neurons.checks.pass_keys over the held-out text.
Then the own-language perplexity increase over the random control per language, with a paired block
bootstrap interval (lab.neurons.ppl_interval). Writes ``stability.json``, ``ppxc.json`` and
``ppxc_blocks.json`` (per-block NLL of every pass); metric names and conventions are in docs/reproduce.md.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any, Optional, Sequence

from lab.core import faults
from lab.neurons.activations import ActivationStats
from lab.neurons.collect import StatsCheckpoint, feeds_fingerprint
from lab.core.artifacts import atomic_write, atomic_write_json
from lab.neurons.checks import (PPXC, Score, Stability, compute_ppxc, corpus_halves, half_bins, half_controls, half_stats,
                        identify_half, pass_keys)
from lab.inputs.corpus import heldout_blocks, heldout_folder
from lab.core.errors import BadInput
from lab.neurons.identify import params_for, stored_method
from lab.neurons.ppl_interval import RESAMPLES, OverControl
from lab.gates.base import criteria_for
from lab.gates.intervals import bonferroni_confidence
from lab.model.loading import LoadedModel, load_for_stage
from lab.core.resources import run_halving
from lab.stages import STAGES
from lab.stages.context import StageContext
from lab.stages.stopping import stop_at_next_forward


PPXC_BATCHES = "ppxc_scoring"  # what lab.core.resources halves in the perplexity passes
DEFAULT_CONFIDENCE = 0.95  # when the protocol has no `confidence` criteria key


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


class Progress:
    """One progress stream for the whole stage: unit = passes, label says where inside the pass;
    `fraction` (of the whole stage, counting the languages read inside the running pass) and
    `unit_label` (the pass now) let a reader show progress between pass boundaries."""

    def __init__(self, ctx: StageContext, total: int, languages: Sequence[str] = ()) -> None:
        self.ctx, self.total, self.done, self.languages = ctx, total, 0, list(languages)

    def inside(self, name: str, lang: str, tokens: int, of: int) -> None:
        i = self.languages.index(lang) if lang in self.languages else 0
        within = (i + (tokens / of if of else 0.0)) / max(len(self.languages), 1)
        self.ctx.progress(self.done, self.total, "passes", label=f"{name}: {lang} {tokens}/{of} tokens",
                          fraction=round(min((self.done + within) / self.total, 1.0), 4),
                          unit_label=f"pass {self.done + 1}/{self.total} {name}")

    def finished(self, name: str) -> None:
        self.done += 1
        self.ctx.progress(self.done, self.total, "passes", label=f"{name} done", force=True,
                          fraction=round(self.done / self.total, 4), unit_label=f"pass {self.done}/{self.total} {name}")


def _half(ctx: StageContext, loaded: LoadedModel, h: int, method: str, feeds: list[Any],
          fingerprint: dict[str, Any], progress: Progress) -> tuple[ActivationStats, bool]:
    """Statistics of half h, from its finished checkpoint if there is one; True when computed now."""
    ident = ctx.cfg["identify"]
    done_path = ctx.checkpoint_dir / f"half{h}.safetensors"
    fp = {**fingerprint, "feeds": feeds_fingerprint(feeds), "half": h, "method": method}
    if done_path.is_file():
        stats = ActivationStats.load(done_path)
        if stats.meta.get("fingerprint") == _digest(fp):
            return stats, False
    checkpoint = StatsCheckpoint(ctx.checkpoint_dir / f"half{h}", ident["checkpoint_every"], fp,
                                 stop_requested=lambda: ctx.stop_requested, check_stop=ctx.check_stop)
    stats = half_stats(loaded.model, loaded.adapter, feeds, bins=half_bins(method, int(ident["histogram_bins"])),
                       batch_size=int(ident["batch_size"]), device=loaded.device, checkpoint=checkpoint,
                       progress=lambda lang, done, total: progress.inside(f"half{h}", lang, done, total))
    stats.meta["fingerprint"] = _digest(fp)
    with faults.checkpoint_save():  # tests only: kills around the save
        atomic_write(done_path, stats.save)
    return stats, True


def _heldout(ctx: StageContext, tokenizer: Any, languages: list[str]) -> dict[str, list[Any]]:
    corpus = ctx.cfg["corpus"]
    folder = heldout_folder(ctx.cfg)
    missing = [lang for lang in languages
               if not (folder / f"{lang}.txt").is_file() and not (folder / f"{lang}.jsonl").is_file()]
    if missing:
        raise BadInput(f"held-out folder {folder} has no text for {', '.join(missing)}; add {missing[0]}.txt "
                       f"(text not used for identification) so the perplexity-change matrix can score it")
    want = int(corpus["heldout_tokens"])
    blocks = {lang: heldout_blocks(tokenizer, folder, lang, want, int(corpus["block_size"]), allow_fewer=True)
              for lang in languages}
    empty = [lang for lang, bl in blocks.items() if not any(len(b) >= 2 for b in bl)]
    if empty:
        raise BadInput(f"held-out text for {', '.join(empty)} has no block of 2 or more tokens, so nothing can be "
                       f"scored; add text to {folder / (empty[0] + '.txt')}")
    short = {lang: sum(len(b) for b in bl) for lang, bl in blocks.items() if sum(len(b) for b in bl) < want}
    if short:
        ctx.log("held-out text shorter than [corpus] heldout_tokens = " + str(want) + ": "
                + ", ".join(f"{lang} {n}" for lang, n in short.items()) + " tokens scored", level="warning")
    return blocks


class PassCheckpoint:
    """Finished PPXC passes as JSON (key → {language: Score.to_json()}, per-block sums included), valid for
    one fingerprint."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = path, fingerprint

    def load(self) -> dict[str, dict[str, list[float]]]:
        try:
            obj = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return obj.get("passes", {}) if obj.get("fingerprint") == self.fingerprint else {}

    def save(self, passes: dict[str, dict[str, list[float]]]) -> None:
        with faults.checkpoint_save():  # tests only: kills around the save
            atomic_write_json(self.path, {"fingerprint": self.fingerprint, "passes": passes})


def _ppxc_rows(r: PPXC) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tokens = {b: r.baseline[b].tokens for b in r.languages}
    for b in r.languages:
        rows.append(dict(name="ppl_baseline", language=b, condition="baseline", value=r.baseline[b].ppl, n=tokens[b]))
        rows.append(dict(name="nll_baseline", language=b, condition="baseline", value=r.baseline[b].nll, n=tokens[b]))
    for cond, prefix in (("identified", "off"), ("control", "control-off")):
        ppl, nll = r.ppl_delta(cond), r.nll_delta(cond)
        for i, a in enumerate(r.languages):
            for j, b in enumerate(r.languages):
                rows.append(dict(name="ppxc", language=b, condition=f"{prefix}:{a}", value=ppl[i][j], n=tokens[b]))
                rows.append(dict(name="ppxc_nll", language=b, condition=f"{prefix}:{a}", value=nll[i][j], n=tokens[b]))
        for b, dominant in r.diagonal_dominant(cond).items():
            rows.append(dict(name="ppxc_diagonal_dominant", language=b, condition=cond, value=1.0 if dominant else 0.0,
                             n=r.set_sizes[cond][b]))
    for b, ratio in r.control_ratio().items():
        rows.append(dict(name="ppxc_control_ratio", language=b, condition="identified", value=ratio, n=tokens[b]))
    return rows


def _over_rows(over: dict[str, OverControl]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for b, o in over.items():
        rows.append(dict(name="ppl_increase_over_control", language=b, condition="identified", value=o.value_pct,
                         ci_low=o.ci_low, ci_high=o.ci_high, n=o.blocks))
        rows.append(dict(name="ppl_increase_pct", language=b, condition="identified", value=o.identified_pct,
                         n=o.tokens))
        rows.append(dict(name="ppl_increase_pct", language=b, condition="control", value=o.control_pct, n=o.tokens))
    return rows


def _lang_seed(seed: int, lang: str) -> int:
    return zlib.crc32(f"{seed}/reproduce/bootstrap/{lang}".encode())


@STAGES.register("reproduce")
def run(ctx: StageContext) -> None:
    cfg = ctx.cfg
    corpus, ident = cfg["corpus"], cfg["identify"]
    languages: list[str] = list(cfg["languages"]["all"])
    neurons = ctx.read_json("identify", "neurons.json")
    control = ctx.read_json("identify", "control.json")
    method = stored_method(neurons)  # an unversioned act_prob_90p ran the published method
    params = params_for(method, ident)
    full, full_control = neurons["languages"], control["languages"]
    folder = heldout_folder(cfg)  # a missing held-out folder is the user's to fix, before the model loads
    if not str(corpus["path"]).startswith("hf:") and folder.resolve() == Path(corpus["path"]).resolve():
        raise BadInput(f"[corpus] heldout is the identification corpus ({folder}); the perplexity-change matrix "
                       f"must score text not used for identification — point heldout at another folder")

    loaded = load_for_stage(ctx)
    tok = loaded.tokenizer
    n_tokens, block = int(corpus["tokens_per_language"]), int(corpus["block_size"])
    halves = corpus_halves(tok, corpus["path"], languages, n_tokens, block, ctx.seed, method)
    heldout = _heldout(ctx, tok, languages)
    keys = pass_keys(languages)
    progress = Progress(ctx, 2 + len(keys), languages)
    ctx.progress(0, progress.total, "passes", label="split halves", force=True)

    # 1. split-half stability
    prov = loaded.provenance
    fingerprint = {"revision": prov.get("revision"), "dtype": prov.get("dtype"), "device": str(loaded.device),
                   "batch_size": ident["batch_size"], "bins": ident["histogram_bins"], "languages": languages}
    sets = []
    for h, feeds in enumerate(halves, start=1):
        stats, fresh = _half(ctx, loaded, h, method, feeds, fingerprint, progress)
        sets.append(identify_half(stats, method, params, ctx.seed))
        n_layers, d_ff = stats.n_layers, stats.d_ff
        progress.finished(f"half{h}")
        if fresh:
            ctx.check_stop()  # right after a checkpoint: a stop request ends the stage here
    control1, control2 = half_controls(sets[0], sets[1], n_layers, d_ff, ctx.seed)
    stability = Stability(languages, sets[0], sets[1], control1, control2, full, full_control)
    ctx.write_json("stability.json", {"method": method, "params": params, "seed": ctx.seed,
                                      "tokens_per_half": [halves[0][0].n_tokens, halves[1][0].n_tokens],
                                      **stability.to_json()})
    ctx.metrics(stability.rows())

    # 2. the perplexity-change matrix on held-out text
    data_fp = _digest({lang: [b.tolist() for b in bl] for lang, bl in heldout.items()})
    cp = PassCheckpoint(ctx.checkpoint_dir / "ppxc_passes.json",
                        _digest({**fingerprint, "heldout": data_fp, "identified": full, "control": full_control,
                                 "scores": "per-block"}))
    done = cp.load()
    if done:
        ctx.log(f"resuming the perplexity-change matrix after {len(done)} finished pass(es)")

    def on_pass(i: int, total: int, key: str, scores: dict[str, Score]) -> None:
        progress.finished(key)
        if key not in done:
            done[key] = {b: s.to_json() for b, s in scores.items()}
            cp.save(done)
            ctx.check_stop()

    passes_before = progress.done

    def scored(size: int) -> PPXC:  # out of memory: finished passes stay in `done`, the rest rerun smaller
        progress.done = passes_before
        with faults.batches_of(loaded.model, loaded.device), \
                stop_at_next_forward(ctx, loaded.model, "a perplexity-change pass"):  # SIGTERM: at the next batch
            return compute_ppxc(loaded.model, loaded.adapter, heldout, full, full_control,
                                batch_size=size, done=done, on_pass=on_pass)

    result = run_halving(scored, int(ident["batch_size"]), PPXC_BATCHES, device=loaded.device)

    # 3. own-language increase over the control, with a paired block bootstrap interval per language
    targets = list(cfg["languages"]["targets"])
    family = float(criteria_for(ctx.study, ctx.protocol).get("confidence", DEFAULT_CONFIDENCE))
    level = bonferroni_confidence(family, len(targets))  # the reproduce gate reads them at this level
    over = {b: result.over_control(b, confidence=level, seed=_lang_seed(ctx.seed, b)) for b in languages}
    ctx.write_json("ppxc_blocks.json", result.blocks_json())
    ctx.write_json("ppxc.json", {**result.to_json(), "increase_over_control": {b: o.to_json() for b, o in over.items()},
                                 "interval": {"method": "paired percentile block bootstrap (scipy.stats.bootstrap)",
                                              "resamples": RESAMPLES, "confidence": level, "family_confidence": family,
                                              "multiplicity": "bonferroni", "family": targets}})
    ctx.metrics(_ppxc_rows(result) + _over_rows(over))

    pairs = stability.pairs()
    ctx.log("; ".join(f"{t}: stability {pairs[t]['identified'][0]:.2f} (control {pairs[t]['control'][0]:.2f}), "
                      f"own PPL {over[t].identified_pct:+.2f}% vs control {over[t].control_pct:+.2f}%: "
                      f"{over[t].value_pct:+.2f}% [{_fmt(over[t].ci_low)}, {_fmt(over[t].ci_high)}]" for t in targets))


def _fmt(x: Optional[float]) -> str:
    return "—" if x is None else f"{x:+.2f}%"
