"""Sharded identify on the real Slurm of tests/run/conftest.py: the shards go as one job array, the merge as
one more job, and the result equals the unsharded local run (identify only, the small en + sw study)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from lab.neurons.activations import ActivationStats
from lab.store import StageState, Store
from lab.study.create import create_study
from tests.helpers import en_sw_study
from tests.run.slurm_pilot import COMPUTE, SECTIONS, one_thread, run_through  # noqa: F401


def _study(root: Path, name: str, model: Path, corpus: Path, shards: int, compute: str) -> tuple[Store, int]:
    path = root / f"{name}.toml"
    sections = SECTIONS.replace("checkpoint_every = 2", f"checkpoint_every = 2\nshards = {shards}")
    path.write_text(en_sw_study(name, model, corpus, 13, sections) + compute, encoding="utf-8")
    store = Store(root / name)
    return store, int(create_study(store, path).id)  # type: ignore[arg-type]


def _outputs(store: Store, sid: int) -> tuple[ActivationStats, Any, Any]:
    folder = store.home.stage_dir(sid, "identify")
    return (ActivationStats.load(folder / "activation_stats.safetensors"),
            json.loads((folder / "neurons.json").read_text())["languages"],
            json.loads((folder / "control.json").read_text())["languages"])


@pytest.mark.slow
def test_shards_run_as_a_slurm_job_array_and_merge_to_the_local_result(
        slurm_cluster: Any, one_thread: Any, tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    local, lsid = _study(tmp_path, "local", tiny_llama_dir, tiny_corpus_dir, 1, "")
    run_through(local, lsid, "identify")
    store, sid = _study(tmp_path, "slurm", tiny_llama_dir, tiny_corpus_dir, 2, COMPUTE.format(extra="max_parallel = 2"))
    run_through(store, sid, "identify")

    units = {u.unit: u for u in store.unit_runs(sid, "identify")}
    assert set(units) == {"shard-1-of-2", "shard-2-of-2"}
    assert all(u.state == StageState.done and u.executor == "slurm" and u.attempts == 1 for u in units.values())
    arrays = {str(u.job_id).split("_")[0] for u in units.values()}
    assert len(arrays) == 1 and all("_" in str(u.job_id) for u in units.values())  # one array, a task each
    merge = store.stage_run(sid, "identify")
    assert merge.state == StageState.done and merge.executor == "slurm" and merge.job_id not in arrays

    ref, got = _outputs(local, lsid), _outputs(store, sid)
    for name in ("act_count", "tokens", "threshold_pooled90", "above_pooled90"):
        assert torch.equal(ref[0].tensors()[name], got[0].tensors()[name]), name
    for name in ("act_p10", "act_p90"):  # exact quantiles are activations computed in other processes: last bits
        assert torch.allclose(ref[0].tensors()[name], got[0].tensors()[name], rtol=0, atol=1e-6), name
    assert torch.allclose(ref[0].sum, got[0].sum, rtol=1e-4, atol=1e-3)
    assert got[1] == ref[1] and got[2] == ref[2]
