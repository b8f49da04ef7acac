"""Language fidelity of generated text: which language each continuation is in, and per language and
condition the share that stays in the prompt's language, the shares that switch to English or to any
other language, and the share that is degenerate, each paired against the baseline on the same prompts.

Language identification is py3langid (a maintained fork of langid.py): its naive-Bayes model ships
inside the wheel, it needs no network and it is deterministic. The probe uses the model's FULL label
set (140 labels in py3langid 0.4) through the library's public API (LanguageIdentifier.from_model_file,
classify, labels). It is never restricted to the study's languages: a restricted identifier has to
name one of the candidates, so a continuation in a third language would count as the nearest study
language and inflate fidelity. Any label other than the prompt's language is a switch. A continuation
with no letter at all is "und" (undetermined; it is degenerate, see lab.eval.generation).

Study language codes are mapped to the identifier's labels by id_label: the base code before a
script or region suffix ('zh_Hans' → 'zh', 'pt-BR' → 'pt'), then LID_ALIASES for codes the
identifier spells differently ('nb' → 'no', 'fil' → 'tl', ...). Detections are reported in the study's
own code when the label is one of the study's languages, else as the identifier's label.

Items for the statistics are prompts: a prompt's score is the share of its continuations (greedy and
sampled) that meet the criterion, so the sampled continuations of one prompt are never treated as
independent items. A share's interval is the Wilson score interval over prompts (p = mean share,
n = prompts): never zero width, and conservative for fractional shares, whose variance is at most
p(1 - p). Deltas use the paired bootstrap of lab.eval.stats (one draw of prompts serves both conditions).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from lab.core.errors import BadInput
from lab.eval.stats import CI_LEVEL, Interval, paired_bootstrap_diff_ci, wilson_interval

LIBRARY = "py3langid"
UNDETERMINED = "und"
ENGLISH = "en"
TOP_OTHER = 3  # how many other languages the export names per language and condition

# study code (lower case, base before any '_'/'-' suffix) → the identifier's label, where they differ
LID_ALIASES = {"nb": "no", "nob": "no", "fil": "tl", "iw": "he", "in": "id", "zsm": "ms", "swh": "sw",
               "pes": "fa", "prs": "fa", "cmn": "zh", "arb": "ar"}


def library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(LIBRARY)
    except PackageNotFoundError:
        return "not installed"


def id_label(code: str) -> str:
    """A study language code as the identifier names it ('zh_Hans' → 'zh', 'nb' → 'no')."""
    base = code.replace("-", "_").split("_", 1)[0].lower()
    return LID_ALIASES.get(base, base)


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    """The shipped model with normalised probabilities (confidence in 0..1), every label enabled."""
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError:
        raise BadInput("the language identifier py3langid is not installed; install neuron-pilot's dependencies "
                       "(pip install -e .) or pip install py3langid") from None
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


class LanguageID:
    """py3langid over its full label set; `study_languages` only decide how detections are named."""

    def __init__(self, study_languages: Iterable[str]) -> None:
        self._ident = _identifier()
        self.labels: list[str] = list(self._ident.labels)
        known = set(self.labels)
        wanted = list(dict.fromkeys(study_languages))
        self.unsupported = [c for c in wanted if id_label(c) not in known]
        self.supported = [c for c in wanted if id_label(c) in known]
        if not self.supported:
            raise BadInput(f"the language identifier ({LIBRARY}) knows none of {', '.join(wanted)}; the generation "
                           f"probe cannot measure language fidelity for them")
        self.codes = {c: id_label(c) for c in self.supported}  # study code → identifier label
        self._code: dict[str, str] = {}
        for code, label in self.codes.items():
            self._code.setdefault(label, code)  # two study codes on one label: the first names it

    def detect(self, text: str) -> tuple[str, float]:
        """(study language code, or the identifier's label for any other language, or 'und';
        confidence 0..1) of one text."""
        if not any(ch.isalpha() for ch in text):
            return UNDETERMINED, 0.0
        label, conf = self._ident.classify(text)
        return self._code.get(label, label), float(conf)

    def describe(self) -> dict[str, Any]:
        """The identifier as continuations.json records it."""
        return {"library": LIBRARY, "version": library_version(), "label_set": "full", "labels": len(self.labels),
                "codes": self.codes}


def same_language(language: str, detected: str) -> bool:
    """Whether a detection is the prompt's language (compared as the identifier names both)."""
    return detected != UNDETERMINED and id_label(detected) == id_label(language)


# ---- per-prompt scores and metric rows -----------------------------------------------------------

@dataclass(frozen=True)
class PromptScore:
    """One prompt under one condition: shares over its continuations (greedy and sampled)."""

    in_language: float
    english: float
    other: float  # detected as a language that is neither the prompt's nor English
    degenerate: float
    greedy_text: str


def prompt_score(language: str, detected: Sequence[str], degenerate: Sequence[bool], greedy_text: str) -> PromptScore:
    n = len(detected)
    if n == 0 or n != len(degenerate):
        raise ValueError("a prompt needs one detected language and one degenerate flag per continuation")
    own = [same_language(language, d) for d in detected]
    english = [not o and same_language(ENGLISH, d) for o, d in zip(own, detected)]
    other = [not o and not e and d != UNDETERMINED for o, e, d in zip(own, english, detected)]
    return PromptScore(sum(own) / n, sum(english) / n, sum(other) / n, sum(bool(x) for x in degenerate) / n,
                       greedy_text)


# metric name → (PromptScore attribute, whether it is skipped for English prompts)
MEASURES = {"language_fidelity": ("in_language", False), "switch_to_english": ("english", True),
            "switch_to_other": ("other", False), "degenerate_rate": ("degenerate", False)}


def share_interval(shares: Sequence[float], *, confidence: float = CI_LEVEL) -> Interval:
    """Wilson interval of a mean share over prompts (n = prompts; see the module docstring)."""
    # successes may be fractional (a mean share times the prompts) when prompts have sampled continuations
    w = wilson_interval(sum(shares), len(shares), confidence=confidence)  # type: ignore[arg-type]
    # at 0 of n the formula's low end is 0 only up to rounding (1e-17): keep value inside its interval
    return Interval(w.value, min(w.low, w.value), max(w.high, w.value), w.n)


def fidelity_rows(language: str, by_condition: dict[str, list[PromptScore]], *, compared: Sequence[str],
                  resamples: int, seed: int, confidence: float = CI_LEVEL) -> list[dict[str, Any]]:
    """Metric rows of one language: each measure per condition (Wilson interval over prompts), its paired
    delta vs baseline per compared condition (bootstrap), both at `confidence`, and the share of prompts
    whose greedy text changed."""
    rows: list[dict[str, Any]] = []
    for name, (attr, skip_en) in MEASURES.items():
        if skip_en and same_language(ENGLISH, language):
            continue  # for English prompts "switching to English" is staying put: fidelity says it
        for cond, scores in by_condition.items():
            ci = share_interval([getattr(s, attr) for s in scores], confidence=confidence)
            rows.append(dict(name=name, language=language, condition=cond, value=ci.value, ci_low=ci.low,
                             ci_high=ci.high, n=ci.n))
        base = [getattr(s, attr) for s in by_condition["baseline"]]
        for cond in compared:
            treated = [getattr(s, attr) for s in by_condition[cond]]
            d = paired_bootstrap_diff_ci(treated, base, resamples=resamples, seed=seed, confidence=confidence)
            rows.append(dict(name=f"{name}_delta", language=language, condition=cond, value=d.value, ci_low=d.low,
                             ci_high=d.high, n=d.n))
    for cond in compared:
        pairs = list(zip(by_condition["baseline"], by_condition[cond]))
        changed = sum(a.greedy_text != b.greedy_text for a, b in pairs)
        rows.append(dict(name="continuation_changed", language=language, condition=cond,
                         value=changed / len(pairs) if pairs else 0.0, n=len(pairs)))
    return rows


def detected_share(detected: Iterable[str]) -> dict[str, float]:
    """{language: share} of a list of detections, largest first."""
    items = list(detected)
    counts = Counter(items)
    return {k: v / len(items) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))} if items else {}


def other_languages(language: str, detected: Iterable[str]) -> dict[str, int]:
    """{detected language: continuations} of every language other than the prompt's (English included,
    'und' left out: it is no language), largest first."""
    counts = Counter(d for d in detected if d != UNDETERMINED and not same_language(language, d))
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
