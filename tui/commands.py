"""The command palette (ctrl+p): stage actions of the open study, and opening any study."""

from __future__ import annotations

from functools import partial
from typing import Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from lab.core.text import escape_controls
from tui.lab_app import lab_app

Command = tuple[str, Callable[[], object], str]


class LabCommands(Provider):
    def commands(self) -> list[Command]:
        from tui.screens.export import export_formats
        from tui.screens.study import StudyScreen
        from tui.widgets.stepper import StageStepper

        app = lab_app(self.screen)
        out: list[Command] = []
        screen = self.screen
        if isinstance(screen, StudyScreen):
            sid = screen.study_id
            out.append(("Run / resume this study", screen.action_run, "start the next stage, or resume an interrupted one"))
            out.append(("Cancel the running stage", screen.action_cancel, "SIGTERM: the stage checkpoints and stops"))
            out.append(("Generations: baseline vs intervention side by side", screen.action_generations,
                        "the generation probe's continuations of one prompt per condition"))
            for view in screen.query_one("#stepper", StageStepper).views:
                if view.has_gate and view.state == "done":
                    out.append((f"Decide gate: {view.name}", partial(screen.open_decision, view.name),
                                "record go / no-go / revise with a rationale"))
                out.append((f"Show stage: {view.name}", partial(screen.select_stage, view.name), view.spec.title))
            for fmt in export_formats():
                out.append((f"Export summary as {fmt}", partial(app.export_study, sid, fmt),
                            "write the go/no-go summary under <home>/exports"))
        out.append(("New study", app.action_new_study, "fill in the study form"))
        out.append(("Demo: create (or open) the demo study and run it", app.start_demo,
                    "the shipped tiny model, corpora and task; a few minutes on a laptop"))
        for study in app.store.studies():
            out.append((f"Open study {study.id}: {escape_controls(study.name)}", partial(app.open_study, int(study.id)),
                        study.model_id))
            out.append((f"Run study {study.id}: {escape_controls(study.name)}", partial(app.open_study, int(study.id), run=True),
                        "open it and run / resume its stages"))
        out.append(("Toggle dark / light theme", app.action_toggle_theme, ""))
        out.append(("Help: keys", app.action_help, "every binding with its id"))
        return out

    async def discover(self) -> Hits:
        for name, callback, help_text in self.commands():
            yield DiscoveryHit(name, callback, help=help_text or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text or None)
