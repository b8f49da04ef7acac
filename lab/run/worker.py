"""A stage unit in its own process: ``python -m lab.worker --home H --study S --stage NAME``.

It never opens lab.db (issue #17: SQLite on a cluster's network filesystem takes one writer host): it
reads the input the coordinator wrote (lab.run.unit), appends JSON-lines events to the stage's event
file (and stdout), rewrites a heartbeat file every few seconds, and leaves every result to the
coordinator, which ingests the event file (lab.store.ingest). SIGTERM → the stage checkpoints at its
next safe point and exits with WorkerExit.INTERRUPTED. Exit codes: lab.core.events.WorkerExit
(0 done, 1 failed, 2 bad input, 3 interrupted). Started, re-attached, watched and cancelled through
an executor (lab.run.executor); `run_stage` runs one stage start to end in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Optional

from lab.core import faults
from lab.core import resources
from lab.core.artifacts import remove_stale_temps
from lab.core.errors import BadInput, StageInterrupted
from lab.core.events import WorkerExit
from lab.core.paths import Home
from lab.run.unit import UnitSink, prepare_unit, read_unit
from lab.stages import implementation
from lab.stages.context import StageContext, part_checkpoint_dir
from lab.store.tables import utcnow
from lab.store import StageState, Store
from protocols import load_protocol

HEARTBEAT_SECONDS = 2.0
STOP_GRACE_ENV = "NEURON_PILOT_STOP_GRACE_S"  # SIGTERM → exit at the latest, in seconds (default 20)

# Tests only: with NEURON_PILOT_TEST_PAUSE_STAGE=<stage>, that stage waits (marked running, heart
# beating) for NEURON_PILOT_TEST_PAUSE_SECONDS (default 60) before its work starts, so a test can
# kill the worker mid-stage. Unset in normal use; it changes nothing else.
PAUSE_STAGE_ENV = "NEURON_PILOT_TEST_PAUSE_STAGE"
PAUSE_SECONDS_ENV = "NEURON_PILOT_TEST_PAUSE_SECONDS"


def _heartbeat(home: Home, study_id: int, stage: str, attempt: int, stop: threading.Event) -> None:
    """Rewrite the unit's heartbeat file (the coordinator's ingest turns it into heartbeat_at)."""
    path = home.heartbeat_file(study_id, stage)
    while True:
        try:
            tmp = path.with_suffix(f".beat.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"t": time.time(), "attempt": attempt, "pid": os.getpid()}), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:  # a full or flaky disk must not kill the stage; the next beat tries again
            pass
        if stop.wait(HEARTBEAT_SECONDS):
            return


def _last_seq(path: Path, attempt: int) -> int:
    """The highest seq this attempt already wrote (0 for a new attempt). A scheduler that requeues a job
    (node failure, preemption) runs the same unit input again: its events must number on from there,
    or the coordinator's ingest, which keys events by (attempt, seq), would take them for old ones."""
    last = 0
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                if b'"attempt": %d,' % attempt not in raw and b'"attempt": %d}' % attempt not in raw:
                    continue
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue
                if obj.get("attempt") == attempt and isinstance(obj.get("seq"), int):
                    last = max(last, obj["seq"])
    except OSError:
        return 0
    return last


def stop_grace_seconds() -> float:
    """NEURON_PILOT_STOP_GRACE_S, default 20: below Slurm's default KillWait (30 s); set it lower where a
    site's KillWait is shorter."""
    try:
        return max(0.0, float(os.environ.get(STOP_GRACE_ENV, "20")))
    except ValueError:
        return 20.0


def _stop_deadline(ctx: StageContext, prior_seconds: float, t_start: float) -> None:
    """After SIGTERM the stage stops at its next checkpoint, within seconds. A stage that cannot (a large
    model still loading, one long step) would be SIGKILLed by the scheduler (Slurm's KillWait, 30 s by
    default) without a word: exit here first, recording the interruption; the next run resumes from the
    last checkpoint, which is all a SIGKILL would have left."""
    grace = stop_grace_seconds()
    time.sleep(grace)
    seconds = prior_seconds + time.monotonic() - t_start
    ctx.emit("interrupted", compute_seconds=seconds, gpu_seconds=0.0,
             message=f"stage {ctx.stage} did not reach a checkpoint within {grace:g} s of SIGTERM; "
                     f"it stopped there and resumes from its last checkpoint")
    os._exit(WorkerExit.INTERRUPTED)


def _test_pause(ctx: StageContext) -> None:
    """See PAUSE_STAGE_ENV: a test hook, inert unless that variable names this stage. A SIGTERM during
    the pause ends it, and the stage stops there as it would at a checkpoint."""
    if os.environ.get(PAUSE_STAGE_ENV) == ctx.stage:
        ctx.wait_for_stop(float(os.environ.get(PAUSE_SECONDS_ENV, "60")))
        ctx.check_stop()


def run_unit(home: str | Home, study_id: int, stage: str, out: Any = None, part: Optional[str] = None) -> int:
    """Run one stage unit from its input file; results go to its event file only. Returns WorkerExit.
    `part` names one unit of a stage that runs as several (``shard-2-of-3``): its files go by
    ``STAGE.PART`` (input, events, heartbeat), and the stage sees it as ``ctx.part``."""
    home = home if isinstance(home, Home) else Home(home)
    unit = read_unit(home, study_id, stage, part)
    key = stage if part is None else f"{stage}.{part}"
    study = unit.study_row()
    protocol = load_protocol(study.protocol, home.root)  # a ProtocolError is bad input (exit 2)
    spec = protocol.get(stage)
    impl = implementation(spec.implementation)
    # a killed writer's half files, never referenced: in the whole stage's folder for the stage's own unit
    # (its other units are done by then), only in its own checkpoint folder for one of several units, whose
    # siblings may be writing theirs right now
    remove_stale_temps(home.stage_dir(study_id, stage) if part is None
                       else part_checkpoint_dir(home, study_id, stage, part))
    faults.set_stage(key)  # tests only: a fault may name one unit (identify.shard-2-of-3)

    log_path = home.event_log(study_id, key)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ctx = StageContext(UnitSink(home, unit), study, protocol, spec, out=out, event_log=log_path, attempt=unit.attempt,
                       part=unit.part)
    ctx.continue_numbering(_last_seq(log_path, unit.attempt))  # a job the scheduler requeued runs this attempt again
    t_start = time.monotonic()

    def on_sigterm(*_: Any) -> None:
        if ctx.stop_requested:
            return
        ctx.request_stop()
        threading.Thread(target=_stop_deadline, args=(ctx, unit.prior_seconds, t_start), daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    ctx.emit("started", pid=os.getpid(), host=socket.gethostname(), attempt=unit.attempt, resume=unit.resume)
    stop_beat = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(home, study_id, key, unit.attempt, stop_beat), daemon=True)
    beat.start()
    t0 = time.monotonic()

    def end(kind: str, **data: Any) -> None:
        seconds = unit.prior_seconds + time.monotonic() - t0
        on_gpu = str(ctx.cached("device", lambda: "cpu")).startswith("cuda")
        ctx.emit(kind, compute_seconds=seconds, gpu_seconds=seconds if on_gpu else 0.0, **data)

    try:
        _test_pause(ctx)
        with resources.recording(resources.stage_recorder(ctx)):
            impl(ctx)
    except StageInterrupted as exc:
        end("interrupted", message=str(exc))
        return WorkerExit.INTERRUPTED
    except BadInput as exc:
        end("error", message=str(exc), bad_input=True)
        return WorkerExit.BAD_INPUT
    except Exception as exc:  # the stage failed; the traceback goes to the log, one line to the stage row
        ctx.log(traceback.format_exc(), level="error")
        end("error", message=f"{type(exc).__name__}: {exc}".splitlines()[0], bad_input=False)
        return WorkerExit.FAILED
    finally:
        stop_beat.set()
        faults.set_stage(None)
    end("done", seconds=time.monotonic() - t0)
    return WorkerExit.DONE


def run_stage(home: str, study_ref: str, stage: str, fresh: bool = False, out: Any = None) -> int:
    """One stage, start to end, in this process, as the coordinator runs it through a unit: prepare the
    unit's input (resume or start over), run the unit, ingest its events. For tests and one-off use."""
    store = Store(home, create=False)
    study_id = int(store.study(study_ref).id)  # type: ignore[arg-type]
    unit = prepare_unit(store, study_id, stage, fresh=fresh)
    store.update_stage(study_id, stage, state=StageState.running, executor="local", job_id=str(os.getpid()),
                       pid=os.getpid(), host=socket.gethostname(), attempts=unit.attempt, heartbeat_at=utcnow(),
                       finished_at=None, error=None, progress_json=None, job_state=None)
    try:
        return run_unit(store.home, study_id, stage, out=out)
    finally:
        faults.set_stage(stage)  # tests only: the db_commit kill point fires inside this ingest
        try:
            store.ingest(study_id, stage)
        finally:
            faults.set_stage(None)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.worker", description=__doc__)
    ap.add_argument("--home", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--stage", required=True)
    ap.add_argument("--unit", default=None, help="one unit of a stage that runs as several (shard-2-of-3)")
    args = ap.parse_args(argv)
    try:
        if not args.study.isdigit():
            raise BadInput(f"--study takes a study id (a number), not {args.study!r}")
        return run_unit(args.home, int(args.study), args.stage, out=sys.stdout, part=args.unit)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return WorkerExit.BAD_INPUT

