"""Power before compute: the minimum detectable effect (MDE) of the evaluate gate's mean target gain
for the study's evaluation item counts, counted from local task data without loading a model.

The gate decides on the mean over targets of the paired per-item difference, so the MDE is that of a
stratified mean of paired 0/1 outcomes (lab.eval.stats.mde_points) at the frozen confidence and 80%
power, assuming the planning discordance rate ψ (criteria key `planning_discordance`, default 0.2:
the share of items on which the intervention changes the answer; larger ψ is more conservative).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from lab.core.errors import BadInput
from lab.eval.stats import items_for_mde, mde_points

POWER = 0.8
DEFAULT_DISCORDANCE = 0.2
DEFAULT_CONFIDENCE = 0.95


@dataclass
class PowerReport:
    """What the study's item counts can detect, and whether that is enough for min_gain_points."""

    items: dict[str, Optional[int]]  # per target language; None = not countable offline (hub data)
    mde_points: dict[str, Optional[float]]  # per target language alone
    mde_targets_points: Optional[float]  # the mean over targets (what the gate decides on)
    min_gain_points: float
    confidence: float
    power: float = POWER
    discordance: float = DEFAULT_DISCORDANCE
    items_needed: Optional[int] = None  # per target language, for MDE = min_gain_points
    unknown: list[str] = field(default_factory=list)  # tasks whose items could not be counted

    @property
    def underpowered(self) -> bool:
        return (self.min_gain_points > 0 and self.mde_targets_points is not None
                and self.mde_targets_points > self.min_gain_points)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "underpowered": self.underpowered}

    def message(self) -> str:
        """One line: what the study can detect against what it asks (the refusal text when underpowered)."""
        if self.mde_targets_points is None:
            return (f"minimum detectable effect unknown: item counts of {', '.join(self.unknown)} are not available "
                    f"offline (hub data); the power check was skipped")
        counts = ", ".join(f"{t}: {n}" for t, n in self.items.items())
        head = (f"the study can detect a mean target gain of {self.mde_targets_points:.1f} points (MDE at "
                f"{100 * self.confidence:.4g}% confidence, {100 * self.power:.0f}% power, assumed discordance "
                f"{self.discordance:g}; items per target {counts})")
        if not self.underpowered:
            return head + f", within min_gain_points = {self.min_gain_points:g}"
        return (head + f" but min_gain_points is {self.min_gain_points:g}: underpowered. Use about "
                f"{self.items_needed} items per target language, raise [criteria] min_gain_points to "
                f"{math.ceil(self.mde_targets_points * 10) / 10:g}, or pass --accept-underpowered")


def _count_file(path: Path) -> int:
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return len(data["data"] if isinstance(data, dict) and "data" in data else data)
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def task_items(ref: Any, data_dir: Optional[str]) -> Optional[int]:
    """Documents in a task's evaluation split, from local files only (None when the data is on the hub)."""
    from lab.inputs.tasks import _absolute_data_files, _raw_config, local_data_files

    cfg = _raw_config(ref.yaml_path)
    split = cfg.get("test_split") or cfg.get("validation_split")
    files: Any = None
    local = local_data_files(data_dir, ref.name) if ref.source == "builtin" else None
    if local is not None:
        files = local.get(split) or local.get("")
    elif str(cfg.get("dataset_path") or "") in ("json", "csv", "text"):
        data_files = (cfg.get("dataset_kwargs") or {}).get("data_files")
        data_files = _absolute_data_files(data_files, ref.yaml_path.parent)
        files = data_files.get(split) if isinstance(data_files, dict) else data_files
    if files is None:
        return None
    paths = [Path(f) for f in (files if isinstance(files, list) else [files])]
    if not all(p.is_file() for p in paths):
        return None
    return sum(_count_file(p) for p in paths)


def power_report(cfg: Mapping[str, Any], criteria: Mapping[str, Any]) -> PowerReport:
    """The MDE of the study's evaluation, per target and for the mean over targets (no model loaded)."""
    from lab.inputs.tasks import resolve_tasks

    targets = list(cfg["languages"]["targets"])
    limit = (cfg.get("evaluate") or {}).get("limit")
    data_dir = (cfg.get("evaluate") or {}).get("data_dir")
    confidence = float(criteria.get("confidence", DEFAULT_CONFIDENCE))
    discordance = float(criteria.get("planning_discordance", DEFAULT_DISCORDANCE))
    if not 0.5 <= confidence < 1.0:
        raise BadInput(f"[criteria] confidence = {confidence} must lie in [0.5, 1) (e.g. 0.95 for 95% intervals)")
    if not 0.0 < discordance <= 1.0:
        raise BadInput(f"[criteria] planning_discordance = {discordance} must lie in (0, 1]; it is the share of "
                       f"items whose answer the intervention changes (default {DEFAULT_DISCORDANCE})")
    items: dict[str, Optional[int]] = {t: 0 for t in targets}
    unknown: list[str] = []
    for ref in resolve_tasks(dict(cfg)):
        if ref.language not in items:
            continue
        n = task_items(ref, data_dir)
        if n is None:
            unknown.append(ref.name)
            items[ref.language] = None
        elif items[ref.language] is not None:
            items[ref.language] = int(items[ref.language] or 0) + (min(n, int(limit)) if limit else n)
    mde = {t: (mde_points([n], discordance=discordance, confidence=confidence, power=POWER) if n else None)
           for t, n in items.items()}
    counts = [n for n in items.values()]
    known = all(n for n in counts) and bool(counts)
    overall = mde_points([int(n) for n in counts if n], discordance=discordance, confidence=confidence,
                         power=POWER) if known else None
    min_gain = float(criteria["min_gain_points"])
    needed = items_for_mde(min_gain, len(targets), discordance=discordance, confidence=confidence,
                           power=POWER) if min_gain > 0 else None
    return PowerReport(items, mde, overall, min_gain, confidence, POWER, discordance, needed, unknown)


def underpowered_refusal(store: Any, study: Any) -> Optional[str]:
    """The one-line refusal when the study's evaluation cannot detect min_gain_points (> 0); else None.

    Stateless on purpose: every headless run that would compute beyond the criteria stage asks again,
    so an underpowered study needs --accept-underpowered each time.
    """
    from lab.gates.base import criteria_for, study_config
    from protocols import load_protocol

    crit = criteria_for(study, load_protocol(study.protocol, store.home.root))
    if float(crit.get("min_gain_points", 0) or 0) <= 0:
        return None  # no positive gain to detect (e.g. a study that opens the gate on purpose)
    report = power_report(study_config(study), crit)
    return report.message() if report.underpowered else None
