"""Bounded statistics memory: the state fits 1 GiB at Llama-3.1-8B's shape, and the neurons an intervention can
use get exact P10/P90 (checked against every stored activation) even when the histograms are coarse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lab.inputs.corpus import corpus_feed
from lab.model.loading import load_model
from lab.neurons.activations import ActivationStats
from lab.neurons.collect import StatsCheckpoint, collect_stats, refine_quantiles
from lab.neurons.identify import identify, params_for
from lab.neurons.sets import random_like
from lab.neurons.statistics import STATE_BUDGET, fit_bins, state_bytes
from test_activations import LANGS, Recorder, mixed_corpus, nearest_rank  # noqa: F401 (fixture)

GIB = 1 << 30


def test_state_at_llama_8b_shape_fits_one_gib() -> None:
    """32 layers × 14,336 neurons, 6 languages: the bins are fitted so that the state is at most 1 GiB."""
    bins = fit_bins(32, 14336, 6, 2048)
    assert 32 <= bins < 2048
    assert state_bytes(32, 14336, 6, bins) <= GIB == STATE_BUDGET
    assert state_bytes(32, 14336, 6, bins + 1) > GIB  # the most that fits
    assert state_bytes(32, 14336, 6, 2048) > 20 * GIB  # what keeping 2048 bins per language would cost
    # the demo's shape keeps the study's 2048 bins: its statistics and neuron sets do not change
    assert fit_bins(4, 512, 6, 2048) == 2048 and state_bytes(4, 512, 6, 2048) < 120e6
    # on a GPU there is no staging copy, so a little more fits
    assert fit_bins(32, 14336, 6, 2048, staging=False) >= bins


@pytest.fixture(scope="module")
def loaded(tiny_llama_dir: Path):
    torch.set_num_threads(1)
    return load_model({"id": str(tiny_llama_dir), "device": "cpu", "dtype": "float32"})


def test_coarse_bins_and_exact_quantiles_for_the_intervention_neurons(loaded, mixed_corpus: Path,
                                                                      tmp_path: Path) -> None:
    """A budget that leaves 16 bins: the state and the checkpoint stay under it, the neuron sets are the
    same as with 256 bins (LAPE reads exact counts), and the target languages' identified and control
    neurons get P10/P90 equal to the nearest-rank values of every stored activation; the others keep
    their histogram estimates within quantile_bound."""
    n_layers, d_ff = loaded.adapter.n_layers(loaded.model), loaded.adapter.d_ff(loaded.model)
    budget = state_bytes(n_layers, d_ff, len(LANGS), 16)
    feeds = [corpus_feed(loaded.tokenizer, mixed_corpus, lang, 300, 32, 0) for lang in LANGS]
    rec = Recorder(loaded.adapter.act_modules(loaded.model), skip=1)
    try:
        cp = StatsCheckpoint(tmp_path / "cp", 4, {"run": "bounded"})
        stats = collect_stats(loaded.model, loaded.adapter, feeds, bins=256, batch_size=4, progress=rec.progress,
                              checkpoint=cp, budget=budget, keep_hists=True)
    finally:
        rec.close()
    assert stats.bins == 16 and stats.state_bytes <= budget
    files = list((tmp_path / "cp").glob("stats-*.safetensors"))
    assert len(files) == 1 and files[0].stat().st_size <= budget  # the checkpoint is bounded too
    fine = collect_stats(loaded.model, loaded.adapter, feeds, bins=256, batch_size=4)
    assert fine.bins == 256 and torch.equal(fine.count, stats.count)
    params = params_for("lape", {"top_rate": 0.1, "filter_rate": 0.95, "activation_bar_ratio": 0.95})
    sets, _ = identify(stats, "lape", params, 0)
    assert sets == identify(fine, "lape", params, 0)[0]
    control = random_like(sets, n_layers, d_ff, 0)
    targets = [lang for lang in LANGS if sets[lang]][:2]
    assert len(targets) == 2
    chosen = {lang: sets[lang] + control[lang] for lang in targets}
    done = refine_quantiles(loaded.model, loaded.adapter, [f for f in feeds if f.lang in targets], stats, chosen,
                            batch_size=4)
    assert stats.hists is None  # dropped before the second pass
    assert done == {lang: len({tuple(p) for p in chosen[lang]}) for lang in targets}
    for i, lang in enumerate(LANGS):
        acts = rec.acts(lang).astype(np.float64)  # [L, tokens, F]
        np.testing.assert_allclose(stats.act_mean[i].numpy(), acts.mean(1), rtol=1e-5, atol=1e-7)
        exact = {q: np.stack([nearest_rank(acts[layer], q) for layer in range(n_layers)]) for q in (0.1, 0.9)}
        bound = stats.quantile_bound[i].numpy().astype(np.float64)
        mine = {tuple(p) for p in chosen.get(lang, [])}
        for q, est in ((0.1, stats.p10[i].numpy()), (0.9, stats.p90[i].numpy())):
            for layer, j in mine:  # exact: the very activation value
                assert est[layer, j] == exact[q][layer, j] and bound[layer, j] == 0, (lang, q, layer, j)
            err = np.abs(est.astype(np.float64) - exact[q])
            assert (err <= bound * (1 + 1e-4) + 1e-7).all(), (lang, q)
        if not mine:
            assert (bound > 0).all()
    # the artifact carries the bound and what was made exact; reading it back gives the same values
    path = tmp_path / "a.safetensors"
    stats.save(path)
    back = ActivationStats.load(path)
    assert torch.equal(back.p90, stats.p90) and torch.equal(back.quantile_bound, stats.quantile_bound)
    assert json.loads(back.meta["exact_quantiles"]) == done


def test_a_run_resumed_after_the_pass_skips_it_and_refines_the_same(loaded, mixed_corpus: Path,
                                                                     tmp_path: Path) -> None:
    """The pass saves a final checkpoint; a restart (say, stopped during refine_quantiles) loads it whole."""
    feeds = [corpus_feed(loaded.tokenizer, mixed_corpus, lang, 200, 32, 0) for lang in LANGS]
    budget = state_bytes(2, 64, len(LANGS), 32)
    first = collect_stats(loaded.model, loaded.adapter, feeds, bins=256, batch_size=4, budget=budget,
                          checkpoint=StatsCheckpoint(tmp_path, 100, {"run": "r"}), keep_hists=True)
    fed: list[str] = []
    again = collect_stats(loaded.model, loaded.adapter, feeds, bins=256, batch_size=4, budget=budget,
                          checkpoint=StatsCheckpoint(tmp_path, 100, {"run": "r"}), keep_hists=True,
                          progress=lambda lang, done, total: fed.append(lang))
    assert fed == []  # nothing replayed
    assert torch.equal(first.hists, again.hists) and torch.equal(first.p90, again.p90)
    neurons = {"de": [[0, 1], [1, 5]]}
    a = refine_quantiles(loaded.model, loaded.adapter, feeds, first, neurons, batch_size=4)
    b = refine_quantiles(loaded.model, loaded.adapter, feeds, again, neurons, batch_size=2, budget=24)
    assert a == b == {"de": 2} and torch.equal(first.p90, again.p90) and torch.equal(first.p10, again.p10)


def test_the_deferred_finite_check_names_the_same_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU the check reads the device once per checkpoint and language, not per batch; it still names
    the first non-finite batch and its layer (run here on the CPU with deferral forced)."""
    import lab.neurons.collect as collect
    from lab.core.errors import StageFailed
    from lab.inputs.corpus import BlockFeed
    from test_methods import BOS, TOY, planted

    monkeypatch.setattr(collect, "DEFER_FINITE_CHECK", True)
    model, feeds = planted()
    model.table = torch.cat([model.table, torch.full((1, model.table.shape[1]), float("nan"))])
    blocks = [b[1:].clone() for b in feeds[1].open(0)]
    blocks[10][5] = model.table.shape[0] - 1
    feeds[1] = BlockFeed.from_blocks("bb", blocks, bos=BOS)
    with pytest.raises(StageFailed, match=r"bb batch of blocks 8-15: non-finite activations at layer 0"):
        collect_stats(model, TOY, feeds, bins=16, batch_size=8)
    model2, feeds2 = planted()
    deferred = collect_stats(model2, TOY, feeds2, bins=16, batch_size=8)
    monkeypatch.setattr(collect, "DEFER_FINITE_CHECK", False)
    assert torch.equal(deferred.count, collect_stats(model2, TOY, feeds2, bins=16, batch_size=8).count)
