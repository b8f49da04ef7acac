"""A real single-node Slurm cluster for the executor tests (../shared/FIELD-NOTES.md, "A real Slurm on one
machine"): slurmctld + slurmd from the Debian packages, auth/none, one node with a fake GPU, every path in
a temporary folder, its own ports (so each pytest-xdist process may start its own). Started once per
process, on first use, and stopped at the end.

Slurm is never optional here: without it these tests fail, saying how to install it (.ci/run does).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

DAEMONS = ("slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scancel", "srun")
INSTALL = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"

# Test stand-in for `sacct` (there is no slurmdbd here): submitit reads job states from sacct. Real
# clusters have sacct; this script is test-only and never shipped.
SACCT_STAND_IN = """#!/bin/sh
echo "JobID|State|NodeList"
exec squeue -h -a -t all -o "%i|%T|%N"
"""


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    host: str
    partition: str = "debug"
    kill_wait_s: int = 5

    def log_tail(self) -> str:
        text = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.root / name
            if path.exists():
                text.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_conf(root: Path, host: str) -> Path:
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
    cpus = os.cpu_count() or 1
    for d in ("state", "spool"):
        (root / d).mkdir()
    conf = root / "slurm.conf"
    conf.write_text(f"""ClusterName=nptest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/none
CredType=cred/none
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=0
MinJobAge=86400
KillWait=5
SchedulerParameters=sched_min_interval=0
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1024 Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES State=UP MaxTime=INFINITE
""")
    (root / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null\n")  # a fake GPU
    return conf


def _stop(root: Path) -> None:
    subprocess.run(["scancel", "--full", "-u", os.environ.get("USER", "root") if os.geteuid() else "root"],
                   capture_output=True, timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # let cancelled jobs end before their slurmd goes
        out = subprocess.run(["squeue", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30).stdout
        if not out.strip():
            break
        time.sleep(0.2)
    for name in ("slurmd", "slurmctld"):
        pidfile = root / f"{name}.pid"
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            continue
        for tick in range(50):  # its state is thrown away: no need to wait for a clean shutdown
            try:
                os.kill(pid, signal.SIGKILL if tick == 5 else 0)
            except OSError:
                break
            time.sleep(0.1)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    missing = [tool for tool in DAEMONS if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()]
    if missing:
        pytest.fail(f"Slurm is not installed ({', '.join(missing)} missing): the Slurm tests need it; install it "
                    f"with `{INSTALL}` (.ci/run does this)", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="nps-"))  # short: slurmstepd's sockets live under it
    host = socket.gethostname().split(".")[0]
    conf = _write_conf(root, host)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text(SACCT_STAND_IN)
    (bin_dir / "sacct").chmod(0o755)
    saved = {k: os.environ.get(k) for k in ("SLURM_CONF", "PATH")}
    os.environ["SLURM_CONF"] = str(conf)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin"
    cluster = SlurmCluster(root=root, conf=conf, host=host)
    try:
        for daemon in ("slurmctld", "slurmd"):
            res = subprocess.run([shutil.which(daemon) or f"/usr/sbin/{daemon}"], capture_output=True, text=True,
                                 timeout=60)
            if res.returncode != 0:
                pytest.fail(f"{daemon} did not start: {res.stderr.strip()}\n{cluster.log_tail()}", pytrace=False)
        deadline, state = time.monotonic() + 30, ""
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the test Slurm node is {state or 'not listed'}, not idle, after 30 s\n{cluster.log_tail()}",
                        pytrace=False)
        yield cluster
    finally:
        try:
            _stop(root)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            shutil.rmtree(root, ignore_errors=True)
