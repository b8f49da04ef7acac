"""The worker process (`python -m lab.worker`): its JSON-lines event protocol, the DB state its events
leave once ingested, its exit codes (0 done, 1 failed, 2 bad input, 3 interrupted), and that it never
opens an SQLite database (an audit hook turns any sqlite3.connect in the worker into a failure)."""

from __future__ import annotations

from tests.helpers import write_study_toml

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.core.errors import BadInput
from lab.core.events import KINDS, Event
from lab.core.paths import PROJECT_ROOT
from lab.run.runner import Runner
from lab.store import StageState, Store
from lab.study.create import create_study
from protocols import load_protocol

CUSTOM = """
[protocol]
name = "custom"
title = "A protocol with a stage neuron-pilot does not have"

[[stage]]
name = "criteria"
title = "Define criteria"

[[stage]]
name = "dream"
title = "Unknown"
runs = "not_built_anywhere"
needs = ["criteria"]
"""


def _toml(path: Path, model: Path, corpus: Path, name: str) -> Path:
    return write_study_toml(path, model, corpus, name)


NO_SQLITE = ("import sys\n"
             "def hook(event, args):\n"
             "    if event == 'sqlite3.connect':\n"
             "        raise RuntimeError(f'the stage unit opened an SQLite database: {args!r}')\n"
             "sys.addaudithook(hook)\n"
             "from lab.run.worker import main\n"
             "sys.exit(main(sys.argv[1:]))\n")


def worker(home: Path, study: Any, *args: str, prepare: bool = True) -> subprocess.CompletedProcess[str]:
    """What the coordinator does for one unit: write its input, run it (never touching lab.db), ingest."""
    from lab.run.unit import prepare_unit

    store = Store(home, create=False)
    stage = args[args.index("--stage") + 1] if "--stage" in args else None
    if prepare and stage is not None:
        prepare_unit(store, int(study), stage)
    cmd = [sys.executable, "-c", NO_SQLITE, "--home", str(home)]
    if study is not None:
        cmd += ["--study", str(study)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    res = subprocess.run(cmd + list(args), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, env=env)
    if prepare and stage is not None:
        store.ingest(int(study), stage)
    return res


def events(stdout: str) -> list[Event]:
    """Every stdout line must be an event; anything else fails the protocol."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "the worker printed no events"
    return [Event.from_json(line) for line in lines]


@pytest.fixture(scope="module")
def lab(tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("worker")
    home = root / "home"
    store = Store(home)
    study = create_study(store, _toml(root / "s.toml", tiny_llama_dir, tiny_corpus_dir, "worker-study"))
    # A study whose [criteria] names a threshold the protocol no longer has (as after the protocol
    # file was edited): `new` would refuse it, so it is stored directly; its criteria stage must fail.
    cfg = {**json.loads(study.config_json), "criteria": {"min_vibes": 3}}
    broken = store.create_study(name="stale-criteria", protocol="lsn-staged", model_id=study.model_id, seed=0,
                                trust_remote_code=False, config=cfg, source_toml="", source_path="",
                                stages=load_protocol("lsn-staged").stage_names)
    return {"home": home, "store": store, "study": int(study.id), "broken": int(broken.id)}  # type: ignore[arg-type]


def _check_common(evs: list[Event], stage: str, study: int) -> None:
    for ev in evs:
        assert ev.event in KINDS and ev.stage == stage and ev.study == study and ev.t > 0
    kinds = [e.event for e in evs]
    assert kinds[-1] == "done" and kinds.count("done") == 1
    assert "progress" in kinds and "artifact" in kinds
    progress = [e.data for e in evs if e.event == "progress"]
    assert progress[0]["done"] == 0 and progress[-1]["done"] == progress[-1]["total"] > 0


def _check_artifact(lab: dict[str, Any], ev: Event, stage: str) -> None:
    path = Path(ev.data["path"])
    assert path.is_file() and path.stat().st_size == ev.data["bytes"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ev.data["sha256"]
    row = lab["store"].artifact(lab["study"], stage, ev.data["name"])
    assert (row.sha256, row.bytes) == (ev.data["sha256"], ev.data["bytes"])
    assert (lab["home"] / row.path).resolve() == path.resolve()


def test_criteria_then_model_stage_events(lab: dict[str, Any]) -> None:
    store, sid, home = lab["store"], lab["study"], lab["home"]
    res = worker(home, sid, "--stage", "criteria")
    assert res.returncode == 0, res.stderr
    evs = events(res.stdout)
    _check_common(evs, "criteria", sid)
    art = [e for e in evs if e.event == "artifact"]
    assert [e.data["name"] for e in art] == ["criteria.json"]
    _check_artifact(lab, art[0], "criteria")
    criteria = json.loads(Path(art[0].data["path"]).read_text(encoding="utf-8"))
    assert criteria["targets"] == ["sw"] and criteria["criteria"]["min_gain_points"] == 1.0

    res = worker(home, sid, "--stage", "model")
    assert res.returncode == 0, res.stderr
    evs = events(res.stdout)
    _check_common(evs, "model", sid)
    art = [e for e in evs if e.event == "artifact"]
    assert [e.data["name"] for e in art] == ["model.json"]
    _check_artifact(lab, art[0], "model")
    metrics = {e.data["name"]: e.data["value"] for e in evs if e.event == "metric"}
    assert metrics == {"n_layers": 2, "d_ff": 64, "parameters": metrics["parameters"]} and metrics["parameters"] > 1000
    stored = {m.name: m.value for m in store.metrics(sid, "model")}
    assert stored == metrics
    assert any(e.event == "log" and "llama adapter" in e.data["message"] for e in evs)

    for stage in ("criteria", "model"):
        run = store.stage_run(sid, stage)
        assert (run.state, run.attempts, run.pid, run.error) == (StageState.done, 1, None, None)
        assert run.started_at is not None and run.finished_at is not None and run.finished_at >= run.started_at
        assert run.compute_seconds > 0 and run.gpu_seconds == 0.0
        # the same events are kept in the stage's event log
        logged = events(home.joinpath("logs", f"study-{sid}", f"{stage}.jsonl").read_text(encoding="utf-8"))
        assert [e.event for e in logged][-1] == "done"


def test_a_stage_that_fails_on_bad_input_exits_2_with_an_error_event(lab: dict[str, Any]) -> None:
    store, sid = lab["store"], lab["broken"]
    res = worker(lab["home"], sid, "--stage", "criteria")
    assert res.returncode == 2, res.stderr
    evs = events(res.stdout)
    err = evs[-1]
    assert err.event == "error" and err.data["bad_input"] is True and "min_vibes" in err.data["message"]
    assert "done" not in [e.event for e in evs] and "\n" not in err.data["message"]
    run = store.stage_run(sid, "criteria")
    assert run.state == StageState.failed and run.pid is None and "min_vibes" in (run.error or "")
    assert run.attempts == 1 and run.finished_at is not None
    assert store.artifacts(sid) == [] and store.metrics(sid) == []


def _one_line_error(res: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def test_exit_code_2_for_bad_input(lab: dict[str, Any]) -> None:
    home, sid, store = lab["home"], lab["study"], lab["store"]
    _one_line_error(worker(home, sid, "--stage", "nosuch", prepare=False), "no unit input", "started by the coordinator")
    missing = worker(home, sid)  # --stage not given: argparse's usage error, also exit 2
    assert missing.returncode == 2 and "--stage" in missing.stderr

    # a protocol stage whose implementation neuron-pilot does not have: bad input, nothing recorded as run
    (home / "protocols").mkdir(exist_ok=True)
    (home / "protocols" / "custom.toml").write_text(CUSTOM, encoding="utf-8")
    src = store.study(sid)
    custom = store.create_study(name="custom", protocol="custom", model_id=src.model_id, seed=0,
                                trust_remote_code=False, config=json.loads(src.config_json), source_toml="",
                                source_path="", stages=["criteria", "dream"])
    _one_line_error(worker(home, custom.id, "--stage", "dream"), "not_built_anywhere", "not a stage implementation")
    run = store.stage_run(int(custom.id), "dream")  # type: ignore[arg-type]
    assert (run.state, run.attempts) == (StageState.pending, 0)  # it never started: nothing recorded as run
    # the runner refuses the same protocol before it takes the lease or starts any stage (criteria included)
    with pytest.raises(BadInput, match="stage 'dream' runs 'not_built_anywhere', which is not a stage implementation"):
        Runner(store, int(custom.id)).run()  # type: ignore[arg-type]
    assert store.lease(int(custom.id)) is None  # type: ignore[arg-type]
    assert [r.state for r in store.stage_runs(int(custom.id))] == [StageState.pending] * 2  # type: ignore[arg-type]


def test_a_stage_that_cannot_reach_a_checkpoint_still_exits_within_the_grace_after_sigterm(
        tiny_llama_dir: Path, tiny_corpus_dir: Path, tmp_path: Path) -> None:
    """SIGTERM while the stage is stuck between checkpoints (here: a 60 s pause after its first
    checkpoint, as a long model load or step would be): the unit records `interrupted` and exits after
    NEURON_PILOT_STOP_GRACE_S, before a scheduler's SIGKILL; the next run resumes."""
    import signal
    import time

    from lab.core.faults import FAULT_ENV
    from lab.run.unit import prepare_unit
    from lab.run.worker import STOP_GRACE_ENV, run_stage

    store = Store(tmp_path / "home")
    sid = int(create_study(store, _toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir, "grace")).id)  # type: ignore[arg-type]
    for stage in ("criteria", "model"):
        assert run_stage(str(store.home.root), str(sid), stage) == 0
    prepare_unit(store, sid, "identify")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", FAULT_ENV: "slow:identify:60", STOP_GRACE_ENV: "1.5"}
    proc = subprocess.Popen([sys.executable, "-m", "lab.worker", "--home", str(store.home.root), "--study", str(sid),
                             "--stage", "identify"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    checkpoint = store.home.checkpoint_dir(sid, "identify")
    deadline = time.monotonic() + 120
    while not any(checkpoint.rglob("*.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "identify never checkpointed"
        time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    waited = time.monotonic() - t0
    assert code == 3 and waited < 10, (code, waited, proc.stderr.read() if proc.stderr else "")
    store.ingest(sid, "identify")
    run = store.stage_run(sid, "identify")
    assert run.state == StageState.interrupted and "within 1.5 s of SIGTERM" in (run.error or "")
    assert prepare_unit(store, sid, "identify").resume
