"""Showing user-given text (study names, rationales, authors) safely: control characters escaped.

Why: a name is data, not terminal commands. A study named "x\\x1b[2J" must not clear the screen of
whoever runs `studies`, and a newline in a rationale must not forge a row in a CSV or a Markdown
table. Every place that prints such text (CLI, TUI, Markdown, CSV) calls `escape_controls`; HTML
escapes separately (and also calls this for the control characters).
"""

from __future__ import annotations

import unicodedata
from typing import Any

# C0, DEL, C1, and the format characters that reorder or hide text (bidi overrides, zero-width).
_FORMAT_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def escape_controls(value: Any) -> str:
    """`value` as text with every control / format character written as a visible escape (\\x1b,
    \\n, \\u202e ...); ordinary text, including non-Latin scripts, is unchanged. A backslash is kept
    as is, so an escaped name reads like the Python literal it came from."""
    text = "" if value is None else str(value)
    if text.isprintable():  # the common case: nothing to escape
        return text
    return "".join(_escape_char(ch) if unicodedata.category(ch) in _FORMAT_CATEGORIES else ch for ch in text)
