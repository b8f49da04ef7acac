"""Stage `identify`: per-language activation statistics, the method's neuron sets and a random control.

Writes ``activation_stats.safetensors`` (lab.neurons.activations), ``neurons.json`` (the method's sets) and
``control.json`` (random sets with the same per-layer counts, method "random"), all hashed in the DB.
Resumes from its checkpoint when the worker restarts it after an interruption. Metric conventions
are in docs/identify.md.
"""

from __future__ import annotations

from typing import Any

from lab.neurons.batches import range_tokens
from lab.neurons.collect import StatsCheckpoint, collect_stats, feeds_fingerprint, refine_quantiles
from lab.inputs.corpus import HF_PREFIX, check_budget, corpus_feed
from lab.core.errors import BadInput
from lab.neurons.identify import METHODS, TWO_SAMPLE_METHODS, identify, neurons_document, overlap_rows, params_for
from lab.neurons.sets import per_layer_counts, random_like
from lab.neurons.shards import check_shards, merge_shards, shard_ranges
from lab.model.loading import load_for_stage
from lab.stages import STAGES
from lab.stages.context import StageContext, part_checkpoint_dir

MAX_TOKENS = 2**31 - 1  # histogram counts are int32 per language


def check_config(cfg: dict[str, Any]) -> None:
    """What a user can get wrong in [identify] / [corpus], refused before the model loads."""
    name = cfg["identify"]["method"]
    METHODS.get(name)
    if name == "random":
        raise BadInput("[identify] method = \"random\" is the control, not a method; use lape, act_prob_90p or "
                       "act_prob_90p_published")
    n, block = int(cfg["corpus"]["tokens_per_language"]), int(cfg["corpus"]["block_size"])
    if n > MAX_TOKENS:
        raise BadInput(f"[corpus] tokens_per_language = {n} is above {MAX_TOKENS}; lower it")
    if name in TWO_SAMPLE_METHODS and n <= block - 1:
        raise BadInput(f"{name} needs a threshold sample and a disjoint score sample: [corpus] "
                       f"tokens_per_language ({n}) must exceed one block's text (block_size − 1 = {block - 1} "
                       f"tokens after the BOS); raise it to at least {2 * block}")
    if int(cfg["identify"].get("shards", 1)) > 1 and name == "act_prob_90p_published":
        raise BadInput("[identify] shards > 1 cannot run act_prob_90p_published: its score sample counts tokens "
                       "above a threshold taken from the threshold sample, which does not merge; use shards = 1 "
                       "or method lape / act_prob_90p")


@STAGES.register("identify")
def run(ctx: StageContext) -> None:
    cfg = ctx.cfg
    check_config(cfg)
    ident, corpus = cfg["identify"], cfg["corpus"]
    languages: list[str] = list(cfg["languages"]["all"])
    method_name = ident["method"]
    n_tokens, block = int(corpus["tokens_per_language"]), int(corpus["block_size"])

    loaded = load_for_stage(ctx)
    tok = loaded.tokenizer
    if not str(corpus["path"]).startswith(HF_PREFIX):
        ctx.progress(0, len(languages), "languages", label="counting corpus tokens", force=True)
        check_budget(tok, corpus["path"], languages, n_tokens)
        ctx.check_stop()  # nothing computed yet: a stop request during the count ends the stage here
    feeds = [corpus_feed(tok, corpus["path"], lang, n_tokens, block, ctx.seed) for lang in languages]
    ctx.check_stop()

    prov = loaded.provenance
    fingerprint = {"feeds": feeds_fingerprint(feeds), "revision": prov.get("revision"), "dtype": prov.get("dtype"),
                   "device": str(loaded.device), "batch_size": ident["batch_size"],
                   "bins": ident["histogram_bins"], "languages": languages}
    checkpoint = StatsCheckpoint(ctx.checkpoint_dir / "stats", ident["checkpoint_every"], fingerprint,
                                 stop_requested=lambda: ctx.stop_requested, check_stop=ctx.check_stop)
    shards = int(ident.get("shards", 1))
    if shards > 1:
        check_shards(shards, [f.n_blocks for f in feeds], languages)
    ranges = (shard_ranges([f.n_blocks for f in feeds], int(ctx.part["index"]), shards)
              if ctx.part is not None else None)
    if ranges is not None:  # one shard: its blocks of every language; the merge unit does the rest
        checkpoint = StatsCheckpoint(ctx.checkpoint_dir / "stats", ident["checkpoint_every"],
                                     {**fingerprint, "shard": [int(ctx.part["index"]), shards]},  # type: ignore[index]
                                     stop_requested=lambda: ctx.stop_requested, check_stop=ctx.check_stop)
    expected = [range_tokens(f, *r) for f, r in zip(feeds, ranges)] if ranges else [n_tokens] * len(feeds)
    order = {lang: i for i, lang in enumerate(languages)}

    def progress(lang: str, done: int, total: int) -> None:
        i = order[lang]
        ctx.progress(done, total, "tokens", label=lang, language_index=i, languages=len(languages),
                     overall_done=sum(expected[:i]) + done, overall_total=sum(expected))

    meta = {"model": str(prov.get("model_id", cfg["model"]["id"])), "revision": str(prov.get("revision", "")),
            "hook": f"{prov.get('adapter', loaded.adapter.name)}: {loaded.adapter.hook}",
            "block_size": str(block), "seed": str(ctx.seed)}
    if ranges is not None or shards == 1:
        stats = collect_stats(loaded.model, loaded.adapter, feeds, bins=int(ident["histogram_bins"]),
                              batch_size=int(ident["batch_size"]), device=loaded.device, checkpoint=checkpoint,
                              progress=progress, meta=meta, keep_hists=True, ranges=ranges)
    else:  # the merge unit: every shard's finished pass, added up
        parts = [StatsCheckpoint(part_checkpoint_dir(ctx.home, ctx.study_id, ctx.stage, f"shard-{k + 1}-of-{shards}")
                                 / "stats", ident["checkpoint_every"], {**fingerprint, "shard": [k, shards]})
                 for k in range(shards)]
        stats = merge_shards(parts, languages, meta, bos=feeds[0].bos, skip=feeds[0].skip)
        ctx.log(f"merged the statistics of {shards} shards")
    if checkpoint.resumed_from is not None:
        r = checkpoint.resumed_from
        ctx.log(f"resumed from the checkpoint at {languages[min(r['language_index'], len(languages) - 1)]} "
                f"block {r['next_block']}")
    if ranges is not None:
        ctx.log(f"shard {int(ctx.part['index']) + 1} of {shards}: blocks "  # type: ignore[index]
                + ", ".join(f"{lang} {a}-{b - 1}" for lang, (a, b) in zip(languages, ranges)))
        return
    params = params_for(method_name, ident)
    sets, details = identify(stats, method_name, params, ctx.seed)
    n_layers, d_ff = stats.n_layers, stats.d_ff
    control = random_like(sets, n_layers, d_ff, ctx.seed)
    # exact P10/P90 for every neuron a target's intervention can use (docs/identify.md)
    targets = [lang for lang in cfg["languages"].get("targets", []) if lang in sets]
    refine_quantiles(loaded.model, loaded.adapter, [f for f in feeds if f.lang in targets], stats,
                     {lang: sets[lang] + control.get(lang, []) for lang in targets},
                     batch_size=int(ident["batch_size"]), device=loaded.device, check_stop=ctx.check_stop)
    ctx.write_artifact("activation_stats.safetensors", stats.save)
    shape = {"n_layers": n_layers, "d_ff": d_ff, "tokens_per_language": n_tokens, "block_size": block,
             "seed": ctx.seed}
    ctx.write_json("neurons.json", neurons_document(method_name, params, sets, **details, **shape))
    ctx.write_json("control.json", neurons_document("random", {"reference": method_name}, control, **shape))
    ctx.metrics(_metric_rows(stats, method_name, sets, control, languages))

    counts = ", ".join(f"{lang} {len(sets[lang])}" for lang in languages)
    ctx.log(f"{method_name}: {counts} neurons of {n_layers} x {d_ff}; random control with the same per-layer counts")


def _metric_rows(stats: Any, method_name: str, sets: dict[str, list[list[int]]], control: dict[str, list[list[int]]],
                 languages: list[str]) -> list[dict[str, Any]]:
    total = stats.n_layers * stats.d_ff
    rows: list[dict[str, Any]] = []
    for i, lang in enumerate(languages):
        rows.append(dict(name="neurons", language=lang, condition=method_name, value=len(sets[lang]), n=total))
        rows.append(dict(name="neurons", language=lang, condition="control", value=len(control[lang]), n=total))
        for layer, c in enumerate(per_layer_counts(sets[lang], stats.n_layers)):
            rows.append(dict(name="neurons_layer", language=lang, condition=f"layer{layer}", value=c, n=stats.d_ff))
        tokens = int(stats.tokens[i])
        rows.append(dict(name="tokens", language=lang, condition="", value=tokens, n=tokens))
        for q, count in sorted(stats.out_of_range.get(lang, {}).items()):
            rows.append(dict(name="quantile_out_of_range", language=lang, condition=q, value=count, n=total))
    rows.extend(overlap_rows(sets, languages, method_name))
    rows.extend(overlap_rows(control, languages, "control"))
    return rows
