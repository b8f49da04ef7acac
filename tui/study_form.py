"""The New-study form's logic: values → study TOML under <home>/studies, checks, creation.

Quick checks run in the UI process (lab.study.studyfile needs no torch); the full validation and the
creation run in a `neuron-pilot new` subprocess, because lab.study.create's registry checks import the
engine (torch), which the UI process must never load.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import tomli_w

from lab.core.errors import BadInput
from lab.study.studyfile import LANG_CODE, load_study_file

METHODS = ("lape", "act_prob_90p", "act_prob_90p_published")
KINDS = ("test_time", "finetune")
VALUES = ("zero", "mean", "p10", "p90", "scale")
FIELDS = ("name", "model", "languages", "targets", "corpus", "tokens", "method", "kind", "value", "tasks", "limit")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# Where a study-file error lands in the form: "[section] key" → field.
SECTION_FIELDS = {("study", "name"): "name", ("model", ""): "model", ("languages", "all"): "languages",
                  ("languages", "targets"): "targets", ("languages", ""): "languages", ("corpus", "path"): "corpus",
                  ("corpus", "tokens_per_language"): "tokens", ("corpus", ""): "corpus",
                  ("identify", ""): "method", ("intervention", "kind"): "kind", ("intervention", ""): "value",
                  ("evaluate", "limit"): "limit", ("evaluate", ""): "tasks"}


@dataclass
class FormValues:
    name: str = ""
    model: str = ""
    languages: str = ""
    targets: str = ""
    corpus: str = ""
    tokens: str = "20000"
    method: str = "lape"
    kind: str = "test_time"
    value: str = "p90"
    tasks: str = ""
    limit: str = ""  # [evaluate] limit: items per task and language; blank = every item


def split_list(text: str) -> list[str]:
    return [part for part in re.split(r"[,\s]+", text.strip()) if part]


def _absolute_if_exists(raw: str) -> str:
    path = Path(raw).expanduser()
    return str(path.resolve()) if raw and path.exists() else raw


def check_values(v: FormValues, existing_names: set[str]) -> dict[str, str]:
    """Field → one-line problem, for everything checkable without reading files."""
    errors: dict[str, str] = {}
    if not v.name.strip():
        errors["name"] = "give the study a name, e.g. swahili-pilot"
    elif not SAFE_NAME.match(v.name.strip()):
        errors["name"] = "use letters, digits, '.', '_' or '-' (it becomes the file name)"
    elif v.name.strip() in existing_names:
        errors["name"] = f"a study named {v.name.strip()!r} exists already; choose another name"
    if not v.model.strip():
        errors["model"] = "a local model folder, a .gguf file or a hub id"
    langs = split_list(v.languages)
    bad = [x for x in langs if not LANG_CODE.match(x)]
    if len(langs) < 2:
        errors["languages"] = "list at least two language codes, e.g. en, fr, sw"
    elif bad:
        errors["languages"] = f"{bad[0]!r} is not a language code like 'sw'"
    targets = split_list(v.targets)
    if not targets:
        errors["targets"] = "name at least one target language, e.g. sw"
    elif langs and [t for t in targets if t not in langs]:
        errors["targets"] = f"{[t for t in targets if t not in langs][0]!r} is not in the languages above; add it there"
    if not v.corpus.strip():
        errors["corpus"] = "a folder with one <lang>.txt (or .jsonl) per language"
    try:
        if int(v.tokens) <= 0:
            raise ValueError
    except ValueError:
        errors["tokens"] = "a whole number of tokens above 0, e.g. 20000"
    if v.method not in METHODS:
        errors["method"] = f"choose one of {', '.join(METHODS)}"
    if v.kind not in KINDS:
        errors["kind"] = f"choose one of {', '.join(KINDS)}"
    if v.value not in VALUES:
        errors["value"] = f"choose one of {', '.join(VALUES)}"
    if not split_list(v.tasks):
        errors["tasks"] = "name at least one lm-eval task, e.g. demo_xnli"
    if v.limit.strip():
        try:
            if int(v.limit) <= 0:
                raise ValueError
        except ValueError:
            errors["limit"] = "a whole number of items above 0 per task and language, or blank for all"
    return errors


def study_document(v: FormValues) -> dict[str, Any]:
    return {
        "study": {"name": v.name.strip(), "protocol": "lsn-staged"},
        "model": {"id": _absolute_if_exists(v.model.strip())},
        "languages": {"all": split_list(v.languages), "targets": split_list(v.targets)},
        "corpus": {"path": _absolute_if_exists(v.corpus.strip()), "tokens_per_language": int(v.tokens)},
        "identify": {"method": v.method},
        "intervention": {"kind": v.kind, "value": v.value},
        "evaluate": {"tasks": split_list(v.tasks), **({"limit": int(v.limit)} if v.limit.strip() else {})},
    }


def study_file_path(home: Path, name: str) -> Path:
    return Path(home) / "studies" / f"{name}.toml"


def write_study_file(home: Path, v: FormValues) -> Path:
    path = study_file_path(home, v.name.strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# written by the neuron-pilot New-study form; edit and run `neuron-pilot new` on it if you like\n"
    path.write_text(header + tomli_w.dumps(study_document(v)), encoding="utf-8")
    return path


def field_for_error(message: str) -> Optional[str]:
    """Which form field a study-file error message is about (None: show it under the form)."""
    m = re.search(r"\[(\w+)\]\s*(\w*)", message)
    if m:
        section, key = m.group(1), m.group(2)
        return SECTION_FIELDS.get((section, key)) or SECTION_FIELDS.get((section, ""))
    if "corpus folder" in message:
        return "corpus"
    if "model" in message:
        return "model"
    return None


def quick_validate(path: Path) -> None:
    """The file-system checks of lab.study.studyfile (paths, corpus languages); raises BadInput."""
    load_study_file(path)


@dataclass
class CreateResult:
    study_id: Optional[int]
    error: Optional[str]


def create_with_cli(home: Path, path: Path, timeout_s: float = 300) -> CreateResult:
    """`neuron-pilot new FILE --home HOME` in a subprocess: full validation, then the study row."""
    cmd = [sys.executable, "-m", "lab.cli", "new", str(path), "--home", str(home)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout_s,
                             env={**os.environ})
    except subprocess.TimeoutExpired:
        return CreateResult(None, f"`neuron-pilot new` took longer than {timeout_s:.0f} s; try it in a shell")
    if res.returncode == 0:
        last = (res.stdout.strip().splitlines() or [""])[-1]
        if last.isdigit():
            return CreateResult(int(last), None)
        return CreateResult(None, f"`neuron-pilot new` printed no study id: {last!r}")
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    message = (errors[-1] if errors else (lines[-1] if lines else f"exit code {res.returncode}"))
    return CreateResult(None, message.removeprefix("error:").strip())


def validate_and_create(home: Path, v: FormValues, existing_names: set[str]) -> tuple[Optional[int], dict[str, str]]:
    """The whole submit path, for a worker thread: (study id, {}) or (None, field → message)."""
    errors = check_values(v, existing_names)
    if errors:
        return None, errors
    path = write_study_file(home, v)
    try:
        quick_validate(path)
    except BadInput as exc:
        return None, {field_for_error(str(exc)) or "form": str(exc)}
    result = create_with_cli(home, path)
    if result.error:
        return None, {field_for_error(result.error) or "form": result.error}
    return result.study_id, {}
