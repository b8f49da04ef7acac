"""Stage implementations, registered by name. A protocol stage whose implementation is not
registered is refused with a plain 'not built yet' message — never a fake result.

To add one: a module in this package with ``@STAGES.register("name") def run(ctx: StageContext)``,
imported in ``load_all`` below.
"""

from __future__ import annotations

import importlib
from typing import Callable

from lab.core.registry import Registry

STAGES: Registry[Callable[..., None]] = Registry("stage", hint="it is not built in this version of neuron-pilot")

# Modules that register stages; a missing module simply means the stage is not built yet.
_MODULES = [
    "lab.stages.criteria",
    "lab.stages.model",
    "lab.stages.identify",
    "lab.stages.reproduce",
    "lab.stages.intervene",
    "lab.stages.generate",
    "lab.stages.evaluate",
    "lab.stages.decide",
]


def load_all() -> Registry[Callable[..., None]]:
    for mod in _MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
    return STAGES


def built_stage_names() -> list[str]:
    """Names of built stages, found without importing torch (used by the UI and the runner)."""
    import importlib.util

    names = []
    for mod in _MODULES:
        if importlib.util.find_spec(mod) is not None:
            names.append(mod.rsplit(".", 1)[1])
    return names
