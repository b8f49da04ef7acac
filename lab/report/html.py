"""The HTML export: ONE self-contained file (inline CSS, charts as base64 PNG, no script, no external
fetch) that prints well. Every piece of text goes through html.escape; tables through pandas'
to_html with escaping on."""

from __future__ import annotations

import base64
from html import escape

import pandas as pd

from lab.report.document import Bullets, Chart, Document, Para, Table

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; max-width: 1100px;
       margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: .3em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
.verdict { display: inline-block; padding: .15em .6em; border-radius: 4px; font-weight: 700; color: #fff; }
.verdict-go { background: #1b7f3b; } .verdict-no-go { background: #b3261e; } .verdict-undecided { background: #8a6d00; } .verdict-inconclusive { background: #6a3d9a; }
p.strong { font-weight: 600; }
table { border-collapse: collapse; margin: .4em 0 1em; font-size: 12.5px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td { font-variant-numeric: tabular-nums; overflow-wrap: break-word; }
p.caption { font-style: italic; color: #555; margin: .8em 0 .2em; font-size: 12.5px; }
figure { margin: .6em 0 1.2em; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 12px; }
@media print {
  body { max-width: none; margin: 0; font-size: 11px; color: #000; }
  h2 { page-break-after: avoid; } .table, figure { page-break-inside: avoid; }
  .verdict { color: #000; border: 2px solid #000; background: none !important; }
  a { color: #000; text-decoration: none; }
}
"""


def _table(df: pd.DataFrame, caption: str) -> str:
    body = df.to_html(index=False, escape=True, border=0, na_rep="—")
    cap = f'<p class="caption">{escape(caption)}</p>\n' if caption else ""
    return f'<div class="table">{cap}{body}</div>'



def _chart(c: Chart) -> str:
    data = base64.b64encode(c.png).decode("ascii")
    return (f'<figure class="chart" id="chart-{escape(c.name)}"><img alt="{escape(c.title)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{escape(c.title)}</figcaption></figure>')


def render_html(doc: Document) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{escape(doc.title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
             f'<h1>{escape(doc.title)}</h1>',
             f'<p><span class="verdict verdict-{escape(doc.verdict)}">{escape(doc.verdict.upper())}</span></p>']
    for sec in doc.sections:
        parts.append(f"<section><h2>{escape(sec.title)}</h2>")
        for b in sec.blocks:
            if isinstance(b, Para):
                parts.append(f'<p class="strong">{escape(b.text)}</p>' if b.strong else f"<p>{escape(b.text)}</p>")
            elif isinstance(b, Bullets):
                parts.append("<ul>" + "".join(f"<li>{escape(x)}</li>" for x in b.items) + "</ul>")
            elif isinstance(b, Table):
                parts.append(_table(b.frame, b.caption))
            elif isinstance(b, Chart):
                parts.append(_chart(b))
        parts.append("</section>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
