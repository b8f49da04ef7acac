"""The corpus feed: each language's text as fixed-length blocks of token ids, streamed.

Why a module of its own: the identify stage, the reproduce stage (two disjoint halves) and the
bench all need the *same* token stream for a language, cut the same way, without ever holding the
corpus in memory.

Sources (``find_source``)
    A folder with ``<lang>.txt`` (one document or paragraph per line) or ``<lang>.jsonl`` (one JSON
    object per line with a string ``"text"``), or a hub dataset written ``hf:DATASET[:CONFIG][@SPLIT]``
    (e.g. ``hf:wikimedia/wikipedia:20231101.{lang}``; ``{lang}`` is replaced by the language code,
    and with no ``{lang}`` and no CONFIG the language code is the config). Hub datasets are read with
    ``datasets.load_dataset(..., streaming=True)``; when the hub cannot be reached (offline) that is
    a BadInput that says so.

The token stream of a language
    1. Local files are scanned once into a *line-offset index*: the byte offset of every non-empty
       line, an ``array('q')`` of O(lines) integers — never the text. The scan checks every line
       (valid UTF-8; for ``.jsonl`` valid JSON with a string ``text``) and reports the file, the
       line and how to fix it, so bad input fails before any compute.
    2. The index is shuffled with ``random.Random(f"{seed}/{lang}")``: a deterministic document
       order from the study seed. Each document is then read by seeking to its offset.
       (Hub datasets use ``IterableDataset.shuffle(seed=seed, buffer_size=10_000)`` instead.)
    3. Each document plus its line break (``text + "\\n"``, as it stood in the file) is tokenised with
       ``add_special_tokens=False``; any special-token id that still appears (e.g. a literal
       ``</s>`` in the text) is dropped. The ids of consecutive documents are concatenated.
    4. The stream is cut into blocks of ``block_size`` tokens. With a BOS id (``bos_id(tokenizer)``:
       the tokenizer's ``bos_token_id`` when it has one) every block is ``[BOS] + block_size − 1``
       text tokens, so a block is never longer than ``block_size`` and position 0 always holds the
       same token, whatever text the block boundary falls on. The BOS is not a stream token:
       ``n_tokens`` and ``skip_tokens`` count text tokens only, and statistics leave position 0 out.

``token_blocks(tokenizer, source, lang, n_tokens, block_size, seed, skip_tokens=0, bos=None)``
    Yields 1-D int64 tensors covering stream positions ``[skip_tokens, skip_tokens + n_tokens)``:
    exactly ``n_tokens`` text tokens, every block ``block_size`` long (BOS included) except possibly
    the last. When the stream ends first it raises BadInput naming the language and how many tokens
    it has.
    ``skip_tokens`` lets callers take disjoint samples of one stream, e.g. two halves::

        half = (n_blocks // 2) * block_size
        first = token_blocks(tok, src, "sw", half, bs, seed)
        second = token_blocks(tok, src, "sw", n_tokens - half, bs, seed, skip_tokens=half)

``BlockFeed`` / ``corpus_feed(...)``
    The same stream as a restartable object: ``feed.open(skip_blocks)`` starts at any block, which
    is how an interrupted statistics pass resumes (skipping re-tokenises the skipped documents,
    cheap next to a forward pass). ``BlockFeed.from_blocks`` wraps blocks already in memory.
    ``corpus_feed`` adds the tokenizer's BOS (``with_bos=True``); ``feed.bos`` records it.

``heldout_blocks(tokenizer, folder, lang, n_tokens, block_size)``
    Held-out text (``[corpus] heldout``, same file formats) read in file order — it is scored, not
    sampled — as a list of blocks (it is small), each starting with the tokenizer's BOS as above. ``heldout_folder(cfg)`` finds the folder.

``check_budget(tokenizer, source_spec, languages, n_tokens)`` counts tokens up to the budget for
every language before compute starts (tokenising is far cheaper than a forward pass).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sequence

if TYPE_CHECKING:  # torch loads only where blocks are built, so `new` can check corpus text without it
    import torch

from lab.core.errors import BadInput
from lab.inputs.hub import HF_PREFIX, HubSpec, hub_documents, parse_hub_spec

TOKENIZE_CHUNK = 64  # documents per tokenizer call (fast tokenizers batch well)


# ---- where a language's text lives ---------------------------------------------------------------

@dataclass(frozen=True)
class TextSource:
    """One language's documents: a local .txt/.jsonl file or a hub dataset."""

    lang: str
    kind: str  # "txt" | "jsonl" | "hf"
    path: Optional[Path] = None
    hub: Optional[HubSpec] = None

    def describe(self) -> str:
        if self.hub is not None:
            cfg = f" ({self.hub.config})" if self.hub.config else ""
            return f"hub dataset {self.hub.name}{cfg}"
        return str(self.path)


def find_source(corpus: str | os.PathLike[str], lang: str) -> TextSource:
    """The text of `lang` in a corpus folder (``<lang>.txt`` or ``<lang>.jsonl``) or an ``hf:`` spec."""
    spec = str(corpus)
    if spec.startswith(HF_PREFIX):
        return TextSource(lang, "hf", hub=parse_hub_spec(spec, lang))
    folder = Path(corpus)
    if not folder.is_dir():
        raise BadInput(f"corpus folder {folder} does not exist; point [corpus] path at a folder with one "
                       f"<lang>.txt or <lang>.jsonl per language")
    for kind in ("txt", "jsonl"):
        p = folder / f"{lang}.{kind}"
        if p.is_file():
            return TextSource(lang, kind, path=p)
    raise BadInput(f"corpus folder {folder} has no text for {lang!r}; add {lang}.txt (one document per line) "
                   f"or {lang}.jsonl (one {{\"text\": ...}} per line)")


# ---- local files: a checked line-offset index ----------------------------------------------------

_INDEX_CACHE: dict[tuple[str, int, int], array] = {}


def _doc_text(source: TextSource, raw: bytes, lineno: int) -> str:
    """Decode one line of a local file; a line a user must fix is a BadInput naming file and line."""
    assert source.path is not None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{source.path}: line {lineno} is not valid UTF-8 (byte {exc.start + 1} of the line); "
                       f"re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    if source.kind == "jsonl":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{source.path}: line {lineno} is not valid JSON ({exc.msg}); write one JSON object "
                           f"per line, like {{\"text\": \"...\"}}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise BadInput(f"{source.path}: line {lineno} has no string field \"text\"; write one JSON object "
                           f"per line, like {{\"text\": \"...\"}}")
        return obj["text"]
    return text.rstrip("\r\n")


def line_index(source: TextSource) -> array:
    """Byte offsets of the non-empty documents of a local file, after checking every line once."""
    assert source.path is not None
    st = source.path.stat()
    key = (str(source.path.resolve()), st.st_size, st.st_mtime_ns)
    cached = _INDEX_CACHE.get(key)
    if cached is not None:
        return cached
    offsets = array("q")
    pos = 0
    with open(source.path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if _doc_text(source, raw, lineno).strip():
                offsets.append(pos)
            pos += len(raw)
    _INDEX_CACHE[key] = offsets
    return offsets


def _local_documents(source: TextSource, seed: Optional[int]) -> Iterator[str]:
    offsets = array("q", line_index(source))  # a copy: the shuffle must not touch the cache
    if seed is not None:
        random.Random(f"{seed}/{source.lang}").shuffle(offsets)
    assert source.path is not None
    with open(source.path, "rb") as fh:
        for off in offsets:
            fh.seek(off)
            yield _doc_text(source, fh.readline(), -1)


def documents(source: TextSource, seed: Optional[int]) -> Iterator[str]:
    """The language's documents: shuffled by `seed`, or in stored order when `seed` is None."""
    if source.kind == "hf":
        assert source.hub is not None
        return hub_documents(source.hub, source.lang, seed)
    return _local_documents(source, seed)


# ---- tokens and blocks ---------------------------------------------------------------------------

def _special_ids(tokenizer: Any) -> frozenset[int]:
    return frozenset(int(i) for i in (getattr(tokenizer, "all_special_ids", None) or []))


def token_stream(tokenizer: Any, docs: Iterable[str]) -> Iterator[list[int]]:
    """Token ids of each document plus its line break, special tokens never included."""
    special = _special_ids(tokenizer)
    chunk: list[str] = []

    def flush() -> Iterator[list[int]]:
        enc = tokenizer([d + "\n" for d in chunk], add_special_tokens=False)["input_ids"]
        for ids in enc:
            yield [int(i) for i in ids if int(i) not in special] if special else [int(i) for i in ids]

    for doc in docs:
        chunk.append(doc)
        if len(chunk) >= TOKENIZE_CHUNK:
            yield from flush()
            chunk = []
    if chunk:
        yield from flush()


def _too_small(source: TextSource, have: int, skip: int, n_tokens: int, what: str) -> BadInput:
    extra = f" (the first {skip} are used elsewhere)" if skip else ""
    return BadInput(f"corpus for {source.lang!r} ({source.describe()}) has only {have} tokens{extra} but "
                    f"{skip + n_tokens} are needed; add text for {source.lang} or lower {what}")


def bos_id(tokenizer: Any) -> Optional[int]:
    """The tokenizer's BOS token id, or None when it has none (then blocks are text only)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return None if bos is None else int(bos)


def _blocks_from(source: TextSource, tokenizer: Any, n_tokens: int, block_size: int, seed: Optional[int],
                 skip_tokens: int, what: str, bos: Optional[int] = None) -> Iterator[torch.Tensor]:
    import torch

    lead = [] if bos is None else [int(bos)]
    if n_tokens <= 0 or block_size <= len(lead) or skip_tokens < 0:
        raise ValueError("n_tokens and block_size must be positive (block_size >= 2 with a BOS), skip_tokens >= 0")
    text = block_size - len(lead)  # text tokens per block
    buf: list[int] = []
    seen = 0  # stream tokens consumed so far (including skipped ones)
    emitted = 0
    for ids in token_stream(tokenizer, documents(source, seed)):
        start = seen
        seen += len(ids)
        if seen <= skip_tokens:
            continue
        buf.extend(ids[max(0, skip_tokens - start):])
        while len(buf) >= text and emitted + text <= n_tokens:
            yield torch.tensor(lead + buf[:text], dtype=torch.long)
            del buf[:text]
            emitted += text
        if emitted + len(buf) >= n_tokens:
            rest = n_tokens - emitted
            if rest > 0:
                yield torch.tensor(lead + buf[:rest], dtype=torch.long)
            return
    raise _too_small(source, seen, skip_tokens, n_tokens, what)


def token_blocks(tokenizer: Any, source: TextSource | str | os.PathLike[str], lang: str, n_tokens: int,
                 block_size: int, seed: Optional[int], skip_tokens: int = 0,
                 bos: Optional[int] = None) -> Iterator[torch.Tensor]:
    """Stream positions [skip_tokens, skip_tokens + n_tokens) of `lang` as blocks, each led by `bos` if given."""
    src = source if isinstance(source, TextSource) else find_source(source, lang)
    return _blocks_from(src, tokenizer, n_tokens, block_size, seed, skip_tokens, "[corpus] tokens_per_language", bos)


def count_tokens(tokenizer: Any, source: TextSource, limit: Optional[int] = None) -> int:
    """Tokens in the language's stream, counting stops once `limit` is reached."""
    total = 0
    for ids in token_stream(tokenizer, documents(source, None)):
        total += len(ids)
        if limit is not None and total >= limit:
            return total
    return total


def check_budget(tokenizer: Any, corpus: str | os.PathLike[str], languages: Sequence[str], n_tokens: int) -> None:
    """Refuse, before any compute, a language whose corpus has fewer than `n_tokens` tokens."""
    for lang in languages:
        src = find_source(corpus, lang)
        have = count_tokens(tokenizer, src, n_tokens)
        if have < n_tokens:
            raise _too_small(src, have, 0, n_tokens, "[corpus] tokens_per_language")


# ---- a restartable feed --------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockFeed:
    """One language's blocks, restartable at any block (``open(skip_blocks)``).

    Every block is ``block_size`` tokens long (BOS included) except possibly the last, and there are
    exactly ``n_tokens`` text tokens in all: the statistics pass plans its batches from these numbers.
    With ``bos`` set, position 0 of every block is that BOS id (``skip`` = 1 position to leave out).
    """

    lang: str
    n_tokens: int
    block_size: int
    open: Callable[[int], Iterator[torch.Tensor]] = field(compare=False)
    fingerprint: str = ""  # identifies the data, for checkpoints
    bos: Optional[int] = None

    @property
    def skip(self) -> int:
        """Leading positions of every block that are not text (the BOS)."""
        return 0 if self.bos is None else 1

    @property
    def text_per_block(self) -> int:
        return self.block_size - self.skip

    @property
    def n_blocks(self) -> int:
        return -(-self.n_tokens // self.text_per_block)

    @property
    def last_len(self) -> int:
        """Length of the last block, BOS included."""
        return self.n_tokens - (self.n_blocks - 1) * self.text_per_block + self.skip

    @classmethod
    def from_blocks(cls, lang: str, blocks: Sequence[torch.Tensor], bos: Optional[int] = None) -> "BlockFeed":
        """Text blocks already in memory (all of one length except possibly the last), each led by `bos` if given."""
        import torch

        lead = [] if bos is None else [int(bos)]
        blocks = [torch.as_tensor(lead + [int(i) for i in torch.as_tensor(b).reshape(-1)], dtype=torch.long)
                  if lead else torch.as_tensor(b, dtype=torch.long).reshape(-1) for b in blocks]
        if not blocks or any(len(b) <= len(lead) for b in blocks):
            raise ValueError(f"{lang}: need at least one non-empty block")
        size = len(blocks[0])
        if any(len(b) != size for b in blocks[:-1]) or len(blocks[-1]) > size:
            raise ValueError(f"{lang}: every block but the last must have the same length, the last no longer")
        h = hashlib.sha256()
        for b in blocks:
            h.update(b.numpy().tobytes())
            h.update(b"|")
        return cls(lang, sum(len(b) - len(lead) for b in blocks), size, lambda skip: iter(blocks[skip:]),
                   h.hexdigest()[:16], bos)


def corpus_feed(tokenizer: Any, corpus: str | os.PathLike[str] | TextSource, lang: str, n_tokens: int,
                block_size: int, seed: Optional[int], skip_tokens: int = 0, *, with_bos: bool = True) -> BlockFeed:
    """A BlockFeed over ``token_blocks(...)``, blocks led by the tokenizer's BOS (when it has one and
    `with_bos`); opening at block b re-reads the stream from text token b·(block_size − 1 or 0)."""
    src = corpus if isinstance(corpus, TextSource) else find_source(corpus, lang)
    bos = bos_id(tokenizer) if with_bos else None
    text = block_size - (0 if bos is None else 1)

    def open_at(skip_blocks: int) -> Iterator[torch.Tensor]:
        skip = skip_blocks * text
        if skip >= n_tokens:
            return iter(())
        return token_blocks(tokenizer, src, lang, n_tokens - skip, block_size, seed, skip_tokens + skip, bos)

    fp = f"{src.describe()}|{seed}|{skip_tokens}|{n_tokens}|{block_size}|{bos}"
    if src.path is not None:
        st = src.path.stat()
        fp += f"|{st.st_size}|{st.st_mtime_ns}"
    return BlockFeed(lang, n_tokens, block_size, open_at, hashlib.sha256(fp.encode()).hexdigest()[:16], bos)


# ---- held-out text -------------------------------------------------------------------------------

def heldout_folder(cfg: dict[str, Any]) -> Path:
    """The study's held-out folder ([corpus] heldout, default <corpus path>/heldout)."""
    raw = cfg["corpus"].get("heldout")
    if raw:
        folder = Path(raw)
    elif not str(cfg["corpus"]["path"]).startswith(HF_PREFIX):
        folder = Path(cfg["corpus"]["path"]) / "heldout"
    else:
        raise BadInput("a hub corpus has no held-out folder; set [corpus] heldout to a folder of <lang>.txt files")
    if not folder.is_dir():
        raise BadInput(f"held-out folder {folder} does not exist; create it with one <lang>.txt per language "
                       f"(text not used for identification) or set [corpus] heldout")
    return folder


def heldout_blocks(tokenizer: Any, folder: str | os.PathLike[str], lang: str, n_tokens: int, block_size: int,
                   *, allow_fewer: bool = False, with_bos: bool = True) -> list[torch.Tensor]:
    """The first `n_tokens` text tokens of the language's held-out text in file order, as blocks led by
    the tokenizer's BOS (when it has one and `with_bos`), so the first text token is scored too.

    With ``allow_fewer`` a short file gives all its tokens instead of a BadInput.
    """
    src = find_source(folder, lang)
    if allow_fewer:
        n_tokens = min(n_tokens, count_tokens(tokenizer, src, n_tokens))
        if n_tokens == 0:
            raise BadInput(f"held-out text for {lang!r} ({src.describe()}) is empty; add text to it")
    bos = bos_id(tokenizer) if with_bos else None
    return list(_blocks_from(src, tokenizer, n_tokens, block_size, None, 0, "[corpus] heldout_tokens", bos))
