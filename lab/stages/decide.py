"""Stage `decide`: collect every gate's decision into the pilot's verdict and write the summary."""

from __future__ import annotations

from lab.gates.final import overall_verdict
from lab.report import summary
from lab.stages import STAGES
from lab.stages.context import StageContext


@STAGES.register("decide")
def run(ctx: StageContext) -> None:
    ctx.progress(0, 1, "steps", "verdict")
    verdict = overall_verdict(ctx.reads, ctx.study)
    data = summary(ctx.reads, ctx.study)
    data["verdict"] = {"decision": verdict.verdict, "reasons": verdict.reasons}
    ctx.write_json("summary.json", data)
    ctx.metric("verdict_go", 1.0 if verdict.verdict == "go" else 0.0)
    ctx.progress(1, 1, "steps", "verdict")
    ctx.log(f"pilot verdict: {verdict.verdict}")
