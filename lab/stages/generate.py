"""Stage `generate`: the generation probe — what the intervention does to the text the model writes.

For every evaluated language (targets, then high-resource) it continues a fixed set of prompts
greedily and with seeded sampling under each condition: baseline, intervention and random control
(test-time hooks from intervention.json), or with [intervention] kind = "finetune" the untouched
model and each trained variant, assigned to languages exactly as the evaluate stage does. Each
continuation's language is identified over the identifier's full label set (lab.eval.fidelity); per
language and condition the stage stores language fidelity (Wilson interval over prompts), switches to
English and to any other language, and degenerate output, paired against the baseline, and writes
every continuation and the other languages detected to continuations.json. It runs before evaluate
and has no gate, so these side-effect numbers exist even when the evaluate gate stops the pilot.
Each (language, condition) is checkpointed, so an interrupted stage resumes with the next one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from lab.core.errors import BadInput
from lab.eval.fidelity import (LIBRARY, LanguageID, PromptScore, detected_share, fidelity_rows, other_languages,
                               prompt_score)
from lab.eval.stats import CI_LEVEL
from lab.gates.base import criteria_for
from lab.eval.generation import (GenerationSettings, PromptResult, generate_continuations, prompt_file, prompts_folder,
                            read_prompts, sampling_seed)
from lab.eval.conditions import FT_CONDITIONS, FT_TREATED, ConditionModels, finetune_assignment, plan_slots, read_plan
from lab.model.loading import load_for_stage
from lab.stages import STAGES
from lab.stages.context import StageContext
from lab.stages.stopping import stop_at_next_forward
from lab.inputs.tasks import evaluated_languages

TEST_TIME_CONDITIONS = ("baseline", "intervention", "control")
ARTIFACT = "continuations.json"


def settings_of(ctx: StageContext) -> GenerationSettings:
    g = ctx.config.generate
    return GenerationSettings(max_new_tokens=g.max_new_tokens, samples=g.samples, temperature=g.temperature,
                              top_p=g.top_p, batch_size=int(ctx.cfg["evaluate"].get("batch_size", 8)))


def plan_prompts(ctx: StageContext) -> tuple[dict[str, list[str]], dict[str, str], Path]:
    """(language → prompts, skipped language → why, folder). A folder the study names must cover every
    evaluated language (checked at `new` too); the shipped demo prompts skip languages they lack."""
    folder, explicit = prompts_folder(ctx.config.generate.prompts)
    limit = ctx.config.generate.n_prompts
    prompts: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for lang in evaluated_languages(ctx.cfg):
        if not explicit and prompt_file(folder, lang) is None:
            skipped[lang] = f"no shipped demo prompts for {lang}; set [generate] prompts to a folder with {lang}.txt"
            continue
        prompts[lang] = read_prompts(folder, lang, limit)
    return prompts, skipped, folder


def _checkpoint(ctx: StageContext, lang: str, cond: str) -> Path:
    return ctx.checkpoint_dir / f"{lang}.{cond}.json"


def _load(ctx: StageContext, lang: str, cond: str, prompts: list[str]) -> Optional[list[PromptResult]]:
    path = _checkpoint(ctx, lang, cond)
    if not path.is_file():
        return None
    got = [PromptResult.from_json(r) for r in json.loads(path.read_text(encoding="utf-8"))]
    return got if [r.prompt for r in got] == prompts else None  # other prompts: generate again


def _save(ctx: StageContext, lang: str, cond: str, results: list[PromptResult]) -> None:
    from lab.core.artifacts import atomic_write_json

    atomic_write_json(_checkpoint(ctx, lang, cond), [r.to_json() for r in results])


class Probe:
    """Runs (or reloads from a checkpoint) one language under one condition and reports progress."""

    def __init__(self, ctx: StageContext, prompts: dict[str, list[str]], conditions: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.prompts = prompts
        self.settings = settings_of(ctx)
        self.results: dict[str, dict[str, list[PromptResult]]] = {lang: {} for lang in prompts}
        self.seconds = {c: 0.0 for c in conditions}
        self.total = len(prompts) * len(conditions)
        self.done = 0

    def pending(self, lang: str, cond: str) -> bool:
        got = _load(self.ctx, lang, cond, self.prompts[lang])
        if got is not None:
            self.results[lang][cond] = got
        return got is None

    def run(self, model: Any, tokenizer: Any, lang: str, cond: str, hooks: Any = None, label: str = "") -> None:
        ctx = self.ctx
        label = label or f"{lang} · {cond}"
        ctx.progress(self.done, self.total, "runs", label, force=True)
        if cond not in self.results[lang] and self.pending(lang, cond):
            t0 = time.perf_counter()
            with stop_at_next_forward(ctx, model, label):  # SIGTERM: at the next decoding step
                got = generate_continuations(model, tokenizer, self.prompts[lang], self.settings,
                                             seed=sampling_seed(ctx.seed, lang), hooks=hooks)
            self.seconds[cond] += time.perf_counter() - t0
            _save(ctx, lang, cond, got)
            self.results[lang][cond] = got
        self.done += 1
        ctx.progress(self.done, self.total, "runs", label, force=True)
        ctx.check_stop()


@STAGES.register("generate")
def run(ctx: StageContext) -> None:
    cfg = ctx.cfg
    plan = read_plan(ctx)
    prompts, skipped, folder = plan_prompts(ctx)
    lid = LanguageID(list(cfg["languages"]["all"]))
    for lang in [x for x in prompts if x in lid.unsupported]:
        skipped[lang] = f"the language identifier ({LIBRARY}) does not cover {lang}"
        del prompts[lang]
    if not prompts:
        raise BadInput("the generation probe has no language to run: " + "; ".join(skipped.values()))
    if plan["kind"] == "finetune":
        probe, described, conditions, compared = _run_finetune(ctx, plan, prompts)
    else:
        probe, described, conditions, compared = _run_test_time(ctx, plan, prompts)

    resamples = int(cfg["evaluate"].get("bootstrap", 2000))
    confidence = float(criteria_for(ctx.study, ctx.protocol).get("confidence", CI_LEVEL))  # the study's level
    rows: list[dict[str, Any]] = []
    languages: dict[str, Any] = {}
    for lang, by_cond in probe.results.items():
        by_cond = {c: by_cond[c] for c in conditions}
        scores, entry = score_language(lid, lang, by_cond)
        rows += fidelity_rows(lang, scores, compared=compared, resamples=resamples, seed=ctx.seed,
                              confidence=confidence)
        languages[lang] = entry
    rows += [dict(name="compute_seconds", language="", condition=c, value=s) for c, s in probe.seconds.items()]
    ctx.metrics(rows)
    ctx.write_json(ARTIFACT, {
        "conditions": list(conditions), "intervention": described,
        "settings": {**probe.settings.to_json(), "n_prompts": ctx.config.generate.n_prompts,
                     "prompts_per_language": {lang: len(p) for lang, p in prompts.items()}, "seed": ctx.seed,
                     "confidence": confidence,
                     "prompts": str(folder)},
        "language_id": lid.describe(),
        "skipped": skipped, "languages": languages,
    })
    for lang, why in skipped.items():
        ctx.log(f"generation probe skipped {lang}: {why}", level="warning")
    ctx.log(f"generation probe: {len(languages)} languages x {len(conditions)} conditions, "
            f"{sum(len(p) for p in prompts.values())} prompts, {probe.settings.samples} samples each")


def score_language(lid: LanguageID, lang: str, by_cond: dict[str, list[PromptResult]]
                   ) -> tuple[dict[str, list[PromptScore]], dict[str, Any]]:
    """Detect every continuation's language: per-condition prompt scores and the artifact entry."""
    scores: dict[str, list[PromptScore]] = {}
    records: list[dict[str, Any]] = [{"prompt": r.prompt, "conditions": {}} for r in next(iter(by_cond.values()))]
    summary: dict[str, Any] = {}
    for cond, results in by_cond.items():
        scores[cond] = []
        all_detected: list[str] = []
        for rec, res in zip(records, results):
            found = [lid.detect(c.text) for c in res.continuations]
            detected = [d for d, _ in found]
            all_detected += detected
            scores[cond].append(prompt_score(lang, detected, [c.degenerate is not None for c in res.continuations],
                                             res.greedy.text))
            rec["conditions"][cond] = {
                "greedy": {**res.greedy.to_json(), "language": found[0][0], "confidence": round(found[0][1], 4)},
                "samples": [{**c.to_json(), "language": d, "confidence": round(p, 4)}
                            for c, (d, p) in zip(res.samples, found[1:])]}
        summary[cond] = {"detected": detected_share(all_detected),
                         "other_languages": other_languages(lang, all_detected)}
    return scores, {"prompts": records, "summary": summary}


def _run_test_time(ctx: StageContext, plan: dict[str, Any], prompts: dict[str, list[str]]
                   ) -> tuple[Probe, dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    """Every language under its own identified and random neurons (lab.eval.conditions, no spillover)."""
    probe = _run_slots(ctx, plan, prompts, TEST_TIME_CONDITIONS)
    kind = plan["value"]
    scale = float(plan["scale"] if plan.get("scale") is not None else ctx.cfg["intervention"].get("scale", 2.0))
    described = {"kind": "test_time", "value": kind, "scale": scale if kind == "scale" else None}
    return probe, described, TEST_TIME_CONDITIONS, TEST_TIME_CONDITIONS[1:]


def _run_finetune(ctx: StageContext, plan: dict[str, Any], prompts: dict[str, list[str]]
                  ) -> tuple[Probe, dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    """Each trained variant is merged into a copy of the model once and serves every language that
    uses it (the evaluate stage's assignment: a high-resource language gets the first target's)."""
    assignment = finetune_assignment(plan, list(ctx.cfg["languages"]["targets"]), list(prompts))
    probe = _run_slots(ctx, plan, prompts, FT_CONDITIONS)
    described = {"kind": "finetune", "variants": assignment,
                 "high_resource_rule": "high-resource languages are probed under the first target's adapters"}
    return probe, described, FT_CONDITIONS, FT_TREATED


def _run_slots(ctx: StageContext, plan: dict[str, Any], prompts: dict[str, list[str]],
               conditions: tuple[str, ...]) -> Probe:
    """Generate for every (language, condition) slot, one model at a time (lab.eval.conditions)."""
    slots = plan_slots(plan, list(prompts), list(ctx.cfg["languages"]["targets"]), spillover=False)
    models = ConditionModels(ctx, plan, slots, load_for_stage)
    probe = Probe(ctx, prompts, conditions)
    for model, group in models.groups(slots, lambda s: probe.pending(s.language, s.condition)):
        tokenizer = models.loaded.tokenizer if models.loaded is not None else None
        for s in group:
            hooks = models.hooks(model, s.recipe) if model is not None else None
            probe.run(model, tokenizer, s.language, s.condition, hooks, label=f"{s.language} · {s.condition} "
                      f"({s.recipe.describe()})")
        model = None  # free a merged copy before the next one
    return probe
