"""A runner that loses its study's lease stops the running stage safely and says so (issue #15).

The runner drives a real worker (the criteria stage, held mid-stage by the worker's test pause) while
the lease row is taken by another runner, or removed. Within a couple of renewals the runner must send
the worker SIGTERM (the stage stops as at a checkpoint: state `interrupted`, resumable), say why in an
error event, start no further stage, and leave the other runner's lease alone.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tests.helpers import write_study_toml

from lab.core.events import Event
from lab.run.runner import RunOutcome, Runner
from lab.run.worker import PAUSE_SECONDS_ENV, PAUSE_STAGE_ENV
from lab.store import StageState, Store
from lab.store.db import pid_alive


def _steal(store: Store, sid: int, how: str) -> None:
    with store.engine.begin() as conn:
        if how == "taken":
            conn.execute(text("UPDATE lease SET holder='another runner', pid=4242, host='elsewhere' WHERE study_id=:s"),
                         {"s": sid})
        else:
            conn.execute(text("DELETE FROM lease WHERE study_id=:s"), {"s": sid})


@pytest.mark.parametrize("how", ["taken", "removed"])
def test_lost_lease_stops_the_stage_at_a_checkpoint_and_says_so(how: str, tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.study.create import create_study

    store = Store(tmp_path / "home")
    sid = int(create_study(store, write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir, "lease")).id)
    monkeypatch.setenv(PAUSE_STAGE_ENV, "criteria")  # the worker inherits it: criteria waits up to 120 s
    monkeypatch.setenv(PAUSE_SECONDS_ENV, "120")
    events: list[Event] = []
    runner = Runner(store, sid, on_event=events.append)
    runner.renew_seconds = 0.2
    box: dict[str, RunOutcome] = {}
    thread = threading.Thread(target=lambda: box.setdefault("outcome", runner.run()), daemon=True)
    thread.start()

    deadline = time.monotonic() + 60
    while store.stage_run(sid, "criteria").state != StageState.running:
        assert time.monotonic() < deadline and thread.is_alive(), "the criteria stage never started"
        time.sleep(0.1)
    worker_pid = store.stage_run(sid, "criteria").pid
    assert worker_pid and pid_alive(worker_pid)
    _steal(store, sid, how)

    t0 = time.monotonic()
    thread.join(60)
    assert not thread.is_alive(), "the runner kept going without its lease"
    assert time.monotonic() - t0 < 30  # stopped within a few renewals, not after the 120 s pause
    outcome = box["outcome"]
    assert outcome.code == 1 and outcome.stopped_at == "criteria"
    assert "lost study" in outcome.message and "lease" in outcome.message and "interrupted" in outcome.message

    said = [e.data["message"] for e in events if e.event == "log" and e.data.get("level") == "error"]
    assert any("lost study" in m and "asked stage criteria to checkpoint and stop" in m for m in said), said
    run = store.stage_run(sid, "criteria")
    assert run.state == StageState.interrupted and run.pid is None  # resumable, its worker gone
    assert not pid_alive(worker_pid)
    assert [r.state for r in store.stage_runs(sid) if r.stage != "criteria"] == \
        [StageState.pending] * (len(store.stage_runs(sid)) - 1)  # no further stage started
    assert store.decisions(sid) == []
    lease = store.lease(sid)
    if how == "taken":  # the other runner's lease is left as it is
        assert lease is not None and (lease.holder, lease.pid, lease.host) == ("another runner", 4242, "elsewhere")
    else:
        assert lease is None


def test_a_runner_that_keeps_its_lease_renews_it(tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The same paused stage with nobody taking the lease: renewals push its expiry on and the stage runs."""
    from lab.study.create import create_study

    store = Store(tmp_path / "home")
    sid = int(create_study(store, write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir, "kept")).id)
    monkeypatch.setenv(PAUSE_STAGE_ENV, "criteria")
    monkeypatch.setenv(PAUSE_SECONDS_ENV, "2")
    runner = Runner(store, sid)
    runner.renew_seconds = 0.2
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("outcome", runner.run(until="criteria")), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while (lease := store.lease(sid)) is None:
        assert time.monotonic() < deadline and thread.is_alive(), "the runner never took the lease"
        time.sleep(0.05)
    first = lease.expires_at
    time.sleep(1.0)
    renewed = store.lease(sid)
    assert renewed is not None and renewed.expires_at > first
    thread.join(60)
    assert box["outcome"].code == 0 and runner.lease_lost is None
    assert store.stage_run(sid, "criteria").state == StageState.done and store.lease(sid) is None
