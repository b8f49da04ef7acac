"""act_prob_90p (pooled P90) against act_prob_90p_published on planted neurons, through the real statistics pass."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from lab.inputs.corpus import BlockFeed
from lab.model.adapters import ArchitectureAdapter
from lab.neurons.collect import collect_stats
from lab.neurons.identify import METHOD_VERSIONS, identify, neurons_document, pooled_margins, stored_method

TOY = ArchitectureAdapter("toy", ("toy",), "layers", "act", ("up",), "down", False, "toy act output")
LANGS = ["aa", "bb", "cc"]
F = 32  # neurons in the one layer
VOCAB = 200  # token ids per language; language k owns ids [k·VOCAB, (k+1)·VOCAB)
BLOCK, N_BLOCKS = 33, 40  # BOS + 32 text tokens per block
BOS = 3 * VOCAB  # its own id
SPECIFIC = {"aa": 3, "bb": 7, "cc": 11}  # planted: high on 40 % of that language's tokens only
BURSTY = (20, 21, 22)  # planted: in every language, quiet in the first half of the blocks, loud on 40 % in the second


class ToyLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Identity()  # the hook point
        self.up = nn.Linear(1, F, bias=False)  # only for d_ff
        self.down = nn.Linear(F, 1, bias=False)


class Toy(nn.Module):
    """Each token id has a fixed activation vector; `forward` passes it through the layer's act module."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table  # [ids, F]
        self.layers = nn.ModuleList([ToyLayer()])

    def forward(self, input_ids: torch.Tensor, use_cache: bool = False, **_: Any) -> Any:
        out = self.layers[0].act(self.table[input_ids])
        return SimpleNamespace(last_hidden_state=out)


def planted() -> tuple[Toy, list[BlockFeed]]:
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(3 * VOCAB + 1, F, generator=gen)  # every neuron: N(0, 1) noise on every token
    table[BOS] = 50.0  # a BOS with extreme activations, which the statistics must leave out
    feeds = []
    for k, lang in enumerate(LANGS):
        ids = torch.arange(k * VOCAB, (k + 1) * VOCAB)
        quiet, loud = ids[:100], ids[100:]  # the first half of the blocks draws from `quiet`, the second from `loud`
        table[torch.cat([quiet[:40], loud[:40]]), SPECIFIC[lang]] += 4.0  # 40 % of the language's tokens, both halves
        for j in BURSTY:
            table[quiet, j] = -1.0 + 0.01 * torch.randn(100, generator=gen)
            table[loud[:40], j] = 6.0
        blocks = []
        for b in range(N_BLOCKS):
            pool = quiet if b < N_BLOCKS // 2 else loud
            blocks.append(pool[torch.randint(0, 100, (BLOCK - 1,), generator=gen)])
        feeds.append(BlockFeed.from_blocks(lang, blocks, bos=BOS))
    return Toy(table), feeds


@pytest.fixture(scope="module")
def stats():
    model, feeds = planted()
    return collect_stats(model, TOY, feeds, bins=256, batch_size=8)


def test_the_bos_position_is_left_out_of_every_statistic(stats) -> None:
    assert stats.tokens.tolist() == [N_BLOCKS * (BLOCK - 1)] * 3
    assert float(stats.act_mean.max()) < 10  # a BOS activation of 50 in any mean would show
    assert stats.meta["bos"] == str(BOS) and stats.meta["position0_excluded"] == "true"


def test_corrected_method_finds_the_planted_language_neurons(stats) -> None:
    sets, details = identify(stats, "act_prob_90p", {"top_m": 1 / F}, seed=0)  # one neuron per language
    assert {lang: sets[lang] for lang in LANGS} == {lang: [[0, SPECIFIC[lang]]] for lang in LANGS}
    assert details["method_version"] == 2 and details["min_margin"] == 0.05
    share, margin = pooled_margins(stats)
    for k, lang in enumerate(LANGS):
        # the pooled top 10 % of tokens are all this language's (a third of all tokens): ~30 % of its own
        assert float(share[k, 0, SPECIFIC[lang]]) == pytest.approx(0.3, abs=0.05)
        for j in BURSTY:  # loud in every language alike: no margin anywhere
            assert abs(float(margin[k, 0, j])) < 0.05
    wide, _ = identify(stats, "act_prob_90p", {"top_m": 0.5}, seed=0)  # room for 16: only clear margins get in
    for lang in LANGS:
        assert [0, SPECIFIC[lang]] in wide[lang]
        assert not any([0, j] in wide[lang] for j in BURSTY)


def test_published_method_prefers_the_bursty_neurons(stats) -> None:
    sets, details = identify(stats, "act_prob_90p_published", {"top_m": 3 / F}, seed=0)  # three per language
    assert details["method_version"] == 1
    for k, lang in enumerate(LANGS):
        assert sets[lang] == [[0, j] for j in BURSTY]  # its own P90 in its own language: the bursty ones win
        assert float(stats.score_90p[k, 0, SPECIFIC[lang]]) == pytest.approx(0.1, abs=0.06)  # ~10 % by construction
        assert all(float(stats.score_90p[k, 0, j]) > 0.3 for j in BURSTY)


def test_a_stored_unversioned_act_prob_90p_means_the_published_method(stats) -> None:
    old = {"method": "act_prob_90p", "params": {"top_m": 0.1, "m": 3}, "languages": {}}
    assert stored_method(old) == "act_prob_90p_published"
    sets, details = identify(stats, "act_prob_90p", {"top_m": 0.1}, seed=0)
    new = neurons_document("act_prob_90p", {"top_m": 0.1}, sets, **details)
    assert new["params"]["method_version"] == METHOD_VERSIONS["act_prob_90p"] == 2
    assert stored_method(new) == "act_prob_90p" and stored_method({"method": "lape", "params": {}}) == "lape"
