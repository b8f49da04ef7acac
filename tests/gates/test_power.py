"""Power before compute: the MDE from local item counts, the criteria stage's record of it, and the
headless refusal (exit 2, one line) unless --accept-underpowered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.core.paths import DEMO_STUDY, PROJECT_ROOT
from lab.eval.stats import mde_points
from lab.gates.power import power_report
from lab.study.studyfile import load_study_file
from protocols import load_protocol
from tests.helpers import write_study_toml


def _crit(cfg: dict, **over: float) -> dict:
    return {**load_protocol("lsn-staged").gate_params(), **(cfg.get("criteria") or {}), **over}


def test_demo_is_sized_to_what_it_can_detect() -> None:
    _, cfg, _ = load_study_file(DEMO_STUDY)
    r = power_report(cfg, _crit(cfg))
    assert r.items == {"sw": 300, "ur": 300}  # counted from the shipped JSONL, no model loaded
    assert r.mde_targets_points == pytest.approx(mde_points([300, 300], discordance=0.2), rel=1e-12)
    assert 5.0 < r.mde_targets_points < r.min_gain_points == 6.0
    assert not r.underpowered
    # the protocol's 1-point default on the same items is underpowered, and the message says what to do
    low = power_report(cfg, _crit(cfg, min_gain_points=1.0))
    assert low.underpowered and low.items_needed > 7000
    msg = low.message()
    assert "\n" not in msg and "5.1 points" in msg and "min_gain_points is 1" in msg and "--accept-underpowered" in msg


def test_limit_caps_the_counted_items() -> None:
    _, cfg, _ = load_study_file(DEMO_STUDY)
    cfg = {**cfg, "evaluate": {**cfg["evaluate"], "limit": 50}}
    assert power_report(cfg, _crit(cfg)).items == {"sw": 50, "ur": 50}


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.cli", *args, "--home", str(home)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_headless_run_refuses_an_underpowered_study_before_any_stage(tmp_path: Path, tiny_llama_dir: Path,
                                                                    tiny_corpus_dir: Path) -> None:
    study = write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir, name="weak")
    home = tmp_path / "h"
    assert _cli(home, "new", str(study)).returncode == 0
    res = _cli(home, "run", "weak", "--headless")
    assert res.returncode == 2
    line = res.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert "10.2 points" in line and "min_gain_points is 1" in line  # demo_xnli: 150 sw items, ψ 0.2
    from lab.store import Store

    store = Store(home, create=False)
    assert all(r.state.value == "pending" for r in store.stage_runs(1))  # nothing ran
    # --until criteria only freezes the thresholds: allowed, and it records the MDE
    assert _cli(home, "run", "weak", "--until", "criteria", "--headless").returncode == 0
    mde = {m.language: m.value for m in store.metrics(1, "criteria", "mde_points")}
    assert mde["sw"] == pytest.approx(mde_points([150], discordance=0.2)) == pytest.approx(mde["targets"])
    crit = json.loads((home / store.artifact(1, "criteria", "criteria.json").path).read_text())
    assert crit["power"]["underpowered"] is True and crit["power"]["items"] == {"sw": 150}
    # resuming beyond criteria still asks; the flag lets it go on
    assert _cli(home, "run", "weak", "--until", "model", "--headless").returncode == 2
    ok = _cli(home, "run", "weak", "--until", "model", "--headless", "--accept-underpowered")
    assert ok.returncode == 0, ok.stderr
    assert store.stage_run(1, "model").state.value == "done"
