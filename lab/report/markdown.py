"""The Markdown export: the report document as GitHub-flavoured Markdown, charts as PNG files in
<name>_charts/ beside it, referenced by relative paths so the folder can be moved as a whole."""

from __future__ import annotations

import html
from urllib.parse import quote
from pathlib import Path

import pandas as pd

from lab.core.artifacts import atomic_write_bytes
from lab.core.text import escape_controls
from lab.report.document import Bullets, Chart, Document, Para, Table


def md_text(text: str) -> str:
    """User or stored text made inert in Markdown: HTML escaped, table pipes escaped, one line."""
    out = html.escape(escape_controls(" ".join(str(text).split())), quote=False)
    for ch in ("\\", "|", "*", "_", "`", "[", "]"):
        out = out.replace(ch, "\\" + ch)
    return out


def md_table(df: pd.DataFrame) -> str:
    cols = [md_text(c) or " " for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(md_text(v) for v in row) + " |")
    return "\n".join(lines)


def render_markdown(doc: Document, chart_dir: str) -> tuple[str, dict[str, bytes]]:
    """(markdown text, {file name: PNG bytes}); chart links are `chart_dir/<name>.png`."""
    out = [f"# {md_text(doc.title)}", ""]
    files: dict[str, bytes] = {}
    for sec in doc.sections:
        out += [f"## {md_text(sec.title)}", ""]
        for b in sec.blocks:
            if isinstance(b, Para):
                text = md_text(b.text)
                out += [f"**{text}**" if b.strong else text, ""]
            elif isinstance(b, Bullets):
                out += [f"- {md_text(x)}" for x in b.items] + [""]
            elif isinstance(b, Table):
                if b.caption:
                    out += [f"*{md_text(b.caption)}*", ""]
                out += [md_table(b.frame), ""]
            elif isinstance(b, Chart):
                name = f"{b.name}.png"
                files[name] = b.png
                out += [f"![{md_text(b.title)}]({chart_dir}/{name})", ""]
    return "\n".join(out).rstrip() + "\n", files


def write_markdown(doc: Document, path: Path) -> Path:
    chart_dir = path.parent / f"{path.stem}_charts"
    text, files = render_markdown(doc, quote(chart_dir.name))
    if chart_dir.is_dir():  # charts of an earlier export of the same name would be stale
        for old in chart_dir.glob("*.png"):
            old.unlink()
    for name, png in files.items():
        atomic_write_bytes(chart_dir / name, png)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
