"""Every binding with its key (after the user's keymap), id and scope."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.bindings import MODAL_CLOSE_BINDINGS, SCOPES, effective_key


def bindings_table(keymap: dict[str, str]) -> Table:
    table = Table(show_edge=False, pad_edge=False, expand=True)
    table.add_column("where", style="dim", no_wrap=True)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("does")
    table.add_column("id", style="dim", no_wrap=True)
    for scope, group in SCOPES.items():
        for b in group:
            table.add_row(scope, effective_key(b, keymap), b.description, b.id or "")
    table.add_row("everywhere", "ctrl+p", "Command palette (run, decide, export, open…)", "")
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = MODAL_CLOSE_BINDINGS

    def compose(self) -> ComposeResult:
        keymap = getattr(self.app, "user_keymap", {})
        with Vertical(id="dialog", classes="help-dialog"):
            yield Static("Keys  (remap by id in <home>/keymap.toml — see docs/tui.md; esc closes)",
                         classes="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(bindings_table(keymap), id="help-table")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
