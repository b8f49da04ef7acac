"""The New-study form: fields with inline errors; writes <home>/studies/<name>.toml and creates the
study only when every check passes."""

from __future__ import annotations

import time
from typing import Optional

from textual import events, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from tui.bindings import FORM_BINDINGS
from tui.widgets.form_input import FormInput
from tui.lab_app import lab_app
from tui.study_form import FIELDS, KINDS, METHODS, VALUES, FormValues, check_values, study_file_path, validate_and_create

LABELS = {"name": "Name", "model": "Model", "languages": "Languages", "targets": "Targets", "corpus": "Corpus",
          "tokens": "Tokens/lang", "method": "Method", "kind": "Intervention", "value": "Value", "tasks": "Tasks",
          "limit": "Eval limit"}
# Placeholders are examples (and drawn dim and italic, see app.tcss), never values you could take for filled in.
PLACEHOLDERS = {"name": "e.g. swahili-pilot", "model": "e.g. ./models/llama or org/model (folder, .gguf, hub id)",
                "languages": "e.g. en, fr, de, sw", "targets": "e.g. sw", "corpus": "e.g. ./corpora (<lang>.txt files)",
                "tasks": "e.g. demo_xnli, demo_xcopa", "limit": "e.g. 200 items per task and language (blank: all)"}
CHOICES = {"method": METHODS, "kind": KINDS, "value": VALUES}


class NewStudyScreen(Screen[None]):
    BINDINGS = FORM_BINDINGS

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self.shown_errors: dict[str, str] = {}  # field → the problem shown under it
        self.existing_names: set[str] = set()

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
                            yield FormInput(value=getattr(defaults, name), placeholder=PLACEHOLDERS.get(name, ""),
                                        compact=True, id=f"f-{name}",
                                        type="integer" if name in ("tokens", "limit") else "text")
                    yield Static("", id=f"err-{name}", classes="form-error")
            yield Static("", id="err-form", classes="form-error")
            yield Static("", id="form-status")
            with Horizontal(classes="buttons"):
                yield Button("Create (ctrl+s)", id="create", variant="primary")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer()

    AUTO_FOCUS = "#f-name"
    TYPE_AHEAD = True  # keys typed before this screen was ready are its own (NeuronPilotApp.on_event)

    def on_mount(self) -> None:
        self.ready_at = time.monotonic()
        self.sub_title = "new study"
        self.query_one("#f-name", Input).focus()
        self.existing_names = {s.name for s in lab_app(self).store.studies()}
        self._show_errors({})

    def on_key(self, event: events.Key) -> None:
        """Keys typed ahead of the screen (a burst over a slow link while it was being built; the app
        hands them here, see NeuronPilotApp.on_event) go in order to the field with focus (the name
        field first), and tab / shift+tab still move between fields, so none is lost."""
        if event.key in ("tab", "shift+tab"):
            self.focus_next() if event.key == "tab" else self.focus_previous()
            event.stop()
            return
        target = self.focused if isinstance(self.focused, Input) else None
        if target is None and self.focused is None:
            target = self.query_one("#f-name", Input)
            target.focus()
        if target is not None and event.is_printable and event.character:
            target.insert_text_at_cursor(event.character)
            event.stop()

    def on_input_changed(self, event: Input.Changed) -> None:
        """A problem shown under a field goes away as soon as the field is fixed (or says the new one)."""
        field = (event.input.id or "").removeprefix("f-")
        if field not in self.shown_errors:
            return
        quick = check_values(self.values(), self.existing_names)
        if field in quick:
            if quick[field] != self.shown_errors[field]:
                self.shown_errors[field] = quick[field]
                self.query_one(f"#err-{field}", Static).update(quick[field])
            return
        del self.shown_errors[field]
        box = self.query_one(f"#err-{field}", Static)
        box.update("")
        box.display = False

    def values(self) -> FormValues:
        out = FormValues()
        for name in FIELDS:
            widget = self.query_one(f"#f-{name}")
            value = widget.value if isinstance(widget, (Input, Select)) else ""
            setattr(out, name, str(value))
        return out

    def _show_errors(self, errors: dict[str, str]) -> None:
        self.shown_errors = dict(errors)
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
