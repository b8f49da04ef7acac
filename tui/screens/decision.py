"""Record a gate decision: the rule's recommendation, then verdict, rationale and author."""

from __future__ import annotations

import getpass
import os
from typing import Any, Optional

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from lab.core.errors import BadInput
from lab.store import Decision, Store
from tui.bindings import DECISION_BINDINGS
from tui.render.stage_info import recommendation_text
from tui.widgets.form_input import FormInput

VERDICTS = ("go", "no-go", "revise", "inconclusive")  # DESIGN.md's decision verdicts


def default_author() -> str:
    user = os.environ.get("USER") or os.environ.get("USERNAME")
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:
        return ""


class DecisionScreen(ModalScreen[Optional[Decision]]):
    """Dismisses with the stored Decision, or None when cancelled."""

    BINDINGS = DECISION_BINDINGS

    def __init__(self, store: Store, study_id: int, stage: str, title: str,
                 recommendation: Optional[dict[str, Any]]) -> None:
        super().__init__()
        self.store, self.study_id, self.stage, self.stage_title = store, study_id, stage, title
        self.recommendation = recommendation

    def compose(self) -> ComposeResult:
        rec = self.recommendation
        suggested = rec.get("verdict") if rec else None
        with Vertical(id="dialog", classes="decision-dialog"):
            yield Static(f"Gate decision: {self.stage_title} ({self.stage})", classes="dialog-title")
            with VerticalScroll(id="recommendation"):
                body = recommendation_text(rec) if rec else [Text("The rule gave no recommendation.", style="dim")]
                yield Static(Group(*body))
            with Horizontal(classes="form-row"):
                yield Label("Verdict", classes="form-label")
                yield Select([(v, v) for v in VERDICTS], value=suggested if suggested in VERDICTS else "go",
                             allow_blank=False, compact=True, id="verdict")
            with Horizontal(classes="form-row"):
                yield Label("Rationale", classes="form-label")
                yield FormInput(placeholder="e.g. the gain interval lies below the threshold (required)",
                                compact=True, id="rationale")
            with Horizontal(classes="form-row"):
                yield Label("Author", classes="form-label")
                yield FormInput(value=default_author(), placeholder="e.g. ana", compact=True, id="author")
            yield Static("", id="decision-error", classes="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#rationale", Input).focus()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        verdict = str(self.query_one("#verdict", Select).value)
        rationale = self.query_one("#rationale", Input).value.strip()
        author = self.query_one("#author", Input).value.strip()
        error = self.query_one("#decision-error", Static)
        if not rationale:
            error.update("A decision needs a rationale: say why in a sentence.")
            self.query_one("#rationale", Input).focus()
            return
        if not author:
            error.update("A decision needs an author.")
            self.query_one("#author", Input).focus()
            return
        try:
            decision = self.store.add_decision(self.study_id, self.stage, verdict, rationale, author,
                                               self.recommendation)
        except BadInput as exc:
            error.update(str(exc))
            return
        self.dismiss(decision)

    def action_cancel(self) -> None:
        self.dismiss(None)
