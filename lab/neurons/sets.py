"""Neuron sets: the [[layer, index], ...] ↔ {layer: [index, ...]} forms, per-layer counts, random controls.

One home for what identification, the checks, the interventions and fine-tuning all do with a set of
neurons, so a random control is drawn the same way everywhere.
"""

from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

NeuronSets = dict[str, list[list[int]]]  # language -> [[layer, index], ...]
LayerNeurons = Mapping[int, Sequence[int]]  # layer -> neuron indices in that layer


def neurons_by_layer(pairs: Sequence[Sequence[int]]) -> dict[int, list[int]]:
    """[[layer, index], ...] (neurons.json) → {layer: [index, ...]}, sorted, duplicates and empty layers dropped."""
    out: dict[int, set[int]] = {}
    for layer, idx in pairs:
        out.setdefault(int(layer), set()).add(int(idx))
    return {k: sorted(v) for k, v in sorted(out.items()) if v}


def normalise_neurons(neurons: LayerNeurons) -> dict[int, list[int]]:
    """{layer: sorted unique indices}, empty layers dropped."""
    return {int(layer): sorted({int(i) for i in idx}) for layer, idx in sorted(neurons.items()) if len(idx)}


def as_pairs_of(by_layer: LayerNeurons) -> list[list[int]]:
    """{layer: [index, ...]} → sorted [[layer, index], ...]."""
    return [[layer, i] for layer, idx in normalise_neurons(by_layer).items() for i in idx]


def per_layer_counts(pairs: Sequence[Sequence[int]], n_layers: int) -> list[int]:
    counts = [0] * n_layers
    for layer, _ in pairs:
        counts[int(layer)] += 1
    return counts


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from the study seed and labels (stable across runs and machines)."""
    text = "/".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & (2**63 - 1)


def random_like(reference: Mapping[str, Sequence[Sequence[int]]], n_layers: int, d_ff: int, seed: int,
                salt: str = "random", *, disjoint: bool = False) -> NeuronSets:
    """For each language, random neurons with the reference set's per-layer counts (seeded per language).

    With `disjoint`, each layer's draw avoids the reference's own neurons where the layer has room
    (fine-tuning's control must not train the neurons it is compared with).
    """
    import torch

    out: NeuronSets = {}
    for lang, pairs in reference.items():
        gen = torch.Generator().manual_seed(derive_seed(seed, salt, lang))
        mine = neurons_by_layer(pairs)
        chosen: list[list[int]] = []
        for layer, c in enumerate(per_layer_counts(pairs, n_layers)):
            if not c:
                continue
            pool = list(range(d_ff))
            if disjoint:
                free = [j for j in pool if j not in set(mine.get(layer, []))]
                pool = free if len(free) >= c else pool  # more than half the layer chosen: draw from all of it
            pick = torch.randperm(len(pool), generator=gen)[:c]
            chosen.extend([layer, pool[int(i)]] for i in sorted(pick.tolist()))
        out[lang] = sorted(chosen)
    return out
