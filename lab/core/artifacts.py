"""Artifacts: atomic writes (temp file, fsync, rename, then the DB row), sha256, verified reads."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from lab.core import faults
from lab.core.errors import BadInput
from lab.core.resources import DiskFull

TEMP_SUFFIX = ".tmp"  # atomic_write's temp files: .<name>.<random>.tmp beside the target


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, writer: Callable[[Path], None]) -> None:
    """Call writer(tmp_path), fsync it, then rename over `path`: readers never see a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        faults.artifact_written(path)  # tests only: a kill or a full disk here
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if _disk_full(exc):
            raise DiskFull(f"no space left on the device writing {path.name} in {path.parent}: free disk space "
                           f"there, then try again (a stage run again resumes from its checkpoints)") from exc
        raise


def _disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, also when a library (safetensors) wraps the OS error in its own exception."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return isinstance(exc, Exception) and ("no space left on device" in text or "storagefull" in text)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temp files that a killed writer left under `folder` (atomic_write's .<name>.*.tmp).

    Only safe while no other process writes there: the worker calls it before its stage starts."""
    removed = []
    if folder.is_dir():
        for p in folder.rglob(f".*{TEMP_SUFFIX}"):
            if p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=False, ensure_ascii=False).encode("utf-8"))


def verify(path: Path, sha256: str) -> Path:
    """Refuse an artifact whose bytes no longer match the hash recorded when it was written."""
    if not path.is_file():
        raise BadInput(f"artifact {path} is missing; run its stage again (`neuron-pilot run STUDY`)")
    actual = sha256_file(path)
    if actual != sha256:
        raise BadInput(f"artifact {path} was modified after it was recorded (sha256 mismatch); "
                       f"restore it or re-run its stage")
    return path
