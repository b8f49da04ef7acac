"""Stage units as Slurm jobs, submitted with submitit (docs/cluster.md).

A unit is the worker command (`python -m lab.worker ...`) wrapped in `submitit.helpers.CommandFunction`,
so what submitit serialises for the job is a list of strings; neuron-pilot never reads submitit's
serialised files (no `job.result()`): it reads job states from the scheduler and the job's log files.
Everything submitit writes lives in `<home>/logs/study-N/slurm/`.

Signals. Slurm ends a job (scancel, time limit, preemption) with SIGTERM to every process of the job,
then SIGKILL `KillWait` seconds later. The worker traps SIGTERM (checkpoint, then exit); submitit's
wrapper around it ignores SIGTERM and waits for it. submitit also asks Slurm for an early signal
(`--signal=USR2@90`) that would kill the worker without a checkpoint (the worker does not trap
USR2, and the wrapper answers it by killing its child): neuron-pilot sends that early signal to the
batch shell only, as SIGURG, which a shell ignores (`DEFAULT_SIGNAL`), so a time limit shows as
TIMEOUT after a checkpoint, not as FAILED. `[compute] extra = {signal = "..."}` overrides it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import submitit

from lab.core.errors import BadInput
from lab.core.paths import Home
from lab.run.executor import RESUBMIT_STATES, UnitStatus, tail

DEFAULT_SIGNAL = "B:URG@60"  # see the module docstring: neutralises submitit's USR2 before the time limit
_EXIT_STATUS = re.compile(r"returned non-zero exit status (-?\d+)")  # subprocess.CalledProcessError's words
SLURM_TIMEOUT_S = 30  # a squeue / sbatch / scancel call that takes longer is a controller fault

# squeue / sacct states after which the job writes nothing more
TERMINAL_STATES = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY",
    "BOOT_FAIL", "DEADLINE", "REVOKED",
})
# states of a job that is queued or runs (or is being cleaned up, still able to write)
LIVE_STATES = frozenset({
    "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
    "REQUEUE_FED", "RESV_DEL_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "SPECIAL_EXIT",
})


def job_folder(home: Home, study_id: int) -> Path:
    """Where submitit keeps a study's job scripts and logs."""
    return home.logs / f"study-{study_id}" / "slurm"


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=SLURM_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise BadInput(f"{cmd[0]} is not installed here; run neuron-pilot on the cluster's login node "
                       f"(or load the Slurm module first)") from None
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"{cmd[0]} did not answer in {SLURM_TIMEOUT_S} s")


def _last_line(text: str) -> str:
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else ""


# submitit SlurmExecutor parameter <- [compute] key
_NAMED = {"partition": "partition", "gpus_per_node": "gpus", "cpus_per_task": "cpus",
          "account": "account", "qos": "qos", "constraint": "constraint"}


def _mem(gb: float) -> str:
    """sbatch --mem: whole gigabytes as G, else megabytes."""
    return f"{int(gb)}G" if gb == int(gb) else f"{max(1, round(gb * 1024))}M"


def sbatch_parameters(compute: Mapping[str, Any]) -> dict[str, Any]:
    """submitit SlurmExecutor parameters from a validated `[compute]` table (None: left to the cluster)."""
    setup = [str(x) for x in compute.get("setup") or []]
    extra = {"signal": DEFAULT_SIGNAL, **{str(k): v for k, v in (compute.get("extra") or {}).items()}}
    params: dict[str, Any] = {
        **{key: compute[name] for key, name in _NAMED.items() if compute.get(name) is not None},
        **({"mem": _mem(float(compute["mem_gb"]))} if compute.get("mem_gb") is not None else {}),
        # None drops --time: the partition's default limit (submitit would write its own default, 5 min)
        "time": compute.get("time_min"),
        # a failing setup line fails the job and names itself in the job's stderr
        "setup": ["export PYTHONUNBUFFERED=1",
                  *(["trap 'echo \"neuron-pilot: setup line failed (exit $?): $BASH_COMMAND\" >&2' ERR", "set -e",
                     *setup, "set +e", "trap - ERR"] if setup else [])],
        "additional_parameters": extra,
    }
    return params


class SlurmUnit:
    """One stage unit as a Slurm job: state from squeue (sacct once squeue forgets it), scancel, its log."""

    def __init__(self, home: Home, study_id: int, stage: str, job: "submitit.SlurmJob[Any]") -> None:
        self.home, self.study_id, self.stage = home, study_id, stage
        self.job = job
        self.job_id = str(job.job_id)

    def describe(self) -> str:
        return f"slurm job {self.job_id}"

    def status(self) -> UnitStatus:
        res = _run(["squeue", "-h", "-t", "all", "-j", self.job_id, "-o", "%T|%r|%N"])
        row = next((line for line in res.stdout.splitlines() if line.strip()), "")
        if res.returncode == 0 and row:
            state, _, rest = row.strip().partition("|")
            reason, _, node = rest.partition("|")
            return self._with_exit_code(_status(state, reason, node))
        if res.returncode != 0 and "invalid job id" not in res.stderr.lower():
            # the controller did not answer: say so, and keep the job for alive (it may well run)
            return UnitStatus("UNKNOWN", True, reason=_last_line(res.stderr) or f"squeue exit {res.returncode}")
        # squeue no longer knows the job (older than MinJobAge): ask the accounting database
        info = self.job.watcher.get_info(self.job_id, mode="force")
        if info.get("State"):
            return self._with_exit_code(_status(info["State"], "", info.get("NodeList", "")))
        return UnitStatus("UNKNOWN", False, reason=f"Slurm knows no job {self.job_id} (neither squeue nor sacct)")

    def _with_exit_code(self, status: UnitStatus) -> UnitStatus:
        """An ended job's worker exit code: 0 when COMPLETED, else what submitit's wrapper logged for its
        command ("returned non-zero exit status N"), None when the worker never ran or was killed."""
        if status.alive:
            return status
        code: Optional[int] = 0 if status.state == "COMPLETED" else None
        if code is None:
            found = _EXIT_STATUS.findall(tail(self.job.paths.stderr, 200))
            code = int(found[-1]) if found else None
        return replace(status, exit_code=code)

    def cancel(self) -> bool:
        """scancel: Slurm sends SIGTERM to every process of the job, the worker among them, which
        checkpoints and exits; SIGKILL follows KillWait seconds later. False if the job had ended."""
        if not self.status().alive:
            return False
        res = _run(["scancel", self.job_id])
        if res.returncode != 0:
            raise BadInput(f"scancel {self.job_id} failed: {_last_line(res.stderr)}; cancel it with "
                           f"`scancel {self.job_id}` on the login node")
        return True

    def log_paths(self) -> tuple[Path, Path]:
        return self.job.paths.stdout, self.job.paths.stderr

    def log_tail(self, lines: int = 20) -> str:
        """The end of the job's stderr (setup errors, tracebacks, Slurm's own lines), else of its stdout."""
        out, err = self.log_paths()
        return tail(err, lines) or tail(out, lines)


def _status(state: str, reason: str, node: str) -> UnitStatus:
    state = (state.split() or ["UNKNOWN"])[0].upper()  # sacct says "CANCELLED by 1000"
    node = "" if node in ("None assigned", "(null)") else node.strip()
    reason = reason.strip()
    alive = state in LIVE_STATES or state not in TERMINAL_STATES and state != "UNKNOWN"
    return UnitStatus(state, alive, reason="" if reason in ("None", "(null)") else reason, node=node)


class SlurmExecutor:
    """Stage units as Slurm jobs (submitit's SlurmExecutor), with the study's `[compute]` table."""

    name = "slurm"

    def __init__(self, compute: Mapping[str, Any]) -> None:
        self.compute = dict(compute)
        self.parameters = sbatch_parameters(self.compute)
        self.max_resubmits = int(self.compute.get("max_resubmits", 2))
        self.max_parallel = int(self.compute.get("max_parallel", 1))

    def _submitit(self, folder: Path, job_name: str, **override: Any) -> "submitit.SlurmExecutor":
        if shutil.which("sbatch") is None:
            raise BadInput("sbatch is not installed here; run neuron-pilot on the cluster's login node "
                           "(or load the Slurm module first), or set [compute] executor = \"local\"")
        folder.mkdir(parents=True, exist_ok=True)
        try:
            ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
        except RuntimeError:  # submitit found no srun
            raise BadInput("srun is not installed here; run neuron-pilot on the cluster's login node "
                           "(or load the Slurm module first)") from None
        ex.update_parameters(job_name=job_name, **{**self.parameters, **override})
        return ex

    def submit(self, home: Home, study_id: int, stage: str, command: list[str],
               env: Optional[dict[str, str]] = None) -> SlurmUnit:
        return self.submit_command(home, study_id, stage, command, job_folder(home, study_id))

    def submit_array(self, home: Home, study_id: int, stage: str, keys: list[str],
                     commands: list[list[str]]) -> list[SlurmUnit]:
        """Several units of one stage as one Slurm job array (submitit's batch), at most [compute]
        max_parallel of them running at once (`--array=...%N`); each task is its own unit (job id
        `ARRAY_TASK`), followed, resubmitted and cancelled on its own."""
        if len(commands) == 1:
            return [self.submit(home, study_id, keys[0], commands[0])]
        ex = self._submitit(job_folder(home, study_id), f"np-{study_id}-{stage}", array_parallelism=self.max_parallel)
        try:
            with ex.batch():
                jobs = [ex.submit(submitit.helpers.CommandFunction(list(cmd), verbose=True)) for cmd in commands]
        except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError) as exc:
            raise BadInput(f"sbatch refused the job array for stage {stage}: {_last_line(str(exc))}; fix [compute] "
                           f"(run `neuron-pilot cluster check {study_id}`)") from None
        return [SlurmUnit(home, study_id, key, job) for key, job in zip(keys, jobs)]

    def submit_command(self, home: Home, study_id: int, stage: str, command: list[str], folder: Path,
                       **override: Any) -> SlurmUnit:
        ex = self._submitit(folder, f"np-{study_id}-{stage}", **override)
        try:
            job = ex.submit(submitit.helpers.CommandFunction(list(command), verbose=True))
        except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError) as exc:
            raise BadInput(f"sbatch refused the job for stage {stage}: {_last_line(str(exc))}; fix [compute] "
                           f"(run `neuron-pilot cluster check {study_id}`)") from None
        return SlurmUnit(home, study_id, stage, job)

    def reattach(self, home: Home, study_id: int, stage: str, job_id: str, host: str = "") -> SlurmUnit:
        """The unit of a job submitted earlier (by this or another process, on any login node)."""
        job: submitit.SlurmJob[Any] = submitit.SlurmJob(folder=job_folder(home, study_id), job_id=str(job_id))
        return SlurmUnit(home, study_id, stage, job)

    def advice(self, status: UnitStatus) -> str:
        return failure_advice(status, self.compute)


# ---- what a job's end means, in plain words ------------------------------------------------------

PENDING_ADVICE = {
    "Priority": "other jobs come first; it starts when its priority is reached",
    "Resources": "waiting for free nodes with what it asks for",
    "ReqNodeNotAvail": "the nodes it can run on are down, drained or reserved",
    "PartitionTimeLimit": "time_min is above the partition's limit; lower [compute] time_min",
    "PartitionNodeLimit": "it asks for more than the partition's nodes have; lower [compute] gpus / cpus / mem_gb",
    "QOSMaxJobsPerUserLimit": "you have as many jobs as your QOS allows; it starts when one of them ends",
    "AssocGrpGRES": "your account's GPU quota is in use; it starts when some is free",
    "Dependency": "waiting for another job",
    "BeginTime": "requeued; it starts again shortly",
}


def failure_advice(status: UnitStatus, compute: Optional[Mapping[str, Any]] = None) -> str:
    """What a unit's state means and what to do, in one line ("" for a unit that finished well)."""
    compute = compute or {}
    limit = f" ({compute['time_min']} min)" if compute.get("time_min") else ""
    mem = f" ({compute['mem_gb']} GB)" if compute.get("mem_gb") else ""
    resubmits = f"up to [compute] max_resubmits = {compute.get('max_resubmits', 2)} times"
    state = status.state
    if state == "PENDING":
        why = PENDING_ADVICE.get(status.reason, status.reason or "queued")
        return f"queued: {why}"
    advice = {
        "COMPLETED": "",
        "RUNNING": "",
        "TIMEOUT": f"the job reached its time limit{limit}; raise [compute] time_min (the stage resumes from "
                   f"its last checkpoint)",
        "OUT_OF_MEMORY": f"the job ran out of memory{mem}; raise [compute] mem_gb, or lower the stage's "
                         f"batch_size ([identify] / [evaluate] batch_size)",
        "PREEMPTED": f"higher-priority work took the node; the stage is resubmitted automatically ({resubmits}) "
                     f"and resumes from its last checkpoint",
        "NODE_FAIL": f"the node failed; the stage is resubmitted automatically ({resubmits}) and resumes from its "
                     f"last checkpoint",
        "BOOT_FAIL": f"the node failed to boot; the stage is resubmitted automatically ({resubmits})",
        "CANCELLED": "the job was cancelled (scancel, or cancel in neuron-pilot); `neuron-pilot run` resumes it "
                     "from its last checkpoint",
        "FAILED": "the job failed; its log tail says why (a setup line, the Python environment, or the stage "
                  "itself); fix it and `neuron-pilot run` resumes",
        "DEADLINE": "the job missed its --deadline; remove the deadline from [compute] extra",
        "UNKNOWN": f"Slurm cannot say ({status.reason}); check `squeue` / `sacct` on the login node",
    }
    if state in advice:
        return advice[state]
    return f"Slurm state {state}" + (f" ({status.reason})" if status.reason else "")


def resubmits(status: UnitStatus) -> bool:
    """Whether the runner resubmits a unit that ended in this state (up to [compute] max_resubmits)."""
    return status.state in RESUBMIT_STATES


# ---- neuron-pilot cluster check ------------------------------------------------------------------

PROBE = r"""
import json, os, socket, sys
out = sys.argv[1]
found = {"node": socket.gethostname(), "python": sys.executable, "version": sys.version.split()[0]}
def write():
    with open(out + ".part", "w") as fh:
        json.dump(found, fh)
    os.replace(out + ".part", out)
write()  # the home is visible from here
try:
    import lab.run.worker  # noqa: F401  the worker's own imports
    import lab
    found["lab"] = os.path.dirname(lab.__file__)
    import torch
    found["torch"] = torch.__version__
    found["cuda"] = bool(torch.cuda.is_available())
    found["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES", "")
except Exception as exc:  # noqa: BLE001  reported back to the login node
    found["error"] = f"{type(exc).__name__}: {exc}"
write()
sys.exit(1 if "error" in found else 0)
"""


def check_partition(compute: Mapping[str, Any]) -> str:
    """One line on the partition the study's jobs go to; BadInput when it does not exist."""
    for tool in ("sinfo", "sbatch", "squeue", "scancel"):
        if shutil.which(tool) is None:
            raise BadInput(f"{tool} is not installed here; run `neuron-pilot cluster check` on the cluster's login "
                           f"node (or load the Slurm module first)")
    listed = _run(["sinfo", "-h", "-o", "%P"])
    if listed.returncode != 0:
        raise BadInput(f"sinfo failed: {_last_line(listed.stderr)}; check that the Slurm controller answers "
                       f"(`sinfo`) and that SLURM_CONF points at the cluster's slurm.conf")
    names = [x.strip() for x in listed.stdout.split() if x.strip()]
    default = next((n.rstrip("*") for n in names if n.endswith("*")), None)
    known = sorted({n.rstrip("*") for n in names})
    wanted = compute.get("partition")
    if not wanted:
        if default is None:
            raise BadInput(f"the cluster has no default partition; set [compute] partition to one of "
                           f"{', '.join(known) or '(none listed)'}")
        wanted = default
    missing = []
    for part in str(wanted).split(","):
        rows = _run(["sinfo", "-h", "-p", part, "-o", "%P|%a|%D|%T"])  # exit 0 either way: look at the rows
        if not rows.stdout.strip():
            missing.append(part)
    if missing:
        raise BadInput(f"partition {missing[0]!r} does not exist on this cluster; set [compute] partition to one of "
                       f"{', '.join(known) or '(none listed)'}")
    return f"ok: partition {wanted} exists" + ("" if compute.get("partition") else " (the cluster's default)")


def cluster_check(home: Home, study_id: int, compute: Mapping[str, Any], wait_s: float = 300.0,
                  poll_s: float = 0.5, say: Callable[[str], None] = print) -> None:
    """The checks of `neuron-pilot cluster check`, in order: `say` gets an `ok: ...` line for each that
    passes (and warnings); the first that fails raises BadInput with its fix."""
    if compute.get("executor", "local") != "slurm":
        raise BadInput(f"study {study_id} runs its stages on this machine ([compute] executor = \"local\"); set "
                       f"executor = \"slurm\" in its [compute] table to run them on a cluster")
    say(check_partition(compute))
    token = uuid.uuid4().hex[:12]
    folder = job_folder(home, study_id) / "check"
    marker = folder / f"probe-{token}.json"
    folder.mkdir(parents=True, exist_ok=True)
    executor = SlurmExecutor(compute)
    # the study's own options (partition, account, qos, gres, setup) with a short time limit
    unit = executor.submit_command(home, study_id, "check", [sys.executable, "-c", PROBE, str(marker)], folder,
                                   time=min(int(compute.get("time_min") or 5), 5))
    started = time.monotonic()
    status = unit.status()
    while status.alive and time.monotonic() - started < wait_s:
        time.sleep(poll_s)
        status = unit.status()
    if status.alive:
        unit.cancel()
        raise BadInput(f"the check job {unit.job_id} was still {status.describe()} after {wait_s:.0f} s; rerun "
                       f"`neuron-pilot cluster check {study_id} --wait {int(wait_s * 4)}` when the queue is shorter")
    found: dict[str, Any] = {}
    try:
        found = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    log = unit.log_tail(5)
    last = _last_line(log)
    if not found:
        if "setup line failed" in log:
            raise BadInput(f"a [compute] setup line failed on the compute node: {last}; fix it in the study "
                           f"file (log: {unit.log_paths()[1]})")
        if not unit.log_paths()[1].exists() and not unit.log_paths()[0].exists():
            raise BadInput(f"the compute node cannot see the study home {home.root} (job {unit.job_id} ended "
                           f"{status.state} and wrote neither its log nor the probe file); put the home on a "
                           f"filesystem the nodes mount (--home or NEURON_PILOT_HOME; docs/cluster.md)")
        raise BadInput(f"the check job {unit.job_id} ended {status.describe()} before it wrote the probe file: "
                       f"{last or 'no log'}; fix [compute] (setup lines, Python path {sys.executable})")
    node = found.get("node", status.node)
    say(f"ok: the study home {home.root} is visible from {node} (job {unit.job_id})")
    if "error" in found:
        raise BadInput(f"the Python environment does not work on {node}: {found['error']}; add the lines that "
                       f"make it work (module load, conda activate) to [compute] setup, or install neuron-pilot "
                       f"where {found.get('python')} can import it")
    say(f"ok: {found.get('python')} on {node} imports lab and torch {found.get('torch')}")
    if compute.get("gpus") and not found.get("cuda"):
        say(f"warning: torch on {node} sees no CUDA GPU (CUDA_VISIBLE_DEVICES="
                     f"{found.get('cuda_visible_devices') or 'unset'}); install a CUDA build of torch there for "
            f"[compute] gpus = {compute.get('gpus')}")
    try:
        marker.unlink()
    except OSError:
        pass
