"""Shared fixtures. Tests run offline (HF_HUB_OFFLINE=1) on tiny models they build themselves or on
the shipped demo assets."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.helpers import LANG_TEXT, build_tiny_llama

from lab.run.launcher import LAUNCHER_ENV


# The longest test files (measured with --durations on 2 cores: the keyboard pilot ~325 s, the Slurm recovery
# and equality runs ~170 s and ~140 s, ...) start first, so that none of them ends the run alone; the
# Makefile turns off xdist's reordering by test count (--no-loadscope-reorder), which put them last.
LONGEST_FIRST = (
    "tests/tui/test_tui_pilot.py", "tests/run/test_slurm_recovery.py", "tests/stages/test_identify_shards.py",
    "tests/run/test_slurm_pilot.py", "tests/stages/test_evaluate_fanout.py", "tests/gates/test_gate_simulation.py",
    "tests/reliability/test_kill_matrix.py", "tests/reliability/test_sigterm_latency.py",
    "tests/reliability/test_safety.py", "tests/tui/test_tui_detach.py", "tests/neurons/test_bench.py",
    "tests/run/test_slurm_shards.py", "tests/stages/test_reproduce.py", "tests/neurons/test_identify.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: files keep their order


@pytest.fixture(scope="session", autouse=True)
def warm_unit_launcher() -> Iterator[None]:
    """One warm launcher per test process (lab.run.launcher): every local stage unit the tests start, in
    this process or in a runner, CLI or UI it starts, is forked from a process that imported torch,
    transformers, peft and lm-eval once, instead of paying those imports (5-8 s) each time.
    tests/run/test_workers.py also runs units without it (the plain subprocess path)."""
    folder = tempfile.mkdtemp(prefix="npl-")
    sock = os.path.join(folder, "launcher.sock")
    proc = subprocess.Popen([sys.executable, "-m", "lab.run.launcher", sock], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready", "the unit launcher did not start"
    os.environ[LAUNCHER_ENV] = sock
    yield
    os.environ.pop(LAUNCHER_ENV, None)
    assert proc.stdin is not None
    proc.stdin.close()  # the launcher ends when its parent's pipe closes
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four languages, each a few thousand words of repeated demo text, plus a held-out folder."""
    d = tmp_path_factory.mktemp("corpus")
    (d / "heldout").mkdir()
    for lang, text in LANG_TEXT.items():
        (d / f"{lang}.txt").write_text((text + "\n") * 200, encoding="utf-8")
        (d / "heldout" / f"{lang}.txt").write_text((text + "\n") * 40, encoding="utf-8")
    return d


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"
