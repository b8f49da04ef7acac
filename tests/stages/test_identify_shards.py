"""Sharded identification on the demo model and corpora: 1 vs 3 shards, a killed shard resumes alone, status, cancel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from lab.core.errors import BadInput
from lab.neurons.activations import ActivationStats
from lab.store import StageState, Store
from tests.helpers import ROOT_DIR

LANGS = ["en", "fr", "de", "sw", "hi", "ur"]
TOKENS = 1024  # 9 blocks of 128 (a BOS and 127 text tokens) per language: 3 per shard of 3
# float64 sums of float32 batch sums: shards cut the batches elsewhere, so act_sum agrees to float32
# rounding of each batch's sum, not bit for bit; everything integer (and all that follows from it) is identical
SUM_RTOL, SUM_ATOL = 1e-4, 1e-3
# exact quantiles are activation values: computed in another process they may differ in the last bits (BLAS
# kernels can depend on memory alignment), so a comparison across processes allows this much
QUANTILE_ATOL = 1e-6
NOT_MERGED = ("threshold_90p", "above_90p", "tokens_90p")  # act_prob_90p_published's samples: not in a sharded run


def demo_toml(path: Path, shards: int, max_parallel: int = 1) -> Path:
    """The demo study (shipped tiny model, shipped corpora, lape) with fewer tokens, on the CPU."""
    path.write_text(f"""
[study]
name = "shards-{shards}"
protocol = "lsn-staged"
seed = 1234
[model]
id = "{ROOT_DIR / 'examples/models/tiny-polyglot'}"
device = "cpu"
dtype = "float32"
[languages]
all = {json.dumps(LANGS)}
targets = ["sw", "ur"]
[corpus]
path = "{ROOT_DIR / 'examples/corpora'}"
tokens_per_language = {TOKENS}
block_size = 128
[identify]
method = "lape"
shards = {shards}
checkpoint_every = 1
batch_size = 2
[evaluate]
tasks = ["demo_cloze"]
[criteria]
min_gain_points = 6.0
[compute]
max_parallel = {max_parallel}
""", encoding="utf-8")
    return path


def make(home: Path, toml: Path) -> tuple[Store, int]:
    from lab.study.create import create_study

    store = Store(home)
    return store, int(create_study(store, toml).id)  # type: ignore[arg-type]


def run_in_process(store: Store, sid: int, part: dict | None = None) -> None:
    """The identify stage's code in this process (the reference, or one shard)."""
    from lab.stages.context import StageContext
    from lab.stages.identify import run as run_identify
    from protocols import load_protocol

    study = store.study(sid)
    protocol = load_protocol(study.protocol, store.home.root)
    run_identify(StageContext(store, study, protocol, protocol.get("identify"), out=None, part=part))


def outputs(store: Store, sid: int) -> tuple[ActivationStats, dict, dict]:
    folder = store.home.stage_dir(sid, "identify")
    return (ActivationStats.load(folder / "activation_stats.safetensors"),
            json.loads((folder / "neurons.json").read_text())["languages"],
            json.loads((folder / "control.json").read_text())["languages"])


def assert_same(got: tuple[ActivationStats, dict, dict], ref: tuple[ActivationStats, dict, dict],
                other_process: bool = False) -> None:
    a, b = ref[0].tensors(), got[0].tensors()
    assert set(a) == set(b)
    for name in a:
        if name in NOT_MERGED:
            continue
        if name in ("act_sum", "act_mean"):
            assert torch.allclose(a[name], b[name], rtol=SUM_RTOL, atol=SUM_ATOL), name
        elif other_process and name in ("act_p10", "act_p90"):
            assert torch.allclose(a[name], b[name], rtol=0, atol=QUANTILE_ATOL), name
        else:  # counts, tokens, histogram quantiles (exact after refine), pooled P90 and counts above it
            assert torch.equal(a[name], b[name]), name
    assert torch.isnan(b["threshold_90p"]).all() and not b["above_90p"].any() and not b["tokens_90p"].any()
    assert got[1] == ref[1] and got[2] == ref[2]  # neuron sets and random controls identical


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[ActivationStats, dict, dict]:
    """One unit (shards = 1), in this process."""
    tmp = tmp_path_factory.mktemp("ref")
    store, sid = make(tmp / "home", demo_toml(tmp / "s.toml", 1))
    run_in_process(store, sid)
    return outputs(store, sid)


def test_three_shards_merge_to_the_one_shard_statistics(tmp_path: Path, reference) -> None:
    """Each shard reads its third of every language's blocks; the merge adds them up: integer counts,
    tokens, histograms (so quantiles, the pooled P90 and neuron sets) identical; sums to float rounding."""
    from lab.stages import part_info

    store, sid = make(tmp_path / "home", demo_toml(tmp_path / "s.toml", 3))
    for k in (1, 2, 3):
        run_in_process(store, sid, part_info(f"shard-{k}-of-3"))
    assert not (store.home.stage_dir(sid, "identify") / "neurons.json").exists()  # shards write no artifact
    run_in_process(store, sid)  # the merge unit
    got = outputs(store, sid)
    assert got[0].meta["shards"] == "3" and got[0].tokens.tolist() == reference[0].tokens.tolist()
    assert_same(got, reference)


def _events(store: Store, sid: int, key: str) -> list[dict]:
    path = store.home.event_log(sid, key)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_a_killed_shard_alone_resumes_from_its_checkpoint(tmp_path: Path, reference,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Three shards as worker processes (two at a time); shard 2 is killed mid-way (SIGKILL). The runner
    lets the others finish and leaves the stage interrupted; the next run reruns shard 2 alone, from its
    last checkpoint, merges, and the result equals the unsharded one. `status` lists every unit."""
    from lab.cli import status_dict
    from lab.run.runner import Runner

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("NEURON_PILOT_TEST_FAULT", "slow:identify.shard-2-of-3:1.0")  # shard 2 pauses at each checkpoint
    store, sid = make(tmp_path / "home", demo_toml(tmp_path / "s.toml", 3, max_parallel=2))
    Runner(store, sid, headless=True).run(until="model")
    box: dict = {}
    runner = threading.Thread(target=lambda: box.update(out=Runner(store, sid, headless=True).run(until="identify")))
    runner.start()
    cp = store.home.checkpoint_dir(sid, "identify") / "shard-2-of-3" / "stats" / "stats.json"
    seen_units = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        rows = {r.unit: r for r in store.unit_runs(sid, "identify")}
        if seen_units is None and len(rows) == 3 and rows["shard-2-of-3"].state == StageState.running:
            report = next(s for s in status_dict(store, store.study(sid))["stages"] if s["name"] == "identify")["unit"]
            seen_units = {u["unit"]: u for u in report["units"]}
        if cp.exists() and json.loads(cp.read_text())["language_index"] >= 1:
            break
        time.sleep(0.1)
    pid = store.unit_runs(sid, "identify")[1].pid
    assert pid and cp.exists()
    os.kill(pid, signal.SIGKILL)
    runner.join(timeout=300)
    outcome = box["out"]
    assert outcome.code == 1 and "interrupted" in outcome.message, outcome.message
    assert seen_units is not None and set(seen_units) == {"shard-1-of-3", "shard-2-of-3", "shard-3-of-3"}
    assert seen_units["shard-2-of-3"]["state"] == "RUNNING" and seen_units["shard-2-of-3"]["job_id"]
    rows = {r.unit: r for r in store.unit_runs(sid, "identify")}
    assert rows["shard-1-of-3"].state == rows["shard-3-of-3"].state == StageState.done
    assert rows["shard-2-of-3"].state == StageState.interrupted
    assert store.stage_run(sid, "identify").state == StageState.interrupted
    killed_at = json.loads(cp.read_text())

    monkeypatch.delenv("NEURON_PILOT_TEST_FAULT")
    outcome = Runner(store, sid, headless=True).run(until="identify")
    assert outcome.code == 0, outcome.message
    rows = {r.unit: r for r in store.unit_runs(sid, "identify")}
    assert (rows["shard-1-of-3"].attempts, rows["shard-2-of-3"].attempts, rows["shard-3-of-3"].attempts) == (1, 2, 1)
    for done_once in ("shard-1-of-3", "shard-3-of-3"):  # never started again
        assert [e["attempt"] for e in _events(store, sid, f"identify.{done_once}") if e["event"] == "started"] == [1]
    logs = [line.message for line in store.logs(sid, "identify", limit=1000)]
    resumed = f"[shard-2-of-3] resumed from the checkpoint at {LANGS[killed_at['language_index']]} " \
              f"block {killed_at['next_block']}"
    assert resumed in logs, logs
    assert sum("resumed from the checkpoint" in m for m in logs) == 1
    assert_same(outputs(store, sid), reference, other_process=True)  # worker processes vs this one


def test_cancel_reaches_every_running_unit_of_a_sharded_stage(tmp_path: Path) -> None:
    """`neuron-pilot cancel` (cancel_units) asks each running unit of the stage to stop, not only one."""
    from lab.run.workers import cancel_units

    store, sid = make(tmp_path / "home", demo_toml(tmp_path / "s.toml", 3))
    store.update_stage(sid, "identify", state=StageState.running, executor="local", job_id=None, pid=None)
    procs = []
    for k in (1, 2):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
        procs.append(proc)
        store.update_unit(sid, "identify", f"shard-{k}-of-3", state=StageState.running, executor="local",
                          job_id=str(proc.pid), pid=proc.pid, host=os.uname().nodename)
    store.update_unit(sid, "identify", "shard-3-of-3", state=StageState.done)
    try:
        asked = cancel_units(store, sid)
        assert len(asked) == 2 and all("unit shard-" in line for line in asked)
        assert [p.wait(timeout=30) for p in procs] == [-signal.SIGTERM] * 2
    finally:
        for p in procs:
            p.kill()


def test_bad_shard_counts_are_one_line_before_compute(tmp_path: Path) -> None:
    from lab.study.create import set_shards
    from lab.study.studyfile import parse_study

    text = demo_toml(tmp_path / "s.toml", 1).read_text()
    for bad, words in (("shards = 0", "greater than or equal to 1"), ("shards = 9", "more than the 8 blocks"),
                       ('shards = "3"', "whole number")):
        with pytest.raises(BadInput, match=words) as err:
            parse_study(text.replace("shards = 1", bad))
        assert "\n" not in str(err.value) and "shards" in str(err.value)
    with pytest.raises(BadInput, match="max_parallel"):
        parse_study(text.replace("max_parallel = 1", "max_parallel = 0"))
    with pytest.raises(BadInput, match="act_prob_90p_published"):
        parse_study(text.replace('method = "lape"', 'method = "act_prob_90p_published"').replace("shards = 1", "shards = 2"))
    store, sid = make(tmp_path / "home", tmp_path / "s.toml")
    for bad in ("0", "x", "9"):
        with pytest.raises(BadInput, match="--shards"):
            set_shards(store, sid, bad)
    assert set_shards(store, sid, "4") and json.loads(store.study(sid).config_json)["identify"]["shards"] == 4
    assert set_shards(store, sid, "4") is None  # stored: a resume uses the same N
    store.update_stage(sid, "identify", state=StageState.interrupted)
    with pytest.raises(BadInput, match="applies only before identify starts"):
        set_shards(store, sid, "2")


def test_cli_run_shards_bad_value_exits_2_with_one_line(tmp_path: Path) -> None:
    make(tmp_path / "home", demo_toml(tmp_path / "s.toml", 1))
    res = subprocess.run([sys.executable, "-m", "lab.cli", "run", "1", "--headless", "--shards", "0",
                          "--home", str(tmp_path / "home")], capture_output=True, text=True, timeout=120, cwd=ROOT_DIR)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "--shards" in res.stderr, res.stderr


def test_a_stage_stays_running_while_a_unit_lives_and_is_interrupted_once_all_are_gone(tmp_path: Path) -> None:
    """mark_stale (what status, the TUI and a new runner do first): a sharded stage has no worker of its own
    while its units run, so its liveness is theirs."""
    store, sid = make(tmp_path / "home", demo_toml(tmp_path / "s.toml", 2))
    store.update_stage(sid, "identify", state=StageState.running, executor="local", job_id=None, pid=None)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        for k, proc in ((1, live), (2, dead)):
            store.update_unit(sid, "identify", f"shard-{k}-of-2", state=StageState.running, executor="local",
                              job_id=str(proc.pid), pid=proc.pid, host=os.uname().nodename)
        assert store.mark_stale(sid) == []
        rows = {r.unit: r.state for r in store.unit_runs(sid, "identify")}
        assert rows == {"shard-1-of-2": StageState.running, "shard-2-of-2": StageState.interrupted}
        assert store.stage_run(sid, "identify").state == StageState.running
        live.kill()
        live.wait()
        assert store.mark_stale(sid) == ["identify"]
        assert store.stage_run(sid, "identify").state == StageState.interrupted
    finally:
        live.kill()
