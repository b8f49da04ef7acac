"""A pilot's stages through the real Slurm of tests/run/conftest.py, driven by the coordinator (Runner),
each stage a job running `python -m lab.worker` that never opens lab.db:

- identify → reproduce → intervene → evaluate (and the gates between them) give metrics and neuron sets
  identical to the local executor's run of the same study;
- a job cancelled with `scancel` mid-identify stops at a checkpoint, and the next run resumes it to the
  identical statistics;
- a coordinator killed while its job runs, then restarted, follows the same job and ingests its
  results exactly once;
- a job whose `setup` line fails is reported with its log tail, and the study stays resumable.

Every process uses one torch thread (OMP_NUM_THREADS=1, inherited by the jobs), so runs compare bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lab.core.faults import FAULT_ENV
from lab.core.paths import PROJECT_ROOT
from lab.run.runner import Runner
from lab.store import StageState, Store
from lab.store.leases import pid_alive
from lab.study.create import create_study
from tests.helpers import en_sw_study

SECTIONS = """
[identify]
method = "lape"
top_rate = 0.05
batch_size = 4
checkpoint_every = 2
[intervention]
kind = "test_time"
value = "p90"
[evaluate]
tasks = ["demo_real"]
limit = 4
bootstrap = 100
batch_size = 4
"""
COMPUTE = """
[compute]
executor = "slurm"
partition = "debug"
cpus = 1
time_min = 10
{extra}
"""
STAGES = ("criteria", "model", "identify", "reproduce", "intervene", "evaluate")
TIMINGS = {"compute_seconds", "gpu_seconds"}


def make_study(root: Path, name: str, model: Path, corpus: Path, compute: str = "") -> tuple[Store, int]:
    path = root / f"{name}.toml"
    path.write_text(en_sw_study(name, model, corpus, 13, SECTIONS) + compute, encoding="utf-8")
    store = Store(root / name)
    return store, int(create_study(store, path).id)  # type: ignore[arg-type]


def metrics(store: Store, sid: int, stage: str) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    return {(m.name, m.language, m.condition): (m.value, m.ci_low, m.ci_high, m.n)
            for m in store.metrics(sid, stage) if m.name not in TIMINGS}


def _untimed(obj: Any) -> Any:
    """A JSON artifact without its wall-clock fields (never equal between two runs)."""
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in TIMINGS}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj if not (isinstance(v, dict) and v.get("name") in TIMINGS)]
    return obj


def artifacts(store: Store, sid: int, stage: str) -> dict[str, Any]:
    """Each artifact's sha256; a JSON one's content less its timings (evaluation.json records them)."""
    out: dict[str, Any] = {}
    for a in store.artifacts(sid, stage):
        if a.name.endswith(".json"):
            out[a.name] = _untimed(json.loads(store.home.inside(Path(a.path)).read_text(encoding="utf-8")))
        else:
            out[a.name] = a.sha256
    return out


@pytest.fixture(scope="module")
def one_thread() -> Any:
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # the local workers and the Slurm jobs inherit it
    yield
    if saved is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = saved


@pytest.fixture(scope="module")
def local_run(one_thread: Any, tiny_llama_dir: Path, tiny_corpus_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, int]:
    """The reference: the same study on the local executor, through the same coordinator."""
    store, sid = make_study(tmp_path_factory.mktemp("local"), "pilot", tiny_llama_dir, tiny_corpus_dir)
    run_through(store, sid, "evaluate")
    return store, sid


def run_through(store: Store, sid: int, until: str, **kw: Any) -> None:
    """Run to `until`, past every gate: where a gate's rule stops the pilot (the tiny model gives no-go),
    a person records go, as one would to see every stage (both executors get the same decisions)."""
    for _ in range(len(STAGES) + 2):
        outcome = Runner(store, sid, headless=True, **kw).run(until=until)
        assert outcome.code == 0, outcome.message
        if not outcome.gate_stop:
            return
        store.add_decision(sid, str(outcome.stopped_at), "go", "continue past the gate to compare every stage", "test")
    raise AssertionError("the pilot kept stopping at gates")


def _job_id(store: Store, sid: int, stage: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.stage_run(sid, stage)
        if run.state == StageState.running and run.job_id:
            return str(run.job_id)
        time.sleep(0.1)
    raise AssertionError(f"stage {stage} never got a Slurm job")


def _squeue_state(job: str) -> str:
    return subprocess.run(["squeue", "-h", "-a", "-t", "all", "-j", job, "-o", "%T"], capture_output=True,
                          text=True, timeout=30).stdout.strip()


def _final_state(job: str, timeout: float = 60) -> str:
    """The job's state once Slurm has finished with it (COMPLETING lasts until its processes are reaped)."""
    deadline = time.monotonic() + timeout
    while (state := _squeue_state(job)) in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING"):
        assert time.monotonic() < deadline, f"job {job} still {state}"
        time.sleep(0.2)
    return state


def test_pilot_stages_through_slurm_equal_the_local_run(slurm_cluster: Any, local_run: tuple[Store, int],
                                                        tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                        tmp_path: Path) -> None:
    ref, ref_id = local_run
    store, sid = make_study(tmp_path, "pilot", tiny_llama_dir, tiny_corpus_dir, COMPUTE.format(extra=""))
    events: list[Any] = []
    run_through(store, sid, "evaluate", on_event=events.append)
    for stage in STAGES:
        run = store.stage_run(sid, stage)
        assert run.state == StageState.done and run.executor == "slurm" and run.job_id, (stage, run)
        assert metrics(store, sid, stage) == metrics(ref, ref_id, stage), f"{stage}: metrics differ from the local run"
        assert artifacts(store, sid, stage) == artifacts(ref, ref_id, stage), f"{stage}: artifacts differ"
    # the neuron sets: byte-identical artifacts above, and the same gate verdicts
    assert [(d.stage, d.verdict) for d in store.decisions(sid)] == [(d.stage, d.verdict) for d in ref.decisions(ref_id)]
    jobs = {store.stage_run(sid, s).job_id for s in STAGES}
    assert len(jobs) == len(STAGES), "each stage is its own job"
    assert any("slurm job" in str(e.data.get("message", "")) for e in events)


def test_scancel_mid_identify_resumes_to_identical_statistics(slurm_cluster: Any, local_run: tuple[Store, int],
                                                              tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref, ref_id = local_run
    store, sid = make_study(tmp_path, "cancel", tiny_llama_dir, tiny_corpus_dir, COMPUTE.format(extra=""))
    assert Runner(store, sid, headless=True).run(until="model").code == 0
    monkeypatch.setenv(FAULT_ENV, "slow:identify:1.0")  # each identify checkpoint is followed by 1 s
    import threading

    box: dict[str, Any] = {}
    runner = Runner(store, sid, headless=True)
    thread = threading.Thread(target=lambda: box.setdefault("outcome", runner.run(until="identify")), daemon=True)
    thread.start()
    job = _job_id(store, sid, "identify")
    stats = store.home.checkpoint_dir(sid, "identify") / "stats" / "stats.json"
    deadline = time.monotonic() + 120
    while not stats.exists():
        assert time.monotonic() < deadline and thread.is_alive(), "identify never checkpointed"
        time.sleep(0.05)
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


def _node_back(node: str, timeout: float = 60) -> None:
    """Return the node to service (RESUME; IDLE where this Slurm refuses RESUME for its state) and wait
    until it takes jobs again."""
    deadline = time.monotonic() + timeout
    while True:
        state = subprocess.run(["sinfo", "-h", "-n", node, "-o", "%T"], capture_output=True, text=True,
                               timeout=30).stdout.strip()
        if state.rstrip("*") in ("idle", "mixed", "allocated", "completing"):
            return
        assert time.monotonic() < deadline, f"node {node} stayed {state}"
        for how in ("resume", "idle"):
            if subprocess.run(["scontrol", "update", f"nodename={node}", f"state={how}"], capture_output=True,
                              timeout=30).returncode == 0:
                break
        time.sleep(0.5)


def test_a_node_failure_mid_identify_reruns_the_unit_and_resumes_to_identical_statistics(
        slurm_cluster: Any, local_run: tuple[Store, int], tiny_llama_dir: Path, tiny_corpus_dir: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node goes down while identify runs (its job is killed without a word from the worker); once
    the node is back, the unit runs again (Slurm requeues it, or the runner resubmits it after NODE_FAIL),
    resumes from its checkpoint, and the statistics equal an uninterrupted run's."""
    import threading

    ref, ref_id = local_run
    store, sid = make_study(tmp_path, "nodefail", tiny_llama_dir, tiny_corpus_dir, COMPUTE.format(extra=""))
    assert Runner(store, sid, headless=True).run(until="model").code == 0
    monkeypatch.setenv(FAULT_ENV, "slow:identify:1.0")
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
    assert outcome.code == 0, outcome.message
    run = store.stage_run(sid, "identify")
    assert run.state == StageState.done
    said = " | ".join(str(e.data.get("message", "")) for e in events)
    assert "resubmitting" in said or run.job_id == job, said  # resubmitted by the runner, or requeued by Slurm
    logs = " | ".join(line.message for line in store.logs(sid, "identify", limit=1000))
    assert "resumed from the checkpoint" in logs
    assert metrics(store, sid, "identify") == metrics(ref, ref_id, "identify")
    assert artifacts(store, sid, "identify") == artifacts(ref, ref_id, "identify")
