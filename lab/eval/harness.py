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
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, ContextManager, Iterable, Iterator, Optional

from lab.core.errors import BadInput

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


def compact_samples(task: str, raw: Iterable[dict[str, Any]], output_type: str) -> list[dict[str, Any]]:
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


def run_tasks(lm: Any, configs: list[dict[str, Any]], *, limit: Optional[int], seed: int,
              hooks: Optional[ContextManager[Any]] = None) -> dict[str, TaskRun]:
    """Evaluate task configs (dicts from lab.inputs.tasks.task_config) with simple_evaluate, inside `hooks`."""
    from lm_eval.evaluator import simple_evaluate
    from lm_eval.tasks import TaskManager

    if not configs:
        return {}
    t0 = time.perf_counter()
    with _without_env_report(), hooks if hooks is not None else contextlib.nullcontext():
        try:
            res = simple_evaluate(model=lm, tasks=[dict(c) for c in configs],
                                  task_manager=TaskManager(include_defaults=False), limit=limit,
                                  log_samples=True, use_cache=None, cache_requests=False, bootstrap_iters=0,
                                  random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                                  fewshot_random_seed=seed)
        except (ConnectionError, FileNotFoundError) as exc:
            names = ", ".join(c["task"] for c in configs)
            raise BadInput(f"cannot load the data of task(s) {names}: {str(exc).splitlines()[0]}; check "
                           f"[evaluate] data_dir or the task's data_files") from None
    seconds = time.perf_counter() - t0
    if res is None:
        raise RuntimeError("lm-eval returned no results (not rank 0?)")
    out: dict[str, TaskRun] = {}
    for cfg in configs:
        name = cfg["task"]
        otype = str(res["configs"][name].get("output_type", cfg.get("output_type", "multiple_choice")))
        samples = compact_samples(name, res["samples"][name], otype)
        agg = {k.split(",")[0]: float(v) for k, v in res["results"][name].items()
               if "," in k and "_stderr" not in k and isinstance(v, (int, float))}
        out[name] = TaskRun(name, otype, samples, agg, seconds / len(configs))
    return out


def align(base: list[TaskRun], other: list[TaskRun]) -> tuple[list[float], list[float]]:
    """Per-item correctness of two conditions on the same items (refuses mismatched item sets)."""
    b = {k: c for run in base for k, c in zip(run.keys, run.correct)}
    o = {k: c for run in other for k, c in zip(run.keys, run.correct)}
    if b.keys() != o.keys():
        raise RuntimeError("the two conditions were scored on different items; re-run the evaluate stage")
    keys = sorted(b)
    return [o[k] for k in keys], [b[k] for k in keys]
