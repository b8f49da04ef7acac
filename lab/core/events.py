"""The worker's protocol: one JSON event per line on stdout, and its exit codes (WorkerExit).

Kinds: started {pid, host, attempt}, progress {done, total, unit, label}, metric {name, language,
condition, value, ...}, artifact {name, path, sha256, bytes}, log {level, message}, done {seconds},
error {message, bad_input}, interrupted {message}. Every event carries `event`, `stage`, `study` and `t`
(unix seconds); a stage unit's events also carry `attempt` and `seq` (1, 2, ... within the attempt), the
key the coordinator ingests them by, once each (lab.store.ingest). The terminal events (done, error,
interrupted) also carry `compute_seconds` and `gpu_seconds`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Optional


class WorkerExit(IntEnum):
    """A stage worker's exit code, shared by the worker (lab.run.worker) and the runner."""

    DONE = 0
    FAILED = 1  # the stage raised (traceback in the log), or the worker was killed
    BAD_INPUT = 2  # something the user gave is wrong (BadInput): the CLI exits 2 too
    INTERRUPTED = 3  # SIGTERM: the stage checkpointed and stopped; the next run resumes it


KINDS = ("started", "progress", "metric", "artifact", "log", "done", "error", "interrupted")
TERMINAL = ("done", "error", "interrupted")


def exit_of(event: "Event") -> Optional[WorkerExit]:
    """The exit a unit's terminal event stands for (None for any other event)."""
    if event.event == "done":
        return WorkerExit.DONE
    if event.event == "interrupted":
        return WorkerExit.INTERRUPTED
    if event.event in TERMINAL:
        return WorkerExit.BAD_INPUT if event.data.get("bad_input") else WorkerExit.FAILED
    return None


@dataclass(frozen=True)
class Event:
    event: str
    stage: str
    study: int
    data: dict[str, Any] = field(default_factory=dict)
    t: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps({"event": self.event, "stage": self.stage, "study": self.study, "t": self.t, **self.data},
                          ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, line: str) -> "Event":
        obj = json.loads(line)
        if not isinstance(obj, dict) or obj.get("event") not in KINDS:
            raise ValueError(f"not a worker event: {line[:80]!r}")
        kind = obj.pop("event")
        stage = obj.pop("stage", "")
        study = int(obj.pop("study", 0))
        t = float(obj.pop("t", time.time()))
        return cls(kind, stage, study, obj, t)

    def describe(self) -> str:
        d = self.data
        if self.event == "progress":
            total = d.get("total") or 0
            pct = f" ({100 * d['done'] / total:.0f}%)" if total else ""
            label = f"{d.get('label')}: " if d.get("label") else ""
            return f"{label}{d.get('done')}/{total} {d.get('unit', '')}{pct}"
        if self.event == "metric":
            where = "/".join(x for x in (d.get("language"), d.get("condition")) if x)
            return f"{d.get('name')}[{where}] = {d.get('value'):.4g}"
        if self.event == "artifact":
            return f"wrote {d.get('name')} ({d.get('bytes')} bytes)"
        if self.event == "done":
            return f"done in {d.get('seconds', 0):.1f}s"
        if self.event == "started":
            return f"started (attempt {d.get('attempt')}) in pid {d.get('pid')} on {d.get('host')}"
        return str(d.get("message", ""))
