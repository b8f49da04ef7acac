"""A pilot's stages through the real Slurm of tests/run/conftest.py, driven by the coordinator (Runner),
each stage a job running `python -m lab.worker` that never opens lab.db: identify → reproduce →
intervene → evaluate (and the gates between them) give metrics, neuron sets and decisions identical
to the local executor's run of the same study. tests/run/test_slurm_recovery.py has the cancels,
restarts and failures.

Every process uses one torch thread (OMP_NUM_THREADS=1, inherited by the jobs), so runs compare bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab.store import StageState, Store
from tests.run.slurm_pilot import COMPUTE, STAGES, artifacts, make_study, metrics, one_thread, run_through  # noqa: F401


@pytest.fixture(scope="module")
def local_run(one_thread: Any, tiny_llama_dir: Path, tiny_corpus_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, int]:
    """The reference: the same study on the local executor, through the same coordinator, to evaluate."""
    store, sid = make_study(tmp_path_factory.mktemp("local"), "pilot", tiny_llama_dir, tiny_corpus_dir)
    run_through(store, sid, "evaluate")
    return store, sid


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
