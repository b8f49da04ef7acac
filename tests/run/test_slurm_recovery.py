"""Cancels, restarts and failures of stage units on the real Slurm of tests/run/conftest.py:

- a job cancelled with `scancel` mid-identify stops at a checkpoint, and the next run resumes it to the
  identical statistics;
- a coordinator killed while its job runs, then restarted, follows the same job and ingests its
  results exactly once;
- a job whose `setup` line fails is reported with its log tail, and the study stays resumable;
- `status --json` shows a running job, and `cancel` stops it;
- a node failure mid-identify reruns the unit (requeued or resubmitted) and it resumes to identical statistics.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lab.core.faults import FAULT_ENV
from lab.core.paths import PROJECT_ROOT
from lab.run.runner import Runner
from lab.store import StageState, Store
from lab.store.leases import pid_alive
from tests.run.slurm_pilot import (COMPUTE, _final_state, _job_id, _node_back, _squeue_state, artifacts, make_study,
                                   metrics, one_thread, run_through)  # noqa: F401


@pytest.fixture(scope="module")
def local_run(one_thread: Any, tiny_llama_dir: Path, tiny_corpus_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, int]:
    """The reference for identify: the same study on the local executor, through the same coordinator."""
    store, sid = make_study(tmp_path_factory.mktemp("local"), "pilot", tiny_llama_dir, tiny_corpus_dir)
    run_through(store, sid, "identify")
    return store, sid


def identify_mid_way(store: Store, sid: int) -> tuple[threading.Thread, dict[str, Any], str, list[Any]]:
    """A coordinator running identify on a thread, returned once its Slurm job has written a checkpoint:
    the thread, the box its outcome lands in, the job id, and the events it relays."""
    box: dict[str, Any] = {}
    events: list[Any] = []
    runner = Runner(store, sid, headless=True, on_event=events.append)
    thread = threading.Thread(target=lambda: box.setdefault("outcome", runner.run(until="identify")), daemon=True)
    thread.start()
    job = _job_id(store, sid, "identify")
    stats = store.home.checkpoint_dir(sid, "identify") / "stats" / "stats.json"
    deadline = time.monotonic() + 120
    while not stats.exists():
        assert time.monotonic() < deadline and thread.is_alive(), "identify never checkpointed"
        time.sleep(0.05)
    return thread, box, job, events


def test_scancel_mid_identify_resumes_to_identical_statistics(slurm_cluster: Any, local_run: tuple[Store, int],
                                                              tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref, ref_id = local_run
    store, sid = make_study(tmp_path, "cancel", tiny_llama_dir, tiny_corpus_dir, COMPUTE.format(extra=""))
    assert Runner(store, sid, headless=True).run(until="model").code == 0
    monkeypatch.setenv(FAULT_ENV, "slow:identify:1.0")  # each identify checkpoint is followed by 1 s
    thread, box, job, _ = identify_mid_way(store, sid)
    subprocess.run(["scancel", job], check=True, timeout=30)
    thread.join(120)
    outcome = box["outcome"]
    run = store.stage_run(sid, "identify")
    assert outcome.code == 1 and run.state == StageState.interrupted, (outcome.message, run.error)
    assert _final_state(job) == "CANCELLED"
    assert "stopped on request" in (run.error or "")  # the worker got SIGTERM and checkpointed itself

    monkeypatch.delenv(FAULT_ENV)
    assert Runner(store, sid, headless=True).run(until="identify").code == 0
    run = store.stage_run(sid, "identify")
    assert run.state == StageState.done and run.attempts == 2 and run.job_id != job
    logs = " | ".join(line.message for line in store.logs(sid, "identify", limit=1000))
    assert "resumed from the checkpoint" in logs
    assert metrics(store, sid, "identify") == metrics(ref, ref_id, "identify")
    assert artifacts(store, sid, "identify") == artifacts(ref, ref_id, "identify")


def test_a_restarted_coordinator_ingests_its_jobs_results_exactly_once(slurm_cluster: Any,
                                                                       local_run: tuple[Store, int],
                                                                       tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                                       tmp_path: Path) -> None:
    ref, ref_id = local_run
    store, sid = make_study(tmp_path, "restart", tiny_llama_dir, tiny_corpus_dir, COMPUTE.format(extra=""))
    assert Runner(store, sid, headless=True).run(until="model").code == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", FAULT_ENV: "slow:identify:1.0"}
    cmd = [sys.executable, "-m", "lab.cli", "run", str(sid), "--until", "identify", "--headless",
           "--accept-underpowered", "--home", str(store.home.root)]
    coordinator = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    job = _job_id(store, sid, "identify")
    stats = store.home.checkpoint_dir(sid, "identify") / "stats" / "stats.json"
    deadline = time.monotonic() + 120
    while not stats.exists() or store.stage_run(sid, "identify").progress_json is None:
        assert time.monotonic() < deadline, "identify never checkpointed"
        time.sleep(0.05)
    coordinator.kill()  # the coordinator dies mid-ingest of a running job; the job goes on
    coordinator.wait()
    assert not pid_alive(coordinator.pid) and _squeue_state(job) == "RUNNING"
    store.ingest(sid, "identify")  # part of the results, as a dying coordinator may have had them
    half = len(store.logs(sid, "identify", limit=10_000))
    events: list[Any] = []
    outcome = Runner(store, sid, headless=True, on_event=events.append).run(until="identify")  # restarted
    assert outcome.code == 0, outcome.message
    run = store.stage_run(sid, "identify")
    assert run.state == StageState.done and run.attempts == 1 and run.job_id == job  # the same job, followed
    assert any("still running in slurm job" in str(e.data.get("message", "")) for e in events)
    assert _final_state(job) == "COMPLETED"
    # exactly once: one log row per log event of the job, no metric twice, the same numbers as the local run
    lines = [json.loads(x) for x in store.home.event_log(sid, "identify").read_text(encoding="utf-8").splitlines()]
    assert len(store.logs(sid, "identify", limit=10_000)) == sum(1 for e in lines if e["event"] == "log") >= half
    store.ingest(sid, "identify")  # once more: nothing changes
    assert len(store.logs(sid, "identify", limit=10_000)) == sum(1 for e in lines if e["event"] == "log")
    with sqlite3.connect(store.home.db) as conn:
        dups = conn.execute("SELECT COUNT(*) FROM metric WHERE study_id=? GROUP BY stage, name, language, condition "
                            "HAVING COUNT(*) > 1", (sid,)).fetchall()
    assert dups == []
    assert metrics(store, sid, "identify") == metrics(ref, ref_id, "identify")
    assert artifacts(store, sid, "identify") == artifacts(ref, ref_id, "identify")


def test_a_failing_setup_line_is_reported_with_its_log_and_the_study_stays_resumable(
        slurm_cluster: Any, tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path: Path) -> None:
    from lab.run.slurm import SlurmExecutor

    bad = 'setup = ["echo preparing the node", "source /nonexistent/env/activate"]'
    store, sid = make_study(tmp_path, "badsetup", tiny_llama_dir, tiny_corpus_dir, COMPUTE.format(extra=bad))
    outcome = Runner(store, sid, headless=True).run(until="criteria")
    run = store.stage_run(sid, "criteria")
    assert outcome.code == 1 and run.state == StageState.failed, (outcome.message, run)
    assert "slurm job" in (run.error or "") and "its log ends:" in (run.error or "") and "nonexistent" in (run.error or "")
    logged = " | ".join(line.message for line in store.logs(sid, "criteria", limit=100))
    assert "nonexistent" in logged  # the log tail is kept with the stage
    assert store.lease(sid) is None and store.metrics(sid, "criteria") == []
    # fixed (here: the same study with a working setup), the stage runs again from where it stopped
    good = json.loads(store.study(sid).config_json)["compute"]
    good["setup"] = ["echo preparing the node"]
    outcome = Runner(store, sid, headless=True, executor=SlurmExecutor(good)).run(until="criteria")
    assert outcome.code == 0, outcome.message
    assert store.stage_run(sid, "criteria").state == StageState.done


def test_status_json_shows_the_job_and_cancel_stops_it(slurm_cluster: Any, tiny_llama_dir: Path,
                                                       tiny_corpus_dir: Path, tmp_path: Path) -> None:
    store, sid = make_study(tmp_path, "watch", tiny_llama_dir, tiny_corpus_dir, COMPUTE.format(extra=""))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NEURON_PILOT_TEST_PAUSE_STAGE": "criteria",
           "NEURON_PILOT_TEST_PAUSE_SECONDS": "120"}
    home = ["--home", str(store.home.root)]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lab.cli", *args, *home], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    res = cli("run", str(sid), "--detach", "--decide", "rules", "--accept-underpowered")
    assert res.returncode == 0, res.stderr
    job = _job_id(store, sid, "criteria")
    deadline = time.monotonic() + 60
    while True:
        data = json.loads(cli("status", str(sid), "--json").stdout)
        unit = next(s for s in data["stages"] if s["name"] == "criteria")["unit"]
        if unit and unit["state"] == "RUNNING":
            break
        assert time.monotonic() < deadline, unit
        time.sleep(0.5)
    assert unit["executor"] == "slurm" and unit["job_id"] == job and unit["node"] == slurm_cluster.host
    text = cli("status", str(sid)).stdout
    assert f"slurm job {job} RUNNING on {slurm_cluster.host}" in text

    res = cli("cancel", str(sid))
    assert res.returncode == 0 and "asked the runner" in res.stdout, res.stdout + res.stderr
    deadline = time.monotonic() + 60
    while store.lease(sid) is not None:
        assert time.monotonic() < deadline, "the background runner did not stop"
        time.sleep(0.2)
    run = store.stage_run(sid, "criteria")
    assert run.state == StageState.interrupted and _final_state(job) in ("CANCELLED", "COMPLETED")
    data = json.loads(cli("status", str(sid), "--json").stdout)
    assert next(s for s in data["stages"] if s["name"] == "criteria")["unit"] is None
    shutil.rmtree(store.home.root / "logs" / f"study-{sid}" / "slurm", ignore_errors=True)


def test_a_node_failure_mid_identify_reruns_the_unit_and_resumes_to_identical_statistics(
        slurm_cluster: Any, local_run: tuple[Store, int], tiny_llama_dir: Path, tiny_corpus_dir: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node goes down while identify runs (its job is killed without a word from the worker); once
    the node is back, the unit runs again (Slurm requeues it, or the runner resubmits it after NODE_FAIL),
    resumes from its checkpoint, and the statistics equal an uninterrupted run's."""
    ref, ref_id = local_run
    store, sid = make_study(tmp_path, "nodefail", tiny_llama_dir, tiny_corpus_dir, COMPUTE.format(extra=""))
    assert Runner(store, sid, headless=True).run(until="model").code == 0
    monkeypatch.setenv(FAULT_ENV, "slow:identify:1.0")
    thread, box, job, events = identify_mid_way(store, sid)
    node = slurm_cluster.host
    subprocess.run(["scontrol", "update", f"nodename={node}", "state=down", "reason=test-node-failure"], check=True,
                   timeout=30)
    try:
        time.sleep(3)
    finally:
        _node_back(node)
    monkeypatch.delenv(FAULT_ENV)  # jobs submitted from now on run at full speed (a requeued one keeps its env)
    thread.join(300)
    assert not thread.is_alive(), "the runner did not finish after the node came back"
    outcome = box["outcome"]
    said = " | ".join(str(e.data.get("message", "")) for e in events)
    assert outcome.code == 0, (outcome.message, said)
    run = store.stage_run(sid, "identify")
    assert run.state == StageState.done
    said = " | ".join(str(e.data.get("message", "")) for e in events)
    # the test cluster does not requeue (JobRequeue=0, as many sites set it): the runner resubmits
    assert "resubmitting (1 of 2)" in said and run.job_id != job, said
    logs = " | ".join(line.message for line in store.logs(sid, "identify", limit=1000))
    assert "resumed from the checkpoint" in logs
    assert metrics(store, sid, "identify") == metrics(ref, ref_id, "identify")
    assert artifacts(store, sid, "identify") == artifacts(ref, ref_id, "identify")
