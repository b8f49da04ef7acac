"""The fine-tune training loop: one condition trained (resuming from its checkpoint), saved and verified after merging."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from lab.core import faults
from lab.core.errors import BadInput, StageFailed
from lab.model.loading import LoadedModel
from lab.neurons.finetune.adapters import (META_FILE, effective_parameters, load_condition, masked_rows_are_zero,
                                           own_rng, peft_model, release, save_adapter)
from lab.neurons.finetune.checkpoint import (checkpoints, commit_dir, read_json, restore_checkpoint, save_checkpoint,
                                             write_json)
from lab.neurons.finetune.config import TrainSettings, batch_indices, make_blocks
from lab.neurons.finetune.targets import (Condition, Targets, attention_targets, condition_named,
                                          count_adapter_changes, neuron_targets, resolve_neurons)
from lab.neurons.sets import LayerNeurons

ProgressFn = Callable[[int, int, float], None]


@dataclass
class TrainResult:
    condition: str
    adapter_dir: Optional[Path]  # peft adapter folder (None for baseline, or a run stopped early)
    steps_done: int
    total_steps: int
    finished: bool
    final_loss: Optional[float]
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0  # the checkpoint step this call started from (0: from scratch)
    neurons: Optional[dict[int, list[int]]] = None  # the neurons actually trained
    target_modules: list[str] = field(default_factory=list)
    trainable_parameters: int = 0  # adapter entries that could move
    weights_changed_outside_neurons: Optional[int] = None  # neuron conditions only; must be 0
    weights_changed_outside_target: Optional[int] = None  # any condition; must be 0
    weights_changed_inside_target: Optional[int] = None
    merged: Optional[nn.Module] = field(default=None, repr=False)  # only with keep_merged=True: a merged copy

    def to_json(self) -> dict[str, Any]:
        out = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "merged"}
        out["adapter_dir"] = str(self.adapter_dir) if self.adapter_dir else None
        out["neurons"] = None if self.neurons is None else {str(k): v for k, v in self.neurons.items()}
        return out

def _fingerprint(condition: str, targets: Targets, settings: TrainSettings, seed: int, blocks: torch.Tensor,
                 revision: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"condition": condition, "targets": targets, "settings": asdict(settings), "seed": seed,
                         "revision": revision}, sort_keys=True).encode())
    h.update(blocks.to("cpu", torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()

def train_condition(loaded: LoadedModel, neurons: Optional[LayerNeurons], condition: str,
                    data: Union[Sequence[str], torch.Tensor], cfg_intervention: Mapping[str, Any],
                    checkpoint_dir: Path, seed: int, progress: Optional[ProgressFn] = None,
                    should_stop: Optional[Callable[[], bool]] = None, *, output_dir: Optional[Path] = None,
                    keep_merged: bool = False, control: Optional[LayerNeurons] = None) -> TrainResult:
    """Train one condition (resuming from its last checkpoint), save the adapter, verify the merge.

    `neurons` is the chosen set (ft_neurons trains it; ft_random trains `control` if given — it must
    have the same per-layer counts — else draws such a set with `seed`). `data` is texts or a
    [n, block] tensor of token ids. `should_stop` is asked after each checkpoint; when it says yes
    the run returns unfinished and the next call resumes.
    The final adapter goes to `output_dir` (default checkpoint_dir/"adapter"); a finished adapter of
    the same run is reused rather than retrained.
    """
    cond = condition_named(condition)
    settings = TrainSettings.from_cfg(cfg_intervention)
    if cond.trains == "none":
        return TrainResult(cond.name, None, 0, 0, True, None)
    model = loaded.model
    blocks = data if isinstance(data, torch.Tensor) else make_blocks(loaded.tokenizer, data, settings.block_size)
    if blocks.ndim != 2 or blocks.shape[0] == 0:
        raise BadInput("fine-tuning data must be a non-empty [n, block] tensor of token ids or a list of texts")
    trained = resolve_neurons(cond, neurons, loaded.adapter.d_ff(model), seed, control)
    targets = (attention_targets(model, loaded.adapter) if trained is None
               else neuron_targets(model, loaded.adapter, trained))
    fingerprint = _fingerprint(cond.name, targets, settings, seed, blocks, str(loaded.provenance.get("revision")))
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    output_dir = Path(output_dir) if output_dir is not None else checkpoint_dir / "adapter"
    for leftover in [*checkpoint_dir.glob(".step-*.tmp-*"), *output_dir.parent.glob(f".{output_dir.name}.tmp-*")]:
        shutil.rmtree(leftover, ignore_errors=True)  # half-written folders of a killed run

    if (output_dir / META_FILE).is_file():
        meta = read_json(output_dir / META_FILE)
        if meta.get("fingerprint") == fingerprint:  # this exact run already finished
            result = _result_from_meta(meta, output_dir)
            if keep_merged:
                result.merged = load_condition(loaded, output_dir)
            if progress is not None:
                progress(result.steps_done, result.total_steps, result.final_loss or 0.0)
            return result

    with own_rng(loaded.device):
        model = peft_model(loaded, targets, settings, seed)  # on the base model itself: no copy of the weights
        try:
            result = _train(loaded, model, cond, trained, targets, blocks, settings, fingerprint, checkpoint_dir,
                            output_dir, seed, progress, should_stop)
        finally:
            release(loaded, model)
    if keep_merged and result.finished:  # opt-in (tests): a merged copy, from the saved adapter files
        result.merged = load_condition(loaded, output_dir)
    return result


def _train(loaded: LoadedModel, model: nn.Module, cond: Condition, trained: Optional[dict[int, list[int]]],
           targets: Targets, blocks: torch.Tensor, settings: TrainSettings, fingerprint: str, checkpoint_dir: Path,
           output_dir: Path, seed: int, progress: Optional[ProgressFn],
           should_stop: Optional[Callable[[], bool]]) -> TrainResult:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    param_names = [n for n, _ in named]
    opt = torch.optim.AdamW([p for _, p in named], lr=settings.learning_rate, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, settings.lr_factor)
    start, losses = restore_checkpoint(checkpoint_dir, fingerprint, model, opt, sched, param_names)
    if start == 0:
        torch.manual_seed(int(seed) + 1)  # the training RNG stream (dropout), the same for every condition
    base = dict(condition=cond.name, total_steps=settings.steps, resumed_from=start, neurons=trained,
                target_modules=sorted(targets), trainable_parameters=effective_parameters(model, targets))
    params = [p for _, p in named]
    batch_size = min(settings.batch_size, blocks.shape[0])
    model.train()
    for step in range(start, settings.steps):
        idx = batch_indices(blocks.shape[0], batch_size, step, seed)
        batch = blocks[idx].to(loaded.device)
        loss = model(input_ids=batch, labels=batch).loss
        if not math.isfinite(float(loss.detach())):  # never step on a NaN: it would spread into every weight
            raise StageFailed(f"non-finite training loss in {cond.name} ({checkpoint_dir.name}), step {step + 1}, "
                              f"batch of blocks {idx}; lower [intervention] learning_rate or use dtype = \"float32\"")
        loss.backward()
        if settings.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        done = step + 1
        if progress is not None:
            progress(done, settings.steps, losses[-1])
        stopping = should_stop is not None and should_stop()  # a stop checkpoints now: no step is lost
        if (done % settings.checkpoint_every == 0 or stopping) and done < settings.steps:
            if not masked_rows_are_zero(model, targets):
                raise RuntimeError("an unselected neuron's adapter row moved during training; the mask failed")
            with faults.checkpoint_save():  # tests only: kills around the save
                save_checkpoint(checkpoint_dir, done, model, opt, sched, param_names, losses, fingerprint)
            if stopping or (should_stop is not None and should_stop()):
                return TrainResult(adapter_dir=None, steps_done=done, finished=False, final_loss=losses[-1],
                                   losses=list(losses), **base)
    if not masked_rows_are_zero(model, targets):
        raise RuntimeError("an unselected neuron's adapter row moved during training; the mask failed")

    tmp = output_dir.parent / f".{output_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_adapter(model, tmp)
    # what merging would change, counted on the adapter's deltas (one module at a time, no merged copy)
    counts = count_adapter_changes(model.get_base_model(), model.active_adapter, targets)
    if counts.outside:
        raise RuntimeError(f"{cond.name}: {counts.outside} weight entries changed outside the trained "
                           f"{'neurons' if trained else 'modules'} (in {', '.join(counts.outside_tensors[:3])})")
    result = TrainResult(adapter_dir=output_dir, steps_done=settings.steps, finished=True,
                         final_loss=losses[-1] if losses else None, losses=list(losses),
                         weights_changed_outside_neurons=counts.outside if trained is not None else None,
                         weights_changed_outside_target=counts.outside, weights_changed_inside_target=counts.inside,
                         **base)
    write_json(tmp / META_FILE, {"fingerprint": fingerprint, "settings": asdict(settings), "seed": seed,
                                  "targets": targets, **result.to_json(), "adapter_dir": None})
    commit_dir(tmp, output_dir)
    for _, d in checkpoints(checkpoint_dir):  # the finished adapter is the resume point now
        shutil.rmtree(d, ignore_errors=True)
    return result


def _result_from_meta(meta: Mapping[str, Any], adapter_dir: Path) -> TrainResult:
    values = {f.name: meta[f.name] for f in fields(TrainResult) if f.name in meta and f.name != "merged"}
    if values.get("neurons") is not None:
        values["neurons"] = {int(k): list(v) for k, v in values["neurons"].items()}
    values["adapter_dir"] = adapter_dir
    values["resumed_from"] = int(meta.get("steps_done", 0))
    return TrainResult(**values)
