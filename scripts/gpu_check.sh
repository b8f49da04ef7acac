#!/usr/bin/env bash
# GPU check (issue 18, point 6), about 3 minutes on one H100: the benchmark on a ~1B-parameter model, then a
# check that the statistics pass does not synchronise with the host once per batch.
#
#   scripts/gpu_check.sh [MODEL]
#
# MODEL: a model folder or .gguf file of about 1B parameters (e.g. a local Llama-3.2-1B). Without one it takes
# $GPU_CHECK_MODEL, then Llama-3.2-1B if it is in the Hugging Face cache, else `random:1b` (a randomly
# initialised Llama with Llama-3.2-1B's shape: the same compute, no download). Prints the bench JSON
# (tokens/s of the plain, statistics and intervention passes, peak device memory, model FLOP utilisation
# against the device's dense bf16 peak) and the host synchronisations counted per batch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "no $PY: run 'make install' first (TORCH_SPEC='torch==2.13.0' pulls the CPU wheel;" \
                       "use a CUDA build, e.g. TORCH_SPEC='torch' make install)" >&2; exit 2; }
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1

MODEL=${1:-${GPU_CHECK_MODEL:-}}
if [ -z "$MODEL" ]; then
  MODEL=$("$PY" - <<'EOF'
from huggingface_hub import snapshot_download
try:
    print(snapshot_download("meta-llama/Llama-3.2-1B", local_files_only=True))
except Exception:
    print("random:1b")
EOF
)
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, sys; ok = torch.cuda.is_available(); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', ok); sys.exit(0 if ok else 3)" \
  || { echo "torch sees no CUDA device: install a CUDA build of torch" >&2; exit 3; }

echo "== bench on $MODEL (65,536 tokens per pass, 4 repeats)"
timeout 240 "$PY" -m lab.cli bench --model "$MODEL" --device cuda --json --tokens 65536 | tee /tmp/neuron-pilot-gpu-bench.json
"$PY" - <<'EOF'
import json
r = json.loads(open("/tmp/neuron-pilot-gpu-bench.json").read().strip().splitlines()[-1])
print(f"tokens/s  plain {r['plain_tokens_per_s']:.0f}  stats {r['stats_tokens_per_s']:.0f}  "
      f"intervention {r['intervention_tokens_per_s']:.0f}")
print(f"overhead  stats x{r['stats_overhead']:.3f}  intervention x{r['intervention_overhead']:.3f}")
print(f"peak device memory {r['peak_device_memory_bytes'] / 2**30:.2f} GiB; statistics state for "
      f"{r['stats_state_languages']} languages {r['stats_state_bytes'] / 2**30:.2f} GiB ({r['histogram_bins']} bins)")
mfu = r.get("mfu")
print("MFU (bf16 peak of %s): plain %.1f%%, stats %.1f%%" % (r["device_name"], 100 * mfu["plain"], 100 * mfu["stats"])
      if mfu else "MFU: device not in lab/bench/overhead.py's BF16_PEAK table")
EOF

echo "== host synchronisations in the statistics pass (must not grow with the number of batches)"
timeout 120 "$PY" - "$MODEL" <<'EOF'
import sys, warnings, torch
from lab.bench.overhead import load_bench_model
from lab.inputs.corpus import BlockFeed
from lab.neurons.collect import collect_stats

model, adapter, _, device = load_bench_model(sys.argv[1], "cuda")
vocab = int(model.get_input_embeddings().num_embeddings)
gen = torch.Generator().manual_seed(0)
counts = {}
for n_blocks in (16, 64):  # 2 and 8 batches of 8 blocks, one language
    feed = BlockFeed.from_blocks("xx", list(torch.randint(0, vocab, (n_blocks, 128), generator=gen)))
    collect_stats(model, adapter, [feed], bins=2048, batch_size=8, device=device)  # warm-up
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            collect_stats(model, adapter, [feed], bins=2048, batch_size=8, device=device)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    counts[n_blocks // 8] = sum("synchroniz" in str(w.message) for w in caught)
print("host syncs per pass:", {f"{b} batches": c for b, c in counts.items()})
extra = (counts[8] - counts[2]) / 6
print(f"extra syncs per added batch: {extra:.2f}", "(ok: none per batch)" if extra < 0.5 else "(PER-BATCH SYNC)")
sys.exit(0 if extra < 0.5 else 1)
EOF
