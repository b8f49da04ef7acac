"""Stopping a stage within one forward pass of SIGTERM (issue 17: Slurm kills a job `KillWait`, 30 s by
default, after its SIGTERM).

The worker's SIGTERM handler only sets a flag (`ctx.request_stop()`); stages look at it right after
each checkpoint (`ctx.check_stop()`). Where the work between two checkpoints can be long — one lm-eval
chunk, one perplexity-change pass, one (language, condition) of the generation probe, the fine-tune
steps between two step checkpoints — `stop_at_next_forward` also polls the flag at every forward pass
of the model (a forward pre-hook on its input embeddings, which every forward and every generation
step calls). A stop request first gets GRACE_SECONDS to reach the stage's next checkpoint, where
`check_stop` ends it with nothing lost; the first forward pass after that ends the stage with
StageInterrupted. Nothing is written then: the work since the last checkpoint is dropped and the next
run redoes it from that checkpoint, exactly as after a kill, so resumed results equal an
uninterrupted run's. SIGTERM → exit is thus at most GRACE_SECONDS + one forward pass (+ a checkpoint
write begun inside the grace, + process exit). The statistics passes (identify, reproduce's halves)
do not need it: lab.neurons.collect polls `ctx.stop_requested` between batches and saves a
checkpoint at the stop.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator, Optional, Union

from lab.core.errors import StageInterrupted

GRACE_SECONDS = 2.0  # a stop request's time to reach the next checkpoint before the work since the last is dropped


def _hook_module(model: Any) -> Any:
    """The module every forward pass calls through __call__: the input embeddings (a peft wrapper or
    a causal LM calls its inner model's forward directly, which would skip a hook on the outer one)."""
    get = getattr(model, "get_input_embeddings", None)
    if callable(get):
        try:
            emb = get()
        except (NotImplementedError, AttributeError):
            emb = None
        if emb is not None and hasattr(emb, "register_forward_pre_hook"):
            return emb
    return model


@contextlib.contextmanager
def stop_at_next_forward(ctx: Any, model: Any, where: Union[str, Callable[[], str]],
                         grace: float = GRACE_SECONDS) -> Iterator[None]:
    """While inside: the first forward pass of `model` that starts `grace` seconds or more after it
    first saw a stop request raises StageInterrupted, naming `where` (a text, or a function giving the
    current place). `ctx` is the StageContext."""
    if model is None:
        yield
        return
    module = _hook_module(model)
    seen: list[Optional[float]] = [None]

    def hook(_module: Any, _args: Any) -> None:
        if not ctx.stop_requested:
            return
        now = time.monotonic()
        if seen[0] is None:
            seen[0] = now
        if now - seen[0] >= grace:
            place = where() if callable(where) else where
            raise StageInterrupted(f"stage {ctx.stage} stopped on request during {place}, at the first forward "
                                   f"pass {grace:g} s after the request; it resumes from its last checkpoint")

    handle = module.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()
