"""Choose an export format; the app writes it with lab.report.write_export."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui.bindings import EXPORT_BINDINGS


def export_formats() -> tuple[str, ...]:
    """The formats lab.report writes."""
    try:
        from lab.report.exports import FORMATS
    except ImportError:
        return ("json",)
    return tuple(FORMATS)


class ExportScreen(ModalScreen[str | None]):
    BINDINGS = EXPORT_BINDINGS

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="export-dialog"):
            yield Static("Export the go/no-go summary as… (enter picks, esc cancels)", classes="dialog-title")
            yield OptionList(*[Option(fmt, id=fmt) for fmt in export_formats()], id="formats")

    def on_mount(self) -> None:
        options = self.query_one("#formats", OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
