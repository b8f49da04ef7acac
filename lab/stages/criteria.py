"""Stage `criteria`: freeze the go/no-go thresholds before any result exists."""

from __future__ import annotations

from lab.gates.base import criteria_for
from lab.stages import STAGES
from lab.stages.context import StageContext


@STAGES.register("criteria")
def run(ctx: StageContext) -> None:
    crit = criteria_for(ctx.study, ctx.protocol)
    unknown = sorted(set(ctx.cfg.get("criteria") or {}) - set(ctx.protocol.gate_params()))
    if unknown:
        from lab.core.errors import BadInput

        raise BadInput(f"[criteria] {', '.join(unknown)} is not a threshold of protocol {ctx.protocol.name} "
                       f"(known: {', '.join(sorted(ctx.protocol.gate_params()))}); fix the key")
    ctx.progress(0, 1, "steps", "criteria")
    ctx.write_json("criteria.json", {"protocol": ctx.protocol.name, "criteria": crit,
                                     "targets": ctx.cfg["languages"]["targets"],
                                     "high_resource": ctx.cfg["languages"]["high_resource"]})
    ctx.progress(1, 1, "steps", "criteria")
    ctx.log("criteria frozen: " + ", ".join(f"{k}={v}" for k, v in sorted(crit.items())))
