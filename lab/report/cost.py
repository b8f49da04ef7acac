"""Cost and return: compute per stage, points gained per GPU-hour (or CPU-hour), and a labelled
estimate of what a full-scale run would cost at the pilot's measured throughput.

The estimate is linear on purpose and says so: identification scales with tokens read, evaluation
with items scored, every other stage is counted at its measured cost. Same model, same hardware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from lab.core.errors import BadInput
from lab.report.facts import StudyFacts

SCALED_STAGES = ("identify", "evaluate")


@dataclass(frozen=True)
class FullSize:
    """The size of the full-scale run the estimate is for (export --full-tokens / --full-items)."""

    tokens_per_language: int = 10_000_000
    items_per_language: int = 2_000
    tokens_stated: bool = False  # False: the default, and the report says so
    items_stated: bool = False

    @classmethod
    def stated_as(cls, tokens: Optional[int] = None, items: Optional[int] = None) -> "FullSize":
        """The defaults, with whatever the user stated replacing them (and marked as stated)."""
        d = cls()
        return cls(d.tokens_per_language if tokens is None else tokens, d.items_per_language if items is None else items,
                   tokens_stated=tokens is not None, items_stated=items is not None)

    def __post_init__(self) -> None:
        if self.tokens_per_language <= 0:
            raise BadInput(f"--full-tokens must be a positive token count per language, not {self.tokens_per_language}")
        if self.items_per_language <= 0:
            raise BadInput(f"--full-items must be a positive item count per language, not {self.items_per_language}")


def _state(run: Any) -> str:
    return run.state.value if hasattr(run.state, "value") else str(run.state)


def _throughput(facts: StudyFacts) -> dict[str, Optional[dict[str, float]]]:
    out: dict[str, Optional[dict[str, float]]] = {"identify": None, "evaluate": None}
    ident = facts.run("identify")
    tokens = facts.identified_tokens()
    if ident is not None and _state(ident) == "done" and tokens and ident.compute_seconds > 0:
        out["identify"] = {"tokens": tokens, "seconds": ident.compute_seconds,
                           "tokens_per_second": tokens / ident.compute_seconds}
    ev = facts.run("evaluate")
    acc = [m for m in facts.rows("evaluate", "accuracy") if m.n]
    items = sum(int(m.n or 0) for m in acc)
    if ev is not None and _state(ev) == "done" and items and ev.compute_seconds > 0:
        out["evaluate"] = {"items": items, "seconds": ev.compute_seconds, "items_per_second": items / ev.compute_seconds,
                           "languages": len({m.language for m in acc}), "conditions": len({m.condition for m in acc})}
    return out


def _full_scale(facts: StudyFacts, thr: dict[str, Optional[dict[str, float]]], size: FullSize,
                unit: str) -> dict[str, Any]:
    n_lang = len(facts.cfg["languages"]["all"])
    missing: list[str] = []
    parts: dict[str, Optional[float]] = {}
    ident = thr["identify"]
    if ident:
        parts["identify"] = size.tokens_per_language * n_lang / ident["tokens_per_second"]
    else:
        parts["identify"] = None
        missing.append("identify: no finished run with a token count and compute time")
    ev = thr["evaluate"]
    if ev:
        parts["evaluate"] = size.items_per_language * ev["languages"] * ev["conditions"] / ev["items_per_second"]
    else:
        parts["evaluate"] = None
        missing.append("evaluate: no finished run with item counts and compute time")
    other = sum(r.compute_seconds for r in facts.runs if r.stage not in SCALED_STAGES)
    total = None if missing else sum(v for v in parts.values() if v is not None) + other
    assumptions = [
        f"{size.tokens_per_language:,} identification tokens per language x {n_lang} languages"
        + (" (as stated)" if size.tokens_stated else " (default; state yours with --full-tokens)"),
        f"{size.items_per_language:,} evaluation items per language and condition"
        + (" (as stated)" if size.items_stated else " (default; state yours with --full-items)"),
        "time grows linearly with tokens read (identify) and items scored (evaluate), at the pilot's measured "
        "throughput, which includes model loading, so it slightly overstates large runs",
        "the other stages cost what they cost in the pilot",
        f"the same model and the same hardware ({unit.split('-')[0]}); a larger model costs more and is not modelled",
    ]
    return {"estimate": True, "tokens_per_language": size.tokens_per_language,
            "items_per_language": size.items_per_language,
            "size_stated": {"tokens": size.tokens_stated, "items": size.items_stated},
            "identify_seconds": parts["identify"], "evaluate_seconds": parts["evaluate"], "other_seconds": other,
            "total_seconds": total, "hours": None if total is None else total / 3600.0, "unit": unit,
            "assumptions": assumptions, "missing": missing}


def cost(facts: StudyFacts, head: dict[str, Any], size: Optional[FullSize] = None) -> dict[str, Any]:
    """Compute per stage, return per hour, and the full-scale estimate (all in one dict)."""
    size = size or FullSize()
    stages = [{"name": r.stage, "status": _state(r), "compute_seconds": r.compute_seconds,
               "gpu_seconds": r.gpu_seconds} for r in facts.runs]
    total = sum(r.compute_seconds for r in facts.runs)
    gpu = sum(r.gpu_seconds for r in facts.runs)
    unit = "GPU-hour" if gpu > 0 else "CPU-hour"
    hours = (gpu if gpu > 0 else total) / 3600.0
    gain = head.get("mean_gain_points")
    thr = _throughput(facts)
    return {
        "unit": unit,
        "stages": stages,
        "total_compute_seconds": total,
        "total_gpu_seconds": gpu,
        "hours": hours,
        "points_per_hour": None if gain is None or hours <= 0 else gain / hours,
        "throughput": thr,
        "full_scale": _full_scale(facts, thr, size, unit),
        "batch_halvings": batch_halvings(facts),
    }


def batch_halvings(facts: StudyFacts) -> list[dict[str, Any]]:
    """Where a stage ran out of memory and went on at a smaller batch (lab.core.resources): the measured
    throughput, and so the full-scale estimate, were taken at that smaller size."""
    return [{"stage": m.stage, "loop": m.condition, "batch_size": int(m.value), "halvings": int(m.n or 0)}
            for m in facts.metrics if m.name == "batch_halvings"]
