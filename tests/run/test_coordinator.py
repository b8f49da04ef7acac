"""The detached runner (lab.run.coordinator): `[study] decide` validated at `new`, one runner per study,
and a study with decide = "rules" driven by `run --detach` to its verdict with every decision by rule."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.cli import main
from lab.core.errors import BadInput
from lab.run.coordinator import read_back, runner_log, start_detached
from lab.store import StageState, Store
from lab.store.db import pid_alive
from tests.helpers import ROOT_DIR, en_sw_study

SECTIONS = """
[identify]
method = "lape"
top_rate = 0.05
batch_size = 4
[intervention]
kind = "test_time"
value = "p90"
[evaluate]
tasks = ["demo_real"]
limit = 4
bootstrap = 100
batch_size = 4
"""


def study_text(model: Path, corpus: Path, decide: str) -> str:
    return en_sw_study("detached", model, corpus, 5, SECTIONS).replace('seed = 5\n', f'seed = 5\ndecide = "{decide}"\n', 1)


def test_decide_key_is_validated_at_new(tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(study_text(tiny_llama_dir, tiny_corpus_dir, "robots"), encoding="utf-8")
    assert main(["new", str(bad), "--home", str(tmp_path / "h")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "[study] decide" in err and "'person' or 'rules'" in err, err
    good = tmp_path / "good.toml"
    good.write_text(study_text(tiny_llama_dir, tiny_corpus_dir, "rules"), encoding="utf-8")
    assert main(["new", str(good), "--home", str(tmp_path / "h")]) == 0
    assert main(["run", "1", "--detach", "--decide", "robots", "--home", str(tmp_path / "h")]) == 2
    assert "--decide" in capsys.readouterr().err


def test_a_second_runner_is_refused_while_one_drives_the_study(tmp_path: Path, tiny_llama_dir: Path,
                                                                tiny_corpus_dir: Path) -> None:
    from lab.study.create import create_study

    path = tmp_path / "s.toml"
    path.write_text(study_text(tiny_llama_dir, tiny_corpus_dir, "person"), encoding="utf-8")
    store = Store(tmp_path / "h")
    sid = int(create_study(store, path).id)  # type: ignore[arg-type]
    store.acquire_lease(sid, "coordinator (person)")  # this live process holds it
    with pytest.raises(BadInput, match="already driven by coordinator"):
        start_detached(store, sid)
    store.release_lease(sid)


@pytest.mark.slow
def test_decide_rules_runs_detached_to_the_verdict_with_decisions_by_rule(tmp_path: Path, tiny_llama_dir: Path,
                                                                          tiny_corpus_dir: Path) -> None:
    home = tmp_path / "h"
    path = tmp_path / "rules.toml"
    path.write_text(study_text(tiny_llama_dir, tiny_corpus_dir, "rules"), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cli = [sys.executable, "-m", "lab.cli"]
    sid = subprocess.run(cli + ["new", str(path), "--home", str(home)], capture_output=True, text=True,
                         env=env, cwd=ROOT_DIR, check=True).stdout.strip()
    t0 = time.monotonic()
    res = subprocess.run(cli + ["run", sid, "--detach", "--accept-underpowered", "--home", str(home)],
                         capture_output=True, text=True, env=env, cwd=ROOT_DIR, timeout=60)
    assert res.returncode == 0, res.stderr
    started = time.monotonic() - t0
    pid = int(re.search(r"runner pid (\d+)", res.stdout).group(1))  # type: ignore[union-attr]
    assert "decisions by rules" in res.stdout
    deadline = time.monotonic() + 300
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not pid_alive(pid), "the background runner did not finish"
    store = Store(home)
    log = runner_log(store, int(sid)).read_text(encoding="utf-8")
    assert "exit 0" in log, log[-3000:]
    runs = store.stage_runs(int(sid))
    states = {r.stage: r.state for r in runs}
    # rules decide every gate; a no-go stops the pilot (later stages stay pending) and the verdict stage runs
    assert set(states.values()) <= {StageState.done, StageState.pending}, states
    assert states["decide"] == StageState.done and states["identify"] == StageState.done, states
    status = json.loads(subprocess.run(cli + ["status", sid, "--json", "--home", str(home)], capture_output=True,
                                       text=True, env=env, cwd=ROOT_DIR, check=True).stdout)
    decisions = [st["decision"] for st in status["stages"] if st["decision"] is not None]
    assert {st["name"] for st in status["stages"] if st["decision"]} >= {"criteria", "identify", "decide"}
    assert all(d["by"] == "rule" for d in decisions), decisions
    assert status["verdict"]["decision"] in ("go", "no-go", "inconclusive")
    assert status["runner"] is None  # the lease was released
    # the runner's own lines (gates by rule) are in its event file, read back with every stage's events
    lines = [e.describe() for e in read_back(store, int(sid), [r.stage for r in runs])]
    assert any("(by rule)" in line for line in lines) and any("pilot verdict" in line for line in lines)
    print(f"\nrun --detach returned in {started:.1f} s; the detached pilot took {time.monotonic() - t0:.1f} s")
