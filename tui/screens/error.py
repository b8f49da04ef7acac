"""One modal for errors that escape a background worker: what failed, the message, the details."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.bindings import MODAL_CLOSE_BINDINGS


class ErrorScreen(ModalScreen[None]):
    BINDINGS = MODAL_CLOSE_BINDINGS

    def __init__(self, title: str, message: str, details: str = "") -> None:
        super().__init__()
        self.error_title, self.message, self.details = title, message, details

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="error-dialog"):
            yield Static(self.error_title, classes="dialog-title")
            yield Static(self.message, id="error-message")
            if self.details:
                with VerticalScroll(id="error-details"):
                    yield Static(self.details, markup=False)
            yield Button("Close (esc)", id="close", variant="error")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, _event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
