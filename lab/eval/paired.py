"""Paired per-item results → the evaluate stage's metric rows and its paired_items.json.

Every condition of a language is scored on the same items; `item_vector` puts a condition's
per-item correctness in one fixed order (task name, then doc_id), so two conditions pair item by
item. Accuracy gets a Wilson interval; a difference from baseline gets a paired bootstrap interval
and, per language, an exact McNemar p. The pooled `targets` row is the unweighted mean over target
languages of their paired differences: its interval is a language-stratified paired bootstrap and
its p-value a language-stratified sign-flip permutation test of that same mean (docs/evaluate.md).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from lab.eval.conditions import spillover_name
from lab.eval.harness import TaskRun, align, item_vector
from lab.eval.stats import bootstrap_mean_ci, mcnemar_p, paired_bootstrap_diff_ci, wilson_interval

GENERATIVE = ("generate_until",)
Results = dict[str, dict[str, list[TaskRun]]]  # language → condition → task runs


def stratified_signflip_p(treated: Sequence[float], base: Sequence[float], strata: Sequence[object], *,
                          resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided p of "mean over strata of mean(treated − base) = 0" by sign-flip permutation.

    Under the null the two conditions are exchangeable on each item, so each item's difference keeps
    its size and gets a random sign. The statistic is the same unweighted mean of per-stratum mean
    differences that the stratified bootstrap interval is about. Signs are drawn as binomial counts
    per (stratum, |difference|) group, so the cost does not grow with the number of items.
    p = (1 + #{|T*| ≥ |T|}) / (1 + resamples).
    """
    t, b = np.asarray(treated, dtype=np.float64), np.asarray(base, dtype=np.float64)
    if len(t) != len(b) or len(t) != len(strata) or len(t) == 0:
        raise ValueError("treated, base and strata must be non-empty and of one length")
    d = t - b
    labels = sorted({str(s) for s in strata})
    where = np.asarray([labels.index(str(s)) for s in strata])
    rng = np.random.default_rng(seed)
    observed = 0.0
    draws = np.zeros(resamples)
    for k in range(len(labels)):
        ds = d[where == k]
        observed += ds.mean()
        sizes, counts = np.unique(np.abs(ds[ds != 0]), return_counts=True)
        for size, count in zip(sizes, counts):
            plus = rng.binomial(int(count), 0.5, size=resamples)
            draws += size * (2 * plus - int(count)) / len(ds)
    observed /= len(labels)
    draws /= len(labels)
    hits = int(np.sum(np.abs(draws) >= abs(observed) - 1e-12))
    return float((1 + hits) / (1 + resamples))


def _accuracy_row(lang: str, cond: str, correct: list[float]) -> dict[str, Any]:
    ci = wilson_interval(int(round(sum(correct))), len(correct))
    return dict(name="accuracy", language=lang, condition=cond, value=ci.value, ci_low=ci.low, ci_high=ci.high, n=ci.n)


def summarise(results: Results, targets: list[str], *, resamples: int, seed: int) -> list[dict[str, Any]]:
    """Metric rows from per-item results: results[language][condition] = task runs (baseline included).

    Every non-baseline condition of a language is compared with its baseline; the `targets` rows
    pool the conditions every evaluated target has.
    """
    rows: list[dict[str, Any]] = []
    for lang, by_cond in results.items():
        for cond, runs in by_cond.items():
            rows.append(_accuracy_row(lang, cond, item_vector(runs)[1]))
            gen = [r for r in runs if r.output_type in GENERATIVE]
            for metric in ("exact_match", "f1"):
                vals = [v for r in gen for v in r.values(metric)]
                if not vals:
                    continue
                if metric == "exact_match":  # a proportion: Wilson, like accuracy
                    gci = wilson_interval(int(round(sum(vals))), len(vals))
                else:
                    gci = bootstrap_mean_ci(vals, resamples=resamples, seed=seed)
                rows.append(dict(name=metric, language=lang, condition=cond, value=gci.value, ci_low=gci.low,
                                 ci_high=gci.high, n=gci.n))
        for cond in [c for c in by_cond if c != "baseline"]:
            treated, base = align(by_cond["baseline"], by_cond[cond])
            d = paired_bootstrap_diff_ci(treated, base, resamples=resamples, seed=seed)
            rows.append(dict(name="accuracy_delta", language=lang, condition=cond, value=d.value, ci_low=d.low,
                             ci_high=d.high, n=d.n))
            rows.append(dict(name="mcnemar_p", language=lang, condition=cond, value=mcnemar_p(treated, base), n=d.n))
    evaluated = [t for t in targets if t in results]
    shared = [c for c in (results[evaluated[0]] if evaluated else {}) if c != "baseline"
              and all(c in results[t] for t in evaluated)]
    for cond in shared:
        treated: list[float] = []
        base: list[float] = []
        strata: list[str] = []
        for lang in evaluated:
            tr, ba = align(results[lang]["baseline"], results[lang][cond])
            treated += tr
            base += ba
            strata += [lang] * len(tr)
        if treated:
            d = paired_bootstrap_diff_ci(treated, base, resamples=resamples, seed=seed, strata=strata)
            rows.append(dict(name="accuracy_delta", language="targets", condition=cond, value=d.value, ci_low=d.low,
                             ci_high=d.high, n=d.n))
            p = stratified_signflip_p(treated, base, strata, resamples=max(resamples, 2000), seed=seed)
            rows.append(dict(name="stratified_p", language="targets", condition=cond, value=p, n=d.n))
    return rows


def paired_items(results: Results, targets: list[str], high_resource: list[str],
                 treated: tuple[str, str] = ("intervention", "control")) -> dict[str, Any]:
    """paired_items.json: per-item correctness of every condition the evaluate gate compares.

    {"version": 1, "metric": "acc", "item_keys": {lang: ["task:doc_id", ...]},
     "targets": {T: {"baseline": [...], "intervention": [...], "control": [...]}},
     "high_resource": {T: {H: {"baseline": [...], "intervention": [...]}}}}
    where high_resource[T][H]["intervention"] is H scored with T's intervention on (spillover_T).
    Lists follow item_keys[lang] in every condition. Values are 0/1 correctness; "metric" says which:
    acc, exact_match (every task generative) or acc+exact_match (mixed).
    """
    kinds = {r.output_type in GENERATIVE for by_cond in results.values() for r in by_cond.get("baseline", [])}
    metric = "exact_match" if kinds == {True} else "acc" if kinds <= {False} else "acc+exact_match"
    doc: dict[str, Any] = {"version": 1, "metric": metric, "item_keys": {}, "targets": {}, "high_resource": {}}
    for lang, by_cond in results.items():
        keys, base = item_vector(by_cond["baseline"])
        doc["item_keys"][lang] = keys
        if lang in targets:
            doc["targets"][lang] = {"baseline": base, **{c: align(by_cond["baseline"], by_cond[c])[0]
                                                        for c in treated if c in by_cond}}
    for t in targets:
        doc["high_resource"][t] = {}
        for h in high_resource:
            cond = spillover_name(t)
            if h in results and cond in results[h]:
                keys, base = item_vector(results[h]["baseline"])
                doc["high_resource"][t][h] = {"baseline": base, "intervention": align(results[h]["baseline"],
                                                                                       results[h][cond])[0]}
    return doc
