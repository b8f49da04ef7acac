"""Batches of a feed: the batch plan (whole feed or one shard's block range), taking blocks, the forward pass."""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import nn

from lab.inputs.corpus import BlockFeed


def forward_layers(model: nn.Module, ids: torch.Tensor) -> Any:
    """The decoder stack without the LM head: the hooks need the layers, not the logits."""
    base = getattr(model, "base_model", model)
    return base(input_ids=ids, use_cache=False)


def plan_batches(feed: BlockFeed, batch_size: int) -> list[tuple[int, int]]:
    """Block ranges [start, end) of each batch: the threshold sample [0, n//2), then the score sample.

    Batches never cross the sample boundary and a short last block is alone, so a batch is a
    rectangle of real tokens and the plan depends only on the block count (resume replays it).
    """
    n, mid = feed.n_blocks, feed.n_blocks // 2
    plan: list[tuple[int, int]] = []
    for a, b in ((0, mid), (mid, n)):
        full_end = b - 1 if (b == n and feed.last_len != feed.block_size) else b
        plan.extend((s, min(s + batch_size, full_end)) for s in range(a, full_end, batch_size))
        if full_end < b:
            plan.append((full_end, b))
    return plan


def plan_range(feed: BlockFeed, start: int, end: int, batch_size: int) -> list[tuple[int, int]]:
    """Block ranges [s, e) of the batches of one shard's blocks [start, end): batches of `batch_size`, a
    short last block alone. No threshold/score split (a sharded pass collects no published samples)."""
    full_end = end - 1 if (end == feed.n_blocks and feed.last_len != feed.block_size and end > start) else end
    plan = [(s, min(s + batch_size, full_end)) for s in range(start, full_end, batch_size)]
    if full_end < end:
        plan.append((full_end, end))
    return plan


def range_tokens(feed: BlockFeed, start: int, end: int) -> int:
    """Tokens the statistics count in blocks [start, end) (each block's first `skip` positions left out)."""
    if end <= start:
        return 0
    full = end - start
    last_short = end == feed.n_blocks and feed.last_len != feed.block_size
    if last_short:
        return (full - 1) * (feed.block_size - feed.skip) + (feed.last_len - feed.skip)
    return full * (feed.block_size - feed.skip)


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """On CUDA through pinned memory, asynchronously: a pageable copy would make the host wait for the GPU."""
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)

def take(it: Iterator[torch.Tensor], n: int, lang: str) -> list[torch.Tensor]:
    out = []
    for _ in range(n):
        b = next(it, None)
        if b is None:
            raise RuntimeError(f"the {lang} feed ended before its planned blocks; the corpus changed during the run")
        out.append(b)
    return out
