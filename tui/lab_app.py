"""What screens and widgets may ask of the app, typed: `lab_app(self).open_study(...)` instead of
untyped attributes of `self.app`. A Protocol, so screens need not import tui.app (which imports them)."""

from __future__ import annotations

import datetime as dt
from typing import Callable, Optional, Protocol, runtime_checkable

from textual.dom import DOMNode

from lab.store import Store


@runtime_checkable
class LabApp(Protocol):
    """The parts of NeuronPilotApp that screens use (tests check the app satisfies it)."""

    store: Store
    clock: Callable[[], dt.datetime]

    def open_study(self, study_id: int, *, replace: bool = False, run: bool = False) -> None: ...

    def start_run(self, study_id: int, decide: Optional[str] = None) -> bool: ...

    def cancel_run(self, study_id: int) -> bool: ...

    def runs_study(self, study_id: int) -> bool: ...

    def choose_export(self, study_id: int) -> None: ...

    def export_study(self, study_id: int, fmt: str) -> None: ...

    def action_new_study(self) -> None: ...

    def action_toggle_theme(self) -> None: ...

    def action_help(self) -> None: ...


def lab_app(node: DOMNode) -> LabApp:
    """The running app of a screen or widget, as a LabApp."""
    app = node.app
    if not isinstance(app, LabApp):
        raise TypeError(f"{type(app).__name__} is not neuron-pilot's app; screens of tui/ run inside NeuronPilotApp")
    return app
