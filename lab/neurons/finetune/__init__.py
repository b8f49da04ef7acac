"""Neuron-only fine-tuning with peft LoRA, against random neurons and a standard attention LoRA (the package).

Why LoRA rather than gradient masks on the full weights: AdamW's decoupled weight decay moves every
entry it touches, masked or not (FIELD-NOTES, "Training only some neurons"). Here the LoRA adapter
sits on the projections whose output rows *are* the neurons (``adapter.neuron_in``); the ``lora_B``
rows of unselected neurons start at exactly 0 and their gradients are masked to 0, so their AdamW
step is 0 and decay of 0 is 0. After merging, only the chosen neurons' rows differ from the base
model — and that is counted on every run (`weights_changed_outside_neurons`), not assumed.

Conditions (same data, steps, seed, rank and learning rate for each): ``baseline`` (untouched),
``ft_neurons``, ``ft_random`` (random neurons, same per-layer counts) and ``ft_lora_attn`` (standard
LoRA on the attention projections). Checkpoints are safetensors + JSON only and resume bit-exactly
on CPU. See docs/finetune.md.

Modules: ``targets`` (conditions, what each may change, counting changes after a merge), ``config``
(settings, token blocks, the English training texts), ``adapters`` (the masked peft adapter, saving
and loading it merged), ``checkpoint`` (safetensors + JSON state), ``train`` (the training loop).
The intervene stage (lab/stages/intervene.py) composes them.
"""

from lab.neurons.finetune.adapters import (ADAPTER_FILES, META_FILE, adapter_targets, load_condition,
                                           masked_rows_are_zero, peft_model)
from lab.neurons.finetune.checkpoint import flatten_state, unflatten_state
from lab.neurons.finetune.config import TrainSettings, batch_indices, english_training_texts, make_blocks
from lab.neurons.finetune.targets import (ATTENTION_PROJECTIONS, CONDITIONS, ChangeCount, Condition, Targets,
                                          attention_targets, chosen_neurons, condition_named, count_changes,
                                          finetune_conditions, neuron_targets, resolve_neurons)
from lab.neurons.finetune.train import TrainResult, train_condition
from lab.neurons.sets import normalise_neurons, random_like

__all__ = ["ADAPTER_FILES", "ATTENTION_PROJECTIONS", "CONDITIONS", "ChangeCount", "Condition", "META_FILE", "Targets",
           "TrainResult", "TrainSettings", "adapter_targets", "attention_targets", "batch_indices", "chosen_neurons",
           "condition_named", "count_changes", "english_training_texts", "finetune_conditions", "flatten_state",
           "load_condition", "make_blocks", "masked_rows_are_zero", "neuron_targets", "normalise_neurons",
           "peft_model", "random_like", "resolve_neurons", "train_condition", "unflatten_state"]
