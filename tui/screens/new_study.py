"""The New-study form: fields with inline errors; writes <home>/studies/<name>.toml and creates the
study only when every check passes."""

from __future__ import annotations

from typing import Optional

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from tui.bindings import FORM_BINDINGS
from tui.lab_app import lab_app
from tui.study_form import FIELDS, KINDS, METHODS, VALUES, FormValues, study_file_path, validate_and_create

LABELS = {"name": "Name", "model": "Model", "languages": "Languages", "targets": "Targets", "corpus": "Corpus",
          "tokens": "Tokens/lang", "method": "Method", "kind": "Intervention", "value": "Value", "tasks": "Tasks",
          "limit": "Eval limit"}
PLACEHOLDERS = {"name": "swahili-pilot", "model": "model folder, .gguf file or hub id",
                "languages": "en, fr, de, sw", "targets": "sw", "corpus": "folder with <lang>.txt files",
                "tasks": "demo_xnli, demo_xcopa", "limit": "items per task and language (blank: all)"}
CHOICES = {"method": METHODS, "kind": KINDS, "value": VALUES}


class NewStudyScreen(Screen[None]):
    BINDINGS = FORM_BINDINGS

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        defaults = FormValues()
        with VerticalScroll(id="form"):
            for name in FIELDS:
                with Vertical(classes="form-field"):
                    with Horizontal(classes="form-row"):
                        yield Label(LABELS[name], classes="form-label")
                        if name in CHOICES:
                            yield Select([(c, c) for c in CHOICES[name]], value=getattr(defaults, name),
                                         allow_blank=False, compact=True, id=f"f-{name}")
                        else:
                            yield Input(value=getattr(defaults, name), placeholder=PLACEHOLDERS.get(name, ""),
                                        compact=True, id=f"f-{name}",
                                        type="integer" if name in ("tokens", "limit") else "text")
                    yield Static("", id=f"err-{name}", classes="form-error")
            yield Static("", id="err-form", classes="form-error")
            yield Static("", id="form-status")
            with Horizontal(classes="buttons"):
                yield Button("Create (ctrl+s)", id="create", variant="primary")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "new study"
        self.query_one("#f-name", Input).focus()
        self._show_errors({})

    def values(self) -> FormValues:
        out = FormValues()
        for name in FIELDS:
            widget = self.query_one(f"#f-{name}")
            value = widget.value if isinstance(widget, (Input, Select)) else ""
            setattr(out, name, str(value))
        return out

    def _show_errors(self, errors: dict[str, str]) -> None:
        for name in (*FIELDS, "form"):
            box = self.query_one(f"#err-{name}", Static)
            box.update(errors.get(name, ""))
            box.display = name in errors
        first = next((n for n in FIELDS if n in errors), None)
        if first:
            self.query_one(f"#f-{first}").focus()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.action_create()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self.action_create()
        else:
            self.action_cancel()

    def action_create(self) -> None:
        if self.busy:
            return
        values = self.values()
        self.busy = True
        home = lab_app(self).store.home.root
        where = study_file_path(home, values.name.strip() or "NAME")
        self.query_one("#form-status", Static).update(f"checking and writing {where} …")
        self._submit(values)

    @work(thread=True, group="create", exclusive=True, exit_on_error=False)
    def _submit(self, values: FormValues) -> tuple[Optional[int], dict[str, str]]:
        store = lab_app(self).store
        names = {s.name for s in store.studies()}
        return validate_and_create(store.home.root, values, names)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "create" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.busy = False
        self.query_one("#form-status", Static).update("")
        if event.state == WorkerState.ERROR:
            self._show_errors({"form": f"could not create the study: {event.worker.error}"})
            return
        study_id, errors = event.worker.result  # type: ignore[misc]
        if errors or study_id is None:
            self._show_errors(errors or {"form": "the study was not created"})
            return
        self.app.notify(f"study {study_id} created")
        lab_app(self).open_study(study_id, replace=True)

    def action_cancel(self) -> None:
        self.app.pop_screen()
