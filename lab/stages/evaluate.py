"""Stage `evaluate`: lm-eval tasks per language under baseline, intervention and random control.

With [intervention] kind = "finetune" the conditions are models, not hooks: baseline (untouched),
intervention (ft_neurons), control (ft_random) and ft_lora_attn, each a trained adapter merged into
a copy of the model (see run_finetune_evaluation and docs/finetune.md).

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

from lab.core import faults
from lab.core.errors import BadInput
from lab.eval.harness import TaskRun, align, make_lm, run_tasks
from lab.neurons.interventions import intervene
from lab.model.loading import load_for_stage
from lab.core.resources import run_halving
from lab.stages import STAGES
from lab.stages.context import StageContext
from lab.stages.intervene import neuron_sets, read_activation_stats
from lab.eval.stats import bootstrap_mean_ci, mcnemar_p, paired_bootstrap_diff_ci
from lab.inputs.tasks import TaskRef, evaluated_languages, resolve_tasks, task_config

CONDITIONS = ("baseline", "intervention", "control")
TREATED = ("intervention", "control")
GENERATIVE = ("generate_until",)
LM_EVAL_BATCHES = "lm_eval"  # what lab.core.resources halves (and the batch_halvings metric's condition)


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
    from lab.core.artifacts import atomic_write_json

    with faults.checkpoint_save():  # tests only: kills around the save
        atomic_write_json(ctx.checkpoint_dir / f"{lang}.{cond}.json", [r.to_json() for r in runs])


class SizedLM:
    """lm-eval's HFLM around one model at the batch size in use; rebuilt when out-of-memory halves it."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, int(batch_size)
        self._lm: Any = None
        self._size = 0

    def at(self, size: int) -> Any:
        if self._lm is None or self._size != size:
            self._lm, self._size = None, size  # drop the old wrapper first
            self._lm = make_lm(self.model, self.tokenizer, size)
        return self._lm


def _evaluate_and_save(ctx: StageContext, lms: SizedLM, lang: str, cond: str, task_cfgs: list[dict[str, Any]],
                       limit: Optional[int], device: torch.device, make_hooks: Any = None) -> list[TaskRun]:
    """Run one (language, condition) through lm-eval, time it, and checkpoint it so a rerun skips it.

    Out of memory: the (language, condition) runs again from its start with half the batch size
    (lab.core.resources); `make_hooks()` gives a fresh intervention context for every attempt."""
    on_gpu = device.type == "cuda"

    def attempt(size: int) -> dict[str, TaskRun]:
        with faults.batches_of(lms.model, device):
            return run_tasks(lms.at(size), task_cfgs, limit=limit, seed=ctx.seed,
                             hooks=make_hooks() if make_hooks is not None else None)

    if on_gpu:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    found = run_halving(attempt, lms.batch_size, LM_EVAL_BATCHES, device=device)
    if on_gpu:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    runs = [found[c["task"]] for c in task_cfgs]
    for r in runs:
        r.seconds = elapsed / len(runs)
    _save_checkpoint(ctx, lang, cond, runs)
    return runs


def summarise(results: dict[str, dict[str, list[TaskRun]]], targets: list[str], *, resamples: int,
              seed: int, compared: tuple[str, ...] = TREATED) -> list[dict[str, Any]]:
    """Metric rows from per-item results: results[language][condition] = task runs.

    `compared` are the conditions compared with baseline (fine-tuning adds ft_lora_attn).
    """
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
        for cond in compared:
            treated, base = align(by_cond["baseline"], by_cond[cond])
            d = paired_bootstrap_diff_ci(treated, base, resamples=resamples, seed=seed)
            rows.append(dict(name="accuracy_delta", language=lang, condition=cond, value=d.value, ci_low=d.low,
                             ci_high=d.high, n=d.n))
            rows.append(dict(name="mcnemar_p", language=lang, condition=cond, value=mcnemar_p(treated, base), n=d.n))
    evaluated_targets = [t for t in targets if t in results]
    for cond in compared:
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
    plan = ctx.read_json("intervene", "intervention.json")
    if plan.get("kind") != cfg["intervention"]["kind"]:
        raise BadInput(f"intervention.json was made for kind = {plan.get('kind')!r} but the study says "
                       f"{cfg['intervention']['kind']!r}; re-run the intervene stage")
    if plan["kind"] == "finetune":
        run_finetune_evaluation(ctx, plan)
        return
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
    lms = SizedLM(loaded.model, loaded.tokenizer, int(cfg["evaluate"].get("batch_size", 8)))
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
                make_hooks = None if cond == "baseline" else (
                    lambda _c=cond, _l=lang: intervene(loaded.model, loaded.adapter, sets[_c][_l], kind, stats=stats,
                                                       stat_languages=stat_langs, language=_l, scale=scale))
                runs = _evaluate_and_save(ctx, lms, lang, cond, task_cfgs, limit, loaded.device, make_hooks)
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


# ---- [intervention] kind = "finetune": the trained adapters instead of hooks -------------------

FT_CONDITIONS = ("baseline", "intervention", "control", "ft_lora_attn")
FT_TREATED = ("intervention", "control", "ft_lora_attn")


def finetune_assignment(plan: dict[str, Any], targets: list[str], languages: list[str]) -> dict[str, dict[str, str]]:
    """language → condition → trained variant evaluated there (baseline needs none).

    A target T gets its own adapters (ft_neurons-T, ft_random-T). A high-resource language has no
    adapter of its own, so it is scored under the *first* target's adapters: the regression check
    asks whether training that target's neurons hurt a language we did not mean to change.
    """
    names = {v["name"] for v in plan.get("variants", [])}
    if not targets:
        raise BadInput("[languages] targets is empty; fine-tune evaluation needs at least one target language")
    out: dict[str, dict[str, str]] = {}
    for lang in languages:
        owner = lang if lang in targets else targets[0]
        out[lang] = {"intervention": f"ft_neurons-{owner}", "control": f"ft_random-{owner}",
                     "ft_lora_attn": "ft_lora_attn"}
        missing = sorted(set(out[lang].values()) - names)
        if missing:
            raise BadInput(f"intervention.json has no adapter {', '.join(missing)} (needed for {lang}); re-run the "
                           f"intervene stage with the study's current targets")
    return out


def run_finetune_evaluation(ctx: StageContext, plan: dict[str, Any]) -> None:
    """Evaluate the untouched model and each fine-tuned variant on every evaluated language.

    Each variant is loaded (peft, merged into a copy, re-verified) once and scored on all the
    languages that use it; every (language, condition) is checkpointed like the test-time path.
    """
    import gc

    from lab.neurons.finetune import load_condition, variant_adapter_dir

    cfg = ctx.cfg
    configs = plan_configs(cfg)
    languages = [lang for lang in evaluated_languages(cfg) if lang in configs]
    skipped = skipped_pairs(cfg, configs)
    targets = list(cfg["languages"]["targets"])
    assignment = finetune_assignment(plan, targets, languages)
    # which (language, condition) pairs each model serves: None = the baseline model
    schedule: dict[Optional[str], list[tuple[str, str]]] = {None: [(lang, "baseline") for lang in languages]}
    for lang in languages:
        for cond in FT_TREATED:
            schedule.setdefault(assignment[lang][cond], []).append((lang, cond))

    total = len(languages) * len(FT_CONDITIONS)
    ctx.progress(0, total, "runs", "loading model")
    loaded = load_for_stage(ctx)
    batch = int(cfg["evaluate"].get("batch_size", 8))
    limit = cfg["evaluate"].get("limit")
    on_gpu = loaded.device.type == "cuda"
    seconds = {c: 0.0 for c in FT_CONDITIONS}
    results: dict[str, dict[str, list[TaskRun]]] = {lang: {} for lang in languages}
    done = 0
    for variant, pairs in schedule.items():
        todo = {pair: _load_checkpoint(ctx, *pair) for pair in pairs}
        lms = model = None
        if any(runs is None for runs in todo.values()):
            ctx.progress(done, total, "runs", f"loading {variant or 'baseline'}", force=True)
            model = load_condition(loaded, None if variant is None else variant_adapter_dir(ctx, variant))
            lms = SizedLM(model, loaded.tokenizer, batch)
        for (lang, cond), runs in todo.items():
            task_cfgs = [c for _, c in configs[lang]]
            label = f"{lang} · {cond} ({variant or 'untouched'}) · {', '.join(c['task'] for c in task_cfgs)}"
            ctx.progress(done, total, "runs", label, force=True)
            if runs is None:
                assert lms is not None
                runs = _evaluate_and_save(ctx, lms, lang, cond, task_cfgs, limit, loaded.device)
            results[lang][cond] = runs
            seconds[cond] += sum(r.seconds for r in runs)
            done += 1
            acc = statistics.fmean(c for r in runs for c in r.correct) if any(r.samples for r in runs) else float("nan")
            ctx.progress(done, total, "runs", f"{label}: accuracy {acc:.3f}", force=True)
            ctx.check_stop()
        if variant is not None:  # free the merged copy before the next one (memory: ~2x the model)
            del lms, model
            gc.collect()

    results = {lang: {c: results[lang][c] for c in FT_CONDITIONS} for lang in languages}
    rows = summarise(results, targets, resamples=int(cfg["evaluate"].get("bootstrap", 2000)), seed=ctx.seed,
                     compared=FT_TREATED)
    rows += [dict(name="compute_seconds", language="", condition=c, value=s) for c, s in seconds.items()]
    if on_gpu:
        rows += [dict(name="gpu_seconds", language="", condition=c, value=s) for c, s in seconds.items()]
    ctx.metrics(rows)
    for cond in FT_CONDITIONS:
        ctx.write_json(f"samples_{cond}.json", samples_artifact(results, cond))
    ctx.write_json("evaluation.json", {
        "intervention": {"kind": "finetune", "variants": assignment,
                         "high_resource_rule": "high-resource languages are scored under the first target's adapters"},
        "tasks": {lang: [ref.name for ref, _ in configs[lang]] for lang in languages},
        "skipped": skipped, "limit": limit, "seed": ctx.seed, "device": str(loaded.device),
        "compute_seconds": seconds, "metrics": rows,
    })
    if skipped:
        ctx.log("no task for " + ", ".join(skipped) + " (skipped)", level="warning")
    ctx.log(f"evaluated {len(languages)} languages x {len(FT_CONDITIONS)} conditions (fine-tuned adapters) "
            f"in {sum(seconds.values()):.1f} s of model time")
