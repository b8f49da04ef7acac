"""The shipped demo assets: corpora, held-out text, demo lm-eval tasks, prompts and the tiny model.

Why: `neuron-pilot demo` and every example study rely on these files; these tests catch a stale or
broken rebuild (leaked sentences, too little text, a task lm-eval cannot load, a model that does not
know its languages).
"""

from __future__ import annotations

from tests.helpers import ROOT_DIR

import hashlib
import importlib.util
import json
import random
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = ROOT_DIR
EXAMPLES = ROOT / "examples"
CORPORA = EXAMPLES / "corpora"
TASKS = EXAMPLES / "tasks"
MODEL = EXAMPLES / "models" / "tiny-polyglot"
LANGS = ["en", "fr", "de", "sw", "hi", "ur"]
SCRIPT_RANGES = {"hi": (0x0900, 0x097F), "ur": (0x0600, 0x06FF)}


def _load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_demo_build_corpora", CORPORA / "build_corpora.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _load_builder()


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in _lines(path)]


def _sentences_by_source(lang: str) -> dict[str, set[str]]:
    """Every sentence the assets hold for ``lang``, keyed by where it lives."""
    split = BUILD.split_sentences
    real_dir, xnli_dir, qa_dir = TASKS / "demo_real", TASKS / "demo_xnli", TASKS / "demo_qa"
    real = [real_dir / f"demo_real_{lang}.test.jsonl"] + sorted(real_dir.glob(f"demo_real_{lang}.train.jsonl"))
    xnli = [xnli_dir / f"demo_xnli_{lang}.test.jsonl"] + sorted(xnli_dir.glob(f"demo_xnli_{lang}.train.jsonl"))
    out = {
        "train": {s for line in _lines(CORPORA / f"{lang}.txt") for s in split(line)},
        "heldout": {s for line in _lines(CORPORA / "heldout" / f"{lang}.txt") for s in split(line)},
        "demo_real": {r["context"] + " " + r["choices"][r["gold"]] for p in real for r in _jsonl(p)},
        "demo_xnli": {s for p in xnli for r in _jsonl(p) for s in (r["premise"], r["hypothesis"])},
        "demo_qa": {s for r in _jsonl(qa_dir / f"demo_qa_{lang}.test.jsonl") for s in split(r["context"])},
    }
    return out


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MODEL)


@pytest.fixture(scope="module")
def model():
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    m = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)
    m.eval()
    return m


@pytest.mark.parametrize("lang", LANGS)
def test_corpora_exist_and_are_utf8_in_the_right_script(lang: str) -> None:
    for path in (CORPORA / f"{lang}.txt", CORPORA / "heldout" / f"{lang}.txt", EXAMPLES / "prompts" / f"{lang}.txt"):
        text = path.read_bytes().decode("utf-8")  # raises on invalid UTF-8
        assert text.strip(), f"{path} is empty"
        assert "\r" not in text
    lines = _lines(CORPORA / f"{lang}.txt")
    assert len(lines) > 300
    assert all(3 <= len(BUILD.split_sentences(line)) <= 6 for line in lines)
    prompts = _lines(EXAMPLES / "prompts" / f"{lang}.txt")
    assert len(prompts) >= 30 and len(set(prompts)) == len(prompts)  # enough for the fidelity intervals
    text = (CORPORA / f"{lang}.txt").read_text(encoding="utf-8")
    letters = [c for c in text if c.isalpha()]
    if lang in SCRIPT_RANGES:
        lo, hi = SCRIPT_RANGES[lang]
        share = sum(lo <= ord(c) <= hi for c in letters) / len(letters)
    else:
        share = sum(ord(c) < 0x250 for c in letters) / len(letters)  # Latin letters
    assert share > 0.98, f"{lang}: only {share:.3f} of letters are in the expected script"


@pytest.mark.parametrize("lang", LANGS)
def test_train_heldout_and_task_sentences_are_disjoint(lang: str) -> None:
    sources = _sentences_by_source(lang)
    names = sorted(sources)
    for i, a in enumerate(names):
        assert sources[a], f"{lang}: no sentences in {a}"
        for b in names[i + 1:]:
            shared = sources[a] & sources[b]
            assert not shared, f"{lang}: {a} and {b} share {len(shared)} sentences, e.g. {sorted(shared)[:2]}"


def test_sentence_split_rejects_an_overlap_when_one_is_planted() -> None:
    """The disjointness check above can fail: a planted duplicate is found by the same splitting."""
    train = {s for line in _lines(CORPORA / "en.txt")[:5] for s in BUILD.split_sentences(line)}
    planted = sorted(train)[0]
    heldout_para = "The first one is new here. " + planted + " Another new sentence ends here."
    assert planted in set(BUILD.split_sentences(heldout_para)) & train


@pytest.mark.parametrize("lang", LANGS)
def test_task_files_have_the_documented_shape(lang: str) -> None:
    real = _jsonl(TASKS / "demo_real" / f"demo_real_{lang}.test.jsonl")
    assert len(real) == 200
    for r in real:
        assert len(r["choices"]) == 2 and r["gold"] in (0, 1)
        real_rest, fake_rest = r["choices"][r["gold"]], r["choices"][1 - r["gold"]]
        assert real_rest != fake_rest and sorted(real_rest) == sorted(fake_rest)  # same words, same final mark
        assert 2 <= len(r["context"].split()) <= 3
    golds = [r["gold"] for r in real]
    assert 0.35 < sum(golds) / len(golds) < 0.65
    xnli = _jsonl(TASKS / "demo_xnli" / f"demo_xnli_{lang}.test.jsonl")
    assert len(xnli) == 150 and sorted({r["label"] for r in xnli}) == [0, 1, 2]
    assert all(set(r) == {"premise", "hypothesis", "label"} for r in xnli)
    qa = _jsonl(TASKS / "demo_qa" / f"demo_qa_{lang}.test.jsonl")
    assert len(qa) == 60
    for r in qa:
        answer, start = r["answers"]["text"][0], r["answers"]["answer_start"][0]
        assert r["context"][start:start + len(answer)] == answer
    if lang == "en":
        assert len(_jsonl(TASKS / "demo_real" / "demo_real_en.train.jsonl")) == 400
        assert len(_jsonl(TASKS / "demo_xnli" / "demo_xnli_en.train.jsonl")) == 450
        assert len(_jsonl(TASKS / "demo_cloze" / "demo_cloze_en.train.jsonl")) == 400


@pytest.mark.parametrize("lang", LANGS)
def test_cloze_distractors_all_follow_the_context_word_in_the_corpus(lang: str) -> None:
    """Each distractor is a word seen after the context's last word in training text, so no choice is
    ruled out by the bigram alone; the gold word is the sentence's own next word."""
    train = [s for line in _lines(CORPORA / f"{lang}.txt") for s in BUILD.split_sentences(line)]
    followers = BUILD.follower_table(train)
    items = _jsonl(TASKS / "demo_cloze" / f"demo_cloze_{lang}.test.jsonl")
    assert len(items) == 300
    for r in items:
        choices, gold = r["choices"], r["gold"]
        assert len(choices) == 4 == len(set(choices)) and 0 <= gold < 4
        assert len(r["context"].split()) >= 2
        last = r["context"].split()[-1]
        assert all(c in followers[last] for k, c in enumerate(choices) if k != gold), r
    counts = [sum(r["gold"] == k for r in items) for k in range(4)]
    assert min(counts) > 40, f"{lang}: gold positions unbalanced {counts}"
    contexts = [r["context"] for r in items]
    assert len(set(contexts)) > 0.9 * len(contexts), f"{lang}: repeated cloze contexts"


def _absolute_task_copy(dst: Path) -> Path:
    """Copy examples/tasks with data_files made absolute (lm-eval resolves them against the CWD)."""
    for src in TASKS.rglob("*"):
        if src.is_dir() or "__pycache__" in src.parts:
            continue
        out = dst / src.relative_to(TASKS)
        out.parent.mkdir(parents=True, exist_ok=True)
        text = src.read_text(encoding="utf-8")
        if src.suffix == ".yaml":
            text = re.sub(r"^(    \w+: )(\S+\.jsonl)$", lambda m: m.group(1) + str(src.parent / m.group(2)),
                          text, flags=re.M)
        out.write_text(text, encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def task_manager(tmp_path_factory: pytest.TempPathFactory):
    from lm_eval.tasks import TaskManager

    root = _absolute_task_copy(tmp_path_factory.mktemp("tasks"))
    return TaskManager(include_path=str(root), include_defaults=False)


def test_every_demo_task_loads_in_lm_eval_with_its_documents(task_manager) -> None:
    loaded = task_manager.load(["demo_real", "demo_xnli", "demo_qa", "demo_cloze"])
    assert set(loaded["groups"]) == {"demo_real", "demo_xnli", "demo_qa", "demo_cloze"}
    expected = {"demo_real": 200, "demo_xnli": 150, "demo_qa": 60, "demo_cloze": 300}
    assert set(loaded["tasks"]) == {f"{g}_{lang}" for g in expected for lang in LANGS}
    for name, task in loaded["tasks"].items():
        group, lang = name.rsplit("_", 1)
        docs = list(task.test_docs())
        assert len(docs) == expected[group], name
        assert task.config.metadata["language"] == lang and task.config.metadata["demo"] is True
        doc = docs[0]
        if group == "demo_xnli":
            choices = task.doc_to_choice(doc)
            assert len(choices) == 3 and all(c.startswith(doc["premise"]) for c in choices)
            assert task.doc_to_target(doc) == doc["label"]
        elif group in ("demo_real", "demo_cloze"):
            assert task.doc_to_text(doc) == doc["context"]
            assert task.doc_to_choice(doc) == doc["choices"]
        else:
            assert doc["question"] in task.doc_to_text(doc)
            assert task.config.output_type == "generate_until"
    for group in ("demo_real", "demo_cloze"):
        en = loaded["tasks"][f"{group}_en"]
        assert en.has_training_docs() and len(list(en.training_docs())) == 400


def test_demo_qa_scoring_is_word_f1_and_exact_match(task_manager) -> None:
    task = task_manager.load(["demo_qa_en"])["tasks"]["demo_qa_en"]
    doc = {"context": "x", "question": "q", "answers": {"text": ["at the university"], "answer_start": [0]}}
    assert task.process_results(doc, [" At the university."]) == {"exact_match": 1.0, "f1": 1.0}
    scores = task.process_results(doc, ["the university library"])
    assert scores["exact_match"] == 0.0 and scores["f1"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert task.process_results(doc, ["nothing"]) == {"exact_match": 0.0, "f1": 0.0}


@pytest.mark.parametrize("lang", LANGS)
def test_token_counts_meet_the_demo_study_budget(tokenizer, lang: str) -> None:
    study = tomllib.loads((EXAMPLES / "studies" / "demo.toml").read_text(encoding="utf-8"))
    budget = study["corpus"]["tokens_per_language"]
    train = sum(len(tokenizer(line, add_special_tokens=False)["input_ids"]) for line in _lines(CORPORA / f"{lang}.txt"))
    held = sum(len(tokenizer(line, add_special_tokens=False)["input_ids"])
               for line in _lines(CORPORA / "heldout" / f"{lang}.txt"))
    assert train >= max(budget, 30_000), f"{lang}: {train} training tokens"
    assert held >= 4096, f"{lang}: {held} held-out tokens"


def test_model_loads_offline_as_a_small_llama(model, tokenizer) -> None:
    assert model.config.model_type == "llama"
    assert type(model).__name__ == "LlamaForCausalLM"
    assert len(tokenizer) == model.config.vocab_size
    size = sum(p.stat().st_size for p in MODEL.rglob("*") if p.is_file())
    assert size <= 20 * 1024 * 1024, f"{size} bytes"
    assert not list(MODEL.rglob("*.bin")) and not list(MODEL.rglob("*.pt")) and not list(MODEL.rglob("*.pkl"))
    assert (MODEL / "model.safetensors").is_file()
    log = json.loads((MODEL / "training_log.json").read_text(encoding="utf-8"))
    for lang in LANGS:
        assert log["corpus_sha256"][f"corpora/{lang}.txt"] == _sha256(CORPORA / f"{lang}.txt"), \
            f"{lang}.txt changed after the model was trained; rerun examples/models/train_tiny.py"
    text = "Maria cleans the window."
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _continuation_logprobs(model, tokenizer, pairs: list[tuple[str, str]]) -> list[float]:
    """Summed log-probability of each continuation after its context, in one right-padded batch
    (causal attention: padding on the right cannot change the scored positions)."""
    import torch

    seqs, starts = [], []
    for context, continuation in pairs:
        starts.append(len(tokenizer(context, add_special_tokens=False)["input_ids"]))
        seqs.append(tokenizer(context + continuation, add_special_tokens=False)["input_ids"])
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
    return [sum(logp[row, i - 1, seq[i]].item() for i in range(start, len(seq)))
            for row, (seq, start) in enumerate(zip(seqs, starts))]


@pytest.mark.parametrize("lang", LANGS)
def test_model_prefers_the_real_sentence_well_above_chance(model, tokenizer, lang: str) -> None:
    items = _jsonl(TASKS / "demo_real" / f"demo_real_{lang}.test.jsonl")
    sample = random.Random(7).sample(items, 40)
    scores = _continuation_logprobs(model, tokenizer, [(r["context"], " " + c) for r in sample for c in r["choices"]])
    right = sum(int(scores[2 * k + r["gold"]] > scores[2 * k + 1 - r["gold"]]) for k, r in enumerate(sample))
    assert right / len(sample) >= 0.7, f"{lang}: demo_real accuracy {right}/{len(sample)}"


@pytest.mark.parametrize("lang", LANGS)
def test_model_is_above_chance_but_below_ceiling_on_the_cloze(model, tokenizer, lang: str) -> None:
    """demo_cloze leaves an intervention room to move accuracy both ways (demo_real is at ceiling)."""
    items = random.Random(7).sample(_jsonl(TASKS / "demo_cloze" / f"demo_cloze_{lang}.test.jsonl"), 60)
    scores = _continuation_logprobs(model, tokenizer, [(r["context"], " " + c) for r in items for c in r["choices"]])
    right = sum(int(max(range(4), key=lambda j: scores[4 * k + j]) == r["gold"]) for k, r in enumerate(items))
    assert 0.3 <= right / len(items) <= 0.9, f"{lang}: demo_cloze accuracy {right}/{len(items)}"


@pytest.mark.parametrize("path", sorted((EXAMPLES / "studies").glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_study_file_validates_offline(path: Path) -> None:
    from lab.study.studyfile import load_study_file

    parsed, cfg, _ = load_study_file(path)
    assert parsed.study.name == path.stem or path.stem == "demo"
    assert Path(cfg["model"]["id"]).is_dir() and Path(cfg["corpus"]["path"]).is_dir()
