"""Reading a study's stored facts for reports: config, model record, JSON artifacts, metric lookups.

Reports must export a study that stopped early, so every reader here returns None (never raises)
when a stage has not produced its artifact, and flags an artifact whose bytes no longer match the
sha256 recorded when it was written instead of silently trusting it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from lab.core.artifacts import sha256_file
from lab.core.errors import BadInput
from lab.store import Artifact, Metric, StageRun, Store, Study


def metric_value(rows: list[Metric], name: str, language: str, condition: str) -> Optional[Metric]:
    """The one row with this (name, language, condition), or None."""
    for m in rows:
        if m.name == name and (m.language or "") == language and (m.condition or "") == condition:
            return m
    return None


@dataclass
class StudyFacts:
    """Everything a report reads from the store, fetched once."""

    store: Store
    study: Study
    cfg: dict[str, Any]
    runs: list[StageRun]
    metrics: list[Metric]
    artifacts: list[Artifact]
    tampered: list[str] = field(default_factory=list)  # "stage/name" whose sha256 no longer matches
    _json_cache: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def sid(self) -> int:
        return int(self.study.id)  # type: ignore[arg-type]

    @property
    def targets(self) -> list[str]:
        return list(self.cfg["languages"]["targets"])

    @property
    def high_resource(self) -> list[str]:
        high = self.cfg["languages"].get("high_resource")
        if high is None:
            high = [x for x in self.cfg["languages"]["all"] if x not in self.targets]
        return list(high)

    def run(self, stage: str) -> Optional[StageRun]:
        return next((r for r in self.runs if r.stage == stage), None)

    def rows(self, stage: Optional[str] = None, name: Optional[str] = None) -> list[Metric]:
        return [m for m in self.metrics if (stage is None or m.stage == stage) and (name is None or m.name == name)]

    def artifact_row(self, stage: str, name: str) -> Optional[Artifact]:
        return next((a for a in self.artifacts if a.stage == stage and a.name == name), None)

    def artifact_file(self, stage: str, name: str) -> Optional[Path]:
        """The artifact's path if it exists and still matches its recorded sha256, else None."""
        row = self.artifact_row(stage, name)
        if row is None:
            return None
        try:
            path = self.store.home.inside(Path(row.path))
        except BadInput:
            self._flag(stage, name)
            return None
        if not path.is_file():
            return None
        if sha256_file(path) != row.sha256:
            self._flag(stage, name)
            return None
        return path

    def _flag(self, stage: str, name: str) -> None:
        key = f"{stage}/{name}"
        if key not in self.tampered:
            self.tampered.append(key)

    def read_json(self, stage: str, name: str) -> Optional[Any]:
        key = (stage, name)
        if key not in self._json_cache:
            path = self.artifact_file(stage, name)
            try:
                self._json_cache[key] = None if path is None else json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._json_cache[key] = None
        return self._json_cache[key]

    def model_info(self) -> dict[str, Any]:
        info = self.read_json("model", "model.json")
        return info if isinstance(info, dict) else {}

    def identified_tokens(self) -> Optional[int]:
        """Tokens the identify stage read (sum of activation_stats' `tokens`), or None."""
        path = self.artifact_file("identify", "activation_stats.safetensors")
        if path is None:
            rows = [m for m in self.rows("identify", "tokens") if m.language]
            return int(sum(m.value for m in rows)) if rows else None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as fh:
                if "tokens" not in fh.keys():
                    return None
                return int(fh.get_tensor("tokens").sum())
        except (OSError, ValueError, RuntimeError):
            return None


def load_facts(store: Store, study: Study) -> StudyFacts:
    sid = int(study.id)  # type: ignore[arg-type]
    return StudyFacts(store=store, study=study, cfg=json.loads(study.config_json), runs=store.stage_runs(sid),
                      metrics=store.metrics(sid), artifacts=store.artifacts(sid))
