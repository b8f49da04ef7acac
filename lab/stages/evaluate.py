"""Stage `evaluate`: lm-eval tasks per language under every condition, scored once, paired, checkpointed.

One path for both intervention kinds. lab/eval/conditions.py plans the (language, condition) slots
and hands out each condition's model: the base model with hooks (test time: baseline, intervention,
control on the targets; spillover_<target>, intervention, control and own_intervention on the
high-resource languages) or a trained adapter merged into a copy (fine-tune: baseline, intervention
= ft_neurons, control = ft_random, ft_lora_attn, and spillover_<target>). This stage scores each
distinct (language, recipe) once through lm-eval, in chunks of `[evaluate] chunk_items` documents
(checkpointed after each chunk; SIGTERM stops it at the next forward pass, lab.stages.stopping), and
turns the per-item results into metric rows (lab/eval/paired.py) and the artifacts
samples_<condition>.json, evaluation.json and paired_items.json (what the evaluate gate reads). See
docs/evaluate.md and docs/finetune.md.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any, Optional

import torch

from lab.core import faults
from lab.core.resources import run_halving
from lab.eval.conditions import ConditionModels, Recipe, Slot, conditions_of, plan_slots, read_plan
from lab.eval.harness import TaskRun, count_docs, make_lm, run_tasks
from lab.eval.paired import paired_items, summarise
from lab.inputs.tasks import TaskRef, evaluated_languages, resolve_tasks, task_config
from lab.model.loading import load_for_stage
from lab.stages import STAGES
from lab.stages.context import StageContext
from lab.stages.stopping import stop_at_next_forward

LM_EVAL_BATCHES = "lm_eval"  # what lab.core.resources halves (and the batch_halvings metric's condition)
DEFAULT_CHUNK_ITEMS = 100  # documents per lm-eval call and checkpoint ([evaluate] chunk_items)

Chunk = list[tuple[str, int, int]]  # (task, first document, end) pieces scored by one lm-eval call


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


def _checkpoint_path(ctx: StageContext, lang: str, recipe: Recipe) -> Any:
    # one folder for the stage's own unit and its fan-out units (each run's file is written by one unit only)
    folder = ctx.home.checkpoint_dir(ctx.study_id, ctx.stage)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{lang}.{recipe.key}.json"


def _read_checkpoint(ctx: StageContext, lang: str, recipe: Recipe) -> Any:
    """A finished run ([TaskRun json, ...]), a partial one ({"partial": ...}) or None."""
    path = _checkpoint_path(ctx, lang, recipe)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _load_checkpoint(ctx: StageContext, lang: str, recipe: Recipe) -> Optional[list[TaskRun]]:
    """The finished run's results, or None (not started, or only some chunks done)."""
    obj = _read_checkpoint(ctx, lang, recipe)
    if not isinstance(obj, list):
        return None
    return [TaskRun.from_json(r) for r in obj]


def _load_chunks(ctx: StageContext, lang: str, recipe: Recipe, plan: list[Chunk]) -> list[dict[str, TaskRun]]:
    """The chunks of this run already scored under the same chunk plan (none when the plan differs)."""
    obj = _read_checkpoint(ctx, lang, recipe)
    if not isinstance(obj, dict) or obj.get("plan") != [[list(p) for p in c] for c in plan]:
        return []
    return [{name: TaskRun.from_json(r) for name, r in chunk.items()} for chunk in obj["chunks"]]


def _save_checkpoint(ctx: StageContext, lang: str, recipe: Recipe, runs: list[TaskRun]) -> None:
    from lab.core.artifacts import atomic_write_json

    with faults.checkpoint_save():  # tests only: kills around the save
        atomic_write_json(_checkpoint_path(ctx, lang, recipe), [r.to_json() for r in runs])


def _save_chunks(ctx: StageContext, lang: str, recipe: Recipe, plan: list[Chunk],
                 chunks: list[dict[str, TaskRun]]) -> None:
    from lab.core.artifacts import atomic_write_json

    with faults.checkpoint_save():  # tests only: kills around the save
        atomic_write_json(_checkpoint_path(ctx, lang, recipe), {
            "partial": True, "plan": [[list(p) for p in c] for c in plan],
            "chunks": [{name: r.to_json() for name, r in chunk.items()} for chunk in chunks]})


def chunk_plan(task_cfgs: list[dict[str, Any]], docs: dict[str, int], limit: Optional[int],
               size: int) -> list[Chunk]:
    """The run's documents (each task's first `limit`, in task order, then document order) in chunks of
    `size`; a chunk may span the end of one task and the start of the next. Depends only on the
    tasks, their document counts, `limit` and `size`, so an interrupted run resumes on the same chunks."""
    chunks: list[Chunk] = []
    cur: Chunk = []
    room = size
    for cfg in task_cfgs:
        name = cfg["task"]
        n = docs[name] if limit is None else min(docs[name], int(limit))
        start = 0
        while start < n:
            end = min(n, start + room)
            cur.append((name, start, end))
            room -= end - start
            start = end
            if room == 0:
                chunks.append(cur)
                cur, room = [], size
    if cur:
        chunks.append(cur)
    return chunks


def merge_chunks(task_cfgs: list[dict[str, Any]], chunks: list[dict[str, TaskRun]]) -> list[TaskRun]:
    """One TaskRun per task from its chunks: records in document order, seconds summed; `aggregate` is
    lm-eval's when the task fit one chunk, else the item-weighted mean of the chunks' aggregates."""
    out = []
    for cfg in task_cfgs:
        name = cfg["task"]
        parts = [c[name] for c in chunks if name in c]
        if not parts:  # a task with no document
            out.append(TaskRun(name, str(cfg.get("output_type", "multiple_choice")), []))
        elif len(parts) == 1:
            out.append(parts[0])
        else:
            n = sum(len(p.samples) for p in parts)
            keys = sorted(set.intersection(*(set(p.aggregate) for p in parts)))
            agg = {k: sum(p.aggregate[k] * len(p.samples) for p in parts) / n for k in keys} if n else {}
            out.append(TaskRun(name, parts[0].output_type, [s for p in parts for s in p.samples], agg,
                               sum(p.seconds for p in parts)))
    return out


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


def _evaluate(lms: SizedLM, task_cfgs: list[dict[str, Any]], chunk: Chunk, seed: int,
              device: torch.device, make_hooks: Any, where: str) -> dict[str, TaskRun]:
    """Score one chunk of a (language, recipe) through lm-eval and time it.

    Out of memory: the chunk runs again from its start with half the batch size (lab.core.resources,
    which keeps the smaller size for the next chunks); `make_hooks()` gives a fresh intervention
    context (or None) for every attempt."""
    on_gpu = device.type == "cuda"
    samples = {name: list(range(a, b)) for name, a, b in chunk}

    def attempt(size: int) -> dict[str, TaskRun]:
        with faults.batches_of(lms.model, device):
            return run_tasks(lms.at(size), task_cfgs, limit=None, samples=samples, seed=seed, hooks=make_hooks(),
                             where=where)

    if on_gpu:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    found = run_halving(attempt, lms.batch_size, LM_EVAL_BATCHES, device=device)
    if on_gpu:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    for r in found.values():
        r.seconds = elapsed / len(found)
    return found


def samples_artifact(results: dict[str, dict[str, list[TaskRun]]], cond: str) -> dict[str, Any]:
    return {lang: {r.task: {"output_type": r.output_type, "aggregate": r.aggregate, "samples": r.samples}
                   for r in by_cond[cond]} for lang, by_cond in results.items() if cond in by_cond}


@STAGES.register("evaluate")
def run(ctx: StageContext) -> None:
    cfg = ctx.cfg
    plan = read_plan(ctx)
    configs = plan_configs(cfg)
    languages = [lang for lang in evaluated_languages(cfg) if lang in configs]
    skipped = skipped_pairs(cfg, configs)
    targets = list(cfg["languages"]["targets"])
    high = [lang for lang in languages if lang not in targets]
    slots = plan_slots(plan, languages, targets, spillover=True)
    models = ConditionModels(ctx, plan, slots, load_for_stage)
    conditions = conditions_of(slots)
    unique = list(dict.fromkeys((s.language, s.recipe) for s in slots))  # each runs once, serves every name
    if ctx.part is not None:  # a fan-out unit ([compute] max_parallel > 1): every count-th run, then stop
        mine = set(unique[int(ctx.part["index"])::int(ctx.part["count"])])
        unique = [key for key in unique if key in mine]
        slots = [s for s in slots if (s.language, s.recipe) in mine]
    found: dict[tuple[str, Recipe], list[TaskRun]] = {}
    first_name = {}
    for s in slots:
        first_name.setdefault((s.language, s.recipe), s.condition)

    def pending(s: Slot) -> bool:
        key = (s.language, s.recipe)
        if key not in found:
            runs = _load_checkpoint(ctx, *key)
            if runs is None:
                return True
            found[key] = runs
        return False

    total = len(unique)
    ctx.progress(0, total, "runs", "loading model")
    device = models.base().device  # loaded even when every run is checkpointed: the device is recorded
    batch = int(cfg["evaluate"].get("batch_size", 8))
    limit = cfg["evaluate"].get("limit")
    chunk_items = int(cfg["evaluate"].get("chunk_items") or DEFAULT_CHUNK_ITEMS)
    docs: dict[str, int] = {}  # task → documents, counted once per stage when a run needs its chunks

    def plan_of(task_cfgs: list[dict[str, Any]]) -> list[Chunk]:
        for c in task_cfgs:
            if c["task"] not in docs:
                docs[c["task"]] = count_docs(c)
        return chunk_plan(task_cfgs, docs, limit, chunk_items)

    seconds = {c: 0.0 for c in conditions}
    done = 0
    place = ["loading"]  # where a stop request lands (the stop hook names it)
    for model, group in models.groups(slots, pending):
        lms = SizedLM(model, models.base().tokenizer, batch) if model is not None else None
        with stop_at_next_forward(ctx, model, lambda: place[0]):
            for lang, recipe in dict.fromkeys((s.language, s.recipe) for s in group):
                cond = first_name[(lang, recipe)]
                task_cfgs = [c for _, c in configs[lang]]
                label = f"{lang} · {cond} ({recipe.describe()}) · {', '.join(c['task'] for c in task_cfgs)}"
                ctx.progress(done, total, "runs", label, force=True)
                runs = found.get((lang, recipe))
                if runs is None:
                    assert lms is not None and model is not None
                    chunking = plan_of(task_cfgs)
                    chunks = _load_chunks(ctx, lang, recipe, chunking)
                    if chunks:
                        ctx.log(f"{lang} · {cond}: resuming after chunk {len(chunks)} of {len(chunking)}")
                    for k in range(len(chunks), len(chunking)):
                        place[0] = f"{lang} · {cond}, chunk {k + 1} of {len(chunking)}"
                        ctx.progress(done, total, "runs", f"{label} · chunk {k + 1}/{len(chunking)}", force=True,
                                     chunk=k, chunks=len(chunking))
                        chunks.append(_evaluate(lms, task_cfgs, chunking[k], ctx.seed, device,
                                                lambda _m=model, _r=recipe: models.hooks(_m, _r),
                                                where=f"condition {cond}, language {lang}, chunk {k + 1}"))
                        if k + 1 < len(chunking):  # the last chunk's checkpoint is the finished run's
                            _save_chunks(ctx, lang, recipe, chunking, chunks)
                            ctx.check_stop()
                    runs = merge_chunks(task_cfgs, chunks)
                    _save_checkpoint(ctx, lang, recipe, runs)
                    found[(lang, recipe)] = runs
                seconds[cond] += sum(r.seconds for r in runs)
                done += 1
                acc = (statistics.fmean(c for r in runs for c in r.correct) if any(r.samples for r in runs)
                       else float("nan"))
                ctx.progress(done, total, "runs", f"{label}: accuracy {acc:.3f}", force=True)
                ctx.check_stop()
        lms = model = None  # free this model (a merged copy) before the next one is built
    if ctx.part is not None:
        ctx.log(f"scored {total} of the stage's distinct runs; the stage's own unit summarises them")
        return

    results = {lang: {s.condition: found[(lang, s.recipe)] for s in slots if s.language == lang} for lang in languages}
    rows = summarise(results, targets, resamples=int(cfg["evaluate"].get("bootstrap", 2000)), seed=ctx.seed)
    seconds = {c: s for c, s in seconds.items() if s > 0 or c == "baseline"}
    rows += [dict(name="compute_seconds", language="", condition=c, value=s) for c, s in seconds.items()]
    if device.type == "cuda":
        rows += [dict(name="gpu_seconds", language="", condition=c, value=s) for c, s in seconds.items()]
    ctx.metrics(rows)
    for cond in conditions:
        ctx.write_json(f"samples_{cond}.json", samples_artifact(results, cond))
    ctx.write_json("paired_items.json", paired_items(results, targets, high))
    ctx.write_json("evaluation.json", {
        "intervention": _described(plan, cfg, languages),
        "conditions": {lang: {s.condition: s.recipe.describe() for s in slots if s.language == lang}
                       for lang in languages},
        "tasks": {lang: [ref.name for ref, _ in configs[lang]] for lang in languages},
        "skipped": skipped, "limit": limit, "chunk_items": chunk_items, "seed": ctx.seed, "device": str(device),
        "compute_seconds": seconds, "metrics": rows,
    })
    if skipped:
        ctx.log("no task for " + ", ".join(skipped) + " (skipped)", level="warning")
    ctx.log(f"evaluated {len(languages)} languages, {len(conditions)} conditions ({total} distinct runs) "
            f"in {sum(seconds.values()):.1f} s of model time")


def _described(plan: dict[str, Any], cfg: dict[str, Any], languages: list[str]) -> dict[str, Any]:
    """evaluation.json's "intervention" entry (kept as before; spillover is described in "conditions")."""
    if plan["kind"] == "finetune":
        from lab.eval.conditions import finetune_assignment

        assignment = finetune_assignment(plan, list(cfg["languages"]["targets"]), languages)
        return {"kind": "finetune", "variants": assignment,
                "high_resource_rule": "high-resource languages are scored under the first target's adapters "
                                      "(intervention, control) and under each target's ft_neurons adapter "
                                      "(spillover_<target>)"}
    kind = plan["value"]
    scale = float(plan["scale"] if plan.get("scale") is not None else cfg["intervention"].get("scale", 2.0))
    return {"kind": kind, "scale": scale if kind == "scale" else None,
            "high_resource_rule": "high-resource languages are scored with each target's intervention on "
                                  "(spillover_<target>; intervention and control = the first target's), and "
                                  "with their own neurons (own_intervention)"}
