"""Identification: LAPE and both act_prob_90p methods against brute force, the random control, and the stage in a worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lab.neurons.activations import ActivationStats
from lab.core.errors import BadInput
from lab.store import StageState
from lab.neurons.identify import METHODS, identify, jaccard
from lab.neurons.sets import per_layer_counts, random_like
from test_activations import LANGS, TOKENS, collect_recorded, loaded, mixed_corpus, one_thread  # noqa: F401


@pytest.fixture(scope="module")
def recorded(loaded, mixed_corpus: Path):  # noqa: F811
    return collect_recorded(loaded, mixed_corpus)


# ---- brute force, plain NumPy ----------------------------------------------------------------------

def np_kth(flat: np.ndarray, rate: float) -> float:
    k = max(1, min(flat.size, int(np.floor(rate * flat.size + 0.5))))
    return float(np.sort(flat)[k - 1])


def np_lape(p: np.ndarray, languages: list[str], top_rate: float, filter_rate: float, bar_ratio: float) -> dict:
    """p: [n_lang, L, F] float64 → {lang: sorted [(layer, index)]}."""
    n, L, F = p.shape
    P = p.transpose(1, 2, 0).reshape(L * F, n)
    fv, bar = np_kth(P.ravel(), filter_rate), np_kth(P.ravel(), bar_ratio)
    s = P.sum(1, keepdims=True)
    q = np.divide(P, s, out=np.zeros_like(P), where=s > 0)
    H = -(q * np.log(q, out=np.zeros_like(q), where=q > 0)).sum(1)
    cand = np.flatnonzero((P > fv).any(1))
    keep = min(max(1, int(np.floor(top_rate * L * F + 0.5))), cand.size)
    kept = cand[np.argsort(np.round(H[cand] * 1e12), kind="stable")][:keep]
    return {lang: sorted((int(i // F), int(i % F)) for i in kept if P[i, k] > bar) for k, lang in enumerate(languages)}


def np_top(counts: np.ndarray, m: int) -> list[tuple[int, int]]:
    L, F = counts.shape
    order = np.argsort(-counts.reshape(-1), kind="stable")[:m]
    return sorted((int(i // F), int(i % F)) for i in order)


def as_tuples(sets: dict) -> dict:
    return {k: [tuple(x) for x in v] for k, v in sets.items()}


@pytest.mark.parametrize("params", [
    {"top_rate": 0.01, "filter_rate": 0.95, "activation_bar_ratio": 0.95},  # the defaults
    {"top_rate": 0.25, "filter_rate": 0.5, "activation_bar_ratio": 0.6},
    {"top_rate": 0.5, "filter_rate": 0.3, "activation_bar_ratio": 0.3},
])
def test_lape_matches_brute_force_exactly(recorded, params: dict) -> None:
    stats, rec, _ = recorded
    counts = np.stack([(rec.acts(lang) > 0).sum(1) for lang in LANGS])  # from every stored activation
    p = counts / float(TOKENS)
    expected = np_lape(p, LANGS, params["top_rate"], params["filter_rate"], params["activation_bar_ratio"])
    got, details = identify(stats, "lape", params, seed=0)
    assert as_tuples(got) == expected
    assert details["filter_value"] == np_kth(p.ravel(), params["filter_rate"])
    if params["top_rate"] >= 0.25:
        assert sum(len(v) for v in got.values()) > 0


@pytest.mark.parametrize("top_m", [0.00125, 0.05, 0.2])
def test_act_prob_90p_published_matches_brute_force_exactly(recorded, top_m: float) -> None:
    stats, rec, feeds = recorded
    got, details = identify(stats, "act_prob_90p_published", {"top_m": top_m}, seed=0)
    L, F = stats.n_layers, stats.d_ff
    m = max(1, int(np.floor(top_m * L * F + 0.5)))
    assert details["m"] == m and details["method_version"] == 1
    for i, lang in enumerate(LANGS):
        acts = rec.acts(lang)
        split = (feeds[i].n_blocks // 2) * feeds[i].text_per_block
        above = (acts[:, split:] > stats.threshold90[i].numpy()[:, None, :]).sum(1)
        assert [tuple(x) for x in got[lang]] == np_top(above, m)
        assert len(got[lang]) == m


@pytest.mark.parametrize("top_m", [0.00125, 0.05, 0.2])
def test_act_prob_90p_matches_brute_force_on_the_pooled_counts(recorded, top_m: float) -> None:
    """Margin = share above the pooled P90 in the language − share over the other languages' tokens pooled."""
    stats, _, _ = recorded
    got, details = identify(stats, "act_prob_90p", {"top_m": top_m}, seed=0)
    above = stats.above_pooled.numpy().astype(np.float64)  # checked against every activation in test_activations
    tokens = stats.tokens.numpy().astype(np.float64)
    L, F = stats.n_layers, stats.d_ff
    m = max(1, int(np.floor(top_m * L * F + 0.5)))
    assert details["m"] == m and details["method_version"] == 2
    for k, lang in enumerate(LANGS):
        others = [j for j in range(len(LANGS)) if j != k]
        margin = (above[k] / tokens[k] - above[others].sum(0) / tokens[others].sum()).reshape(-1)
        ok = np.flatnonzero(margin >= 0.05)
        order = ok[np.argsort(-np.round(margin[ok] * 1e12), kind="stable")][:m]
        assert [tuple(x) for x in got[lang]] == sorted((int(i // F), int(i % F)) for i in order)
        assert details["eligible"][lang] == ok.size
    assert sum(len(v) for v in got.values()) > 0


def lape_stats(p: list[list[float]], tokens: int = 1000) -> ActivationStats:
    """Hand-made statistics: p is [n_lang][F] for a single layer."""
    count = torch.tensor(p, dtype=torch.float64).mul(tokens).round().to(torch.int64).unsqueeze(1)
    n, _, F = count.shape
    z = torch.zeros(n, 1, F)
    return ActivationStats(languages=["aa", "bb", "cc"][:n], count=count, sum=z.double(),
                           tokens=torch.full((n,), tokens), p10=z, p90=z, threshold90=z,
                           above90=torch.zeros(n, 1, F, dtype=torch.int64), score_tokens=torch.full((n,), tokens // 2),
                           hist_lo=torch.zeros(1, F), hist_width=torch.ones(1, F), bins=4)


def test_lape_picks_the_neuron_that_fires_for_one_language() -> None:
    # neuron 0 fires on aa only, neuron 1 on everything, neuron 2 on aa and bb, 3..7 barely at all
    p = [[0.9, 0.9, 0.8, 0.01, 0.02, 0.01, 0.0, 0.03],
         [0.0, 0.9, 0.8, 0.02, 0.01, 0.0, 0.01, 0.02],
         [0.0, 0.9, 0.0, 0.01, 0.0, 0.02, 0.01, 0.01]]
    sets, details = identify(lape_stats(p), "lape", {"top_rate": 0.25, "filter_rate": 0.75,
                                                     "activation_bar_ratio": 0.75}, seed=0)
    # 24 values: the 18th smallest (0.03) is the filter value and the bar; neurons 0, 1, 2 exceed it;
    # the 2 (25 % of 8) with the lowest entropy are 0 (one language) and 2 (two), not 1 (all three)
    assert details["filter_value"] == pytest.approx(0.03) and details["eligible"] == 3 and details["kept"] == 2
    assert sets == {"aa": [[0, 0], [0, 2]], "bb": [[0, 2]], "cc": []}  # a neuron may belong to two languages


def test_random_control_keeps_per_layer_counts_and_is_seeded() -> None:
    ref = {"en": [[0, 3], [0, 9], [2, 1]], "sw": [[1, 5]], "fr": []}
    a = random_like(ref, n_layers=3, d_ff=16, seed=9)
    b = random_like(ref, n_layers=3, d_ff=16, seed=9)
    c = random_like(ref, n_layers=3, d_ff=16, seed=10)
    assert a == b and a != c
    for lang in ref:
        assert per_layer_counts(a[lang], 3) == per_layer_counts(ref[lang], 3)
        assert len({tuple(x) for x in a[lang]}) == len(a[lang])
        assert all(0 <= j < 16 for _, j in a[lang])
    assert METHODS.names() == ["act_prob_90p", "act_prob_90p_published", "lape", "random"]


def test_random_method_follows_its_reference(recorded) -> None:
    stats, _, _ = recorded
    params = {"top_rate": 0.25, "filter_rate": 0.5, "activation_bar_ratio": 0.6}
    ref, _ = identify(stats, "lape", params, seed=1)
    rnd, details = identify(stats, "random", {**params, "reference": "lape"}, seed=1)
    assert details["reference"] == "lape"
    assert rnd == random_like(ref, stats.n_layers, stats.d_ff, seed=1)
    with pytest.raises(BadInput, match="reference method other than random"):
        identify(stats, "random", {"reference": "random"}, seed=1)
    with pytest.raises(BadInput, match="unknown identification method 'nope'"):
        identify(stats, "nope", {}, seed=1)


def test_jaccard_of_sets() -> None:
    assert jaccard([[0, 1], [1, 1]], [[0, 1], [1, 2]]) == (1 / 3, 3)
    assert jaccard([], []) == (0.0, 0)


def test_90p_refuses_a_single_block_per_language(recorded) -> None:
    stats, _, _ = recorded
    one = ActivationStats(**{**stats.__dict__, "score_tokens": torch.zeros_like(stats.score_tokens)})
    with pytest.raises(BadInput, match="tokens_per_language to at least 2 x block_size"):
        identify(one, "act_prob_90p_published", {}, seed=0)
    identify(one, "act_prob_90p", {}, seed=0)  # the pooled method needs no second sample
    old = ActivationStats(**{**stats.__dict__, "above_pooled": None, "threshold_pooled": None})
    with pytest.raises(BadInput, match="predate the pooled P90"):
        identify(old, "act_prob_90p", {}, seed=0)


# ---- the stage, in real workers ----------------------------------------------------------------------

def study_toml(path: Path, model: Path, corpus: Path, *, method: str = "lape", tokens: int = 512,
               checkpoint_every: int = 4, name: str = "identify-test") -> Path:
    path.write_text(f"""[study]
name = "{name}"
protocol = "lsn-staged"
seed = 5

[model]
id = "{model}"
device = "cpu"
dtype = "float32"

[languages]
all = {json.dumps(LANGS)}
targets = ["sw"]

[corpus]
path = "{corpus}"
tokens_per_language = {tokens}
block_size = 32

[identify]
method = "{method}"
batch_size = 4
checkpoint_every = {checkpoint_every}
histogram_bins = 128
top_rate = 0.1

[evaluate]
tasks = ["demo_xnli"]
""", encoding="utf-8")
    return path


def make_study(home: Path, toml: Path):
    from lab.store import Store
    from lab.study.create import create_study

    store = Store(home)
    return store, create_study(store, toml)


@pytest.mark.slow
def test_stage_runs_in_a_worker_and_records_both_artifacts(tmp_path: Path, tiny_llama_dir: Path, mixed_corpus: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from lab.core.artifacts import sha256_file
    from lab.run.runner import Runner

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # workers on the shared 2-core machine

    store, study = make_study(tmp_path / "home", study_toml(tmp_path / "s.toml", tiny_llama_dir, mixed_corpus))
    events = []
    outcome = Runner(store, study.id, headless=True, on_event=events.append).run(until="identify")
    assert outcome.code == 0, outcome.message
    arts = {a.name: a for a in store.artifacts(study.id, "identify")}
    assert set(arts) == {"activation_stats.safetensors", "neurons.json", "control.json"}
    for a in arts.values():
        assert len(a.sha256) == 64 and sha256_file(store.home.inside(Path(a.path))) == a.sha256
    path = {name: store.home.inside(Path(a.path)) for name, a in arts.items()}
    neurons = json.loads(path["neurons.json"].read_text())
    control = json.loads(path["control.json"].read_text())
    assert neurons["method"] == "lape" and control["method"] == "random"
    assert set(neurons["languages"]) == set(LANGS) == set(control["languages"])
    assert neurons["params"]["top_rate"] == 0.1
    for lang in LANGS:
        assert per_layer_counts(control["languages"][lang], 2) == per_layer_counts(neurons["languages"][lang], 2)
    stats = ActivationStats.load(path["activation_stats.safetensors"])
    assert stats.tokens.tolist() == [512] * 4 and stats.meta["revision"].startswith("sha256:")
    assert stats.meta["bos"] != "none" and stats.meta["position0_excluded"] == "true"
    again, _ = identify(stats, "lape", neurons["params"], seed=5)
    assert again == neurons["languages"]  # the artifact alone reproduces the sets

    metrics = store.metrics(study.id, "identify")
    got = {(m.name, m.language, m.condition): m.value for m in metrics}
    for lang in LANGS:
        assert got[("neurons", lang, "lape")] == len(neurons["languages"][lang]) == got[("neurons", lang, "control")]
        assert sum(got[("neurons_layer", lang, f"layer{i}")] for i in range(2)) == len(neurons["languages"][lang])
    assert ("overlap_jaccard", "en|sw", "lape") in got and ("overlap_jaccard", "fr|de", "control") in got
    progress = [e.data for e in events if e.event == "progress" and e.stage == "identify" and e.data["unit"] == "tokens"]
    assert {p["label"] for p in progress} == set(LANGS) and progress[-1]["done"] == progress[-1]["total"] == 512
    assert store.stage_run(study.id, "identify").state.value == "done"


def stage_context(store, study, stage: str):
    from lab.stages.context import StageContext
    from protocols import load_protocol

    protocol = load_protocol(study.protocol, store.home.root)
    return StageContext(store, study, protocol, protocol.get(stage), out=None)


@pytest.mark.slow
def test_killed_worker_resumes_to_identical_statistics(tmp_path: Path, tiny_llama_dir: Path, mixed_corpus: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from lab.run.executor import worker_command
    from lab.run.unit import prepare_unit
    from lab.run.workers import recover
    from lab.stages.identify import run as run_identify

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the same thread count as this process (see one_thread)
    toml = study_toml(tmp_path / "s.toml", tiny_llama_dir, mixed_corpus, method="act_prob_90p", tokens=2048,
                      checkpoint_every=2)
    # the uninterrupted reference: the same stage code, in this process
    store_a, study_a = make_study(tmp_path / "a", toml)
    run_identify(stage_context(store_a, study_a, "identify"))
    ref_dir = store_a.home.stage_dir(study_a.id, "identify")
    ref = ActivationStats.load(ref_dir / "activation_stats.safetensors")

    store, study = make_study(tmp_path / "b", toml)
    cmd = worker_command(store.home, study.id, "identify")
    prepare_unit(store, study.id, "identify")  # what the coordinator does before it starts the unit
    store.update_stage(study.id, "identify", state=StageState.running, host=socket.gethostname())
    cp_json = store.home.checkpoint_dir(study.id, "identify") / "stats" / "stats.json"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not cp_json.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    store.update_stage(study.id, "identify", pid=proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    info = json.loads(cp_json.read_text())
    assert info["language_index"] < len(LANGS) - 1 or info["next_block"] < 64  # killed mid-way, not at the end
    out_dir = store.home.stage_dir(study.id, "identify")
    assert not (out_dir / "activation_stats.safetensors").exists()

    assert recover(store, study.id) == ["identify"]  # what the runner does first: the dead worker -> interrupted
    assert prepare_unit(store, study.id, "identify").resume  # interrupted: the next unit resumes
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    store.ingest(study.id, "identify")
    assert any("resumed from the checkpoint" in line.message for line in store.logs(study.id, "identify"))
    got = ActivationStats.load(out_dir / "activation_stats.safetensors")
    for name, a in ref.tensors().items():
        b = got.tensors()[name]
        assert torch.equal(a, b) or (torch.isnan(a).all() and torch.isnan(b).all()), name
    assert json.loads((out_dir / "neurons.json").read_text())["languages"] == \
        json.loads((ref_dir / "neurons.json").read_text())["languages"]


def test_bad_config_is_refused_before_the_model_loads() -> None:
    from lab.stages.identify import check_config

    base = {"identify": {"method": "act_prob_90p_published"}, "corpus": {"tokens_per_language": 31, "block_size": 32}}
    with pytest.raises(BadInput, match="must exceed one block's text"):
        check_config(base)
    check_config({**base, "identify": {"method": "act_prob_90p"}})  # one sample is enough for the pooled method
    with pytest.raises(BadInput, match="is the control, not a method"):
        check_config({**base, "identify": {"method": "random"}})
    check_config({**base, "identify": {"method": "lape"}})


def test_stage_module_registers_identify() -> None:
    from lab.stages import load_all

    assert "identify" in load_all()
    assert sys.modules.get("lab.stages.identify") is not None
