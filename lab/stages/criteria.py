"""Stage `criteria`: freeze the go/no-go thresholds before any result exists, with the minimum
detectable effect (MDE) the study's evaluation item counts allow (lab.gates.power)."""

from __future__ import annotations

from lab.core.errors import BadInput
from lab.gates.base import criteria_for
from lab.stages import STAGES
from lab.stages.context import StageContext


@STAGES.register("criteria")
def run(ctx: StageContext) -> None:
    crit = criteria_for(ctx.study, ctx.protocol)
    unknown = sorted(set(ctx.cfg.get("criteria") or {}) - set(ctx.protocol.gate_params()))
    if unknown:
        raise BadInput(f"[criteria] {', '.join(unknown)} is not a threshold of protocol {ctx.protocol.name} "
                       f"(known: {', '.join(sorted(ctx.protocol.gate_params()))}); fix the key")
    conf = crit.get("confidence")
    if conf is not None and not 0.5 <= float(conf) < 1.0:
        raise BadInput(f"[criteria] confidence = {conf} must lie in [0.5, 1) (e.g. 0.95 for 95% intervals)")
    ctx.progress(0, 1, "steps", "criteria")
    power = None
    if "min_gain_points" in crit:
        from lab.gates.power import power_report

        power = power_report(ctx.cfg, crit)
        for lang, mde in power.mde_points.items():
            if mde is not None:
                ctx.metric("mde_points", mde, language=lang, n=power.items[lang])
        if power.mde_targets_points is not None:
            ctx.metric("mde_points", power.mde_targets_points, language="targets",
                       n=sum(int(n or 0) for n in power.items.values()))
            ctx.metric("underpowered", 1.0 if power.underpowered else 0.0)
        ctx.log(power.message(), "warning" if power.underpowered or power.mde_targets_points is None else "info")
    ctx.write_json("criteria.json", {"protocol": ctx.protocol.name, "criteria": crit,
                                     "targets": ctx.cfg["languages"]["targets"],
                                     "high_resource": ctx.cfg["languages"]["high_resource"],
                                     "power": power.to_dict() if power is not None else None})
    ctx.progress(1, 1, "steps", "criteria")
    ctx.log("criteria frozen: " + ", ".join(f"{k}={v}" for k, v in sorted(crit.items())))
