"""Loading a causal LM from a local folder, a hub id or a .gguf file, with its adapter and provenance."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from lab.model.adapters import ArchitectureAdapter, adapter_for
from lab.core.errors import BadInput
from lab.inputs.preflight import check_model_files

WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt")


@dataclass
class LoadedModel:
    model: nn.Module
    tokenizer: Any
    adapter: ArchitectureAdapter
    device: torch.device
    dtype: torch.dtype
    provenance: dict[str, Any] = field(default_factory=dict)


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"[model] device = {requested!r} but no CUDA GPU is visible; use device = \"auto\" or \"cpu\"")
    return torch.device(requested)


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested == "float16" and device.type == "cpu":  # `new` refuses an explicit cpu; this is "auto"
        raise BadInput("[model] dtype = \"float16\" but the model runs on the CPU (no CUDA GPU is visible), where "
                       "float16 is slow and overflows; use dtype = \"float32\" or \"bfloat16\"")
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[requested]


def placement_kwargs(model_cfg: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """from_pretrained's placement: the weights go straight onto their device, never CPU first then `.to`.

    Without `[model] device_map` that is one device (`device_map={"": device}`). With it, accelerate
    places the layers ("auto", "balanced", "balanced_low_0", "sequential" or a table module → device,
    where "cpu" and "disk" entries are offloaded), capped per device by `max_memory` and spilling to
    `offload_folder`."""
    wanted = model_cfg.get("device_map")
    if wanted is None:
        return {"device_map": {"": device}}
    out: dict[str, Any] = {"device_map": wanted if isinstance(wanted, str) else
                           {k: _device_key(v) for k, v in wanted.items()}}
    if model_cfg.get("max_memory"):
        out["max_memory"] = {_device_key(k): v for k, v in model_cfg["max_memory"].items()}
    if model_cfg.get("offload_folder"):
        Path(model_cfg["offload_folder"]).mkdir(parents=True, exist_ok=True)
        out["offload_folder"] = str(model_cfg["offload_folder"])
    if isinstance(wanted, str) and not torch.cuda.is_available() and "max_memory" not in out:
        out["max_memory"] = {"cpu": _host_memory()}  # accelerate's own guess leaves no room on a CPU-only host
    return out


def _device_key(v: Any) -> Any:
    """A study file's device name as accelerate wants it: GPU index as int, else the name."""
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    if isinstance(v, str) and v.startswith("cuda:"):
        return int(v.split(":", 1)[1])
    return v


def _host_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def main_device(device_map: dict[str, Any]) -> torch.device:
    """Where the inputs go for a dispatched model: the first GPU of the map (accelerate runs offloaded
    "cpu"/"disk" layers there too), else the CPU."""
    for v in device_map.values():
        if v not in ("cpu", "disk", "meta") and not (isinstance(v, torch.device) and v.type in ("cpu", "meta")):
            return torch.device(v if not isinstance(v, int) else f"cuda:{v}")
    return torch.device("cpu")


def content_hash(folder: Path) -> str:
    """sha256 over the weight files' names and bytes: the revision of a local model."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES) if folder.is_dir() else [folder]
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _locate(model_id: str, source: str, gguf_file: Optional[str]) -> tuple[str, Optional[str]]:
    """(pretrained_name_or_path, gguf_file) for from_pretrained."""
    if source == "gguf":
        p = Path(model_id)
        if p.is_file():
            return str(p.parent), p.name
        if gguf_file is None:
            ggufs = sorted(p.glob("*.gguf"))
            if len(ggufs) != 1:
                raise BadInput(f"model folder {p} holds {len(ggufs)} .gguf files; name one with [model] gguf_file")
            gguf_file = ggufs[0].name
        return str(p), gguf_file
    return model_id, None


def check_weight_shapes(folder: Path, config: Any, trust: bool) -> None:
    """Every tensor in the folder's safetensors has the shape the config's model needs, checked on an
    empty (meta-device) model before any weight is read: a mismatch names the tensor and both shapes."""
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return
    try:
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config, trust_remote_code=trust)
    except Exception:  # a family we cannot build empty: the full load below reports what is wrong
        return
    expected = {k: list(v.shape) for k, v in skeleton.state_dict().items()}
    for f in files:
        with safe_open(str(f), framework="numpy") as fh:
            for key in fh.keys():
                got = list(fh.get_slice(key).get_shape())
                want = expected.get(key)
                if want is not None and got != want:
                    raise BadInput(f"weight {key} in {f.name} has shape {got}, but the model in config.json "
                                   f"needs {want}; the weights do not belong to this config.json — re-save the model "
                                   f"(save_pretrained) or fix config.json")


UNPICKLING_ADVICE = re.compile(r"weights_only|pickl", re.IGNORECASE)  # a loader's hint to load a pickle


def _weights_error(model_id: str, exc: BaseException) -> BadInput:
    """Never pass on a library's advice to unpickle (weights_only=False): pickles can run code."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if UNPICKLING_ADVICE.search(msg):
        return BadInput(f"cannot load weights of {model_id!r}: they are a pickle-based file, which neuron-pilot does "
                        f"not load (a pickle can run code); convert them to safetensors (save_pretrained with "
                        f"safe_serialization=True where you trust the file) and point [model] id at the result")
    return BadInput(f"cannot load weights of {model_id!r}: {msg}; the files may be corrupt or truncated — "
                    f"re-download or re-save the model")


def load_model(model_cfg: dict[str, Any], source: str = "local") -> LoadedModel:
    """Load per the study's [model] section. Errors a user can fix are BadInput (exit 2)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    import transformers

    model_id = model_cfg["id"]
    trust = bool(model_cfg.get("trust_remote_code", False))
    revision = model_cfg.get("revision")
    device = pick_device(model_cfg.get("device", "auto"))
    dtype = pick_dtype(model_cfg.get("dtype", "auto"), device)
    name, gguf_file = _locate(model_id, source, model_cfg.get("gguf_file"))
    kwargs: dict[str, Any] = {"trust_remote_code": trust}
    if revision and source == "hub":
        kwargs["revision"] = revision
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    check_model_files(model_id, source, model_cfg.get("gguf_file"))  # also catches files damaged after `new`
    try:
        config = AutoConfig.from_pretrained(name, **kwargs)
    except OSError as exc:
        if source == "hub":
            offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
            why = "the hub is offline here (HF_HUB_OFFLINE=1)" if offline else "it could not be fetched from the hub"
            raise BadInput(f"model {model_id!r} is not in the local cache and {why}; download it where the hub is "
                           f"reachable (huggingface-cli download {model_id}) or point [model] id at a local folder") from None
        raise BadInput(f"cannot read model config from {name}: {str(exc).splitlines()[0]}; check the model files") from None
    except ValueError as exc:
        msg = str(exc).splitlines()[0]
        if "trust_remote_code" in msg:
            raise BadInput(f"model {model_id!r} needs custom code; set [model] trust_remote_code = true only if you trust it") from None
        raise BadInput(f"cannot load model {model_id!r}: {msg}; point [model] id at a model of a family "
                       f"transformers can load") from None
    except (TypeError, AttributeError, KeyError) as exc:  # a config.json whose keys do not fit its model_type
        raise BadInput(f"config.json of {model_id!r} does not fit its model_type ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''}); check the model files or re-save the model") from None
    adapter = adapter_for(config)  # fails early, before the weights load, for an unsupported family
    if source == "local":
        check_weight_shapes(Path(model_id), config, trust)
    weights = {"use_safetensors": True} if source == "local" else {}  # never unpickle a local .bin
    placement = placement_kwargs(model_cfg, device)
    try:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **weights, **kwargs, **placement)
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        raise _weights_error(model_id, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device_map = getattr(model, "hf_device_map", None)
    if model_cfg.get("device_map") is not None:
        device = main_device(device_map or {"": device})
    model.eval()
    adapter.act_modules(model)  # splits a shared activation module now, before anything hooks it
    if source == "hub":
        rev = getattr(config, "_commit_hash", None) or revision or "unknown"
    else:
        rev = "sha256:" + content_hash(Path(model_id))
    provenance = {
        "model_id": model_id,
        "source": source,
        "revision": rev,
        "architecture": type(model).__name__,
        "model_type": config.model_type,
        "adapter": adapter.name,
        "hook": adapter.hook,
        "parameters": sum(p.numel() for p in model.parameters()),
        "n_layers": adapter.n_layers(model),
        "d_ff": adapter.d_ff(model),
        "dtype": str(dtype).replace("torch.", ""),
        "device": str(device),
        "trust_remote_code": trust,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if model_cfg.get("device_map") is not None and device_map:
        provenance["device_map"] = {k: str(v) for k, v in device_map.items()}  # where each module was placed
    return LoadedModel(model, tokenizer, adapter, device, dtype, provenance)


def load_for_stage(ctx: Any) -> LoadedModel:
    """The study's model, loaded once per worker process."""
    def factory() -> LoadedModel:
        source = ctx.cfg.get("resolved", {}).get("model_source", "local")
        loaded = load_model(ctx.cfg["model"], source)
        ctx._cache["device"] = str(loaded.device)
        return loaded

    return ctx.cached("model", factory)
