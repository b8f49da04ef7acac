"""Cheap checks of a study's local input files, run by `new` before anything is stored.

Why: a truncated download, a GGUF that is not one, or a corpus file saved as Latin-1 should be
refused with one line before a study exists, not minutes later inside a worker. Every check here
reads headers or the start of a file only (no torch, no model load): weight files through
safetensors' and gguf's own readers, corpus lines through lab.inputs.corpus's line decoder. The model
stage repeats the weight check, so a file damaged after `new` is still a BadInput there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from lab.core.errors import BadInput

CORPUS_SCAN_BYTES = 1 << 20  # UTF-8 / JSON lines are checked in each file's first MiB; identify checks the rest
CODE_RUNNING_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")  # torch.save / pickle formats: never loaded
# config.json keys that hold the longest sequence a model takes, by family
MAX_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "n_ctx", "seq_length")


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def check_safetensors(path: Path) -> None:
    """The header parses and the data it describes is all there (safe_open validates both)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            fh.keys()
    except (SafetensorError, OSError) as exc:
        raise BadInput(f"weight file {path} is corrupt or truncated ({_first_line(exc)}); re-download or "
                       f"re-save the model (save_pretrained)") from None


def check_gguf(path: Path) -> Optional[int]:
    """The file is a readable GGUF (magic, version, metadata and tensor table); returns its context
    length (`<arch>.context_length` in the header, which the reader has already parsed) or None."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # gguf raises ValueError, struct.error, IndexError... on a damaged file
        raise BadInput(f"{path} is not a readable GGUF file ({_first_line(exc)}); re-download it or point "
                       f"[model] id at another model") from None
    try:
        arch = reader.fields["general.architecture"].contents()
        return int(reader.fields[f"{arch}.context_length"].contents())
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def max_positions(config: dict[str, Any]) -> Optional[int]:
    """The longest input the model in a config.json takes, or None when the config does not say."""
    for key in MAX_POSITION_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def check_block_size(block_size: int, limit: Optional[int], where: str) -> None:
    if limit is not None and block_size > limit:
        raise BadInput(f"[corpus] block_size = {block_size} is longer than the model takes ({limit} positions, "
                       f"from {where}); lower [corpus] block_size to at most {limit}")


def check_weight_files(path: Path) -> None:
    """A model folder holds safetensors weights; pickle-based ones are refused with the safe way out."""
    if any(path.glob("*.safetensors")):
        return
    unsafe_files = sorted(p.name for pattern in CODE_RUNNING_WEIGHTS for p in path.glob(pattern))
    if unsafe_files:
        raise BadInput(f"model folder {path} holds only pickle-based weights ({', '.join(unsafe_files[:3])}), which "
                       f"neuron-pilot does not load (a pickle can run code); convert them to safetensors "
                       f"(save_pretrained with safe_serialization=True where you trust the file) and point "
                       f"[model] id at the result")
    raise BadInput(f"model folder {path} has a config.json but no weights (*.safetensors); point [model] id at "
                   f"a complete saved model (save_pretrained) or a .gguf file")


def check_model_files(model_id: str, source: str, gguf_file: Optional[str] = None,
                      block_size: Optional[int] = None) -> None:
    """A local model folder has a config.json, safetensors weights with intact headers, and takes
    `block_size` positions; a GGUF file is readable and (if its header says) takes `block_size`."""
    if source not in ("local", "gguf"):
        return
    path = Path(model_id)
    if source == "gguf":
        files = [path] if path.is_file() else ([path / gguf_file] if gguf_file else sorted(path.glob("*.gguf")))
        for f in files:
            if not f.is_file():
                raise BadInput(f"GGUF file {f} does not exist; fix [model] id or [model] gguf_file")
            limit = check_gguf(f)
            if block_size is not None:
                check_block_size(block_size, limit, f"{f.name}'s context_length")
        return
    if path.is_file():
        raise BadInput(f"[model] id {path} is a file but not a .gguf; point it at a model folder (save_pretrained) "
                       f"or a .gguf file")
    config = path / "config.json"
    if not config.is_file():
        raise BadInput(f"model folder {path} has no config.json; point [model] id at a saved transformers model "
                       f"(save_pretrained) or a .gguf file")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise BadInput(f"{config} is not a JSON object; re-download or re-save the model (save_pretrained)")
    check_weight_files(path)
    for f in sorted(path.glob("*.safetensors")):
        check_safetensors(f)
    if block_size is not None:
        check_block_size(block_size, max_positions(data), f"{config.name}")


def check_corpus_text(folder: Path, languages: Sequence[str]) -> None:
    """Each language's file decodes (UTF-8; for .jsonl, JSON with a "text" string) in its first MiB and
    holds at least one non-blank document."""
    from lab.inputs.corpus import _doc_text, find_source

    for lang in languages:
        src = find_source(folder, lang)
        assert src.path is not None
        scanned, found = 0, False
        try:
            with open(src.path, "rb") as fh:
                for lineno, raw in enumerate(fh, 1):
                    scanned += len(raw)
                    if scanned <= CORPUS_SCAN_BYTES or lineno == 1:
                        found = bool(_doc_text(src, raw, lineno).strip()) or found
                    elif raw.strip():
                        found = True
                    if found and scanned > CORPUS_SCAN_BYTES:
                        break
        except OSError as exc:
            raise BadInput(f"corpus file {src.path} for {lang!r} cannot be read ({exc.strerror or exc}); check "
                           f"its permissions or replace the file") from None
        if not found:
            raise BadInput(f"corpus file {src.path} for {lang!r} is empty (no non-blank line); add text for {lang} "
                           f"(one document per line) or remove it from [languages] all")


def check_study_inputs(cfg: dict[str, Any]) -> None:
    """Everything above for a validated study config (lab.study.studyfile's normalised dict)."""
    resolved = cfg.get("resolved", {})
    check_model_files(cfg["model"]["id"], resolved.get("model_source", "local"), cfg["model"].get("gguf_file"),
                      cfg["corpus"]["block_size"])
    if resolved.get("corpus_source") == "local":
        check_corpus_text(Path(cfg["corpus"]["path"]), cfg["languages"]["all"])
