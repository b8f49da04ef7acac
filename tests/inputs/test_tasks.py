"""Task naming, lookup and local data for built-in tasks (no model needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from lab.inputs import tasks
from lab.core.errors import BadInput
from lab.core.paths import DEMO_TASKS


def _cfg(task_list: list[str], *, all_: list[str] | None = None, targets: list[str] | None = None,
         high: list[str] | None = None, data_dir: str | None = None) -> dict[str, Any]:
    all_ = all_ or ["en", "sw"]
    targets = targets or ["sw"]
    return {"languages": {"all": all_, "targets": targets,
                          "high_resource": high if high is not None else [x for x in all_ if x not in targets]},
            "evaluate": {"tasks": task_list, "data_dir": data_dir}}


def _write_demo(root: Path, family: str, langs: list[str]) -> None:
    folder = root / family
    folder.mkdir(parents=True)
    for lang in langs:
        (folder / f"{family}_{lang}.test.jsonl").write_text(json.dumps({"q": "x", "choices": ["a", "b"], "gold": 0}) + "\n")
        (folder / f"{family}_{lang}.yaml").write_text(
            f"task: {family}_{lang}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {family}_{lang}.test.jsonl\n"
            "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: choices\n"
            "doc_to_target: gold\nmetric_list:\n  - metric: acc\n")


@pytest.fixture
def demo_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "demo_tasks"
    _write_demo(root, "toy_mc", ["en", "sw", "fr"])
    monkeypatch.setattr(tasks, "DEMO_TASKS", root)
    return root


@pytest.fixture
def no_dataset_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, with an empty datasets cache: built-in tasks have nothing to read."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_demo_family_expands_per_language(demo_root: Path) -> None:
    refs = tasks.resolve_tasks(_cfg(["toy_mc"], all_=["en", "fr", "sw"], targets=["sw"]))
    assert [(r.name, r.language, r.source) for r in refs] == [
        ("toy_mc_sw", "sw", "demo"), ("toy_mc_en", "en", "demo"), ("toy_mc_fr", "fr", "demo")]
    assert refs[0].yaml_path == demo_root / "toy_mc" / "toy_mc_sw.yaml"


def test_explicit_names_apply_to_their_language_only(demo_root: Path) -> None:
    refs = tasks.resolve_tasks(_cfg(["toy_mc_sw", "xnli_en"]))
    assert [(r.name, r.language, r.source) for r in refs] == [("toy_mc_sw", "sw", "demo"), ("xnli_en", "en", "builtin")]


def test_builtin_families_use_their_naming() -> None:
    cfg = _cfg(["xnli", "belebele", "mlqa"], all_=["en", "hi", "sw"], targets=["sw", "hi"])
    names = {(r.entry, r.language): r.name for r in tasks.resolve_tasks(cfg)}
    assert names[("xnli", "sw")] == "xnli_sw"
    assert names[("belebele", "sw")] == "belebele_swh_Latn"
    assert names[("belebele", "hi")] == "belebele_hin_Deva"
    assert names[("mlqa", "hi")] == "mlqa_hi_hi"
    assert ("mlqa", "sw") not in names  # MLQA has no Swahili: that pair is skipped, the language is still covered
    assert tasks.resolve_tasks(_cfg(["belebele_swh_Latn", "xnli_en"]))[0].language == "sw"


def test_unknown_task_names_the_known_families(demo_root: Path) -> None:
    with pytest.raises(BadInput) as exc:
        tasks.resolve_tasks(_cfg(["no_such_task_family"]))
    msg = str(exc.value)
    assert "no_such_task_family" in msg and "xnli" in msg and "belebele" in msg and "toy_mc" in msg
    assert "\n" not in msg


def test_language_without_any_task_is_refused() -> None:
    # XCOPA has Swahili but no English: en (high-resource) would go unevaluated
    with pytest.raises(BadInput, match=r"no task for language\(s\) en"):
        tasks.resolve_tasks(_cfg(["xcopa"]))
    refs = tasks.resolve_tasks(_cfg(["xcopa", "xnli"]))
    assert {(r.name, r.language) for r in refs} == {("xcopa_sw", "sw"), ("xnli_sw", "sw"), ("xnli_en", "en")}


def test_explicit_task_of_unevaluated_language_is_refused() -> None:
    with pytest.raises(BadInput, match="xnli_fr.*fr"):
        tasks.resolve_tasks(_cfg(["xnli", "xnli_fr"], all_=["en", "fr", "sw"], high=["en"]))


def test_other_builtin_tasks_are_found_by_name() -> None:
    # not a known family: found by the text scan of lm-eval's task folder
    refs = tasks.resolve_tasks(_cfg(["xwinograd"], all_=["en", "fr"], targets=["fr"]))
    assert {(r.name, r.language) for r in refs} == {("xwinograd_fr", "fr"), ("xwinograd_en", "en")}
    assert all(r.yaml_path.is_file() for r in refs)


def test_demo_data_files_become_absolute_against_the_yaml_folder(demo_root: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # lm-eval would resolve relative paths here
    ref = tasks.resolve_tasks(_cfg(["toy_mc_sw", "toy_mc_en"]))[0]
    cfg = tasks.task_config(ref)
    path = Path(cfg["dataset_kwargs"]["data_files"]["test"])
    assert path.is_absolute() and path == demo_root / "toy_mc" / "toy_mc_sw.test.jsonl" and path.is_file()


def test_shipped_demo_tasks_resolve() -> None:
    langs = ["en", "fr", "de", "sw", "hi", "ur"]
    refs = tasks.resolve_tasks(_cfg(["demo_real", "demo_xnli", "demo_qa"], all_=langs, targets=["sw", "ur"]))
    assert len(refs) == 18
    for ref in refs:
        assert ref.yaml_path.is_relative_to(DEMO_TASKS)
        files = tasks.task_config(ref)["dataset_kwargs"]["data_files"]
        assert all(Path(f).is_file() for f in files.values())
    assert {tasks.output_type(r) for r in refs if r.entry == "demo_qa"} == {"generate_until"}


def test_builtin_task_offline_without_data_is_a_clear_error(no_dataset_cache: None) -> None:
    cfg = _cfg(["xnli"])
    with pytest.raises(BadInput) as exc:
        tasks.check_tasks(cfg)
    msg = str(exc.value)
    assert "xnli_sw" in msg and "facebook/xnli" in msg and "offline" in msg and "data_dir" in msg
    ref = tasks.resolve_tasks(cfg)[0]
    with pytest.raises(BadInput, match="data_dir"):
        tasks.task_config(ref, None)


def test_local_data_layouts(tmp_path: Path) -> None:
    (tmp_path / "xnli_sw.jsonl").write_text("{}\n")
    (tmp_path / "xnli_en").mkdir()
    (tmp_path / "xnli_en" / "validation.jsonl").write_text("{}\n")
    (tmp_path / "xnli_en" / "train.jsonl").write_text("{}\n")
    assert tasks.local_data_files(str(tmp_path), "xnli_sw") == {"": str((tmp_path / "xnli_sw.jsonl").resolve())}
    assert set(tasks.local_data_files(str(tmp_path), "xnli_en") or {}) == {"validation", "train"}
    assert tasks.local_data_files(str(tmp_path), "xnli_fr") is None
    assert tasks.local_data_files(None, "xnli_sw") is None


def test_local_data_replaces_the_builtin_dataset(tmp_path: Path, no_dataset_cache: None) -> None:
    (tmp_path / "xnli_sw.jsonl").write_text(json.dumps({"premise": "a", "hypothesis": "b", "label": 0}) + "\n")
    (tmp_path / "xnli_en").mkdir()
    (tmp_path / "xnli_en" / "train.jsonl").write_text("{}\n")
    cfg = _cfg(["xnli"], data_dir=str(tmp_path))
    with pytest.raises(BadInput, match="evaluates on 'validation'"):
        tasks.check_tasks(cfg)
    with pytest.raises(BadInput, match="evaluates on 'validation'"):
        tasks.task_config(tasks.resolve_tasks(cfg)[1], str(tmp_path))
    ref = tasks.resolve_tasks(cfg)[0]
    conf = tasks.task_config(ref, str(tmp_path))
    assert conf["task"] == "xnli_sw"
    assert conf["dataset_path"] == "json" and conf["dataset_name"] is None
    assert conf["dataset_kwargs"] == {"data_files": {"validation": str((tmp_path / "xnli_sw.jsonl").resolve())}}
    assert conf["validation_split"] == "validation" and conf["training_split"] is None
    assert "sahihi" in conf["doc_to_choice"]  # the built-in Swahili prompt is kept


def test_new_study_refuses_builtin_task_without_local_data(tmp_path: Path, tiny_llama_dir: Path,
                                                           tiny_corpus_dir: Path, no_dataset_cache: None) -> None:
    from lab.store import Store
    from lab.study.create import create_study

    study = tmp_path / "s.toml"
    study.write_text(f"""[study]\nname = "t"\n[model]\nid = "{tiny_llama_dir}"\n[languages]\nall = ["en", "sw"]
targets = ["sw"]\n[corpus]\npath = "{tiny_corpus_dir}"\ntokens_per_language = 1000\n[evaluate]\ntasks = ["xnli"]\n""")
    with pytest.raises(BadInput, match="data_dir"):
        create_study(Store(tmp_path / "home"), study)
    assert os.environ["HF_DATASETS_OFFLINE"] == "1"
