"""Provenance for exports: python, package versions, git commit, hardware. Never environment tokens."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from typing import Any

from lab.core.paths import PROJECT_ROOT

PACKAGES = ("neuron-pilot", "torch", "transformers", "peft", "lm_eval", "textual", "sqlmodel", "pandas",
            "safetensors", "gguf")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def hardware() -> dict[str, Any]:
    import os

    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "system": platform.system()}


def provenance(seed: int, model: dict[str, Any] | None = None) -> dict[str, Any]:
    hw = hardware()
    if model and str(model.get("device", "")).startswith("cuda"):
        hw["gpu"] = model.get("gpu_name")
    return {"python": platform.python_version(), "packages": package_versions(), "git": git_commit(),
            "seed": seed, "hardware": hw}
