"""Shared parts of the Slurm pilot tests (tests/run/test_slurm_pilot.py, test_slurm_recovery.py): the
small en + sw study with the demo protocol's stages, its comparison helpers, and Slurm job queries."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from lab.run.runner import Runner
from lab.store import StageState, Store
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


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread in this process, its local workers and the Slurm jobs (they inherit it)."""
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    if saved is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = saved
