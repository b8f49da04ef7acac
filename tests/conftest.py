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
