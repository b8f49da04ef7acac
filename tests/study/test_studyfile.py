"""Study files: validation before anything is stored. `neuron-pilot new` refuses bad files with exit
code 2, one line on stderr and no study in the DB; fuzzed text only ever raises BadInput."""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.core.errors import BadInput
from lab.core.paths import PROJECT_ROOT
from lab.study.studyfile import StudyFile, load_study_file, parse_study

LANGS = ["en", "fr", "de", "sw"]


def study_text(model: Path | str, corpus: Path | str, *, name: str = "pilot", extra: str = "",
               langs: list[str] = LANGS) -> str:
    return f"""
[study]
name = "{name}"
seed = 5

[model]
id = "{model}"

[languages]
all = {json.dumps(langs)}
targets = ["sw"]

[corpus]
path = "{corpus}"
tokens_per_language = 1000

[evaluate]
tasks = ["demo_xnli"]
{extra}"""


def _new(path: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "lab.cli", "new", str(path), "--home", str(home)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300, env=env)


def _studies_in(home: Path) -> int:
    db = home / "lab.db"
    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        has = con.execute("SELECT count(*) FROM sqlite_master WHERE name='study'").fetchone()[0]
        return con.execute("SELECT count(*) FROM study").fetchone()[0] if has else 0
    finally:
        con.close()


@pytest.mark.parametrize("case, expected", [
    ("unknown_key", "unknown key [corpus] tokens_per_langauge"),
    ("missing_language", "has no text for hi"),
    ("missing_model", "is not an existing file or folder"),
])
def test_new_refuses_bad_study_files(case: str, expected: str, tmp_path: Path, tiny_corpus_dir: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    text = study_text(model, tiny_corpus_dir)
    if case == "unknown_key":
        text = text.replace("tokens_per_language", "tokens_per_langauge")
    elif case == "missing_language":
        text = study_text(model, tiny_corpus_dir, langs=[*LANGS, "hi"])
    else:
        text = study_text(tmp_path / "no-such-model", tiny_corpus_dir)
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    home = tmp_path / "home"
    res = _new(path, home)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert _studies_in(home) == 0


def test_valid_file_resolves_paths_relative_to_the_study_file(tmp_path: Path, tiny_corpus_dir: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "studies"
    (folder / "m").mkdir(parents=True)
    path = folder / "s.toml"
    path.write_text(study_text("m", tiny_corpus_dir), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the study's folder: the model still resolves against the file
    parsed, cfg, text = load_study_file(path)
    assert isinstance(parsed, StudyFile) and text == path.read_text(encoding="utf-8")
    assert cfg["model"]["id"] == str((folder / "m").resolve())
    assert cfg["corpus"]["path"] == str(tiny_corpus_dir.resolve())
    assert cfg["corpus"]["heldout"] == str(tiny_corpus_dir.resolve() / "heldout")
    assert cfg["languages"]["high_resource"] == ["en", "fr", "de"]
    assert cfg["resolved"]["model_source"] == "local" and cfg["resolved"]["corpus_source"] == "local"
    # defaults of the optional sections
    assert (parsed.identify.method, parsed.intervention.kind, parsed.intervention.value) == ("lape", "test_time", "p90")
    assert (parsed.model.dtype, parsed.model.device, parsed.model.trust_remote_code) == ("auto", "auto", False)


@pytest.mark.parametrize("edit, expected", [
    (('targets = ["sw"]', 'targets = ["ur"]'), "are not in languages.all"),
    (('all = ["en", "fr", "de", "sw"]', 'all = ["en", "EN!", "sw"]'), "is not a language code"),
    (('all = ["en", "fr", "de", "sw"]', 'all = ["en", "sw", "sw"]'), "listed twice"),
    (('tokens_per_language = 1000', 'tokens_per_language = 0'), "[corpus] tokens_per_language"),
    (('seed = 5', 'seed = 5\ndevice = "gpu"'), "unknown key [study] device"),
    (('[evaluate]\ntasks = ["demo_xnli"]', ''), "missing [evaluate]"),
    (('name = "pilot"', 'name = ""'), "[study] name"),
    (('[corpus]', '[corpus\n'), "is not valid TOML"),
])
def test_parse_errors_are_one_line(edit: tuple[str, str], expected: str) -> None:
    text = study_text("m", "c").replace(*edit)
    with pytest.raises(BadInput) as exc:
        parse_study(text, source="s.toml")
    msg = str(exc.value)
    assert expected in msg and "\n" not in msg and msg.startswith("s.toml")


def test_device_and_dtype_are_checked() -> None:
    base = study_text("m", "c")
    with pytest.raises(BadInput, match="device must be auto, cpu, cuda, cuda:N or mps"):
        parse_study(base.replace('id = "m"', 'id = "m"\ndevice = "tpu"'))
    with pytest.raises(BadInput, match=r"\[model\] dtype"):
        parse_study(base.replace('id = "m"', 'id = "m"\ndtype = "int3"'))
    assert parse_study(base.replace('id = "m"', 'id = "m"\ndevice = "cuda:1"')).model.device == "cuda:1"


def test_missing_corpus_folder_and_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    path = tmp_path / "s.toml"
    path.write_text(study_text(tmp_path / "m", tmp_path / "no-corpus"), encoding="utf-8")
    with pytest.raises(BadInput, match=r"\[corpus\] path .* is not a folder"):
        load_study_file(path)
    with pytest.raises(BadInput, match="does not exist"):
        load_study_file(tmp_path / "nope.toml")
    path.write_bytes(b"\xff\xfe[study]")
    with pytest.raises(BadInput, match="not UTF-8"):
        load_study_file(path)


# ---- fuzz -------------------------------------------------------------------------------------

VALID = tomllib.loads(study_text("m", "c", extra='[identify]\nmethod = "lape"\n[intervention]\nvalue = "zero"\n'
                                           '[criteria]\nmin_gain_points = 2.0\n'))
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = ["study", "model", "languages", "corpus", "identify", "intervention", "evaluate", "criteria", "name", "id",
        "all", "targets", "path", "tasks", "method", "kind", "value", "dtype", "device", "seed", "high_resource"]
SCALARS = st.one_of(st.text(max_size=10), st.integers(-2**63, 2**63 - 1), st.booleans(), st.floats(),
                    st.sampled_from(["en", "sw", "lape", "zero", "cuda:0", "auto", "float16"]))
KEY = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(KEY, inner, max_size=4)), max_leaves=12)


def _check(text: str) -> None:
    """parse_study either returns a StudyFile or raises a one-line BadInput — nothing else."""
    try:
        result = parse_study(text, source="fuzz.toml")
    except BadInput as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert isinstance(result, StudyFile)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _paths(v, prefix + (k,))


@settings(FUZZ, max_examples=100)
@given(st.text(max_size=300))
def test_fuzz_random_text(text: str) -> None:
    _check(text)


@FUZZ
@given(st.dictionaries(KEY, VALUES, max_size=6))
def test_fuzz_random_structures(doc: dict[str, Any]) -> None:
    _check(tomli_w.dumps(doc))


@FUZZ
@given(st.data())
def test_fuzz_mutated_valid_study(data: st.DataObject) -> None:
    doc = copy.deepcopy(VALID)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent: Any = doc
        for k in path[:-1]:
            parent = parent[k]
        op = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace":
            parent[path[-1]] = data.draw(VALUES)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][data.draw(KEY)] = data.draw(VALUES)
    _check(tomli_w.dumps(doc))


def test_the_valid_fuzz_seed_parses() -> None:
    parsed = parse_study(tomli_w.dumps(VALID))
    assert parsed.intervention.value == "zero" and parsed.criteria.model_dump() == {"min_gain_points": 2.0}
