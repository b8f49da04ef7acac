"""Numeric and hook guards of a statistics pass: every layer's hook counted every token, nothing non-finite."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from lab.core.errors import BadInput, StageFailed
from lab.model.adapters import ArchitectureAdapter


def check_seen(seen: Sequence[int], before: Sequence[int], fed: int, adapter: ArchitectureAdapter, where: str) -> None:
    """Every layer's hook must have counted exactly the `fed` tokens of the last forward pass."""
    got = [a - b for a, b in zip(seen, before)]
    if all(g == 0 for g in got):
        raise BadInput(f"the model never called its activation module ({adapter.name} adapter, {adapter.hook}) in a "
                       f"forward pass, so no statistics can be collected: its MLP probably uses a fused kernel that "
                       f"applies act_fn internally; load it without fused MLP kernels")
    bad = [(layer, g) for layer, g in enumerate(got) if g != fed]
    if bad:
        layer, g = bad[0]
        raise StageFailed(f"{where}: layer {layer}'s hook counted {g} tokens but {fed} were fed (the activation "
                          f"module is skipped or called more than once per forward pass); statistics would be wrong")


def check_finite(out: Any, acc_sum: torch.Tensor, where: str) -> None:
    """NaN or infinite activations (the running sums) or final hidden states stop the pass, named."""
    hidden = getattr(out, "last_hidden_state", None)
    if bool(torch.isfinite(acc_sum).all()) and (hidden is None or bool(torch.isfinite(hidden).all())):
        return
    bad = (~torch.isfinite(acc_sum)).flatten(1).any(1).nonzero().flatten().tolist()
    what = f"activations at layer {bad[0]}" if bad else "hidden states"
    raise StageFailed(f"{where}: non-finite {what} (NaN or inf); the model overflows in this dtype or its weights "
                      f"are broken; load it in float32 or bfloat16 and check the weights")


DEFER_FINITE_CHECK: Optional[bool] = None  # None: deferred on accelerators (no host sync per batch), immediate on the CPU

class FiniteGuard:
    """``check_finite`` for every batch of the pass, without a host synchronisation per batch when deferred.

    Deferred, each batch's verdict stays on the device: the number of the first batch with non-finite
    sums or hidden states. It is read (one sync) before every checkpoint and at the end of each
    language, so nothing non-finite is ever saved, and the error names that first batch as the
    immediate check does (a NaN stays in the running sums, so its layer is still found)."""

    def __init__(self, device: torch.device, defer: Optional[bool] = None) -> None:
        self.defer = device.type != "cpu" if defer is None else defer
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        self.where: list[str] = []

    def batch(self, out: Any, acc_sum: torch.Tensor, where: str) -> None:
        if not self.defer:
            check_finite(out, acc_sum, where)
            return
        ok = torch.isfinite(acc_sum).all()
        hidden = getattr(out, "last_hidden_state", None)
        if hidden is not None:
            ok = ok & torch.isfinite(hidden).all()
        mark = torch.full_like(self.first_bad, len(self.where))
        self.first_bad = torch.where(~ok & (self.first_bad < 0), mark, self.first_bad)
        self.where.append(where)

    def check(self, acc_sum: torch.Tensor) -> None:
        if not self.defer or not self.where:
            return
        i = int(self.first_bad)  # the one host sync
        if i >= 0:
            bad = (~torch.isfinite(acc_sum)).flatten(1).any(1).nonzero().flatten().tolist()
            what = f"activations at layer {bad[0]}" if bad else "hidden states"
            raise StageFailed(f"{self.where[i]}: non-finite {what} (NaN or inf); the model overflows in this dtype or "
                              f"its weights are broken; load it in float32 or bfloat16 and check the weights")
        self.where.clear()
        self.first_bad.fill_(-1)
