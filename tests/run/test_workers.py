"""lab.run.workers, the one API for a stage unit once it runs: start one, adopt it from another handle (as
a second runner or a reopened UI does), watch it from its event log, cancel it, see its end reach the
rows (its events ingested by whoever looks: the unit itself never writes lab.db).

The criteria stage is held mid-stage by the worker's test pause, so every step meets a live worker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from tests.helpers import write_study_toml

from lab.core.events import WorkerExit
from lab.run.executor import LocalUnit
from lab.run.launcher import LAUNCHER_ENV
from lab.run.worker import PAUSE_SECONDS_ENV, PAUSE_STAGE_ENV
from lab.run.workers import StageWorker
from lab.store import StageState, Store


def _paused_criteria(tmp_path: Path, model: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, int, StageWorker]:
    from lab.study.create import create_study

    store = Store(tmp_path / "home")
    sid = int(create_study(store, write_study_toml(tmp_path / "s.toml", model, corpus, "workers")).id)
    monkeypatch.setenv(PAUSE_STAGE_ENV, "criteria")  # inherited by the worker: it waits up to 120 s
    monkeypatch.setenv(PAUSE_SECONDS_ENV, "120")
    worker = StageWorker.start(store, sid, "criteria")
    deadline = time.monotonic() + 60
    while not store.home.heartbeat_file(sid, "criteria").exists():  # the unit beats once its stage runs
        assert time.monotonic() < deadline and worker.is_alive(), "the criteria worker never started its stage"
        time.sleep(0.1)
    return store, sid, worker


@pytest.mark.parametrize("launch", ["warm launcher", "plain subprocess"])
def test_start_adopt_watch_and_cancel(launch: str, tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The same through the suite's warm launcher (a unit forked from it, its exit status read from the file
    the launcher writes) and through a plain subprocess (what users get)."""
    if launch == "plain subprocess":
        monkeypatch.delenv(LAUNCHER_ENV)
    store, sid, started = _paused_criteria(tmp_path, tiny_llama_dir, tiny_corpus_dir, monkeypatch)
    assert isinstance(started.unit, LocalUnit) and started.unit.launched is (launch == "warm launcher")
    try:
        adopted = StageWorker.adopt(store, sid, "criteria")
        assert adopted is not None and adopted.pid == started.pid and adopted.is_alive()
        assert [w.stage for w in StageWorker.running(store, sid)] == ["criteria"]
        assert StageWorker.adopt(store, sid, "model") is None  # pending: no worker to adopt

        assert adopted.cancel()  # SIGTERM from the handle that did not start it
        deadline = time.monotonic() + 60
        while started.is_alive():
            assert time.monotonic() < deadline, "the worker did not stop on SIGTERM"
            time.sleep(0.05)
        assert started.unit.status().exit_code == WorkerExit.INTERRUPTED
        events = started.poll()  # the whole attempt, from the event log
        assert events and events[0].event == "started" and events[-1].event == "interrupted"
        assert all(e.stage == "criteria" for e in events)
        assert store.stage_run(sid, "criteria").state == StageState.running  # nobody ingested its end yet
        assert adopted.run().state == StageState.interrupted  # looking ingests it
        assert not started.is_alive() and not adopted.is_alive()
        assert StageWorker.adopt(store, sid, "criteria") is None and StageWorker.running(store, sid) == []
        assert not adopted.cancel() and not started.cancel()  # nothing left to signal
    finally:
        if started.is_alive():
            started.cancel()


def test_a_killed_worker_leaves_its_stage_interrupted_and_resumable(tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store, sid, started = _paused_criteria(tmp_path, tiny_llama_dir, tiny_corpus_dir, monkeypatch)
    adopted = StageWorker.adopt(store, sid, "criteria")
    assert adopted is not None
    os.kill(started.pid, signal.SIGKILL)  # type: ignore[arg-type]  # the worker cannot record its own end
    deadline = time.monotonic() + 30
    while started.is_alive():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert started.unit.status().exit_code == -signal.SIGKILL
    assert store.stage_run(sid, "criteria").state == StageState.running  # nothing recorded its end
    assert adopted.run().state == StageState.interrupted  # found dead: interrupted, so the next run resumes
    run = store.stage_run(sid, "criteria")
    assert run.pid is None and "killed or lost" in (run.error or "")
    assert StageWorker.mark_dead(store, sid) == []  # nothing left to mark
