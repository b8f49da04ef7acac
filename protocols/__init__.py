"""Declarative staged protocols (TOML) and their loader.

A protocol names its stages in order, what each needs and must produce, and each gate's rule with
its thresholds. The shipped `lsn-staged` is the paper's protocol; users add their own .toml files
(pass a path as [study] protocol, or drop the file in <home>/protocols/). This module stays light:
it imports nothing heavy, and the engine checks rule and stage names against its registries.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, Optional

from lab.core.errors import BadInput
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SHIPPED = Path(__file__).resolve().parent
NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
# strict: a boolean is not a number and "3" is not 3; NaN and infinity are no threshold
STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ProtocolError(BadInput, ValueError):
    """A protocol file is invalid; the message is one line saying what and how to fix it. It is bad
    input, so every command reports it as such (exit 2) without wrapping it."""

    def __init__(self, message: str) -> None:
        # Keys and TOML errors quoted from the file may hold newlines; the message stays one line.
        super().__init__(" ".join(message.split()))


class Gate(BaseModel):
    model_config = STRICT
    rule: str
    on_no_go: Literal["stop", "continue"] = "stop"
    params: dict[str, float | int | bool | str] = Field(default_factory=dict)

    @field_validator("params", mode="before")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        for key, value in (v.items() if isinstance(v, dict) else ()):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"threshold {key} = {value} is not a finite number; give a number")
        return v


class StageSpec(BaseModel):
    model_config = STRICT
    name: str
    title: str
    runs: Optional[str] = None  # the registered stage implementation; defaults to name
    description: str = ""
    needs: list[str] = Field(default_factory=list)
    inputs: list[str] = Field(default_factory=list)  # study-file sections the stage reads
    metrics: list[str] = Field(default_factory=list)  # metric names it must produce
    artifacts: list[str] = Field(default_factory=list)  # artifact names it must produce
    gate: Optional[Gate] = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"stage name {v!r} must be lower-case letters, digits, '-' or '_'")
        return v

    @property
    def implementation(self) -> str:
        return self.runs or self.name


class ProtocolInfo(BaseModel):
    model_config = STRICT
    name: str
    title: str
    description: str = ""
    version: int = 1
    reference: str = ""


class Protocol(BaseModel):
    model_config = STRICT
    protocol: ProtocolInfo
    stage: list[StageSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _order(self) -> "Protocol":
        seen: set[str] = set()
        for st in self.stage:
            if st.name in seen:
                raise ValueError(f"stage {st.name!r} is declared twice; give every stage its own name")
            for need in st.needs:
                if need not in seen:
                    raise ValueError(f"stage {st.name!r} needs {need!r}, which is not an earlier stage; "
                                     f"list stages after the ones they need")
            seen.add(st.name)
        return self

    @property
    def name(self) -> str:
        return self.protocol.name

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stage]

    def get(self, name: str) -> StageSpec:
        for s in self.stage:
            if s.name == name:
                return s
        raise ProtocolError(f"protocol {self.name!r} has no stage {name!r} (stages: {', '.join(self.stage_names)})")

    def gate_params(self) -> dict[str, Any]:
        """All gate thresholds, flattened by key (study [criteria] may override any of them)."""
        out: dict[str, Any] = {}
        for s in self.stage:
            if s.gate:
                out.update(s.gate.params)
        return out


def _one_line(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"protocol {source}: unknown key {loc}; remove it or fix its spelling"
    if first["type"] == "missing":
        return f"protocol {source}: missing {loc}; add it (see protocols/lsn-staged.toml)"
    msg = str(first["msg"]).removeprefix("Value error, ")
    fix = "" if "; " in msg else "; fix the value (see docs/foundation.md, 'Protocol files')"
    return f"protocol {source}: {loc}: {msg}{fix}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    return "a number" if isinstance(value, (int, float)) else "text"


def _shipped_params() -> dict[str, Any]:
    """The gate thresholds of the shipped protocols, read as plain TOML (their kinds are the reference)."""
    out: dict[str, Any] = {}
    for path in sorted(SHIPPED.glob("*.toml")):
        try:
            for stage in tomllib.loads(path.read_text(encoding="utf-8")).get("stage", []):
                out.update((stage.get("gate") or {}).get("params") or {})
        except (OSError, tomllib.TOMLDecodeError, AttributeError):
            continue
    return out


def check_param_kinds(protocol: Protocol, source: str) -> None:
    """A user protocol's threshold that a shipped protocol also has must be of the same kind: a
    boolean or a quoted "1.0" where the gate rules compare a number would pass silently."""
    shipped = _shipped_params()
    for stage in protocol.stage:
        for key, value in (stage.gate.params if stage.gate else {}).items():
            if key in shipped and _kind(value) != _kind(shipped[key]):
                raise ProtocolError(f"protocol {source}: stage.{stage.name}.gate.params.{key} must be "
                                    f"{_kind(shipped[key])} (like {shipped[key]!r}), not {value!r}; fix the value")


def parse_protocol(text: str, source: str = "protocol") -> Protocol:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"protocol {source} is not valid TOML: {exc}; fix the syntax") from None
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(_one_line(exc, source)) from None
    check_param_kinds(protocol, source)
    return protocol


def search_paths(home: Optional[Path] = None) -> list[Path]:
    paths = [SHIPPED]
    if home is not None:
        paths.insert(0, Path(home) / "protocols")
    return paths


def find_protocol(ref: str, home: Optional[Path] = None) -> Path:
    """A protocol by name (user folder first, then the shipped ones) or by path to a .toml file."""
    if ref.endswith(".toml") or "/" in ref:
        path = Path(ref).expanduser()
        if not path.is_file():
            raise ProtocolError(f"protocol file {ref} does not exist; fix the path or use a name like 'lsn-staged'")
        return path
    for base in search_paths(home):
        cand = base / f"{ref}.toml"
        if cand.is_file():
            return cand
    known = ", ".join(list_protocols(home)) or "none"
    raise ProtocolError(f"unknown protocol {ref!r} (known: {known}); use one of those or give a path to a .toml file")


def load_protocol(ref: str, home: Optional[Path] = None) -> Protocol:
    path = find_protocol(ref, home)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"protocol file {path} is not UTF-8 text; save it as UTF-8") from None
    return parse_protocol(text, source=str(path.name))


def list_protocols(home: Optional[Path] = None) -> list[str]:
    names: set[str] = set()
    for base in search_paths(home):
        if base.is_dir():
            names.update(p.stem for p in base.glob("*.toml"))
    return sorted(names)
