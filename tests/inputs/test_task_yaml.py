"""lm-eval task YAML read without lm-eval's private loader: includes merged, `!function module.name`
imported from module.py beside the YAML that names it, clear errors for a missing file or function."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.core.errors import BadInput
from lab.inputs.tasks import TaskRef, _load_task_yaml, _raw_config


def _task_folder(root: Path) -> Path:
    common = root / "common"
    common.mkdir(parents=True)
    (common / "helpers.py").write_text("def score(doc, results):\n    return {'acc': 0.25}\n", encoding="utf-8")
    (common / "base.yaml").write_text("output_type: multiple_choice\nprocess_results: !function helpers.score\n"
                                      "test_split: test\n", encoding="utf-8")
    (root / "utils.py").write_text("def docs(ds):\n    return ['own']\n", encoding="utf-8")
    (root / "toy.yaml").write_text("include: common/base.yaml\ntask: toy\ntest_split: dev\n"
                                   "process_docs: !function utils.docs\n", encoding="utf-8")
    return root / "toy.yaml"


def test_functions_come_from_the_file_beside_the_yaml_that_names_them(tmp_path: Path) -> None:
    path = _task_folder(tmp_path)
    cfg = _load_task_yaml(TaskRef("toy", "en", "toy", "demo", path))
    assert cfg["task"] == "toy" and cfg["output_type"] == "multiple_choice"
    assert cfg["test_split"] == "dev"  # the including file wins over its include
    assert cfg["process_results"](None, None) == {"acc": 0.25}  # from common/helpers.py, beside base.yaml
    assert cfg["process_docs"](None) == ["own"]  # from utils.py, beside toy.yaml
    assert _load_task_yaml(TaskRef("toy", "en", "toy", "demo", path))["process_docs"] is cfg["process_docs"]  # imported once
    raw = _raw_config(path)  # the cheap read used at `new`: functions stay text, nothing imported
    assert raw["process_docs"] == "utils.docs" and raw["process_results"] == "helpers.score"


def test_a_missing_file_or_function_is_bad_input_naming_it(tmp_path: Path) -> None:
    path = _task_folder(tmp_path)
    path.write_text("task: toy\nprocess_docs: !function nowhere.docs\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"!function nowhere.docs names no file nowhere.py"):
        _load_task_yaml(TaskRef("toy", "en", "toy", "demo", path))
    path.write_text("task: toy\nprocess_docs: !function utils.missing\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"has no function 'missing'"):
        _load_task_yaml(TaskRef("toy", "en", "toy", "demo", path))


def test_task_code_that_cannot_import_is_refused_with_a_message(tmp_path: Path) -> None:
    path = _task_folder(tmp_path)
    (tmp_path / "utils.py").write_text("import module_that_is_not_installed\n", encoding="utf-8")
    with pytest.raises(BadInput, match="its lm-eval code cannot be imported"):
        _load_task_yaml(TaskRef("toy", "en", "toy", "demo", path))
