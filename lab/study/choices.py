"""Study-file choices that name registered parts (methods, interventions, tasks), checked before
anything is stored. Each registry is consulted lazily so a part that is not built yet is reported
as such instead of failing later inside a worker."""

from __future__ import annotations

import importlib
from typing import Any

from lab.core.errors import BadInput


def _names(module: str, attr: str) -> list[str] | None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    return list(getattr(mod, attr).names())


def validate_choices(cfg: dict[str, Any], protocol: Any) -> None:
    method = cfg["identify"]["method"]
    methods = _names("lab.neurons.identify", "METHODS")
    if methods is not None and (method not in methods or method == "random"):
        choices = ", ".join(m for m in methods if m != "random")
        raise BadInput(f"[identify] method {method!r} is not an identification method (known: {choices}); fix it")
    # [intervention] value is already restricted by the study-file schema (lab/study/studyfile.py), which
    # mirrors lab.neurons.interventions' registry without importing torch at `new` time.
    try:
        tasks = importlib.import_module("lab.inputs.tasks")
    except ModuleNotFoundError as exc:
        if exc.name != "lab.inputs.tasks":
            raise
    else:
        tasks.check_tasks(cfg)
