"""Every key binding of the UI, each with a stable id so a keymap can remap it.

Screens take their BINDINGS from here, and the help screen and docs/tui.md list the same table, so
the three cannot drift apart.
"""

from __future__ import annotations

from textual.binding import Binding

APP_BINDINGS: list[Binding] = [
    Binding("q", "quit", "Quit", id="app.quit"),
    Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
    Binding("ctrl+t", "toggle_theme", "Theme", show=False, id="app.toggle_theme"),
]

HOME_BINDINGS: list[Binding] = [
    Binding("n", "new_study", "New study", id="home.new"),
    Binding("o", "open_study", "Open", id="home.open"),
    Binding("r", "run_study", "Run/resume", id="home.run"),
    Binding("f5", "refresh", "Refresh", show=False, id="home.refresh"),
    Binding("d", "demo", "Demo", id="home.demo"),
]

STUDY_BINDINGS: list[Binding] = [
    Binding("r", "run", "Run/resume", id="study.run"),
    Binding("R", "run_by_rules", "Run, rules decide the gates", show=False, id="study.run_rules"),
    Binding("x", "cancel", "Cancel", id="study.cancel"),
    Binding("d", "decide", "Decide", id="study.decide"),
    Binding("e", "export", "Export", id="study.export"),
    Binding("s", "show_tab('tab-stage')", "Stage tab", show=False, id="study.tab_stage"),
    Binding("m", "show_tab('tab-results')", "Results tab", show=False, id="study.tab_results"),
    Binding("l", "show_tab('tab-log')", "Log tab", show=False, id="study.tab_log"),
    Binding("right_square_bracket", "scroll_pane(1)", "Scroll tab down", show=False, key_display="]",
            id="study.scroll_down"),
    Binding("left_square_bracket", "scroll_pane(-1)", "Scroll tab up", show=False, key_display="[",
            id="study.scroll_up"),
    Binding("g", "generations", "Generations side by side", show=False, id="study.generations"),
    Binding("escape", "back", "Back to studies", show=False, id="study.back"),
]

GENERATION_BINDINGS: list[Binding] = [
    Binding("n", "next_language", "Next language", id="generations.next_language"),
    Binding("escape", "back", "Back to the study", id="generations.back"),
]

FORM_BINDINGS: list[Binding] = [
    Binding("ctrl+s", "create", "Create study", id="new.create"),
    Binding("escape", "cancel", "Cancel", id="new.cancel"),
]

DECISION_BINDINGS: list[Binding] = [
    Binding("ctrl+s", "save", "Save decision", id="decision.save"),
    Binding("escape", "cancel", "Cancel", id="decision.cancel"),
]

EXPORT_BINDINGS: list[Binding] = [
    Binding("escape", "cancel", "Cancel", id="export.cancel"),
]

MODAL_CLOSE_BINDINGS: list[Binding] = [
    Binding("escape", "close", "Close", id="modal.close"),
]

SCOPES: dict[str, list[Binding]] = {
    "everywhere": APP_BINDINGS,
    "studies list": HOME_BINDINGS,
    "study": STUDY_BINDINGS,
    "generations": GENERATION_BINDINGS,
    "new-study form": FORM_BINDINGS,
    "decision form": DECISION_BINDINGS,
    "export": EXPORT_BINDINGS,
    "help / error": MODAL_CLOSE_BINDINGS,
}


def all_binding_ids() -> list[str]:
    return [b.id for group in SCOPES.values() for b in group if b.id]


def effective_key(binding: Binding, keymap: dict[str, str]) -> str:
    """The key a user presses for this binding once their keymap is applied."""
    if binding.id and binding.id in keymap:
        return keymap[binding.id]
    return binding.key_display or binding.key
