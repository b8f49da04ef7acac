"""Build every shipped demo text asset from the hand-written grammars in ``grammar/``.

Why this exists: the demo study needs per-language text a tiny model can learn, held-out text for
perplexity checks, and lm-eval tasks, all without any network access and all reproducible. One
seeded run of this script samples the grammars and writes (relative to ``examples/``):

- ``corpora/<lang>.txt``            training / identification corpus, one paragraph per line
- ``corpora/heldout/<lang>.txt``    held-out paragraphs (perplexity checks only)
- ``tasks/demo_real/``              "which continuation is the real sentence" (multiple choice)
- ``tasks/demo_xnli/``              XNLI-shaped entailment task (premise, hypothesis, label)
- ``tasks/demo_qa/``                small extractive QA task, generative (exact_match, f1)
- ``tasks/demo_cloze/``             4-way next-word cloze whose distractors also follow the previous
                                    word in the corpus (accuracy well below 1 by design)
- ``prompts/<lang>.txt``            the grammar's 24 generation-probe openings

Within a language every sentence is used at most once across ALL of these outputs, so training text
never leaks into held-out text or task items. Run: ``python examples/corpora/build_corpora.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import sys
import unicodedata
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[1]
GRAMMAR_DIR = EXAMPLES / "corpora" / "grammar"
LANGS = ["en", "fr", "de", "sw", "hi", "ur"]
SEED = 20261128

# Sizes (sentences or items per language).  TRAIN_SENTENCES is sized so every language has
# >= 30,000 tokens with the shipped tokenizer (checked by examples/models/train_tiny.py and the tests).
TRAIN_SENTENCES = 3400
HELDOUT_SENTENCES = 600
REAL_TEST, REAL_TRAIN_EN = 200, 400
XNLI_TEST, XNLI_TRAIN_EN = 150, 450
QA_TEST = 60
CLOZE_TEST, CLOZE_TRAIN_EN = 200, 400
# Test items drawn after the training split (so items 1-200 and the training split stay as they were):
# 300 test items per language let the demo's evaluate gate resolve its criteria (docs/statistics.md).
CLOZE_TEST_EXTRA = 100

# Words that label the QA prompt in each language (written for this demo).
QA_LABELS = {
    "en": ("Context", "Question", "Answer"),
    "fr": ("Contexte", "Question", "Réponse"),
    "de": ("Kontext", "Frage", "Antwort"),
    "sw": ("Muktadha", "Swali", "Jibu"),
    "hi": ("संदर्भ", "प्रश्न", "उत्तर"),
    "ur": ("متن", "سوال", "جواب"),
}

_SENT_END = re.compile(r"(?<=[.!?।۔؟])\s+")


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph back into sentences (the inverse of how paragraphs are joined here)."""
    return [s for s in _SENT_END.split(paragraph.strip()) if s]


def load_grammar(lang: str) -> ModuleType:
    """Import ``grammar/<lang>.py`` under a private name (``en``/``de`` are too generic to import)."""
    path = GRAMMAR_DIR / f"{lang}.py"
    if not path.is_file():
        raise SystemExit(f"missing grammar {path}; every demo language needs one (see grammar/README.md)")
    spec = importlib.util.spec_from_file_location(f"_demo_grammar_{lang}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lang_rng(lang: str, purpose: str) -> random.Random:
    """A separate, stable random stream per language and purpose."""
    offset = LANGS.index(lang) * 100 + ["sentences", "paragraphs", "real", "nli", "qa", "cloze"].index(purpose)
    return random.Random(SEED + offset)


class SentencePool:
    """Hands out grammar sentences never handed out before (for this language)."""

    def __init__(self, grammar: ModuleType, rng: random.Random, used: set[str]) -> None:
        self.grammar, self.rng, self.used = grammar, rng, used

    def take(self, n: int) -> list[str]:
        out: list[str] = []
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > 200 * n + 10_000:
                raise SystemExit(f"{self.grammar.LANG}: grammar gave only {len(out)} new sentences of {n}")
            s = " ".join(self.grammar.sentence(self.rng).split())
            if s in self.used or split_sentences(s) != [s]:
                continue
            self.used.add(s)
            out.append(s)
        return out


def paragraphs(sentences: list[str], rng: random.Random) -> list[str]:
    """Join 3-6 consecutive sentences per line (the last lines too: sizes are evened out)."""
    sizes: list[int] = []
    while sum(sizes) < len(sentences):
        sizes.append(rng.randint(3, 6))
    sizes[-1] -= sum(sizes) - len(sentences)
    j = len(sizes) - 2
    while sizes[-1] < 3 and j >= 0:  # borrow from earlier lines that can spare a sentence
        if sizes[j] > 3:
            sizes[j] -= 1
            sizes[-1] += 1
        else:
            j -= 1
    lines, i = [], 0
    for k in sizes:
        lines.append(" ".join(sentences[i:i + k]))
        i += k
    return lines


def _split_final_punct(words: list[str]) -> tuple[list[str], str]:
    """Separate the sentence-final punctuation so shuffling cannot move it (a too-easy cue)."""
    words = list(words)
    if words and all(unicodedata.category(c).startswith("P") for c in words[-1]):
        return words[:-1], " " + words[-1]
    last = words[-1]
    cut = len(last)
    while cut > 0 and unicodedata.category(last[cut - 1]).startswith("P"):
        cut -= 1
    if cut == 0:
        return words, ""
    words[-1] = last[:cut]
    return words, last[cut:]


def real_item(sentence: str, rng: random.Random) -> dict | None:
    """Context = first 2-3 words; choices = [real rest, same words shuffled] in random order."""
    words = sentence.split()
    k = rng.choice([2, 3])
    rest, punct = _split_final_punct(words[k:])
    if len(rest) < 3:
        return None
    for _ in range(20):
        wrong = rest[:]
        rng.shuffle(wrong)
        if wrong != rest:
            break
    else:
        return None
    real = " ".join(rest) + punct
    fake = " ".join(wrong) + punct
    gold = rng.randrange(2)
    choices = [real, fake] if gold == 0 else [fake, real]
    return {"context": " ".join(words[:k]), "choices": choices, "gold": gold}


def real_items(pool: SentencePool, rng: random.Random, n: int) -> list[dict]:
    items: list[dict] = []
    while len(items) < n:
        for s in pool.take(n - len(items)):
            item = real_item(s, rng)
            if item is not None:
                items.append(item)
    return items


def follower_table(sentences: list[str]) -> dict[str, set[str]]:
    """word → the words seen right after it in these sentences (final punctuation split off)."""
    table: dict[str, set[str]] = {}
    for s in sentences:
        words, _ = _split_final_punct(s.split())
        for a, b in zip(words, words[1:]):
            table.setdefault(a, set()).add(b)
    return table


def cloze_item(sentence: str, followers: dict[str, set[str]], rng: random.Random) -> dict | None:
    """Context = the sentence up to word k (k >= 2); choices = word k and three other words that also
    follow word k-1 somewhere in the training corpus, so a choice is never ruled out by the bigram
    alone and several may be grammatical: the model must know which continuation is likeliest."""
    words, _ = _split_final_punct(sentence.split())
    spots = [k for k in range(2, len(words)) if len(followers.get(words[k - 1], set()) - {words[k]}) >= 3]
    if not spots:
        return None
    k = rng.choice(spots)
    choices = rng.sample(sorted(followers[words[k - 1]] - {words[k]}), 3) + [words[k]]
    rng.shuffle(choices)
    return {"context": " ".join(words[:k]), "choices": choices, "gold": choices.index(words[k])}


def cloze_items(pool: SentencePool, followers: dict[str, set[str]], rng: random.Random, n: int) -> list[dict]:
    items: list[dict] = []
    while len(items) < n:
        for s in pool.take(n - len(items)):
            item = cloze_item(s, followers, rng)
            if item is not None:
                items.append(item)
    return items


def nli_items(grammar: ModuleType, rng: random.Random, used: set[str], n: int) -> list[dict]:
    """Label-balanced NLI items whose premise and hypothesis are new sentences."""
    quota = {label: n // 3 + (1 if label < n % 3 else 0) for label in range(3)}
    items: list[dict] = []
    tries = 0
    while len(items) < n:
        tries += 1
        if tries > 500 * n:
            raise SystemExit(f"{grammar.LANG}: nli() gave only {len(items)} new items of {n}")
        premise, hypothesis, label = grammar.nli(rng)
        premise, hypothesis = " ".join(premise.split()), " ".join(hypothesis.split())
        if quota[label] == 0 or premise == hypothesis or premise in used or hypothesis in used:
            continue
        if split_sentences(premise) != [premise] or split_sentences(hypothesis) != [hypothesis]:
            continue
        used.update((premise, hypothesis))
        quota[label] -= 1
        items.append({"premise": premise, "hypothesis": hypothesis, "label": int(label)})
    return items


def qa_items(grammar: ModuleType, rng: random.Random, used: set[str], n: int) -> list[dict]:
    """QA items whose context sentences are all new; answers shaped like SQuAD/XQuAD."""
    items: list[dict] = []
    tries = 0
    while len(items) < n:
        tries += 1
        if tries > 500 * n:
            raise SystemExit(f"{grammar.LANG}: qa() gave only {len(items)} new items of {n}")
        context, question, answer = grammar.qa(rng)
        context = " ".join(context.split())
        sentences = split_sentences(context)
        if any(s in used for s in sentences) or len(set(sentences)) != len(sentences):
            continue
        start = context.find(answer)
        if start < 0:
            raise SystemExit(f"{grammar.LANG}: qa() answer {answer!r} is not in its context")
        used.update(sentences)
        items.append({"context": context, "question": question,
                      "answers": {"text": [answer], "answer_start": [start]}})
    return items


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------

def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    write_lines(path, [json.dumps(r, ensure_ascii=False) for r in rows])


def _q(s: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(s, ensure_ascii=False)


def _meta(lang: str) -> str:
    return f"metadata:\n  version: 1.0\n  language: {lang}\n  demo: true\n"


def _data_files(name: str, splits: list[str]) -> str:
    lines = ["dataset_path: json", "dataset_kwargs:", "  data_files:"]
    lines += [f"    {split}: {name}.{split}.jsonl" for split in splits]
    return "\n".join(lines) + "\n"


def _splits(name: str, has_train: bool) -> str:
    out = _data_files(name, ["train", "test"] if has_train else ["test"])
    if has_train:
        out += "training_split: train\n"
    return out + "test_split: test\n"


HEADER = "# Demo task generated by examples/corpora/build_corpora.py from the neuron-pilot demo grammars.\n" \
         "# data_files are relative to this folder; neuron-pilot resolves them to absolute paths at run time.\n"


def choice_yaml(name: str, lang: str, has_train: bool) -> str:
    """A multiple-choice task over {context, choices, gold} rows (demo_real, demo_cloze)."""
    return (HEADER + f"task: {name}\n" + _splits(name, has_train) +
            "output_type: multiple_choice\n"
            'doc_to_text: "{{context}}"\n'
            'doc_to_choice: choices\n'
            'doc_to_target: gold\n'
            "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n" + _meta(lang))


def xnli_yaml(lang: str, words: dict[str, str], has_train: bool) -> str:
    name = f"demo_xnli_{lang}"
    right = words["right"]
    parts = [f'premise+", {right}? {words[key]}, "+hypothesis' for key in ("yes", "also", "no")]
    choice = "{{[" + ",".join(parts) + "]}}"
    return (HEADER + f"task: {name}\n" + _splits(name, has_train) +
            "output_type: multiple_choice\n"
            "doc_to_text: \"\"\n"
            f"doc_to_choice: {_q(choice)}\n"
            "doc_to_target: label\n"
            "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n" + _meta(lang))


def qa_yaml(lang: str) -> str:
    name = f"demo_qa_{lang}"
    c, q, a = QA_LABELS[lang]
    text = f"{c}: {{{{context}}}}\n{q}: {{{{question}}}}\n{a}:"
    return (HEADER + f"task: {name}\n" + _splits(name, False) +
            "output_type: generate_until\n"
            f"doc_to_text: {_q(text)}\n"
            "doc_to_target: \"{{answers.text[0]}}\"\n"
            "target_delimiter: \" \"\n"
            "process_results: !function utils.process_results\n"
            "generation_kwargs:\n  until:\n    - \"\\n\"\n  max_gen_toks: 16\n  do_sample: false\n"
            "metric_list:\n"
            "  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
            "  - metric: f1\n    aggregation: mean\n    higher_is_better: true\n" + _meta(lang))


def group_yaml(group: str, metrics: list[str]) -> str:
    tasks = "".join(f"  - {group}_{lang}\n" for lang in LANGS)
    agg = "".join(f"  - metric: {m}\n    aggregation: mean\n    weight_by_size: true\n" for m in metrics)
    return (f"# Demo task group generated by examples/corpora/build_corpora.py.\ngroup: {group}\ntask:\n{tasks}"
            f"aggregate_metric_list:\n{agg}metadata:\n  version: 1.0\n  demo: true\n")


QA_UTILS = '''"""Scoring for the demo_qa tasks (generated by examples/corpora/build_corpora.py).

SQuAD-style exact match and word-overlap F1, with a language-neutral normalisation (lower case,
Unicode punctuation removed, whitespace collapsed) because the demo covers six languages and scripts.
"""

from __future__ import annotations

import unicodedata
from collections import Counter


def normalize(text: str) -> str:
    """Lower-case, drop punctuation (any Unicode P* category), collapse whitespace."""
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.lower())
    return " ".join(kept.split())


def exact_match(reference: str, prediction: str) -> float:
    return float(normalize(reference) == normalize(prediction))


def f1(reference: str, prediction: str) -> float:
    """Harmonic mean of word precision and recall over the normalised texts."""
    ref, pred = normalize(reference).split(), normalize(prediction).split()
    if not ref or not pred:
        return float(ref == pred)
    common = sum((Counter(ref) & Counter(pred)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """Best score over the reference answers for the model's one generation."""
    prediction = results[0]
    refs = doc["answers"]["text"]
    return {"exact_match": max(exact_match(r, prediction) for r in refs),
            "f1": max(f1(r, prediction) for r in refs)}
'''


def build_language(lang: str, out: Path) -> dict[str, int]:
    """Sample one language's grammar into all of its outputs; returns the counts written."""
    g = load_grammar(lang)
    if g.LANG != lang:
        raise SystemExit(f"grammar/{lang}.py says LANG={g.LANG!r}")
    used: set[str] = set()
    pool = SentencePool(g, lang_rng(lang, "sentences"), used)
    para_rng = lang_rng(lang, "paragraphs")
    train = pool.take(TRAIN_SENTENCES)
    heldout = pool.take(HELDOUT_SENTENCES)
    write_lines(out / "corpora" / f"{lang}.txt", paragraphs(train, para_rng))
    write_lines(out / "corpora" / "heldout" / f"{lang}.txt", paragraphs(heldout, para_rng))

    real_rng = lang_rng(lang, "real")
    real_test = real_items(pool, real_rng, REAL_TEST)
    real_dir = out / "tasks" / "demo_real"
    write_jsonl(real_dir / f"demo_real_{lang}.test.jsonl", real_test)
    counts = {"train_sentences": len(train), "heldout_sentences": len(heldout), "real_test": len(real_test)}
    if lang == "en":
        real_train = real_items(pool, real_rng, REAL_TRAIN_EN)
        write_jsonl(real_dir / f"demo_real_{lang}.train.jsonl", real_train)
        counts["real_train"] = len(real_train)
    (real_dir / f"demo_real_{lang}.yaml").write_text(choice_yaml(f"demo_real_{lang}", lang, lang == "en"),
                                                     encoding="utf-8")

    nli_rng = lang_rng(lang, "nli")
    xnli_dir = out / "tasks" / "demo_xnli"
    xnli_test = nli_items(g, nli_rng, used, XNLI_TEST)
    write_jsonl(xnli_dir / f"demo_xnli_{lang}.test.jsonl", xnli_test)
    counts["xnli_test"] = len(xnli_test)
    if lang == "en":
        xnli_train = nli_items(g, nli_rng, used, XNLI_TRAIN_EN)
        write_jsonl(xnli_dir / f"demo_xnli_{lang}.train.jsonl", xnli_train)
        counts["xnli_train"] = len(xnli_train)
    (xnli_dir / f"demo_xnli_{lang}.yaml").write_text(xnli_yaml(lang, g.XNLI_WORDS, lang == "en"),
                                                     encoding="utf-8")

    qa_dir = out / "tasks" / "demo_qa"
    qa_test = qa_items(g, lang_rng(lang, "qa"), used, QA_TEST)
    write_jsonl(qa_dir / f"demo_qa_{lang}.test.jsonl", qa_test)
    (qa_dir / f"demo_qa_{lang}.yaml").write_text(qa_yaml(lang), encoding="utf-8")
    counts["qa_test"] = len(qa_test)

    cloze_rng = lang_rng(lang, "cloze")
    followers = follower_table(train)
    cloze_dir = out / "tasks" / "demo_cloze"
    cloze_test = cloze_items(pool, followers, cloze_rng, CLOZE_TEST)
    if lang == "en":
        cloze_train = cloze_items(pool, followers, cloze_rng, CLOZE_TRAIN_EN)
        write_jsonl(cloze_dir / f"demo_cloze_{lang}.train.jsonl", cloze_train)
        counts["cloze_train"] = len(cloze_train)
    cloze_test += cloze_items(pool, followers, cloze_rng, CLOZE_TEST_EXTRA)
    write_jsonl(cloze_dir / f"demo_cloze_{lang}.test.jsonl", cloze_test)
    counts["cloze_test"] = len(cloze_test)
    (cloze_dir / f"demo_cloze_{lang}.yaml").write_text(choice_yaml(f"demo_cloze_{lang}", lang, lang == "en"),
                                                       encoding="utf-8")

    if len(g.PROMPTS) != 24:
        raise SystemExit(f"grammar/{lang}.py has {len(g.PROMPTS)} PROMPTS; expected 24")
    write_lines(out / "prompts" / f"{lang}.txt", [" ".join(p.split()) for p in g.PROMPTS])
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EXAMPLES,
                        help="folder that receives corpora/, tasks/ and prompts/ (default: examples/)")
    parser.add_argument("--langs", nargs="+", default=LANGS, choices=LANGS)
    args = parser.parse_args(argv)
    for lang in args.langs:
        counts = build_language(lang, args.out)
        print(lang, " ".join(f"{k}={v}" for k, v in counts.items()))
    tasks = args.out / "tasks"
    (tasks / "demo_real" / "demo_real.yaml").write_text(group_yaml("demo_real", ["acc"]), encoding="utf-8")
    (tasks / "demo_cloze" / "demo_cloze.yaml").write_text(group_yaml("demo_cloze", ["acc"]), encoding="utf-8")
    (tasks / "demo_xnli" / "demo_xnli.yaml").write_text(group_yaml("demo_xnli", ["acc"]), encoding="utf-8")
    (tasks / "demo_qa" / "demo_qa.yaml").write_text(group_yaml("demo_qa", ["exact_match", "f1"]),
                                                    encoding="utf-8")
    (tasks / "demo_qa" / "utils.py").write_text(QA_UTILS, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
