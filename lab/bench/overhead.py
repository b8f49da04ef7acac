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

Memory and the identify stage at 8B shape: lab/bench/memory.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
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
    # Llama-3.1-8B's layers x d_ff (32 x 14,336) with a tiny hidden size and the demo tokenizer's vocabulary
    # (~89M parameters): the identification state at 8B scale, on a CPU (python -m lab.bench identify)
    "8b-shape": dict(hidden_size=64, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=4096),
    # for tests
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512),
}
DEFAULT_TOKENS = {"cpu": 2048, "cuda": 65536}
BLOCK = 128  # the study file's default block_size
BATCH_BLOCKS = 8  # and its default [identify] batch_size
INTERVENED_SHARE = 0.01
STUDY_LANGUAGES = 6  # the demo's languages: the statistics state is sized for a study of this many
# dense bf16 tensor-core peaks (FLOP/s, no sparsity) by device name, for model FLOP utilisation on CUDA
BF16_PEAK = (("H200", 989.4e12), ("H100 PCIe", 756.0e12), ("H100", 989.4e12), ("GH200", 989.4e12),
             ("A100", 312.0e12), ("A800", 312.0e12), ("L40S", 362.0e12), ("L40", 181.0e12), ("L4", 121.0e12),
             ("A10G", 70.0e12), ("A10", 125.0e12), ("RTX 4090", 165.2e12), ("RTX 3090", 71.0e12),
             ("A6000", 154.8e12), ("B200", 2250.0e12))


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
    from lab.neurons.statistics import fit_bins, state_bytes

    device = batches[0].device
    modules = adapter.act_modules(model)
    n_layers, d_ff = len(modules), adapter.d_ff(model)
    # the bins a study of STUDY_LANGUAGES languages would get on this model (the state fits the budget)
    staging = device.type == "cpu"
    bins = fit_bins(n_layers, d_ff, STUDY_LANGUAGES, bins, staging=staging)
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
        "intervention_tokens_per_s": tokens / per_pass["intervention"],
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
        "stats_state_bytes": state_bytes(n_layers, d_ff, STUDY_LANGUAGES, bins, staging=staging),
        "stats_state_languages": STUDY_LANGUAGES,
        "flops_per_token": forward_flops_per_token(model, n_layers, int(batches[0].shape[1])),
    }


def forward_flops_per_token(model: nn.Module, n_layers: int, seq_len: int) -> float:
    """FLOPs per token of the decoder stack (no LM head): 2 per weight of the layers (embeddings are a
    lookup), plus causal attention's QK^T and AV, 2·2·seq·d_attn per layer halved by the causal mask."""
    cfg = getattr(model, "config", None)
    weights = sum(p.numel() for name, p in model.named_parameters()
                  if "embed" not in name and "lm_head" not in name and p.dim() > 1)
    heads = int(getattr(cfg, "num_attention_heads", 0) or 0)
    head_dim = int(getattr(cfg, "head_dim", 0) or 0) or (int(getattr(cfg, "hidden_size", 0) or 0) // max(1, heads))
    return float(2 * weights + 2 * n_layers * seq_len * heads * head_dim)


def bf16_peak(device: torch.device) -> Optional[tuple[str, float]]:
    """(device name, dense bf16 peak FLOP/s) of a CUDA device we know, else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in BF16_PEAK:
        if key in name:
            return name, peak
    return None


def peak_memory(device: torch.device) -> dict[str, Any]:
    """Peak resident memory of this process (ru_maxrss), and the device's peak: CUDA's allocator peak, or on
    the CPU the same resident peak (the CPU is the device)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    if device.type == "cuda":
        return {"peak_rss_bytes": rss, "peak_device_memory_bytes": int(torch.cuda.max_memory_allocated(device))}
    return {"peak_rss_bytes": rss, "peak_device_memory_bytes": rss}


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
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    res = measure(model, adapter, batches, repeats=repeats)
    res.update(peak_memory(device))
    peak = bf16_peak(device)
    res["mfu"] = None
    if peak is not None:  # model FLOP utilisation of the plain pass against the device's dense bf16 peak
        res["device_name"], res["bf16_peak_flops"] = peak
        res["mfu"] = {name: res[f"{name}_tokens_per_s"] * res["flops_per_token"] / peak[1]
                      for name in ("plain", "stats", "intervention")}
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
        print(f"p90 intervention (1%)  x{res['intervention_overhead']:.3f}  "
              f"({res['intervention_tokens_per_s']:.0f} tokens/s)")
        print(f"statistics state for {STUDY_LANGUAGES} languages: {res['stats_state_bytes'] / 2**20:.0f} MiB "
              f"({res['histogram_bins']} bins); peak resident memory {res['peak_rss_bytes'] / 2**20:.0f} MiB"
              + (f", peak device memory {res['peak_device_memory_bytes'] / 2**20:.0f} MiB"
                 if device.type == "cuda" else ""))
        if res["mfu"] is not None:
            print(f"model FLOP utilisation (bf16 peak of {res['device_name']}): plain {res['mfu']['plain']:.1%}, "
                  f"stats {res['mfu']['stats']:.1%}")
        b, c = res["best_of_overhead"], res["cpu_time_overhead"]
        print(f"(fastest passes: stats x{b['stats']:.3f}, intervention x{b['intervention']:.3f}; "
              f"process CPU time: stats x{c['stats']:.3f}, intervention x{c['intervention']:.3f})")
    return 0
