"""The study file's [compute] table: where stage units run (local processes or Slurm jobs through
submitit), how many at once, and the job resources and set-up lines a cluster needs."""

from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from lab.study.section import Section

_SLURM_NAME = re.compile(r"^[A-Za-z0-9_.,:@+-]+$")  # partition, account, qos (a partition may be a list: a,b)
_SBATCH_KEY = re.compile(r"^[a-z][a-z0-9-]*$")
# sbatch options the [compute] table names itself, or that submitit sets for neuron-pilot (the job's log
# files, its name): not accepted in `extra`
_EXTRA_RESERVED = {
    "partition": "partition", "p": "partition", "account": "account", "qos": "qos", "q": "qos",
    "constraint": "constraint", "mem": "mem_gb", "time": "time_min", "t": "time_min",
    "gpus-per-node": "gpus", "gres": "gpus", "gpus": "gpus", "cpus-per-task": "cpus", "c": "cpus",
    "output": None, "error": None, "o": None, "e": None, "open-mode": None, "job-name": None,
    "array": None, "a": None, "wrap": None,
}


class ComputeSection(Section):
    """Where stage units run: this machine (local) or a Slurm cluster through submitit (docs/cluster.md)."""

    executor: Literal["local", "slurm"] = "local"
    partition: Optional[str] = Field(default=None, min_length=1, max_length=200)
    gpus: Optional[int] = Field(default=None, ge=0, le=64)  # GPUs per job (one node)
    cpus: Optional[int] = Field(default=None, ge=1, le=1024)  # CPUs per task
    mem_gb: Optional[float] = Field(default=None, gt=0, le=65536)
    time_min: Optional[int] = Field(default=None, ge=1, le=366 * 24 * 60)  # default: the partition's limit
    account: Optional[str] = Field(default=None, min_length=1, max_length=200)
    qos: Optional[str] = Field(default=None, min_length=1, max_length=200)
    constraint: Optional[str] = Field(default=None, min_length=1, max_length=500)
    setup: list[str] = Field(default_factory=list, max_length=100)  # shell lines run in the job before the worker
    extra: dict[str, Any] = Field(default_factory=dict, max_length=50)  # further sbatch options
    max_resubmits: int = Field(default=2, ge=0, le=100)  # after PREEMPTED / NODE_FAIL
    max_parallel: int = Field(default=1, ge=1, le=1024)  # stage units in flight at once

    @field_validator("partition", "account", "qos")
    @classmethod
    def _name(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _SLURM_NAME.match(v):
            raise ValueError(f"{v!r} is not a Slurm name (letters, digits, _ . , : @ + -)")
        return v

    @field_validator("constraint")
    @classmethod
    def _constraint(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and any(ch.isspace() or not ch.isprintable() for ch in v):
            raise ValueError(f"{v!r} has spaces or control characters; write it as Slurm does, e.g. \"a100&ib\"")
        return v

    @field_validator("setup")
    @classmethod
    def _setup(cls, v: list[str]) -> list[str]:
        for line in v:
            if any(ch in line for ch in "\n\r\0"):
                raise ValueError("each setup entry is one shell line; split it into several entries")
            if len(line) > 4000:
                raise ValueError("a setup line is longer than 4000 characters; shorten it")
        return v

    @field_validator("extra", mode="before")
    @classmethod
    def _extra(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v  # the strict dict check says what is wrong
        for key, value in v.items():
            if not isinstance(key, str) or not _SBATCH_KEY.match(key):
                raise ValueError(f"extra key {key!r} is not an sbatch option name like \"mail-type\" (no leading --)")
            if key in _EXTRA_RESERVED:
                named = _EXTRA_RESERVED[key]
                fix = f"use [compute] {named} instead" if named else "neuron-pilot sets it itself; remove it"
                raise ValueError(f"extra.{key} is not allowed; {fix}")
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ValueError(f"extra.{key} must be text in quotes or a whole number, not "
                                 f"{type(value).__name__} {value!r}; fix the value")
            if isinstance(value, str) and any(ch in value for ch in "\n\r\0"):
                raise ValueError(f"extra.{key} has a line break; write it on one line")
        return v
