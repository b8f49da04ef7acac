"""lab.db on a network filesystem: detected from the mount table, the store uses the rollback journal
(WAL's shared-memory index is not shared between hosts on NFS and the like); NEURON_PILOT_DB_JOURNAL
overrides the detection, and a bad value is one line of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from lab.core.errors import BadInput
from lab.core.filesystems import JOURNAL_ENV, filesystem_type, is_network, journal_mode
from lab.store import Store

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
fileserver:/export/home /home nfs4 rw,relatime,vers=4.2 0 0
/dev/nvme0n1p1 /home/alice/scratch xfs rw 0 0
mds@tcp:/lustre /lustre lustre rw 0 0
//nas/share /mnt/my\\040share cifs rw 0 0
"""


@pytest.mark.parametrize("path,kind,network", [
    ("/home/alice/lab", "nfs4", True),
    ("/home/alice/scratch/lab", "xfs", False),  # a local disk mounted inside the NFS home
    ("/home", "nfs4", True),
    ("/homeless/lab", "ext4", False),  # a prefix of the name is not a mount point
    ("/lustre/project/lab", "lustre", True),
    ("/mnt/my share/lab", "cifs", True),
    ("/tmp/lab", "ext4", False),
])
def test_the_longest_mount_point_decides(path: str, kind: str, network: bool) -> None:
    got = filesystem_type(Path(path), MOUNTS)
    assert got == kind and is_network(got) == network


def test_this_machine_reads_its_own_mount_table(tmp_path: Path) -> None:
    assert filesystem_type(tmp_path) is not None  # /proc/self/mounts is there on Linux


def test_a_network_home_gets_the_rollback_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lab.core.filesystems as fs

    monkeypatch.setattr(fs, "filesystem_type", lambda folder, mounts=None: "nfs4")  # as if the home were on NFS
    assert journal_mode(tmp_path) == "DELETE"
    store = Store(tmp_path / "home")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "delete"
    assert not (tmp_path / "home" / "lab.db-wal").exists()
    store.engine.dispose()
    monkeypatch.setattr(fs, "filesystem_type", lambda folder, mounts=None: "ext4")
    local = Store(tmp_path / "home2")
    with local.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"


def test_the_override_and_its_bad_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(JOURNAL_ENV, "delete")
    assert journal_mode(tmp_path) == "DELETE"
    monkeypatch.setenv(JOURNAL_ENV, "WAL")
    assert journal_mode(tmp_path) == "WAL"
    monkeypatch.setenv(JOURNAL_ENV, "truncate")
    with pytest.raises(BadInput, match="is not a journal mode; set it to wal or delete"):
        Store(tmp_path / "home")
    assert not (tmp_path / "home").exists()  # refused before anything was written
