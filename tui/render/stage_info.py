"""The selected stage explained: what it does, what it reads from the study file, its gate, the
rule's recommendation and the recorded decision."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Optional

from rich.console import Group, RenderableType
from rich.text import Text

from lab.core.text import escape_controls
from tui.formatting import clip, fmt_value
from tui.study_state import StageView

STATE_STYLE = {"pending": "dim", "running": "bold cyan", "done": "green", "failed": "bold red",
               "interrupted": "yellow"}
VERDICT_STYLE = {"go": "bold green", "no-go": "bold red", "revise": "bold yellow", "inconclusive": "bold magenta",
                 "undecided": "dim"}


def _value(v: Any) -> str:
    if isinstance(v, str) and v.startswith("/"):
        return "…/" + "/".join(PurePath(v).parts[-2:])
    if isinstance(v, float):
        return fmt_value(v)
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    return str(v)


def inputs_text(view: StageView, cfg: dict[str, Any], width: int = 100) -> list[Text]:
    lines = []
    for section in view.spec.inputs:
        values = cfg.get(section)
        if not isinstance(values, dict) or not values:
            lines.append(Text(f"  [{section}] (protocol defaults)", style="dim"))
            continue
        shown = ", ".join(f"{k}={_value(v)}" for k, v in values.items() if v is not None)
        lines.append(Text(clip(f"  [{section}] {shown}", width)))
    return lines


def recommendation_text(rec: dict[str, Any]) -> list[Text]:
    verdict = str(rec.get("verdict", "undecided"))
    head = Text("Rule recommends: ")
    head.append(verdict, style=VERDICT_STYLE.get(verdict, ""))
    out = [head]
    for reason in rec.get("reasons") or []:
        out.append(Text(f"  • {reason}"))
    numbers = {k: v for k, v in (rec.get("numbers") or {}).items() if isinstance(v, (int, float, str))}
    if numbers:
        shown = ", ".join(f"{k}={v if isinstance(v, (bool, str)) else fmt_value(float(v))}" for k, v in numbers.items())
        out.append(Text("  " + shown, style="dim"))
    return out


def unit_line(run: Any) -> str:
    """Where the stage's unit runs or ran, as the coordinator last recorded it: a cluster job's id and the
    scheduler's word on it ("slurm job 12 · PENDING (Priority)", "· RUNNING on node7"). A local worker is
    named in the status line instead."""
    executor = getattr(run, "executor", "local") or "local"
    if executor != "local" and run.job_id:
        state = f" · {escape_controls(run.job_state)}" if run.job_state else ""
        return f"{executor} job {escape_controls(str(run.job_id))}{state}"
    return ""


def stage_info(view: StageView, cfg: dict[str, Any], outcome: Optional[str] = None) -> RenderableType:
    spec, run = view.spec, view.run
    title = Text(spec.title, style="bold")
    title.append(f"  ({spec.name})  ", style="dim")
    title.append(view.state, style=STATE_STYLE.get(view.state, ""))
    parts: list[RenderableType] = [title]
    if spec.description:
        parts.append(Text(spec.description))
    if spec.needs:
        parts.append(Text("needs: " + ", ".join(spec.needs), style="dim"))
    if spec.inputs:
        parts.append(Text("reads from the study file:", style="dim"))
        parts.extend(inputs_text(view, cfg))
    produces = [*(f"metric {m}" for m in spec.metrics), *spec.artifacts]
    if produces:
        parts.append(Text("produces: " + ", ".join(produces), style="dim"))
    if spec.gate is not None:
        params = ", ".join(f"{k}={v}" for k, v in spec.gate.params.items())
        parts.append(Text(f"gate: {spec.gate.rule}" + (f" ({params})" if params else ""), style="dim"))
    where = unit_line(run)
    if where:
        parts.append(Text(where, style="cyan" if run.state.value == "running" else "dim"))
    if run.state.value in ("done", "failed", "interrupted") and run.compute_seconds:
        parts.append(Text(f"compute {run.compute_seconds:.1f} s · attempts {run.attempts}", style="dim"))
    if run.error and view.state != "done":
        parts.append(Text(f"error: {run.error}", style="red"))
    if view.state == "interrupted":
        parts.append(Text("Interrupted: press r to resume from its last checkpoint.", style="yellow"))
    rec = view.recommendation
    if rec:
        parts.append(Text(""))
        parts.extend(recommendation_text(rec))
    if view.decision is not None:
        d = view.decision
        line = Text("Decision: ")
        line.append(d.verdict, style=VERDICT_STYLE.get(d.verdict, ""))
        line.append(f" by {escape_controls(d.by)} — {escape_controls(d.rationale)}")
        parts.append(line)
    elif view.awaiting_decision:
        parts.append(Text("Awaiting your decision: press d to record go / no-go / revise.", style="bold magenta"))
    if outcome:
        parts.append(Text(outcome, style="italic"))
    return Group(*parts)
