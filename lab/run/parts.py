"""A stage as several units: submit them (bounded, one per GPU here, or as a Slurm array), follow each, resubmit.

A stage whose implementation names units (lab.stages.unit_parts: identify with `[identify] shards =
N` runs `shard-1-of-N` ... `shard-N-of-N`; evaluate with `[compute] max_parallel = N` runs
`runs-1-of-N` ...) runs those first and then its own unit, which merges their results. Each unit is a worker process like any stage unit (`python -m lab.worker ... --unit NAME`)
with its own files, named `STAGE.NAME` (unit input, event file, heartbeat, log), its own checkpoint
folder (inside the stage's), ingest cursor and UnitRun row (job id, state, attempts). `follow_parts`
submits the units that are not done yet (a done unit is never rerun while the stage resumes), at most
`slots` at a time: one per GPU on a machine with GPUs (CUDA_VISIBLE_DEVICES names it), else [compute]
max_parallel; a Slurm executor submits them all as one job array whose `%max_parallel` bounds them.
Each unit gets the runner's rules for a single unit: preempted / node-failed units are resubmitted
up to [compute] max_resubmits and resume from their checkpoint. A unit that fails leaves the others
to finish their work, and the stage ends failed or interrupted (a rerun runs only the units not done).
Never imports torch.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from typing import Any, Callable, Optional

from lab.core.events import Event, WorkerExit, exit_of
from lab.run.executor import RESUBMIT_STATES, Executor, StageUnit, UnitStatus, settled, worker_command
from lab.run.unit import prepare_part
from lab.stages import part_info
from lab.store import StageState, Store
from lab.store.tables import utcnow
from lab.store.units import unit_key

INGEST_SECONDS = 0.25
STATUS_SECONDS = {"local": 0.5, "slurm": 5.0}
NOT_RESUBMITTED = ("CANCELLED", "TIMEOUT", "DEADLINE")


def local_gpus() -> list[str]:
    """The GPUs a local unit may be given: CUDA_VISIBLE_DEVICES when set, else `nvidia-smi -L`'s list."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


class PartsFollower:
    """Runs a stage's several units to their ends for one runner (which passes its store, study, compute
    table, stop flag, event relay and a way to say things)."""

    def __init__(self, store: Store, study_id: int, compute: dict[str, Any], stop: Any,
                 on_event: Callable[[Event], None], say: Callable[[str, str, str], None],
                 executor_named: Callable[[str], Executor]) -> None:
        self.store, self.study_id, self.compute = store, study_id, compute
        self.stop, self.on_event, self.say, self.executor_named = stop, on_event, say, executor_named
        self.live: dict[str, StageUnit] = {}
        self.gpu_of: dict[str, str] = {}

    def cancel(self) -> None:
        for unit in list(self.live.values()):
            try:
                unit.cancel()
            except Exception:  # one unit that cannot be reached must not keep the others running
                pass

    def slots(self, executor: Executor) -> tuple[int, list[str]]:
        if executor.name != "local":
            return 1 << 30, []
        gpus = local_gpus()
        if gpus:
            return len(gpus), gpus
        return max(1, int(self.compute.get("max_parallel", 1))), []

    def follow_parts(self, stage: str, names: list[str], executor: Executor) -> int:
        """Every unit of `names` not done yet, run to its end; DONE when all are done."""
        sid = self.study_id
        rows = {r.unit: r for r in self.store.unit_runs(sid, stage)}
        for name in names:  # units of another layout (an earlier shard count) stay as they are, unused
            rows.setdefault(name, self.store.unit_run(sid, stage, name))
        outcome: dict[str, int] = {n: WorkerExit.DONE for n in names if rows[n].state == StageState.done}
        for name in names:
            run = rows[name]
            if name in outcome or run.state != StageState.running or not run.job_id:
                continue
            unit = self.executor_named(run.executor).reattach(self.store.home, sid, unit_key(stage, name),
                                                              run.job_id, run.host or "")
            if unit.status().alive:
                self.live[name] = unit
                self.say(f"stage {stage}: unit {name} still runs in {unit.describe()}; following it", stage, "info")
        queue = [n for n in names if n not in outcome and n not in self.live]
        limit, gpus = self.slots(executor)
        resubmits: dict[str, int] = {n: 0 for n in names}
        max_resubmits = int(self.compute.get("max_resubmits", 2))
        every = STATUS_SECONDS.get(executor.name, 2.0)
        next_status, asked = 0.0, False
        if queue and executor.name != "local":  # a Slurm job array for all of them
            self._submit(stage, queue, executor, {})
            queue = []
        while queue or self.live:
            if self.stop.is_set() and not asked:
                asked = True
                queue.clear()
                self.cancel()
            while queue and len(self.live) < limit and not self.stop.is_set():
                free = [g for g in gpus if g not in self.gpu_of.values()]
                name = queue.pop(0)
                self._submit(stage, [name], executor, {name: free[0]} if free else {})
            check = time.monotonic() >= next_status
            if check:
                next_status = time.monotonic() + every
            for name, unit in list(self.live.items()):
                ended = self._ingest(stage, name)
                if ended == WorkerExit.INTERRUPTED and not self.stop.is_set() and executor.name != "local":
                    status = settled(unit)
                    if status.alive or (status.state not in NOT_RESUBMITTED and resubmits[name] < max_resubmits):
                        if not status.alive:
                            resubmits[name] += 1
                            self._submit(stage, [name], executor, {})
                        self.say(f"stage {stage}: unit {name} was stopped by the scheduler ({status.describe()}); "
                                 f"resuming it from its checkpoint", stage, "warning")
                        continue
                if ended is None and check:
                    status = unit.status()
                    if executor.name != "local":
                        self.store.update_unit(sid, stage, name, job_state=status.describe(), host=status.node or None)
                    if not status.alive:
                        time.sleep(0.2)  # its last lines may still be on their way to the file
                        ended = self._ingest(stage, name)
                        if ended is None and status.state in RESUBMIT_STATES and resubmits[name] < max_resubmits \
                                and not self.stop.is_set():
                            resubmits[name] += 1
                            self.say(f"stage {stage}: unit {name} ended {status.describe()}; resubmitting", stage,
                                     "warning")
                            self._submit(stage, [name], executor, {})
                            continue
                        if ended is None:
                            ended = self._died(stage, name, unit, status, executor)
                if ended is not None:
                    if executor.name == "local":
                        deadline = time.monotonic() + 60
                        while unit.status().alive and time.monotonic() < deadline:
                            time.sleep(0.05)
                    outcome[name] = ended
                    self.live.pop(name, None)
                    self.gpu_of.pop(name, None)
            if check:  # the stage row's progress at the executor's pace, not at every ingest
                self._progress(stage, names)
            time.sleep(INGEST_SECONDS)
        return self._verdict(stage, names, outcome)

    def _submit(self, stage: str, names: list[str], executor: Executor, gpu: dict[str, str]) -> None:
        sid, home = self.study_id, self.store.home
        for name in names:
            prepare_part(self.store, sid, stage, part_info(name))
        keys = [unit_key(stage, n) for n in names]
        commands = [worker_command(home, sid, stage, n) for n in names]
        if len(names) == 1 and names[0] in gpu:
            units = [executor.submit(home, sid, keys[0], commands[0], env={"CUDA_VISIBLE_DEVICES": gpu[names[0]]})]
        elif len(names) == 1:
            units = [executor.submit(home, sid, keys[0], commands[0])]
        else:
            units = executor.submit_array(home, sid, stage, keys, commands)
        local = executor.name == "local"
        for name, unit in zip(names, units):
            row = self.store.unit_run(sid, stage, name)
            self.store.update_unit(sid, stage, name, state=StageState.running, executor=executor.name,
                                   job_id=unit.job_id, pid=int(unit.job_id) if local else None,
                                   host=socket.gethostname() if local else None,
                                   attempts=row.attempts + 1, heartbeat_at=utcnow(), finished_at=None, error=None,
                                   job_state=None if local else "submitted")
            self.live[name] = unit
            if name in gpu:
                self.gpu_of[name] = gpu[name]
            where = f" on GPU {gpu[name]}" if name in gpu else ""
            self.say(f"stage {stage}: unit {name} runs in {unit.describe()}{where}", stage, "info")

    def _ingest(self, stage: str, name: str) -> Optional[int]:
        code: Optional[int] = None
        for event in self.store.ingest_unit(self.study_id, stage, name):
            self.on_event(event)
            ended = exit_of(event)  # WorkerExit.DONE is 0: compare with None
            code = ended if ended is not None else code
        return code

    def _died(self, stage: str, name: str, unit: StageUnit, status: UnitStatus, executor: Executor) -> int:
        log = unit.log_tail(12).strip()
        last = log.splitlines()[-1] if log else ""
        failed = status.state == "FAILED" and (status.exit_code is None or status.exit_code > 0)
        error = f"unit {name}: {unit.describe()} ended {status.describe()} without finishing: {executor.advice(status)}"
        if last:
            error += f" — its log ends: {last}"
        self.store.update_unit(self.study_id, stage, name, pid=None, error=error,
                               state=StageState.failed if failed else StageState.interrupted)
        self.say(f"stage {stage}: {error}", stage, "error")
        if failed and status.exit_code == WorkerExit.BAD_INPUT and last.startswith("error: "):
            return WorkerExit.BAD_INPUT
        return WorkerExit.FAILED if failed else WorkerExit.INTERRUPTED

    def _progress(self, stage: str, names: list[str]) -> None:
        """The stage row's progress: the units' token counts added up, and how many are done."""
        done = total = finished = 0
        for run in self.store.unit_runs(self.study_id, stage):
            if run.unit not in names:
                continue
            finished += run.state == StageState.done
            p = json.loads(run.progress_json) if run.progress_json else {}
            done += int(p.get("overall_done") or 0) if run.state != StageState.done else int(p.get("overall_total") or 0)
            total += int(p.get("overall_total") or 0)
        progress = {"done": done, "total": total, "unit": "tokens",
                    "label": f"{finished}/{len(names)} units done, {len(self.live)} running"}
        self.store.update_stage(self.study_id, stage, heartbeat_at=utcnow(), progress_json=json.dumps(progress))

    def _verdict(self, stage: str, names: list[str], outcome: dict[str, int]) -> int:
        bad = {n: c for n, c in outcome.items() if c != WorkerExit.DONE}
        if not bad and all(n in outcome for n in names):
            return WorkerExit.DONE
        rows = {r.unit: r for r in self.store.unit_runs(self.study_id, stage)}
        worst = WorkerExit.INTERRUPTED
        for code in (WorkerExit.BAD_INPUT, WorkerExit.FAILED):
            if code in bad.values():
                worst = code
                break
        why = "; ".join(f"{n}: {rows[n].error or rows[n].state.value}" for n in bad) or "stopped before its units ran"
        state = StageState.interrupted if worst == WorkerExit.INTERRUPTED else StageState.failed
        self.store.update_stage(self.study_id, stage, state=state, pid=None, finished_at=utcnow(), error=why)
        return worst
