"""The stage runner: starts each stage as a worker process, relays its events, applies gates.

One runner per study at a time (a lease in the DB). Workers run in their own process session, so
a runner (or the UI) that dies leaves the stage running; the next runner finds stale stages and
marks them interrupted, and the worker resumes from its checkpoint. This module never imports
torch: the TUI uses it in-process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from lab.core.errors import BadInput
from lab.core.events import Event
from lab.gates.base import Recommendation
from lab.gates.rules import recommend
from lab.stages import built_stage_names
from lab.store import StageRun, StageState, Store, Study
from protocols import Protocol, ProtocolError, load_protocol

EventSink = Callable[[Event], None]
ADOPT_POLL_SECONDS = 0.5  # how often a runner looks at a worker it did not start


@dataclass
class RunOutcome:
    code: int  # CLI exit code: 0 ok (including a gate that stopped the pilot), 1 stage failed, 2 bad input
    message: str
    stopped_at: Optional[str] = None
    awaiting_decision: Optional[str] = None
    gate_stop: bool = False  # a gate's no-go/revise stopped the pilot (the verdict stage still runs)


def worker_command(home: str, study_id: int, stage: str) -> list[str]:
    return [sys.executable, "-m", "lab.worker", "--home", home, "--study", str(study_id), "--stage", stage]


def start_worker(store: Store, study_id: int, stage: str) -> subprocess.Popen[str]:
    """Start a stage's worker in its own session; its stderr goes to a log file, not a pipe."""
    err_path = store.home.event_log(study_id, stage).with_suffix(".stderr")
    err_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(err_path, "ab") as err:
        return subprocess.Popen(worker_command(str(store.home.root), study_id, stage), stdout=subprocess.PIPE,
                                stderr=err, stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                start_new_session=True, env=env)


def load_study_protocol(store: Store, study: Study) -> Protocol:
    try:
        return load_protocol(study.protocol, store.home.root)
    except ProtocolError as exc:
        raise BadInput(str(exc)) from None


class Runner:
    """Runs (or resumes) a study's stages in order, up to `until`."""

    def __init__(self, store: Store, study_ref: str | int, *, headless: bool = True,
                 on_event: Optional[EventSink] = None, holder: str = "neuron-pilot run") -> None:
        self.store = store
        self.study = store.study(study_ref)
        self.study_id = int(self.study.id)  # type: ignore[arg-type]
        self.protocol = load_study_protocol(store, self.study)
        self.headless = headless
        self.on_event = on_event or (lambda e: None)
        self.holder = holder
        self._proc: Optional[subprocess.Popen[str]] = None
        self._stop = threading.Event()

    def _say(self, message: str, stage: str = "", level: str = "info") -> None:
        self.on_event(Event("log", stage, self.study_id, {"level": level, "message": message}))

    def cancel(self) -> None:
        """Ask the running stage to checkpoint and stop (SIGTERM to its worker)."""
        self._stop.set()
        if self._proc and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGTERM)

    def apply_gate(self, stage: str) -> Optional[Recommendation]:
        spec = self.protocol.get(stage)
        rec = recommend(self.store, self.study, self.protocol, spec)
        if rec is not None:
            self.store.update_stage(self.study_id, stage, recommendation_json=json.dumps(rec.to_dict()))
        return rec

    def run(self, until: Optional[str] = None) -> RunOutcome:
        names = self.protocol.stage_names
        if until is not None and until not in names:
            raise BadInput(f"--until {until!r} is not a stage of protocol {self.protocol.name} "
                           f"(stages: {', '.join(names)}); use one of them")
        built = set(built_stage_names())
        self.store.acquire_lease(self.study_id, self.holder)  # the lease row records pid and host itself
        renew_stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(renew_stop,), daemon=True)
        renewer.start()
        try:
            for stage in self.store.sync_stages(self.study_id, names):
                self._say(f"stage {stage} is new in protocol {self.protocol.name}; added as pending", stage, "warning")
            for stage in self.store.mark_stale(self.study_id):
                self._say(f"stage {stage} was interrupted (worker gone); it will resume", stage, "warning")
            for spec in self.protocol.stage:
                outcome = self._run_one(spec.name, spec.implementation in built)
                if outcome is not None and outcome.gate_stop and until is None:
                    self._close_out(built)
                if outcome is not None:
                    return outcome
                if spec.name == until:
                    return RunOutcome(0, f"stopped after {until} as asked", stopped_at=until)
            return RunOutcome(0, "all stages done")
        finally:
            renew_stop.set()
            self.store.release_lease(self.study_id)

    def _close_out(self, built: set[str]) -> None:
        """After a gate stopped the pilot, still run the verdict stage(s) (gate rule `final`): they cost
        no compute, and the study then carries its recorded verdict and summary like a finished one."""
        for spec in self.protocol.stage:
            if spec.gate is not None and spec.gate.rule == "final" and spec.implementation in built:
                outcome = self._run_one(spec.name, True)
                if outcome is not None and outcome.code != 0:
                    self._say(f"verdict stage {spec.name} did not finish: {outcome.message}", spec.name, "warning")

    def _renew(self, stop: threading.Event) -> None:
        while not stop.wait(10):
            try:
                self.store.renew_lease(self.study_id)
            except Exception:
                pass

    def _run_one(self, stage: str, is_built: bool) -> Optional[RunOutcome]:
        run = self.store.stage_run(self.study_id, stage)
        if run.state == StageState.running:  # a worker an earlier runner (or UI) started, still alive
            run = self._wait_for_adopted(stage, run)
            if run.state == StageState.failed:
                return RunOutcome(1, f"stage {stage} failed: {run.error or 'see its log'}", stopped_at=stage)
            if run.state == StageState.done:
                self.apply_gate(stage)
        if run.state != StageState.done:
            if not is_built:
                msg = f"stage {stage} is not available yet: it is not built in this version of neuron-pilot"
                self._say(msg, stage, "warning")
                return RunOutcome(0, msg, stopped_at=stage)
            if self._stop.is_set():
                return RunOutcome(1, "cancelled", stopped_at=stage)
            code = self._spawn(stage)
            if code != 0:
                run = self.store.stage_run(self.study_id, stage)
                what = {2: "bad input", 3: "interrupted"}.get(code, "failed")
                return RunOutcome(2 if code == 2 else 1, f"stage {stage} {what}: {run.error or 'see its log'}",
                                  stopped_at=stage)
            self.apply_gate(stage)
        return self._gate(stage)

    def _gate(self, stage: str) -> Optional[RunOutcome]:
        spec = self.protocol.get(stage)
        if spec.gate is None:
            return None
        decision = self.store.latest_decision(self.study_id, stage)
        if decision is None:
            run = self.store.stage_run(self.study_id, stage)
            rec = json.loads(run.recommendation_json) if run.recommendation_json else None
            if rec is None:
                rec = self.apply_gate(stage).to_dict()  # type: ignore[union-attr]
            if not self.headless:
                return RunOutcome(0, f"stage {stage} done; its gate recommends {rec['verdict']} — record a decision to go on",
                                  stopped_at=stage, awaiting_decision=stage)
            verdict = rec["verdict"] if rec["verdict"] in ("go", "no-go", "revise") else "no-go"
            decision = self.store.add_decision(self.study_id, stage, verdict,
                                               "; ".join(rec["reasons"]) or "rule applied", "rule", rec)
            self._say(f"gate {stage}: {verdict} (by rule) — {decision.rationale}", stage)
        if decision.verdict != "go" and spec.gate.on_no_go == "stop" and spec.gate.rule != "final":
            return RunOutcome(0, f"pilot stopped at the {stage} gate: {decision.verdict} — {decision.rationale}",
                              stopped_at=stage, gate_stop=True)
        return None

    def _wait_for_adopted(self, stage: str, run: StageRun) -> StageRun:
        """Wait for a live worker that this runner did not start (its runner or UI died, the worker went
        on): starting a second worker on the same stage would race it. Ends when the worker records its
        end, or when it dies (then mark_stale makes the stage interrupted, and it resumes here)."""
        self._say(f"stage {stage} is still running in worker pid {run.pid} (started earlier); waiting for it", stage)
        asked_to_stop = False
        while run.state == StageState.running:
            if self._stop.is_set() and not asked_to_stop and run.pid and run.host == socket.gethostname():
                asked_to_stop = True
                try:
                    os.kill(run.pid, signal.SIGTERM)  # cancel: it checkpoints and stops
                except ProcessLookupError:
                    pass
            time.sleep(ADOPT_POLL_SECONDS)
            self.store.mark_stale(self.study_id)
            run = self.store.stage_run(self.study_id, stage)
        self._say(f"stage {stage} ended in its earlier worker: {run.state.value}", stage)
        return run

    def _spawn(self, stage: str) -> int:
        self._say(f"starting stage {stage} in a worker process", stage)
        proc = self._proc = start_worker(self.store, self.study_id, stage)
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                self.on_event(Event.from_json(line))
            except ValueError:
                self._say(line, stage)
        code = proc.wait()
        self._proc = None
        if code < 0:  # killed by a signal: the worker could not record its own end
            self.store.mark_stale(self.study_id)
            return 1
        return code
