"""Cancel from the TUI by keystroke: the identify stage's worker gets SIGTERM, checkpoints and ends
`interrupted`; the UI says so and offers resume; `r` resumes from the checkpoint and the result equals
an uninterrupted run of the same study."""

from __future__ import annotations

from tests.helpers import ROOT_DIR

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from rich.console import Console

from lab.store import StageState, Store
from lab.store.db import pid_alive
from tui.app import NeuronPilotApp
from tui.screens.decision import DecisionScreen
from tui.screens.study import StudyScreen
from tui.screens.underpowered import UnderpoweredScreen
from tui.widgets.stepper import StageStepper

ROOT = ROOT_DIR
TOKENS = 6000  # per language: identify computes for a few seconds, long enough to cancel it mid-way


async def wait_for(pilot, cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.05)


def plain(renderable: object) -> str:
    """What a widget's rich content reads as on screen."""
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


def stats_of(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Tensors and metadata of an activation_stats.safetensors file."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def make_study(home: Path, tmp_path: Path) -> int:
    """The shipped demo model and corpora, two languages; criteria and model settled in the store so
    that `r` starts identify first (identify reads the study's model itself, not the model stage's output)."""
    from lab.study.create import create_study

    study_file = tmp_path / "cancel.toml"
    study_file.write_text(f"""
[study]
name = "cancel-demo"
seed = 7
[model]
id = "{ROOT / 'examples/models/tiny-polyglot'}"
device = "cpu"
[languages]
all = ["en", "sw"]
targets = ["sw"]
[corpus]
path = "{ROOT / 'examples/corpora'}"
tokens_per_language = {TOKENS}
[identify]
checkpoint_every = 8
[evaluate]
tasks = ["demo_real"]
""", encoding="utf-8")
    store = Store(home)
    sid = int(create_study(store, study_file).id)  # type: ignore[arg-type]
    store.update_stage(sid, "criteria", state=StageState.done)
    store.add_decision(sid, "criteria", "go", "frozen in setup", "tester")
    store.update_stage(sid, "model", state=StageState.done)
    return sid


@pytest.mark.slow
def test_cancel_by_key_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    home, ref_home = tmp_path / "home", tmp_path / "reference"
    sid = make_study(home, tmp_path)
    # The same study for the uninterrupted reference run, created afresh: copying a live lab.db with
    # plain file reads would drop this process's SQLite locks (POSIX close semantics) and corrupt it.
    assert make_study(ref_home, tmp_path) == sid
    store = Store(home)
    seen: dict[str, object] = {}
    t0 = time.perf_counter()

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid))
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, StudyScreen)
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, UnderpoweredScreen) or app.active_run is not None, 30,
                           "the run to start")
            if isinstance(app.screen, UnderpoweredScreen):  # the two-language test study is underpowered: run anyway
                await pilot.press("y")
            # Cancel only once identify counts tokens (its SIGTERM handler is in place by then).
            await wait_for(pilot, lambda: screen.last_progress.get("identify", (0, 0))[1] == TOKENS
                           and screen.last_progress["identify"][0] > 0, 120, "identify to report token progress")
            run = store.stage_run(sid, "identify")
            assert run.state == StageState.running and run.pid
            seen["pid"] = run.pid
            await pilot.press("x")
            assert "checkpoint and stop" in (screen.last_outcome or "")
            await wait_for(pilot, lambda: app.active_run is None, 60, "the cancelled run to end")
            await pilot.pause(0.2)

            run = store.stage_run(sid, "identify")
            assert run.state == StageState.interrupted, run.state
            assert "stopped on request after its last checkpoint" in (run.error or "")
            assert not pid_alive(int(seen["pid"])), "the worker should have exited after SIGTERM"
            events = [json.loads(line) for line in
                      store.home.event_log(sid, "identify").read_text(encoding="utf-8").splitlines() if line.strip()]
            assert events[-1]["event"] == "interrupted"
            info_path = store.home.checkpoint_dir(sid, "identify") / "stats" / "stats.json"
            info = json.loads(info_path.read_text(encoding="utf-8"))
            assert (info_path.parent / info["file"]).is_file()
            assert info["next_block"] > 0 or info["language_index"] > 0
            seen["checkpoint"] = (info["language_index"], info["next_block"])
            assert store.stage_run(sid, "reproduce").state == StageState.pending, "no stage may start after a cancel"

            stepper = screen.query_one("#stepper", StageStepper)
            line = stepper.get_option_at_index(stepper.views.index(screen.view_of("identify"))).prompt.plain
            assert line.startswith("‖") and "interrupted" in line, line
            assert stepper.selected_view is not None and stepper.selected_view.name == "identify"
            assert "press r to resume" in plain(screen.query_one("#stage-info").content)
            assert "interrupted" in (screen.last_outcome or "") and "press r to resume" in (screen.last_outcome or "")
            seen["cancelled_at"] = time.perf_counter() - t0

            await pilot.press("r")
            await wait_for(pilot, lambda: app.active_run is None or isinstance(app.screen, DecisionScreen), 120,
                           "the resumed identify stage to finish")
            assert store.stage_run(sid, "identify").state == StageState.done
            assert isinstance(app.screen, DecisionScreen) and app.screen.stage == "identify"
            await pilot.press("escape", "q")

    asyncio.run(drive())
    run = store.stage_run(sid, "identify")
    assert run.attempts == 2
    resumed = [line.message for line in store.logs(sid, limit=500) if "resumed from the checkpoint" in line.message]
    assert resumed, "the resumed stage did not use its checkpoint"
    lang, block = seen["checkpoint"]  # type: ignore[misc]
    assert resumed[-1].endswith(f"{['en', 'sw'][min(lang, 1)]} block {block}"), resumed[-1]

    # The same study, never interrupted, in its own home.
    t1 = time.perf_counter()
    from lab.run.unit import prepare_unit

    ref_store = Store(ref_home)
    prepare_unit(ref_store, sid, "identify")  # the coordinator's part: the unit's input
    res = subprocess.run([sys.executable, "-m", "lab.worker", "--home", str(ref_home), "--study", str(sid),
                          "--stage", "identify"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    ref_store.ingest(sid, "identify")
    assert ref_store.stage_run(sid, "identify").attempts == 1
    ours, ref = store.home.stage_dir(sid, "identify"), ref_store.home.stage_dir(sid, "identify")
    for name in ("neurons.json", "control.json"):
        assert json.loads((ours / name).read_text())["languages"] == json.loads((ref / name).read_text())["languages"]
    # Bit-identical statistics (the file bytes may differ: safetensors writes metadata in hash order).
    mine, theirs = stats_of(ours / "activation_stats.safetensors"), stats_of(ref / "activation_stats.safetensors")
    assert mine[1] == theirs[1]
    assert mine[0].keys() == theirs[0].keys()
    import torch

    for key, tensor in mine[0].items():
        assert torch.equal(tensor, theirs[0][key]), key
    print(f"\ncancelled at checkpoint {seen['checkpoint']} after {seen['cancelled_at']:.1f} s; "
          f"UI part {t1 - t0:.1f} s, reference run {time.perf_counter() - t1:.1f} s")
