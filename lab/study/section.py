"""The base of every study-file table: strict values (a boolean is not a number, "3" is not 3, no NaN or
infinity in any float), no unknown keys, frozen once parsed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
