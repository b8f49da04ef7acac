"""Stage `evaluate`: lm-eval tasks per language under baseline, intervention and random control.

Every target and high-resource language is scored three times on the same items: no hooks
(baseline), its identified neurons replaced (intervention), and its random control set replaced
the same way (control). Per language and condition: accuracy with a bootstrap CI; per language and
treated condition: the paired accuracy difference vs baseline with a paired bootstrap CI and an
exact McNemar p; over the targets: the mean gain with a bootstrap CI stratified by language.
Each (language, condition) is checkpointed, so an interrupted stage resumes where it stopped.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any, Optional

import torch

from lab.errors import BadInput
from lab.evaluate import TaskRun, align, make_lm, run_tasks
from lab.interventions import intervene
from lab.models import load_for_stage
from lab.stages import STAGES
from lab.stages.context import StageContext
from lab.stages.intervene import neuron_sets, read_activation_stats, require_test_time
from lab.stats import bootstrap_mean_ci, mcnemar_p, paired_bootstrap_diff_ci
from lab.tasks import TaskRef, evaluated_languages, resolve_tasks, task_config

CONDITIONS = ("baseline", "intervention", "control")
TREATED = ("intervention", "control")
GENERATIVE = ("generate_until",)


def plan_configs(cfg: dict[str, Any]) -> dict[str, list[tuple[TaskRef, dict[str, Any]]]]:
    """language → [(task, lm-eval config)], built before the model loads so bad input fails fast."""
    data_dir = cfg["evaluate"].get("data_dir")
    by_lang: dict[str, list[tuple[TaskRef, dict[str, Any]]]] = {}
    for ref in resolve_tasks(cfg):
        by_lang.setdefault(ref.language, []).append((ref, task_config(ref, data_dir)))
    return by_lang


def skipped_pairs(cfg: dict[str, Any], configs: dict[str, list[tuple[TaskRef, dict[str, Any]]]]) -> list[str]:
    """'family:language' for each evaluated language a task family has no task for."""
    refs = [ref for pairs in configs.values() for ref, _ in pairs]
    families = [e for e in cfg["evaluate"]["tasks"] if not any(r.entry == e and r.name == e for r in refs)]
    have = {(r.entry, r.language) for r in refs}
    return [f"{e}:{lang}" for e in families for lang in evaluated_languages(cfg) if (e, lang) not in have]


def _load_checkpoint(ctx: StageContext, lang: str, cond: str) -> Optional[list[TaskRun]]:
    path = ctx.checkpoint_dir / f"{lang}.{cond}.json"
    if not path.is_file():
        return None
    return [TaskRun.from_json(r) for r in json.loads(path.read_text(encoding="utf-8"))]


def _save_checkpoint(ctx: StageContext, lang: str, cond: str, runs: list[TaskRun]) -> None:
    from lab.artifacts import atomic_write_json

    atomic_write_json(ctx.checkpoint_dir / f"{lang}.{cond}.json", [r.to_json() for r in runs])


def summarise(results: dict[str, dict[str, list[TaskRun]]], targets: list[str], *, resamples: int,
              seed: int) -> list[dict[str, Any]]:
    """Metric rows from per-item results: results[language][condition] = task runs."""
    rows: list[dict[str, Any]] = []
    for lang, by_cond in results.items():
        for cond, runs in by_cond.items():
            correct = [c for r in runs for c in r.correct]
            ci = bootstrap_mean_ci(correct, resamples=resamples, seed=seed)
            rows.append(dict(name="accuracy", language=lang, condition=cond, value=ci.value, ci_low=ci.low,
                             ci_high=ci.high, n=ci.n))
            gen = [r for r in runs if r.output_type in GENERATIVE]
            for metric in ("exact_match", "f1"):
                vals = [v for r in gen for v in r.values(metric)]
                if vals:
                    gci = bootstrap_mean_ci(vals, resamples=resamples, seed=seed)
                    rows.append(dict(name=metric, language=lang, condition=cond, value=gci.value, ci_low=gci.low,
                                     ci_high=gci.high, n=gci.n))
        for cond in TREATED:
            treated, base = align(by_cond["baseline"], by_cond[cond])
            d = paired_bootstrap_diff_ci(treated, base, resamples=resamples, seed=seed)
            rows.append(dict(name="accuracy_delta", language=lang, condition=cond, value=d.value, ci_low=d.low,
                             ci_high=d.high, n=d.n))
            rows.append(dict(name="mcnemar_p", language=lang, condition=cond, value=mcnemar_p(treated, base), n=d.n))
    evaluated_targets = [t for t in targets if t in results]
    for cond in TREATED:
        treated: list[float] = []
        base: list[float] = []
        strata: list[str] = []
        for lang in evaluated_targets:
            t, b = align(results[lang]["baseline"], results[lang][cond])
            treated += t
            base += b
            strata += [lang] * len(t)
        if treated:
            d = paired_bootstrap_diff_ci(treated, base, resamples=resamples, seed=seed, strata=strata)
            rows.append(dict(name="accuracy_delta", language="targets", condition=cond, value=d.value, ci_low=d.low,
                             ci_high=d.high, n=d.n))
            rows.append(dict(name="mcnemar_p", language="targets", condition=cond, value=mcnemar_p(treated, base),
                             n=d.n))
    return rows


def samples_artifact(results: dict[str, dict[str, list[TaskRun]]], cond: str) -> dict[str, Any]:
    return {lang: {r.task: {"output_type": r.output_type, "aggregate": r.aggregate, "samples": r.samples}
                   for r in by_cond[cond]} for lang, by_cond in results.items()}


@STAGES.register("evaluate")
def run(ctx: StageContext) -> None:
    cfg = ctx.cfg
    require_test_time(cfg)
    plan = ctx.read_json("intervene", "intervention.json")
    kind = plan["value"]
    scale = float(plan["scale"] if plan.get("scale") is not None else cfg["intervention"].get("scale", 2.0))
    if not plan.get("check", {}).get("passed", False):
        raise BadInput("the intervene stage's hook check did not pass; re-run intervene before evaluating")
    configs = plan_configs(cfg)
    languages = [lang for lang in evaluated_languages(cfg) if lang in configs]
    skipped = skipped_pairs(cfg, configs)
    identified, control = neuron_sets(ctx)
    stats, stat_langs = read_activation_stats(ctx.artifact_path("identify", "activation_stats.safetensors"))
    sets = {"intervention": identified, "control": control}
    for lang in languages:
        if lang not in identified or lang not in control:
            raise BadInput(f"identify produced no neuron set for {lang}; re-run the identify stage")

    total = len(languages) * len(CONDITIONS)
    ctx.progress(0, total, "runs", "loading model")
    loaded = load_for_stage(ctx)
    lm = make_lm(loaded.model, loaded.tokenizer, int(cfg["evaluate"].get("batch_size", 8)))
    limit = cfg["evaluate"].get("limit")
    on_gpu = loaded.device.type == "cuda"
    seconds = {c: 0.0 for c in CONDITIONS}
    results: dict[str, dict[str, list[TaskRun]]] = {}
    done = 0
    for lang in languages:
        task_cfgs = [c for _, c in configs[lang]]
        results[lang] = {}
        for cond in CONDITIONS:
            label = f"{lang} · {cond} · {', '.join(c['task'] for c in task_cfgs)}"
            ctx.progress(done, total, "runs", label, force=True)
            runs = _load_checkpoint(ctx, lang, cond)
            if runs is None:
                hooks = None if cond == "baseline" else intervene(
                    loaded.model, loaded.adapter, sets[cond][lang], kind, stats=stats, stat_languages=stat_langs,
                    language=lang, scale=scale)
                if on_gpu:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                found = run_tasks(lm, task_cfgs, limit=limit, seed=ctx.seed, hooks=hooks)
                if on_gpu:
                    torch.cuda.synchronize()
                elapsed = time.perf_counter() - t0
                runs = [found[c["task"]] for c in task_cfgs]
                for r in runs:
                    r.seconds = elapsed / len(runs)
                _save_checkpoint(ctx, lang, cond, runs)
            results[lang][cond] = runs
            seconds[cond] += sum(r.seconds for r in runs)
            done += 1
            acc = statistics.fmean(c for r in runs for c in r.correct) if any(r.samples for r in runs) else float("nan")
            ctx.progress(done, total, "runs", f"{label}: accuracy {acc:.3f}", force=True)
            ctx.check_stop()

    rows = summarise(results, list(cfg["languages"]["targets"]), resamples=int(cfg["evaluate"].get("bootstrap", 2000)),
                     seed=ctx.seed)
    rows += [dict(name="compute_seconds", language="", condition=c, value=s) for c, s in seconds.items()]
    if on_gpu:
        rows += [dict(name="gpu_seconds", language="", condition=c, value=s) for c, s in seconds.items()]
    ctx.metrics(rows)
    for cond in CONDITIONS:
        ctx.write_json(f"samples_{cond}.json", samples_artifact(results, cond))
    ctx.write_json("evaluation.json", {
        "intervention": {"kind": kind, "scale": scale if kind == "scale" else None},
        "tasks": {lang: [ref.name for ref, _ in configs[lang]] for lang in languages},
        "skipped": skipped, "limit": limit, "seed": ctx.seed, "device": str(loaded.device),
        "compute_seconds": seconds, "metrics": rows,
    })
    if skipped:
        ctx.log("no task for " + ", ".join(skipped) + " (skipped)", level="warning")
    ctx.log(f"evaluated {len(languages)} languages x {len(CONDITIONS)} conditions "
            f"in {sum(seconds.values()):.1f} s of model time")
