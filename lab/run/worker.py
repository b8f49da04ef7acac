"""A stage in its own process: ``python -m lab.worker --home H --study S --stage NAME``.

JSON-lines events on stdout (lab.core.events), a heartbeat in the DB every few seconds, and SIGTERM →
the stage checkpoints at its next safe point and exits with WorkerExit.INTERRUPTED (state `interrupted`).
Exit codes: lab.core.events.WorkerExit (0 done, 1 failed, 2 bad input, 3 interrupted). Started, adopted,
watched and cancelled only through lab.run.workers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Optional

from lab.core import faults

from lab.core import resources
from lab.core.artifacts import remove_stale_temps
from lab.core.errors import BadInput, StageInterrupted
from lab.core.events import WorkerExit
from lab.stages import implementation
from lab.stages.context import StageContext
from lab.store import StageState, Store
from lab.store.tables import utcnow
from protocols import load_protocol

HEARTBEAT_SECONDS = 2.0

# Tests only: with NEURON_PILOT_TEST_PAUSE_STAGE=<stage>, that stage waits (marked running, heart
# beating) for NEURON_PILOT_TEST_PAUSE_SECONDS (default 60) before its work starts, so a test can
# kill the worker mid-stage. Unset in normal use; it changes nothing else.
PAUSE_STAGE_ENV = "NEURON_PILOT_TEST_PAUSE_STAGE"
PAUSE_SECONDS_ENV = "NEURON_PILOT_TEST_PAUSE_SECONDS"


def _heartbeat(store: Store, study_id: int, stage: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            store.heartbeat(study_id, stage)
        except Exception:  # a busy DB must not kill the stage; the next beat tries again
            pass


def _test_pause(ctx: StageContext) -> None:
    """See PAUSE_STAGE_ENV: a test hook, inert unless that variable names this stage. A SIGTERM during
    the pause ends it, and the stage stops there as it would at a checkpoint."""
    if os.environ.get(PAUSE_STAGE_ENV) == ctx.stage:
        ctx.wait_for_stop(float(os.environ.get(PAUSE_SECONDS_ENV, "60")))
        ctx.check_stop()


def run_stage(home: str, study_ref: str, stage: str, fresh: bool = False, out=None) -> int:
    store = Store(home, create=False)
    study = store.study(study_ref)
    study_id = int(study.id)  # type: ignore[arg-type]
    protocol = load_protocol(study.protocol, store.home.root)  # a ProtocolError is bad input (exit 2)
    spec = protocol.get(stage)
    impl = implementation(spec.implementation)
    previous = store.stage_run(study_id, stage)

    # Resume from checkpoints only after an interruption or a resource failure (full disk, out of
    # memory at batch 1: lab.core.resources); any other start is from scratch.
    resumable = previous.state == StageState.interrupted or (
        previous.state == StageState.failed and resources.resumable_failure(previous.error))
    if fresh or not resumable:
        store.clear_stage_outputs(study_id, stage)
        shutil.rmtree(store.home.checkpoint_dir(study_id, stage), ignore_errors=True)
        prior_seconds = 0.0
    else:
        prior_seconds = previous.compute_seconds
    remove_stale_temps(store.home.stage_dir(study_id, stage))  # a killed writer's half files, never referenced
    faults.set_stage(stage)

    log_path = store.home.event_log(study_id, stage)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ctx = StageContext(store, study, protocol, spec, out=out, event_log=log_path)
    signal.signal(signal.SIGTERM, lambda *_: ctx.request_stop())

    store.update_stage(study_id, stage, state=StageState.running, pid=os.getpid(), host=socket.gethostname(),
                       attempts=previous.attempts + 1, started_at=utcnow(), heartbeat_at=utcnow(),
                       finished_at=None, error=None, progress_json=None)
    stop_beat = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, study_id, stage, stop_beat), daemon=True)
    beat.start()
    t0 = time.monotonic()

    def finish(state: StageState, error: Optional[str] = None) -> None:
        seconds = prior_seconds + time.monotonic() - t0
        on_gpu = str(ctx.cached("device", lambda: "cpu")).startswith("cuda")
        store.update_stage(study_id, stage, state=state, pid=None, finished_at=utcnow(), error=error,
                           compute_seconds=seconds, gpu_seconds=seconds if on_gpu else 0.0)

    try:
        _test_pause(ctx)
        with resources.recording(resources.stage_recorder(ctx)):
            impl(ctx)
    except StageInterrupted as exc:
        finish(StageState.interrupted, str(exc))
        ctx.emit("interrupted", message=str(exc))
        return WorkerExit.INTERRUPTED
    except BadInput as exc:
        finish(StageState.failed, str(exc))
        ctx.emit("error", message=str(exc), bad_input=True)
        return WorkerExit.BAD_INPUT
    except Exception as exc:  # the stage failed; keep the traceback in the log, one line in the DB
        tb = traceback.format_exc()
        store.log(study_id, stage, tb, level="error")
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        finish(StageState.failed, message)
        ctx.emit("error", message=message, bad_input=False)
        return WorkerExit.FAILED
    finally:
        stop_beat.set()
        faults.set_stage(None)
    finish(StageState.done)
    ctx.emit("done", seconds=time.monotonic() - t0)
    return WorkerExit.DONE


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.worker", description=__doc__)
    ap.add_argument("--home", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--stage", required=True)
    ap.add_argument("--fresh", action="store_true", help="ignore checkpoints and start the stage over")
    args = ap.parse_args(argv)
    try:
        return run_stage(args.home, args.study, args.stage, fresh=args.fresh, out=sys.stdout)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return WorkerExit.BAD_INPUT

