"""The generation probe's engine: fixed prompts per language, greedy and seeded sampled continuations
under a condition (hooks or a merged fine-tune), and the detection of degenerate output.

Why a probe besides lm-eval: an intervention can change *how* a model writes (another language,
loops, nothing at all) while task accuracy barely moves. The probe keeps everything that decides
the text fixed (prompts, batch composition, decoding settings, the sampling seed per language), so
two conditions differ only by the intervention, and continuations can be compared prompt by prompt.

Decoding uses an explicit GenerationConfig: plain greedy (no repetition penalty or other defaults of
the model's own generation_config), and for sampling only temperature and top_p. Prompts are
left-padded in fixed batches; the sampling RNG is re-seeded per language with the same seed under
every condition (common random numbers), so a hook that changes nothing gives identical samples.
"""

from __future__ import annotations

import contextlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Iterator, Optional, Sequence

from lab.core.errors import BadInput
from lab.core.paths import EXAMPLES

DEMO_PROMPTS = EXAMPLES / "prompts"
LOOP_MIN_REPEATS = 3  # a unit repeated this many times in a row at the end is a loop ...
LOOP_MIN_TOKENS = 6  # ... if the repeated tail spans at least this many tokens


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings of the probe ([generate] in the study file)."""

    max_new_tokens: int = 24
    samples: int = 1
    temperature: float = 0.8
    top_p: float = 0.95
    batch_size: int = 8

    def to_json(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "samples": self.samples, "temperature": self.temperature,
                "top_p": self.top_p, "batch_size": self.batch_size}


@dataclass
class Continuation:
    """One generated continuation (the prompt excluded) and why it is degenerate, if it is."""

    text: str
    tokens: int
    degenerate: Optional[str] = None  # None, "empty" or "loop"

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "tokens": self.tokens, "degenerate": self.degenerate}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Continuation":
        return cls(str(obj["text"]), int(obj["tokens"]), obj.get("degenerate"))


@dataclass
class PromptResult:
    """A prompt's greedy continuation and its seeded sampled ones, under one condition."""

    prompt: str
    greedy: Continuation
    samples: list[Continuation] = field(default_factory=list)

    @property
    def continuations(self) -> list[Continuation]:
        return [self.greedy, *self.samples]

    def to_json(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "greedy": self.greedy.to_json(), "samples": [s.to_json() for s in self.samples]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "PromptResult":
        return cls(str(obj["prompt"]), Continuation.from_json(obj["greedy"]),
                   [Continuation.from_json(s) for s in obj.get("samples", [])])


# ---- prompts -------------------------------------------------------------------------------------

def prompts_folder(configured: Optional[str]) -> tuple[Path, bool]:
    """(folder, whether the study named it): [generate] prompts, else the shipped demo prompts."""
    return (Path(configured), True) if configured else (DEMO_PROMPTS, False)


def prompt_file(folder: Path, language: str) -> Optional[Path]:
    path = folder / f"{language}.txt"
    return path if path.is_file() else None


def read_prompts(folder: Path, language: str, limit: Optional[int] = None) -> list[str]:
    """The first `limit` non-empty lines of <folder>/<language>.txt, stripped."""
    path = prompt_file(folder, language)
    if path is None:
        raise BadInput(f"prompt folder {folder} has no {language}.txt; add one prompt per line for {language} "
                       f"(or remove [generate] prompts to use the shipped demo prompts)")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError:
        raise BadInput(f"prompt file {path} is not UTF-8 text; save it as UTF-8") from None
    prompts = [line for line in lines if line]
    if not prompts:
        raise BadInput(f"prompt file {path} has no prompts; write one prompt per line")
    return prompts[:limit] if limit else prompts


# ---- degenerate output ---------------------------------------------------------------------------

def is_loop(ids: Sequence[int], min_repeats: int = LOOP_MIN_REPEATS, min_tokens: int = LOOP_MIN_TOKENS) -> bool:
    """Whether the sequence ends in one unit of tokens repeated `min_repeats` times in a row, the
    repeated tail spanning at least `min_tokens` tokens ("a b a b a b", "x x x x x x")."""
    n = len(ids)
    for period in range(1, n // min_repeats + 1):
        span = max(period * min_repeats, -(-min_tokens // period) * period)
        if span > n:
            continue
        tail = ids[n - span:]
        if all(tail[i] == tail[i + period] for i in range(span - period)):
            return True
    return False


def degenerate_reason(text: str, ids: Sequence[int]) -> Optional[str]:
    """'empty' when the continuation has no letter at all, 'loop' when it ends in a repetition loop."""
    if not any(ch.isalpha() for ch in text):
        return "empty"
    if is_loop(list(ids)):
        return "loop"
    return None


# ---- generation ----------------------------------------------------------------------------------

def sampling_seed(seed: int, language: str) -> int:
    """The RNG seed of a language's sampled continuations: the same under every condition, and
    independent of which languages run before it (so a resumed stage draws the same samples)."""
    return (int(seed) * 1_000_003 + zlib.crc32(language.encode("utf-8"))) % (2**63 - 1)


@contextlib.contextmanager
def _left_padding(tokenizer: Any) -> Iterator[None]:
    saved = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        yield
    finally:
        tokenizer.padding_side = saved


def _encode(tokenizer: Any, prompts: Sequence[str]) -> Any:
    """A left-padded batch whose every prompt starts with the tokenizer's BOS when it has one (as
    identification and perplexity blocks do: docs/identify.md), whether or not the tokenizer adds it."""
    ids = tokenizer(list(prompts))["input_ids"]
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None:
        ids = [row if row[:1] == [bos] else [bos, *row] for row in ids]
    return tokenizer.pad({"input_ids": ids}, return_tensors="pt")


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    ids = eos if isinstance(eos, (list, tuple)) else [eos]
    return {int(i) for i in ids if i is not None}


def _decode(tokenizer: Any, ids: list[int], eos: set[int]) -> Continuation:
    """The tokens up to the first end-of-sequence, decoded without special tokens."""
    kept: list[int] = []
    for i in ids:
        if i in eos:
            break
        kept.append(i)
    text = tokenizer.decode(kept, skip_special_tokens=True)
    return Continuation(text, len(kept), degenerate_reason(text, kept))


def _config(model: Any, tokenizer: Any, settings: GenerationSettings, sample: bool) -> Any:
    from transformers import GenerationConfig

    kw: dict[str, Any] = dict(max_new_tokens=settings.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=sorted(_eos_ids(model, tokenizer)) or None,
                              bos_token_id=getattr(model.generation_config, "bos_token_id", None))
    if sample:
        kw.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0,
                  num_return_sequences=settings.samples)
    else:
        kw.update(do_sample=False)
    return GenerationConfig(**kw)


def generate_continuations(model: Any, tokenizer: Any, prompts: Sequence[str], settings: GenerationSettings, *,
                           seed: int, hooks: Optional[ContextManager[Any]] = None) -> list[PromptResult]:
    """Greedy and `settings.samples` sampled continuations of each prompt, inside `hooks` (if any).

    `seed` seeds the sampling RNG once before the sampled batches (see sampling_seed)."""
    import torch

    if not prompts:
        return []
    device = next(model.parameters()).device
    eos = _eos_ids(model, tokenizer)
    greedy_cfg = _config(model, tokenizer, settings, sample=False)
    sample_cfg = _config(model, tokenizer, settings, sample=True) if settings.samples > 0 else None
    batches = [list(prompts[i:i + settings.batch_size]) for i in range(0, len(prompts), settings.batch_size)]
    results: list[PromptResult] = []
    with torch.no_grad(), _left_padding(tokenizer), hooks if hooks is not None else contextlib.nullcontext():
        encoded = [_encode(tokenizer, b).to(device) for b in batches]
        for batch, enc in zip(batches, encoded):
            out = model.generate(**enc, generation_config=greedy_cfg)
            new = out[:, enc["input_ids"].shape[1]:].tolist()
            results += [PromptResult(p, _decode(tokenizer, ids, eos)) for p, ids in zip(batch, new)]
        if sample_cfg is not None:
            torch.manual_seed(seed)
            at = 0
            for batch, enc in zip(batches, encoded):
                out = model.generate(**enc, generation_config=sample_cfg)
                new = out[:, enc["input_ids"].shape[1]:].tolist()
                for j in range(len(batch)):
                    rows = new[j * settings.samples:(j + 1) * settings.samples]
                    results[at + j].samples = [_decode(tokenizer, ids, eos) for ids in rows]
                at += len(batch)
    return results
