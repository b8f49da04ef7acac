"""Running lm-eval tasks on the in-memory model, under a condition, with per-item results kept.

The model object the stage already loaded is wrapped in lm-eval's HFLM (no reload, so forward hooks
registered on it — the intervention — are active inside lm-eval's evaluation). Each call builds a
fresh TaskManager and passes the tasks as resolved config dicts; no request cache is ever used, so
no condition can be served another condition's answers (lm-eval's cache is keyed by the request,
not the model). Seeds come from the study.

Traps handled (FIELD-NOTES): HFLM calls the model without an attention mask and right-pads — fine
for a causal model's log-likelihoods, and harmless for replacement interventions; it de-duplicates
requests, so per-item results are taken from lm-eval's logged samples, one per document, in doc
order, not from counting model calls. simple_evaluate's per-call environment report (1–5 s of
subprocesses) is skipped.

Numeric guard: every forward pass inside a run is checked for non-finite logits (a flag per batch,
read once the run ends, so the GPU is not synchronised per batch); any NaN or infinity stops the
stage with `NonFiniteLogits`, naming the condition, language and batch, instead of being scored as a
wrong answer. Per-choice log-likelihoods are checked again when samples are compacted.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, ContextManager, Iterable, Iterator, Optional

from lab.core.errors import BadInput, StageFailed

class NonFiniteLogits(StageFailed):
    """The model produced NaN or infinite logits while being evaluated: a numeric failure, not an answer."""


# per-item correctness, in order of preference: multiple choice → acc, generative → exact_match
CORRECTNESS_KEYS = ("acc", "exact_match", "acc_norm", "em")
EXTRA_KEYS = ("acc", "acc_norm", "exact_match", "f1")


@dataclass
class TaskRun:
    """One task under one condition: compact per-item records in doc order, and timing."""

    task: str
    output_type: str
    samples: list[dict[str, Any]]
    aggregate: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def correct(self) -> list[float]:
        return [float(s["correct"]) for s in self.samples]

    @property
    def keys(self) -> list[tuple[str, int]]:
        return [(self.task, int(s["doc_id"])) for s in self.samples]

    def values(self, metric: str) -> list[float]:
        return [float(s[metric]) for s in self.samples if metric in s]

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "output_type": self.output_type, "aggregate": self.aggregate,
                "seconds": self.seconds, "samples": self.samples}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "TaskRun":
        return cls(obj["task"], obj["output_type"], obj["samples"], obj.get("aggregate", {}), obj.get("seconds", 0.0))


def make_lm(model: Any, tokenizer: Any, batch_size: int = 8) -> Any:
    """lm-eval's HFLM around the already-loaded model (its hooks stay in force)."""
    from lm_eval.models.huggingface import HFLM

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def _jsonable(x: Any) -> Any:
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


def compact_samples(task: str, raw: Iterable[dict[str, Any]], output_type: str, where: str = "") -> list[dict[str, Any]]:
    """lm-eval's logged samples → [{doc_id, target, lls | response, correct, acc/exact_match/f1 ...}].

    One record per document (the first filter's), sorted by doc_id, so two conditions line up item by item.
    """
    seen: dict[int, dict[str, Any]] = {}
    for s in raw:
        doc_id = int(s["doc_id"])
        if doc_id in seen:
            continue
        key = next((k for k in CORRECTNESS_KEYS if k in s), None)
        if key is None:
            raise BadInput(f"task {task} reports none of {', '.join(CORRECTNESS_KEYS)} per item; neuron-pilot needs "
                           f"a per-item accuracy metric (add `metric: acc` or `exact_match` to the task's metric_list)")
        rec: dict[str, Any] = {"doc_id": doc_id, "target": _jsonable(s.get("target"))}
        resps = s.get("filtered_resps") or []
        if output_type in ("multiple_choice", "loglikelihood"):
            rec["lls"] = [float(r[0]) if isinstance(r, (list, tuple)) else float(r) for r in resps]
            if not all(math.isfinite(x) for x in rec["lls"]):
                raise NonFiniteLogits(f"non-finite log-likelihood in {where or 'evaluation'}, task {task}, document "
                                      f"{doc_id}; the model (or the intervention) produced NaN/inf — try dtype = "
                                      f"\"float32\" or a smaller intervention value")
        else:
            first = resps[0] if resps else ""
            rec["response"] = first if isinstance(first, str) else _jsonable(first)
        for k in EXTRA_KEYS:
            if k in s:
                rec[k] = _jsonable(s[k])
        rec["correct"] = float(s[key])
        seen[doc_id] = rec
    return [seen[k] for k in sorted(seen)]


@contextlib.contextmanager
def _without_env_report() -> Iterator[None]:
    """simple_evaluate collects torch's environment report on every call (subprocesses: pip, nvidia-smi…),
    1–5 s each time; the study's provenance already records the environment, so skip it here."""
    import lm_eval.evaluator as ev

    saved = ev.add_env_info
    ev.add_env_info = lambda storage: storage.update(pretty_env_info="recorded in the study's provenance")
    try:
        yield
    finally:
        ev.add_env_info = saved


class _LogitGuard:
    """Per-batch "all logits finite" flags from a forward hook; `check` raises on the first bad batch."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.flags: list[Any] = []

    def hook(self, _module: Any, _args: Any, output: Any) -> None:
        import torch

        logits = getattr(output, "logits", None)
        if logits is None and isinstance(output, (tuple, list)) and output:
            logits = output[0]
        if isinstance(logits, torch.Tensor):
            self.flags.append(torch.isfinite(logits).all())

    def check(self) -> None:
        if not self.flags:
            return
        import torch

        ok = torch.stack([f.to("cpu") for f in self.flags])
        if not bool(ok.all()):
            batch = int((~ok).nonzero()[0]) + 1
            raise NonFiniteLogits(f"non-finite logits in {self.where}, batch {batch} of {len(ok)}: the model (or the "
                                  f"intervention) produced NaN/inf, which would be scored as wrong answers — try dtype "
                                  f"= \"float32\" or a smaller intervention value")


@contextlib.contextmanager
def _finite_logits(model: Any, where: str) -> Iterator[_LogitGuard]:
    guard = _LogitGuard(where)
    handle = model.register_forward_hook(guard.hook) if hasattr(model, "register_forward_hook") else None
    try:
        yield guard
    finally:
        if handle is not None:
            handle.remove()


def count_docs(config: dict[str, Any]) -> int:
    """How many documents a task config evaluates (its test split, else its validation split): what
    the evaluate stage splits into chunks. Loads the task's data as simple_evaluate would (offline for
    local files; a fraction of a second for the demo tasks)."""
    from lm_eval.tasks import TaskManager

    try:
        tasks = TaskManager(include_defaults=False).load([dict(config)])["tasks"]
    except (ConnectionError, FileNotFoundError) as exc:
        raise BadInput(f"cannot load the data of task {config['task']}: {str(exc).splitlines()[0]}; check "
                       f"[evaluate] data_dir or the task's data_files") from None
    return len(tasks[config["task"]].eval_docs)


def run_tasks(lm: Any, configs: list[dict[str, Any]], *, limit: Optional[int], seed: int,
              hooks: Optional[ContextManager[Any]] = None, where: str = "",
              samples: Optional[dict[str, list[int]]] = None) -> dict[str, TaskRun]:
    """Evaluate task configs (dicts from lab.inputs.tasks.task_config) with simple_evaluate, inside `hooks`.

    `where` names the run in errors (e.g. "condition intervention, language sw"). `samples` (task →
    document indices, instead of `limit`) evaluates only those documents: one chunk of the evaluate
    stage; their records keep their own doc_id."""
    from lm_eval.evaluator import simple_evaluate
    from lm_eval.tasks import TaskManager

    if samples is not None:
        if limit is not None:
            raise ValueError("run_tasks takes limit or samples, not both")
        configs = [c for c in configs if samples.get(c["task"])]
        samples = {c["task"]: [int(i) for i in samples[c["task"]]] for c in configs}
    if not configs:
        return {}
    t0 = time.perf_counter()
    where = where or ", ".join(c["task"] for c in configs)
    with _without_env_report(), _finite_logits(getattr(lm, "model", None), where) as guard, \
            hooks if hooks is not None else contextlib.nullcontext():
        try:
            res = simple_evaluate(model=lm, tasks=[dict(c) for c in configs],
                                  task_manager=TaskManager(include_defaults=False), limit=limit, samples=samples,
                                  log_samples=True, use_cache=None, cache_requests=False, bootstrap_iters=0,
                                  random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                                  fewshot_random_seed=seed)
        except (ConnectionError, FileNotFoundError) as exc:
            names = ", ".join(c["task"] for c in configs)
            raise BadInput(f"cannot load the data of task(s) {names}: {str(exc).splitlines()[0]}; check "
                           f"[evaluate] data_dir or the task's data_files") from None
        except RuntimeError:
            guard.check()  # a sampler fed NaN probabilities fails here: name the batch instead
            raise
        guard.check()
    seconds = time.perf_counter() - t0
    if res is None:
        raise RuntimeError("lm-eval returned no results (not rank 0?)")
    out: dict[str, TaskRun] = {}
    for cfg in configs:
        name = cfg["task"]
        otype = str(res["configs"][name].get("output_type", cfg.get("output_type", "multiple_choice")))
        samples = compact_samples(name, res["samples"][name], otype, where)
        agg = {k.split(",")[0]: float(v) for k, v in res["results"][name].items()
               if "," in k and "_stderr" not in k and isinstance(v, (int, float))}
        out[name] = TaskRun(name, otype, samples, agg, seconds / len(configs))
    return out


def item_vector(runs: list[TaskRun]) -> tuple[list[str], list[float]]:
    """(["task:doc_id", ...], per-item correctness) in one fixed order: task name, then doc_id."""
    pairs = sorted((k, c) for run in runs for k, c in zip(run.keys, run.correct))
    return [f"{t}:{d}" for (t, d), _ in pairs], [c for _, c in pairs]


def align(base: list[TaskRun], other: list[TaskRun]) -> tuple[list[float], list[float]]:
    """(other, base) per-item correctness on the same items, in item_vector's order (refuses mismatched items)."""
    kb, b = item_vector(base)
    ko, o = item_vector(other)
    if kb != ko:
        raise RuntimeError("the two conditions were scored on different items; re-run the evaluate stage")
    return o, b
