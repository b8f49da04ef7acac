"""A warm unit launcher: one process that imported torch, transformers, peft and lm-eval once and forks
each local stage unit from there, instead of a fresh interpreter paying those imports every time.

The test suite starts one per test process and names its socket in NEURON_PILOT_UNIT_LAUNCHER, which
every runner it starts (in-process, the CLI, the TUI's background runner) inherits; LocalExecutor then
asks the launcher for each unit and falls back to a plain subprocess when none answers. A forked unit is
what a subprocess would be: its own session, the command's environment and working folder (its
OMP_NUM_THREADS applied to torch, which read it at import), stdout and stderr appended to its log,
`python -m lab.worker ...` run as __main__. The launcher never runs torch itself (so forking it is
safe), reaps its children, and writes each one's exit status beside its log
(`STAGE.out.exit`: "pid code") for LocalUnit.status to read, as Popen.poll() would give it.

Usage (tests/conftest.py): `python -m lab.run.launcher SOCKET`.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
from pathlib import Path
from typing import Optional

LAUNCHER_ENV = "NEURON_PILOT_UNIT_LAUNCHER"
PRELOAD = ("torch", "transformers", "transformers.models.llama.modeling_llama", "peft", "lm_eval.evaluator",
           "lm_eval.tasks", "safetensors.torch", "scipy.stats", "pandas")


def exit_file(log: Path) -> Path:
    """Where the launcher records a unit's exit status ("pid code"; a negative code is the signal)."""
    return log.with_name(log.name + ".exit")


def read_exit(log: Path, pid: int) -> Optional[int]:
    """The exit status the launcher recorded for `pid`, or None (still running, or not one of its units)."""
    try:
        got_pid, code = exit_file(log).read_text().split()
    except (OSError, ValueError):
        return None
    return int(code) if int(got_pid) == pid else None


def launch(command: list[str], log: Path, env: dict[str, str]) -> Optional[int]:
    """Ask the launcher named in `env` to start `command`; its pid, or None when no launcher answers
    (the caller starts a plain subprocess)."""
    path = env.get(LAUNCHER_ENV)
    if not path or command[1:3] != ["-m", "lab.worker"]:
        return None
    request = json.dumps({"argv": command[3:], "env": env, "cwd": os.getcwd(), "log": str(log)}).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(30)
            conn.connect(path)
            conn.sendall(request + b"\n")
            reply = conn.makefile("rb").readline()
        return int(json.loads(reply)["pid"])
    except (OSError, ValueError, KeyError):
        return None


# ---- the launcher process ------------------------------------------------------------------------
def _child(request: dict) -> None:
    """In the forked child: become the unit (never returns)."""
    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        log_fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        threads = request["env"].get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:  # read by torch at import, which the launcher did already
            import torch
            torch.set_num_threads(int(threads))
        sys.argv = ["lab.worker", *request["argv"]]
        sys.path[0:0] = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p] + [request["cwd"]]
        import runpy
        try:
            runpy.run_module("lab.worker", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the unit's own traceback belongs in its log
        import traceback
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(path: str) -> None:
    """Preload, listen on `path`, fork a unit per request, reap children; ends when stdin closes (its
    parent, the test session, is gone) or on SIGTERM."""
    import importlib
    os.environ.pop("OMP_NUM_THREADS", None)  # torch's default here; each unit sets its own from its environment
    for name in PRELOAD:
        importlib.import_module(name)
    logs: dict[int, str] = {}
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(server, selectors.EVENT_READ, "accept")
    sel.register(sys.stdin, selectors.EVENT_READ, "parent")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    try:
        while True:
            for key, _ in sel.select(timeout=0.05):
                if key.data == "parent":
                    if not sys.stdin.buffer.read1(4096):
                        return
                    continue
                conn, _ = server.accept()
                with conn:
                    request = json.loads(conn.makefile("rb").readline())
                    pid = os.fork()
                    if pid == 0:
                        server.close()
                        _child(request)
                    logs[pid] = request["log"]
                    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            while logs:  # reap every child that ended, recording its status beside its log
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                log = logs.pop(pid, None)
                if log is not None:
                    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                    exit_file(Path(log)).write_text(f"{pid} {code}\n")
    finally:
        server.close()
        try:
            os.unlink(path)
        except OSError:
            pass


if __name__ == "__main__":
    serve(sys.argv[1])
