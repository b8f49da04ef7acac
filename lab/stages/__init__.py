"""Stage implementations, one module per stage, each registering its function in STAGES by name.

A protocol stage names its implementation (`runs`, default: the stage's name); it must be one of
STAGE_NAMES, which the runner checks before any stage starts. `implementation(name)` imports only
that stage's module, so a light stage (criteria) starts without importing torch.

To add one: a module lab/stages/<name>.py with ``@STAGES.register("<name>") def run(ctx: StageContext)``
and its name in STAGE_NAMES.
"""

from __future__ import annotations

import importlib
from typing import Callable

from lab.core.errors import BadInput
from lab.core.registry import Registry

STAGES: Registry[Callable[..., None]] = Registry("stage")

STAGE_NAMES = ("criteria", "model", "identify", "reproduce", "intervene", "generate", "evaluate", "decide")
# Stages whose unit reads lab.db (recorded results; it still writes only events): they run on the
# coordinator's machine with the local executor, whatever the study's [compute] executor says.
READS_STORE = ("decide",)


def check_implementation(name: str, stage: str = "") -> None:
    """A protocol stage's implementation must be one of STAGE_NAMES: bad input otherwise."""
    if name not in STAGE_NAMES:
        which = f"stage {stage!r} runs {name!r}" if stage and stage != name else f"stage {name!r}"
        raise BadInput(f"protocol {which}, which is not a stage implementation of neuron-pilot "
                       f"(known: {', '.join(STAGE_NAMES)}); fix the protocol's stage name or its runs = ...")


def implementation(name: str) -> Callable[..., None]:
    """The registered function of stage implementation `name`, importing only its module."""
    check_implementation(name)
    importlib.import_module(f"lab.stages.{name}")
    return STAGES.get(name)


def load_all() -> Registry[Callable[..., None]]:
    """Every stage module imported (and so registered)."""
    for name in STAGE_NAMES:
        importlib.import_module(f"lab.stages.{name}")
    return STAGES


def unit_parts(name: str, cfg: dict) -> list[str]:
    """The units a stage implementation runs as before its own (its merge) unit, from the study's config:
    none for most; `identify` with `[identify] shards = N` > 1 runs N shards (``shard-i-of-N``) whose
    statistics its own unit merges; `evaluate` with `[compute] max_parallel = N` > 1 runs N units
    (``runs-i-of-N``) that score every N-th distinct (language, condition) run, and its own unit then
    finds every run scored and summarises them (one bootstrap, as a sequential run); a fine-tune `intervene`
    with `max_parallel = N` > 1 runs N units (``variants-i-of-N``) that train every N-th adapter, and its own
    unit finds them trained and writes the plan and artifacts. Read by the
    coordinator, so nothing here imports a stage module."""
    if name == "identify":
        n = int((cfg.get("identify") or {}).get("shards", 1))
        return [f"shard-{i + 1}-of-{n}" for i in range(n)] if n > 1 else []
    n = int((cfg.get("compute") or {}).get("max_parallel", 1))
    if name == "evaluate":  # [compute] max_parallel > 1: the (language, condition) runs fan out
        return [f"runs-{i + 1}-of-{n}" for i in range(n)] if n > 1 else []
    if name == "intervene" and (cfg.get("intervention") or {}).get("kind") == "finetune":  # the adapters fan out
        return [f"variants-{i + 1}-of-{n}" for i in range(n)] if n > 1 else []
    return []


def part_info(part: str) -> dict:
    """``shard-2-of-3`` → {"name": "shard-2-of-3", "index": 1, "count": 3}."""
    head, _, count = part.rpartition("-of-")
    return {"name": part, "index": int(head.rsplit("-", 1)[1]) - 1, "count": int(count)}
