"""The `neuron-pilot` CLI contract (DESIGN.md): new / run / status / studies / export as subprocesses,
their JSON shapes and exit codes, and recovery after a worker is killed with SIGKILL mid-stage."""

from __future__ import annotations

from tests.helpers import wait_dead, wait_running, write_study_toml

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lab.core.paths import PROJECT_ROOT
from lab.store import StageState, Store
from lab.store.db import pid_alive
from lab.run.worker import PAUSE_SECONDS_ENV, PAUSE_STAGE_ENV
from protocols import load_protocol

STAGE_NAMES = load_protocol("lsn-staged").stage_names


def _env(**extra: str) -> dict[str, str]:
    """Offline, unbuffered, and the test pause only where a test asks for it."""
    env = {k: v for k, v in os.environ.items() if k not in (PAUSE_STAGE_ENV, PAUSE_SECONDS_ENV)}
    return {**env, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=300, env=_env(**env))


def study_toml(path: Path, model: Path, corpus: Path, name: str = "cli-pilot") -> Path:
    return write_study_toml(path, model, corpus, name, seed=11)


def one_line_error(res: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture(scope="module")
def made(tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`new` then `run --until criteria --headless`, once for the module."""
    root = tmp_path_factory.mktemp("cli")
    home = root / "home"
    res_new = cli("new", str(study_toml(root / "s.toml", tiny_llama_dir, tiny_corpus_dir)), "--home", str(home))
    assert res_new.returncode == 0, res_new.stderr
    sid = res_new.stdout.strip()
    res_run = cli("run", sid, "--until", "criteria", "--headless", "--home", str(home))
    return {"home": home, "id": sid, "new": res_new, "run": res_run}


def test_new_prints_the_study_id(made: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d+\n", made["new"].stdout) and made["id"] == "1"
    store = Store(made["home"], create=False)
    study = store.study(int(made["id"]))
    assert study.name == "cli-pilot" and study.protocol == "lsn-staged" and study.seed == 11
    assert [r.stage for r in store.stage_runs(study.id)] == STAGE_NAMES


def test_run_until_criteria_headless(made: dict[str, Any]) -> None:
    res = made["run"]
    assert res.returncode == 0, res.stderr
    assert "[criteria] starting stage criteria in a worker process" in res.stdout
    assert "[criteria] done in" in res.stdout and "gate criteria: go (by rule)" in res.stdout
    assert res.stdout.strip().endswith("stopped after criteria as asked")
    store = Store(made["home"], create=False)
    sid = int(made["id"])
    states = {r.stage: r.state for r in store.stage_runs(sid)}
    assert states["criteria"] == StageState.done
    assert all(states[s] == StageState.pending for s in STAGE_NAMES[1:])
    assert store.lease(sid) is None  # the runner let go of its lease
    assert [a.name for a in store.artifacts(sid)] == ["criteria.json"]


def _iso_or_none(v: Any) -> None:
    assert v is None or dt.datetime.fromisoformat(v).tzinfo is not None


def _check_study(study: dict[str, Any], sid: int) -> None:
    assert set(study) >= {"id", "name", "protocol", "model", "languages"}
    assert (study["id"], study["name"], study["protocol"]) == (sid, "cli-pilot", "lsn-staged")
    assert set(study["model"]) >= {"id", "revision", "dtype", "device"}
    assert isinstance(study["model"]["id"], str) and study["model"]["device"] in ("cpu", "auto")
    assert study["languages"] == {"all": ["en", "fr", "de", "sw"], "targets": ["sw"]}


def _check_stages(stages: list[dict[str, Any]]) -> None:
    assert [s["name"] for s in stages] == STAGE_NAMES
    for s in stages:
        assert set(s) >= {"name", "status", "started_at", "finished_at", "compute_seconds", "decision"}
        assert s["status"] in ("pending", "running", "done", "failed", "interrupted")
        assert isinstance(s["compute_seconds"], (int, float)) and s["compute_seconds"] >= 0
        _iso_or_none(s["started_at"])
        _iso_or_none(s["finished_at"])
    crit = stages[0]
    assert crit["status"] == "done" and crit["compute_seconds"] > 0 and crit["finished_at"] >= crit["started_at"]
    dec = crit["decision"]
    assert set(dec) == {"verdict", "rationale", "by", "at"} and (dec["verdict"], dec["by"]) == ("go", "rule")
    _iso_or_none(dec["at"])
    assert all(s["decision"] is None and s["status"] == "pending" for s in stages[1:])


METRIC = dict(stage="evaluate", name="accuracy_delta", language="sw", condition="intervention", value=0.04,
              ci_low=0.01, ci_high=0.07, n=120)


def _check_metrics(metrics: list[dict[str, Any]]) -> None:
    for m in metrics:
        assert set(m) >= {"stage", "name", "language", "condition", "value", "ci_low", "ci_high", "n"}
    row = next(m for m in metrics if m["name"] == METRIC["name"])  # criteria's mde_points rows come first
    assert {k: v for k, v in row.items() if k in METRIC} == METRIC


@pytest.fixture(scope="module")
def with_metric(made: dict[str, Any]) -> dict[str, Any]:
    """One stored metric row (as the evaluate stage writes it), so the metric shape can be checked."""
    store = Store(made["home"], create=False)
    store.put_metrics(int(made["id"]), [METRIC])
    return made


def test_status_json(with_metric: dict[str, Any]) -> None:
    res = cli("status", with_metric["id"], "--json", "--home", str(with_metric["home"]))
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    _check_study(data["study"], 1)
    _check_stages(data["stages"])
    _check_metrics(data["metrics"])
    assert data["verdict"]["decision"] == "undecided" and isinstance(data["verdict"]["reasons"], list)
    assert data["runner"] is None


def test_export_json(with_metric: dict[str, Any]) -> None:
    home = with_metric["home"]
    res = cli("export", with_metric["id"], "--format", "json", "--home", str(home))
    assert res.returncode == 0, res.stderr
    path = Path(res.stdout.strip())
    assert path == home.resolve() / "exports" / "study-1-summary.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) >= {"study", "stages", "metrics", "artifacts", "verdict", "provenance"}
    _check_study(data["study"], 1)
    _check_stages(data["stages"])
    _check_metrics(data["metrics"])
    assert len(data["artifacts"]) == 1
    art = data["artifacts"][0]
    assert set(art) >= {"stage", "name", "path", "sha256", "bytes"}
    assert (art["stage"], art["name"]) == ("criteria", "criteria.json") and re.fullmatch(r"[0-9a-f]{64}", art["sha256"])
    assert (home / art["path"]).stat().st_size == art["bytes"]
    assert data["verdict"]["decision"] in ("go", "no-go", "undecided") and isinstance(data["verdict"]["reasons"], list)
    prov = data["provenance"]
    assert set(prov) >= {"python", "packages", "git", "seed", "hardware"}
    assert prov["seed"] == 11 and prov["python"].count(".") == 2 and "torch" in prov["packages"]
    assert prov["git"] is None or isinstance(prov["git"], str)


def test_studies_json(made: dict[str, Any]) -> None:
    res = cli("studies", "--json", "--home", str(made["home"]))
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert set(row) >= {"id", "name", "protocol", "model", "stage", "state", "updated_at"}
    assert (row["id"], row["name"], row["protocol"], row["stage"], row["state"]) == (1, "cli-pilot", "lsn-staged",
                                                                                     "model", "pending")


def test_bad_input_exits_2_with_one_line(made: dict[str, Any], tmp_path: Path) -> None:
    home = str(made["home"])
    one_line_error(cli("run", made["id"], "--until", "nosuchstage", "--headless", "--home", home),
                   "--until 'nosuchstage' is not a stage of protocol lsn-staged", "criteria, model")
    one_line_error(cli("run", "42", "--headless", "--home", home), "no study '42'")
    one_line_error(cli("export", "nope", "--format", "json", "--home", home), "no study 'nope'")
    one_line_error(cli("status", "1", "--home", str(tmp_path / "empty")), "no neuron-pilot store in")
    store = Store(made["home"], create=False)
    assert len(store.studies()) == 1 and store.lease(1) is None


# ---- kill -9 mid-stage --------------------------------------------------------------------------

def _wait_running(store: Store, sid: int, stage: str, proc: subprocess.Popen[str]) -> int:
    return wait_running(store, sid, stage, proc, timeout=180, poll=0.2)


def _wait_dead(pid: int) -> None:
    wait_dead(pid, timeout=30, poll=0.05)


@pytest.fixture
def paused_study(tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path: Path) -> Any:
    from lab.study.create import create_study

    store = Store(tmp_path / "home")
    study = create_study(store, study_toml(tmp_path / "k.toml", tiny_llama_dir, tiny_corpus_dir, "killed"))
    procs: list[subprocess.Popen[str]] = []
    pids: list[int] = []

    def start() -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "lab.cli", "run", str(study.id), "--until", "criteria", "--headless",
               "--home", str(store.home.root)]
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=_env(**{PAUSE_STAGE_ENV: "criteria", PAUSE_SECONDS_ENV: "300"}))
        procs.append(proc)
        return proc

    yield store, int(study.id), start, pids  # type: ignore[arg-type]
    for proc in procs:  # never leave a paused runner or worker behind
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _resume(store: Store, sid: int) -> subprocess.CompletedProcess[str]:
    res = cli("run", str(sid), "--until", "criteria", "--headless", "--home", str(store.home.root))
    assert res.returncode == 0, (res.stdout, res.stderr)
    run = store.stage_run(sid, "criteria")
    assert (run.state, run.attempts, run.pid, run.error) == (StageState.done, 2, None, None)
    assert [a.name for a in store.artifacts(sid, "criteria")] == ["criteria.json"]
    assert store.integrity_check() == "ok" and store.lease(sid) is None
    return res


def test_sigkill_of_runner_and_worker_is_recovered_by_the_next_run(paused_study: Any) -> None:
    """The machine loses both processes: the DB still says running; the next run marks the stage
    interrupted (its pid is dead), takes over the dead runner's lease and runs the stage again."""
    store, sid, start, pids = paused_study
    runner = start()
    wpid = _wait_running(store, sid, "criteria", runner)
    pids.append(wpid)
    lease = store.lease(sid)
    assert lease is not None and lease.pid == runner.pid
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=60)
    os.kill(wpid, signal.SIGKILL)
    _wait_dead(wpid)

    assert store.integrity_check() == "ok"
    run = store.stage_run(sid, "criteria")
    assert (run.state, run.pid, run.attempts) == (StageState.running, wpid, 1)  # nobody recorded an end
    assert store.artifacts(sid) == [] and store.metrics(sid) == []

    res = _resume(store, sid)
    assert "stage criteria was interrupted (worker gone); it will resume" in res.stdout
    assert "[criteria] done in" in res.stdout


def test_sigkill_of_the_worker_alone_is_recorded_by_its_runner(paused_study: Any) -> None:
    """The runner survives and records the loss itself (exit 1, stage interrupted); the next run
    runs the stage again."""
    store, sid, start, pids = paused_study
    runner = start()
    wpid = _wait_running(store, sid, "criteria", runner)
    pids.append(wpid)
    os.kill(wpid, signal.SIGKILL)
    out, err = runner.communicate(timeout=120)
    assert runner.returncode == 1, (out, err)
    assert "stage criteria" in err and "without finishing" in err and "killed by a signal" in err
    run = store.stage_run(sid, "criteria")
    assert (run.state, run.pid, run.attempts) == (StageState.interrupted, None, 1)
    assert store.integrity_check() == "ok" and store.lease(sid) is None
    _resume(store, sid)


NEW_WITHOUT_TORCH = """
import json, sys
from lab.cli import main
try:
    main(["new", sys.argv[1], "--home", sys.argv[2]])
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps({m: m in sys.modules for m in ("torch", "transformers", "lm_eval")}))
"""


def test_new_validates_and_stores_without_importing_torch(tmp_path: Path) -> None:
    """`new` (also what the TUI's new-study form runs) checks methods, tasks, weights and corpora
    without loading torch, transformers or lm-eval, so a study file's errors come back in about a second."""
    study = PROJECT_ROOT / "examples" / "studies" / "demo.toml"
    res = subprocess.run([sys.executable, "-c", NEW_WITHOUT_TORCH, str(study), str(tmp_path / "home")], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {"torch": False, "transformers": False, "lm_eval": False}
    assert [s.name for s in Store(tmp_path / "home").studies()] == ["demo-pilot"]


def test_root_home_is_not_overwritten_by_the_subcommand_default(made: dict[str, Any], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #15 point 7: `neuron-pilot --home X status 1` reads X, not $NEURON_PILOT_HOME or the default."""
    from lab.cli import main

    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("NEURON_PILOT_HOME", str(elsewhere))
    for argv in (["--home", str(made["home"]), "status", "1"], ["--home", str(made["home"]), "studies", "--json"],
                 ["--home", str(tmp_path / "wrong"), "status", "1", "--home", str(made["home"])]):
        capsys.readouterr()
        assert main(argv) == 0, capsys.readouterr().err
        assert "pilot" in capsys.readouterr().out
    assert not elsewhere.exists() and not (tmp_path / "wrong").exists()  # a reader creates no home either
