"""The corpus feed: exact token budgets, deterministic order, disjoint samples, clear bad-input errors."""

from __future__ import annotations

import json
import random
from array import array
from pathlib import Path

import pytest
import torch

from lab.inputs.corpus import (BlockFeed, check_budget, corpus_feed, find_source, heldout_blocks, heldout_folder, line_index,
                        parse_hub_spec, token_blocks)
from lab.core.errors import BadInput


@pytest.fixture(scope="module")
def tok(tiny_llama_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


@pytest.fixture
def varied(tmp_path: Path) -> Path:
    """A corpus whose lines all differ, so the order is observable."""
    words = "the cat sat on a mat and dog ran in park with red ball".split()
    rng = random.Random(5)
    lines = [" ".join(rng.choice(words) for _ in range(4 + i % 7)) + f" {i}" for i in range(300)]
    (tmp_path / "en.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def stream_ids(tok, lines: list[str]) -> list[int]:
    out: list[int] = []
    for line in lines:
        out.extend(tok(line + "\n", add_special_tokens=False)["input_ids"])
    return out


def test_blocks_are_the_seeded_shuffle_of_the_documents_cut_exactly(tok, varied: Path) -> None:
    lines = (varied / "en.txt").read_text(encoding="utf-8").splitlines()
    order = list(range(len(lines)))
    random.Random("7/en").shuffle(order)
    expected = stream_ids(tok, [lines[i] for i in order])
    blocks = list(token_blocks(tok, varied, "en", 1000, 64, seed=7))
    assert [len(b) for b in blocks] == [64] * 15 + [40]  # exactly 1000 tokens, the last block shorter
    assert torch.cat(blocks).tolist() == expected[:1000]
    assert all(b.dtype == torch.long for b in blocks)


def test_order_is_deterministic_per_seed(tok, varied: Path) -> None:
    a = torch.cat(list(token_blocks(tok, varied, "en", 500, 50, seed=1)))
    b = torch.cat(list(token_blocks(tok, varied, "en", 500, 50, seed=1)))
    c = torch.cat(list(token_blocks(tok, varied, "en", 500, 50, seed=2)))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_skip_tokens_gives_disjoint_adjacent_samples(tok, varied: Path) -> None:
    whole = torch.cat(list(token_blocks(tok, varied, "en", 900, 64, seed=3)))
    first = torch.cat(list(token_blocks(tok, varied, "en", 448, 64, seed=3)))
    second = torch.cat(list(token_blocks(tok, varied, "en", 452, 64, seed=3, skip_tokens=448)))
    assert torch.equal(torch.cat([first, second]), whole)


def test_feed_reopens_at_any_block(tok, varied: Path) -> None:
    feed = corpus_feed(tok, varied, "en", 700, 64, seed=4)  # the BOS + 63 text tokens per block
    blocks = list(feed.open(0))
    assert feed.bos == tok.bos_token_id is not None and feed.text_per_block == 63
    assert feed.n_blocks == len(blocks) == 12 and feed.last_len == 700 - 11 * 63 + 1 == len(blocks[-1])
    assert all(int(b[0]) == feed.bos for b in blocks) and sum(len(b) - 1 for b in blocks) == 700
    assert torch.equal(torch.cat([b[1:] for b in blocks]), torch.cat(list(token_blocks(tok, varied, "en", 700, 64, 4))))
    for skip in (1, 5, 11, 12):
        again = list(feed.open(skip))
        assert len(again) == len(blocks) - skip
        assert all(torch.equal(x, y) for x, y in zip(again, blocks[skip:]))


def test_feed_from_memory_blocks_checks_their_shape() -> None:
    feed = BlockFeed.from_blocks("xx", [torch.arange(8), torch.arange(8), torch.arange(3)])
    assert (feed.n_tokens, feed.block_size, feed.n_blocks, feed.last_len, feed.skip) == (19, 8, 3, 3, 0)
    assert [len(b) for b in feed.open(1)] == [8, 3]
    led = BlockFeed.from_blocks("xx", [torch.arange(8), torch.arange(8), torch.arange(3)], bos=99)
    assert (led.n_tokens, led.block_size, led.n_blocks, led.last_len, led.skip) == (19, 9, 3, 4, 1)
    assert [b.tolist() for b in led.open(2)] == [[99, 0, 1, 2]]
    with pytest.raises(ValueError):
        BlockFeed.from_blocks("xx", [torch.arange(3), torch.arange(8)])


def test_blocks_with_a_bos_hold_the_same_stream_one_token_shorter(tok, varied: Path) -> None:
    plain = torch.cat(list(token_blocks(tok, varied, "en", 500, 50, seed=2)))
    led = list(token_blocks(tok, varied, "en", 500, 50, seed=2, bos=7))
    assert [len(b) for b in led] == [50] * 10 + [500 - 10 * 49 + 1]  # 49 text tokens after each BOS
    assert all(int(b[0]) == 7 for b in led) and torch.equal(torch.cat([b[1:] for b in led]), plain)
    with pytest.raises(ValueError):
        list(token_blocks(tok, varied, "en", 10, 1, seed=2, bos=7))  # no room for text after the BOS
    assert corpus_feed(tok, varied, "en", 500, 50, seed=2, with_bos=False).bos is None


def test_too_small_corpus_names_the_language_and_its_token_count(tok, varied: Path) -> None:
    total = len(stream_ids(tok, (varied / "en.txt").read_text(encoding="utf-8").splitlines()))
    with pytest.raises(BadInput, match=rf"'en'.*has only {total} tokens.*{total + 1} are needed") as exc:
        list(token_blocks(tok, varied, "en", total + 1, 64, seed=0))
    assert "tokens_per_language" in str(exc.value)
    with pytest.raises(BadInput, match=rf"has only {total} tokens"):
        check_budget(tok, varied, ["en"], total + 1)
    check_budget(tok, varied, ["en"], total)  # exactly enough is fine
    assert sum(len(b) for b in token_blocks(tok, varied, "en", total, 64, seed=0)) == total


def test_non_utf8_is_refused_with_file_line_and_fix(tok, tmp_path: Path) -> None:
    (tmp_path / "fr.txt").write_bytes("une ligne\n".encode() + "caf\xe9 cr\xe8me\n".encode("latin-1"))
    with pytest.raises(BadInput, match=r"fr\.txt: line 2 is not valid UTF-8.*re-save the file as UTF-8"):
        list(token_blocks(tok, tmp_path, "fr", 10, 8, seed=0))


def test_jsonl_text_field_and_its_errors(tok, tmp_path: Path) -> None:
    docs = ["le chat dort", "", "le chien court"]
    (tmp_path / "fr.jsonl").write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(docs)),
                                       encoding="utf-8")
    src = find_source(tmp_path, "fr")
    assert src.kind == "jsonl" and len(line_index(src)) == 2  # the empty document is not indexed
    n = len(stream_ids(tok, ["le chat dort", "le chien court"]))
    got = torch.cat(list(token_blocks(tok, tmp_path, "fr", n, 4, seed=None)))
    assert got.tolist() == stream_ids(tok, ["le chat dort", "le chien court"])
    (tmp_path / "fr.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(BadInput, match=r"line 2 has no string field \"text\""):
        list(token_blocks(tok, tmp_path, "fr", 2, 4, seed=0))
    (tmp_path / "fr.jsonl").write_text('{"text": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(BadInput, match=r"line 2 is not valid JSON"):
        list(token_blocks(tok, tmp_path, "fr", 2, 4, seed=0))


def test_special_tokens_in_the_text_are_never_counted(tok, tmp_path: Path) -> None:
    (tmp_path / "en.txt").write_text("the cat </s> sat <pad> on the mat <s>\n" * 20, encoding="utf-8")
    ids = torch.cat(list(token_blocks(tok, tmp_path, "en", 60, 16, seed=0)))
    assert len(ids) == 60
    assert not set(ids.tolist()) & set(tok.all_special_ids)


def test_missing_language_and_folder(tok, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"no text for 'sw'; add sw\.txt"):
        find_source(tmp_path, "sw")
    with pytest.raises(BadInput, match=r"does not exist"):
        find_source(tmp_path / "nope", "sw")


def test_line_index_holds_offsets_not_text(varied: Path) -> None:
    idx = line_index(find_source(varied, "en"))
    assert isinstance(idx, array) and idx.typecode == "q" and len(idx) == 300
    raw = (varied / "en.txt").read_bytes()
    assert raw[idx[1]:].split(b"\n", 1)[0].decode().endswith(" 1")


def test_heldout_is_read_in_file_order(tok, tiny_corpus_dir: Path) -> None:
    from tests.helpers import LANG_TEXT

    folder = heldout_folder({"corpus": {"path": str(tiny_corpus_dir), "heldout": None}})
    assert folder == tiny_corpus_dir / "heldout"
    blocks = heldout_blocks(tok, folder, "sw", 100, 32)  # the BOS + 31 text tokens per block
    assert [len(b) for b in blocks] == [32, 32, 32, 8] and all(int(b[0]) == tok.bos_token_id for b in blocks)
    assert torch.cat([b[1:] for b in blocks]).tolist() == stream_ids(tok, [LANG_TEXT["sw"]] * 40)[:100]
    raw = heldout_blocks(tok, folder, "sw", 100, 32, with_bos=False)
    assert [len(b) for b in raw] == [32, 32, 32, 4]
    with pytest.raises(BadInput, match="heldout_tokens"):
        heldout_blocks(tok, folder, "sw", 10**6, 32)
    short = heldout_blocks(tok, folder, "sw", 10**6, 32, allow_fewer=True)
    assert sum(len(b) - 1 for b in short) == len(stream_ids(tok, [LANG_TEXT["sw"]] * 40))
    with pytest.raises(BadInput, match="does not exist"):
        heldout_folder({"corpus": {"path": str(tiny_corpus_dir), "heldout": str(tiny_corpus_dir / "none")}})


def test_hub_spec_parsing() -> None:
    s = parse_hub_spec("hf:wikimedia/wikipedia:20231101.{lang}", "sw")
    assert (s.name, s.config, s.split) == ("wikimedia/wikipedia", "20231101.sw", "train")
    s = parse_hub_spec("hf:facebook/flores@dev", "ur")
    assert (s.name, s.config, s.split) == ("facebook/flores", "ur", "dev")
    s = parse_hub_spec("hf:someone/{lang}-news", "hi")
    assert (s.name, s.config) == ("someone/hi-news", None)
    with pytest.raises(BadInput, match="hf:DATASET"):
        parse_hub_spec("hf:", "sw")


def test_hub_dataset_offline_is_a_clear_bad_input(tok, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(BadInput, match=r"cannot stream hub dataset wikimedia/wikipedia \(config 20231101\.sw\).*"
                                       r"offline.*save the text as sw\.txt"):
        list(token_blocks(tok, "hf:wikimedia/wikipedia:20231101.{lang}", "sw", 100, 32, seed=0))
