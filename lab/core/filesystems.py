"""Which filesystem a path lives on, so lab.db uses a journal mode that is safe there.

SQLite's WAL mode keeps its index in shared memory (a -shm file mapped by every connection), which
network filesystems (NFS, Lustre, GPFS, CIFS, ...) do not share between hosts: WAL on such a home can
corrupt lab.db. On a network filesystem the store uses the rollback journal (journal_mode=DELETE),
whose locking goes through the filesystem's own byte-range locks. Only the coordinator writes lab.db
(stage units report through files), so the slower journal costs little. NEURON_PILOT_DB_JOURNAL=wal or
=delete overrides the detection (docs/cluster.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

NETWORK_TYPES = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "glusterfs",
                 "fuse.glusterfs", "fuse.sshfs", "fuse.s3fs", "fuse.gcsfuse", "9p", "afs", "panfs", "wekafs")
JOURNAL_ENV = "NEURON_PILOT_DB_JOURNAL"
MOUNTS = Path("/proc/self/mounts")


def filesystem_type(path: Path, mounts: Optional[str] = None) -> Optional[str]:
    """The type of the filesystem `path` lives on, from the longest matching mount point (None when the
    mount table cannot be read, as on macOS)."""
    if mounts is None:
        try:
            mounts = MOUNTS.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/") or point == "/"
        if inside and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def is_network(kind: Optional[str]) -> bool:
    return kind is not None and (kind in NETWORK_TYPES or kind.startswith("nfs"))


def journal_mode(folder: Path) -> str:
    """WAL on a local filesystem, DELETE on a network one; NEURON_PILOT_DB_JOURNAL overrides."""
    forced = os.environ.get(JOURNAL_ENV, "").strip().lower()
    if forced in ("wal", "delete"):
        return forced.upper()
    if forced:
        from lab.core.errors import BadInput

        raise BadInput(f"{JOURNAL_ENV}={forced!r} is not a journal mode; set it to wal or delete, or unset it")
    return "DELETE" if is_network(filesystem_type(folder)) else "WAL"
