"""Artifacts and exports: atomic writes (temp file, fsync, rename), output-path guards, sha256, verified reads."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
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


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (/proc), else by setting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _has_reader(fifo: Path) -> None:
    """Opening a pipe nobody reads blocks forever; a closed reader (`| head`) is a BrokenPipeError."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise BrokenPipeError(errno.EPIPE, f"nobody reads {fifo}") from None
        raise BadInput(f"cannot write {fifo} ({exc.strerror}); give another path") from None
    os.close(fd)


def _parent_folder(path: Path) -> None:
    """Create `path`'s folder; one line when a part of it is a file or cannot be made."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [path.parent, *path.parent.parents] if p.exists() and not p.is_dir()), path.parent)
        raise BadInput(f"cannot write {path}: {blocker} is a file, not a folder; give a path in a folder") from None
    except OSError as exc:
        raise BadInput(f"cannot create the folder {path.parent} ({exc.strerror}); check its permissions or "
                       f"give another path") from None


def atomic_write(path: Path, writer: Callable[[Path], None]) -> None:
    """Call writer(tmp_path), fsync it, then rename over `path`: readers never see a half file.

    A character device or a pipe (/dev/stdout) is written to directly, never renamed over; any other existing
    path that is not a regular file (a folder, a FIFO, a socket, a block device) is refused. The file
    gets the mode a plain open() would give it (0666 less the umask), or keeps an existing file's mode."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:  # a part of the folder is a file: _parent_folder names it
        mode = None
    except OSError as exc:
        raise BadInput(f"cannot write {path} ({exc.strerror}); give another path") from None
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        if stat.S_ISFIFO(mode):
            _has_reader(path)
        writer(path)  # a terminal, /dev/null or a pipe (/dev/stdout): a stream, never renamed over
        return
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise BadInput(f"cannot write {path}: it is {kind}; give the path of a file")
    _parent_folder(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        if _disk_full(exc):
            raise DiskFull(f"no space left on the device writing {path.name} in {path.parent}; free disk space "
                           f"there, then run it again") from exc
        raise BadInput(f"cannot write in {path.parent} ({exc.strerror}); check the folder's permissions or "
                       f"give another path") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, stat.S_IMODE(mode) if mode is not None else 0o666 & ~_umask())
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
            raise DiskFull(f"no space left on the device writing {path.name} in {path.parent}; free disk space "
                           f"there, then run it again (a stage run again resumes from its checkpoints)") from exc
        raise


def check_output_path(raw: str | os.PathLike[str], home_root: Path) -> Path:
    """A user-named output path (export -o) that cannot destroy stored work: refused inside the home's
    store (lab.db and its WAL files), artifacts/ and logs/, symlinks resolved; a folder or any other
    non-file that is not a character device is refused too (atomic_write says so)."""
    path = Path(raw).expanduser()
    try:
        real = path.resolve()
        home = home_root.resolve()
    except (OSError, RuntimeError):
        raise BadInput(f"-o {raw}: the path cannot be resolved (a symlink loop?); give another path") from None
    protected = [home / "artifacts", home / "logs"]
    if real.parent == home and real.name.startswith("lab.db"):
        raise BadInput(f"-o {raw} is the lab's store ({real}); writing there would destroy the studies; "
                       f"give a path outside the store, e.g. {home / 'exports' / path.name}")
    for folder in protected:
        if real == folder or real.is_relative_to(folder):
            raise BadInput(f"-o {raw} is inside the lab's {folder.name}/ ({real}); writing there would "
                           f"overwrite recorded work; give a path outside it, e.g. {home / 'exports' / path.name}")
    return path


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
