"""Resource faults: out-of-memory in a batch halves the batch, retries and records it; a full disk while
writing an artifact fails the stage cleanly (one line, state failed, nothing half-written kept or
referenced) and the next run resumes from the checkpoints and completes.

Faults come from lab.core.faults (NEURON_PILOT_TEST_FAULT); stages run through lab.run.worker.run_stage in this
process (the worker's own code: state, error line, resume policy, halving recorder) to stay fast.
"""

from __future__ import annotations

import errno
import io
import json
import signal
from pathlib import Path
from typing import Any, Optional

import pytest
import torch
from tests.helpers import en_sw_study

from lab.core import faults
from lab.neurons.activations import ActivationStats
from lab.core.artifacts import atomic_write_bytes, sha256_file
from lab.core.errors import StageFailed
from lab.core.faults import FAULT_ENV
from lab.core.resources import (HALVINGS_METRIC, DiskFull, OutOfMemory, is_oom, recording, resumable_failure,
                           run_halving)
from lab.store import StageState, Store

STUDY_SECTIONS = """
[identify]
method = "act_prob_90p"
batch_size = {batch}
checkpoint_every = {every}
histogram_bins = 256
[intervention]
kind = "test_time"
value = "p90"
[evaluate]
tasks = ["demo_real"]
limit = 6
bootstrap = 100
batch_size = {eval_batch}
"""


def make_study(store: Store, tmp: Path, model: Path, corpus: Path, name: str, *, batch: int = 4, every: int = 64,
               eval_batch: int = 8) -> int:
    from lab.study.create import create_study

    path = tmp / f"{name}.toml"
    path.write_text(en_sw_study(name, model, corpus, 21,
                                STUDY_SECTIONS.format(batch=batch, every=every, eval_batch=eval_batch)),
                    encoding="utf-8")
    return int(create_study(store, path).id)  # type: ignore[arg-type]


@pytest.fixture
def run_here(monkeypatch: pytest.MonkeyPatch) -> Any:
    """run_stage in this process with a fault armed (or none); the SIGTERM handler it installs is undone.
    One torch thread, as in a worker on the shared CI machine (two threads on two busy cores spin)."""
    from lab.run.worker import run_stage

    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def run(store: Store, sid: int, stage: str, fault: Optional[str] = None, fresh: bool = False) -> int:
        if fault:
            monkeypatch.setenv(FAULT_ENV, fault)
        else:
            monkeypatch.delenv(FAULT_ENV, raising=False)
        saved = signal.getsignal(signal.SIGTERM)
        try:
            return run_stage(str(store.home.root), str(sid), stage, fresh=fresh, out=io.StringIO())
        finally:
            signal.signal(signal.SIGTERM, saved)
            monkeypatch.delenv(FAULT_ENV, raising=False)

    yield run
    torch.set_num_threads(threads)


def halvings(store: Store, sid: int, stage: str) -> dict[str, tuple[float, Optional[int]]]:
    return {m.condition: (m.value, m.n) for m in store.metrics(sid, stage, name=HALVINGS_METRIC)}


def stage_metrics(store: Store, sid: int, stage: str) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    return {(m.name, m.language, m.condition): (m.value, m.ci_low, m.ci_high, m.n)
            for m in store.metrics(sid, stage) if m.name not in ("compute_seconds", "gpu_seconds", HALVINGS_METRIC)}


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp")]


# ---- the pieces ------------------------------------------------------------------------------------

def test_halving_retries_at_half_until_it_fits_and_reports_each_halving() -> None:
    sizes: list[int] = []
    seen: list[tuple[str, int, int, int]] = []

    def fn(size: int) -> str:
        sizes.append(size)
        if size > 2:
            raise faults.oom_error("cpu")
        return f"ran at {size}"

    with recording(lambda *a: seen.append(a)):
        assert run_halving(fn, 8, "toy") == "ran at 2"
        assert sizes == [8, 4, 2] and seen == [("toy", 8, 4, 1), ("toy", 4, 2, 2)]
        assert run_halving(fn, 8, "toy") == "ran at 2" and sizes[-1] == 2  # the size that fitted is remembered
    with recording(None):
        assert run_halving(fn, 8, "toy") == "ran at 2" and sizes[-3:] == [8, 4, 2]  # a new stage forgets it


def test_outside_a_stage_no_batch_size_outlives_its_call() -> None:
    """A stage function called directly (tests, library use) must not inherit a size from an earlier
    call: neither a plain success at a small size nor a halving caps the next call."""
    sizes: list[int] = []

    def fits_at_two(size: int) -> int:
        sizes.append(size)
        if size > 2:
            raise faults.oom_error("cpu")
        return size

    assert run_halving(lambda size: size, 2, "toy-free") == 2
    assert run_halving(lambda size: size, 8, "toy-free") == 8  # the earlier small size is no cap
    assert run_halving(fits_at_two, 8, "toy-free") == 2 and sizes == [8, 4, 2]
    assert run_halving(fits_at_two, 8, "toy-free") == 2 and sizes[3:] == [8, 4, 2]  # the halving is forgotten


def test_halving_gives_up_at_one_and_passes_other_errors_through() -> None:
    with pytest.raises(OutOfMemory, match="even at batch size 1") as info:
        run_halving(lambda size: (_ for _ in ()).throw(torch.OutOfMemoryError("CUDA out of memory")), 4, "toy")
    assert isinstance(info.value, StageFailed) and resumable_failure(f"OutOfMemory: {info.value}")
    calls: list[int] = []

    def broken(size: int) -> None:
        calls.append(size)
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_halving(broken, 8, "other")
    assert calls == [8]  # not an out-of-memory error: no retry
    assert is_oom(torch.OutOfMemoryError("x")) and is_oom(faults.oom_error("cpu")) and is_oom(MemoryError())
    assert not is_oom(RuntimeError("index out of range")) and not is_oom(ValueError("out of memory"))
    assert not resumable_failure("RuntimeError: boom") and not resumable_failure(None)


def test_fault_specs_parse_strictly_and_are_inert_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    assert faults.parse("kill:identify:after_checkpoint:3") == faults.Fault("kill", "identify", "after_checkpoint", 3)
    assert faults.parse("oom:evaluate:2") == faults.Fault("oom", "evaluate", "batch", 2)
    assert faults.parse("enospc:reproduce") == faults.Fault("enospc", "reproduce", "artifact_write", 1)
    for bad in ("kill:identify:somewhere", "oom:identify", "oom:identify:two", "explode:identify"):
        with pytest.raises(ValueError, match="not a fault spec"):
            faults.parse(bad)
    monkeypatch.delenv(FAULT_ENV, raising=False)
    faults.set_stage("identify")
    try:
        for _ in range(3):
            faults.batch("cpu")  # nothing armed: no error, no kill
            faults.point("db_commit")
        monkeypatch.setenv(FAULT_ENV, "oom:evaluate:1")
        faults.batch("cpu")  # armed for another stage: still nothing
        monkeypatch.setenv(FAULT_ENV, "oom:identify:2")
        faults.set_stage("identify")
        faults.batch("cpu")
        with pytest.raises(RuntimeError, match="can't allocate memory"):
            faults.batch("cpu")
        faults.batch("cpu")  # fires once
    finally:
        faults.set_stage(None)


def test_disk_full_inside_atomic_write_removes_the_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "stage" / "result.json"
    atomic_write_bytes(target, b"old")

    def half_then_full(tmp: Path) -> None:
        tmp.write_bytes(b"half a fi")
        raise OSError(errno.ENOSPC, "No space left on device")

    from lab.core.artifacts import atomic_write

    with pytest.raises(DiskFull, match="free disk space"):
        atomic_write(target, half_then_full)
    assert target.read_bytes() == b"old" and temp_files(tmp_path) == []  # the old file stands, no half file


# ---- out of memory in a stage --------------------------------------------------------------------

@pytest.mark.parametrize("every, oom_batch", [(64, 2), (4, 3)], ids=["before-any-checkpoint", "after-checkpoints"])
def test_identify_oom_halves_the_batch_and_matches_a_run_at_the_smaller_size(
        every: int, oom_batch: int, tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path, run_here: Any) -> None:
    """OOM on a statistics batch: the pass goes back to its last checkpoint (or the start) and goes on at
    half the batch; counts and histograms are exact, so the neuron sets equal a run at that size."""
    store = Store(tmp_path / "home")
    faulted = make_study(store, tmp_path, tiny_llama_dir, tiny_corpus_dir, "oom", batch=4, every=every)
    clean = make_study(store, tmp_path, tiny_llama_dir, tiny_corpus_dir, "clean", batch=2, every=every)
    assert run_here(store, faulted, "identify", f"oom:identify:{oom_batch}") == 0
    assert run_here(store, clean, "identify") == 0

    assert halvings(store, faulted, "identify") == {"statistics": (2.0, 1)}
    assert halvings(store, clean, "identify") == {}
    assert any("out of memory in a statistics batch of 4: halved the batch to 2" in line.message
               for line in store.logs(faulted, "identify"))
    assert stage_metrics(store, faulted, "identify") == stage_metrics(store, clean, "identify")
    out = {sid: store.home.stage_dir(sid, "identify") for sid in (faulted, clean)}
    a, b = (ActivationStats.load(out[sid] / "activation_stats.safetensors") for sid in (faulted, clean))
    for name, t in a.tensors().items():
        u = b.tensors()[name]
        if name in ("act_mean", "act_sum"):  # float32 per-batch sums: batches of 4 before the checkpoint
            assert torch.allclose(t.double(), u.double(), rtol=1e-6, atol=1e-9), name
        else:  # exact integer counts and histogram quantiles: not one token lost or counted twice
            assert torch.equal(t, u), name
    neurons = [json.loads((out[sid] / "neurons.json").read_text())["languages"] for sid in (faulted, clean)]
    assert neurons[0] == neurons[1]

    # the report tells the reader the throughput was measured at the smaller batch
    from lab.report import summary, write_export

    study = store.study(faulted)
    assert summary(store, study)["cost"]["batch_halvings"] == [
        {"stage": "identify", "loop": "statistics", "batch_size": 2, "halvings": 1}]
    assert summary(store, store.study(clean))["cost"]["batch_halvings"] == []
    md = write_export(store, study, "md", tmp_path / "r.md").read_text(encoding="utf-8")
    assert "identify (statistics): batch size halved 1 time(s), to 2" in md


@pytest.mark.slow
def test_evaluate_oom_rebuilds_lm_eval_at_half_batch_and_matches_a_run_at_that_size(
        tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path, run_here: Any) -> None:
    """OOM in lm-eval's 2nd batch: that (language, condition) reruns with HFLM rebuilt at half the batch
    size, the rest of the stage keeps the smaller size; accuracies and per-item log-likelihoods equal
    an un-faulted run at that size."""
    store = Store(tmp_path / "home")
    faulted = make_study(store, tmp_path, tiny_llama_dir, tiny_corpus_dir, "oom-eval", eval_batch=8)
    clean = make_study(store, tmp_path, tiny_llama_dir, tiny_corpus_dir, "clean-eval", eval_batch=4)
    for sid in (faulted, clean):
        assert run_here(store, sid, "identify") == 0 and run_here(store, sid, "intervene") == 0
    assert run_here(store, faulted, "evaluate", "oom:evaluate:2") == 0
    assert run_here(store, clean, "evaluate") == 0

    assert halvings(store, faulted, "evaluate") == {"lm_eval": (4.0, 1)}
    assert halvings(store, clean, "evaluate") == {}
    got, want = stage_metrics(store, faulted, "evaluate"), stage_metrics(store, clean, "evaluate")
    assert ("accuracy", "sw", "intervention") in want and got == want
    for cond in ("baseline", "intervention", "control"):
        items = [json.loads((store.home.stage_dir(sid, "evaluate") / f"samples_{cond}.json").read_text())
                 for sid in (faulted, clean)]
        assert items[0] == items[1], cond


@pytest.mark.slow
def test_reproduce_oom_in_scoring_keeps_finished_passes_and_halves_the_rest(
        tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path, run_here: Any) -> None:
    store = Store(tmp_path / "home")
    sid = make_study(store, tmp_path, tiny_llama_dir, tiny_corpus_dir, "oom-ppxc", batch=4, every=4)
    assert run_here(store, sid, "identify") == 0
    # 2 halves x 2 languages x 3 statistics batches come first (BOS-led blocks hold 63 text tokens, so
    # 1024 tokens make 9 blocks a half), then one scoring batch per language and pass: batch 15 is
    # the first language's batch of the second pass (identified:en)
    assert run_here(store, sid, "reproduce", "oom:reproduce:15") == 0
    assert halvings(store, sid, "reproduce") == {"ppxc_scoring": (2.0, 1)}
    faulted = stage_metrics(store, sid, "reproduce")
    assert run_here(store, sid, "reproduce", fresh=True) == 0
    assert halvings(store, sid, "reproduce") == {}
    clean = stage_metrics(store, sid, "reproduce")
    assert faulted.keys() == clean.keys()
    for key, (value, *_rest) in clean.items():  # full blocks, no padding: batch size changes rounding only
        assert faulted[key][0] == pytest.approx(value, rel=1e-4, abs=1e-6), key


# ---- a full disk ---------------------------------------------------------------------------------

def test_disk_full_fails_cleanly_then_the_next_run_resumes_and_completes(
        tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path, run_here: Any) -> None:
    store = Store(tmp_path / "home")
    sid = make_study(store, tmp_path, tiny_llama_dir, tiny_corpus_dir, "enospc", batch=4, every=4)
    ref = make_study(store, tmp_path, tiny_llama_dir, tiny_corpus_dir, "enospc-ref", batch=4, every=4)
    stage_dir = store.home.stage_dir(sid, "identify")

    assert run_here(store, sid, "identify", "enospc:identify") == 1
    run = store.stage_run(sid, "identify")
    assert run.state == StageState.failed and run.pid is None
    assert run.error is not None and "\n" not in run.error
    assert run.error.startswith("DiskFull: no space left on the device writing activation_stats.safetensors")
    assert "free disk space" in run.error
    assert temp_files(store.home.artifacts) == []
    assert not (stage_dir / "activation_stats.safetensors").exists()
    assert store.artifacts(sid, "identify") == [] and store.metrics(sid, "identify") == []
    assert (store.home.checkpoint_dir(sid, "identify") / "stats" / "stats.json").is_file()  # the work is kept
    assert store.integrity_check() == "ok"

    assert run_here(store, sid, "identify") == 0  # the disk has room again
    run = store.stage_run(sid, "identify")
    assert (run.state, run.error, run.attempts) == (StageState.done, None, 2)
    assert any("resumed from the checkpoint" in line.message for line in store.logs(sid, "identify"))
    for a in store.artifacts(sid, "identify"):
        assert sha256_file(store.home.inside(Path(a.path))) == a.sha256
    assert run_here(store, ref, "identify") == 0
    assert stage_metrics(store, sid, "identify") == stage_metrics(store, ref, "identify")
    assert temp_files(store.home.artifacts) == []
