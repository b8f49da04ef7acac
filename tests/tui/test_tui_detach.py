"""The runner outlives the UI: a UI started with detach (what `neuron-pilot` does) runs a study through a
background runner; SIGKILL of the UI process mid-identify does not stop the pilot, which finishes identify,
applies its gate and waits there for a person; a reopened UI reads the whole log back from the event files
and says the pilot waits on that gate."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab.run.coordinator import coordinator_of, runner_log
from lab.store import StageState, Store
from lab.store.db import pid_alive
from tests.helpers import ROOT_DIR, wait_dead
from tests.tui.test_tui_cancel import TOKENS, make_study, wait_for
from tui.app import NeuronPilotApp
from tui.screens.study import StudyScreen

UI_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from tui.app import NeuronPilotApp

    async def main():
        app = NeuronPilotApp(home=sys.argv[1], study=sys.argv[2], detach=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("r")
            await pilot.pause(0.5)
            await pilot.press("y")  # run the (underpowered) tiny study anyway
            while True:
                await pilot.pause(0.2)

    asyncio.run(main())
""")


def identify_progress(store: Store, sid: int) -> int:
    path = store.home.event_log(sid, "identify")
    if not path.exists():
        return 0
    done = [json.loads(line).get("done", 0) for line in path.read_text(encoding="utf-8").splitlines()
            if '"progress"' in line]
    return max(done, default=0)


def log_text(screen: StudyScreen) -> str:
    from textual.widgets import RichLog

    return "\n".join(line.text for line in screen.query_one("#log", RichLog).lines)


@pytest.mark.slow
def test_killing_the_ui_mid_identify_the_pilot_runs_on_to_the_gate_and_reattach_reads_the_log(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sid = make_study(home, tmp_path)
    store = Store(home)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    ui = subprocess.Popen([sys.executable, "-c", UI_SCRIPT, str(home), str(sid)], cwd=ROOT_DIR, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while identify_progress(store, sid) == 0:  # identify counts tokens: mid-stage
            assert ui.poll() is None, ui.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "identify never reported progress"
            time.sleep(0.1)
        runner = coordinator_of(store, sid)
        assert runner is not None and runner.pid != ui.pid, "the run should be driven by a background runner"
        worker_pid = store.stage_run(sid, "identify").pid
        killed_at = time.time()
        ui.send_signal(signal.SIGKILL)
        ui.communicate(timeout=30)
    finally:
        if ui.poll() is None:
            ui.kill()
    assert pid_alive(runner.pid) and worker_pid and pid_alive(worker_pid), "the pilot died with the UI"
    wait_dead(runner.pid, timeout=240, poll=0.2)

    identify = store.stage_run(sid, "identify")
    assert (identify.state, identify.attempts) == (StageState.done, 1), (identify.state, identify.error)
    assert identify.recommendation_json, "the runner applied identify's gate rule"
    assert store.latest_decision(sid, "identify") is None, "nobody decided: the pilot waits for a person"
    assert store.stage_run(sid, "reproduce").state == StageState.pending, "no stage past a gate needing a person"
    assert store.lease(sid) is None
    text = runner_log(store, sid).read_text(encoding="utf-8")
    assert "the pilot waits on gate identify" in text and "exit 0" in text, text[-2000:]
    after_kill = [json.loads(line) for line in store.home.event_log(sid, "identify").read_text().splitlines()
                  if line.strip() and json.loads(line)["t"] > killed_at and json.loads(line)["event"] == "log"]
    assert after_kill, "identify wrote no log line after the UI was killed"

    async def reopen() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid), detach=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            screen = next(s for s in app.screen_stack if isinstance(s, StudyScreen))
            await wait_for(pilot, lambda: "waits on gate identify" in (screen.last_outcome or ""), 10,
                           "the status to say the pilot waits on identify's gate")
            screen.action_show_tab("tab-log")  # a RichLog lays its lines out once it is shown
            await pilot.pause(0.5)
            shown = log_text(screen)
            assert "starting stage identify in a worker process" in shown  # written while the UI lived
            last = after_kill[-1]["message"][:40]
            assert last in shown.replace("\n", ""), (last, shown[-1500:])  # written after it was killed
            assert "the pilot waits on gate identify" in shown.replace("\n", "")
            await pilot.press("q")

    asyncio.run(reopen())
    print(f"\nidentify ({TOKENS} tokens per language) finished and the runner waited on its gate "
          f"{time.time() - killed_at:.1f} s after the UI was killed")


@pytest.mark.slow
def test_reopening_follows_a_running_background_runner_and_opens_the_gate_form(
        tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A UI opened while a background runner drives the study follows it (its lease, its stage); when
    the runner stops at the criteria gate, the decision form opens by itself."""
    from lab.run.coordinator import start_detached
    from lab.run.worker import PAUSE_SECONDS_ENV, PAUSE_STAGE_ENV
    from lab.study.create import create_study
    from tests.helpers import write_study_toml
    from tui.screens.decision import DecisionScreen

    store = Store(tmp_path / "home")
    sid = int(create_study(store, write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir,
                                                   "follow")).id)  # type: ignore[arg-type]
    monkeypatch.setenv(PAUSE_STAGE_ENV, "criteria")  # the criteria worker works (heart beating) for 3 s
    monkeypatch.setenv(PAUSE_SECONDS_ENV, "3")
    started = start_detached(store, sid)
    deadline = time.monotonic() + 60
    while coordinator_of(store, sid) is None:
        assert started.alive() and time.monotonic() < deadline, runner_log(store, sid).read_text()[-2000:]
        time.sleep(0.05)

    async def follow() -> None:
        app = NeuronPilotApp(home=str(store.home.root), study=str(sid), detach=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            screen = next(s for s in app.screen_stack if isinstance(s, StudyScreen))
            assert screen.following_runner and f"runner pid {started.pid}" in (screen.last_outcome or "")
            await pilot.press("r")  # refused: the background runner drives the study
            assert store.lease(sid) is not None and store.lease(sid).pid == started.pid
            await wait_for(pilot, lambda: isinstance(app.screen, DecisionScreen), 60,
                           "the criteria gate's form to open by itself")
            assert app.screen.stage == "criteria" and not screen.following_runner
            assert "waits on gate criteria" in (screen.last_outcome or "")
            await pilot.press("escape", "q")

    try:
        asyncio.run(follow())
    finally:
        if started.alive():
            started.proc.kill()
    started.proc.wait(timeout=30)
    assert started.proc.returncode == 0
    assert store.stage_run(sid, "criteria").state == StageState.done and store.lease(sid) is None


@pytest.mark.slow
def test_capital_r_runs_with_rules_deciding_and_x_cancels_the_background_runner(
        tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`R` starts the background runner with the rules deciding; `x` reaches it: the running stage stops
    at its checkpoint as interrupted, no further stage starts, and the runner exits."""
    from lab.run.worker import PAUSE_SECONDS_ENV, PAUSE_STAGE_ENV
    from lab.study.create import create_study
    from tests.helpers import write_study_toml

    store = Store(tmp_path / "home")
    sid = int(create_study(store, write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir,
                                                   "rules-key")).id)  # type: ignore[arg-type]
    monkeypatch.setenv(PAUSE_STAGE_ENV, "criteria")  # the criteria worker waits (cancellable) for 60 s
    monkeypatch.setenv(PAUSE_SECONDS_ENV, "60")
    seen: dict[str, int] = {}

    async def drive() -> None:
        app = NeuronPilotApp(home=str(store.home.root), study=str(sid), detach=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            screen = next(s for s in app.screen_stack if isinstance(s, StudyScreen))
            await pilot.press("R")
            await pilot.pause(0.5)
            await pilot.press("y")  # run the (underpowered) tiny study anyway
            await wait_for(pilot, lambda: store.stage_run(sid, "criteria").state == StageState.running, 60,
                           "the criteria stage to run")
            runner = coordinator_of(store, sid)
            assert runner is not None and runner.holder == "coordinator (rules)", runner
            seen["runner"] = runner.pid
            await pilot.press("x")
            await wait_for(pilot, lambda: not screen.following_runner, 60, "the background runner to end")
            assert "criteria interrupted" in (screen.last_outcome or "") and "press r to resume" in (
                screen.last_outcome or ""), screen.last_outcome
            await pilot.press("q")

    asyncio.run(drive())
    wait_dead(seen["runner"], timeout=30, poll=0.1)
    assert store.stage_run(sid, "criteria").state == StageState.interrupted
    assert store.stage_run(sid, "model").state == StageState.pending and store.lease(sid) is None
