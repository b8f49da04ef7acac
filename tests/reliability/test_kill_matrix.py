"""Kill matrix: SIGKILL a long stage's worker at every kind of point, resume, and get exactly what an
uninterrupted run gets; SIGKILL the headless runner or the TUI while a stage runs and lose nothing.

Each long stage (identify, reproduce, the fine-tune intervene, evaluate) runs as a chain of worker
processes: the 1st is killed before its first checkpoint, the 2nd right after a checkpoint half-way
through, the 3rd while an artifact's temp file is written but not renamed, the 4th inside the open
transaction of the first metric/artifact row its results become (the coordinator's ingest, which
run_stage does in the same process once the unit ends: units never write lab.db), the 5th finishes. Every kill comes from
lab.core.faults (NEURON_PILOT_TEST_FAULT) and is a real SIGKILL of the worker process. After each kill:
`PRAGMA integrity_check` is ok, every Artifact row points at a file with its recorded sha256 and
size, no metric key is duplicated; then the stage is marked interrupted (what a runner does first)
and the next worker resumes. The finished stage's metrics (value, ci, n; timings aside) equal an
uninterrupted reference run's, and no temp file is left anywhere under artifacts/.

Workers are forked from a multiprocessing forkserver that has imported torch, transformers, peft and
lm-eval once: each worker then runs ``lab.run.worker.run_stage`` (what ``python -m lab.worker`` runs)
without paying ~5-8 s of imports per process, which keeps 25+ worker processes inside the CI budget.
The forkserver itself never runs torch, so forking it is safe. Every worker (references included)
uses one torch thread, so runs are bit-for-bit comparable.
"""

from __future__ import annotations

from tests.helpers import en_sw_study, wait_dead, wait_running, write_study_toml

import math
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from lab.core.artifacts import sha256_file
from lab.core.faults import FAULT_ENV
from lab.core.paths import PROJECT_ROOT
from lab.store import StageState, Store
from lab.store.db import pid_alive
from lab.run.worker import PAUSE_SECONDS_ENV, PAUSE_STAGE_ENV

TIMINGS = {"compute_seconds", "gpu_seconds"}  # wall-clock metrics: never equal between two runs
PRELOAD = ["lab.run.worker", "lab.stages.identify", "lab.stages.reproduce", "lab.stages.intervene",
           "lab.stages.evaluate", "lab.neurons.finetune", "lm_eval.evaluator", "lm_eval.models.huggingface",
           "lm_eval.tasks", "peft"]

STUDY_SECTIONS = """
[identify]
method = "lape"
top_rate = 0.05
batch_size = 4
checkpoint_every = 4
[intervention]
{intervention}
[evaluate]
tasks = ["demo_real"]
limit = 4
bootstrap = 100
batch_size = 4
"""
TEST_TIME = 'kind = "test_time"\nvalue = "p90"'
FINETUNE = 'kind = "finetune"\nsteps = 4\ncheckpoint_every = 2\nlora_r = 4\nlearning_rate = 0.05\nweight_decay = 0.1'


@dataclass(frozen=True)
class Chain:
    """One stage's kill points, in the order its workers die, and where the chain starts."""

    study: str  # "tt" (test-time study) or "ft" (fine-tune study)
    stage: str
    snapshot: str  # the reference home's state just before this stage ran
    kills: tuple[str, ...]


# Checkpoints per uninterrupted run (2 languages, 16 blocks each, batches of 4, a save every 4 blocks):
# identify 8 stats saves; reproduce 2 x (4 stats saves + the finished half) + 5 PPXC passes = 15;
# fine-tune 1 step checkpoint per adapter x 3 adapters; evaluate: sw x 3 conditions + en x 4 distinct runs
# (baseline, sw's intervention = spillover_sw, sw's control, own_intervention) = 7.
CHAINS = {
    "identify": Chain("tt", "identify", "before_identify",
                      ("before_checkpoint", "after_checkpoint:5", "artifact_write", "db_commit")),
    "reproduce": Chain("tt", "reproduce", "after_identify",
                       ("before_checkpoint", "after_checkpoint:12", "artifact_write", "db_commit")),
    "finetune": Chain("ft", "intervene", "after_identify",
                      ("before_checkpoint", "after_checkpoint:2", "artifact_write", "db_commit")),
    "evaluate": Chain("tt", "evaluate", "before_evaluate",
                      ("before_checkpoint", "after_checkpoint:3", "artifact_write", "db_commit")),
}
KILL_POINTS_EXERCISED = sum(len(c.kills) for c in CHAINS.values())


# ---- worker processes forked from a preloaded forkserver ----------------------------------------

def _worker(home: str, study_id: int, stage: str, fault: Optional[str]) -> None:
    """The body of one forked worker: lab.run.worker.run_stage with the fault (if any) armed."""
    os.environ.pop(FAULT_ENV, None)
    if fault:
        os.environ[FAULT_ENV] = fault
    import torch

    torch.set_num_threads(1)
    from lab.run.worker import run_stage

    with open(os.devnull, "w") as out:
        code = run_stage(home, str(study_id), stage, out=out)
    sys.exit(code)


@pytest.fixture(scope="module")
def forkserver() -> Any:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD + [__name__])
    return ctx


def run_worker(ctx: Any, home: Path, study_id: int, stage: str, fault: Optional[str] = None) -> int:
    """Run a stage in a forked worker; its exit code (-9 when the fault killed it)."""
    proc = ctx.Process(target=_worker, args=(str(home), study_id, stage, fault))
    proc.start()
    proc.join(600)
    assert proc.exitcode is not None, f"{stage} worker ({fault}) did not finish"
    return int(proc.exitcode)


def snapshot(src: Path, dst: Path) -> Path:
    """A consistent copy of a lab home: the DB through SQLite's backup API, then the files."""
    dst.mkdir(parents=True)
    a, b = sqlite3.connect(src / "lab.db"), sqlite3.connect(dst / "lab.db")
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()
    for sub in ("artifacts", "logs"):
        if (src / sub).is_dir():
            shutil.copytree(src / sub, dst / sub)
    return dst


@pytest.fixture(scope="module")
def reference(forkserver: Any, tiny_llama_dir: Path, tiny_corpus_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Uninterrupted runs of every chained stage in one home, with snapshots taken before each."""
    from lab.study.create import create_study

    root = tmp_path_factory.mktemp("kill-matrix")
    home = root / "ref"
    store = Store(home)
    ids = {}
    for key, block in (("tt", TEST_TIME), ("ft", FINETUNE)):
        path = root / f"{key}.toml"
        path.write_text(en_sw_study(f"kill-{key}", tiny_llama_dir, tiny_corpus_dir, 13,
                                    STUDY_SECTIONS.format(intervention=block)), encoding="utf-8")
        ids[key] = int(create_study(store, path).id)  # type: ignore[arg-type]
    snaps = {"before_identify": snapshot(home, root / "before_identify")}
    for key in ("tt", "ft"):
        assert run_worker(forkserver, home, ids[key], "identify") == 0
    snaps["after_identify"] = snapshot(home, root / "after_identify")
    for key, stage in (("tt", "reproduce"), ("tt", "intervene"), ("ft", "intervene")):
        assert run_worker(forkserver, home, ids[key], stage) == 0, stage
    snaps["before_evaluate"] = snapshot(home, root / "before_evaluate")
    assert run_worker(forkserver, home, ids["tt"], "evaluate") == 0
    return {"store": store, "ids": ids, "snapshots": snaps}


# ---- what must hold after every kill and at the end ---------------------------------------------

def metric_table(store: Store, study_id: int, stage: str) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    return {(m.name, m.language, m.condition): (m.value, m.ci_low, m.ci_high, m.n)
            for m in store.metrics(study_id, stage) if m.name not in TIMINGS}


def same_numbers(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return all(x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b))


def output_rows(store: Store, study_id: int, stage: str) -> tuple[dict[Any, Any], dict[str, str]]:
    return metric_table(store, study_id, stage), {a.name: a.sha256 for a in store.artifacts(study_id, stage)}


def temp_files(store: Store) -> list[Path]:
    """Half-written files: atomic_write's .<name>.*.tmp and fine-tuning's .<dir>.tmp-<pid> folders."""
    return [p for p in store.home.artifacts.rglob(".*") if p.name.endswith(".tmp") or ".tmp-" in p.name]


def checkpoint_files(store: Store, study_id: int, stage: str) -> list[Path]:
    return [p for p in store.home.checkpoint_dir(study_id, stage).rglob("*") if p.is_file()]


def assert_consistent(store: Store, study_id: int) -> None:
    """The DB is sound, every recorded artifact is whole, and no metric key appears twice."""
    assert store.integrity_check() == "ok"
    for a in store.artifacts(study_id):
        path = store.home.inside(Path(a.path))
        assert path.is_file(), f"artifact row {a.stage}/{a.name} points at a missing file"
        assert path.stat().st_size == a.bytes and sha256_file(path) == a.sha256, f"{a.stage}/{a.name} half-written"
    with sqlite3.connect(store.home.db) as conn:
        dups = conn.execute("SELECT stage, name, language, condition, COUNT(*) FROM metric WHERE study_id=? "
                            "GROUP BY stage, name, language, condition HAVING COUNT(*) > 1", (study_id,)).fetchall()
    assert dups == []


# ---- the matrix ----------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHAINS))
def test_killed_at_every_point_then_resumed_equals_an_uninterrupted_run(name: str, forkserver: Any,
                                                                         reference: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    chain = CHAINS[name]
    sid = reference["ids"][chain.study]
    store = Store(snapshot(reference["snapshots"][chain.snapshot], tmp_path / "home"))
    stage_dir = store.home.stage_dir(sid, chain.stage)

    for point in chain.kills:
        fault = f"kill:{chain.stage}:{point}"
        before = output_rows(store, sid, chain.stage)
        code = run_worker(forkserver, store.home.root, sid, chain.stage, fault)
        assert code == -signal.SIGKILL, f"{fault}: the worker exited {code} (the point was never reached?)"
        assert store.stage_run(sid, chain.stage).state == StageState.running  # nobody recorded an end
        assert_consistent(store, sid)
        kind = point.split(":")[0]
        if kind == "before_checkpoint":
            assert checkpoint_files(store, sid, chain.stage) == [], "killed after a checkpoint was written"
        elif kind == "after_checkpoint":  # mid-way: checkpoints on disk, the stage's outputs not yet complete
            assert checkpoint_files(store, sid, chain.stage)
            assert not (stage_dir / reference_last_artifact(reference, chain)).exists()
        elif kind == "artifact_write":  # the temp file is there, unreferenced; nothing was renamed over
            assert [p for p in temp_files(store) if p.parent == stage_dir or stage_dir in p.parents]
        elif kind == "db_commit":  # the open transaction was rolled back: outputs as before this worker
            assert output_rows(store, sid, chain.stage) == before
        assert store.mark_stale(sid) == [chain.stage]  # what the next runner does first

    assert run_worker(forkserver, store.home.root, sid, chain.stage) == 0
    run = store.stage_run(sid, chain.stage)
    assert (run.state, run.attempts, run.error) == (StageState.done, len(chain.kills) + 1, None)
    assert_consistent(store, sid)
    assert temp_files(store) == []

    got = metric_table(store, sid, chain.stage)
    want = metric_table(reference["store"], sid, chain.stage)
    assert got.keys() == want.keys()
    differ = [k for k in want if not same_numbers(got[k], want[k])]
    assert differ == [], f"{name}: resumed metrics differ from the uninterrupted run: {differ[:5]}"
    assert {a.name for a in store.artifacts(sid, chain.stage)} == \
        {a.name for a in reference["store"].artifacts(sid, chain.stage)}
    assert_resumed(store, sid, chain)


def reference_last_artifact(reference: dict[str, Any], chain: Chain) -> str:
    """The artifact the stage writes last in the uninterrupted run (absent while the stage is mid-way)."""
    rows = reference["store"].artifacts(reference["ids"][chain.study], chain.stage)
    return max(rows, key=lambda a: a.id).name


def assert_resumed(store: Store, sid: int, chain: Chain) -> None:
    """Evidence that later workers started from checkpoints, not from scratch."""
    logs = " | ".join(line.message for line in store.logs(sid, chain.stage, limit=1000))
    if chain.stage == "identify":
        assert "resumed from the checkpoint" in logs
    elif chain.stage == "reproduce":
        assert "resuming the perplexity-change matrix after" in logs
    elif chain.stage == "intervene":
        import json

        plan = json.loads((store.home.stage_dir(sid, "intervene") / "intervention.json").read_text())
        resumed = {v["name"]: v["resumed_from"] for v in plan["variants"]}
        # the db_commit kill lands in the ingest after the 4th unit finished every adapter (units never
        # write lab.db), so the last unit resumes each adapter from its final checkpoint
        assert resumed == {"ft_neurons-sw": 4, "ft_random-sw": 4, "ft_lora_attn": 4}, resumed
    else:  # evaluate: every (language, condition) result checkpointed once, none missing
        assert len(checkpoint_files(store, sid, "evaluate")) == 7


def test_the_matrix_covers_every_kill_point() -> None:
    from lab.core.faults import KILL_POINTS

    for chain in CHAINS.values():
        assert {p.split(":")[0] for p in chain.kills} == set(KILL_POINTS)
    assert KILL_POINTS_EXERCISED == 16


# ---- killing the runner or the UI while a stage runs ---------------------------------------------

def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (PAUSE_STAGE_ENV, PAUSE_SECONDS_ENV, FAULT_ENV)}
    return {**env, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


def _wait_running(store: Store, sid: int, stage: str, proc: subprocess.Popen[Any]) -> int:
    return wait_running(store, sid, stage, proc, timeout=120, poll=0.1)


def _wait_dead(pid: int) -> None:
    wait_dead(pid, timeout=120, poll=0.1)


@pytest.fixture
def paused_criteria(tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path: Path) -> Any:
    """A study whose criteria stage, once started, runs (paused, heart beating) for a few seconds."""
    from lab.study.create import create_study

    store = Store(tmp_path / "home")
    sid = int(create_study(store, write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir,
                                                   "runner-kill", seed=3)).id)  # type: ignore[arg-type]
    procs: list[subprocess.Popen[Any]] = []
    yield store, sid, procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    run = store.stage_run(sid, "criteria")
    if run.pid and pid_alive(run.pid):
        os.kill(run.pid, signal.SIGKILL)


def _cli_run(store: Store, sid: int, **env: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "lab.cli", "run", str(sid), "--until", "criteria", "--headless",
           "--home", str(store.home.root)]
    return subprocess.Popen(cmd, cwd=PROJECT_ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(**env))


def test_sigkill_of_the_headless_runner_the_stage_goes_on_and_the_next_run_waits_for_it(paused_criteria: Any) -> None:
    """The runner dies; its worker (own session) keeps running. The next run takes over the dead
    runner's lease, sees the live worker, waits for it instead of starting a second one, and goes on."""
    store, sid, procs = paused_criteria
    runner = _cli_run(store, sid, **{PAUSE_STAGE_ENV: "criteria", PAUSE_SECONDS_ENV: "10"})
    procs.append(runner)
    wpid = _wait_running(store, sid, "criteria", runner)
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=60)
    assert pid_alive(wpid), "the worker died with its runner"

    nxt = _cli_run(store, sid)
    procs.append(nxt)
    out, err = nxt.communicate(timeout=120)
    assert nxt.returncode == 0, (out, err)
    assert f"still running in worker pid {wpid}" in out
    run = store.stage_run(sid, "criteria")
    assert (run.state, run.attempts, run.error) == (StageState.done, 1, None)  # one worker, never a second
    assert [a.name for a in store.artifacts(sid, "criteria")] == ["criteria.json"]
    assert store.integrity_check() == "ok" and store.lease(sid) is None


TUI_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from tui.app import NeuronPilotApp

    async def main():
        app = NeuronPilotApp(home=sys.argv[1], study=sys.argv[2])
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("r")
            from tui.screens.underpowered import UnderpoweredScreen
            if isinstance(app.screen, UnderpoweredScreen):  # the tiny study is underpowered: run anyway
                await pilot.press("y")
            while True:
                await pilot.pause(0.2)

    asyncio.run(main())
""")


def test_sigkill_of_the_tui_the_stage_goes_on_to_done(paused_criteria: Any) -> None:
    """The UI process is killed while its run's stage works; the worker finishes the stage alone,
    and the next run finds it done (no second worker, nothing lost)."""
    store, sid, procs = paused_criteria
    tui = subprocess.Popen([sys.executable, "-c", TUI_SCRIPT, str(store.home.root), str(sid)], cwd=PROJECT_ROOT,
                           text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=_env(**{PAUSE_STAGE_ENV: "criteria", PAUSE_SECONDS_ENV: "3"}))
    procs.append(tui)
    wpid = _wait_running(store, sid, "criteria", tui)
    lease = store.lease(sid)
    assert lease is not None and lease.pid == tui.pid and lease.holder.startswith("tui")
    tui.send_signal(signal.SIGKILL)
    tui.communicate(timeout=60)
    assert pid_alive(wpid), "the worker died with the UI"
    _wait_dead(wpid)
    from lab.run.workers import recover

    assert recover(store, sid) == []  # what a reopened UI or the next runner does: ingest, nothing lost
    run = store.stage_run(sid, "criteria")
    assert (run.state, run.attempts, run.pid) == (StageState.done, 1, None)

    nxt = _cli_run(store, sid)
    procs.append(nxt)
    out, err = nxt.communicate(timeout=120)
    assert nxt.returncode == 0, (out, err)
    assert store.stage_run(sid, "criteria").attempts == 1
    assert store.integrity_check() == "ok" and store.lease(sid) is None
