"""Shared fixtures. Tests run offline (HF_HUB_OFFLINE=1) on tiny models they build themselves or on
the shipped demo assets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.helpers import LANG_TEXT, build_tiny_llama


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
