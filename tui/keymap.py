"""User keymaps: <home>/keymap.toml and $NEURON_PILOT_KEYMAP remap bindings by id.

keymap.toml holds binding ids and keys, either flat with quoted ids (``"study.run" = "f5"``) or as
tables (``[study]`` then ``run = "f5"``). The environment variable takes ``id=key`` pairs separated
by ``;`` and wins over the file. Unknown ids are refused so a typo does not silently do nothing.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from lab.core.errors import BadInput
from tui.bindings import all_binding_ids

ENV_VAR = "NEURON_PILOT_KEYMAP"
FILE_NAME = "keymap.toml"


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _check(pairs: dict[str, Any], source: str) -> dict[str, str]:
    known = set(all_binding_ids())
    out: dict[str, str] = {}
    for binding_id, key in pairs.items():
        if binding_id not in known:
            raise BadInput(f"{source}: unknown binding id {binding_id!r}; use one of the ids in docs/tui.md "
                           f"(e.g. study.run, app.quit)")
        if not isinstance(key, str) or not key.strip():
            raise BadInput(f"{source}: binding {binding_id!r} needs a key name like \"f5\" or \"ctrl+r\"")
        out[binding_id] = key.strip()
    return out


def parse_env_keymap(text: str) -> dict[str, str]:
    pairs: dict[str, Any] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        binding_id, sep, key = part.partition("=")
        if not sep:
            raise BadInput(f"${ENV_VAR}: {part.strip()!r} is not id=key; write e.g. study.run=f5;app.quit=ctrl+q")
        pairs[binding_id.strip()] = key
    return _check(pairs, f"${ENV_VAR}")


def load_keymap(home: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The merged keymap (file, then environment); empty when neither is set."""
    environ = os.environ if environ is None else environ
    keymap: dict[str, str] = {}
    path = Path(home) / FILE_NAME
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"{path} is not valid TOML ({exc}); fix it or delete it") from None
        keymap.update(_check(_flatten(data), str(path)))
    if environ.get(ENV_VAR):
        keymap.update(parse_env_keymap(environ[ENV_VAR]))
    return keymap
