"""Faults of the home and its lab.db, found before anything is written and said in one line.

Why: a home that is a file, a lab.db that is not SQLite (or is cut short, read-only, locked by
another process, or full) used to end in a long traceback, sometimes after a partial schema was
written. Here the home and the file are inspected read-only first (`inspect_store`), and any
SQLite error met later is turned into the same kind of one-line `BadInput` (`explain`).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Optional

from lab.core.errors import BadInput

STORE_FILES = ("lab.db", "lab.db-wal", "lab.db-shm", "lab.db-journal")


def check_home(root: Path, *, must_exist: bool = False) -> None:
    """The home is a folder (or can become one): not a file, not under a file, not a symlink loop."""
    try:
        if root.exists() and not root.is_dir():
            raise BadInput(f"--home {root} is a file, not a folder; point --home at a folder (or move the file away)")
        for parent in root.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise BadInput(f"--home {root} is under {parent}, which is a file; point --home at a folder")
                break
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInput(f"--home {root} is a symlink loop; point --home at a real folder") from None
        raise BadInput(f"--home {root} cannot be read ({exc.strerror}); check its permissions or use another --home") from None
    if must_exist and not root.is_dir():
        raise missing_store(root)


def missing_store(root: Path) -> BadInput:
    return BadInput(f"no neuron-pilot store in {root}; create a study with `neuron-pilot new STUDY.toml --home {root}`")


def schema_version(db: Path) -> Optional[int]:
    """The stored schema version, read without writing anything; None when the file holds no
    neuron-pilot schema (an empty or foreign SQLite file). Raises BadInput for a damaged file.

    Only SQLite itself opens lab.db here: a plain open() and close() of the file would drop the POSIX
    locks this process's other SQLite connections hold on it, and another process could then corrupt it."""
    size = db.stat().st_size  # os.stat opens nothing
    if 0 < size < 100:
        raise BadInput(f"{db} is not an SQLite database (or is cut short: {size} bytes); move it away or use "
                       f"another --home")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header: "not a database"
        page = int(con.execute("PRAGMA page_size").fetchone()[0])
        if size % 512:  # SQLite pages are powers of two from 512 bytes: a whole file is a multiple of 512
            raise BadInput(f"{db} is truncated ({size} bytes, not a whole number of pages); move it away (or "
                           f"restore it from a backup) or use another --home")
        pages = int(con.execute("PRAGMA page_count").fetchone()[0])
        wal = db.with_name(db.name + "-wal")
        settled = not wal.exists() or wal.stat().st_size == 0  # no pages waiting in the WAL
        if size % page or (settled and size < pages * page):
            raise BadInput(f"{db} is truncated ({size} bytes, not the {pages * page} its header says); move it "
                           f"away (or restore it from a backup) or use another --home")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise BadInput(f"{db} holds no neuron-pilot store (its tables belong to another program); move it "
                           f"away or use another --home")
        if not tables:
            return None
        value = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(value[0]) if value else None
    except sqlite3.Error as exc:
        if "malformed" in str(exc) and size % 512:
            raise BadInput(f"{db} is truncated ({size} bytes, not a whole number of pages); move it away (or "
                           f"restore it from a backup) or use another --home") from None
        raise explain(exc, db.parent) from None
    except ValueError:
        raise BadInput(f"{db} has an unreadable schema version; restore it from a backup or use another --home") from None
    finally:
        con.close()


def check_writable(root: Path) -> None:
    """A writer needs the home folder and (if there) lab.db and its WAL files writable."""
    targets = [root] + [root / n for n in STORE_FILES if (root / n).exists()]
    for t in targets:
        if not os.access(t, os.W_OK) or _read_only_mount(t):
            what = "folder" if t == root else "file"
            raise BadInput(f"the lab home {what} {t} is read-only; make it writable (chmod u+w) or use another --home")


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _disk_nearly_full(root: Path) -> bool:
    """SQLite reports a write that ran out of space while growing its WAL as a plain I/O error."""
    try:
        st = os.statvfs(root)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < (1 << 20)


def lock_holder(root: Path) -> str:
    """Who is likely holding lab.db: the runner leases recorded in it (read-only), or ''."""
    db = root / "lab.db"
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
        try:
            rows = con.execute("SELECT study_id, holder, pid, host FROM lease ORDER BY study_id").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return ""
    return "; ".join(f"study {s} is run by {h} (pid {p} on {o})" for s, h, p, o in rows)


def explain(exc: BaseException, root: Path) -> BadInput:
    """An SQLite error (sqlite3's or SQLAlchemy's wrapper) as one line: what is wrong and what to do."""
    orig = getattr(exc, "orig", None) or exc
    msg = str(orig).lower()
    db = root / "lab.db"
    if "locked" in msg or "busy" in msg:
        who = lock_holder(root)
        by = f" ({who})" if who else " by another neuron-pilot process"
        return BadInput(f"{db} is locked{by} and stayed locked past the timeout; wait for it to finish or "
                        f"stop it, then try again")
    if "not a database" in msg or "encrypted" in msg:
        return BadInput(f"{db} is not an SQLite database (or is cut short); move it away or use another --home")
    if "malformed" in msg or "corrupt" in msg:
        return BadInput(f"{db} is damaged ({orig}); restore it from a backup or use another --home")
    if "readonly" in msg or "read-only" in msg:
        return BadInput(f"{db} is read-only; make it and its folder writable (chmod u+w) or use another --home")
    io = "disk i/o" in msg or "unable to open" in msg
    if "disk is full" in msg or "no space" in msg or (io and _disk_nearly_full(root)):
        return BadInput(f"no space left on the device holding {root}; free disk space there, then run the "
                        f"command again")
    if "unable to open" in msg or "disk i/o" in msg:
        if _read_only_mount(root) or not os.access(root, os.W_OK):
            return BadInput(f"the lab home {root} is read-only (lab.db needs its folder writable for its WAL "
                            f"files); make it writable or use another --home")
        return BadInput(f"cannot open {db} (its folder may be read-only or missing); check the folder's "
                        f"permissions or use another --home")
    return BadInput(f"{db} cannot be used ({orig}); check the file or use another --home")
