"""Hub datasets as corpus sources: the ``hf:DATASET[:CONFIG][@SPLIT]`` spec and streaming its documents.

Why a module of its own: the corpus feed (lab.inputs.corpus) reads local files and hub datasets the
same way; the hub part is the only one that talks to ``datasets`` and the network, and says so
in one line when it cannot (offline).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterator, Optional

from lab.core.errors import BadInput

HF_PREFIX = "hf:"
HF_SHUFFLE_BUFFER = 10_000
_HF_SPEC = re.compile(r"^(?P<name>[^:@]+)(?::(?P<config>[^@]+))?(?:@(?P<split>.+))?$")


@dataclass(frozen=True)
class HubSpec:
    """A hub dataset: ``hf:DATASET[:CONFIG][@SPLIT]`` resolved for one language."""

    name: str
    config: Optional[str]
    split: str = "train"
    field: str = "text"


def parse_hub_spec(spec: str, lang: str) -> HubSpec:
    """``hf:DATASET[:CONFIG][@SPLIT]`` with ``{lang}`` placeholders → HubSpec for `lang`."""
    body = spec[len(HF_PREFIX):] if spec.startswith(HF_PREFIX) else spec
    m = _HF_SPEC.match(body.strip())
    if not m or not m.group("name").strip():
        raise BadInput(f"corpus path {spec!r} is not a hub dataset spec; write hf:DATASET[:CONFIG][@SPLIT], "
                       f"e.g. hf:wikimedia/wikipedia:20231101.{{lang}}")
    name = m.group("name").strip().replace("{lang}", lang)
    config = m.group("config")
    config = config.strip().replace("{lang}", lang) if config else None
    if config is None and "{lang}" not in body:
        config = lang
    return HubSpec(name=name, config=config, split=(m.group("split") or "train").strip())


def hub_documents(hub: HubSpec, lang: str, seed: Optional[int]) -> Iterator[str]:
    """A hub dataset's non-empty documents for `lang`, streamed (shuffled with a buffer when `seed` is set)."""
    where = f"hub dataset {hub.name}" + (f" (config {hub.config})" if hub.config else "") + f" split {hub.split}"
    hint = ("the hub is offline here (HF_DATASETS_OFFLINE / HF_HUB_OFFLINE)"
            if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
            else "check the name, config and your network")
    fix = (f"save the text as {lang}.txt in a local corpus folder and point [corpus] path at it, "
           f"or run where the hub is reachable")
    try:
        import datasets

        ds = datasets.load_dataset(hub.name, hub.config, split=hub.split, streaming=True)
        if seed is not None:
            ds = ds.shuffle(seed=seed, buffer_size=HF_SHUFFLE_BUFFER)
        rows = iter(ds)
        first = next(rows, None)
    except BadInput:
        raise
    except Exception as exc:  # any failure to reach or open the dataset is the user's to fix
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"cannot stream {where} for {lang}: {msg}; {hint}; {fix}") from None
    if first is None:
        return
    for row in ([first], rows):
        for item in row:
            text = item.get(hub.field) if isinstance(item, dict) else None
            if not isinstance(text, str):
                raise BadInput(f"{where} has no string column {hub.field!r}; use a text dataset")
            if text.strip():
                yield text
