"""The protocol's stages as a keyboard-driven stepper: one line per stage with its state."""

from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.study_state import StageView, not_run

ICONS = {"pending": ("·", "dim"), "running": ("▶", "bold cyan"), "done": ("✓", "green"),
         "failed": ("✗", "bold red"), "interrupted": ("‖", "yellow")}
VERDICT_STYLE = {"go": "green", "no-go": "red", "revise": "yellow", "inconclusive": "magenta"}
NAME_WIDTH = 10


def stage_line(view: StageView, percent: Optional[int] = None, skipped: bool = False) -> Text:
    icon, style = ICONS.get(view.state, ("?", ""))
    text = Text()
    text.append(icon, style=style)
    text.append(" ")
    text.append(view.name.ljust(NAME_WIDTH))
    if view.state == "running":
        text.append(f"{percent}%" if percent is not None else "running", style="cyan")
    elif view.decision is not None:
        text.append(view.decision.verdict, style=VERDICT_STYLE.get(view.decision.verdict, ""))
    elif view.awaiting_decision:
        text.append("decide?", style="bold magenta")
    elif view.state in ("failed", "interrupted"):
        text.append(view.state, style=style)
    elif skipped:
        text.append("not run", style="dim italic")
    return text


class StageStepper(OptionList):
    """Highlight moves with up/down; the screen shows the highlighted stage's details."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.views: list[StageView] = []
        self.percent: dict[str, int] = {}
        self.skipped: set[str] = set()  # stages a gate before them ended the pilot for

    def set_views(self, views: list[StageView]) -> None:
        names = [v.name for v in views]
        self.skipped = not_run(views)
        if names != [v.name for v in self.views]:
            self.set_options([Option(stage_line(v, self.percent.get(v.name), v.name in self.skipped), id=v.name)
                              for v in views])
        else:
            for i, v in enumerate(views):
                self.replace_option_prompt_at_index(i, stage_line(v, self.percent.get(v.name), v.name in self.skipped))
        self.views = views
        if self.highlighted is None and views:
            self.highlighted = 0

    def set_percent(self, stage: str, percent: Optional[int]) -> None:
        if percent is None:
            self.percent.pop(stage, None)
        else:
            self.percent[stage] = percent
        for i, v in enumerate(self.views):
            if v.name == stage:
                self.replace_option_prompt_at_index(i, stage_line(v, percent, v.name in self.skipped))

    @property
    def selected_view(self) -> Optional[StageView]:
        if self.highlighted is None or self.highlighted >= len(self.views):
            return None
        return self.views[self.highlighted]

    def select_stage(self, stage: str) -> None:
        for i, v in enumerate(self.views):
            if v.name == stage:
                self.highlighted = i
