"""SQuAD-style exact match and F1 for lm-eval's XQuAD tasks when their own scorer cannot load.

lm-eval 0.4.13's `xquad/utils.py` imports `transformers.data.metrics.squad_metrics`, which
transformers 5 no longer has, so every xquad_* task fails to load. neuron-pilot then scores XQuAD with
this module instead: the SQuAD v1.1 definition those functions implement (lower case, ASCII
punctuation removed, English articles removed, whitespace collapsed; F1 over whitespace words; an
empty answer scores 1 only against an empty reference), against the first reference answer, as
lm-eval's `process_results_qa` does. So the numbers are the ones lm-eval would report with an older
transformers. Everything else of the task (prompt, generation settings, data) is lm-eval's own.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact(reference: str, prediction: str) -> int:
    return int(normalize(reference) == normalize(prediction))


def f1(reference: str, prediction: str) -> float:
    ref, pred = normalize(reference).split(), normalize(prediction).split()
    if not ref or not pred:
        return float(ref == pred)
    same = sum((Counter(ref) & Counter(pred)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def process_results_xquad(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """lm-eval `process_results` for xquad_*: scores the one generation against the first answer."""
    reference = doc["answers"]["text"][0]
    return {"f1": f1(reference, results[0]), "exact_match": float(exact(reference, results[0]))}


# lm-eval task folder → the process_results used when the folder's own code cannot be imported
REPLACEMENT_SCORERS = {"xquad": process_results_xquad}
