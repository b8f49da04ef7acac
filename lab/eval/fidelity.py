"""Language fidelity of generated text: which language each continuation is in, and per language and
condition the share that stays in the prompt's language, the share that switches to English and the
share that is degenerate, each paired against the baseline on the same prompts.

Language identification is py3langid (a maintained fork of langid.py): its naive-Bayes model ships
inside the wheel (numpy arrays in an LZMA'd .npz, loaded with allow_pickle=False), it needs no
network, it is deterministic, and it can be restricted to a candidate set. The probe restricts it to
the study's languages plus English, which makes short continuations far more reliable than an open
97-language decision. A continuation with no letter at all is "und" (undetermined).

Items for the statistics are prompts: a prompt's score is the share of its continuations (greedy and
sampled) that meet the criterion, so the sampled continuations of one prompt are never treated as
independent items. CIs are percentile bootstraps over prompts; deltas use the paired bootstrap of
lab.eval.stats (one draw of prompts serves both conditions).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from lab.core.errors import BadInput
from lab.eval.stats import bootstrap_mean_ci, paired_bootstrap_diff_ci

LIBRARY = "py3langid"
UNDETERMINED = "und"
ENGLISH = "en"


def library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(LIBRARY)
    except PackageNotFoundError:
        return "not installed"


def id_label(code: str) -> str:
    """A study language code as the identifier names it ('zh_Hans' → 'zh')."""
    return code.split("_", 1)[0].lower()


@functools.lru_cache(maxsize=1)
def _model() -> tuple[Any, ...]:
    try:
        from py3langid.langid import MODEL_DIR, MODEL_FILE
        from py3langid.modelio import load_model
    except ImportError:
        raise BadInput("the language identifier py3langid is not installed; install neuron-pilot's dependencies "
                       "(pip install -e .) or pip install py3langid") from None
    return tuple(load_model(MODEL_DIR / MODEL_FILE))


def known_labels() -> list[str]:
    """Every language the identifier's model covers (ISO 639-1 codes)."""
    return list(dict.fromkeys(_model()[2]))


class LanguageID:
    """py3langid restricted to `candidates` (study language codes); unknown codes are set aside."""

    def __init__(self, candidates: Iterable[str]) -> None:
        import numpy as np
        from py3langid.langid import LanguageIdentifier

        ptc, pc, classes, nextmove, row, output = _model()
        known = set(classes)
        wanted = list(dict.fromkeys(candidates))
        self.unsupported = [c for c in wanted if id_label(c) not in known]
        self.candidates = [c for c in wanted if id_label(c) in known]
        if not self.candidates:
            raise BadInput(f"the language identifier ({LIBRARY}) knows none of {', '.join(wanted)}; the generation "
                           f"probe cannot measure language fidelity for them")
        self._code = {id_label(c): c for c in self.candidates}
        self._ident = LanguageIdentifier(np.asarray(ptc), np.asarray(pc), classes, nextmove, output,
                                         norm_probs=True, tk_row=row)
        self._ident.set_languages(sorted(self._code))

    def detect(self, text: str) -> tuple[str, float]:
        """(study language code or 'und', confidence 0..1) of one text."""
        if not any(ch.isalpha() for ch in text):
            return UNDETERMINED, 0.0
        label, conf = self._ident.classify(text)
        return self._code.get(label, label), float(conf)


# ---- per-prompt scores and metric rows -----------------------------------------------------------

@dataclass(frozen=True)
class PromptScore:
    """One prompt under one condition: shares over its continuations (greedy and sampled)."""

    in_language: float
    english: float
    degenerate: float
    greedy_text: str


def prompt_score(language: str, detected: Sequence[str], degenerate: Sequence[bool], greedy_text: str) -> PromptScore:
    n = len(detected)
    if n == 0 or n != len(degenerate):
        raise ValueError("a prompt needs one detected language and one degenerate flag per continuation")
    return PromptScore(sum(d == language for d in detected) / n, sum(d == ENGLISH for d in detected) / n,
                       sum(bool(x) for x in degenerate) / n, greedy_text)


# metric name → (PromptScore attribute, whether it is skipped for English prompts)
MEASURES = {"language_fidelity": ("in_language", False), "switch_to_english": ("english", True),
            "degenerate_rate": ("degenerate", False)}


def fidelity_rows(language: str, by_condition: dict[str, list[PromptScore]], *, compared: Sequence[str],
                  resamples: int, seed: int) -> list[dict[str, Any]]:
    """Metric rows of one language: each measure per condition (bootstrap CI over prompts), its paired
    delta vs baseline per compared condition, and the share of prompts whose greedy text changed."""
    rows: list[dict[str, Any]] = []
    for name, (attr, skip_en) in MEASURES.items():
        if skip_en and language == ENGLISH:
            continue  # for English prompts "switching to English" is staying put: fidelity says it
        for cond, scores in by_condition.items():
            ci = bootstrap_mean_ci([getattr(s, attr) for s in scores], resamples=resamples, seed=seed)
            rows.append(dict(name=name, language=language, condition=cond, value=ci.value, ci_low=ci.low,
                             ci_high=ci.high, n=ci.n))
        base = [getattr(s, attr) for s in by_condition["baseline"]]
        for cond in compared:
            treated = [getattr(s, attr) for s in by_condition[cond]]
            d = paired_bootstrap_diff_ci(treated, base, resamples=resamples, seed=seed)
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
    counts: dict[str, int] = {}
    for d in items:
        counts[d] = counts.get(d, 0) + 1
    return {k: v / len(items) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))} if items else {}
