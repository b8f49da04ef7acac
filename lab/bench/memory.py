"""Memory of the statistics pass (``python -m lab.bench memory``: peak RSS at N and factor·N tokens, each
in a fresh process) and the identify stage's steps at a real model's shape (``python -m lab.bench identify``:
seconds, statistics state, largest checkpoint, peak RSS)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from lab.bench.overhead import BATCH_BLOCKS, BLOCK, random_llama
from lab.core.paths import PROJECT_ROOT
from lab.neurons.collect import collect_stats


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


DEMO_LANGUAGES = ("en", "fr", "de", "sw", "hi", "ur")
DEMO_TOKENIZER = PROJECT_ROOT / "examples" / "models" / "tiny-polyglot"


def identify_check(model_spec: str, corpus: str, tokens: int, *, languages: Sequence[str] = DEMO_LANGUAGES,
                   targets: Sequence[str] = ("sw", "ur"), bins: int = 2048, block: int = BLOCK,
                   batch_size: int = BATCH_BLOCKS, checkpoint_every: int = 16, seed: int = 0) -> dict[str, Any]:
    """The identify stage's work in this process, step by step: the statistics pass (with checkpoints), LAPE,
    the random control, the exact P10/P90 pass for the targets' neurons, the artifact. Reports the seconds,
    the statistics state, the largest checkpoint and the peak resident memory (``resource.getrusage``).
    A ``random:`` model uses the demo model's tokenizer (``random:8b-shape`` has its vocabulary)."""
    from lab.inputs.corpus import corpus_feed
    from lab.model.adapters import adapter_for
    from lab.model.loading import load_model
    from lab.neurons.collect import StatsCheckpoint, refine_quantiles
    from lab.neurons.identify import identify, params_for
    from lab.neurons.sets import random_like

    def rss() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    if model_spec.startswith("random:"):
        tokenizer = load_model({"id": str(DEMO_TOKENIZER), "device": "cpu", "dtype": "float32"}).tokenizer
        model = random_llama(model_spec.split(":", 1)[1], torch.device("cpu"), torch.float32)
        adapter = adapter_for(model)
    else:
        loaded = load_model({"id": model_spec, "device": "cpu", "dtype": "float32"},
                            "gguf" if model_spec.endswith(".gguf") else "local")
        tokenizer, model, adapter = loaded.tokenizer, loaded.model, loaded.adapter
    out: dict[str, Any] = {"model": model_spec, "parameters": sum(p.numel() for p in model.parameters()),
                           "n_layers": adapter.n_layers(model), "d_ff": adapter.d_ff(model),
                           "languages": list(languages), "tokens_per_language": tokens, "threads": torch.get_num_threads(),
                           "peak_rss_bytes_after_load": rss()}
    feeds = [corpus_feed(tokenizer, corpus, lang, tokens, block, seed) for lang in languages]
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cp = StatsCheckpoint(Path(tmp) / "cp", checkpoint_every, {"bench": model_spec})
        biggest = [0]

        def on_save(info: dict[str, Any]) -> None:
            biggest[0] = max(biggest[0], (Path(tmp) / "cp" / info["file"]).stat().st_size)
        cp.on_save = on_save
        t0 = time.perf_counter()
        stats = collect_stats(model, adapter, feeds, bins=bins, batch_size=batch_size, checkpoint=cp, keep_hists=True)
        seconds["statistics_pass"] = time.perf_counter() - t0
        out["peak_rss_bytes_after_pass"] = rss()
        t0 = time.perf_counter()
        sets, _ = identify(stats, "lape", params_for("lape", {"top_rate": 0.01, "filter_rate": 0.95,
                                                              "activation_bar_ratio": 0.95}), seed)
        control = random_like(sets, stats.n_layers, stats.d_ff, seed)
        seconds["identify_and_control"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        exact = refine_quantiles(model, adapter, [f for f in feeds if f.lang in targets], stats,
                                 {lang: sets[lang] + control[lang] for lang in targets}, batch_size=batch_size)
        seconds["exact_quantile_pass"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        stats.save(Path(tmp) / "activation_stats.safetensors")
        seconds["artifact"] = time.perf_counter() - t0
        out["artifact_bytes"] = (Path(tmp) / "activation_stats.safetensors").stat().st_size
        out["checkpoint_bytes_max"] = biggest[0]
        out["checkpoint_saves"] = cp.saves
    out.update({"histogram_bins": stats.bins, "stats_state_bytes": stats.state_bytes, "seconds": seconds,
                "seconds_total": sum(seconds.values()), "neurons": {lang: len(sets[lang]) for lang in languages},
                "exact_quantiles": exact, "quantile_bound_max": float(stats.hist_width.max()),
                "peak_rss_bytes": rss()})
    return out
