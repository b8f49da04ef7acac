"""A gate that stops the pilot still leaves a recorded verdict: the runner skips the remaining compute
stages but runs the verdict stage (gate rule `final`), so `decide` is done and summary.json exists."""

from __future__ import annotations

from tests.helpers import write_study_toml

import json
import subprocess
import sys
from pathlib import Path

from lab.core.paths import PROJECT_ROOT
from lab.store import StageState, Store


def test_no_go_at_identify_skips_compute_but_records_the_verdict(tmp_path: Path, tiny_llama_dir: Path,
                                                                 tiny_corpus_dir: Path) -> None:
    study = write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir, "stops-early", seed=3)
    # an identify threshold no set can meet: the identify gate must say no-go
    study.write_text(study.read_text(encoding="utf-8") + "\n[criteria]\nmin_neurons_per_target = 100000\n",
                     encoding="utf-8")
    home = tmp_path / "home"
    run = [sys.executable, "-m", "lab.cli"]
    made = subprocess.run([*run, "new", str(study), "--home", str(home)], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    res = subprocess.run([*run, "run", "stops-early", "--headless", "--accept-underpowered", "--home", str(home)],
                         cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "pilot stopped at the identify gate: no-go" in res.stdout + res.stderr

    store = Store(home, create=False)
    sid = int(made.stdout.strip())
    states = {r.stage: r.state for r in store.stage_runs(sid)}
    assert states["identify"] == StageState.done and states["decide"] == StageState.done
    assert states["reproduce"] == StageState.pending and states["evaluate"] == StageState.pending
    assert store.latest_decision(sid, "identify").verdict == "no-go"
    summary = home / "artifacts" / f"study-{sid}" / "decide" / "summary.json"
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["verdict"]["decision"] == "no-go"
    assert any(r.startswith("identify: no-go") for r in data["verdict"]["reasons"])
