"""Creating a study: every check that needs no compute runs here, before anything is stored."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from lab.core.errors import BadInput
from lab.inputs.preflight import check_study_inputs
from lab.store import Store, Study
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


def create_study(store: Store, path: str | Path) -> Study:
    parsed, cfg, text, protocol = validate(path, store.home.root)
    return store.create_study(name=parsed.study.name, protocol=protocol.name, model_id=cfg["model"]["id"],
                              seed=parsed.study.seed, trust_remote_code=parsed.model.trust_remote_code,
                              config=cfg, source_toml=text, source_path=str(Path(path).resolve()),
                              stages=protocol.stage_names)
