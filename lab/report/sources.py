"""Provenance of a report's inputs: the model record, the corpus files' hashes, the artifact list.

Only named fields are copied: a report never dumps the environment or the raw config, so tokens
and secrets cannot leak into an export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.core.artifacts import sha256_file
from lab.report.facts import StudyFacts

MODEL_FIELDS = ("model_id", "source", "revision", "architecture", "model_type", "adapter", "hook", "parameters",
                "n_layers", "d_ff", "dtype", "device", "gpu_name", "trust_remote_code")


def model_record(facts: StudyFacts) -> dict[str, Any]:
    """What the model stage recorded (model.json), with the study's own id and trust flag."""
    info = facts.model_info()
    out = {k: info.get(k) for k in MODEL_FIELDS if k in info}
    out.setdefault("model_id", facts.study.model_id)
    out["trust_remote_code"] = bool(facts.study.trust_remote_code)
    out.setdefault("revision", facts.cfg["model"].get("revision"))
    return out


def corpus_files(facts: StudyFacts) -> dict[str, Any]:
    """sha256 of each language's corpus file: recorded at run time if the config holds them, else hashed now."""
    recorded = (facts.cfg.get("resolved") or {}).get("corpus_sha256")
    if isinstance(recorded, dict) and recorded:
        return {"when": "recorded when the study was created",
                "files": [{"language": k, "file": v.get("file") if isinstance(v, dict) else None,
                           "sha256": v.get("sha256") if isinstance(v, dict) else v} for k, v in sorted(recorded.items())]}
    root = facts.cfg["corpus"].get("path")
    files = []
    if root and Path(root).is_dir():
        for lang in facts.cfg["languages"]["all"]:
            for suffix in (".txt", ".jsonl"):
                p = Path(root) / f"{lang}{suffix}"
                if p.is_file():
                    files.append({"language": lang, "file": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size})
                    break
    return {"when": "hashed at export time (the files may have changed since the run read them)", "folder": root,
            "files": files}


def artifact_list(facts: StudyFacts) -> list[dict[str, Any]]:
    """Every recorded artifact with its sha256, re-checked now: ok, modified or missing."""
    out = []
    for a in facts.artifacts:
        found = facts.artifact_file(a.stage, a.name)
        check = "ok" if found is not None else ("modified" if f"{a.stage}/{a.name}" in facts.tampered else "missing")
        out.append({"stage": a.stage, "name": a.name, "path": a.path, "sha256": a.sha256, "bytes": a.bytes,
                    "check": check})
    return out
