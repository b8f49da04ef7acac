"""A clear end: stepper, status line and studies list agree where the pilot stopped and why; the final
decision opens by itself; the wording after a no-go says the pilot ended and how to revise and rerun."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console
from textual.widgets import Static

from lab.run.runner import RunOutcome
from lab.store import Store
from tests.tui.demo_fixture import NOW, load_demo_study
from tui.app import NeuronPilotApp
from tui.screens.decision import DecisionScreen
from tui.screens.home import HomeScreen
from tui.screens.study import StudyScreen
from tui.study_state import study_rows
from tui.widgets.stepper import StageStepper

SIZE = (80, 24)


def stopped_at_evaluate(home: Path) -> int:
    """The demo study as the UI leaves it after a person said no-go at evaluate: the verdict stage ran
    and its final decision waits."""
    sid = load_demo_study(home, decisions=False)
    store = Store(home)
    for stage in ("criteria", "identify", "reproduce"):
        store.add_decision(sid, stage, "go", "checked", "ana")
    store.add_decision(sid, "evaluate", "no-go", "the gain interval lies below the 6-point threshold", "ana")
    return sid


def stepper_lines(screen: StudyScreen) -> dict[str, str]:
    stepper = screen.query_one("#stepper", StageStepper)
    return {v.name: stepper.get_option_at_index(i).prompt.plain for i, v in enumerate(stepper.views)}


def test_after_a_no_go_stepper_status_and_list_agree_and_the_final_decision_opens_by_itself(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sid = stopped_at_evaluate(home)
    row = next(r for r in study_rows(Store(home)) if r.id == sid)
    assert (row.stage, row.state) == ("evaluate", "stop:no-go")  # the studies list

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid), clock=lambda: NOW)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, StudyScreen)
            lines = stepper_lines(screen)
            assert lines["evaluate"].split()[-1] == "no-go" and lines["decide"].split()[-1] == "decide?"
            status = screen.last_outcome or ""
            assert "The pilot ended at the evaluate gate: no-go (by ana)" in status
            assert "Record the final verdict" in status and "record a decision to go on" not in status
            # the run that recorded the no-go ends: the final decision opens by itself
            screen.run_ended(RunOutcome(0, "pilot stopped at the evaluate gate: no-go — below threshold",
                                        stopped_at="evaluate", gate_stop=True))
            await pilot.pause(0.1)
            assert isinstance(app.screen, DecisionScreen) and app.screen.stage == "decide"
            await pilot.press(*"the pilot ends here")
            await pilot.press("enter")
            await pilot.pause(0.2)
            assert isinstance(app.screen, StudyScreen)
            status = screen.last_outcome or ""
            assert "The pilot ended at the evaluate gate: no-go" in status
            assert "To revise and rerun" in status and "create it (n)" in status
            assert app.active_run is None and not app.detached_runs  # nothing is left to run: none started
            assert stepper_lines(screen)["decide"].split()[-1] == "no-go"
            # the Stage tab of the stop point says the same, with the study file to revise
            screen.select_stage("evaluate")
            await pilot.pause(0.1)
            console = Console(width=60, record=True, color_system=None)
            console.print(screen.query_one("#stage-info", Static).content)
            shown = " ".join(console.export_text().split())
            assert "The pilot ended at the evaluate gate: no-go" in shown and "To revise and rerun" in shown
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert isinstance(app.screen, HomeScreen)

    asyncio.run(drive())


def test_stages_after_the_stop_show_not_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sid = load_demo_study(home, until="reproduce", decisions=False)
    store = Store(home)
    for stage in ("criteria", "identify"):
        store.add_decision(sid, stage, "go", "checked", "ana")
    store.add_decision(sid, "reproduce", "revise", "sets unstable", "ana")

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid), clock=lambda: NOW)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.2)
            screen = app.screen
            lines = stepper_lines(screen)
            assert lines["reproduce"].split()[-1] == "revise"
            for stage in ("intervene", "generate", "evaluate"):
                assert lines[stage].endswith("not run"), lines[stage]
            assert not lines["decide"].endswith("not run")  # the verdict stage still runs
            assert "The pilot ended at the reproduce gate: revise" in (screen.last_outcome or "")

    asyncio.run(drive())
