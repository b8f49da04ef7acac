"""Fine-tune checkpoints as safetensors + JSON (no pickle): state flattening, atomic folders, save and restore."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from lab.neurons.finetune.adapters import save_adapter


def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "s") -> Any:
    """A state_dict as JSON with its tensors moved to `tensors` (for a safetensors file)."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().to("cpu").clone().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, flatten_state(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint at {prefix}")


def unflatten_state(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def commit_dir(tmp: Path, final: Path) -> None:
    """Rename a fully written folder into place: a reader sees all of it or none."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)

def checkpoints(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for d in checkpoint_dir.glob("step-*"):
        if d.is_dir() and (d / "state.json").is_file() and d.name[5:].isdigit():
            found.append((int(d.name[5:]), d))
    return sorted(found)


def save_checkpoint(checkpoint_dir: Path, step: int, model: nn.Module, opt: torch.optim.Optimizer,
                     sched: Any, param_names: list[str], losses: list[float], fingerprint: str) -> Path:
    from safetensors.torch import save_file

    tmp = checkpoint_dir / f".step-{step:07d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_adapter(model, tmp / "adapter")
    tensors: dict[str, torch.Tensor] = {}
    write_json(tmp / "optimizer.json", {"param_names": param_names,
                                         "state_dict": flatten_state(opt.state_dict(), tensors, "opt")})
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    write_json(tmp / "scheduler.json", flatten_state(sched.state_dict(), {}, "sched"))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(rng, str(tmp / "rng.safetensors"))
    write_json(tmp / "state.json", {"step": step, "losses": losses, "fingerprint": fingerprint})
    final = checkpoint_dir / f"step-{step:07d}"
    commit_dir(tmp, final)
    for old_step, old in checkpoints(checkpoint_dir):
        if old_step != step:
            shutil.rmtree(old, ignore_errors=True)
    return final


def restore_checkpoint(checkpoint_dir: Path, fingerprint: str, model: nn.Module, opt: torch.optim.Optimizer,
                        sched: Any, param_names: list[str]) -> tuple[int, list[float]]:
    """Load the latest checkpoint of this exact run; (0, []) when there is none (or it is another run's)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    found = checkpoints(checkpoint_dir)
    if not found:
        return 0, []
    step, folder = found[-1]
    state = read_json(folder / "state.json")
    if state.get("fingerprint") != fingerprint:  # settings, data or neurons changed: start over
        for _, d in found:
            shutil.rmtree(d, ignore_errors=True)
        return 0, []
    result = set_peft_model_state_dict(model, load_file(str(folder / "adapter" / "adapter_model.safetensors")))
    if getattr(result, "unexpected_keys", None):
        raise RuntimeError(f"checkpoint {folder} holds adapter tensors this run does not have: "
                           f"{result.unexpected_keys[:3]}")
    saved = read_json(folder / "optimizer.json")
    if saved["param_names"] != param_names:
        raise RuntimeError(f"checkpoint {folder} was written for other adapter parameters; delete it")
    opt.load_state_dict(unflatten_state(saved["state_dict"], load_file(str(folder / "optimizer.safetensors"))))
    sched.load_state_dict(unflatten_state(read_json(folder / "scheduler.json"), {}))
    rng = load_file(str(folder / "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    if torch.cuda.is_available():
        states = [rng[f"cuda.{i}"] for i in range(torch.cuda.device_count()) if f"cuda.{i}" in rng]
        if states:
            torch.cuda.set_rng_state_all(states)
    return step, list(state["losses"])
