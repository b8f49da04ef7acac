"""The study file (TOML): schema, validation with one-line errors, and path resolution.

Keys are DESIGN.md's contract; additions are documented in README.md. Unknown keys are errors.
Relative paths resolve against the current directory, then the study file's folder, then the
project root (so the shipped examples work from anywhere). Resolved paths are stored absolute.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from lab.core.errors import BadInput
from lab.core.paths import PROJECT_ROOT
from lab.study.compute_section import ComputeSection
from lab.study.model_section import ModelSection
from lab.study.section import Section as _Section

LANG_CODE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class StudySection(_Section):
    name: str = Field(min_length=1, max_length=200)
    protocol: str = "lsn-staged"
    seed: int = Field(default=0, ge=0, le=2**32 - 1)  # numpy and torch take 32-bit seeds
    description: str = ""
    decide: Literal["person", "rules"] = "person"  # who decides gates while a detached runner runs unwatched


class LanguagesSection(_Section):
    all: list[str] = Field(min_length=2)
    targets: list[str] = Field(min_length=1)
    high_resource: Optional[list[str]] = None  # defaults to all − targets
    allow_no_regression_check: bool = False  # every language a target: say so to run without the check

    @field_validator("all", "targets", "high_resource")
    @classmethod
    def _codes(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        if v is None:
            return v
        for code in v:
            if not LANG_CODE.match(code):
                raise ValueError(f"{code!r} is not a language code like 'sw' or 'ur'")
        if len(set(v)) != len(v):
            raise ValueError("languages are listed twice")
        return v

    @model_validator(mode="after")
    def _subsets(self) -> "LanguagesSection":
        missing = [t for t in self.targets if t not in self.all]
        if missing:
            raise ValueError(f"targets {missing} are not in languages.all; add them to all")
        if self.high_resource is not None:
            bad = [t for t in self.high_resource if t not in self.all or t in self.targets]
            if bad:
                raise ValueError(f"high_resource {bad} must be in all and not in targets")
        if not self.regression_languages and not self.allow_no_regression_check:
            raise ValueError("no high-resource language is left to check regressions (every language is a "
                             "target); add a non-target language to all, or set allow_no_regression_check = true")
        return self

    @property
    def regression_languages(self) -> list[str]:
        return list(self.high_resource) if self.high_resource is not None else [x for x in self.all if x not in self.targets]


class CorpusSection(_Section):
    path: str
    tokens_per_language: int = Field(default=20000, gt=0, le=10**12)
    block_size: int = Field(default=128, ge=8, le=8192)
    heldout: Optional[str] = None  # folder of held-out <lang>.txt; default <path>/heldout
    heldout_tokens: int = Field(default=4096, gt=0, le=10**12)


class IdentifySection(_Section):
    method: str = "lape"
    top_rate: float = Field(default=0.01, gt=0, le=1)
    filter_rate: float = Field(default=0.95, ge=0, lt=1)
    activation_bar_ratio: float = Field(default=0.95, ge=0, lt=1)
    top_m: float = Field(default=0.00125, gt=0, le=1)  # act_prob_90p: share of L·d_ff per language
    batch_size: int = Field(default=8, ge=1, le=65536)
    checkpoint_every: int = Field(default=16, ge=1, le=10**9)  # blocks between checkpoints
    histogram_bins: int = Field(default=2048, ge=16, le=65536)
    # units the statistics pass is split into (each a disjoint part of every language's blocks), merged
    # exactly; 1: one unit (docs/identify.md, "Sharded identification")
    shards: int = Field(default=1, ge=1, le=4096)


class InterventionSection(_Section):
    kind: Literal["test_time", "finetune"] = "test_time"
    value: Literal["zero", "mean", "p10", "p90", "scale"] = "p90"
    scale: float = Field(default=2.0, ge=-1000, le=1000)
    # finetune
    steps: int = Field(default=60, ge=1, le=10**8)
    learning_rate: float = Field(default=1e-3, gt=0, le=10)
    weight_decay: float = Field(default=0.01, ge=0, le=10)
    lora_r: int = Field(default=8, ge=1, le=65536)
    neurons_from: Literal["target", "english+target"] = "target"
    checkpoint_every: int = Field(default=20, ge=1, le=10**9)


class EvaluateSection(_Section):
    tasks: list[str] = Field(min_length=1)
    limit: Optional[int] = Field(default=None, ge=1, le=10**9)
    batch_size: int = Field(default=8, ge=1, le=65536)
    bootstrap: int = Field(default=2000, ge=100, le=10**6)
    data_dir: Optional[str] = None  # local copies of built-in task data (see README)
    chunk_items: int = Field(default=100, ge=1, le=10**6)  # documents per lm-eval call and checkpoint


class GenerateSection(_Section):
    """The generation probe: prompts per language, decoding settings (docs/generation.md)."""

    prompts: Optional[str] = None  # folder of <lang>.txt, one prompt per line; default examples/prompts
    n_prompts: Optional[int] = Field(default=None, ge=1)  # the first N prompts of each language; default all
    max_new_tokens: int = Field(default=24, ge=1, le=1024)
    samples: int = Field(default=1, ge=0, le=32)  # seeded sampled continuations per prompt
    temperature: float = Field(default=0.8, gt=0, le=10)
    top_p: float = Field(default=0.95, gt=0, le=1)


class CriteriaSection(_Section):
    """Overrides of the protocol's gate thresholds, by gate key (e.g. min_gain_points = 2.0)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class StudyFile(_Section):
    study: StudySection
    model: ModelSection
    languages: LanguagesSection
    corpus: CorpusSection
    identify: IdentifySection = IdentifySection()
    intervention: InterventionSection = InterventionSection()
    evaluate: EvaluateSection
    generate: GenerateSection = GenerateSection()
    criteria: CriteriaSection = CriteriaSection()
    compute: ComputeSection = ComputeSection()

    @model_validator(mode="after")
    def _shards_fit(self) -> "StudyFile":
        check_shards_fit(self.identify.shards, self.corpus.tokens_per_language, self.corpus.block_size,
                         self.identify.method)
        return self

    def normalised(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def check_shards_fit(shards: int, tokens: int, block_size: int, method: str) -> None:
    """Every shard needs at least one block of every language (a corpus of `tokens` tokens per language has
    at least ⌈tokens / block_size⌉ blocks; the stage checks the exact count again), and
    act_prob_90p_published does not merge."""
    if shards <= 1:
        return
    blocks = -(-tokens // block_size)
    if shards > blocks:
        raise ValueError(f"[identify] shards = {shards} is more than the {blocks} blocks of [corpus] "
                         f"tokens_per_language = {tokens} (block_size {block_size}); use at most {blocks} shards")
    if method == "act_prob_90p_published":
        raise ValueError("[identify] shards > 1 cannot run act_prob_90p_published (its score sample counts tokens "
                         "above a threshold from the threshold sample, which does not merge); use shards = 1 or "
                         "another method")


_STRICT_TYPES = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
                 "string_type": "text in quotes", "list_type": "a list"}


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not isinstance(p, int))
    section, _, key = loc.partition(".")
    where = f"[{section}] {key}" if key else f"[{section}]" if section else "the file"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {where}; remove it or fix its spelling (see README.md, 'Study file')"
    if first["type"] == "missing":
        return f"{source}: missing {where}; add it (see examples/studies/demo.toml)"
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] in _STRICT_TYPES:
        msg = f"must be {_STRICT_TYPES[first['type']]}, not {type(first['input']).__name__} {first['input']!r}"
    elif first["type"] == "finite_number":
        msg = f"must be a finite number, not {first['input']!r}"
    fix = "" if "; " in msg else "; fix the value (see README.md, 'Study file')"
    return f"{source}: {where}: {msg}{fix}"


def parse_study(text: str, source: str = "study file") -> StudyFile:
    """Parse and validate TOML text (no file-system checks)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{source} is not valid TOML: {exc}; fix the syntax") from None
    try:
        return StudyFile.model_validate(data)
    except ValidationError as exc:
        raise BadInput(_format_error(exc, source)) from None


def resolve_path(raw: str, study_dir: Optional[Path]) -> Optional[Path]:
    """A relative path: CWD, then the study file's folder, then the project root. None if not found."""
    p = Path(raw).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    bases = [Path.cwd()] + ([study_dir] if study_dir else []) + [PROJECT_ROOT]
    for base in bases:
        cand = (base / p).resolve()
        if cand.exists():
            return cand
    return None


def load_study_file(path: str | Path) -> tuple[StudyFile, dict[str, Any], str]:
    """Read, validate and resolve a study file: returns (parsed, normalised config, source text).

    Checks that need only the file system happen here, before anything is stored or computed.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"study file {path} does not exist; pass the path of a .toml study file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is fine
    except UnicodeDecodeError:
        raise BadInput(f"study file {path} is not UTF-8 text; save it as UTF-8") from None
    parsed = parse_study(text, source=str(path))
    cfg = parsed.normalised()
    study_dir = path.resolve().parent
    resolved: dict[str, Any] = {"study_file": str(path.resolve())}

    # model: a local folder or file, or a hub id
    model_id = parsed.model.id
    local = resolve_path(model_id, study_dir)
    if local is not None:
        cfg["model"]["id"] = str(local)
        resolved["model_source"] = "gguf" if local.suffix == ".gguf" or parsed.model.gguf_file else "local"
    elif model_id.endswith(".gguf") or model_id.startswith((".", "/", "~")) or not HUB_ID.match(model_id):
        raise BadInput(f"{path}: [model] id {model_id!r} is not an existing file or folder; fix the path "
                       f"(relative paths resolve against the current directory or the study file's folder)")
    else:
        resolved["model_source"] = "hub"
    for key in ("device_map", "max_memory", "offload_folder"):  # absent unless set: older configs stay as they were
        if cfg["model"].get(key) is None:
            cfg["model"].pop(key, None)
    if parsed.model.offload_folder is not None:  # made at load if missing: an existing one is found like any path
        found = resolve_path(parsed.model.offload_folder, study_dir)
        folder = found if found is not None else Path(parsed.model.offload_folder).expanduser().resolve()
        if folder.exists() and not folder.is_dir():
            raise BadInput(f"{path}: [model] offload_folder {str(folder)!r} is a file; name a folder")
        cfg["model"]["offload_folder"] = str(folder)

    # corpus folder and its languages
    corpus = resolve_path(parsed.corpus.path, study_dir)
    if corpus is None or not corpus.is_dir():
        if parsed.corpus.path.startswith("hf:"):
            resolved["corpus_source"] = "hub"
        else:
            raise BadInput(f"{path}: [corpus] path {parsed.corpus.path!r} is not a folder; point it at a folder "
                           f"with one <lang>.txt or <lang>.jsonl per language")
    if corpus is not None and corpus.is_dir():
        cfg["corpus"]["path"] = str(corpus)
        resolved["corpus_source"] = "local"
        for lang in parsed.languages.all:
            for name in (f"{lang}.txt", f"{lang}.jsonl"):
                if (corpus / name).exists() and not (corpus / name).is_file():
                    raise BadInput(f"{path}: corpus entry {corpus / name} is a folder (or not a regular file), not "
                                   f"a text file; remove it and write {name} there, one document per line")
        missing = [lang for lang in parsed.languages.all
                   if not (corpus / f"{lang}.txt").is_file() and not (corpus / f"{lang}.jsonl").is_file()]
        if missing:
            raise BadInput(f"{path}: corpus folder {corpus} has no text for {', '.join(missing)}; add "
                           f"{missing[0]}.txt (or .jsonl) or remove the language from [languages] all")
        heldout_raw = parsed.corpus.heldout
        heldout = resolve_path(heldout_raw, study_dir) if heldout_raw else corpus / "heldout"
        if heldout is not None and heldout.is_dir():
            cfg["corpus"]["heldout"] = str(heldout)
        elif heldout_raw:
            raise BadInput(f"{path}: [corpus] heldout {heldout_raw!r} is not a folder; fix the path or remove the key")
        else:
            cfg["corpus"]["heldout"] = None

    if parsed.evaluate.data_dir:
        data_dir = resolve_path(parsed.evaluate.data_dir, study_dir)
        if data_dir is None:
            raise BadInput(f"{path}: [evaluate] data_dir {parsed.evaluate.data_dir!r} does not exist; fix the path")
        cfg["evaluate"]["data_dir"] = str(data_dir)
    cfg["languages"]["high_resource"] = parsed.languages.regression_languages
    if parsed.generate.prompts:
        cfg["generate"]["prompts"] = str(_prompt_folder(path, parsed, study_dir))
    cfg["resolved"] = resolved
    return parsed, cfg, text


def _prompt_folder(path: Path, parsed: StudyFile, study_dir: Path) -> Path:
    """[generate] prompts: a folder with a non-empty <lang>.txt for every evaluated language."""
    raw = str(parsed.generate.prompts)
    folder = resolve_path(raw, study_dir)
    if folder is None or not folder.is_dir():
        raise BadInput(f"{path}: [generate] prompts {raw!r} is not a folder; point it at a folder with one "
                       f"<lang>.txt (one prompt per line) per language, or remove the key for the demo prompts")
    evaluated = list(parsed.languages.targets) + [x for x in parsed.languages.regression_languages
                                                  if x not in parsed.languages.targets]
    for lang in evaluated:
        file = folder / f"{lang}.txt"
        if not file.is_file():
            raise BadInput(f"{path}: [generate] prompts folder {folder} has no {lang}.txt; add one prompt per "
                           f"line for {lang}")
        try:
            has_line = any(line.strip() for line in file.read_text(encoding="utf-8").splitlines())
        except UnicodeDecodeError:
            raise BadInput(f"{path}: prompt file {file} is not UTF-8 text; save it as UTF-8") from None
        if not has_line:
            raise BadInput(f"{path}: prompt file {file} is empty; write one prompt per line")
    return folder


def typed(cfg: dict[str, Any]) -> StudyFile:
    """The typed view of a stored (normalised) config."""
    return StudyFile.model_validate({k: v for k, v in cfg.items() if k != "resolved"})
