"""Study-file choices that name registered parts (identification methods, tasks), checked at `new`
before anything is stored. lab.study sits above the parts it binds (lab.neurons, lab.inputs) for this."""

from __future__ import annotations

from typing import Any

from lab.core.errors import BadInput
from lab.inputs.tasks import check_tasks
from lab.neurons.identify import METHODS


def validate_choices(cfg: dict[str, Any], protocol: Any) -> None:
    method = cfg["identify"]["method"]
    if method not in METHODS or method == "random":
        choices = ", ".join(m for m in METHODS.names() if m != "random")
        raise BadInput(f"[identify] method {method!r} is not an identification method (known: {choices}); fix it")
    # [intervention] value is already restricted by the study-file schema (lab/study/studyfile.py), which
    # mirrors lab.neurons.interventions' registry without importing torch at `new` time.
    check_tasks(cfg)
