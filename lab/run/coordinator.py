"""The coordinator: the one process that drives a study's stages, detached from any UI.

`neuron-pilot run STUDY --detach` and the TUI's run action start `python -m lab.run.coordinator` in its
own session (it outlives the UI, `q` and a dropped SSH link), stdout and stderr appended to
<home>/logs/study-N/runner.log. It runs lab.run.runner.Runner (same lease, same stages, same gates as
`run --headless`) with stage units submitted through an executor (lab.run.executor: the seam where a
cluster executor plugs in). With decide = "person" it stops at the first gate that needs a person,
records that the pilot waits on it, and exits 0; with decide = "rules" the protocol's rules decide
(recorded by "rule") and it runs to the verdict. Every event it relays is also appended to
runner.jsonl, so a reopened UI reads the whole log back. Never imports torch.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from lab.core.errors import BadInput
from lab.core.events import Event
from lab.store import Store, Study
from lab.store.db import pid_alive

DECIDE_MODES = ("person", "rules")
HOLDER = "coordinator"  # the lease holder name starts with this


def runner_log(store: Store, study_id: int) -> Path:
    return store.home.logs / f"study-{study_id}" / "runner.log"


def runner_events(store: Store, study_id: int) -> Path:
    return store.home.logs / f"study-{study_id}" / "runner.jsonl"


def study_decide_mode(study: Study) -> str:
    """The study file's `[study] decide` ("person" when absent: studies made before the key existed)."""
    cfg = json.loads(study.config_json or "{}")
    mode = str((cfg.get("study") or {}).get("decide") or "person")
    return mode if mode in DECIDE_MODES else "person"


def check_decide(mode: Optional[str]) -> Optional[str]:
    if mode is not None and mode not in DECIDE_MODES:
        raise BadInput(f"--decide {mode!r} is not a decision mode; use --decide person or --decide rules")
    return mode


@dataclass
class CoordinatorInfo:
    """A live coordinator of a study (read from its lease)."""

    pid: int
    host: str
    holder: str

    def describe(self) -> str:
        return f"runner pid {self.pid} on {self.host} ({self.holder})"


def coordinator_of(store: Store, study_id: int) -> Optional[CoordinatorInfo]:
    """The detached runner driving the study now, or None (no lease, another kind of holder, or dead)."""
    lease = store.lease(study_id)
    if lease is None or not str(lease.holder).startswith(HOLDER) or lease.pid is None:
        return None
    if lease.host == socket.gethostname() and not pid_alive(lease.pid):
        return None
    return CoordinatorInfo(int(lease.pid), str(lease.host), str(lease.holder))


def cancel_coordinator(store: Store, study_id: int) -> bool:
    """SIGTERM to the study's detached runner: it asks its running stage to checkpoint and stop and starts
    no further stage. False when no coordinator on this machine drives the study."""
    info = coordinator_of(store, study_id)
    if info is None or info.host != socket.gethostname():
        return False
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


@dataclass
class DetachedRun:
    """A coordinator just started: its process (the starter may poll it) and its log."""

    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None


def start_detached(store: Store, study_ref: str | int, decide: Optional[str] = None, until: Optional[str] = None,
                   accept_underpowered: bool = True) -> DetachedRun:
    """Start the study's coordinator in its own session; BadInput when a live runner already drives it."""
    check_decide(decide)
    study = store.study(study_ref)
    sid = int(study.id)  # type: ignore[arg-type]
    lease = store.lease(sid)
    if lease is not None and lease.pid is not None and (lease.host != socket.gethostname() or pid_alive(lease.pid)):
        raise BadInput(f"study {sid} is already driven by {lease.holder} (pid {lease.pid} on {lease.host}); "
                       f"follow it in the UI, or cancel it first")
    log = runner_log(store, sid)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "lab.run.coordinator", "--home", str(store.home.root), "--study", str(sid),
           "--decide", decide or study_decide_mode(study)]
    if until:
        cmd += ["--until", until]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return DetachedRun(proc, log)


class _Relay:
    """The coordinator's event sink: a readable line on stdout (runner.log) and the event in runner.jsonl."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "a", encoding="utf-8")

    def __call__(self, ev: Event) -> None:
        self.fh.write(ev.to_json() + "\n")
        self.fh.flush()
        if ev.event not in ("progress", "metric"):
            print(f"[{ev.stage or 'run'}] {ev.describe()}", flush=True)


def read_back(store: Store, study_id: int, stages: Sequence[str]) -> list[Event]:
    """Every event of the study's per-stage event files and the coordinator's own, in time order, once
    each (a relayed worker event appears in both files): what a reopened UI shows as the log."""
    from lab.run.workers import EventLog

    seen: set[str] = set()
    events: list[Event] = []
    paths = [store.home.event_log(study_id, s) for s in stages] + [runner_events(store, study_id)]
    for path in paths:
        for ev in EventLog(path, from_start=True).poll(max_bytes=1 << 26):
            key = ev.to_json()
            if key not in seen:
                seen.add(key)
                events.append(ev)
    events.sort(key=lambda e: e.t)
    return events


def main(argv: Optional[Sequence[str]] = None) -> int:
    from lab.run.runner import Runner

    ap = argparse.ArgumentParser(prog="python -m lab.run.coordinator")
    ap.add_argument("--home", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--decide", choices=DECIDE_MODES, default=None)
    ap.add_argument("--until", default=None)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal never ends the pilot
    try:
        store = Store(args.home, create=False, migrate=True)
        study = store.study(args.study)
        sid = int(study.id)  # type: ignore[arg-type]
        mode = args.decide or study_decide_mode(study)
        relay = _Relay(runner_events(store, sid))
        runner = Runner(store, sid, headless=(mode == "rules"), on_event=relay, holder=f"{HOLDER} ({mode})")
        signal.signal(signal.SIGTERM, lambda *_: runner.cancel())
        print(f"[run] coordinator pid {os.getpid()} drives study {sid}; decisions by {mode}", flush=True)
        outcome = runner.run(until=args.until)
    except BadInput as exc:
        print(f"error: {exc}", flush=True)
        return 2
    if outcome.awaiting_decision:
        message = f"the pilot waits on gate {outcome.awaiting_decision}: {outcome.message}"
        store.log(sid, outcome.awaiting_decision, message)
    else:
        message = outcome.message
    relay(Event("log", outcome.stopped_at or "", sid, {"level": "info" if outcome.code == 0 else "error",
                                                         "message": message}))
    print(f"[run] exit {outcome.code}: {message}", flush=True)
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
