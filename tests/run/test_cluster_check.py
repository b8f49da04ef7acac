"""`neuron-pilot cluster check STUDY` on the real single-node Slurm (tests/run/conftest.py): it passes on the
debug partition, and each failure (no such partition, a failing setup line, a Python environment that
cannot import torch, no Slurm commands, a local study) is one line with its fix, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.core.paths import PROJECT_ROOT
from lab.store import Store
from lab.study.create import create_study
from tests.helpers import write_study_toml


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", **env})


def one_line_error(res: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def studies(tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("cluster")
    fake = root / "fake-site"  # a torch that cannot be imported, put first on PYTHONPATH by a setup line
    fake.mkdir()
    (fake / "torch.py").write_text('raise ImportError("no torch on this node")\n')
    tables = {
        "good": '[compute]\nexecutor = "slurm"\npartition = "debug"\ncpus = 1\ngpus = 1\ntime_min = 10\n'
                'setup = ["export NP_CHECK=1"]\nextra = {comment = "neuron-pilot check"}\n',
        "nosuch": '[compute]\nexecutor = "slurm"\npartition = "nosuch"\n',
        "badsetup": '[compute]\nexecutor = "slurm"\npartition = "debug"\nsetup = ["module-load-nosuch cuda"]\n',
        # no partition named: the cluster's default
        "notorch": f'[compute]\nexecutor = "slurm"\nsetup = ["export PYTHONPATH={fake}"]\n',
        "local": "",
    }
    home = root / "home"
    store = Store(home)
    ids = {}
    for name, table in tables.items():
        path = write_study_toml(root / f"{name}.toml", tiny_llama_dir, tiny_corpus_dir, name=name)
        path.write_text(path.read_text() + "\n" + table)
        ids[name] = str(create_study(store, path).id)
    return {"home": str(home), **ids}


def test_check_passes_on_the_debug_partition(slurm_cluster: Any, studies: dict[str, Any]) -> None:
    res = cli("cluster", "check", studies["good"], "--home", studies["home"])
    assert res.returncode == 0, (res.stdout, res.stderr)
    out = res.stdout
    assert "ok: partition debug exists" in out
    assert f"is visible from {slurm_cluster.host}" in out
    assert f"{sys.executable} on {slurm_cluster.host} imports lab and torch" in out
    assert "warning: torch on" in out and "CUDA_VISIBLE_DEVICES=0" in out  # the fake GPU, a CPU build of torch
    assert f"`neuron-pilot run {studies['good']} --detach`" in out
    # the check job's probe file was read and removed; submitit's log stays for reference
    check = Path(studies["home"]) / "logs" / f"study-{studies['good']}" / "slurm" / "check"
    assert not list(check.glob("probe-*.json")) and list(check.glob("*_log.out"))


def test_partition_that_does_not_exist_is_exit_2(slurm_cluster: Any, studies: dict[str, Any]) -> None:
    res = cli("cluster", "check", studies["nosuch"], "--home", studies["home"])
    one_line_error(res, "partition 'nosuch' does not exist on this cluster", "set [compute] partition to one of debug")


def test_failing_setup_line_is_exit_2_naming_it(slurm_cluster: Any, studies: dict[str, Any]) -> None:
    res = cli("cluster", "check", studies["badsetup"], "--home", studies["home"])
    one_line_error(res, "a [compute] setup line failed on the compute node", "module-load-nosuch cuda",
                   "fix it in the study file")


def test_python_environment_without_torch_is_exit_2(slurm_cluster: Any, studies: dict[str, Any]) -> None:
    res = cli("cluster", "check", studies["notorch"], "--home", studies["home"])
    one_line_error(res, f"the Python environment does not work on {slurm_cluster.host}",
                   "ImportError: no torch on this node", "[compute] setup")
    # the checks that passed before it said so
    assert "ok: partition debug exists (the cluster's default)" in res.stdout
    assert f"is visible from {slurm_cluster.host}" in res.stdout and "imports lab and torch" not in res.stdout


def test_no_slurm_commands_is_exit_2(studies: dict[str, Any]) -> None:
    res = cli("cluster", "check", studies["good"], "--home", studies["home"], PATH="/nonexistent")
    one_line_error(res, "sinfo is not installed here", "login node")


def test_local_study_is_exit_2(studies: dict[str, Any]) -> None:
    res = cli("cluster", "check", studies["local"], "--home", studies["home"])
    one_line_error(res, 'executor = "local"', 'set executor = "slurm"')


def test_bad_wait_is_exit_2(studies: dict[str, Any]) -> None:
    one_line_error(cli("cluster", "check", studies["good"], "--home", studies["home"], "--wait", "nan"),
                   "--wait nan must be a positive number")
