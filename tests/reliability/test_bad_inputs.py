"""The bad-input matrix (issue #9): every kind of bad input a user can give, through the real CLI.

Each case calls `lab.cli.main` in-process — the handler and error path the console script runs
(tests/test_cli.py and test_studyfile.py cover the same path as subprocesses) — and checks: exit
code 2, exactly one line on stderr `error: what is wrong; how to fix it` (a how-to verb after the
`; `), no traceback, and nothing stored changed (every table of lab.db and every file under the home
except logs/). Inputs only a loaded model or its tokenizer can reveal (architecture, GGUF
architecture, a corpus too small for the token budget) and artifacts tampered after their stage wrote
them fail inside the stage's worker: `run` exits 2 with one line, and every earlier stage's rows,
metrics and files are exactly as before (only the failed stage's own row records the failure).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from lab.cli import main
from lab.store.db import SCHEMA_VERSION
from tests.helpers import metadata_only_gguf

HOW = re.compile(r"\b(fix|use|set|check|add|remove|point|run|re-run|restore|download|upgrade|save|re-save|lower|"
                 r"raise|pass|give|list|drop|create|wait|install|write|name|rename|pick|choose|stop)\b", re.IGNORECASE)

# ---- what "nothing stored changed" means ---------------------------------------------------------


def db_rows(home: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of lab.db (read-only), in rowid order."""
    db = home / "lab.db"
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: [dict(r) for r in con.execute(f'SELECT * FROM "{t}" ORDER BY rowid')] for t in tables}
    finally:
        con.close()


def stored_files(home: Path) -> dict[str, str]:
    """sha256 of every file in the home but the DB itself and logs/ (a failed stage logs its failure)."""
    out = {}
    for p in sorted(home.rglob("*")):
        rel = p.relative_to(home)
        if p.is_file() and rel.parts[0] != "logs" and not rel.name.startswith("lab.db"):
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def stored(home: Path, failed: Optional[tuple[int, str]] = None) -> dict[str, Any]:
    """The home's stored state; with `failed=(study, stage)`, minus what a failing stage may write:
    its own stagerun row, how far its event file was ingested (its ingestcursor row) and the study's
    updated_at."""
    rows = db_rows(home)
    if failed is not None:
        sid, stage = failed
        for table in ("stagerun", "ingestcursor"):
            rows[table] = [r for r in rows.get(table, []) if (r["study_id"], r["stage"]) != (sid, stage)]
        rows["study"] = [{k: v for k, v in r.items() if k != "updated_at"} for r in rows.get("study", [])]
    return {"db": rows, "files": stored_files(home)}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad_input(code: int, err: str, *expected: str) -> str:
    """Exit 2, one line `error: what; how`, no traceback; returns the line."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, err)
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in err, line
    _, sep, how = line.partition("; ")
    assert sep and HOW.search(how), f"no 'how to fix it' after '; ': {line}"
    for text in expected:
        assert text in line, line
    return line


# ---- the study files ------------------------------------------------------------------------------

BASE = """
[study]
name = "{name}"
seed = 2

[model]
id = "{model}"
device = "cpu"

[languages]
all = ["en", "fr", "de", "sw"]
targets = ["sw"]

[corpus]
path = "{corpus}"
tokens_per_language = {tokens}
block_size = 64
heldout_tokens = 128

[identify]
histogram_bins = 64

[evaluate]
tasks = ["demo_xnli"]
"""


@dataclass
class Kit:
    """What a case builds its input from: a scratch folder, the tiny model and corpus."""

    tmp: Path
    model: Path
    corpus: Path

    def study(self, *edits: tuple[str, str], model: Any = None, corpus: Any = None, extra: str = "",
              tokens: int = 1000, name: str = "bad") -> Path:
        text = BASE.format(name=name, model=model or self.model, corpus=corpus or self.corpus, tokens=tokens) + extra
        for old, new in edits:
            assert old in text, old
            text = text.replace(old, new)
        path = self.tmp / "study.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def model_copy(self, name: str = "model") -> Path:
        dst = self.tmp / name
        shutil.copytree(self.model, dst)
        return dst

    def corpus_copy(self) -> Path:
        dst = self.tmp / "corpus"
        shutil.copytree(self.corpus, dst)
        return dst

    def protocol(self, edit: Callable[[str], str]) -> Path:
        from protocols import SHIPPED

        path = self.tmp / "my-protocol.toml"
        path.write_text(edit((SHIPPED / "lsn-staged.toml").read_text(encoding="utf-8")), encoding="utf-8")
        return path


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def corrupt_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8:24] = b"\x00garbage\xffheader!"
    path.write_bytes(bytes(data))




def _broken_model(k: Kit, damage: Callable[[Path], None]) -> Path:
    m = k.model_copy()
    damage(m / "model.safetensors")
    return k.study(model=m)


def _corpus_with(k: Kit, lang_file: str, data: bytes) -> Path:
    c = k.corpus_copy()
    (c / "sw.txt").unlink()
    (c / lang_file).write_bytes(data)
    return k.study(corpus=c)


def _empty_model_folder(k: Kit) -> Path:
    (k.tmp / "empty-model").mkdir()
    return k.study(model=k.tmp / "empty-model")


def _not_utf8_study(k: Kit) -> Path:
    path = k.study()
    path.write_bytes(path.read_bytes().replace(b'name = "bad"', b'name = "caf\xe9"'))
    return path


# Each `new` case: (builder → study file, text the one line must hold). Builders may break files.
NEW_CASES: dict[str, tuple[Callable[[Kit], Path], str]] = {
    # model
    "model_path_missing": (lambda k: k.study(model=k.tmp / "no-such-model"), "is not an existing file or folder"),
    "model_folder_without_config": (_empty_model_folder, "has no config.json"),
    "hub_id_while_offline": (lambda k: k.study(model="neuron-pilot-tests/never-cached-model"),
                             "the hub is offline here"),
    "config_json_not_json": (lambda k: _broken_model(k, lambda p: (p.parent / "config.json").write_text("{oops")),
                             "config.json is not a JSON object"),
    "safetensors_truncated": (lambda k: _broken_model(k, truncate), "is corrupt or truncated"),
    "safetensors_corrupt_header": (lambda k: _broken_model(k, corrupt_header), "is corrupt or truncated"),
    "safetensors_empty_file": (lambda k: _broken_model(k, lambda p: p.write_bytes(b"")), "is corrupt or truncated"),
    "gguf_not_a_gguf": (lambda k: k.study(model=_write(k.tmp / "m.gguf", b"GGUG" + b"\x00" * 64)),
                        "is not a readable GGUF file"),
    "gguf_truncated": (lambda k: k.study(model=_truncated_gguf(k)), "is not a readable GGUF file"),
    # corpus
    "corpus_not_utf8": (lambda k: _corpus_with(k, "sw.txt", "paka analala\nmbwa caf\xe9\n".encode("latin-1")),
                        "line 2 is not valid UTF-8"),
    "corpus_jsonl_not_json": (lambda k: _corpus_with(k, "sw.jsonl", b'{"text": "paka"}\nnot json\n'),
                              "line 2 is not valid JSON"),
    "corpus_jsonl_without_text": (lambda k: _corpus_with(k, "sw.jsonl", b'{"body": "paka"}\n'),
                                  'has no string field "text"'),
    "corpus_file_empty": (lambda k: _corpus_with(k, "sw.txt", b""), "is empty"),
    "corpus_file_blank_lines": (lambda k: _corpus_with(k, "sw.txt", b"\n   \n\t\n"), "is empty"),
    "corpus_folder_missing": (lambda k: k.study(corpus=k.tmp / "no-corpus"), "[corpus] path"),
    # languages and tasks
    "language_without_corpus_text": (lambda k: k.study(('all = ["en", "fr", "de", "sw"]',
                                                        'all = ["en", "fr", "de", "sw", "hi"]')), "has no text for hi"),
    "language_code_invalid": (lambda k: k.study(('all = ["en", "fr", "de", "sw"]', 'all = ["en", "EN!", "sw"]')),
                              "is not a language code"),
    "language_target_not_in_all": (lambda k: k.study(('targets = ["sw"]', 'targets = ["ur"]')),
                                   "are not in languages.all"),
    "task_unknown": (lambda k: k.study(('tasks = ["demo_xnli"]', 'tasks = ["no_such_task_xyz"]')),
                     "'no_such_task_xyz' is not a known task"),
    "task_of_unknown_language": (lambda k: k.study(('tasks = ["demo_xnli"]', 'tasks = ["demo_xnli", "demo_xnli_hi"]')),
                                 "'demo_xnli_hi'"),
    "identify_method_unknown": (lambda k: k.study(("histogram_bins = 64", 'histogram_bins = 64\nmethod = "magic"')),
                                "'magic' is not an identification method"),
    # the study file itself
    "study_unknown_key": (lambda k: k.study(("tokens_per_language", "tokens_per_langauge")),
                          "unknown key [corpus] tokens_per_langauge"),
    "study_unknown_section": (lambda k: k.study(extra="\n[extras]\nx = 1\n"), "unknown key [extras]"),
    "study_invalid_value": (lambda k: k.study(("block_size = 64", 'block_size = "big"')), "[corpus] block_size"),
    "study_missing_section": (lambda k: k.study(('[evaluate]\ntasks = ["demo_xnli"]', "")), "missing [evaluate]"),
    "study_invalid_toml": (lambda k: k.study(("[corpus]", "[corpus")), "is not valid TOML"),
    "study_not_utf8": (_not_utf8_study, "is not UTF-8 text"),
    "study_file_missing": (lambda k: k.tmp / "no-such-study.toml", "does not exist"),
    "criteria_unknown_threshold": (lambda k: k.study(extra="\n[criteria]\nmin_gain_pts = 2.0\n"),
                                   "min_gain_pts is not a threshold"),
    # the protocol file
    "protocol_unknown_key": (lambda k: k.study(('name = "bad"', f'name = "bad"\nprotocol = "{_protocol_extra_key(k)}"')),
                             "unknown key stage.1.needs_gpu"),
    "protocol_invalid_value": (lambda k: k.study(('name = "bad"', f'name = "bad"\nprotocol = "{_protocol_bad_value(k)}"')),
                               "on_no_go"),
    "protocol_unknown_name": (lambda k: k.study(('name = "bad"', 'name = "bad"\nprotocol = "no-such-protocol"')),
                              "unknown protocol 'no-such-protocol'"),
    "protocol_invalid_toml": (lambda k: k.study(('name = "bad"', f'name = "bad"\nprotocol = "{_protocol_broken(k)}"')),
                              "is not valid TOML"),
    # strict values (issue #20): the key is named, the value refused before anything is stored
    "value_nan": (lambda k: k.study(("[identify]", "[identify]\ntop_rate = nan")), "[identify] top_rate: must be a finite"),
    "value_inf": (lambda k: k.study(("[identify]", "[identify]\nfilter_rate = inf")), "[identify] filter_rate"),
    "value_negative_inf": (lambda k: k.study(("[evaluate]", "[intervention]\nscale = -inf\n\n[evaluate]")),
                           "[intervention] scale"),
    "value_bool_for_int": (lambda k: k.study(("tokens_per_language = 1000", "tokens_per_language = true")),
                           "[corpus] tokens_per_language: must be a whole number, not bool"),
    "value_bool_for_float": (lambda k: k.study(("[identify]", "[identify]\ntop_m = false")),
                             "[identify] top_m: must be a number, not bool"),
    "value_number_as_string": (lambda k: k.study(("heldout_tokens = 128", 'heldout_tokens = "128"')),
                               "[corpus] heldout_tokens: must be a whole number, not str"),
    "value_float_for_int": (lambda k: k.study(("block_size = 64", "block_size = 64.0")), "[corpus] block_size"),
    "value_negative": (lambda k: k.study(("seed = 2", "seed = -1")), "[study] seed"),
    "value_huge": (lambda k: k.study(("seed = 2", "seed = 99999999999999")), "[study] seed"),
    "value_huge_batch": (lambda k: k.study(("[evaluate]", "[evaluate]\nbatch_size = 9000000000")),
                         "[evaluate] batch_size"),
    "block_size_beyond_model_positions": (lambda k: k.study(("block_size = 64", "block_size = 4096")),
                                          "longer than the model takes (512 positions"),
    "block_size_beyond_gguf_context": (lambda k: k.study(("block_size = 64", "block_size = 128"),
                                                          model=metadata_only_gguf(k.tmp / "c.gguf", "llama")),
                                       "longer than the model takes (64 positions"),
    "every_language_a_target": (lambda k: k.study(('all = ["en", "fr", "de", "sw"]', 'all = ["fr", "sw"]'),
                                                  ('targets = ["sw"]', 'targets = ["fr", "sw"]')),
                                "no high-resource language is left"),
    "high_resource_empty": (lambda k: k.study(('targets = ["sw"]', 'targets = ["sw"]\nhigh_resource = []')),
                            "allow_no_regression_check"),
    "float16_on_cpu": (lambda k: k.study(('device = "cpu"', 'device = "cpu"\ndtype = "float16"')),
                       'use dtype = "float32" or "bfloat16"'),
    "criteria_nan": (lambda k: k.study(extra="\n[criteria]\nmin_gain_points = nan\n"),
                     "[criteria] min_gain_points must be a number"),
    "criteria_bool_for_number": (lambda k: k.study(extra="\n[criteria]\nmin_neurons_per_target = true\n"),
                                 "[criteria] min_neurons_per_target must be a number"),
    "criteria_string_for_number": (lambda k: k.study(extra='\n[criteria]\nmin_gain_points = "2"\n'),
                                   "[criteria] min_gain_points must be a number"),
    "criteria_number_for_bool": (lambda k: k.study(extra="\n[criteria]\nrequire_beats_control = 1\n"),
                                 "[criteria] require_beats_control must be true or false"),
    "protocol_threshold_nan": (lambda k: k.study(('name = "bad"', f'name = "bad"\nprotocol = "{_protocol_nan(k)}"')),
                               "min_neurons_per_target = nan is not a finite number"),
    "protocol_version_bool": (lambda k: k.study(('name = "bad"', f'name = "bad"\nprotocol = "{_protocol_version_bool(k)}"')),
                              "protocol.version"),
    # messages that help (issue #20)
    "corpus_language_file_is_a_folder": (lambda k: _corpus_entry(k, lambda p: p.mkdir()), "is a folder"),
    "corpus_language_file_unreadable": (lambda k: _corpus_entry(k, lambda p: p.symlink_to("/proc/self/mem")),
                                        "cannot be read"),
    "model_folder_without_weights": (lambda k: _broken_model(k, lambda p: p.unlink()), "has a config.json but no weights"),
    "model_weights_only_pickle": (lambda k: _broken_model(k, _to_pickle_name), "pickle-based weights (pytorch_model.bin)"),
}


def _protocol_nan(k: Kit) -> Path:
    return k.protocol(lambda t: t.replace("min_neurons_per_target = 1", "min_neurons_per_target = nan"))


def _protocol_version_bool(k: Kit) -> Path:
    return k.protocol(lambda t: t.replace("\nversion = 1\n", "\nversion = true\n", 1))


def _corpus_entry(k: Kit, make: Callable[[Path], None]) -> Path:
    c = k.corpus_copy()
    (c / "sw.txt").unlink()
    make(c / "sw.txt")
    return k.study(corpus=c)


def _to_pickle_name(p: Path) -> None:
    """Weights under a pickle name only (the bytes do not matter: they must never be unpickled)."""
    p.rename(p.with_name("pytorch_model.bin"))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated_gguf(k: Kit) -> Path:
    path = metadata_only_gguf(k.tmp / "t.gguf", "llama")
    path.write_bytes(path.read_bytes()[:40])
    return path


def _protocol_extra_key(k: Kit) -> Path:
    return k.protocol(lambda t: t.replace('name = "model"', 'name = "model"\nneeds_gpu = true', 1))


def _protocol_bad_value(k: Kit) -> Path:
    return k.protocol(lambda t: t.replace('gate = { rule = "criteria" }', 'gate = { rule = "criteria", on_no_go = "maybe" }'))


def _protocol_broken(k: Kit) -> Path:
    return k.protocol(lambda t: t.replace("[[stage]]", "[[stage]", 1))


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_corpus_dir: Path) -> dict[str, Any]:
    """A home holding one valid study (id 1), created through `new`."""
    root = tmp_path_factory.mktemp("bad-inputs")
    kit = Kit(root, tiny_llama_dir, tiny_corpus_dir)
    home = root / "home"
    assert main(["new", str(kit.study(name="good")), "--home", str(home)]) == 0
    return {"home": home, "model": tiny_llama_dir, "corpus": tiny_corpus_dir}


def test_the_valid_base_study_is_accepted(lab_home: dict[str, Any], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The control for the matrix: the unbroken study file passes `new` (so each case fails for its break)."""
    kit = Kit(tmp_path, lab_home["model"], lab_home["corpus"])
    code, out, err = cli(capsys, "new", str(kit.study(name="control")), "--home", str(tmp_path / "h"))
    assert (code, out.strip(), err) == (0, "1", "")


@pytest.mark.parametrize("case", sorted(NEW_CASES))
def test_new_refuses(case: str, lab_home: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, expected = NEW_CASES[case]
    kit = Kit(tmp_path, lab_home["model"], lab_home["corpus"])
    study_file = build(kit)
    home = lab_home["home"]
    before = stored(home)
    code, out, err = cli(capsys, "new", str(study_file), "--home", str(home))
    assert_bad_input(code, err, expected)
    assert out == ""
    assert stored(home) == before  # no study row, no stage rows, no files


# ---- commands on an existing home ------------------------------------------------------------------

def _newer_schema(home: Path) -> None:
    con = sqlite3.connect(home / "lab.db")
    with con:
        con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.close()


COMMAND_CASES: dict[str, tuple[list[str], str, bool]] = {
    # name: (argv after the command word, expected text, on a DB of a newer schema?)
    "run_until_unknown_stage": (["run", "1", "--until", "nosuchstage", "--headless"], "--until 'nosuchstage'", False),
    "run_unknown_study": (["run", "nosuchstudy", "--headless"], "no study 'nosuchstudy'", False),
    "export_unknown_format": (["export", "1", "--format", "pdf"], "--format 'pdf' is not an export format", False),
    "export_output_is_a_folder": (["export", "1", "--format", "json", "-o", "."], "is a folder", False),
    "status_unknown_study": (["status", "7"], "no study '7'", False),
    "decide_unfinished_stage": (["decide", "1", "identify", "go", "--rationale", "r", "--by", "me"],
                                "is pending, not done", False),
    "newer_schema_status": (["status", "1"], "newer than this neuron-pilot", True),
    "newer_schema_run": (["run", "1", "--headless"], "newer than this neuron-pilot", True),
    "newer_schema_export": (["export", "1", "--format", "json"], "newer than this neuron-pilot", True),
    "newer_schema_studies": (["studies"], "newer than this neuron-pilot", True),
}


@pytest.mark.parametrize("case", sorted(COMMAND_CASES))
def test_commands_refuse(case: str, lab_home: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    argv, expected, newer = COMMAND_CASES[case]
    home = tmp_path / "home"
    shutil.copytree(lab_home["home"], home)
    if newer:
        _newer_schema(home)
    monkeypatch.chdir(tmp_path)
    before = stored(home)
    code, _, err = cli(capsys, *argv, "--home", str(home))
    assert_bad_input(code, err, expected)
    assert stored(home) == before


def test_new_on_a_newer_schema_db_stores_nothing(lab_home: dict[str, Any], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    shutil.copytree(lab_home["home"], home)
    _newer_schema(home)
    kit = Kit(tmp_path, lab_home["model"], lab_home["corpus"])
    before = stored(home)
    code, _, err = cli(capsys, "new", str(kit.study(name="second")), "--home", str(home))
    assert_bad_input(code, err, f"schema version {SCHEMA_VERSION + 1}", "upgrade neuron-pilot or use another --home")
    assert stored(home) == before


# ---- faults of the home and the store (issue #20): one line, exit 2, nothing written -------------------

def raw_files(path: Path) -> dict[str, str]:
    """sha256 of every file at or under `path`, the DB and its WAL files included ({} when absent)."""
    if not path.exists() and not path.is_symlink():
        return {}
    if not path.is_dir():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "link"}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _settle(home: Path) -> None:
    """Fold the WAL into lab.db so the file alone holds every row (as after a clean shutdown)."""
    con = sqlite3.connect(home / "lab.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()


def _home_is_file(home: Path) -> Path:
    shutil.rmtree(home)
    home.write_text("not a folder\n", encoding="utf-8")
    return home


def _home_under_file(home: Path) -> Path:
    shutil.rmtree(home)
    home.write_text("not a folder\n", encoding="utf-8")
    return home / "inner"


def _home_loop(home: Path) -> Path:
    shutil.rmtree(home)
    a, b = home.parent / "loop-a", home.parent / "loop-b"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


def _db_bytes(data: Callable[[bytes], bytes]) -> Callable[[Path], Path]:
    def damage(home: Path) -> Path:
        _settle(home)
        db = home / "lab.db"
        db.write_bytes(data(db.read_bytes()))
        return home
    return damage


def _foreign_sqlite(home: Path) -> Path:
    shutil.rmtree(home)
    home.mkdir()
    con = sqlite3.connect(home / "lab.db")
    with con:
        con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        con.execute("INSERT INTO notes(text) VALUES ('someone else''s database')")
    con.close()
    return home


def _empty_home(home: Path) -> Path:
    shutil.rmtree(home)
    home.mkdir()
    return home


def _no_home(home: Path) -> Path:
    shutil.rmtree(home)
    return home


NOT_SQLITE = _db_bytes(lambda b: b"these bytes are a note, not a database\n" * 200)
TRUNCATED = _db_bytes(lambda b: b[:5000])
HEADER_ONLY = _db_bytes(lambda b: b[:60])

# name: (damage the copied home → the --home to pass, argv, text the line must hold)
HOME_CASES: dict[str, tuple[Callable[[Path], Path], list[str], str]] = {
    "home_is_a_file_new": (_home_is_file, ["new", "{study}"], "is a file, not a folder"),
    "home_is_a_file_status": (_home_is_file, ["status", "1"], "is a file, not a folder"),
    "home_is_a_file_studies": (_home_is_file, ["studies"], "is a file, not a folder"),
    "home_is_a_file_export": (_home_is_file, ["export", "1"], "is a file, not a folder"),
    "home_under_a_file_new": (_home_under_file, ["new", "{study}"], "which is a file"),
    "home_symlink_loop_new": (_home_loop, ["new", "{study}"], "symlink loop"),
    "home_symlink_loop_studies": (_home_loop, ["studies"], "symlink loop"),
    "db_not_sqlite_new": (NOT_SQLITE, ["new", "{study}"], "is not an SQLite database"),
    "db_not_sqlite_status": (NOT_SQLITE, ["status", "1"], "is not an SQLite database"),
    "db_not_sqlite_studies": (NOT_SQLITE, ["studies"], "is not an SQLite database"),
    "db_not_sqlite_export": (NOT_SQLITE, ["export", "1"], "is not an SQLite database"),
    "db_not_sqlite_run": (NOT_SQLITE, ["run", "1", "--headless"], "is not an SQLite database"),
    "db_truncated_status": (TRUNCATED, ["status", "1"], "is truncated"),
    "db_truncated_new": (TRUNCATED, ["new", "{study}"], "is truncated"),
    "db_header_only_studies": (HEADER_ONLY, ["studies"], "is cut short"),
    "db_foreign_sqlite_studies": (_foreign_sqlite, ["studies"], "holds no neuron-pilot store"),
    "db_foreign_sqlite_decide": (_foreign_sqlite, ["decide", "1", "criteria", "go", "--rationale", "r", "--by", "me"],
                                 "holds no neuron-pilot store"),
    "no_store_status": (_empty_home, ["status", "1"], "no neuron-pilot store in"),
    "no_store_studies": (_no_home, ["studies"], "no neuron-pilot store in"),
    "no_store_export": (_no_home, ["export", "1", "--format", "md"], "no neuron-pilot store in"),
    "no_store_run": (_empty_home, ["run", "1", "--headless"], "no neuron-pilot store in"),
}


@pytest.mark.parametrize("case", sorted(HOME_CASES))
def test_home_and_store_faults(case: str, lab_home: dict[str, Any], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers never create or migrate a store, and no fault of the home writes anything."""
    damage, argv, expected = HOME_CASES[case]
    home = tmp_path / "home"
    shutil.copytree(lab_home["home"], home)
    kit = Kit(tmp_path, lab_home["model"], lab_home["corpus"])
    study = kit.study(name="second")
    target = damage(home)
    monkeypatch.chdir(tmp_path)
    before = raw_files(home), raw_files(target), sorted(p.name for p in tmp_path.iterdir())
    code, out, err = cli(capsys, *[a.replace("{study}", str(study)) for a in argv], "--home", str(target))
    assert_bad_input(code, err, expected)
    assert out == ""
    assert (raw_files(home), raw_files(target), sorted(p.name for p in tmp_path.iterdir())) == before


@pytest.fixture
def read_only(tmp_path: Path) -> Any:
    """Make a folder read-only for real: a read-only bind mount as root (root ignores modes), else chmod."""
    import os
    import subprocess

    done: list[Callable[[], None]] = []

    def make(folder: Path) -> None:
        if os.geteuid() == 0:
            subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
            done.append(lambda: subprocess.run(["umount", "--lazy", str(folder)], check=True))
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        else:
            paths = [folder, *folder.iterdir()] if folder.is_dir() else [folder]
            for p in paths:
                p.chmod(0o555 if p.is_dir() else 0o444)
            done.append(lambda: [p.chmod(0o755 if p.is_dir() else 0o644) for p in paths])

    yield make
    for undo in reversed(done):
        undo()


@pytest.mark.parametrize("argv", [["new", "{study}"], ["decide", "1", "criteria", "go", "--rationale", "r", "--by", "me"],
                                  ["studies"]], ids=["new", "decide", "studies"])
def test_read_only_home(argv: list[str], lab_home: dict[str, Any], tmp_path: Path, read_only: Any,
                        capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    shutil.copytree(lab_home["home"], home)
    _settle(home)
    read_only(home if argv[0] != "decide" else home / "lab.db")  # decide: only the DB file is read-only
    study = Kit(tmp_path, lab_home["model"], lab_home["corpus"]).study(name="second")
    before = raw_files(home)
    code, out, err = cli(capsys, *[a.replace("{study}", str(study)) for a in argv], "--home", str(home))
    assert_bad_input(code, err, "read-only")
    assert raw_files(home) == before


LOCKER = """
import datetime as dt, socket, sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
now = dt.datetime.utcnow()
con.execute("INSERT INTO lease(study_id, holder, pid, host, acquired_at, expires_at) VALUES (1, 'tester', 4242, ?, ?, ?)",
            (socket.gethostname(), now, now + dt.timedelta(hours=1)))
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(60)
"""


def test_locked_store_names_the_holder(lab_home: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab.db locked past the timeout is one line naming who holds it (from the runner lease table)."""
    import subprocess
    import sys

    home = tmp_path / "home"
    shutil.copytree(lab_home["home"], home)
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(home / "lab.db")], stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        monkeypatch.setenv("NEURON_PILOT_DB_TIMEOUT_S", "0.5")
        before = stored(home)
        study = Kit(tmp_path, lab_home["model"], lab_home["corpus"]).study(name="second")
        code, _, err = cli(capsys, "new", str(study), "--home", str(home))
        assert_bad_input(code, err, "is locked", "study 1 is run by tester (pid 4242")
        assert stored(home) == before
    finally:
        locker.kill()
        locker.wait()


def test_full_disk_during_new_leaves_no_partial_schema(lab_home: dict[str, Any], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's own "database or disk is full" while creating lab.db: no lab.db, no home left behind."""
    from lab.core import faults

    home = tmp_path / "fresh-home"
    study = Kit(tmp_path, lab_home["model"], lab_home["corpus"]).study(name="second")
    monkeypatch.setenv(faults.FAULT_ENV, "dbfull:new")
    try:
        code, out, err = cli(capsys, "new", str(study), "--home", str(home))
    finally:
        faults.set_stage(None)
    assert_bad_input(code, err, "no space left", "free disk space")
    assert out == "" and not home.exists()


def test_full_disk_during_export_leaves_no_file(lab_home: dict[str, Any], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.core import faults

    home = tmp_path / "home"
    shutil.copytree(lab_home["home"], home)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = stored(home)
    monkeypatch.setenv(faults.FAULT_ENV, "enospc:export")
    try:
        code, _, err = cli(capsys, "export", "1", "-o", str(out_dir / "summary.json"), "--home", str(home))
    finally:
        faults.set_stage(None)
    assert_bad_input(code, err, "no space left", "free disk space")
    assert list(out_dir.iterdir()) == [] and stored(home) == before


# ---- outputs never overwrite inputs (issue #20) --------------------------------------------------------

def _socket_file(tmp: Path) -> Path:
    import socket

    path = tmp / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path


def _link_to_db(tmp: Path) -> Path:
    link = tmp / "innocent.json"
    link.symlink_to(tmp / "home" / "lab.db")
    return link


# name: (the -o path, from the scratch folder holding home/; text the line must hold)
OUTPUT_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "output_is_the_db": (lambda t: t / "home" / "lab.db", "is the lab's store"),
    "output_is_the_wal": (lambda t: t / "home" / "lab.db-wal", "is the lab's store"),
    "output_is_a_symlink_to_the_db": (_link_to_db, "is the lab's store"),
    "output_via_dotdot_to_the_db": (lambda t: t / "home" / "exports" / ".." / "lab.db", "is the lab's store"),
    "output_in_artifacts": (lambda t: t / "home" / "artifacts" / "study-1" / "summary.json", "inside the lab's artifacts/"),
    "output_is_the_artifacts_folder": (lambda t: t / "home" / "artifacts", "inside the lab's artifacts/"),
    "output_in_logs": (lambda t: t / "home" / "logs" / "x.json", "inside the lab's logs/"),
    "output_is_a_socket": (_socket_file, "not a regular file"),
    "output_under_a_file": (lambda t: _write(t / "plain.txt", b"x") / "summary.json", "is a file, not a folder"),
    "output_is_a_folder": (lambda t: t, "is a folder"),
}


@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_export_never_overwrites_inputs(case: str, lab_home: dict[str, Any], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    make, expected = OUTPUT_CASES[case]
    home = tmp_path / "home"
    shutil.copytree(lab_home["home"], home)
    out = make(tmp_path)
    before = stored(home), raw_files(home), raw_files(tmp_path / "plain.txt")
    code, _, err = cli(capsys, "export", "1", "--format", "json", "-o", str(out), "--home", str(home))
    assert_bad_input(code, err, expected)
    assert (stored(home), raw_files(home), raw_files(tmp_path / "plain.txt")) == before


# ---- usage errors: one line and the usage hint ---------------------------------------------------------

USAGE_CASES: dict[str, tuple[list[str], str]] = {
    "usage_unknown_command": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "usage_missing_argument": (["status"], "the following arguments are required: study"),
    "usage_bad_choice": (["decide", "1", "identify", "maybe", "--rationale", "r", "--by", "me"], "invalid choice: 'maybe'"),
    "usage_not_a_number": (["export", "1", "--full-tokens", "many"], "invalid int value: 'many'"),
    "usage_unknown_option": (["studies", "--colour"], "unrecognized arguments: --colour"),
}


@pytest.mark.parametrize("case", sorted(USAGE_CASES))
def test_usage_errors_are_one_line(case: str, lab_home: dict[str, Any], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    argv, expected = USAGE_CASES[case]
    home = tmp_path / "home"
    shutil.copytree(lab_home["home"], home)
    before = stored(home)
    code, out, err = cli(capsys, *argv, "--home", str(home))
    line = assert_bad_input(code, err, expected)
    assert "--help` for the usage" in line and out == ""
    assert stored(home) == before


# ---- inputs only a stage can see: `run` exits 2, earlier stages untouched ------------------------------

def _run_until(capsys: pytest.CaptureFixture[str], home: Path, sid: str, stage: str) -> tuple[int, str, str]:
    return cli(capsys, "run", sid, "--until", stage, "--headless", "--accept-underpowered", "--home", str(home))


def _stage_refuses(capsys: pytest.CaptureFixture[str], home: Path, sid: str, stage: str, *expected: str) -> str:
    """Run up to `stage` (its predecessors already done) and check it refuses with nothing else changed."""
    before = stored(home, failed=(int(sid), stage))
    code, _, err = _run_until(capsys, home, sid, stage)
    line = assert_bad_input(code, err, f"stage {stage} bad input", *expected)
    assert stored(home, failed=(int(sid), stage)) == before
    from lab.store import StageState, Store

    run = Store(home, create=False).stage_run(int(sid), stage)
    assert run.state == StageState.failed and run.error and run.error in line and run.pid is None
    return line


def _new_then_criteria(capsys: pytest.CaptureFixture[str], home: Path, study_file: Path,
                       until: str = "criteria") -> str:
    code, out, err = cli(capsys, "new", str(study_file), "--home", str(home))
    assert code == 0, err
    sid = out.strip()
    code, _, err = _run_until(capsys, home, sid, until)
    assert code == 0, err
    return sid


def _no_adapter_config(k: Kit) -> Path:
    """A well-formed config of a family transformers knows (Falcon) but neuron-pilot has no adapter for."""
    from transformers import FalconConfig

    m = k.model_copy()
    FalconConfig(vocab_size=400, hidden_size=32, num_hidden_layers=2, num_attention_heads=4).to_json_file(
        m / "config.json")
    return k.study(model=m)


def _inconsistent_config(k: Kit) -> Path:
    """The Llama config.json relabelled as Falcon: its keys do not fit the class model_type names."""
    m = k.model_copy()
    cfg = json.loads((m / "config.json").read_text(encoding="utf-8"))
    (m / "config.json").write_text(json.dumps({**cfg, "model_type": "falcon"}), encoding="utf-8")
    return k.study(model=m)


MODEL_STAGE_CASES: dict[str, tuple[Callable[[Kit], Path], str]] = {
    "architecture_without_adapter": (_no_adapter_config, "'falcon' has no neuron adapter"),
    "config_json_does_not_fit_its_model_type": (_inconsistent_config, "does not fit its model_type"),
    "gguf_architecture_transformers_cannot_read": (lambda k: k.study(model=metadata_only_gguf(k.tmp / "r.gguf", "rwkv6")),
                                                   "rwkv6 is not supported"),
    "weights_of_the_wrong_shape": (lambda k: _broken_model(k, _halve_one_tensor),
                                   "weight model.layers.0.mlp.gate_proj.weight in model.safetensors has shape [32, 32]"),
}


def _halve_one_tensor(p: Path) -> None:
    """The weights of a smaller model under the same config.json: one tensor has half its rows."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(p))
    key = "model.layers.0.mlp.gate_proj.weight"
    tensors[key] = tensors[key][: tensors[key].shape[0] // 2].copy()
    save_file(tensors, str(p), metadata={"format": "pt"})


@pytest.mark.parametrize("case", sorted(MODEL_STAGE_CASES))
def test_model_stage_refuses(case: str, lab_home: dict[str, Any], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    build, expected = MODEL_STAGE_CASES[case]
    kit = Kit(tmp_path, lab_home["model"], lab_home["corpus"])
    home = tmp_path / "home"
    sid = _new_then_criteria(capsys, home, build(kit))
    line = _stage_refuses(capsys, home, sid, "model", expected)
    assert "Traceback" not in line


@pytest.mark.slow
def test_pickle_weights_put_in_place_after_new_are_never_loaded(lab_home: dict[str, Any], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A pickle swapped in after `new`: refused by name with the safe way out, never unpickled."""
    kit = Kit(tmp_path, lab_home["model"], lab_home["corpus"])
    model = kit.model_copy()
    home = tmp_path / "home"
    sid = _new_then_criteria(capsys, home, kit.study(model=model))
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    line = _stage_refuses(capsys, home, sid, "model", "pickle-based weights", "convert them to safetensors")
    assert "weights_only=False" not in line


def test_weights_damaged_after_new_are_refused_by_the_model_stage(lab_home: dict[str, Any], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    kit = Kit(tmp_path, lab_home["model"], lab_home["corpus"])
    model = kit.model_copy()
    home = tmp_path / "home"
    sid = _new_then_criteria(capsys, home, kit.study(model=model))
    truncate(model / "model.safetensors")
    _stage_refuses(capsys, home, sid, "model", "is corrupt or truncated", "re-download")


@pytest.mark.slow
def test_too_small_corpus_is_refused_before_statistics(lab_home: dict[str, Any], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Counting tokens needs the model's tokenizer, so identify checks the budget before its first pass."""
    kit = Kit(tmp_path, lab_home["model"], lab_home["corpus"])
    corpus = kit.corpus_copy()
    (corpus / "sw.txt").write_text("paka analala kitandani\n", encoding="utf-8")
    home = tmp_path / "home"
    sid = _new_then_criteria(capsys, home, kit.study(corpus=corpus), until="model")
    _stage_refuses(capsys, home, sid, "identify", "corpus for 'sw'", "but 1000 are needed",
                   "lower [corpus] tokens_per_language")


@pytest.fixture(scope="module")
def identified(lab_home: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose study 1 has run criteria → model → identify (pilot not stopped: identify's gate is
    lowered to 0 neurons)."""
    root = tmp_path_factory.mktemp("identified")
    kit = Kit(root, lab_home["model"], lab_home["corpus"])
    home = root / "home"
    study = kit.study(extra="\n[criteria]\nmin_neurons_per_target = 0\n", tokens=256)
    assert main(["new", str(study), "--home", str(home)]) == 0
    assert main(["run", "1", "--until", "identify", "--headless", "--accept-underpowered", "--home", str(home)]) == 0
    return home


TAMPER_CASES: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "identify_output_modified": ("neurons.json", lambda p: p.write_bytes(p.read_bytes().replace(b"lape", b"LAPE", 1)),
                                 "was modified after it was recorded (sha256 mismatch)"),
    "identify_output_deleted": ("control.json", lambda p: p.unlink(), "is missing; run its stage again"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(TAMPER_CASES))
def test_tampered_artifact_is_refused_before_use(case: str, identified: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    name, damage, expected = TAMPER_CASES[case]
    home = tmp_path / "home"
    shutil.copytree(identified, home)
    damage(home / "artifacts" / "study-1" / "identify" / name)
    line = _stage_refuses(capsys, home, "1", "reproduce", expected, name)
    assert "restore it or re-run" in line or "run its stage again" in line


def test_the_matrix_covers_every_listed_kind() -> None:
    """Issue #9's thirteen kinds, each with at least one case above (the report counts them)."""
    cases = set(NEW_CASES) | set(COMMAND_CASES) | set(MODEL_STAGE_CASES) | set(TAMPER_CASES) | {
        "weights_damaged_after_new", "too_small_corpus", "new_on_newer_schema"}
    kinds = {"model_path_missing": "missing model path", "hub_id_while_offline": "hub id while offline",
             "architecture_without_adapter": "unsupported architecture",
             "safetensors_truncated": "corrupt or truncated safetensors",
             "gguf_architecture_transformers_cannot_read": "GGUF of an unsupported type",
             "corpus_not_utf8": "non-UTF-8 corpus", "corpus_file_empty": "empty language file",
             "too_small_corpus": "too-small language file", "task_unknown": "unknown task",
             "language_without_corpus_text": "unknown language", "study_unknown_key": "unknown key (study)",
             "protocol_unknown_key": "unknown key (protocol)", "run_until_unknown_stage": "--until unknown stage",
             "newer_schema_run": "DB of a newer schema", "identify_output_modified": "tampered artifact"}
    assert set(kinds) <= cases
    assert len(cases) >= 50


SINGLE_CASES = {"weights_damaged_after_new", "too_small_corpus", "new_on_newer_schema", "read_only_home_new",
                "read_only_home_decide", "read_only_home_studies", "locked_store", "full_disk_new", "full_disk_export",
                "pickle_weights_after_new"}


def all_cases() -> set[str]:
    """Every distinct bad input or fault the matrix runs (docs/reliability.md gives this number)."""
    tables = (NEW_CASES, COMMAND_CASES, MODEL_STAGE_CASES, TAMPER_CASES, HOME_CASES, OUTPUT_CASES, USAGE_CASES)
    names = [name for table in tables for name in table] + sorted(SINGLE_CASES)
    assert len(names) == len(set(names)), "a case name is used twice"
    return set(names)


def test_the_matrix_covers_every_class_of_issue_20() -> None:
    """Each class of issue #20 has several cases; each case above asserts exit 2, exactly one line on
    stderr (`error: what; how`), no traceback, and the store's rows and files unchanged."""
    cases = all_cases()
    classes = {
        "outputs never overwrite inputs": [c for c in OUTPUT_CASES] + ["full_disk_export"],
        "faults of the home and store": [c for c in HOME_CASES] + ["read_only_home_new", "read_only_home_decide",
                                                                   "read_only_home_studies", "locked_store",
                                                                   "full_disk_new", "newer_schema_status"],
        "strict values": [c for c in NEW_CASES if c.startswith(("value_", "criteria_", "protocol_threshold",
                                                                  "protocol_version", "block_size", "float16"))]
        + ["every_language_a_target", "high_resource_empty"],
        "messages that help": ["corpus_language_file_is_a_folder", "corpus_language_file_unreadable",
                               "model_folder_without_weights", "model_weights_only_pickle", "weights_of_the_wrong_shape",
                               "pickle_weights_after_new", *USAGE_CASES],
    }
    for name, members in classes.items():
        assert set(members) <= cases, name
        assert len(members) >= 4, name
    assert len(cases) == 120  # docs/reliability.md: "The matrix covers 120 distinct bad inputs and faults"


def test_float16_that_resolves_to_the_cpu_is_refused_by_the_model_stage() -> None:
    """`new` refuses an explicit cpu + float16; with device "auto" the device is known only where the
    model loads, so the model stage refuses it there in one line (and a GPU keeps float16)."""
    import torch

    from lab.core.errors import BadInput
    from lab.model.loading import pick_dtype

    with pytest.raises(BadInput) as exc:
        pick_dtype("float16", torch.device("cpu"))
    assert "no CUDA GPU is visible" in str(exc.value) and 'use dtype = "float32" or "bfloat16"' in str(exc.value)
    assert pick_dtype("float16", torch.device("cuda")) == torch.float16
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
