"""The go/no-go summary as a plain dict in DESIGN.md's JSON export shape, and writing exports.

DESIGN.md's keys are kept exactly; extensions (documented in docs/report.md): study.trust_remote_code,
headline, cost, generation (the generation probe), artifacts[].check, provenance.model and provenance.data.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Optional

from lab.core.artifacts import atomic_write_bytes
from lab.core.errors import BadInput
from lab.gates.final import overall_verdict
from lab.core.provenance import provenance
from lab.report.cost import FullSize, cost
from lab.report.facts import StudyFacts, load_facts
from lab.report.generation import generation_summary
from lab.report.headline import headline
from lab.report.sources import artifact_list, corpus_files, model_record
from lab.store import Store, Study


def _iso(t: Optional[dt.datetime]) -> Optional[str]:
    return None if t is None else t.replace(tzinfo=dt.timezone.utc).isoformat()


def summary(store: Store, study: Study, size: Optional[FullSize] = None,
            facts: Optional[StudyFacts] = None) -> dict[str, Any]:
    facts = facts or load_facts(store, study)
    cfg = facts.cfg
    sid = facts.sid
    model_info = facts.model_info()
    decisions = {}
    for d in store.decisions(sid):
        decisions[d.stage] = {"verdict": d.verdict, "rationale": d.rationale, "by": d.by, "at": _iso(d.at)}
    stages = [{
        "name": r.stage, "status": r.state.value if hasattr(r.state, "value") else str(r.state),
        "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at),
        "compute_seconds": round(r.compute_seconds, 3), "decision": decisions.get(r.stage),
    } for r in facts.runs]
    metrics = [{
        "stage": m.stage, "name": m.name, "language": m.language or None, "condition": m.condition or None,
        "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "n": m.n,
    } for m in facts.metrics]
    verdict = overall_verdict(store, study)
    head = headline(store, study, facts)
    prov = provenance(study.seed, model_info)
    prov["model"] = model_record(facts)
    prov["data"] = {"corpus": corpus_files(facts)}
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
        "artifacts": artifact_list(facts),
        "verdict": {"decision": verdict.verdict, "reasons": verdict.reasons},
        "provenance": prov,
        "headline": head,
        "cost": cost(facts, head, size),
        "generation": generation_summary(facts),
    }


FORMATS = ("json", "md", "html", "csv")


def default_path(store: Store, stem: str, fmt: str) -> Path:
    return store.home.exports / f"{stem}.{fmt}"


def _check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> None:
    if fmt not in allowed:
        raise BadInput(f"--format {fmt!r} is not an export format (known: {', '.join(allowed)}); pick one of them")


def write_export(store: Store, study: Study, fmt: str, out: Optional[str | Path] = None,
                 size: Optional[FullSize] = None) -> Path:
    """Write one study's export in `fmt`; Markdown also writes <name>_charts/ beside the file."""
    _check_format(fmt)
    path = Path(out) if out else default_path(store, f"study-{study.id}-summary", fmt)
    if path.is_dir():
        raise BadInput(f"-o {path} is a folder; give a file path such as {path / ('summary.' + fmt)}")
    facts = load_facts(store, study)
    if fmt == "json":
        data = json.dumps(summary(store, study, size, facts), indent=2, ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(path, data)
    elif fmt == "csv":
        from lab.report.csv_export import metrics_frame

        atomic_write_bytes(path, metrics_frame(facts).to_csv(index=False).encode("utf-8"))
    else:
        from lab.report.document import build_document

        doc = build_document(store, study, size, facts)
        if fmt == "md":
            from lab.report.markdown import write_markdown

            write_markdown(doc, path)
        else:
            from lab.report.html import render_html

            atomic_write_bytes(path, render_html(doc).encode("utf-8"))
    return path


def write_comparison(store: Store, studies: list[Study], fmt: str, out: Optional[str | Path] = None,
                     size: Optional[FullSize] = None) -> Path:
    """The headline rows of several studies side by side, with differences against the first."""
    from lab.report.compare import write_compare

    _check_format(fmt)
    if len(studies) < 2:
        raise BadInput("--compare needs at least two studies (ids or names); e.g. --compare 1 2")
    ids = [int(s.id) for s in studies]  # type: ignore[arg-type]
    if len(set(ids)) != len(ids):
        raise BadInput("--compare names the same study twice; list each study once")
    path = Path(out) if out else default_path(store, "compare-" + "-".join(map(str, ids)), fmt)
    if path.is_dir():
        raise BadInput(f"-o {path} is a folder; give a file path such as {path / ('compare.' + fmt)}")
    write_compare(store, studies, fmt, path, size)
    return path
