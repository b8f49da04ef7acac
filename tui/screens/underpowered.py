"""Power before compute in the UI: before running a study whose evaluation cannot detect its
min_gain_points, ask the user to confirm (the headless CLI refuses instead; docs/statistics.md)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class UnderpoweredScreen(ModalScreen[bool]):
    """"This study cannot detect its threshold: run anyway?" — y / enter runs, n / esc does not."""

    BINDINGS = [Binding("y", "answer(True)", "Run anyway"), Binding("n", "answer(False)", "Do not run"),
                Binding("escape", "answer(False)", "Do not run", show=False)]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="error-dialog"):
            yield Static("Underpowered study", classes="dialog-title")
            yield Static(self.message, id="underpowered-message", markup=False)
            yield Static("Run anyway? The verdict will likely be inconclusive.")
            with Horizontal():
                yield Button("Run anyway (y)", id="run-anyway", variant="warning")
                yield Button("Do not run (n)", id="do-not-run", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#do-not-run", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "run-anyway")

    def action_answer(self, run: bool) -> None:
        self.dismiss(run)


def refusal_for(store: Any, study_id: int) -> Optional[str]:
    """The underpowered message for a study, or None (also None when it cannot be computed: the
    stages then report their own errors)."""
    from lab.gates.power import underpowered_refusal

    try:
        return underpowered_refusal(store, store.study(study_id))
    except Exception:  # noqa: BLE001 - a study the check cannot read is left to the stages to reject
        return None


def run_confirmed(app: Any, store: Any, study_id: int, start: Callable[[], Any]) -> None:
    """Call `start` at once, or after the user confirms an underpowered study (once per study per session)."""
    accepted: set[int] = app.__dict__.setdefault("_underpowered_accepted", set())
    message = None if study_id in accepted else refusal_for(store, study_id)
    if message is None:
        start()
        return

    def answered(run: Optional[bool]) -> None:
        if run:
            accepted.add(study_id)
            start()
        else:
            app.notify("not run: the study cannot detect its min_gain_points (see docs/statistics.md)",
                       severity="warning")

    app.push_screen(UnderpoweredScreen(message.replace(", or pass --accept-underpowered", "")), answered)
