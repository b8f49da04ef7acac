"""Exports of a study: the go/no-go report as JSON (DESIGN.md's shape), Markdown, HTML and CSV, and
comparisons of several studies. See docs/report.md for what each format holds."""

from lab.report.cost import FullSize
from lab.report.headline import headline
from lab.report.exports import FORMATS, write_comparison, write_export
from lab.report.summary import summary

__all__ = ["FORMATS", "FullSize", "headline", "summary", "write_comparison", "write_export"]
