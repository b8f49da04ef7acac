"""The SQLite store: migrations, pragmas, two processes writing at once, upserts, hashed artifacts,
the stage state machine, the runner lease and stale-stage detection.

Other processes are real subprocesses (`python -c`) that import only lab.store, so they start fast.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from lab.core.artifacts import sha256_file, verify
from lab.core.errors import BadInput
from lab.core.paths import BUSY_TIMEOUT_MS, PROJECT_ROOT
from lab.store import SCHEMA_VERSION, StageState, Store
from lab.store import db as store_db
from lab.store.tables import utcnow

STAGES = ["criteria", "model", "identify"]


def _study(store: Store, name: str = "s") -> int:
    study = store.create_study(name=name, protocol="lsn-staged", model_id="m", seed=3, trust_remote_code=False,
                               config={"k": 1}, source_toml="", source_path="", stages=STAGES)
    return int(study.id)  # type: ignore[arg-type]


def _py(code: str, *args: str, **kw: Any) -> subprocess.Popen[str]:
    """A Python subprocess running `code` from the project root (so `import lab` works)."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=PROJECT_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---- schema and migrations ---------------------------------------------------------------------

def test_fresh_db_is_at_current_schema_and_reopening_is_idempotent(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.schema_version() == SCHEMA_VERSION
    with store.engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    assert {"meta", "study", "stagerun", "metric", "decision", "artifact", "lease", "logline"} <= tables
    sid = _study(store)
    store.put_metric(sid, "model", "d_ff", 64)
    store.engine.dispose()

    again = Store(tmp_path)
    assert again.schema_version() == SCHEMA_VERSION
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM meta WHERE key='schema_version'")).scalar_one() == 1
    assert [m.value for m in again.metrics(sid)] == [64.0]
    assert again.integrity_check() == "ok"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path).engine.dispose()
    con = sqlite3.connect(tmp_path / "lab.db")
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(BadInput) as exc:
        Store(tmp_path)
    msg = str(exc.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in msg and "upgrade neuron-pilot" in msg and "\n" not in msg


def test_migrations_run_in_order_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A DB made by the current code is upgraded by a newly appended migration exactly once."""
    Store(tmp_path).engine.dispose()
    calls: list[int] = []

    def add_column(conn: Any) -> None:
        calls.append(1)
        conn.execute(text("ALTER TABLE study ADD COLUMN note TEXT"))

    monkeypatch.setattr(store_db, "MIGRATIONS", [*store_db.MIGRATIONS, add_column])
    monkeypatch.setattr(store_db, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    store = Store(tmp_path)
    assert store.schema_version() == SCHEMA_VERSION + 1 and calls == [1]
    store.engine.dispose()
    Store(tmp_path).engine.dispose()
    assert calls == [1]
    cols = [r[1] for r in sqlite3.connect(tmp_path / "lab.db").execute("PRAGMA table_info(study)")]
    assert "note" in cols


def test_missing_db_is_bad_input_when_not_creating(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no neuron-pilot store in"):
        Store(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere" / "lab.db").exists()


def test_pragmas_wal_foreign_keys_busy_timeout(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == BUSY_TIMEOUT_MS >= 5000
    # WAL is a property of the file: a plain sqlite3 connection sees it too
    assert sqlite3.connect(tmp_path / "lab.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(IntegrityError):
        store.put_metric(999, "model", "d_ff", 1.0)  # no study 999: the foreign key refuses it


# ---- two processes at once ---------------------------------------------------------------------

WRITER = """
import os, sys, time
from lab.store import Store
home, sid, who, n, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
store = Store(home)
open(go + "." + who, "w").close()  # ready: imported and connected
while not os.path.exists(go):
    time.sleep(0.01)
first = time.time()
for i in range(n):
    store.put_metric(sid, "identify", f"{who}_{i}", float(i), language="sw", condition=who)
    store.log(sid, "identify", f"{who} line {i}")
print(first, time.time())
"""


def test_two_processes_write_at_the_same_time(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sid = _study(store)
    go = tmp_path / "go"
    n = 150
    procs = [_py(WRITER, str(tmp_path), str(sid), who, str(n), str(go)) for who in ("a", "b")]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.{who}").exists() for who in "ab") and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    go.touch()  # both are connected and waiting: they start writing together
    spans = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        spans.append(tuple(map(float, out.split())))
    # the two writers really overlapped in time
    assert max(s[0] for s in spans) < min(s[1] for s in spans)
    rows = store.metrics(sid, "identify")
    assert len(rows) == 2 * n
    assert {r.name for r in rows} == {f"{w}_{i}" for w in "ab" for i in range(n)}
    assert len(store.logs(sid, "identify", limit=10 * n)) == 2 * n
    assert store.integrity_check() == "ok"


# ---- metrics, artifacts, logs -----------------------------------------------------------------

def test_metric_upsert_replaces_never_duplicates(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sid = _study(store)
    store.put_metric(sid, "evaluate", "accuracy", 0.5, language="sw", condition="baseline", n=10)
    store.put_metric(sid, "evaluate", "accuracy", 0.6, language="sw", condition="intervention", n=10)
    store.put_metrics(sid, [dict(stage="evaluate", name="accuracy", value=0.7, language="sw",
                                 condition="baseline", ci_low=0.6, ci_high=0.8, n=20)])
    rows = {r.condition: r for r in store.metrics(sid, "evaluate", "accuracy")}
    assert len(store.metrics(sid)) == 2
    assert (rows["baseline"].value, rows["baseline"].ci_low, rows["baseline"].n) == (0.7, 0.6, 20)
    assert rows["intervention"].value == 0.6
    # a metric without language/condition is stored with "" and also upserts
    store.put_metric(sid, "model", "d_ff", 1)
    store.put_metric(sid, "model", "d_ff", 2)
    assert [(m.language, m.condition, m.value) for m in store.metrics(sid, "model")] == [("", "", 2.0)]


def test_artifact_recorded_with_sha256_and_verified(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sid = _study(store)
    path = store.home.stage_dir(sid, "model") / "model.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"d_ff": 64}))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256_file(path) == digest
    row = store.put_artifact(sid, "model", "model.json", path, digest, path.stat().st_size)
    assert (row.sha256, row.bytes, row.path) == (digest, path.stat().st_size, f"artifacts/study-{sid}/model/model.json")
    assert store.artifact(sid, "model", "model.json").sha256 == digest
    assert verify(store.home.inside(Path(row.path)), row.sha256) == path
    # re-recording replaces the row; tampering with the bytes is caught on read
    path.write_text(json.dumps({"d_ff": 65}))
    with pytest.raises(BadInput, match="sha256 mismatch"):
        verify(path, digest)
    store.put_artifact(sid, "model", "model.json", path, sha256_file(path), path.stat().st_size)
    assert len(store.artifacts(sid)) == 1 and store.artifacts(sid)[0].sha256 == sha256_file(path)
    with pytest.raises(BadInput, match="run the identify stage first"):
        store.artifact(sid, "identify", "neurons.json")
    with pytest.raises(BadInput, match="escapes the lab home"):
        store.home.inside(Path("../../etc/passwd"))


def test_clear_stage_outputs_touches_only_that_stage(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sid = _study(store)
    for stage in ("model", "identify"):
        store.put_metric(sid, stage, "x", 1.0)
        f = tmp_path / f"{stage}.json"
        f.write_text("{}")
        store.put_artifact(sid, stage, "a.json", f, sha256_file(f), 2)
    store.clear_stage_outputs(sid, "identify")
    assert [m.stage for m in store.metrics(sid)] == ["model"]
    assert [a.stage for a in store.artifacts(sid)] == ["model"]


# ---- stage state machine ----------------------------------------------------------------------

def test_stage_state_machine_and_stale_detection(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sid = _study(store)
    runs = store.stage_runs(sid)
    assert [(r.stage, r.position, r.state, r.attempts) for r in runs] == [
        (s, i, StageState.pending, 0) for i, s in enumerate(STAGES)]
    host = socket.gethostname()
    # criteria: running in a live process (this one) with a fresh heartbeat → left alone
    store.update_stage(sid, "criteria", state=StageState.running, pid=os.getpid(), host=host,
                       attempts=1, heartbeat_at=utcnow())
    # model: running, but its worker pid is dead → interrupted
    store.update_stage(sid, "model", state=StageState.running, pid=_dead_pid(), host=host, attempts=1,
                       heartbeat_at=utcnow())
    # identify: running on another host, heartbeat silent for a minute → interrupted
    store.update_stage(sid, "identify", state=StageState.running, pid=1, host="elsewhere", attempts=1,
                       heartbeat_at=utcnow() - dt.timedelta(minutes=1))
    assert sorted(store.mark_stale(sid)) == ["identify", "model"]
    states = {r.stage: r for r in store.stage_runs(sid)}
    assert states["criteria"].state == StageState.running and states["criteria"].pid == os.getpid()
    for stage in ("model", "identify"):
        assert states[stage].state == StageState.interrupted and states[stage].pid is None
        assert "run again" in (states[stage].error or "")
        assert states[stage].attempts == 1
    # a heartbeat keeps a stage alive; done and interrupted stages are never touched again
    store.heartbeat(sid, "criteria", progress={"done": 1, "total": 2})
    assert json.loads(store.stage_run(sid, "criteria").progress_json or "{}") == {"done": 1, "total": 2}
    store.update_stage(sid, "criteria", state=StageState.done, pid=None)
    assert store.mark_stale(sid) == []
    with pytest.raises(BadInput, match="no stage"):
        store.stage_run(sid, "nosuch")


def test_decisions_need_verdict_rationale_and_author(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sid = _study(store)
    for verdict, why, by in (("maybe", "x", "me"), ("go", "  ", "me"), ("go", "fine", "")):
        with pytest.raises(BadInput):
            store.add_decision(sid, "criteria", verdict, why, by)
    store.add_decision(sid, "criteria", "revise", "first look", "ana")
    store.add_decision(sid, "criteria", "go", "second look", "ana")
    latest = store.latest_decision(sid, "criteria")
    assert latest is not None and (latest.verdict, latest.rationale) == ("go", "second look")
    assert len(store.decisions(sid)) == 2


def test_study_lookup_by_id_and_name(tmp_path: Path) -> None:
    store = Store(tmp_path)
    a = _study(store, "alpha")
    assert store.study(a).name == store.study(str(a)).name == store.study("alpha").name == "alpha"
    _study(store, "dup")
    _study(store, "dup")
    with pytest.raises(BadInput, match="ambiguous"):
        store.study("dup")
    with pytest.raises(BadInput, match="no study 'zzz'"):
        store.study("zzz")


# ---- lease ------------------------------------------------------------------------------------

HOLDER = """
import sys, datetime as dt
from lab.core.errors import BadInput
from lab.store import Store
home, sid, ttl = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
store = Store(home)
try:
    store.acquire_lease(sid, "holder-in-child", ttl=dt.timedelta(seconds=ttl))
except BadInput as exc:
    print("refused:", exc, flush=True)
    sys.exit(2)
print("held", flush=True)
sys.stdin.readline()  # hold the lease until the test closes stdin
"""


def test_lease_blocks_a_second_process_until_released_expired_or_dead(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sid = _study(store)

    # this process holds it → another process is refused, with our name in the message
    store.acquire_lease(sid, "pytest-holder")
    store.acquire_lease(sid, "pytest-holder")  # re-acquiring one's own lease is fine
    child = _py(HOLDER, str(tmp_path), str(sid), "60", stdin=subprocess.PIPE)
    out, _ = child.communicate("\n", timeout=120)
    assert child.returncode == 2
    assert "refused:" in out and "pytest-holder" in out and f"pid {os.getpid()}" in out
    store.release_lease(sid)
    assert store.lease(sid) is None

    # a live child holds it → we are refused, naming the child
    child = _py(HOLDER, str(tmp_path), str(sid), "60", stdin=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        lease = store.lease(sid)
        assert lease is not None and lease.pid == child.pid and lease.holder == "holder-in-child"
        with pytest.raises(BadInput) as exc:
            store.acquire_lease(sid, "pytest-holder")
        assert "holder-in-child" in str(exc.value) and f"pid {child.pid}" in str(exc.value)
        store.release_lease(sid)  # releasing someone else's lease does nothing
        assert store.lease(sid) is not None
        # the child's lease expires (it stopped renewing) → it can be taken although the child lives
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE lease SET expires_at=:e WHERE study_id=:s"),
                         {"e": utcnow() - dt.timedelta(seconds=1), "s": sid})
        store.acquire_lease(sid, "pytest-holder")
        lease = store.lease(sid)
        assert lease is not None and lease.pid == os.getpid()
        store.release_lease(sid)
    finally:
        child.communicate("\n", timeout=60)

    # a child that took the lease and died without releasing it → the lease is free
    child = _py(HOLDER, str(tmp_path), str(sid), "600", stdin=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    child.communicate("\n", timeout=60)
    lease = store.lease(sid)
    assert lease is not None and lease.pid == child.pid and lease.expires_at > utcnow()
    store.acquire_lease(sid, "pytest-holder")
    lease = store.lease(sid)
    assert lease is not None and lease.pid == os.getpid()


def test_sync_stages_adds_a_stage_the_protocol_gained_in_protocol_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    study = store.create_study(name="old", protocol="p", model_id="m", seed=0, trust_remote_code=False,
                               config={}, source_toml="", source_path="", stages=["a", "b", "d"])
    store.update_stage(study.id, "b", state=StageState.done)
    assert store.sync_stages(study.id, ["a", "b", "c", "d"]) == ["c"]
    rows = store.stage_runs(study.id)
    assert [r.stage for r in rows] == ["a", "b", "c", "d"]
    assert rows[1].state == StageState.done and rows[2].state == StageState.pending
    assert store.sync_stages(study.id, ["a", "b", "c", "d"]) == []  # idempotent


RACER = """
import sys
import time
from lab.core.errors import BadInput
from lab.store import Store

store = Store(sys.argv[1], create=False)


real_pid_alive = sys.modules["lab.store.db"].pid_alive


def slow_pid_alive(pid):  # the holder's liveness check, slowed: every racer reads the row before any writes
    time.sleep(0.5)
    return real_pid_alive(pid)


for module in ("lab.store.db", "lab.store.leases"):
    if hasattr(sys.modules.get(module), "pid_alive"):
        sys.modules[module].pid_alive = slow_pid_alive
print("ready", flush=True)
sys.stdin.readline()
try:
    store.acquire_lease(int(sys.argv[2]), "racer")
    print("won", flush=True)
except BadInput:
    print("lost", flush=True)
sys.stdin.readline()
"""


def test_a_dead_runners_lease_is_taken_by_exactly_one_of_several_racing_runners(tmp_path: Path) -> None:
    """Issue #15 point 7: the takeover is decided and written as one compare-and-swap, so runners that
    read the same stale row cannot both take it (before, each deleted the other's new lease). The
    racers' liveness check is slowed so that all of them read the row before any of them writes."""
    store = Store(tmp_path)
    sid = _study(store)
    for _ in range(3):
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM lease"))
            conn.execute(text("INSERT INTO lease(study_id, holder, pid, host, acquired_at, expires_at) "
                              "VALUES(:s, 'gone', :p, :h, :a, :e)"),
                         {"s": sid, "p": _dead_pid(), "h": socket.gethostname(), "a": utcnow(),
                          "e": utcnow() + dt.timedelta(seconds=60)})  # unexpired, but its runner died
        racers = [_py(RACER, str(tmp_path), str(sid), stdin=subprocess.PIPE) for _ in range(4)]
        try:
            for r in racers:
                assert r.stdout is not None and r.stdout.readline().strip() == "ready"
            for r in racers:  # release them together
                assert r.stdin is not None
                r.stdin.write("\n")
                r.stdin.flush()
            results = [r.stdout.readline().strip() for r in racers if r.stdout is not None]
            lease = store.lease(sid)
        finally:
            for r in racers:
                r.communicate("\n", timeout=60)
        assert sorted(results) == ["lost", "lost", "lost", "won"], results
        winner = racers[results.index("won")]
        assert lease is not None and lease.holder == "racer" and lease.pid == winner.pid
