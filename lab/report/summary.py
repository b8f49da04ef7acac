"""The go/no-go summary as a plain dict in DESIGN.md's JSON export shape, and writing exports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Optional

from lab.artifacts import atomic_write_bytes
from lab.errors import BadInput
from lab.gates import overall_verdict
from lab.provenance import provenance
from lab.store import Store, Study


def _iso(t: Optional[dt.datetime]) -> Optional[str]:
    return None if t is None else t.replace(tzinfo=dt.timezone.utc).isoformat()


def summary(store: Store, study: Study) -> dict[str, Any]:
    cfg = json.loads(study.config_json)
    sid = int(study.id)  # type: ignore[arg-type]
    model_art = [a for a in store.artifacts(sid, "model") if a.name == "model.json"]
    model_info: dict[str, Any] = {}
    if model_art:
        try:
            model_info = json.loads(store.home.inside(Path(model_art[0].path)).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            model_info = {}
    decisions = {}
    for d in store.decisions(sid):
        decisions[d.stage] = {"verdict": d.verdict, "rationale": d.rationale, "by": d.by, "at": _iso(d.at)}
    stages = [{
        "name": r.stage, "status": r.state.value if hasattr(r.state, "value") else str(r.state),
        "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at),
        "compute_seconds": round(r.compute_seconds, 3), "decision": decisions.get(r.stage),
    } for r in store.stage_runs(sid)]
    metrics = [{
        "stage": m.stage, "name": m.name, "language": m.language or None, "condition": m.condition or None,
        "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "n": m.n,
    } for m in store.metrics(sid)]
    artifacts = [{"stage": a.stage, "name": a.name, "path": a.path, "sha256": a.sha256, "bytes": a.bytes}
                 for a in store.artifacts(sid)]
    verdict = overall_verdict(store, study)
    return {
        "study": {
            "id": sid, "name": study.name, "protocol": study.protocol,
            "model": {"id": study.model_id, "revision": model_info.get("revision"),
                      "dtype": model_info.get("dtype", cfg["model"]["dtype"]),
                      "device": model_info.get("device", cfg["model"]["device"])},
            "languages": {"all": cfg["languages"]["all"], "targets": cfg["languages"]["targets"]},
            "trust_remote_code": study.trust_remote_code,
        },
        "stages": stages,
        "metrics": metrics,
        "artifacts": artifacts,
        "verdict": {"decision": verdict.verdict, "reasons": verdict.reasons},
        "provenance": provenance(study.seed, model_info),
    }


FORMATS = ("json", "md", "html", "csv")


def write_export(store: Store, study: Study, fmt: str, out: Optional[str | Path] = None) -> Path:
    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt!r} is not an export format (known: {', '.join(FORMATS)})")
    if fmt != "json":
        raise BadInput(f"--format {fmt} is not built yet in this version of neuron-pilot; use --format json")
    path = Path(out) if out else store.home.exports / f"study-{study.id}-summary.{fmt}"
    data = json.dumps(summary(store, study), indent=2, ensure_ascii=False).encode("utf-8")
    atomic_write_bytes(path, data)
    return path
