"""The TUI driven by keystrokes only, against real stage workers: create a study through the form,
run every built stage, decide each gate, export; measure input latency while a stage runs; quit
while a stage runs and find it again on reopening."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import pytest

from lab.store import StageState, Store
from tui.app import NeuronPilotApp
from tui.screens.decision import DecisionScreen
from tui.screens.export import ExportScreen
from tui.screens.new_study import NewStudyScreen
from tui.screens.study import StudyScreen
from tui.widgets.stepper import StageStepper


async def wait_for(pilot, cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.05)


async def type_text(pilot, text: str) -> None:
    await pilot.press(*list(text))


async def fill_new_study_form(pilot, model: Path, corpus: Path) -> None:
    await type_text(pilot, "e2e-pilot")
    await pilot.press("tab")
    await type_text(pilot, str(model))
    await pilot.press("tab")
    await type_text(pilot, "en,fr,de,sw")
    await pilot.press("tab")
    await type_text(pilot, "sw")
    await pilot.press("tab")
    await type_text(pilot, str(corpus))
    await pilot.press("tab", "ctrl+a", "ctrl+k")  # clear the default token budget
    await type_text(pilot, "500")
    await pilot.press("tab", "tab", "tab", "tab")  # method, intervention kind and value keep their defaults
    await type_text(pilot, "demo_real")


async def decide_go(pilot, app: NeuronPilotApp, rationale: str) -> str:
    """Record a decision with keys only; a rule that recommends otherwise is overridden to go."""
    screen = app.screen
    assert isinstance(screen, DecisionScreen)
    recommended = (screen.recommendation or {}).get("verdict")
    if recommended != "go":
        await pilot.press("shift+tab", "enter", "home", "enter", "tab")  # verdict select → "go" → rationale
    await type_text(pilot, rationale)
    await pilot.press("enter")
    return str(recommended)


@pytest.mark.slow
def test_form_run_decide_export_by_keyboard(tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "tester")
    home = tmp_path / "home"
    # Relative paths (resolved by the form against the working directory) keep the typing short.
    base = Path(os.path.commonpath([tiny_llama_dir, tiny_corpus_dir]))
    monkeypatch.chdir(base)
    model, corpus = tiny_llama_dir.relative_to(base), tiny_corpus_dir.relative_to(base)
    marks: dict[str, float] = {"start": time.perf_counter()}

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("n")
            assert isinstance(app.screen, NewStudyScreen)
            # An invalid submit first: errors show inline, nothing is created.
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: not app.screen.busy, 30, "the form check")
            assert app.screen.query_one("#err-name").display
            assert Store(home).studies() == []
            await pilot.press("ctrl+a", "ctrl+k")
            await fill_new_study_form(pilot, model, corpus)
            marks["typed"] = time.perf_counter()
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), 120, "the study to be created")
            marks["created"] = time.perf_counter()
            assert (home / "studies" / "e2e-pilot.toml").is_file()
            screen = app.screen
            assert isinstance(screen, StudyScreen)
            sid = screen.study_id

            # Run with keys; decide every gate as it comes; stop where the runner stops.
            await pilot.press("r")
            latencies: list[float] = []
            decisions: list[tuple[str, str]] = []
            for _ in range(30):
                while app.active_run is not None and isinstance(app.screen, StudyScreen) and len(latencies) < 12:
                    before = len(screen.highlight_times)
                    t0 = time.perf_counter()
                    await pilot.press("down" if len(latencies) % 2 == 0 else "up")
                    if len(screen.highlight_times) > before and app.active_run is not None:
                        latencies.append(screen.highlight_times[-1] - t0)
                await wait_for(pilot, lambda: app.active_run is None or isinstance(app.screen, DecisionScreen),
                               240, "the runner to stop or ask for a decision")
                await pilot.pause(0.1)
                if isinstance(app.screen, DecisionScreen):
                    stage = app.screen.stage
                    decisions.append((stage, await decide_go(pilot, app, f"checked {stage} by hand")))
                    await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), 10, "the decision to save")
                    continue
                if app.active_run is None:
                    break
            marks["ran"] = time.perf_counter()
            outcome = screen.last_outcome or ""
            print(f"\nrun ended: {outcome}\ndecisions: {decisions}")

            store = Store(home)
            runs = store.stage_runs(sid)
            done = [r.stage for r in runs if r.state == StageState.done]
            assert done[:2] == ["criteria", "model"], f"built stages criteria and model must be done: {done}"
            stepper = screen.query_one("#stepper", StageStepper)
            for view in stepper.views:
                if view.name in done:
                    assert view.state == "done"
                    assert stepper.get_option_at_index(stepper.views.index(view)).prompt.plain.startswith("✓")
                    assert screen.last_progress.get(view.name, (0, -1))[0] == screen.last_progress[view.name][1], \
                        f"progress of {view.name} was not shown to completion"
            gated = [r.stage for r in runs if r.stage in done and r.recommendation_json]
            recorded = {d.stage: d for d in store.decisions(sid)}
            for stage in gated:
                assert recorded[stage].by == "tester" and recorded[stage].verdict == "go"
                assert recorded[stage].rationale == f"checked {stage} by hand"
            assert "criteria" in recorded
            if len(done) < len(runs):
                stop = runs[len(done)].stage
                assert "not built" in outcome or "not available" in outcome, outcome
                assert stop in outcome
                assert "not built" in stepper.get_option_at_index(len(done)).prompt.plain

            assert len(latencies) >= 5, f"too few key presses landed while a stage ran ({len(latencies)})"
            med = statistics.median(latencies)
            print(f"input latency while a stage runs: median {med * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
                  f"over {len(latencies)} presses")
            assert med < 0.1

            # Export with keys: the first offered format is json.
            await pilot.press("e")
            assert isinstance(app.screen, ExportScreen)
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.last_export is not None, 60, "the export")
            data = json.loads(Path(app.last_export).read_text(encoding="utf-8"))
            assert data["study"]["name"] == "e2e-pilot"
            by_stage = {s["name"]: s for s in data["stages"]}
            assert by_stage["criteria"]["decision"]["by"] == "tester"
            assert str(app.last_export) in (screen.last_outcome or "")
            marks["exported"] = time.perf_counter()
            await pilot.press("q")
        steps = list(marks.items())
        print("phases: " + ", ".join(f"{k} {t - steps[i][1]:.1f}s" for i, (k, t) in enumerate(steps[1:])))

    asyncio.run(drive())


@pytest.mark.slow
def test_quit_while_running_then_reattach(tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path) -> None:
    """A stage started from the UI survives the UI quitting; the reopened UI follows or shows it done."""
    from lab.study import create_study

    home = tmp_path / "home"
    study_file = tmp_path / "s.toml"
    study_file.write_text(f"""
[study]
name = "reattach"
[model]
id = "{tiny_llama_dir}"
[languages]
all = ["en", "fr", "de", "sw"]
targets = ["sw"]
[corpus]
path = "{tiny_corpus_dir}"
tokens_per_language = 500
[evaluate]
tasks = ["demo_real"]
""", encoding="utf-8")
    store = Store(home)
    sid = int(create_study(store, study_file).id)
    # criteria settled beforehand so the first stage the UI runs is the slower model stage
    store.update_stage(sid, "criteria", state=StageState.done)
    store.add_decision(sid, "criteria", "go", "frozen in setup", "tester")

    seen: dict[str, str] = {}

    async def first_session() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("r")
            await wait_for(pilot, lambda: store.stage_run(sid, "model").state != StageState.pending, 120,
                           "the model stage to start")
            seen["at_quit"] = store.stage_run(sid, "model").state.value
            await pilot.press("q")
        assert app.active_run is not None and app.active_run.detached.is_set()

    async def second_session() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, StudyScreen)
            state = store.stage_run(sid, "model").state
            seen["at_reopen"] = state.value
            assert state in (StageState.running, StageState.done), f"the stage was lost: {state}"
            if state == StageState.running:
                assert "model" in screen.followers
                assert "re-attached" in (screen.last_outcome or "") or "following" in (screen.last_outcome or "")
            await wait_for(pilot, lambda: not screen.followers and screen.view_of("model").state == "done",
                           120, "the followed stage to show done")
            if seen["at_reopen"] == "running":
                assert "finished while followed: done" in (screen.last_outcome or "")

    asyncio.run(first_session())
    asyncio.run(second_session())
    print(f"\nmodel stage at quit: {seen['at_quit']}; at reopen: {seen['at_reopen']}")
    assert store.stage_run(sid, "model").state == StageState.done
