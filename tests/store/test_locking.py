"""One runner per study, readers always (issue #9): while `neuron-pilot run` holds a study's lease
and its worker is mid-stage, a second `run` of that study exits 2 with one line naming the holder
(its pid and host) and changes nothing, while `status`, `studies`, `export` and the TUI all read the
study. tests/test_store.py covers the lease itself (expiry, dead holders); tests/test_cli.py covers
taking over after a SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from tests.helpers import write_study_toml

from lab.core.paths import PROJECT_ROOT
from lab.store import StageState, Store
from lab.store.db import pid_alive
from lab.run.worker import PAUSE_SECONDS_ENV, PAUSE_STAGE_ENV


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (PAUSE_STAGE_ENV, PAUSE_SECONDS_ENV)}
    return {**env, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120, env=_env())


@pytest.fixture
def running(tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A runner holding study 1's lease, its criteria worker paused mid-stage (test hook)."""
    from lab.study.create import create_study

    store = Store(tmp_path / "home")
    sid = int(create_study(store, write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir, "locked")).id)
    cmd = [sys.executable, "-m", "lab.cli", "run", str(sid), "--until", "criteria", "--headless",
           "--home", str(store.home.root)]
    runner = subprocess.Popen(cmd, cwd=PROJECT_ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_env(**{PAUSE_STAGE_ENV: "criteria", PAUSE_SECONDS_ENV: "300"}))
    worker = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = store.stage_run(sid, "criteria")
            if run.state == StageState.running and run.pid and pid_alive(run.pid):
                worker = int(run.pid)
                break
            assert runner.poll() is None, runner.communicate()
            time.sleep(0.2)
        assert worker, "the criteria stage never started"
        yield {"store": store, "sid": sid, "runner": runner, "worker": worker, "home": store.home.root}
    finally:  # never leave the paused runner or its worker behind
        if runner.poll() is None:
            runner.kill()
        runner.communicate()
        if worker and pid_alive(worker):
            os.kill(worker, signal.SIGKILL)


def _state(store: Store, sid: int) -> list[tuple[str, str, int, Any]]:
    return [(r.stage, r.state.value, r.attempts, r.pid) for r in store.stage_runs(sid)]


def test_second_runner_is_refused_naming_the_holder_and_readers_work(running: dict[str, Any]) -> None:
    store, sid, runner, home = running["store"], running["sid"], running["runner"], str(running["home"])
    lease = store.lease(sid)
    assert lease is not None and lease.pid == runner.pid
    before = (_state(store, sid), len(store.studies()), store.artifacts(sid), store.metrics(sid), store.decisions(sid))

    second = cli("run", str(sid), "--headless", "--accept-underpowered", "--home", home)
    assert second.returncode == 2, (second.stdout, second.stderr)
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
    assert lines[0] == (f"error: study {sid} is being run by neuron-pilot run (pid {runner.pid} on "
                        f"{socket.gethostname()}); wait for it to finish or stop it, then run again")
    assert "starting stage" not in second.stdout  # it started no worker
    after = (_state(store, sid), len(store.studies()), store.artifacts(sid), store.metrics(sid), store.decisions(sid))
    assert after == before and store.lease(sid).pid == runner.pid  # type: ignore[union-attr]

    # readers, while the lease is held and the worker runs
    status = cli("status", str(sid), "--json", "--home", home)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["runner"] == {"holder": "neuron-pilot run", "host": socket.gethostname(),
                              "pid": runner.pid}
    assert data["stages"][0]["name"] == "criteria" and data["stages"][0]["status"] == "running"

    studies = cli("studies", "--json", "--home", home)
    assert studies.returncode == 0, studies.stderr
    assert [(r["id"], r["stage"], r["state"]) for r in json.loads(studies.stdout)] == [(sid, "criteria", "running")]

    export = cli("export", str(sid), "--format", "json", "--home", home)
    assert export.returncode == 0, export.stderr
    summary = json.loads(Path(export.stdout.strip()).read_text(encoding="utf-8"))
    assert summary["study"]["id"] == sid and summary["stages"][0]["status"] == "running"

    # none of the readers disturbed the run: same worker, same lease, still running
    assert runner.poll() is None and pid_alive(running["worker"])
    assert _state(store, sid) == before[0] and store.lease(sid).pid == runner.pid  # type: ignore[union-attr]


def test_the_tui_reads_and_follows_a_study_another_runner_holds(running: dict[str, Any]) -> None:
    """The UI opens the study, shows the stage running and follows its worker; asking it to run too is
    refused with a notice instead of a second runner."""
    from tui.app import NeuronPilotApp
    from tui.screens.study import StudyScreen

    store, sid = running["store"], running["sid"]
    before = _state(store, sid)

    async def drive() -> None:
        app = NeuronPilotApp(home=str(running["home"]), study=str(sid))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.3)
            screen = app.screen
            assert isinstance(screen, StudyScreen)
            assert screen.view_of("criteria").state == "running"  # type: ignore[union-attr]
            assert "criteria" in screen.followers and screen.followers["criteria"].pid == running["worker"]
            await pilot.press("r")
            await pilot.pause(0.2)
            assert app.active_run is None
            notes = [n.message for n in app._notifications]
            assert any("criteria is still running" in m for m in notes), notes
            await pilot.press("q")

    asyncio.run(drive())
    assert _state(store, sid) == before and running["runner"].poll() is None
