"""The stage runner: starts each stage as a worker process, relays its events, applies gates.

One runner per study at a time (a lease in the DB, renewed while it runs: a runner that loses it
asks the running stage to checkpoint and stop, and says so). Workers (lab.run.workers) run in their
own process session, so a runner (or the UI) that dies leaves the stage running; the next runner
waits for it, or finds it dead and resumes the stage from its checkpoint. This module never imports
torch: the TUI uses it in-process.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from lab.core.errors import BadInput
from lab.core.events import Event, WorkerExit
from lab.gates.base import Recommendation
from lab.gates.rules import recommend
from lab.run.executor import Executor, LocalExecutor, StageUnit
from lab.run.workers import StageWorker
from lab.stages import check_implementation
from lab.store import StageRun, StageState, Store, Study
from protocols import Protocol, load_protocol

EventSink = Callable[[Event], None]
LEASE_TTL_SECONDS = 60.0  # the store's lease lifetime (Store.acquire_lease / renew_lease default)
RENEW_SECONDS = 10.0  # how often the lease is renewed


@dataclass
class RunOutcome:
    code: int  # CLI exit code: 0 ok (including a gate that stopped the pilot), 1 stage failed, 2 bad input
    message: str
    stopped_at: Optional[str] = None
    awaiting_decision: Optional[str] = None
    gate_stop: bool = False  # a gate's no-go/revise stopped the pilot (the verdict stage still runs)


def load_study_protocol(store: Store, study: Study) -> Protocol:
    return load_protocol(study.protocol, store.home.root)


class Runner:
    """Runs (or resumes) a study's stages in order, up to `until`."""

    def __init__(self, store: Store, study_ref: str | int, *, headless: bool = True,
                 on_event: Optional[EventSink] = None, holder: str = "neuron-pilot run",
                 executor: Optional[Executor] = None) -> None:
        self.store = store
        self.study = store.study(study_ref)
        self.study_id = int(self.study.id)  # type: ignore[arg-type]
        self.protocol = load_study_protocol(store, self.study)
        self.headless = headless
        self.on_event = on_event or (lambda e: None)
        self.holder = holder
        self.executor: Executor = executor or LocalExecutor()  # where stage units run (lab.run.executor)
        self.renew_seconds = RENEW_SECONDS
        self.lease_lost: Optional[str] = None  # why the lease was lost, once it was
        self._worker: Optional[StageUnit] = None
        self._stop = threading.Event()

    def _say(self, message: str, stage: str = "", level: str = "info") -> None:
        self.on_event(Event("log", stage, self.study_id, {"level": level, "message": message}))

    def cancel(self) -> None:
        """Ask the running stage to checkpoint and stop (SIGTERM to its worker); start no further stage."""
        self._stop.set()
        worker = self._worker
        if worker is not None:
            worker.cancel()

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
        for spec in self.protocol.stage:  # before the lease and any compute
            check_implementation(spec.implementation, spec.name)
        self.store.acquire_lease(self.study_id, self.holder)  # the lease row records pid and host itself
        renew_stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(renew_stop,), daemon=True)
        renewer.start()
        try:
            for stage in self.store.sync_stages(self.study_id, names):
                self._say(f"stage {stage} is new in protocol {self.protocol.name}; added as pending", stage, "warning")
            for stage in StageWorker.mark_dead(self.store, self.study_id):
                self._say(f"stage {stage} was interrupted (worker gone); it will resume", stage, "warning")
            for spec in self.protocol.stage:
                outcome = self._run_one(spec.name)
                if self.lease_lost is not None:
                    return self._lease_outcome(spec.name)
                if outcome is not None and outcome.gate_stop and until is None:
                    self._close_out()
                if outcome is not None:
                    return outcome
                if spec.name == until:
                    return RunOutcome(0, f"stopped after {until} as asked", stopped_at=until)
            return RunOutcome(0, "all stages done")
        finally:
            renew_stop.set()
            self.store.release_lease(self.study_id)

    def _close_out(self) -> None:
        """After a gate stopped the pilot, still run the verdict stage(s) (gate rule `final`): they cost
        no compute, and the study then carries its recorded verdict and summary like a finished one."""
        for spec in self.protocol.stage:
            if spec.gate is not None and spec.gate.rule == "final":
                outcome = self._run_one(spec.name)
                if outcome is not None and outcome.code != 0:
                    self._say(f"verdict stage {spec.name} did not finish: {outcome.message}", spec.name, "warning")

    def _renew(self, stop: threading.Event) -> None:
        """Renew the lease until the run ends. A lease that another runner took (or that was removed),
        or one that could not be renewed before it expired, is lost: the running stage is asked to
        checkpoint and stop, and no further stage starts. Two runners must never drive one study."""
        last_ok = time.monotonic()
        while not stop.wait(self.renew_seconds):
            try:
                self.store.renew_lease(self.study_id)
                lease = self.store.lease(self.study_id)
            except Exception as exc:  # a busy DB: try again while the lease is still ours
                if time.monotonic() - last_ok + self.renew_seconds < LEASE_TTL_SECONDS:
                    continue
                reason = f"it could not be renewed before it expired ({type(exc).__name__}: {exc})"
            else:
                if lease is not None and lease.pid == os.getpid() and lease.host == socket.gethostname():
                    last_ok = time.monotonic()
                    continue
                reason = (f"{lease.holder} (pid {lease.pid} on {lease.host}) holds it now" if lease is not None
                          else "its row was removed")
            self._lose_lease(reason)
            return

    def _lose_lease(self, reason: str) -> None:
        self.lease_lost = reason
        running = self._worker.stage if self._worker is not None else ""
        self.cancel()
        try:
            self._say(f"this runner lost study {self.study_id}'s lease: {reason}; "
                      + (f"asked stage {running} to checkpoint and stop" if running else "starting no further stage"),
                      running, "error")
        except Exception:  # nobody follows the events any more (the UI quit): the stop stands
            pass

    def _lease_outcome(self, stage: str) -> RunOutcome:
        run = self.store.stage_run(self.study_id, stage)
        return RunOutcome(1, f"stopped: this runner lost study {self.study_id}'s lease ({self.lease_lost}); stage "
                             f"{stage} is {run.state.value} — when no other runner drives the study, run again to "
                             f"resume", stopped_at=stage)

    def _run_one(self, stage: str) -> Optional[RunOutcome]:
        run = self.store.stage_run(self.study_id, stage)
        if run.state == StageState.running:  # a worker an earlier runner (or UI) started, still alive
            run = self._wait_for_adopted(stage, run)
            if run.state == StageState.failed:
                return RunOutcome(1, f"stage {stage} failed: {run.error or 'see its log'}", stopped_at=stage)
            if run.state == StageState.done:
                self.apply_gate(stage)
        if run.state != StageState.done:
            if self._stop.is_set():
                return RunOutcome(1, "cancelled", stopped_at=stage)
            code = self._spawn(stage)
            if code != WorkerExit.DONE:
                run = self.store.stage_run(self.study_id, stage)
                what = {WorkerExit.BAD_INPUT: "bad input", WorkerExit.INTERRUPTED: "interrupted"}.get(code, "failed")
                return RunOutcome(2 if code == WorkerExit.BAD_INPUT else 1,
                                  f"stage {stage} {what}: {run.error or 'see its log'}", stopped_at=stage)
            self.apply_gate(stage)
        return self._gate(stage)

    def _gate(self, stage: str) -> Optional[RunOutcome]:
        spec = self.protocol.get(stage)
        if spec.gate is None or self.lease_lost is not None:  # a runner without the lease decides nothing
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
            verdict = rec["verdict"] if rec["verdict"] in ("go", "no-go", "revise", "inconclusive") else "no-go"
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
        end, or when it dies (then its stage is interrupted, and it resumes here). A cancel reaches it."""
        worker = self.executor.adopt(self.store, self.study_id, stage)
        if worker is None:
            return self.store.stage_run(self.study_id, stage)
        self._say(f"stage {stage} is still running in {worker.describe()} (started earlier); waiting for it", stage)
        self._worker = worker
        try:
            run = worker.wait_ended(self._stop)
        finally:
            self._worker = None
        self._say(f"stage {stage} ended in its earlier worker: {run.state.value}", stage)
        return run

    def _spawn(self, stage: str) -> WorkerExit | int:
        self._say(f"starting stage {stage} in a worker process", stage)
        worker = self._worker = self.executor.submit(self.store, self.study_id, stage)
        if self._stop.is_set():  # a cancel (or a lost lease) that came while the worker was starting
            worker.cancel()
        try:
            for event in worker.events():
                self.on_event(event)
            return worker.wait()
        except BaseException:  # whoever followed the events went away (the UI quit): the worker goes on
            worker.detach()    # alone, and must never block on a pipe nobody reads
            raise
        finally:
            self._worker = None
