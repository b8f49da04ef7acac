"""The Slurm executor (lab/run/slurm.py) on a real single-node Slurm (tests/run/conftest.py): job states,
cancel reaching the worker as SIGTERM, a failing setup line, re-attach by job id, failure advice."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lab.core.paths import Home
from lab.run.compute import executor_for
from lab.run.executor import UnitStatus
from lab.run.slurm import SlurmExecutor, SlurmUnit, _status, failure_advice, sbatch_parameters

# A stand-in for `python -m lab.worker`: a Python child of submitit's wrapper that traps SIGTERM, takes a
# moment to "checkpoint" and exits, as the worker does.
TRAPPING = r"""
import os, signal, sys, time
marker = sys.argv[1]
def note(text):
    with open(marker, "a") as fh:
        fh.write(f"{time.time():.3f} {text}\n")
def on_term(*_):
    note("sigterm")
    time.sleep(1.5)  # the checkpoint
    note("checkpointed")
    sys.exit(3)
signal.signal(signal.SIGTERM, on_term)
note(f"started pid={os.getpid()} cuda={os.environ.get('CUDA_VISIBLE_DEVICES', '')}")
time.sleep(float(sys.argv[2]))
note("finished")
"""


def _compute(**kw: Any) -> dict[str, Any]:
    return {"executor": "slurm", "partition": "debug", "cpus": 1, "mem_gb": 0.25, "time_min": 5, **kw}


def _command(tmp_path: Path, seconds: float) -> tuple[list[str], Path]:
    script = tmp_path / "unit.py"
    script.write_text(TRAPPING)
    marker = tmp_path / f"marker-{time.monotonic_ns()}.txt"
    return [sys.executable, str(script), str(marker), str(seconds)], marker


def _follow(unit: SlurmUnit, timeout: float = 30.0, until: Any = None) -> list[UnitStatus]:
    """Poll the unit until it ends (or `until(status)`), returning each change of state."""
    seen: list[UnitStatus] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = unit.status()
        if seen and seen[-1].state == st.state:
            seen[-1] = st  # the latest word on this state (a pending job's reason comes later)
        else:
            seen.append(st)
        if not st.alive or (until and until(st)):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"{unit.describe()} still {seen[-1].describe()} after {timeout} s; log:\n{unit.log_tail()}")


def _wait_for(path: Path, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never said {text!r}")


def test_executor_for_slurm_builds_a_slurm_executor() -> None:
    ex = executor_for(_compute(max_resubmits=4, max_parallel=3))
    assert isinstance(ex, SlurmExecutor) and ex.name == "slurm"
    assert (ex.max_resubmits, ex.max_parallel) == (4, 3)


def test_units_go_pending_running_completed(slurm_cluster: Any, tmp_path: Path) -> None:
    """Two jobs that each take the node's one GPU: the second waits PENDING (Resources) while the first
    runs, then runs on the node and completes; the fake GPU is visible as CUDA_VISIBLE_DEVICES."""
    home = Home(tmp_path / "home")
    ex = SlurmExecutor(_compute(gpus=1))
    cmd1, marker1 = _command(tmp_path, 3)
    cmd2, marker2 = _command(tmp_path, 0.2)
    first = ex.submit(home, 1, "identify", cmd1)
    _wait_for(marker1, "started")
    second = ex.submit(home, 1, "reproduce", cmd2)
    assert first.describe() == f"slurm job {first.job_id}" and second.job_id != first.job_id
    # the scheduler first says Priority, then, on its next pass, that the GPU is taken
    pending = _follow(second, until=lambda st: st.reason == "Resources")[-1]
    assert pending.state == "PENDING" and pending.alive and pending.node == ""
    assert pending.reason == "Resources", pending
    assert failure_advice(pending).startswith("queued: waiting for free nodes")
    running = first.status()
    assert (running.state, running.alive, running.node) == ("RUNNING", True, slurm_cluster.host)
    assert running.describe() == f"RUNNING on {slurm_cluster.host}"
    states = [s.state for s in _follow(second)]
    assert states[-2:] in (["RUNNING", "COMPLETED"], ["COMPLETING", "COMPLETED"]) or states[-3:] == [
        "RUNNING", "COMPLETING", "COMPLETED"], states
    done = second.status()
    assert (done.state, done.alive, done.exit_code, done.node) == ("COMPLETED", False, 0, slurm_cluster.host)
    assert failure_advice(done) == ""
    assert first.status().state == "COMPLETED"
    assert "cuda=0" in marker1.read_text() and "finished" in marker2.read_text()
    # submitit's files live under the study's logs
    assert first.log_paths()[0].parent == home.logs / "study-1" / "slurm"


def test_cancel_reaches_the_worker_as_sigterm_before_the_kill(slurm_cluster: Any, tmp_path: Path) -> None:
    """scancel: Slurm sends SIGTERM to every process of the job; submitit's wrapper ignores it and the
    worker (its child) gets it, checkpoints for 1.5 s and exits before SIGKILL (KillWait = 5 s)."""
    home = Home(tmp_path / "home")
    cmd, marker = _command(tmp_path, 60)
    unit = SlurmExecutor(_compute()).submit(home, 2, "identify", cmd)
    _wait_for(marker, "started")
    asked = time.time()
    assert unit.cancel() is True
    states = _follow(unit, timeout=20)
    ended = time.time()
    text = _wait_for(marker, "checkpointed")
    assert states[-1].state == "CANCELLED" and not states[-1].alive, states
    stamps = {line.split()[1]: float(line.split()[0]) for line in text.splitlines()}
    assert 0 <= stamps["sigterm"] - asked < 3, text
    assert stamps["checkpointed"] - stamps["sigterm"] >= 1.4  # it was not killed mid-checkpoint
    assert "finished" not in text
    assert ended - asked < 5 + 3  # within KillWait
    assert "Bypassing signal SIGTERM" in unit.log_paths()[1].read_text()  # the wrapper let it through
    assert unit.cancel() is False  # ended: nothing to cancel
    assert "resumes it" in failure_advice(unit.status())


def test_bad_setup_line_fails_the_job_with_the_log_tail_naming_it(slurm_cluster: Any, tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    cmd, marker = _command(tmp_path, 0.1)
    ex = SlurmExecutor(_compute(setup=["export NP_FINE=1", "module-load-nosuch cuda/12.1"]))
    unit = ex.submit(home, 3, "identify", cmd)
    states = _follow(unit)
    assert states[-1].state == "FAILED" and not states[-1].alive, states
    log = unit.log_tail()
    assert "neuron-pilot: setup line failed" in log and "module-load-nosuch cuda/12.1" in log, log
    assert "command not found" in log
    assert not marker.exists()  # the worker never ran
    assert "log tail" in failure_advice(states[-1])


def test_worker_exit_code_is_read_back(slurm_cluster: Any, tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    unit = SlurmExecutor(_compute()).submit(home, 4, "evaluate", [sys.executable, "-c", "import sys; "
                                                                  "print('bad input', file=sys.stderr); sys.exit(2)"])
    st = _follow(unit)[-1]
    assert (st.state, st.exit_code) == ("FAILED", 2), st
    assert "bad input" in unit.log_tail(50)


def test_reattach_by_job_id_from_a_fresh_executor(slurm_cluster: Any, tmp_path: Path) -> None:
    """A coordinator that restarts knows only the job id from the stage's row."""
    home = Home(tmp_path / "home")
    cmd, marker = _command(tmp_path, 1.0)
    unit = SlurmExecutor(_compute()).submit(home, 5, "identify", cmd)
    _wait_for(marker, "started")
    again = executor_for(_compute()).reattach(home, 5, "identify", unit.job_id, "another-login-node")
    assert isinstance(again, SlurmUnit) and again.describe() == unit.describe()
    assert again.status().state == "RUNNING"
    assert _follow(again)[-1].state == "COMPLETED"
    assert again.log_paths() == unit.log_paths()
    assert "Job completed successfully" in again.log_tail(50)
    gone = SlurmExecutor(_compute()).reattach(home, 5, "identify", "987654", "")
    st = gone.status()
    assert (st.state, st.alive) == ("UNKNOWN", False) and "987654" in st.reason


def test_sbatch_refusal_is_bad_input(slurm_cluster: Any, tmp_path: Path) -> None:
    from lab.core.errors import BadInput

    with pytest.raises(BadInput, match="sbatch refused the job for stage identify: .*; fix \\[compute\\]"):
        SlurmExecutor(_compute(partition="nosuch")).submit(Home(tmp_path / "h"), 6, "identify", ["true"])


# ---- no cluster needed below: the parameters and the words ----------------------------------------

def test_parameters_from_the_compute_table() -> None:
    p = sbatch_parameters(_compute(gpus=2, mem_gb=1.5, account="lab", qos="high", constraint="a100&ib",
                                   setup=["module load cuda"], extra={"mail-type": "END", "nice": 5}))
    assert p["partition"] == "debug" and p["gpus_per_node"] == 2 and p["cpus_per_task"] == 1
    assert (p["mem"], p["time"], p["account"], p["qos"], p["constraint"]) == ("1536M", 5, "lab", "high", "a100&ib")
    assert p["additional_parameters"] == {"signal": "B:URG@60", "mail-type": "END", "nice": 5}
    assert "module load cuda" in p["setup"] and "set -e" in p["setup"]
    bare = sbatch_parameters({"executor": "slurm"})
    assert bare["time"] is None and "partition" not in bare and "mem" not in bare  # the cluster's defaults
    assert sbatch_parameters(_compute(extra={"signal": "TERM@120"}))["additional_parameters"]["signal"] == "TERM@120"


@pytest.mark.parametrize("state, words", [
    ("TIMEOUT", "raise [compute] time_min"),
    ("OUT_OF_MEMORY", "raise [compute] mem_gb, or lower the stage's batch_size"),
    ("PREEMPTED", "resubmitted automatically (up to [compute] max_resubmits = 2 times)"),
    ("NODE_FAIL", "resubmitted automatically"),
    ("CANCELLED", "resumes it from its last checkpoint"),
    ("FAILED", "log tail"),
])
def test_failure_advice_names_the_knob(state: str, words: str) -> None:
    assert words in failure_advice(UnitStatus(state, False))


def test_sacct_words_are_normalised() -> None:
    assert _status("CANCELLED by 1000", "", "node1") == UnitStatus("CANCELLED", False, node="node1")
    assert _status("PENDING", "Priority", "") == UnitStatus("PENDING", True, reason="Priority")
    assert not _status("OUT_OF_MEMORY", "OutOfMemory", "n").alive
    assert _status("COMPLETING", "None", "n").alive
