"""Streaming activation statistics: checked against every activation stored, resumed exactly, saved per DESIGN.md."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from lab.neurons.activations import ActivationStats
from lab.neurons.collect import StatsCheckpoint, collect_stats, plan_batches
from lab.neurons.statistics import BinLayout, hist_quantile, rank_for
from lab.inputs.corpus import BlockFeed, corpus_feed
from lab.core.errors import StageInterrupted
from lab.model.loading import load_model

LANGS = ["en", "fr", "de", "sw"]
TOKENS, BLOCK, BATCH = 600, 32, 4


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The shared 2-core machine: one thread avoids spinning against other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def loaded(tiny_llama_dir: Path):
    return load_model({"id": str(tiny_llama_dir), "device": "cpu", "dtype": "float32"})


@pytest.fixture(scope="module")
def mixed_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each language's demo words in a different random order per line, so blocks differ."""
    from tests.helpers import LANG_TEXT

    d = tmp_path_factory.mktemp("mixed")
    rng = random.Random(11)
    for lang, text in LANG_TEXT.items():
        words = text.split()
        lines = [" ".join(rng.sample(words, len(words))) for _ in range(400)]
        (d / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return d


class Recorder:
    """Stores every activation the statistics hooks see, per language and layer (plain NumPy), leaving out
    the first `skip` positions of every block (the BOS, which the statistics exclude)."""

    def __init__(self, modules: list[torch.nn.Module], skip: int = 0) -> None:
        self.lang: str | None = None
        self.skip = skip
        self.data: dict[str, list[list[np.ndarray]]] = {}
        self.handles = [m.register_forward_hook(self._make(i)) for i, m in enumerate(modules)]

    def _make(self, layer: int) -> Callable[..., None]:
        def hook(_m: Any, _i: Any, out: torch.Tensor) -> None:
            if self.lang is not None:  # None during calibration
                self.data.setdefault(self.lang, [[] for _ in self.handles])[layer].append(
                    out.detach()[:, self.skip:].reshape(-1, out.shape[-1]).numpy().copy())
        return hook

    def progress(self, lang: str, done: int, total: int) -> None:
        self.lang = lang

    def acts(self, lang: str) -> np.ndarray:
        """[n_layers, tokens, d_ff] in the order the pass saw them."""
        return np.stack([np.concatenate(chunks) for chunks in self.data[lang]])

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def collect_recorded(loaded, corpus: Path, bins: int = 256, tokens: int = TOKENS, block: int = BLOCK,
                     seed: int = 0) -> tuple[ActivationStats, Recorder, list[BlockFeed]]:
    feeds = [corpus_feed(loaded.tokenizer, corpus, lang, tokens, block, seed) for lang in LANGS]
    bos = loaded.tokenizer.bos_token_id
    assert bos is not None and all(f.bos == bos for f in feeds)  # every block starts with the BOS
    rec = Recorder(loaded.adapter.act_modules(loaded.model), skip=1)
    try:
        stats = collect_stats(loaded.model, loaded.adapter, feeds, bins=bins, batch_size=BATCH, progress=rec.progress)
    finally:
        rec.close()
    return stats, rec, feeds


@pytest.fixture(scope="module")
def recorded(loaded, mixed_corpus: Path):
    return collect_recorded(loaded, mixed_corpus)


def nearest_rank(values: np.ndarray, q: float) -> np.ndarray:
    """Exact k-th smallest per column, k = ceil(q·n), straight from sorted values."""
    n = values.shape[0]
    k = int(np.ceil(round(q * n, 9)))
    return np.sort(values, axis=0)[k - 1]


def test_counts_means_and_tokens_match_every_stored_activation(recorded) -> None:
    stats, rec, _ = recorded
    assert stats.languages == LANGS
    assert stats.tokens.tolist() == [TOKENS] * len(LANGS)
    for i, lang in enumerate(LANGS):
        acts = rec.acts(lang)
        assert acts.shape[1] == TOKENS  # every real token, nothing else
        assert np.array_equal(stats.count[i].numpy(), (acts > 0).sum(1))
        np.testing.assert_allclose(stats.act_mean[i].numpy(), acts.astype(np.float64).mean(1), rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(stats.act_prob[i].numpy(), (acts > 0).sum(1) / TOKENS)


@pytest.mark.parametrize("bins", [64, 2048])
def test_p10_p90_are_within_one_bin_width_of_the_exact_quantiles(loaded, mixed_corpus: Path, bins: int) -> None:
    stats, rec, _ = collect_recorded(loaded, mixed_corpus, bins=bins, tokens=300)
    width = stats.hist_width.numpy().astype(np.float64)
    assert all(v == {"p10": 0, "p90": 0} for v in stats.out_of_range.values())
    for i, lang in enumerate(LANGS):
        acts = rec.acts(lang)
        for q, est in ((0.1, stats.p10[i]), (0.9, stats.p90[i])):
            exact = np.stack([nearest_rank(acts[layer], q) for layer in range(acts.shape[0])])
            err = np.abs(est.numpy().astype(np.float64) - exact)
            assert (err <= width * (1 + 1e-4) + 1e-7).all(), (lang, q, float((err / width).max()))
    if bins == 2048:  # finer bins, a tight bound: the estimate is not just "somewhere in the range"
        assert float(stats.hist_width.max()) < 0.01


def test_90p_threshold_comes_from_the_first_half_and_counts_from_the_second(recorded) -> None:
    stats, rec, feeds = recorded
    width = stats.hist_width.numpy().astype(np.float64)
    for i, lang in enumerate(LANGS):
        acts = rec.acts(lang)
        split = (feeds[i].n_blocks // 2) * (BLOCK - 1)  # text tokens: each block is the BOS + BLOCK - 1
        first, second = acts[:, :split], acts[:, split:]
        assert stats.score_tokens[i] == second.shape[1] == TOKENS - split
        exact = np.stack([nearest_rank(first[layer], 0.9) for layer in range(acts.shape[0])])
        thr = stats.threshold90[i].numpy()
        assert (np.abs(thr.astype(np.float64) - exact) <= width * (1 + 1e-4) + 1e-7).all()
        above = (second > thr[:, None, :]).sum(1)  # the stage's thresholds, applied by brute force
        assert np.array_equal(stats.above90[i].numpy(), above)
    assert 0.05 < float(stats.score_90p.mean()) < 0.2  # a stationary neuron scores about 0.1


def test_quantile_from_a_known_histogram() -> None:
    layout = BinLayout(torch.zeros(1, 2), torch.ones(1, 2), bins=4)  # bins [0,1) [1,2) [2,3) [3,4)
    hist = torch.tensor([[[0, 2, 2, 4, 2, 0], [3, 0, 0, 0, 0, 7]]], dtype=torch.int32)
    est, oor = hist_quantile(hist, 10, 0.5, layout)
    assert rank_for(0.5, 10) == 5
    assert est[0, 0].item() == pytest.approx(2.25)  # 5th value: first of the 4 in [2, 3)
    assert est[0, 1].item() == 4.0 and bool(oor[0, 1])  # it lies in the overflow bin: the range edge, flagged
    assert not bool(oor[0, 0])
    assert rank_for(0.9, 10) == 9 and rank_for(0.1, 10) == 1 and rank_for(0.9, 11) == 10


def test_staging_histogram_is_flushed_before_it_could_overflow() -> None:
    from lab.neurons.statistics import Accumulators

    acc = Accumulators(1, 2, 4, torch.device("cpu"), max_batch_tokens=16000)
    assert acc.target.dtype == torch.int16
    for _ in range(3):  # three batches of 16000 tokens, all in bin 2 of neuron 0: 48000 > int16 max
        acc.target[0, 0, 2] += 16000
        acc.after_batch(16000)
    acc.flush()
    assert acc.hist[0, 0].tolist() == [0, 0, 48000, 0, 0, 0] and int(acc.staging.abs().sum()) == 0
    with pytest.raises(ValueError):
        acc.after_batch(16001)
    assert Accumulators(1, 2, 4, torch.device("cpu"), max_batch_tokens=40000).staging is None  # too big to stage


def test_batch_plan_splits_the_samples_and_isolates_a_short_tail() -> None:
    feed = BlockFeed.from_blocks("xx", [torch.arange(8)] * 9 + [torch.arange(5)])
    plan = plan_batches(feed, 4)
    assert plan == [(0, 4), (4, 5), (5, 9), (9, 10)]  # mid = 5; the short 10th block alone
    one = BlockFeed.from_blocks("xx", [torch.arange(3)])
    assert plan_batches(one, 4) == [(0, 1)]


def test_artifact_follows_the_design_contract(recorded, loaded, tmp_path: Path) -> None:
    from safetensors import safe_open

    stats, _, _ = recorded
    stats.meta.update(model="tiny", revision="sha256:x", hook="act_fn output")
    path = tmp_path / "activation_stats.safetensors"
    stats.save(path)
    with safe_open(str(path), framework="pt") as fh:
        md = fh.metadata()
        t = {k: fh.get_tensor(k) for k in fh.keys()}
    n, L, F = len(LANGS), stats.n_layers, stats.d_ff
    for name in ("act_prob", "act_mean", "act_p10", "act_p90"):
        assert t[name].dtype == torch.float32 and tuple(t[name].shape) == (n, L, F)
    assert t["tokens"].dtype == torch.int64 and t["tokens"].tolist() == [TOKENS] * n
    assert md["languages"] == "en,fr,de,sw" and md["model"] == "tiny" and md["revision"] == "sha256:x"
    assert md["hook"] == "act_fn output"
    assert md["bos"] == str(loaded.tokenizer.bos_token_id) and md["position0_excluded"] == "true"
    assert json.loads(md["out_of_range"])["sw"] == {"p10": 0, "p90": 0}
    back = ActivationStats.load(path)
    assert torch.equal(back.count, stats.count) and torch.equal(back.above90, stats.above90)
    assert torch.equal(back.act_prob, stats.act_prob) and back.languages == LANGS and back.bins == stats.bins


def _fingerprint(feeds: list[BlockFeed]) -> dict[str, Any]:
    from lab.neurons.collect import feeds_fingerprint

    return {"feeds": feeds_fingerprint(feeds), "batch": BATCH}


def test_resume_after_an_interruption_gives_identical_statistics(loaded, mixed_corpus: Path, tmp_path: Path) -> None:
    feeds = [corpus_feed(loaded.tokenizer, mixed_corpus, lang, 400, BLOCK, 3) for lang in LANGS]
    whole = collect_stats(loaded.model, loaded.adapter, feeds, bins=128, batch_size=BATCH)

    saves: list[dict[str, Any]] = []

    def stop_after_third() -> None:
        if len(saves) == 3:
            raise StageInterrupted("test stop")

    cp = StatsCheckpoint(tmp_path / "cp", 5, _fingerprint(feeds), check_stop=stop_after_third, on_save=saves.append)
    with pytest.raises(StageInterrupted):
        collect_stats(loaded.model, loaded.adapter, feeds, bins=128, batch_size=BATCH, checkpoint=cp)
    info = json.loads((tmp_path / "cp" / "stats.json").read_text())
    assert info["language_index"] == 1 and 0 < info["next_block"] < feeds[1].n_blocks  # stopped inside fr
    assert len(list((tmp_path / "cp").glob("stats-*.safetensors"))) == 1  # older tensor files are removed

    done_tokens: list[tuple[str, int]] = []
    cp2 = StatsCheckpoint(tmp_path / "cp", 5, _fingerprint(feeds))
    resumed = collect_stats(loaded.model, loaded.adapter, feeds, bins=128, batch_size=BATCH, checkpoint=cp2,
                            progress=lambda lang, d, t: done_tokens.append((lang, d)))
    assert cp2.resumed_from is not None and done_tokens[0] == ("fr", info["tokens"])  # it did not start over
    for name, a in whole.tensors().items():
        b = resumed.tensors()[name]
        assert torch.equal(a, b) or (torch.isnan(a).all() and torch.isnan(b).all()), name


def test_a_checkpoint_of_another_run_is_ignored(loaded, mixed_corpus: Path, tmp_path: Path) -> None:
    feeds = [corpus_feed(loaded.tokenizer, mixed_corpus, lang, 128, BLOCK, 3) for lang in LANGS[:2]]
    cp = StatsCheckpoint(tmp_path, 1, {"run": "a"})
    collect_stats(loaded.model, loaded.adapter, feeds, bins=32, batch_size=BATCH, checkpoint=cp)
    assert cp.saves > 0 and StatsCheckpoint(tmp_path, 1, {"run": "a"}).load() is not None
    assert StatsCheckpoint(tmp_path, 1, {"run": "b"}).load() is None


def test_pooled_p90_and_each_languages_count_above_it_match_brute_force(recorded) -> None:
    """act_prob_90p's threshold: the P90 of all languages' tokens pooled, as the upper edge of its bin."""
    stats, rec, _ = recorded
    width = stats.hist_width.numpy().astype(np.float64)
    acts = {lang: rec.acts(lang) for lang in LANGS}
    pooled = np.concatenate([acts[lang] for lang in LANGS], axis=1)
    exact = np.stack([nearest_rank(pooled[layer], 0.9) for layer in range(pooled.shape[0])])
    tau = stats.threshold_pooled.numpy().astype(np.float64)
    assert np.isfinite(tau).all()
    gap = tau - exact
    assert (gap >= -1e-6 * width).all() and (gap < width * (1 + 1e-4) + 1e-7).all()  # τ in [P90, P90 + w)
    for i, lang in enumerate(LANGS):
        brute = (acts[lang] > stats.threshold_pooled.numpy()[:, None, :]).sum(1)
        got = stats.above_pooled[i].numpy()
        near = (np.abs(acts[lang] - tau[:, None, :]) < 1e-4 * width[:, None, :]).sum(1)  # binning rounding at the edge
        assert (np.abs(got - brute) <= near).all(), lang
        assert float((got == brute).mean()) > 0.99
    share = stats.above_pooled.double() / stats.tokens.double().view(-1, 1, 1)
    assert abs(float(share.mean()) - 0.1) < 0.02  # pooled over languages, about 10 % of tokens lie above P90


@pytest.mark.slow
def test_identical_runs_write_byte_identical_artifacts(tiny_llama_dir: Path, mixed_corpus: Path, tmp_path: Path) -> None:
    """Two identifications in two processes: same statistics, same bytes (the header order was per process)."""
    import hashlib
    import subprocess
    import sys

    script = f"""
import sys, torch
torch.set_num_threads(1)
from lab.model.loading import load_model
from lab.inputs.corpus import corpus_feed
from lab.neurons.collect import collect_stats
m = load_model({{"id": {str(tiny_llama_dir)!r}, "device": "cpu", "dtype": "float32"}})
feeds = [corpus_feed(m.tokenizer, {str(mixed_corpus)!r}, lang, 200, {BLOCK}, 1) for lang in {LANGS!r}]
stats = collect_stats(m.model, m.adapter, feeds, bins=64, batch_size={BATCH}, meta={{"model": "tiny", "seed": "1"}})
stats.save(sys.argv[1])
"""
    digests = []
    for run in ("a", "b"):
        out = tmp_path / f"{run}.safetensors"
        res = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    header = (tmp_path / "a.safetensors").read_bytes()
    n = int.from_bytes(header[:8], "little")
    keys = list(json.loads(header[8:8 + n])["__metadata__"])
    assert keys == sorted(keys) and "bos" in keys and "position0_excluded" in keys
    back = ActivationStats.load(tmp_path / "a.safetensors")
    assert back.tokens.tolist() == [200] * len(LANGS) and back.above_pooled is not None


def test_statistics_do_not_depend_on_where_the_block_boundary_falls(loaded, mixed_corpus: Path) -> None:
    """The same text shifted by a few tokens: every block still starts with the BOS, which is left out.

    Tolerance: the shift moves every token to another position and context, so act_mean moves by
    text noise even with the BOS; on this model (whose position 0 is not extreme) that is a mean
    absolute change below 10 % of the mean |act_mean| and at most 0.03 for any neuron."""
    def means(shift: int, with_bos: bool) -> torch.Tensor:
        feed = corpus_feed(loaded.tokenizer, mixed_corpus, "en", 3000, BLOCK, None, skip_tokens=shift,
                           with_bos=with_bos)
        first = next(iter(feed.open(0)))
        assert (int(first[0]) == loaded.tokenizer.bos_token_id) == with_bos
        return collect_stats(loaded.model, loaded.adapter, [feed], bins=32, batch_size=BATCH).act_mean[0]

    base = means(0, True)
    scale = float(base.abs().mean())
    for shift in (3, 7):
        diff = (means(shift, True) - base).abs()
        assert float(diff.mean()) < 0.1 * scale and float(diff.max()) < 0.03, shift
