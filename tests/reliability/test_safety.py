"""Safe loading (issue #9): no pickle anywhere in the shipped code, trust_remote_code only from the
stored study (and shown wherever the study is), artifact paths that cannot leave the lab home, and
hub tokens that never reach the DB, the logs, the artifacts or any export."""

from __future__ import annotations

import ast
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from lab.core.errors import BadInput
from lab.core.paths import PROJECT_ROOT, Home

SCANNED = ("lab", "tui", "protocols", "examples")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


# ---- the code scan --------------------------------------------------------------------------------

def _is_true(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def unsafe_uses(source: str, where: str = "<code>") -> list[str]:
    """Every pickle-capable import or call, torch.load without weights_only=True, allow_pickle=True,
    and a literal trust_remote_code=True (keyword or dict entry) in `source`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{line} import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"{line} from {node.module} import")
        elif isinstance(node, (ast.Name, ast.Attribute)):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if "pickle" in name.lower() or name == "dill":
                found.append(f"{line} uses {name}")
        elif isinstance(node, ast.Constant) and node.value in UNSAFE_MODULES:
            found.append(f"{line} names module {node.value!r}")  # __import__("pickle"), import_module(...)
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == "trust_remote_code" and _is_true(v):
                    found.append(f"{line} {{'trust_remote_code': True}}")
        if isinstance(node, ast.Call):
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            if _dotted(node.func).endswith("torch.load") and not _is_true(kw.get("weights_only", ast.Constant(None))):
                found.append(f"{line} torch.load without weights_only=True")
            if _is_true(kw.get("allow_pickle", ast.Constant(None))):
                found.append(f"{line} allow_pickle=True")
            if _is_true(kw.get("trust_remote_code", ast.Constant(None))):
                found.append(f"{line} trust_remote_code=True")
    return found


def shipped_sources() -> Iterator[Path]:
    for folder in SCANNED:
        yield from sorted((PROJECT_ROOT / folder).rglob("*.py"))


def test_the_scan_catches_each_unsafe_form() -> None:
    """The scanner below would fail the package: each form is caught, the safe forms are not."""
    unsafe = {
        "import pickle": "import pickle",
        "from dill import loads": "from dill import",
        "import joblib as jl": "import joblib",
        "__import__('pickle')": "names module 'pickle'",
        "import pandas as pd\npd.read_pickle('x')": "uses read_pickle",
        "import torch\ntorch.load('x')": "torch.load without weights_only=True",
        "import torch\ntorch.load('x', weights_only=False)": "torch.load without weights_only=True",
        "import numpy as np\nnp.load('x', allow_pickle=True)": "allow_pickle=True",
        "from_pretrained('m', trust_remote_code=True)": "trust_remote_code=True",
        "kw = {'trust_remote_code': True}": "{'trust_remote_code': True}",
    }
    for code, expected in unsafe.items():
        hits = unsafe_uses(code)
        assert len(hits) >= 1 and any(expected in h for h in hits), (code, hits)
    safe = ("import torch\ntorch.load('x', weights_only=True, map_location='cpu')\n"
            "from_pretrained('m', trust_remote_code=cfg['trust_remote_code'])\n"
            "# pickle is never used\n\"\"\"no pickle here\"\"\"\nnp.load('x')\n")
    assert unsafe_uses(safe) == []


def test_no_pickle_or_unsafe_loading_in_the_shipped_code() -> None:
    sources = list(shipped_sources())
    assert len(sources) > 40 and any(p.name == "loading.py" for p in sources)
    hits = [h for p in sources for h in unsafe_uses(p.read_text(encoding="utf-8"), str(p.relative_to(PROJECT_ROOT)))]
    assert hits == []


def test_reports_and_provenance_never_read_the_environment() -> None:
    """Provenance names what it records (python, packages, git, hardware); no report module touches
    os.environ, so no variable — a token least of all — can be copied into an export wholesale."""
    files = [PROJECT_ROOT / "lab" / "core" / "provenance.py", PROJECT_ROOT / "lab" / "core" / "events.py",
             *sorted((PROJECT_ROOT / "lab" / "report").glob("*.py")), *sorted((PROJECT_ROOT / "lab" / "store").glob("*.py"))]
    hits = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")) or \
                    (isinstance(node, ast.Name) and node.id in ("environ", "getenv")):
                hits.append(f"{path.name}:{node.lineno}")
    assert hits == []


# ---- artifact paths stay inside the home ---------------------------------------------------------------

def test_home_inside_refuses_paths_that_leave_the_home(tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    ok = home.artifacts / "study-1" / "identify" / "neurons.json"
    assert home.inside(Path("artifacts/study-1/identify/neurons.json")) == ok
    assert home.inside(Path("artifacts/study-1/../study-1/identify/neurons.json")) == ok  # stays inside: fine
    (tmp_path / "outside").mkdir()
    (home.artifacts / "link").symlink_to(tmp_path / "outside")
    for bad in ("../outside/x.json", "artifacts/../../outside/x.json", str(tmp_path / "outside" / "x.json"),
                "/etc/passwd", "artifacts/link/x.json"):
        with pytest.raises(BadInput, match="escapes the lab home"):
            home.inside(Path(bad))


# ---- one full tiny run with tokens in the environment -------------------------------------------------

SENTINEL = f"hf_SAFETYSENTINEL{uuid.uuid4().hex}"
TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HF_API_TOKEN")
EXPORTS = ("json", "md", "html", "csv")


def _full_study(path: Path, model: Path, corpus: Path) -> Path:
    """Two languages, small budgets and every gate opened by [criteria], so the run reaches decide."""
    path.write_text(f"""
[study]
name = "safety"
seed = 4

[model]
id = "{model}"
device = "cpu"
trust_remote_code = true

[languages]
all = ["en", "sw"]
targets = ["sw"]

[corpus]
path = "{corpus}"
tokens_per_language = 256
block_size = 64
heldout_tokens = 128

[identify]
histogram_bins = 64

[generate]
n_prompts = 1
max_new_tokens = 4
samples = 0

[evaluate]
tasks = ["demo_xnli"]
limit = 2
bootstrap = 100

[criteria]
min_neurons_per_target = 0
min_median_stability = 0.0
min_ppl_increase_over_control = -1000.0
min_gain_points = -1000.0
require_ci_above_zero = false
require_beats_control = false
max_regression_points = 1000.0
""", encoding="utf-8")
    return path


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **{v: SENTINEL for v in TOKEN_VARS}}
    env.pop("NEURON_PILOT_TEST_PAUSE_STAGE", None)
    return subprocess.run([sys.executable, "-m", "lab.cli", *args, "--home", str(home)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_corpus_dir: Path) -> dict[str, Any]:
    """`new`, `run` (every stage) and every export, all with hub tokens set to a unique sentinel."""
    root = tmp_path_factory.mktemp("safety")
    home = root / "home"
    outputs = [_cli(home, "new", str(_full_study(root / "s.toml", tiny_llama_dir, tiny_corpus_dir)))]
    assert outputs[0].returncode == 0, outputs[0].stderr
    outputs.append(_cli(home, "run", "1", "--headless"))
    assert outputs[-1].returncode == 0 and "all stages done" in outputs[-1].stdout, outputs[-1].stderr[-2000:]
    exports = {}
    for fmt in EXPORTS:
        outputs.append(_cli(home, "export", "1", "--format", fmt))
        assert outputs[-1].returncode == 0, outputs[-1].stderr
        exports[fmt] = Path(outputs[-1].stdout.strip())
    outputs.append(_cli(home, "status", "1", "--json"))
    outputs.append(_cli(home, "status", "1"))
    return {"home": home, "exports": exports, "outputs": outputs}


def sentinel_hits(home: Path, outputs: list[subprocess.CompletedProcess[str]]) -> list[str]:
    """Where the sentinel appears: any file under the home (DB and its WAL as bytes, logs, artifacts,
    exports), any text column of any table, any command's stdout or stderr."""
    needle = SENTINEL.encode()
    hits = [str(p.relative_to(home)) for p in sorted(home.rglob("*")) if p.is_file() and needle in p.read_bytes()]
    con = sqlite3.connect(f"file:{home / 'lab.db'}?mode=ro", uri=True)
    try:
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            for row in con.execute(f'SELECT * FROM "{table}"'):
                hits += [f"db:{table}" for v in row if isinstance(v, (str, bytes)) and
                         (needle if isinstance(v, bytes) else SENTINEL) in v]
    finally:
        con.close()
    hits += [f"output of {' '.join(o.args[3:5])}" for o in outputs if SENTINEL in o.stdout + o.stderr]
    return hits


@pytest.mark.slow
def test_tokens_never_land_in_the_db_logs_artifacts_or_exports(full_run: dict[str, Any], tmp_path: Path) -> None:
    home = full_run["home"]
    files = {p.relative_to(home).parts[0] for p in home.rglob("*") if p.is_file()}
    assert {"lab.db", "artifacts", "logs", "exports"} <= files
    assert set(full_run["exports"]) == set(EXPORTS) and all(p.is_file() for p in full_run["exports"].values())
    assert sentinel_hits(home, full_run["outputs"]) == []
    # the search would find it: plant the sentinel in a copy of a log and of the DB
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    log = next((copy / "logs").rglob("*.jsonl"))
    log.write_text(log.read_text(encoding="utf-8") + SENTINEL + "\n", encoding="utf-8")
    con = sqlite3.connect(copy / "lab.db")
    with con:
        con.execute("UPDATE logline SET message=? WHERE id=(SELECT min(id) FROM logline)", (SENTINEL,))
    con.close()
    planted = sentinel_hits(copy, [])
    assert str(log.relative_to(copy)) in planted and "db:logline" in planted


@pytest.mark.slow
def test_trust_remote_code_comes_from_the_study_and_is_shown(full_run: dict[str, Any]) -> None:
    """The study opted in: the model stage passed that value to transformers (its provenance records
    what load_model passed), and status, the JSON export and the documents say so."""
    home, exports = full_run["home"], full_run["exports"]
    model_json = json.loads((home / "artifacts" / "study-1" / "model" / "model.json").read_text(encoding="utf-8"))
    assert model_json["trust_remote_code"] is True
    status_json, status_text = full_run["outputs"][-2], full_run["outputs"][-1]
    assert json.loads(status_json.stdout)["study"]["trust_remote_code"] is True
    assert "trust_remote_code: ON" in status_text.stdout
    assert json.loads(exports["json"].read_text(encoding="utf-8"))["study"]["trust_remote_code"] is True
    for fmt in ("md", "html"):
        assert "ON — the study ran the model's own code" in exports[fmt].read_text(encoding="utf-8"), fmt


def test_trust_remote_code_is_off_unless_the_study_says_so(tmp_path: Path, tiny_llama_dir: Path,
                                                           tiny_corpus_dir: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import write_study_toml

    from lab.cli import main

    home = tmp_path / "home"
    assert main(["new", str(write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir)),
                 "--home", str(home)]) == 0
    capsys.readouterr()
    assert main(["status", "1", "--json", "--home", str(home)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["study"]["trust_remote_code"] is False
    assert main(["status", "1", "--home", str(home)]) == 0
    assert "trust_remote_code" not in capsys.readouterr().out


@pytest.mark.slow
def test_an_artifact_row_pointing_outside_the_home_is_never_read(full_run: dict[str, Any], tmp_path: Path) -> None:
    """A DB edited so an artifact's path leads out of the home — with the outside file's true sha256 —
    is refused by the stages, flagged (not used) by the reports and skipped by the TUI."""
    from rich.console import Console

    from lab.core.artifacts import sha256_file
    from lab.stages.context import StageContext
    from lab.store import Store
    from protocols import load_protocol
    from tui.render.metrics import artifact_renderables

    home = tmp_path / "home"
    shutil.copytree(full_run["home"], home)
    outside = tmp_path / "outside" / "ppxc.json"
    outside.parent.mkdir()
    shutil.copy(home / "artifacts" / "study-1" / "reproduce" / "ppxc.json", outside)
    outside.write_text(json.dumps({**json.loads(outside.read_text(encoding="utf-8")), "note": "OUTSIDE-MARK"}),
                       encoding="utf-8")
    con = sqlite3.connect(home / "lab.db")
    with con:
        con.execute("UPDATE artifact SET path=?, sha256=?, bytes=? WHERE stage='reproduce' AND name='ppxc.json'",
                    ("../outside/ppxc.json", sha256_file(outside), outside.stat().st_size))
    con.close()
    store = Store(home, create=False)
    study = store.study(1)
    protocol = load_protocol(study.protocol, home)
    ctx = StageContext(store, study, protocol, protocol.get("decide"), out=None)
    with pytest.raises(BadInput, match="escapes the lab home"):
        ctx.read_json("reproduce", "ppxc.json")
    from lab.report import write_export

    data = json.loads(write_export(store, study, "json", tmp_path / "s.json").read_text(encoding="utf-8"))
    row = next(a for a in data["artifacts"] if a["name"] == "ppxc.json")
    assert row["check"] != "ok"
    for fmt in ("json", "md", "html"):
        assert "OUTSIDE-MARK" not in write_export(store, study, fmt, tmp_path / f"s2.{fmt}").read_text(encoding="utf-8")
    console = Console(record=True, width=200, file=io.StringIO())
    for renderable in artifact_renderables(store, 1, "reproduce"):
        console.print(renderable)
    shown = console.export_text()
    assert "ppxc.json" in shown and "OUTSIDE-MARK" not in shown  # listed, never opened


# ---- outputs, names and pipes (issue #20) -------------------------------------------------------------

@pytest.fixture(scope="module")
def two_studies(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_corpus_dir: Path) -> Path:
    """A home with two studies whose names and decision carry terminal control characters."""
    from lab.cli import main
    from tests.helpers import write_study_toml

    root = tmp_path_factory.mktemp("names")
    home = root / "home"
    for i, name in enumerate(["clear\\u001b[2Jscreen", "bell\\u0007and\\u202ebidi"]):
        study = write_study_toml(root / f"s{i}.toml", tiny_llama_dir, tiny_corpus_dir, name=f"n{i}")
        study.write_text(study.read_text(encoding="utf-8").replace(f'name = "n{i}"', f'name = "{name}"'),
                         encoding="utf-8")
        assert main(["new", str(study), "--home", str(home)]) == 0
    from lab.store import Store

    Store(home, create=False).add_decision(1, "criteria", "go", "fine\x1b]0;pwned\x07", "ev\x1bil")
    return home


CONTROL = ("\x1b", "\x07", "\u202e")


def test_names_are_printed_with_control_characters_escaped(two_studies: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from lab.cli import main

    for argv in (["studies"], ["status", "1"], ["status", "2"]):
        capsys.readouterr()
        assert main([*argv, "--home", str(two_studies)]) == 0
        out = capsys.readouterr().out
        assert not any(c in out for c in CONTROL), (argv, out)
    assert main(["studies", "--home", str(two_studies)]) == 0
    out = capsys.readouterr().out
    assert "clear\\x1b[2Jscreen" in out and "bell\\x07and\\u202ebidi" in out
    assert main(["status", "1", "--home", str(two_studies)]) == 0
    assert "by ev\\x1bil" in capsys.readouterr().out


def test_markdown_and_csv_exports_escape_control_characters(two_studies: Path, tmp_path: Path) -> None:
    from lab.cli import main

    md, csv = tmp_path / "one.md", tmp_path / "both.csv"
    assert main(["export", "1", "--format", "md", "-o", str(md), "--home", str(two_studies)]) == 0
    assert main(["export", "--compare", "1", "2", "--format", "csv", "-o", str(csv), "--home", str(two_studies)]) == 0
    for path in (md, csv):
        text = path.read_text(encoding="utf-8")
        assert not any(c in text for c in CONTROL), path
    assert "clear\\\\x1b\\[2Jscreen" in md.read_text(encoding="utf-8")  # escaped, then made inert for Markdown
    assert "clear\\x1b[2Jscreen" in csv.read_text(encoding="utf-8")


def test_escape_controls_keeps_ordinary_text() -> None:
    from lab.core.text import escape_controls

    assert escape_controls("Kiswahili — اردو, हिन्दी") == "Kiswahili — اردو, हिन्दी"
    assert escape_controls("a\tb\nc\x00\x7f\x85\u200b") == "a\\x09b\\x0ac\\x00\\x7f\\x85\\u200b"
    assert escape_controls(None) == ""


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_exports_get_the_users_umask_and_keep_an_existing_files_mode(mask: int, two_studies: Path,
                                                                     tmp_path: Path) -> None:
    from lab.cli import main

    out = tmp_path / "summary.json"
    old = os.umask(mask)
    try:
        assert main(["export", "1", "-o", str(out), "--home", str(two_studies)]) == 0
        assert out.stat().st_mode & 0o777 == 0o666 & ~mask
        out.chmod(0o640)
        assert main(["export", "1", "-o", str(out), "--home", str(two_studies)]) == 0
        assert out.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_a_character_device_is_written_to_never_replaced(two_studies: Path, tmp_path: Path) -> None:
    import stat

    from lab.cli import main

    before = os.stat("/dev/null")
    assert main(["export", "1", "-o", "/dev/null", "--home", str(two_studies)]) == 0
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert not list(Path("/dev").glob(".null.*"))  # no temp file beside it


def test_export_to_a_pipe_streams_into_it(two_studies: Path) -> None:
    """`export -o /dev/stdout | jq`: the pipe is written to directly (the JSON arrives whole)."""
    res = subprocess.run([sys.executable, "-m", "lab.cli", "export", "1", "-o", "/dev/stdout", "--home",
                          str(two_studies)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    body = res.stdout[: res.stdout.rindex("}") + 1]
    assert json.loads(body)["study"]["id"] == 1


@pytest.mark.parametrize("argv", [["status", "1"], ["studies", "--json"], ["export", "1", "-o", "/dev/stdout"]])
def test_a_closed_stdout_pipe_ends_quietly(argv: list[str], two_studies: Path) -> None:
    """`neuron-pilot status 1 | head -1`: the reader is gone before we write; no traceback, no message."""
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli", *argv, "--home", str(two_studies)], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away at once, as `head` does after its line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) in (0, 141) and err == ""
