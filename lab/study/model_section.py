"""The study file's [model] table: which weights, in which dtype, placed on which devices (device_map,
max_memory, offload_folder through accelerate), and the memory sizes it accepts."""

from __future__ import annotations

import re
from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from lab.study.section import Section

DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's placements
_MODULE = re.compile(r"^([A-Za-z_][\w]*)?(\.[\w]+)*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$")
_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def memory_bytes(size: str) -> Optional[int]:
    """"10GiB" → bytes (accelerate's units: KB/MB/GB are powers of 10, KiB/MiB/GiB of 2); None when not a size."""
    m = _SIZE.match(size)
    if m is None or float(m.group(1)) <= 0:
        return None
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def _placement_device(dev: Any, disk: bool) -> bool:
    if isinstance(dev, bool):
        return False
    if isinstance(dev, int):
        return 0 <= dev <= 1024
    return isinstance(dev, str) and bool(re.fullmatch(r"\d{1,4}|cuda:\d{1,4}|cpu|mps" + ("|disk" if disk else ""), dev))


class ModelSection(Section):
    id: str = Field(min_length=1)
    revision: Optional[str] = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    gguf_file: Optional[str] = None  # when id is a folder holding several .gguf files
    # a model larger than one device: accelerate places its layers (docs/finetune.md, README "Study file")
    device_map: Optional[Union[Literal[DEVICE_MAP_STRATEGIES],
                               dict[str, Union[int, str]]]] = None
    max_memory: Optional[dict[str, str]] = Field(default=None, min_length=1, max_length=64)  # device → "10GiB"
    offload_folder: Optional[str] = Field(default=None, min_length=1)  # where "disk" layers' weights go

    @model_validator(mode="after")
    def _half_on_cpu(self) -> "ModelSection":
        if self.dtype == "float16" and self.device == "cpu":
            raise ValueError("dtype float16 on device cpu is slow and overflows on CPU; use dtype = \"float32\" "
                             "or \"bfloat16\" (or a CUDA device)")
        return self

    @field_validator("device_map", mode="before")
    @classmethod
    def _device_map_shape(cls, v: Any) -> Any:
        """One plain message for every wrong shape (instead of one per member of the union)."""
        if v is None or (isinstance(v, str) and v in DEVICE_MAP_STRATEGIES):
            return v
        if isinstance(v, dict):
            for module, dev in v.items():
                if not isinstance(dev, (str, int)) or isinstance(dev, bool):
                    raise ValueError(f"device_map.{module or '(whole model)'} must be a GPU index or text like "
                                     f"\"cpu\" or \"disk\", not {type(dev).__name__} {dev!r}")
            return v
        raise ValueError(f"must be one of {', '.join(repr(x) for x in DEVICE_MAP_STRATEGIES)} or a table of "
                         f"module → device, not {type(v).__name__} {v!r}")

    @model_validator(mode="after")
    def _placement(self) -> "ModelSection":
        if self.device_map is None:
            if self.max_memory is not None or self.offload_folder is not None:
                raise ValueError("max_memory and offload_folder only apply with device_map; add "
                                 "device_map = \"auto\" or remove them")
            return self
        if self.device != "auto":
            raise ValueError(f"device = {self.device!r} and device_map both say where the model goes; keep "
                             f"device_map and remove device (or remove device_map)")
        if isinstance(self.device_map, dict):
            if not self.device_map:
                raise ValueError("device_map is an empty table; name module → device, or use \"auto\"")
            for module, dev in self.device_map.items():
                if not _MODULE.match(module):
                    raise ValueError(f"device_map key {module!r} is not a module name like \"model.layers.3\" "
                                     f"(\"\" for the whole model)")
                if not _placement_device(dev, disk=True):
                    raise ValueError(f"device_map.{module or '(whole model)'} = {dev!r}; use a GPU index (0, 1, ...), "
                                     f"\"cuda:N\", \"cpu\", \"mps\" or \"disk\"")
        for dev, size in (self.max_memory or {}).items():
            if not _placement_device(dev, disk=True):
                raise ValueError(f"max_memory key {dev!r} is not a device; use \"0\", \"1\", ... (GPU index), "
                                 f"\"cpu\", \"mps\" or \"disk\"")
            if memory_bytes(size) is None:
                raise ValueError(f"max_memory.{dev} = {size!r} is not a size like \"10GiB\" or \"500MB\"")
        on_disk = (isinstance(self.device_map, dict) and "disk" in self.device_map.values()) or \
            "disk" in (self.max_memory or {})
        if on_disk and self.offload_folder is None:
            raise ValueError("device_map or max_memory sends layers to \"disk\" but offload_folder is not set; "
                             "add offload_folder = \"<a folder with room for them>\"")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda|cuda:\d+|mps", v):
            raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")
        return v
