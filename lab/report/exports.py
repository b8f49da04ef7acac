"""Writing exports: one study in a chosen format (JSON, Markdown, HTML, CSV), or several side by side.

Kept apart from lab.report.summary (the JSON dict) so the formats that build on the summary can import it
without a cycle: this module dispatches to them, and nothing in lab.report imports it back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from lab.core.artifacts import atomic_write_bytes
from lab.core.errors import BadInput
from lab.report.cost import FullSize
from lab.report.facts import load_facts
from lab.report.summary import summary
from lab.store import Store, Study


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
