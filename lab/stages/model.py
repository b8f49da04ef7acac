"""Stage `model`: load the model, find its neuron hook point, record provenance."""

from __future__ import annotations

from lab.model.loading import load_for_stage
from lab.stages import STAGES
from lab.stages.context import StageContext


@STAGES.register("model")
def run(ctx: StageContext) -> None:
    ctx.progress(0, 1, "models", "loading " + ctx.cfg["model"]["id"])
    loaded = load_for_stage(ctx)
    prov = loaded.provenance
    ctx.write_json("model.json", prov)
    ctx.metrics([
        dict(name="n_layers", value=prov["n_layers"]),
        dict(name="d_ff", value=prov["d_ff"]),
        dict(name="parameters", value=prov["parameters"]),
    ])
    ctx.progress(1, 1, "models", "loaded")
    ctx.log(f"{prov['architecture']} ({prov['adapter']} adapter), {prov['parameters']:,} parameters, "
            f"{prov['n_layers']} layers x {prov['d_ff']} neurons on {prov['device']} ({prov['dtype']})")
