"""The statistics pass refuses what would make its numbers wrong: fused MLPs, miscounted tokens, non-finite values."""

from __future__ import annotations

from pathlib import Path
from types import MethodType

import pytest
import torch

from lab.core.errors import BadInput, StageFailed
from lab.inputs.corpus import BlockFeed
from lab.model.loading import load_model
from lab.neurons.collect import StatsCheckpoint, collect_stats
from test_methods import BOS, TOY, Toy, planted


def test_a_fused_mlp_that_never_calls_act_fn_is_refused_before_any_statistics(tiny_llama_dir: Path,
                                                                              tmp_path: Path) -> None:
    loaded = load_model({"id": str(tiny_llama_dir), "device": "cpu", "dtype": "float32"})
    for layer in loaded.model.model.layers:  # what a fused kernel does: the activation inside the MLP's own code
        def fused(self, x: torch.Tensor) -> torch.Tensor:
            return self.down_proj(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))
        layer.mlp.forward = MethodType(fused, layer.mlp)
    feed = BlockFeed.from_blocks("en", [torch.arange(5, 20)] * 4, bos=loaded.tokenizer.bos_token_id)
    cp = StatsCheckpoint(tmp_path / "cp", 1, {"run": "fused"})
    with pytest.raises(BadInput, match="never called its activation module.*fused kernel"):
        collect_stats(loaded.model, loaded.adapter, [feed], bins=16, batch_size=2, checkpoint=cp)
    assert not (tmp_path / "cp").exists() or not any((tmp_path / "cp").iterdir())  # nothing stored


def test_a_hook_that_counts_more_tokens_than_were_fed_stops_the_pass() -> None:
    model, feeds = planted()
    plain = model.forward

    def twice(self, input_ids, use_cache=False, **kw):  # the activation module runs twice per forward pass
        self.layers[0].act(self.table[input_ids])
        return plain(input_ids, use_cache)
    model.forward = MethodType(twice, model)
    with pytest.raises(StageFailed, match="aa calibration block: layer 0's hook counted 64 tokens but 32 were fed"):
        collect_stats(model, TOY, feeds, bins=16, batch_size=8)


def test_non_finite_activations_name_the_language_and_the_batch() -> None:
    model, feeds = planted()
    model.table = torch.cat([model.table, torch.full((1, model.table.shape[1]), float("nan"))])
    blocks = [b[1:].clone() for b in feeds[1].open(0)]  # bb's text blocks, without their BOS
    blocks[10][5] = model.table.shape[0] - 1  # the NaN token, in one block of bb only (not its calibration block)
    feeds[1] = BlockFeed.from_blocks("bb", blocks, bos=BOS)
    with pytest.raises(StageFailed, match=r"bb batch of blocks 8-15: non-finite activations at layer 0"):
        collect_stats(model, TOY, feeds, bins=16, batch_size=8)


def test_the_toy_model_passes_every_guard_untouched() -> None:
    """The same pass on the unmodified model: the guards are not what fails above."""
    model, feeds = planted()
    stats = collect_stats(model, TOY, feeds, bins=16, batch_size=8)
    assert isinstance(model, Toy) and stats.tokens.tolist() == [feeds[0].n_tokens] * 3
