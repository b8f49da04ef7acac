"""The studies list: every study in the lab home with its current stage, state and verdict."""

from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.bindings import HOME_BINDINGS
from tui.formatting import clip, relative_time, short_model
from tui.lab_app import lab_app
from tui.study_state import study_rows

COLUMNS = ("id", "name", "model", "stage", "state", "activity", "verdict")
STATE_STYLE = {"running": "bold cyan", "failed": "bold red", "interrupted": "yellow", "decide": "bold magenta",
               "done": "green", "stop": "bold yellow"}
VERDICT_STYLE = {"go": "green", "no-go": "red", "inconclusive": "magenta", "undecided": "dim"}


class HomeScreen(Screen[None]):
    BINDINGS = HOME_BINDINGS

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="studies", cursor_type="row", zebra_stripes=True)
        yield Static("", id="home-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "studies"
        table = self.query_one("#studies", DataTable)
        table.add_columns(*COLUMNS)
        self.refresh_rows()
        table.focus()

    def on_screen_resume(self) -> None:
        self.refresh_rows()

    def refresh_rows(self) -> None:
        table = self.query_one("#studies", DataTable)
        keep: Optional[int] = self.selected_study_id()
        table.clear()
        app = lab_app(self)
        now = app.clock()
        rows = study_rows(app.store)
        for r in rows:
            table.add_row(str(r.id), clip(r.name, 13), short_model(r.model, 13), r.stage,
                          Text(r.state, style=STATE_STYLE.get(r.state.split(":")[0], "")),
                          relative_time(r.last_activity, now),
                          Text(r.verdict, style=VERDICT_STYLE.get(r.verdict, "")), key=str(r.id))
        if keep is not None and str(keep) in {str(r.id) for r in rows}:
            table.move_cursor(row=table.get_row_index(str(keep)))
        hint = self.query_one("#home-hint", Static)
        if rows:
            hint.update("enter opens · r runs/resumes · n new study · ? keys · ctrl+p commands")
        else:
            hint.update(Text.assemble("No studies yet. Press ", ("d", "bold reverse"), " to create and run the demo "
                                      "study (a tiny model, six languages, a few minutes), or ", ("n", "bold"),
                                      " for a new study of your own."))

    def selected_study_id(self) -> Optional[int]:
        table = self.query_one("#studies", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:
            return None
        return int(key.value) if key.value is not None else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            lab_app(self).open_study(int(event.row_key.value))

    def action_open_study(self) -> None:
        sid = self.selected_study_id()
        if sid is None:
            self.notify("no study selected; press n to create one", severity="warning")
            return
        lab_app(self).open_study(sid)

    def action_run_study(self) -> None:
        sid = self.selected_study_id()
        if sid is None:
            self.notify("no study selected; press n to create one", severity="warning")
            return
        from tui.screens.underpowered import run_confirmed  # power before compute: confirm an underpowered study

        run_confirmed(self.app, lab_app(self).store, sid, lambda: lab_app(self).open_study(sid, run=True))

    def action_new_study(self) -> None:
        lab_app(self).action_new_study()

    def action_demo(self) -> None:
        lab_app(self).start_demo()

    def action_refresh(self) -> None:
        self.refresh_rows()
