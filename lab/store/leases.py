"""The per-study runner lease (one runner per study) and the pid liveness check it relies on."""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any, Optional

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from lab.core.errors import BadInput
from lab.store.tables import Lease, utcnow


def pid_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class LeaseMixin:
    """Store's lease methods (`self.engine` and `self.session()` come from Store)."""

    engine: Any

    def session(self) -> Any:  # pragma: no cover - Store defines it
        raise NotImplementedError

    # ---- leases -------------------------------------------------------------------------------
    def acquire_lease(self, study_id: int, holder: str, ttl: dt.timedelta = dt.timedelta(seconds=60)) -> None:
        """Take the study's runner lease or raise BadInput naming who holds it.

        Why a compare-and-swap: taking over an expired lease is decided on a row read first; the write
        then only succeeds if the row is still exactly the one read (or, with no row, if no other runner
        inserted one first). A runner that lost the race reads again and sees the winner's live lease."""
        for _ in range(5):
            try:
                if self._acquire_lease(study_id, holder, ttl):
                    return
            except IntegrityError:  # another runner inserted its lease between our read and our write
                continue
        raise BadInput(f"study {study_id}'s runner lease keeps changing hands; wait a moment, then run again")

    def _acquire_lease(self, study_id: int, holder: str, ttl: dt.timedelta) -> bool:
        host = socket.gethostname()
        now = utcnow()
        new = {"s": study_id, "h": holder, "p": os.getpid(), "o": host, "a": now, "e": now + ttl}
        with self.engine.begin() as conn:
            row = conn.execute(text("SELECT holder, pid, host, expires_at FROM lease WHERE study_id=:s"),
                               {"s": study_id}).first()
            if row is None:
                conn.execute(text("INSERT INTO lease(study_id, holder, pid, host, acquired_at, expires_at) "
                                  "VALUES(:s, :h, :p, :o, :a, :e)"), new)
                return True
            expires = row.expires_at if isinstance(row.expires_at, dt.datetime) else dt.datetime.fromisoformat(str(row.expires_at))
            alive = expires > now and (row.host != host or pid_alive(row.pid))
            if alive and not (row.host == host and row.pid == os.getpid()):
                raise BadInput(
                    f"study {study_id} is being run by {row.holder} (pid {row.pid} on {row.host}); "
                    f"wait for it to finish or stop it, then run again")
            taken = conn.execute(text("UPDATE lease SET holder=:h, pid=:p, host=:o, acquired_at=:a, expires_at=:e "
                                      "WHERE study_id=:s AND holder IS :oh AND pid IS :op AND host IS :oo "
                                      "AND expires_at IS :oe"),
                                 {**new, "oh": row.holder, "op": row.pid, "oo": row.host, "oe": row.expires_at})
            return taken.rowcount == 1

    def renew_lease(self, study_id: int, ttl: dt.timedelta = dt.timedelta(seconds=60)) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE lease SET expires_at=:e WHERE study_id=:s AND pid=:p"),
                         {"e": utcnow() + ttl, "s": study_id, "p": os.getpid()})

    def release_lease(self, study_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM lease WHERE study_id=:s AND pid=:p"), {"s": study_id, "p": os.getpid()})

    def lease(self, study_id: int) -> Optional[Lease]:
        with self.session() as s:
            return s.get(Lease, study_id)
