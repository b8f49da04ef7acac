"""The one API for a stage's worker process: start it, adopt it, watch it, cancel it, check it is alive.

A worker is `python -m lab.worker` in its own process session, so it outlives whoever started it. A
`StageWorker` is either *started* here (this process reads its events from the pipe and waits for its
exit code) or *adopted* (found running, started by an earlier runner or UI: watched through its event
log and its row in the store). The runner and the TUI use only this module for workers; nothing else
touches their pids, signals or process handles. Never imports torch.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

from lab.core.events import Event, WorkerExit
from lab.store import StageRun, StageState, Store
from lab.store.db import pid_alive

ADOPT_POLL_SECONDS = 0.5  # how often a waiter looks at a worker it did not start


def worker_command(home: str, study_id: int, stage: str) -> list[str]:
    return [sys.executable, "-m", "lab.worker", "--home", home, "--study", str(study_id), "--stage", stage]


class EventLog:
    """Tail of a stage's JSON-lines event log (<home>/logs/study-N/<stage>.jsonl), which the worker
    appends every event to as well as to stdout: how an adopted worker is watched."""

    def __init__(self, path: Path, from_start: bool = False) -> None:
        self.path = path
        self.offset = 0 if from_start or not path.exists() else path.stat().st_size
        self._partial = b""

    def poll(self, max_bytes: int = 1 << 20) -> list[Event]:
        """Events appended since the last poll (a half-written last line waits for the next poll)."""
        try:
            with open(self.path, "rb") as fh:
                size = fh.seek(0, 2)
                if size < self.offset:  # the log was replaced; start over
                    self.offset, self._partial = 0, b""
                fh.seek(self.offset)
                chunk = fh.read(max_bytes)
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        events = []
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                events.append(Event.from_json(line))
            except (ValueError, TypeError):
                continue
        return events


class StageWorker:
    """One stage's worker process, started here or adopted."""

    def __init__(self, store: Store, study_id: int, stage: str, *, pid: Optional[int], host: Optional[str],
                 proc: Optional[subprocess.Popen[str]] = None) -> None:
        self.store = store
        self.study_id = study_id
        self.stage = stage
        self.pid = pid
        self.host = host or socket.gethostname()
        self._proc = proc
        self._log = EventLog(store.home.event_log(study_id, stage))

    # ---- getting one --------------------------------------------------------------------------
    @classmethod
    def start(cls, store: Store, study_id: int, stage: str) -> "StageWorker":
        """Start the stage's worker in its own session; stdout is its event pipe, stderr goes to a log file."""
        err_path = store.home.event_log(study_id, stage).with_suffix(".stderr")
        err_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(err_path, "ab") as err:
            proc = subprocess.Popen(worker_command(str(store.home.root), study_id, stage), stdout=subprocess.PIPE,
                                    stderr=err, stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                    start_new_session=True, env=env)
        return cls(store, study_id, stage, pid=proc.pid, host=socket.gethostname(), proc=proc)

    @classmethod
    def adopt(cls, store: Store, study_id: int, stage: str) -> Optional["StageWorker"]:
        """The live worker of a stage marked running, or None. A dead worker's stage becomes interrupted."""
        store.mark_stale(study_id)
        run = store.stage_run(study_id, stage)
        if run.state != StageState.running:
            return None
        return cls(store, study_id, stage, pid=run.pid, host=run.host)

    @staticmethod
    def mark_dead(store: Store, study_id: int) -> list[str]:
        """Stages marked running whose worker is gone (dead pid on this host, or a silent heartbeat):
        marked interrupted now, so the next run resumes them. Returns their names."""
        return store.mark_stale(study_id)

    @classmethod
    def running(cls, store: Store, study_id: int) -> list["StageWorker"]:
        """Every live worker of the study (stages whose worker died are marked interrupted first)."""
        store.mark_stale(study_id)
        return [cls(store, study_id, r.stage, pid=r.pid, host=r.host)
                for r in store.stage_runs(study_id) if r.state == StageState.running]

    # ---- watching -----------------------------------------------------------------------------
    @property
    def started_here(self) -> bool:
        return self._proc is not None

    def describe(self) -> str:
        return f"worker pid {self.pid} on {self.host}"

    def events(self) -> Iterator[Event]:
        """A started worker's events as they arrive on its pipe, until it closes (a line that is not an
        event comes as a log event). Adopted workers are watched with poll()."""
        if self._proc is None or self._proc.stdout is None:
            raise RuntimeError(f"stage {self.stage}'s worker was not started here; use poll()")
        for line in self._proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                yield Event.from_json(line)
            except ValueError:
                yield Event("log", self.stage, self.study_id, {"level": "info", "message": line})

    def poll(self) -> list[Event]:
        """New events from the stage's event log since the last poll (or since this handle was made)."""
        return self._log.poll()

    def is_alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        if self.host == socket.gethostname():
            return pid_alive(self.pid)
        return self.run().state == StageState.running  # another host: its heartbeat decides (mark_stale)

    def run(self) -> StageRun:
        """The stage's row now; a worker found dead has its stage marked interrupted first."""
        if self._proc is None:
            self.store.mark_stale(self.study_id)
        return self.store.stage_run(self.study_id, self.stage)

    def wait(self) -> WorkerExit | int:
        """A started worker's exit code. Killed by a signal, it could not record its own end: its stage is
        marked interrupted and the code is FAILED."""
        if self._proc is None:
            raise RuntimeError(f"stage {self.stage}'s worker was not started here; use wait_ended()")
        code = self._proc.wait()
        if code < 0:
            self.store.mark_stale(self.study_id)
            return WorkerExit.FAILED
        try:
            return WorkerExit(code)
        except ValueError:
            return code

    def wait_ended(self, stop: Optional[threading.Event] = None, poll_s: float = ADOPT_POLL_SECONDS) -> StageRun:
        """Wait until the stage is no longer running (the worker recorded its end, or died and the stage
        was marked interrupted). When `stop` is set, the worker is asked once to checkpoint and stop."""
        asked = False
        run = self.run()
        while run.state == StageState.running:
            if stop is not None and stop.is_set() and not asked:
                asked = True
                self.cancel()
            time.sleep(poll_s)
            run = self.run()
        return run

    # ---- stopping -----------------------------------------------------------------------------
    def cancel(self) -> bool:
        """Ask the worker to checkpoint and stop (SIGTERM). False when there is no live worker this
        machine can signal (it ended, or it runs on another host)."""
        if self._proc is not None:
            if self._proc.poll() is not None:
                return False
            self._proc.send_signal(signal.SIGTERM)
            return True
        if self.host != socket.gethostname() or not pid_alive(self.pid):
            return False
        try:
            os.kill(self.pid, signal.SIGTERM)  # type: ignore[arg-type]  # pid_alive checked it is set
        except ProcessLookupError:
            return False
        return True

    def detach(self) -> None:
        """Stop reading a started worker's pipe (it goes on, writing its event log and the store), so it
        never blocks on a full pipe once nobody follows it."""
        stdout = self._proc.stdout if self._proc is not None else None
        if stdout is not None:
            try:
                stdout.close()
            except OSError:
                pass
