"""Fine-tune settings and data: the training budget, token blocks, the batch schedule, the English training texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from lab.core.errors import BadInput


@dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes a run; identical across conditions (the fair-comparison budget)."""

    steps: int = 60
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    lora_r: int = 8
    lora_alpha: float = 16.0
    batch_size: int = 8
    block_size: int = 128
    checkpoint_every: int = 20
    max_grad_norm: float = 1.0
    warmup_steps: int = 0

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> "TrainSettings":
        """From the study's [intervention] section; keys it lacks take the defaults above."""
        r = int(cfg.get("lora_r", cls.lora_r))
        steps = int(cfg.get("steps", cls.steps))
        s = cls(steps=steps, learning_rate=float(cfg.get("learning_rate", cls.learning_rate)),
                weight_decay=float(cfg.get("weight_decay", cls.weight_decay)), lora_r=r,
                lora_alpha=float(cfg.get("lora_alpha", 2 * r)), batch_size=int(cfg.get("batch_size", cls.batch_size)),
                block_size=int(cfg.get("block_size", cls.block_size)),
                checkpoint_every=int(cfg.get("checkpoint_every", cls.checkpoint_every)),
                max_grad_norm=float(cfg.get("max_grad_norm", cls.max_grad_norm)),
                warmup_steps=int(cfg.get("warmup_steps", max(1, steps // 10))))
        for key in ("steps", "lora_r", "batch_size", "block_size", "checkpoint_every"):
            if getattr(s, key) < 1:
                raise BadInput(f"[intervention] {key} = {getattr(s, key)}; it must be at least 1")
        if s.learning_rate <= 0 or s.weight_decay < 0:
            raise BadInput("[intervention] learning_rate must be > 0 and weight_decay >= 0; fix the study file")
        return s

    def lr_factor(self, step: int) -> float:
        """Linear warm-up, then linear decay that stays above 0 on the last step."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        return max(0.0, (self.steps - step) / max(1, self.steps - self.warmup_steps))


def make_blocks(tokenizer: Any, texts: Sequence[str], block_size: int) -> torch.Tensor:
    """Token blocks [n, block_size]: texts joined with EOS, cut into full blocks (no padding to mask)."""
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        if eos is not None:
            ids.append(int(eos))
    n = len(ids) // block_size
    if n == 0:
        raise BadInput(f"the fine-tuning text has {len(ids)} tokens, fewer than one block of {block_size}; "
                       f"give more training text or a smaller block size")
    return torch.tensor(ids[: n * block_size], dtype=torch.long).view(n, block_size)


def batch_indices(n_blocks: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The blocks of one step: a seeded permutation per epoch, so any step is known without replay."""
    out = []
    for pos in range(step * batch_size, (step + 1) * batch_size):
        epoch, k = divmod(pos, n_blocks)
        gen = torch.Generator().manual_seed((int(seed) * 1_000_003 + epoch) % (2**63))
        out.append(int(torch.randperm(n_blocks, generator=gen)[k]))
    return out

def _render_doc(task: Any, doc: Mapping[str, Any]) -> str:
    """One training document as plain text: the prompt, the delimiter, and the gold answer."""
    prompt = task.doc_to_text(doc)
    target = task.doc_to_target(doc)
    if task.OUTPUT_TYPE == "multiple_choice":
        choices = task.doc_to_choice(doc)
        answer = choices[target] if isinstance(target, int) else str(target)
    else:
        answer = target[0] if isinstance(target, list) and target else str(target)
    prompt = str(prompt) if prompt is not None else ""
    return f"{prompt}{task.config.target_delimiter}{answer}".strip() if prompt else str(answer).strip()


def english_training_texts(cfg: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(texts, task names): every [evaluate] task's English variant that has a training split.

    The same texts train every condition; evaluation splits are never used for training.
    """
    import logging

    from lm_eval.api.task import ConfigurableTask

    from lab.inputs.tasks import resolve_tasks, task_config

    langs = dict(cfg["languages"])
    probe = {"languages": {"all": sorted(set(langs["all"]) | {"en"}), "targets": ["en"], "high_resource": []},
             "evaluate": cfg["evaluate"]}
    try:
        refs = resolve_tasks(probe)
    except BadInput:
        refs = []
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    texts: list[str] = []
    used: list[str] = []
    for ref in refs:
        task = ConfigurableTask(config=task_config(ref, cfg["evaluate"].get("data_dir")))
        if not task.has_training_docs():
            continue
        docs = [_render_doc(task, doc) for doc in task.training_docs()]
        docs = [d for d in docs if d]
        if docs:
            texts.extend(docs)
            used.append(ref.name)
    if not texts:
        names = ", ".join(cfg["evaluate"]["tasks"])
        raise BadInput(f"none of the [evaluate] tasks ({names}) has an English task with a training split; "
                       f"fine-tuning trains on it — add one (training_split in its YAML, or <data_dir>/<task>/"
                       f"train.jsonl) or use [intervention] kind = \"test_time\"")
    return texts, used
