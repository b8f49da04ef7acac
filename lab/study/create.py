"""Creating a study: every check that needs no compute runs here, before anything is stored."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from lab.core.errors import BadInput
from lab.inputs.preflight import check_study_inputs
from lab.store import Store, Study
from lab.study.model_section import memory_bytes
from lab.study.studyfile import load_study_file
from protocols import load_protocol


def check_hub_model(model_id: str, revision: str | None) -> None:
    """A hub id must be reachable or already cached; offline and uncached is a clear error now."""
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    if not offline:
        return
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json", revision=revision)
    if not isinstance(cached, str):
        raise BadInput(f"model {model_id!r} is a hub id, the hub is offline here (HF_HUB_OFFLINE=1) and it is not "
                       f"in the local cache; download it where the hub is reachable or point [model] id at a local folder")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    return "a number" if isinstance(value, (int, float)) else "text"


def check_criteria_values(path: str | Path, criteria: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Each [criteria] override has the type of the protocol's threshold it replaces, and is finite:
    a NaN threshold would be frozen into the criteria and break every later run of the study."""
    for key, value in criteria.items():
        want = _kind(defaults[key])
        if _kind(value) != want or (isinstance(value, float) and not math.isfinite(value)):
            raise BadInput(f"{path}: [criteria] {key} must be {want} (like the protocol's {defaults[key]!r}), "
                           f"not {value!r}; fix the value")


def validate(path: str | Path, home: Path) -> tuple[Any, dict[str, Any], str, Any]:
    parsed, cfg, text = load_study_file(path)
    protocol = load_protocol(parsed.study.protocol, home)
    unknown = sorted(set(cfg.get("criteria") or {}) - set(protocol.gate_params()))
    if unknown:
        raise BadInput(f"{path}: [criteria] {', '.join(unknown)} is not a threshold of protocol {protocol.name} "
                       f"(known: {', '.join(sorted(protocol.gate_params()))}); fix the key")
    check_criteria_values(path, cfg.get("criteria") or {}, protocol.gate_params())
    from lab.study import choices as checks_registry

    checks_registry.validate_choices(cfg, protocol)
    if cfg["resolved"].get("model_source") == "hub":
        check_hub_model(cfg["model"]["id"], cfg["model"].get("revision"))
    check_study_inputs(cfg)  # weight-file headers and corpus text, before anything is stored
    return parsed, cfg, text, protocol


# ---- will the model fit the stated devices? (no torch import: `new` stays fast) ---------------------

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GIB = 1 << 30


def _model_config(cfg: dict[str, Any]) -> Optional[dict[str, Any]]:
    source = cfg.get("resolved", {}).get("model_source", "local")
    path: Optional[Path] = None
    if source == "hub":
        from huggingface_hub import try_to_load_from_cache

        got = try_to_load_from_cache(cfg["model"]["id"], "config.json", revision=cfg["model"].get("revision"))
        path = Path(got) if isinstance(got, str) else None
    elif source == "local":
        path = Path(cfg["model"]["id"]) / "config.json"
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("text_config", data) if isinstance(data, dict) else None


def config_parameters(c: dict[str, Any]) -> Optional[int]:
    """Parameters of a decoder-only transformer from its config.json (Llama/Mistral/Qwen/Gemma keys, or
    GPT-2's n_embd/n_layer/n_inner): embeddings, attention with grouped KV heads, the (gated) MLP, norms and
    an untied head. None when the config lacks the sizes."""
    h = c.get("hidden_size", c.get("n_embd"))
    layers = c.get("num_hidden_layers", c.get("n_layer"))
    vocab = c.get("vocab_size")
    if not all(isinstance(x, int) and x > 0 for x in (h, layers, vocab)):
        return None
    ff = c.get("intermediate_size") or c.get("n_inner") or c.get("ffn_dim") or 4 * h
    heads = c.get("num_attention_heads", c.get("n_head")) or 1
    head_dim = c.get("head_dim") or h // heads
    kv = c.get("num_key_value_heads") or heads
    gated = c.get("model_type") in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "olmo", "olmo2")
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2  # q, o; k, v
    mlp = (3 if gated else 2) * h * ff
    head = 0 if c.get("tie_word_embeddings", True) else vocab * h
    return int(vocab * h + layers * (attn + mlp + 2 * h) + h + head)


def _gguf_parameters(cfg: dict[str, Any]) -> Optional[int]:
    p = Path(cfg["model"]["id"])
    f = p if p.is_file() else (p / cfg["model"]["gguf_file"] if cfg["model"].get("gguf_file") else None)
    if f is None:
        found = sorted(p.glob("*.gguf"))
        f = found[0] if len(found) == 1 else None
    if f is None:
        return None
    try:
        from gguf import GGUFReader

        return int(sum(int(t.n_elements) for t in GGUFReader(str(f)).tensors))
    except Exception:  # preflight already vetted the file; an estimate is not worth an error
        return None


def _gpu_memory() -> list[int]:
    """Each visible GPU's memory in bytes, from nvidia-smi (empty when there is none)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=10).stdout
        return [int(float(x)) << 20 for x in out.split() if x.strip()]
    except (OSError, ValueError, subprocess.SubprocessError):
        return []


def _host_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def memory_warning(cfg: dict[str, Any], gpus: Optional[list[int]] = None,
                   host: Optional[int] = None) -> Optional[str]:
    """One line when the model's weights (parameters × dtype bytes, from its config) exceed what the stated
    devices hold: max_memory's devices when given (disk not counted), else the GPUs (device_map: all of them
    and the host, since accelerate offloads to it; one device: that one) or the host. None when it fits,
    when disk offload is allowed, or when the size is unknown."""
    m = cfg["model"]
    source = cfg.get("resolved", {}).get("model_source", "local")
    params = _gguf_parameters(cfg) if source == "gguf" else config_parameters(_model_config(cfg) or {})
    if not params:
        return None
    gpus = _gpu_memory() if gpus is None else gpus
    host = _host_memory() if host is None else host
    dtype = m.get("dtype", "auto")
    if dtype == "auto":  # bf16 on a GPU, float32 on the CPU (lab.model.loading.pick_dtype)
        dtype = "bfloat16" if gpus and m.get("device") != "cpu" else "float32"
    need = params * DTYPE_BYTES[dtype]
    if m.get("max_memory"):
        sized = {k: memory_bytes(v) or 0 for k, v in m["max_memory"].items()}
        have, where = sum(v for k, v in sized.items() if k != "disk"), "max_memory's devices"
    elif m.get("device_map") is not None:
        if m.get("offload_folder"):
            return None  # whatever does not fit goes to disk
        have, where = sum(gpus) + host, f"{len(gpus)} GPU(s) and the host memory"
    elif m.get("device", "auto") == "cpu" or not gpus:
        have, where = host, "the host memory"
    else:
        dev = m.get("device", "auto")
        i = int(dev.split(":")[1]) if dev.startswith("cuda:") else 0
        have, where = (gpus[i] if i < len(gpus) else 0), f"GPU {i}"
    if not have or need <= have:
        return None
    fix = ("raise max_memory or add offload_folder (and a \"disk\" entry)" if m.get("max_memory") else
           "add offload_folder" if m.get("device_map") is not None else
           "set [model] device_map = \"auto\" (with max_memory and offload_folder)")
    return (f"warning: model {m['id']} needs about {_size(need)} for its weights ({params:,} parameters × "
            f"{DTYPE_BYTES[dtype]} bytes, {dtype}) but {where} hold {_size(have)}; it will not load as stated — "
            f"{fix}, or use a smaller dtype")


def _size(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / (1 << 20):.1f} MiB"


def create_study(store: Store, path: str | Path, warn: Optional[Callable[[str], None]] = None) -> Study:
    parsed, cfg, text, protocol = validate(path, store.home.root)
    message = memory_warning(cfg)
    if message is not None:  # a warning, not an error: the estimate ignores activations and may be off
        (warn or (lambda line: print(line, file=sys.stderr)))(message)
    return store.create_study(name=parsed.study.name, protocol=protocol.name, model_id=cfg["model"]["id"],
                              seed=parsed.study.seed, trust_remote_code=parsed.model.trust_remote_code,
                              config=cfg, source_toml=text, source_path=str(Path(path).resolve()),
                              stages=protocol.stage_names)


def set_shards(store: Store, study_ref: str | int, value: str) -> Optional[str]:
    """`neuron-pilot run --shards N`: store [identify] shards = N with the study (its config, as if the study
    file said so), so a resume uses the same N. Refused (BadInput, before any compute) when N is not a whole
    number ≥ 1, does not fit the corpus, or differs from the N an identify that already started uses.
    Returns a line saying what changed, or None when the study already had N."""
    from sqlalchemy import text

    from lab.store import StageState
    from lab.study.studyfile import check_shards_fit

    if not value.isdigit() or int(value) < 1:
        raise BadInput(f"--shards takes a whole number of at least 1, not {value!r}; e.g. --shards 4")
    n = int(value)
    study = store.study(study_ref)
    cfg = json.loads(study.config_json)
    ident, corpus = cfg.setdefault("identify", {}), cfg["corpus"]
    old = int(ident.get("shards", 1))
    if n == old:
        return None
    run = next((r for r in store.stage_runs(int(study.id)) if r.stage == "identify"), None)  # type: ignore[arg-type]
    if run is not None and run.state != StageState.pending:
        raise BadInput(f"study {study.id}'s identify stage is {run.state.value} with shards = {old}; --shards {n} "
                       f"applies only before identify starts: run without --shards, or create a new study")
    try:
        check_shards_fit(n, int(corpus["tokens_per_language"]), int(corpus["block_size"]), str(ident.get("method")))
    except ValueError as exc:
        raise BadInput(f"--shards {n}: {exc}") from None
    ident["shards"] = n
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE study SET config_json=:c WHERE id=:i"), {"c": json.dumps(cfg), "i": study.id})
    return f"study {study.id}: [identify] shards = {n} (was {old}), stored with the study"
