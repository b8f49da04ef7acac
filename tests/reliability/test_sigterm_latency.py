"""SIGTERM → exit in every long stage (issue 17: Slurm kills a job KillWait seconds, 30 by default,
after its SIGTERM, so every stage must checkpoint and exit within ~10 s).

For identify, reproduce, the fine-tune intervene, generate and evaluate: a worker process runs the
stage unit the coordinator prepared (lab.run.worker.main, as ``python -m lab.worker`` does); once
the stage is mid-work (its first checkpoint is on disk) it gets SIGTERM. The test measures the time
from the signal to the process's exit, and checks the exit code (3, interrupted), the last event
("interrupted"), and that a resumed run (run_stage) ends with the numbers of an uninterrupted
reference run (and, for evaluate, the same per-item results in paired_items.json and samples_*.json).

The model is the tiny test model, slowed down inside the signalled worker only: every forward pass
sleeps SLOW_FORWARD seconds first (a module-wide forward pre-hook), like a forward pass of a large
model, so the stage is reliably mid-work when the signal comes and each forward pass is stamped in
a log. The latency is then checked as a property of the code, not only of the clock: at most one
forward pass starts after the signal (the stage polls the stop request between batches, or at the
next forward pass; lab.stages.stopping), and the wall-clock bound (10 s) is generous against the
~1-2 s it takes on a loaded 2-core box.

Workers are forked from a forkserver that imported torch, transformers, peft and lm-eval once (as in
test_kill_matrix.py), with one torch thread each, so runs are bit-for-bit comparable.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from lab.core.faults import FAULT_ENV
from lab.run.worker import PAUSE_SECONDS_ENV, PAUSE_STAGE_ENV
from lab.stages.stopping import GRACE_SECONDS
from lab.store import StageState, Store
from tests.helpers import en_sw_study

pytestmark = pytest.mark.slow

TIMINGS = {"compute_seconds", "gpu_seconds"}  # wall-clock metrics: never equal between two runs
PRELOAD = ["lab.run.worker", "lab.run.unit", "lab.stages.identify", "lab.stages.reproduce", "lab.stages.intervene",
           "lab.stages.generate", "lab.stages.evaluate", "lab.neurons.finetune", "lm_eval.evaluator",
           "lm_eval.models.huggingface", "lm_eval.tasks", "peft"]
SLOW_FORWARD = 0.3  # seconds each forward pass of the signalled worker sleeps first
BOUND_S = 10.0  # SIGTERM → exit, as issue 17 asks (Slurm's KillWait is 30 s)

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
limit = 6
chunk_items = 2
bootstrap = 100
batch_size = 4
[generate]
n_prompts = 2
max_new_tokens = 6
samples = 1
"""
TEST_TIME = 'kind = "test_time"\nvalue = "p90"'
FINETUNE = 'kind = "finetune"\nsteps = 12\ncheckpoint_every = 4\nlora_r = 4\nlearning_rate = 0.05\nweight_decay = 0.1'


@dataclass(frozen=True)
class Case:
    study: str  # "tt" (test-time study) or "ft" (fine-tune study)
    stage: str
    snapshot: str  # the reference home just before the stage ran
    mid_work: Callable[[Path], bool]  # given the stage's checkpoint folder: is the stage past its first checkpoint?
    after: float = 0.0  # then wait this long (a few slowed forward passes) before the signal


def _any_file(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() and not p.name.startswith(".") for p in folder.rglob("*"))


CASES = {
    "identify": Case("tt", "identify", "before_identify", lambda d: _any_file(d / "stats")),
    # past the split halves (collect's own stop path, as identify's): a perplexity-change pass is checkpointed
    "reproduce": Case("tt", "reproduce", "after_identify", lambda d: (d / "ppxc_passes.json").is_file()),
    # past the first adapter's first step checkpoint, inside the training steps that follow it
    "intervene": Case("ft", "intervene", "after_identify", _any_file, after=2 * SLOW_FORWARD),
    "generate": Case("tt", "generate", "before_generate", _any_file),  # the first (language, condition)
    "evaluate": Case("tt", "evaluate", "before_evaluate", _any_file),  # the first chunk of the first run
}


# ---- worker processes forked from a preloaded forkserver ----------------------------------------

def _clean_env() -> None:
    for key in (FAULT_ENV, PAUSE_STAGE_ENV, PAUSE_SECONDS_ENV):
        os.environ.pop(key, None)


def _stage_worker(home: str, study_id: int, stage: str) -> None:
    """An uninterrupted (or resumed) run: lab.run.worker.run_stage, as the kill matrix runs it."""
    _clean_env()
    import torch

    torch.set_num_threads(1)
    from lab.run.worker import run_stage

    with open(os.devnull, "w") as out:
        sys.exit(run_stage(home, str(study_id), stage, out=out))


def _signalled_worker(home: str, study_id: int, stage: str, forwards_log: str) -> None:
    """The worker's own entry point on a unit the parent prepared, every forward pass slowed by
    SLOW_FORWARD and stamped (time.time()) in `forwards_log`."""
    _clean_env()
    import torch

    torch.set_num_threads(1)

    def slow(module: Any, _args: Any) -> None:
        if isinstance(module, torch.nn.Embedding):  # once per forward pass (and per decoding step)
            with open(forwards_log, "a", encoding="utf-8") as fh:
                fh.write(f"{time.time()}\n")
            time.sleep(SLOW_FORWARD)

    torch.nn.modules.module.register_module_forward_pre_hook(slow)
    from lab.run.worker import main

    sys.stdout = open(os.devnull, "w")
    sys.exit(main(["--home", home, "--study", str(study_id), "--stage", stage]))


@pytest.fixture(scope="module")
def forkserver() -> Any:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD + [__name__])
    return ctx


def run_worker(ctx: Any, home: Path, study_id: int, stage: str) -> int:
    proc = ctx.Process(target=_stage_worker, args=(str(home), study_id, stage))
    proc.start()
    proc.join(600)
    assert proc.exitcode is not None, f"{stage} worker did not finish"
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
    """Uninterrupted runs of every long stage, with a snapshot of the home before each."""
    from lab.study.create import create_study

    root = tmp_path_factory.mktemp("sigterm")
    home = root / "ref"
    store = Store(home)
    ids = {}
    for key, block in (("tt", TEST_TIME), ("ft", FINETUNE)):
        path = root / f"{key}.toml"
        path.write_text(en_sw_study(f"sigterm-{key}", tiny_llama_dir, tiny_corpus_dir, 17,
                                    STUDY_SECTIONS.format(intervention=block)), encoding="utf-8")
        ids[key] = int(create_study(store, path).id)  # type: ignore[arg-type]
    snaps = {"before_identify": snapshot(home, root / "before_identify")}
    for key in ("tt", "ft"):
        assert run_worker(forkserver, home, ids[key], "identify") == 0
    snaps["after_identify"] = snapshot(home, root / "after_identify")
    for key, stage in (("tt", "reproduce"), ("tt", "intervene"), ("ft", "intervene")):
        assert run_worker(forkserver, home, ids[key], stage) == 0, stage
    snaps["before_generate"] = snapshot(home, root / "before_generate")
    assert run_worker(forkserver, home, ids["tt"], "generate") == 0
    snaps["before_evaluate"] = snapshot(home, root / "before_evaluate")
    assert run_worker(forkserver, home, ids["tt"], "evaluate") == 0
    return {"store": store, "ids": ids, "snapshots": snaps}


def metric_table(store: Store, study_id: int, stage: str) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    return {(m.name, m.language, m.condition): (m.value, m.ci_low, m.ci_high, m.n)
            for m in store.metrics(study_id, stage) if m.name not in TIMINGS}


def same_numbers(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return all(x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b))


def events(store: Store, study_id: int, stage: str) -> list[dict[str, Any]]:
    path = store.home.event_log(study_id, stage)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---- SIGTERM mid-stage ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
def test_sigterm_mid_stage_exits_within_seconds_and_resumes_to_the_same_numbers(
        name: str, forkserver: Any, reference: dict[str, Any], tmp_path: Path) -> None:
    from lab.run.unit import prepare_unit

    case = CASES[name]
    sid = reference["ids"][case.study]
    store = Store(snapshot(reference["snapshots"][case.snapshot], tmp_path / "home"))
    checkpoints = store.home.checkpoint_dir(sid, case.stage)
    forwards_log = tmp_path / "forwards.log"

    prepare_unit(store, sid, case.stage)  # the coordinator's half; the worker never opens lab.db
    proc = forkserver.Process(target=_signalled_worker,
                              args=(str(store.home.root), sid, case.stage, str(forwards_log)))
    proc.start()
    try:
        deadline = time.monotonic() + 300
        while not case.mid_work(checkpoints):
            assert proc.is_alive(), f"{name}: the worker ended (exit {proc.exitcode}) before its first checkpoint"
            assert time.monotonic() < deadline, f"{name}: no checkpoint after 300 s"
            time.sleep(0.02)
        time.sleep(case.after)
        assert proc.is_alive()
        sent = time.time()
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        proc.join(120)
        latency = time.monotonic() - t0
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()

    after = [float(t) for t in forwards_log.read_text().split() if float(t) > sent]
    evs = events(store, sid, case.stage)
    print(f"{name}: SIGTERM -> exit {latency:.2f} s, {len(after)} forward pass(es) started after the signal; "
          f"{evs[-1].get('message')}")
    assert proc.exitcode == 3, f"{name}: exit {proc.exitcode}, events {evs[-3:]}"
    assert evs[-1]["event"] == "interrupted", evs[-3:]
    assert "stopped on request" in evs[-1]["message"]
    # identify polls between batches; the others get GRACE_SECONDS to reach a checkpoint, then stop at a forward pass
    most = 1 if case.stage == "identify" else int(GRACE_SECONDS / SLOW_FORWARD) + 2
    assert len(after) <= most, f"{name}: {len(after)} forward passes started after SIGTERM: the stage did not poll the stop"
    assert latency < BOUND_S, f"{name}: {latency:.1f} s from SIGTERM to exit"
    last = max(reference["store"].artifacts(sid, case.stage), key=lambda a: a.id).name
    assert not (store.home.stage_dir(sid, case.stage) / last).exists(), f"{name}: not mid-work, {last} is written"

    stopped_with_partial = any(isinstance(json.loads(p.read_text(encoding="utf-8")), dict)
                               for p in checkpoints.glob("*.json")) if case.stage == "evaluate" else False

    # the coordinator ingests the unit's events; the next run resumes from the checkpoint
    store.ingest(sid, case.stage)
    assert store.stage_run(sid, case.stage).state == StageState.interrupted
    assert run_worker(forkserver, store.home.root, sid, case.stage) == 0
    run = store.stage_run(sid, case.stage)
    assert (run.state, run.attempts, run.error) == (StageState.done, 2, None)

    ref = reference["store"]
    got, want = metric_table(store, sid, case.stage), metric_table(ref, sid, case.stage)
    assert got.keys() == want.keys()
    differ = [k for k in want if not same_numbers(got[k], want[k])]
    assert differ == [], f"{name}: resumed metrics differ from the uninterrupted run: {differ[:5]}"
    assert {a.name for a in store.artifacts(sid, case.stage)} == {a.name for a in ref.artifacts(sid, case.stage)}
    if case.stage == "evaluate":  # stopped inside a (language, condition): its finished chunks were kept ...
        assert stopped_with_partial, "evaluate stopped with no partial (per-chunk) checkpoint"
        # ... and the resumed run has the same per-item results, bit for bit
        mine = {a.name: a.sha256 for a in store.artifacts(sid, "evaluate") if a.name != "evaluation.json"}
        theirs = {a.name: a.sha256 for a in ref.artifacts(sid, "evaluate") if a.name != "evaluation.json"}
        assert "paired_items.json" in mine and mine == theirs
        logs = " | ".join(line.message for line in store.logs(sid, "evaluate", limit=1000))
        assert "resuming after chunk" in logs
