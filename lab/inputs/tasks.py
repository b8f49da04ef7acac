"""Which lm-eval task runs for which language, and the task configs handed to lm-eval.

An [evaluate] tasks entry is either a task FAMILY, evaluated per language by appending the
language (``demo_real`` → ``demo_real_sw``; ``xnli`` → ``xnli_sw``; ``belebele`` → ``belebele_swh_Latn``
through a code table; ``mlqa`` → ``mlqa_sw_sw``), or one explicit per-language task (``xnli_sw``).

Shipped demo tasks live under lab.core.paths.DEMO_TASKS; their ``data_files`` are relative to the YAML's
folder, so they are made absolute here (lm-eval would resolve them against the working directory).
Built-in lm-eval tasks are found without building lm-eval's full index (~18 s): known families by
their folder, anything else by one text scan of the task YAMLs, cached per process. Built-in tasks
read their data from the hub; offline they need a local copy in [evaluate] data_dir, which replaces
the task's dataset with local JSON lines while keeping the task's own prompts and metrics.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from lab.core.errors import BadInput
from lab.core.paths import DEMO_TASKS

SPLIT_KEYS = ("test_split", "validation_split", "training_split", "fewshot_split")

# ISO 639-1 → FLORES-200 code used by Belebele task names (belebele_<code>).
BELEBELE_CODES = {
    "af": "afr_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "bg": "bul_Cyrl", "bn": "ben_Beng", "ca": "cat_Latn",
    "cs": "ces_Latn", "da": "dan_Latn", "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn",
    "et": "est_Latn", "eu": "eus_Latn", "fa": "pes_Arab", "fi": "fin_Latn", "fr": "fra_Latn", "gu": "guj_Gujr",
    "ha": "hau_Latn", "he": "heb_Hebr", "hi": "hin_Deva", "hr": "hrv_Latn", "hu": "hun_Latn", "hy": "hye_Armn",
    "id": "ind_Latn", "ig": "ibo_Latn", "is": "isl_Latn", "it": "ita_Latn", "ja": "jpn_Jpan", "jv": "jav_Latn",
    "ka": "kat_Geor", "kk": "kaz_Cyrl", "km": "khm_Khmr", "kn": "kan_Knda", "ko": "kor_Hang", "lo": "lao_Laoo",
    "lt": "lit_Latn", "ml": "mal_Mlym", "mr": "mar_Deva", "my": "mya_Mymr", "ne": "npi_Deva", "nl": "nld_Latn",
    "no": "nob_Latn", "pa": "pan_Guru", "pl": "pol_Latn", "pt": "por_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl",
    "sk": "slk_Latn", "so": "som_Latn", "sr": "srp_Cyrl", "sv": "swe_Latn", "sw": "swh_Latn", "ta": "tam_Taml",
    "te": "tel_Telu", "th": "tha_Thai", "tl": "tgl_Latn", "tr": "tur_Latn", "uk": "ukr_Cyrl", "ur": "urd_Arab",
    "uz": "uzn_Latn", "vi": "vie_Latn", "yo": "yor_Latn", "zh": "zho_Hans", "zu": "zul_Latn",
}


@dataclass(frozen=True)
class Family:
    """A built-in lm-eval task family: its folder under lm_eval/tasks and its per-language names."""

    name: str
    folder: str
    task_for: Callable[[str], Optional[str]]
    hub_dataset: str


def _suffix(prefix: str) -> Callable[[str], Optional[str]]:
    return lambda lang: f"{prefix}_{lang}"


BUILTIN_FAMILIES: dict[str, Family] = {
    "xnli": Family("xnli", "xnli", _suffix("xnli"), "facebook/xnli"),
    "xcopa": Family("xcopa", "xcopa", _suffix("xcopa"), "cambridgeltl/xcopa"),
    "xstorycloze": Family("xstorycloze", "xstorycloze", _suffix("xstorycloze"), "juletxara/xstory_cloze"),
    "belebele": Family("belebele", "belebele",
                       lambda lang: f"belebele_{BELEBELE_CODES[lang]}" if lang in BELEBELE_CODES else None,
                       "facebook/belebele"),
    "xquad": Family("xquad", "xquad", _suffix("xquad"), "google/xquad"),
    "mlqa": Family("mlqa", "mlqa", lambda lang: f"mlqa_{lang}_{lang}", "facebook/mlqa"),
}


@dataclass(frozen=True)
class TaskRef:
    """One lm-eval task evaluated on one language."""

    entry: str  # as written in [evaluate] tasks
    language: str
    name: str  # the lm-eval task name
    source: str  # "demo" or "builtin"
    yaml_path: Path


# ---- indexes (cheap, cached) ------------------------------------------------------------------

def _lm_eval_tasks_dir() -> Path:
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BadInput("lm-eval is not installed; install it (pip install lm-eval) to evaluate tasks")
    return Path(list(spec.submodule_search_locations)[0]) / "tasks"


_TASK_LINE = re.compile(r"^task:\s*['\"]?([\w.\-]+)['\"]?\s*$", re.M)


def _scan_task_names(root: Path) -> dict[str, Path]:
    """{task name: yaml} from the top-level `task:` line of each YAML — text only, no YAML parsing."""
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.rglob("*.yaml")):
        if "__pycache__" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="ignore")
        except OSError:
            continue
        for name in _TASK_LINE.findall(text):
            found.setdefault(name, path)
    return found


@functools.lru_cache(maxsize=8)
def _demo_index_at(root: Path) -> dict[str, Path]:
    return _scan_task_names(root)


def demo_index(root: Optional[Path] = None) -> dict[str, Path]:
    """Shipped demo tasks (or those under `root`): {task name: yaml}."""
    return _demo_index_at(Path(root or DEMO_TASKS).resolve())


@functools.lru_cache(maxsize=32)
def _family_index(folder: str) -> dict[str, Path]:
    return _scan_task_names(_lm_eval_tasks_dir() / folder)


@functools.lru_cache(maxsize=1)
def builtin_index() -> dict[str, Path]:
    """Every built-in lm-eval task name (one text scan, ~1 s): the fallback for names outside the families."""
    return _scan_task_names(_lm_eval_tasks_dir())


def _demo_families(index: dict[str, Path]) -> set[str]:
    return {name.rsplit("_", 1)[0] for name in index if "_" in name}


def known_families() -> list[str]:
    return sorted(_demo_families(demo_index()) | set(BUILTIN_FAMILIES))


# ---- resolving [evaluate] tasks --------------------------------------------------------------

def _explicit_language(name: str, languages: list[str]) -> Optional[tuple[str, str]]:
    """(family, language) when `name` is a per-language name of a language in `languages`."""
    for lang in languages:
        for fam in BUILTIN_FAMILIES.values():
            if fam.task_for(lang) == name:
                return fam.name, lang
        if name.endswith(f"_{lang}"):
            return name[: -len(lang) - 1], lang
    return None


def resolve_tasks(cfg: dict[str, Any]) -> list[TaskRef]:
    """Every (task, language) pair the evaluate stage runs, in [evaluate] order then language order.

    Raises BadInput for an unknown entry, an explicit task of a language that is not evaluated, or an
    evaluated language no entry covers.
    """
    languages = evaluated_languages(cfg)
    all_langs = list(cfg["languages"]["all"])
    demo = demo_index()
    refs: list[TaskRef] = []
    for entry in cfg["evaluate"]["tasks"]:
        found = _resolve_entry(entry, languages, all_langs, demo)
        refs.extend(found)
    covered = {r.language for r in refs}
    missing = [lang for lang in languages if lang not in covered]
    if missing:
        names = ", ".join(cfg["evaluate"]["tasks"])
        raise BadInput(f"[evaluate] tasks ({names}) have no task for language(s) {', '.join(missing)}; add a task "
                       f"family that covers them, or set [languages] high_resource to the languages that have one")
    return refs


def _resolve_entry(entry: str, languages: list[str], all_langs: list[str], demo: dict[str, Path]) -> list[TaskRef]:
    # 1. a shipped demo family or demo task
    if entry in _demo_families(demo) and entry not in demo:
        return [TaskRef(entry, lang, f"{entry}_{lang}", "demo", demo[f"{entry}_{lang}"])
                for lang in languages if f"{entry}_{lang}" in demo]
    if entry in demo:
        return [_explicit(entry, languages, all_langs, "demo", demo[entry])]
    # 2. a known built-in family, or one of its per-language tasks
    if entry in BUILTIN_FAMILIES:
        fam = BUILTIN_FAMILIES[entry]
        index = _family_index(fam.folder)
        out = []
        for lang in languages:
            name = fam.task_for(lang)
            if name is not None and name in index:
                out.append(TaskRef(entry, lang, name, "builtin", index[name]))
        return out
    for fam in BUILTIN_FAMILIES.values():
        if entry.startswith(fam.name + "_"):
            index = _family_index(fam.folder)
            if entry in index:
                return [_explicit(entry, languages, all_langs, "builtin", index[entry])]
    # 3. any other built-in lm-eval task (text scan, cached)
    if re.fullmatch(r"[\w.\-]+", entry):
        index = builtin_index()
        family = [lang for lang in languages if f"{entry}_{lang}" in index]
        if family and entry not in index:
            return [TaskRef(entry, lang, f"{entry}_{lang}", "builtin", index[f"{entry}_{lang}"]) for lang in family]
        if entry in index:
            return [_explicit(entry, languages, all_langs, "builtin", index[entry])]
    raise BadInput(f"[evaluate] task {entry!r} is not a known task (families: {', '.join(known_families())}; or a "
                   f"per-language lm-eval task name such as xnli_sw); fix the name")


def _explicit(name: str, languages: list[str], all_langs: list[str], source: str, path: Path) -> TaskRef:
    hit = _explicit_language(name, all_langs)
    if hit is None:
        raise BadInput(f"[evaluate] task {name!r} names no language of [languages] all ({', '.join(all_langs)}); "
                       f"use a per-language task name ending in _<lang> or a task family")
    lang = hit[1]
    if lang not in languages:
        raise BadInput(f"[evaluate] task {name!r} is for {lang}, which is neither a target nor a high-resource "
                       f"language of this study; add {lang} to [languages] or drop the task")
    return TaskRef(name, lang, name, source, path)


def evaluated_languages(cfg: dict[str, Any]) -> list[str]:
    """Targets first, then the high-resource languages checked for regressions."""
    targets = list(cfg["languages"]["targets"])
    high = cfg["languages"].get("high_resource")
    if high is None:
        high = [x for x in cfg["languages"]["all"] if x not in targets]
    return targets + [x for x in high if x not in targets]


# ---- task configs for lm-eval ----------------------------------------------------------------

def _offline() -> bool:
    return os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"


def local_data_files(data_dir: Optional[str], task: str) -> Optional[dict[str, str]]:
    """{split: file} for a task's local copy: <data_dir>/<task>/<split>.jsonl, else <data_dir>/<task>.jsonl
    (returned under the key "" = the task's evaluation split)."""
    if not data_dir:
        return None
    root = Path(data_dir)
    folder = root / task
    if folder.is_dir():
        files = {p.stem: str(p.resolve()) for p in sorted(folder.iterdir())
                 if p.suffix in (".jsonl", ".json") and p.is_file()}
        if files:
            return files
    for ext in (".jsonl", ".json"):
        single = root / f"{task}{ext}"
        if single.is_file():
            return {"": str(single.resolve())}
    return None


def _hub_dataset_cached(dataset_path: str) -> bool:
    """Whether the datasets cache holds anything for this hub dataset (then offline loading may work)."""
    base = Path(os.environ.get("HF_DATASETS_CACHE") or
                Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "datasets")
    return (base / dataset_path.replace("/", "___")).is_dir()


def _import_function(ref: str, base: Path) -> Callable[..., Any]:
    """`!function module.name` as lm-eval's task format defines it: `name` from the file module.py beside the
    YAML. Each file is imported once per process, under a name of its own."""
    module_name, _, name = ref.rpartition(".")
    file = (base / f"{module_name.replace('.', '/')}.py").resolve()
    if not module_name or not file.is_file():
        raise BadInput(f"task config in {base}: !function {ref} names no file {file.name} beside it; fix the YAML")
    key = f"_neuron_pilot_task_code_{hashlib.sha256(str(file).encode()).hexdigest()[:16]}"
    module = sys.modules.get(key)
    if module is None:
        spec = importlib.util.spec_from_file_location(key, file)
        if spec is None or spec.loader is None:
            raise BadInput(f"task code {file} cannot be loaded as a Python module; fix or remove it")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # an ImportError inside it reaches the caller (see _load_task_yaml)
        sys.modules[key] = module
    try:
        return getattr(module, name)  # type: ignore[no-any-return]
    except AttributeError:
        raise BadInput(f"task code {file} has no function {name!r} (named by !function {ref}); fix the YAML") from None


def _raw_config(path: Path, _depth: int = 0, *, functions: bool = False) -> dict[str, Any]:
    """A task YAML with its `include:` files merged (lm-eval's task format). `!function` entries are imported
    (functions=True: see _import_function) or left as their text. Plain PyYAML, not lm-eval's private loader:
    its module can move between releases, and importing it pulls in datasets (seconds, too slow for `new`)."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def function(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        ref = str(loader.construct_scalar(node))  # type: ignore[arg-type]
        return _import_function(ref, path.parent) if functions else ref

    _Loader.add_constructor("!function", function)
    if _depth > 8:
        raise BadInput(f"task config {path} includes itself (include cycle); fix its include: lines")
    try:
        cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"cannot read task config {path}: {str(exc).splitlines()[0]}; fix the YAML") from None
    includes = cfg.pop("include", None)
    if not includes:
        return cfg
    merged: dict[str, Any] = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        merged.update(_raw_config(path.parent / inc, _depth + 1, functions=functions))
    merged.update(cfg)
    return merged


def check_local_data(ref: TaskRef, data_dir: Optional[str]) -> None:
    """A built-in task offline needs a local copy (or a cached download): say how to give one."""
    if ref.source != "builtin" or local_data_files(data_dir, ref.name) is not None or not _offline():
        return
    dataset = str(_raw_config(ref.yaml_path).get("dataset_path") or "")
    if dataset in ("", "json", "csv", "parquet", "text") or _hub_dataset_cached(dataset):
        return
    where = f"[evaluate] data_dir ({data_dir}) has no copy of it" if data_dir else "[evaluate] data_dir is not set"
    raise BadInput(f"task {ref.name} reads {dataset} from the Hugging Face hub, which is offline here "
                   f"(HF_HUB_OFFLINE/HF_DATASETS_OFFLINE=1), and {where}; save the split as JSON lines with the "
                   f"dataset's columns to <data_dir>/{ref.name}.jsonl (or <data_dir>/{ref.name}/<split>.jsonl) "
                   f"and set [evaluate] data_dir (see docs/evaluate.md)")


def _absolute_data_files(files: Any, base: Path) -> Any:
    if isinstance(files, str):
        p = Path(files).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())
    if isinstance(files, list):
        return [_absolute_data_files(f, base) for f in files]
    if isinstance(files, dict):
        return {k: _absolute_data_files(v, base) for k, v in files.items()}
    return files


def task_config(ref: TaskRef, data_dir: Optional[str] = None) -> dict[str, Any]:
    """The task's full lm-eval config as a dict (functions resolved), ready for simple_evaluate.

    Demo tasks: data_files made absolute against the YAML's folder. Built-in tasks with a local copy:
    dataset replaced by local JSON lines; splits without a local file are dropped.
    """
    cfg = copy.deepcopy(_load_task_yaml(ref))
    for key in ("tag", "group"):
        cfg.pop(key, None)
    cfg["task"] = ref.name
    kwargs = dict(cfg.get("dataset_kwargs") or {})
    if "data_files" in kwargs:
        kwargs["data_files"] = _absolute_data_files(kwargs["data_files"], ref.yaml_path.parent)
        cfg["dataset_kwargs"] = kwargs
    local = local_data_files(data_dir, ref.name) if ref.source == "builtin" else None
    if local is not None:
        cfg.update(_local_overrides(cfg, local, ref.name))
    else:
        check_local_data(ref, data_dir)
    return cfg


def _load_task_yaml(ref: TaskRef) -> dict[str, Any]:
    """The task YAML with its functions imported. A built-in task whose own code no longer imports
    (lm-eval 0.4.13's xquad needs transformers.data.metrics, gone in transformers 5) gets the scorer
    of lab.inputs.qa_scoring instead; any other such task is refused with a message."""
    try:
        return _raw_config(ref.yaml_path, functions=True)
    except ImportError as exc:
        from lab.inputs.qa_scoring import REPLACEMENT_SCORERS

        scorer = REPLACEMENT_SCORERS.get(ref.yaml_path.parent.name) if ref.source == "builtin" else None
        if scorer is None:
            raise BadInput(f"task {ref.name}: its lm-eval code cannot be imported ({str(exc).splitlines()[0]}); "
                           f"install versions of lm-eval and its dependencies that work together, or pick "
                           f"another task") from None
    cfg = _raw_config(ref.yaml_path)
    cfg["process_results"] = scorer
    cfg["metadata"] = {**(cfg.get("metadata") or {}), "scorer": f"lab.inputs.qa_scoring.{scorer.__name__}"}
    return cfg


def _local_overrides(cfg: dict[str, Any], files: dict[str, str], task: str) -> dict[str, Any]:
    eval_split = cfg.get("test_split") or cfg.get("validation_split")
    if not eval_split:
        raise BadInput(f"task {task} has neither a test nor a validation split; it cannot be evaluated")
    if "" in files:  # one file: it is the evaluation split
        files = {eval_split: files[""]}
    if eval_split not in files:
        raise BadInput(f"local data for {task} has splits {', '.join(sorted(files))} but the task evaluates on "
                       f"'{eval_split}'; name the file {eval_split}.jsonl")
    out: dict[str, Any] = {"dataset_path": "json", "dataset_name": None, "dataset_kwargs": {"data_files": files}}
    for key in SPLIT_KEYS:
        split = cfg.get(key)
        out[key] = split if split in files else None
    few = cfg.get("fewshot_config")
    if isinstance(few, dict) and few.get("split") not in (None, *files):
        out["fewshot_config"] = {k: v for k, v in few.items() if k != "split"}
    return out


def output_type(ref: TaskRef) -> str:
    return str(_raw_config(ref.yaml_path).get("output_type") or "multiple_choice")


def check_tasks(cfg: dict[str, Any]) -> None:
    """At `neuron-pilot new`: every task resolves, and built-in ones have data reachable offline."""
    data_dir = cfg["evaluate"].get("data_dir")
    if data_dir and not Path(data_dir).is_dir():
        raise BadInput(f"[evaluate] data_dir {data_dir} is not a folder; point it at the folder of local task data")
    for ref in resolve_tasks(cfg):
        local = local_data_files(data_dir, ref.name) if ref.source == "builtin" else None
        if local is not None:
            _local_overrides(_raw_config(ref.yaml_path), local, ref.name)  # the evaluation split must be there
        else:
            check_local_data(ref, data_dir)
