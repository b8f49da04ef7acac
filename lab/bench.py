"""``neuron-pilot bench``: what statistics collection and interventions cost against a plain forward pass.

Why: the identify stage's hooks run on every token of every layer; their cost must stay small next to
the model's own compute. One run measures, over the *same* batches of random token ids:

- ``plain``: the decoder stack (``model.base_model``, no LM head — the statistics pass runs exactly
  this) with no hooks;
- ``stats``: the same with the identify stage's hooks (count > 0, sum, histogram and the
  above-threshold count: the most work any batch of the real pass does);
- ``intervention``: the same with ``lab.neurons.interventions.intervene(..., "p90")`` on 1 % of each layer's
  neurons (random, seeded), with P90 values measured on the bench's own first batch.

After one warm-up of each, every batch is timed under the three conditions back to back (the order
rotates each time), `repeats` times over all batches; each overhead is the median over those
(batch, repeat) triples of condition time / plain time, so drifts in machine load cancel. Extra keys
for shared, noisy machines: ``best_of_overhead`` (ratio of the fastest passes) and
``cpu_time_overhead`` (median ratio of this process's CPU time, which other processes disturb less;
with several threads it includes their spin-waiting). Threads follow torch's default
(``OMP_NUM_THREADS`` sets them).

``--model``: a model folder, a hub id, or ``random:NAME`` — a randomly initialised Llama built from a
config (``random:default`` ~60M parameters, compute-dominated on a CPU; ``random:1b`` ~1.2B for a
GPU). Without ``--model`` the default is ``random:default``.

Memory (``python -m lab.bench memory --model DIR --tokens N [--factor 10]``): runs the real
statistics pass (corpus feed → collect_stats) in fresh subprocesses over N and factor·N tokens of a
generated one-language corpus and prints both peak RSS figures (``resource.getrusage``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from lab.neurons.collect import collect_stats, forward_layers
from lab.neurons.statistics import Accumulators, BinLayout, StatsHooks
from lab.inputs.corpus import BlockFeed
from lab.neurons.interventions import intervene

PRESETS: dict[str, dict[str, int]] = {
    # ~60M parameters: 6 layers of 768 x 2048 with a 16k vocabulary
    "default": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=6, num_attention_heads=12,
                    num_key_value_heads=4, vocab_size=16384),
    # a Llama-3.2-1B-like shape
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256),
    # for tests
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512),
}
DEFAULT_TOKENS = {"cpu": 2048, "cuda": 65536}
BLOCK = 128  # the study file's default block_size
BATCH_BLOCKS = 8  # and its default [identify] batch_size
INTERVENED_SHARE = 0.01


def random_llama(preset: str, device: torch.device, dtype: torch.dtype, seed: int = 0) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    if preset not in PRESETS:
        from lab.core.errors import BadInput

        raise BadInput(f"unknown bench model random:{preset} (known: {', '.join('random:' + p for p in PRESETS)})")
    torch.manual_seed(seed)
    cfg = LlamaConfig(max_position_embeddings=4096, **PRESETS[preset])
    with torch.device(device):
        model = LlamaForCausalLM(cfg)
    return model.to(dtype).eval()


def load_bench_model(spec: Optional[str], device_name: str) -> tuple[nn.Module, Any, str, torch.device]:
    """(model, adapter, description, device) for --model."""
    from lab.model.adapters import adapter_for
    from lab.model.loading import load_model, pick_device, pick_dtype

    device = pick_device(device_name)
    spec = spec or "random:default"
    if spec.startswith("random:"):
        dtype = pick_dtype("auto", device)
        model = random_llama(spec.split(":", 1)[1], device, dtype)
        return model, adapter_for(model), spec, device
    from lab.study.studyfile import HUB_ID

    source = "local" if Path(spec).exists() else ("hub" if HUB_ID.match(spec) else "local")
    if source == "local" and Path(spec).suffix == ".gguf":
        source = "gguf"
    loaded = load_model({"id": spec, "device": str(device), "dtype": "auto"}, source)
    return loaded.model, loaded.adapter, spec, loaded.device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def measure(model: nn.Module, adapter: Any, batches: Sequence[torch.Tensor], *, repeats: int = 5,
            bins: int = 2048, seed: int = 0) -> dict[str, Any]:
    """Interleaved timing of plain / stats / intervention passes over `batches` (see module doc)."""
    device = batches[0].device
    modules = adapter.act_modules(model)
    n_layers, d_ff = len(modules), adapter.d_ff(model)
    # real P90 values (and the histogram layout) from the first batch, through the identify code path
    first = BlockFeed.from_blocks("bench", [b.cpu() for b in batches[0]])
    probe = collect_stats(model, adapter, [first], bins=bins, batch_size=len(batches[0]), device=device)
    layout = BinLayout(probe.hist_lo.to(device), probe.hist_width.to(device), bins)
    acc = Accumulators(n_layers, d_ff, bins, device, max_batch_tokens=max(int(b.numel()) for b in batches))
    acc.threshold = probe.p90[0].to(device)
    gen = torch.Generator().manual_seed(seed)
    k = max(1, round(INTERVENED_SHARE * d_ff))
    neurons = {layer: sorted(torch.randperm(d_ff, generator=gen)[:k].tolist()) for layer in range(n_layers)}
    stats = {"act_p90": probe.p90}

    stats_hooks = StatsHooks(modules, acc, layout)
    stats_hooks.score = True

    def plain(b: torch.Tensor) -> None:
        forward_layers(model, b)

    def with_stats(b: torch.Tensor) -> None:
        with stats_hooks:
            forward_layers(model, b)
        acc.after_batch(int(b.numel()))

    def with_intervention(b: torch.Tensor) -> None:
        with intervene(model, adapter, neurons, "p90", stats=stats, stat_languages=["bench"], language="bench"):
            forward_layers(model, b)

    conds: dict[str, Callable[[torch.Tensor], None]] = {"plain": plain, "stats": with_stats,
                                                        "intervention": with_intervention}
    names = list(conds)
    # per (repeat, batch): the three conditions back to back, so slow drifts in machine load cancel
    times: dict[str, list[list[float]]] = {name: [[] for _ in batches] for name in names}
    cpu: dict[str, list[list[float]]] = {name: [[] for _ in batches] for name in names}
    with torch.no_grad():
        for fn in conds.values():  # warm-up
            fn(batches[0])
        turn = 0
        for _ in range(repeats):
            for bi, b in enumerate(batches):
                order = names[turn % 3:] + names[:turn % 3]
                turn += 1
                for name in order:
                    wall, proc = _time(lambda: conds[name](b), device)
                    times[name][bi].append(wall)
                    cpu[name][bi].append(proc)

    def ratios(table: dict[str, list[list[float]]], name: str) -> list[float]:
        return [c / p for bc, bp in zip(table[name], table["plain"]) for c, p in zip(bc, bp)]

    def best(table: dict[str, list[list[float]]], name: str) -> float:
        """Ratio of the fastest passes (sum over batches of each batch's minimum): least disturbed by load."""
        return sum(min(ts) for ts in table[name]) / sum(min(ts) for ts in table["plain"])

    stats_ratio, iv_ratio = ratios(times, "stats"), ratios(times, "intervention")
    per_pass = {name: sum(statistics.median(ts) for ts in times[name]) for name in names}
    tokens = sum(int(b.numel()) for b in batches)
    return {
        "tokens": tokens,
        "plain_tokens_per_s": tokens / per_pass["plain"],
        "stats_tokens_per_s": tokens / per_pass["stats"],
        "stats_overhead": statistics.median(stats_ratio),
        "intervention_overhead": statistics.median(iv_ratio),
        "repeats": repeats,
        "ratios": {"stats": stats_ratio, "intervention": iv_ratio},
        "best_of_overhead": {"stats": best(times, "stats"), "intervention": best(times, "intervention")},
        "cpu_time_overhead": {"stats": statistics.median(ratios(cpu, "stats")),
                              "intervention": statistics.median(ratios(cpu, "intervention"))},
        "seconds_per_pass": per_pass,
        "parameters": sum(p.numel() for p in model.parameters()),
        "n_layers": n_layers,
        "d_ff": d_ff,
        "intervened_per_layer": k,
        "histogram_bins": bins,
    }


def make_batches(vocab: int, tokens: int, device: torch.device, seed: int = 0) -> list[torch.Tensor]:
    """Random token ids as [BATCH_BLOCKS, BLOCK] batches (the last one smaller if needed)."""
    gen = torch.Generator().manual_seed(seed)
    n_blocks = max(1, tokens // BLOCK)
    ids = torch.randint(0, vocab, (n_blocks, BLOCK), generator=gen)
    return [ids[i:i + BATCH_BLOCKS].to(device) for i in range(0, n_blocks, BATCH_BLOCKS)]


def run_bench(args: argparse.Namespace) -> int:
    """CLI entry (``neuron-pilot bench``): prints the figures, as DESIGN.md's JSON with --json."""
    model, adapter, name, device = load_bench_model(getattr(args, "model", None), getattr(args, "device", "auto"))
    tokens = int(getattr(args, "tokens", None) or DEFAULT_TOKENS.get(device.type, 1024))
    vocab = int(model.get_input_embeddings().num_embeddings)
    batches = make_batches(vocab, tokens, device)
    repeats = int(getattr(args, "repeats", None) or 4)
    res = measure(model, adapter, batches, repeats=repeats)
    out = {"model": name, "device": str(device), "tokens": res["tokens"],
           "plain_tokens_per_s": res["plain_tokens_per_s"], "stats_overhead": res["stats_overhead"],
           "intervention_overhead": res["intervention_overhead"],
           "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
           "threads": torch.get_num_threads(), **{k: v for k, v in res.items() if k not in
                                                  ("tokens", "plain_tokens_per_s", "stats_overhead",
                                                   "intervention_overhead")}}
    if getattr(args, "json", False):
        print(json.dumps(out))
    else:
        print(f"model {name} on {device} ({out['dtype']}, {res['parameters'] / 1e6:.1f}M parameters, "
              f"{res['n_layers']} layers x {res['d_ff']} neurons)")
        print(f"{res['tokens']} tokens per pass, {repeats} interleaved repeats")
        print(f"plain forward          {res['plain_tokens_per_s']:.0f} tokens/s")
        print(f"statistics collection  x{res['stats_overhead']:.3f}  ({res['stats_tokens_per_s']:.0f} tokens/s)")
        print(f"p90 intervention (1%)  x{res['intervention_overhead']:.3f}")
        b, c = res["best_of_overhead"], res["cpu_time_overhead"]
        print(f"(fastest passes: stats x{b['stats']:.3f}, intervention x{b['intervention']:.3f}; "
              f"process CPU time: stats x{c['stats']:.3f}, intervention x{c['intervention']:.3f})")
    return 0


# ---- memory --------------------------------------------------------------------------------------

def _probe(model_dir: str, tokens: int, corpus: str) -> dict[str, Any]:
    """In this (fresh) process: one real statistics pass over `tokens` tokens, then peak RSS."""
    from lab.neurons.collect import collect_stats
    from lab.inputs.corpus import corpus_feed
    from lab.model.loading import load_model

    loaded = load_model({"id": model_dir, "device": "cpu", "dtype": "float32"})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    feed = corpus_feed(loaded.tokenizer, corpus, "xx", tokens, BLOCK, seed=0)
    t0 = time.perf_counter()
    stats = collect_stats(loaded.model, loaded.adapter, [feed], batch_size=BATCH_BLOCKS)
    return {"tokens": int(stats.tokens[0]), "seconds": time.perf_counter() - t0, "maxrss_kb_after_load": before,
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def write_probe_corpus(folder: Path, lines: int) -> Path:
    """A one-language corpus (`xx.txt`) of varied generated sentences."""
    words = ("river stone light green window quiet market sing under before paper across yellow sleep "
             "mountain garden slowly twelve bridge letter open winter friend carry").split()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "xx.txt", "w", encoding="utf-8") as fh:
        for i in range(lines):
            fh.write(" ".join(words[(i * 7 + j * j) % len(words)] for j in range(12 + i % 9)) + ".\n")
    return folder


def memory_check(model_dir: str, tokens: int, factor: int = 10) -> dict[str, Any]:
    """Peak RSS of the statistics pass over `tokens` and factor·`tokens` tokens, each in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_probe_corpus(Path(tmp), lines=max(200, tokens * factor // 8))
        runs = []
        for n in (tokens, tokens * factor):
            cmd = [sys.executable, "-m", "lab.bench", "probe", "--model", model_dir, "--tokens", str(n),
                   "--corpus", str(corpus)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ})
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    small, large = runs
    return {"small": small, "large": large, "factor": factor,
            "growth_kb": large["maxrss_kb"] - small["maxrss_kb"],
            "growth_ratio": large["maxrss_kb"] / small["maxrss_kb"]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("memory", help="peak RSS of the statistics pass at N and factor*N tokens")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--factor", type=int, default=10)
    p = sub.add_parser("probe", help="(internal) one statistics pass, prints peak RSS as JSON")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", type=int, required=True)
    p.add_argument("--corpus", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "probe":
        print(json.dumps(_probe(args.model, args.tokens, args.corpus)))
    else:
        print(json.dumps(memory_check(args.model, args.tokens, args.factor), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
