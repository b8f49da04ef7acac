"""Exports of a study: the DESIGN.md JSON summary (and, as they land, Markdown, HTML and CSV)."""

from lab.report.summary import summary, write_export

__all__ = ["summary", "write_export"]
