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
from lab.core.events import Event, WorkerExit, exit_of
from lab.gates.base import Recommendation
from lab.gates.rules import recommend
from lab.run.compute import executor_for
from lab.run.executor import RESUBMIT_STATES, Executor, LocalExecutor, StageUnit, UnitStatus, settled
from lab.run.parts import PartsFollower
from lab.run.unit import start_stage
from lab.run.workers import recover, submit_unit
from lab.stages import READS_STORE, check_implementation, unit_parts
from lab.store import StageRun, StageState, Store, Study
from protocols import Protocol, load_protocol

EventSink = Callable[[Event], None]
LEASE_TTL_SECONDS = 60.0  # the store's lease lifetime (Store.acquire_lease / renew_lease default)
RENEW_SECONDS = 10.0  # how often the lease is renewed
INGEST_SECONDS = 0.25  # how often the coordinator ingests a running unit's event file
STATUS_SECONDS = {"local": 0.5, "slurm": 5.0}  # how often it asks the executor (squeue is not free)
NOT_RESUBMITTED = ("CANCELLED", "TIMEOUT", "DEADLINE")  # a stop the user or the job's own limit asked for
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
        self.compute: dict = dict(json.loads(self.study.config_json or "{}").get("compute") or {})
        # where stage units run (lab.run.executor): the study's [compute] executor unless one is given
        self.executor: Executor = executor or executor_for(self.compute)
        self.local = LocalExecutor()  # for the stages that read lab.db (READS_STORE)
        self.renew_seconds = RENEW_SECONDS
        self.lease_lost: Optional[str] = None  # why the lease was lost, once it was
        self._worker: Optional[StageUnit] = None
        self._parts: Optional[PartsFollower] = None  # while a stage's several units run
        self._stop = threading.Event()

    def _say(self, message: str, stage: str = "", level: str = "info") -> None:
        self.on_event(Event("log", stage, self.study_id, {"level": level, "message": message}))

    def cancel(self) -> None:
        """Ask the running stage to checkpoint and stop (SIGTERM to its worker); start no further stage."""
        self._stop.set()
        worker = self._worker
        if worker is not None:
            worker.cancel()
        parts = self._parts
        if parts is not None:
            parts.cancel()

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
            for stage in recover(self.store, self.study_id):
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

    def _executor_named(self, name: str) -> Executor:
        if name == self.executor.name:
            return self.executor
        return self.local if name == "local" else executor_for({**self.compute, "executor": name})

    def _wait_for_adopted(self, stage: str, run: StageRun) -> StageRun:
        """Follow a unit that this runner did not start (its runner or UI died, the unit went on): starting
        a second one on the same stage would race it. Its events are ingested (exactly once, whoever
        ingested some before), its state asked of its executor; a cancel reaches it."""
        if not run.job_id and not run.pid:
            return run
        executor = self._executor_named(run.executor or "local")
        unit = executor.reattach(self.store.home, self.study_id, stage, run.job_id or str(run.pid), run.host or "")
        self._worker = unit
        self._say(f"stage {stage} is still running in {unit.describe()} (started earlier); following it", stage)
        self._follow(stage, unit, executor)
        run = self.store.stage_run(self.study_id, stage)
        self._say(f"stage {stage} ended in its earlier unit: {run.state.value}", stage)
        return run

    def _submit(self, stage: str, executor: Executor) -> StageUnit:
        return submit_unit(self.store, self.study_id, stage, executor)

    def _spawn(self, stage: str) -> WorkerExit | int:
        executor = self.local if stage in READS_STORE else self.executor
        parts = unit_parts(self.protocol.get(stage).implementation, json.loads(self.study.config_json or "{}"))
        if parts:
            return self._spawn_parts(stage, parts, executor)
        self._say(f"starting stage {stage} in a worker process ({executor.name} executor)", stage)
        unit = self._submit(stage, executor)
        self._say(f"stage {stage} runs in {unit.describe()}", stage)
        return self._follow(stage, unit, executor)

    def _spawn_parts(self, stage: str, parts: list[str], executor: Executor) -> WorkerExit | int:
        """A stage that runs as several units (lab.run.parts), then its own unit, which merges their results.
        A stage whose units an earlier runner started (still running) resumes with them; otherwise it
        resumes or starts over as any stage does."""
        run = self.store.stage_run(self.study_id, stage)
        if run.state != StageState.running:
            start_stage(self.store, self.study_id, stage)
        self.store.update_stage(self.study_id, stage, state=StageState.running, executor=executor.name, job_id=None,
                                pid=None, host=None, error=None, finished_at=None, job_state=None)
        self._say(f"starting stage {stage} as {len(parts)} units ({executor.name} executor)", stage)
        self._parts = PartsFollower(self.store, self.study_id, self.compute, self._stop, self.on_event,
                                    lambda m, s, level: self._say(m, s, level), self._executor_named)
        try:
            code = self._parts.follow_parts(stage, parts, executor)
        finally:
            self._parts = None
        if code != WorkerExit.DONE:
            return code
        if self._stop.is_set():
            self.store.update_stage(self.study_id, stage, state=StageState.interrupted, error="cancelled")
            return WorkerExit.INTERRUPTED
        seconds = sum(r.compute_seconds for r in self.store.unit_runs(self.study_id, stage) if r.unit in parts)
        self._say(f"stage {stage}: its {len(parts)} units are done; merging", stage)
        unit = submit_unit(self.store, self.study_id, stage, executor, resume=True, prior_seconds=seconds)
        self._say(f"stage {stage} merges in {unit.describe()}", stage)
        return self._follow(stage, unit, executor)

    def _follow(self, stage: str, unit: StageUnit, executor: Executor) -> WorkerExit | int:
        """Ingest the unit's events (relaying each) until it ends; map a unit that died without saying so
        (killed, preempted, node failure, out of memory) to the stage's state and reason. Preemption and
        node failure resubmit, up to [compute] max_resubmits, and resume from the checkpoint."""
        self._worker = unit
        asked = False
        resubmits = 0
        max_resubmits = int(self.compute.get("max_resubmits", 2))
        every = STATUS_SECONDS.get(executor.name, 2.0)
        next_status = 0.0
        last_state = ""
        try:
            while True:
                if self._stop.is_set() and not asked:
                    asked = True
                    unit.cancel()
                ended = self._ingest(stage)
                if ended == WorkerExit.INTERRUPTED and not self._stop.is_set() and executor.name != "local":
                    # stopped by the scheduler, not by us: a preemption or a node failure sends SIGTERM
                    # first, so the worker checkpointed; the job's final state says whether to go on
                    status = settled(unit)
                    # a user's scancel (CANCELLED) or the time limit end here; anything else that stopped the
                    # worker (PREEMPTED, NODE_FAIL, or a node failure the controller booked as the worker's
                    # own exit) resumes, up to max_resubmits
                    again = status.alive or (status.state not in NOT_RESUBMITTED and resubmits < max_resubmits)
                    if again:
                        resubmits += 0 if status.alive else 1
                        self._say(f"stage {stage}: {unit.describe()} was stopped by the scheduler "
                                  f"({status.describe()}); " + ("it was requeued, following it" if status.alive else
                                  f"resubmitting ({resubmits} of {max_resubmits})") + ", resuming from its "
                                  "checkpoint", stage, "warning")
                        if status.alive:
                            self.store.update_stage(self.study_id, stage, state=StageState.running, error=None)
                        else:
                            unit = self._worker = self._submit(stage, executor)
                        continue
                if ended is not None:
                    if executor.name == "local":  # its end is recorded; let the process finish exiting
                        deadline = time.monotonic() + 60
                        while unit.status().alive and time.monotonic() < deadline:
                            time.sleep(0.05)
                    return ended
                if time.monotonic() < next_status:
                    time.sleep(INGEST_SECONDS)
                    continue
                next_status = time.monotonic() + every
                status = unit.status()
                if executor.name != "local" and status.describe() != last_state:
                    last_state = status.describe()
                    self.store.update_stage(self.study_id, stage, job_state=last_state,
                                            host=status.node or None)
                    self._say(f"stage {stage}: {unit.describe()} is {last_state}", stage)
                if status.alive:
                    continue
                time.sleep(0.2)  # the unit's last lines may still be on their way to the file
                ended = self._ingest(stage)
                if ended is not None:
                    return ended
                if status.state in RESUBMIT_STATES and resubmits < max_resubmits and not self._stop.is_set():
                    resubmits += 1
                    self.store.update_stage(self.study_id, stage, state=StageState.interrupted,
                                            error=f"{status.state}: resubmitted")
                    self._say(f"stage {stage}: {unit.describe()} ended {status.describe()}; resubmitting "
                              f"({resubmits} of {max_resubmits}), resuming from its checkpoint", stage, "warning")
                    unit = self._worker = self._submit(stage, executor)
                    continue
                return self._died(stage, unit, status, executor)
        finally:
            self._worker = None

    def _ingest(self, stage: str) -> Optional[WorkerExit]:
        """Ingest and relay new events; the unit's exit code once its terminal event is in."""
        code: Optional[WorkerExit] = None
        for event in self.store.ingest(self.study_id, stage):
            self.on_event(event)
            ended = exit_of(event)  # WorkerExit.DONE is 0: compare with None
            code = ended if ended is not None else code
        if code is None and self.store.stage_run(self.study_id, stage).state != StageState.running:
            run = self.store.stage_run(self.study_id, stage)  # someone else ingested its end
            code = {StageState.done: WorkerExit.DONE, StageState.interrupted: WorkerExit.INTERRUPTED}.get(
                run.state, WorkerExit.FAILED)
        return code

    def _died(self, stage: str, unit: StageUnit, status: UnitStatus, executor: Executor) -> WorkerExit:
        """A unit that ended without recording its end: say why in plain words, keep the stage resumable."""
        advice = executor.advice(status)
        log = unit.log_tail(12).strip()
        last = log.splitlines()[-1] if log else ""
        if status.state == "FAILED" and (status.exit_code is None or status.exit_code > 0):
            # it exited with an error of its own before recording it (a bad setup line, an unreadable input)
            state, code = StageState.failed, WorkerExit.FAILED
            if status.exit_code == WorkerExit.BAD_INPUT and last.startswith("error: "):
                code = WorkerExit.BAD_INPUT
        else:  # killed (a signal before its handler was in place, SIGKILL), cancelled, preempted, timed out, ...
            state, code = StageState.interrupted, WorkerExit.INTERRUPTED
        error = f"{unit.describe()} ended {status.describe()} without finishing: {advice}"
        if last:
            error += f" — its log ends: {last}"
        self.store.update_stage(self.study_id, stage, state=state, pid=None, error=error)
        if log:
            self.store.log(self.study_id, stage, f"the end of {unit.describe()}'s log:\n{log}", "error")
        self._say(f"stage {stage}: {error}", stage, "error")
        return code
