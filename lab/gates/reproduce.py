"""The reproduce gate: split-half stability and language specificity of the identified neurons."""

from __future__ import annotations

import statistics
from typing import Any

from lab.gates.base import GATES, Recommendation, study_config
from lab.store import Store, Study


@GATES.register("reproduce")
def _reproduce(store: Store, study: Study, params: dict[str, Any]) -> Recommendation:
    cfg = study_config(study)
    targets = cfg["languages"]["targets"]
    rows = store.metrics(study.id, "reproduce")
    stab = [m.value for m in rows if m.name == "stability_jaccard" and m.condition == "identified" and m.language in targets]
    ctrl = [m.value for m in rows if m.name == "stability_jaccard" and m.condition == "control" and m.language in targets]
    diag = [m.value for m in rows if m.name == "ppxc_diagonal_dominant" and m.condition == "identified" and m.language in targets]
    ratio = [m.value for m in rows if m.name == "ppxc_control_ratio" and m.language in targets]
    med = statistics.median(stab) if stab else 0.0
    share = sum(diag) / len(diag) if diag else 0.0
    med_ratio = statistics.median(ratio) if ratio else 0.0
    numbers = {"median_stability_targets": med, "median_stability_control": statistics.median(ctrl) if ctrl else None,
               "diagonal_share_targets": share, "median_control_ratio": med_ratio}
    reasons = [f"median split-half stability on targets {med:.2f} (min {params['min_median_stability']})",
               f"share of targets whose own neurons hurt them most {share:.2f} (min {params['min_diagonal_share']})",
               f"own-language PPL increase vs random control x{med_ratio:.2f} (min {params['min_control_ratio']})"]
    stable = med >= float(params["min_median_stability"])
    specific = share >= float(params["min_diagonal_share"]) and med_ratio >= float(params["min_control_ratio"])
    verdict = "go" if stable and specific else ("revise" if stable or specific else "no-go")
    return Recommendation(verdict, reasons, numbers)
