"""The store contract, run against every implementation (today: SQLite)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from pocketkube.store import DELETE, PUT, Compacted, KeyExists, KeyNotFound, RevisionMismatch, StoreError
from pocketkube.store.sqlite import SqliteStore


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(params=["sqlite"])
def make_store(request, tmp_path):
    async def factory(**kw):
        return SqliteStore(str(tmp_path / "state.db"), **kw)
    return factory


def test_create_get_update_delete(make_store):
    async def body():
        s = await make_store()
        r1 = await s.create("/a/x", b"1")
        kv = await s.get("/a/x")
        assert (kv.value, kv.create_revision, kv.mod_revision) == (b"1", r1, r1)
        with pytest.raises(KeyExists):
            await s.create("/a/x", b"2")
        r2 = await s.update("/a/x", b"2", expected_revision=r1)
        assert r2 > r1
        with pytest.raises(RevisionMismatch) as e:
            await s.update("/a/x", b"3", expected_revision=r1)
        assert e.value.current == r2
        r3 = await s.update("/a/x", b"3")
        kv = await s.get("/a/x")
        assert (kv.value, kv.create_revision, kv.mod_revision) == (b"3", r1, r3)
        with pytest.raises(RevisionMismatch):
            await s.delete("/a/x", expected_revision=r2)
        r4 = await s.delete("/a/x", expected_revision=r3)
        assert r4 > r3 and await s.get("/a/x") is None
        with pytest.raises(KeyNotFound):
            await s.delete("/a/x")
        with pytest.raises(KeyNotFound):
            await s.update("/a/x", b"4")
        assert s.revision == r4
        await s.close()
    run(body())


def test_list_prefix_pagination_and_count(make_store):
    async def body():
        s = await make_store()
        for i in range(25):
            await s.create(f"/p/ns/{i:03d}", str(i).encode())
        await s.create("/p/nt/zzz", b"other")
        await s.create("/q/ns/000", b"other kind")
        items, rev, more = await s.list("/p/ns/")
        assert [kv.key for kv in items] == [f"/p/ns/{i:03d}" for i in range(25)]
        assert rev == s.revision and not more
        page, _, more = await s.list("/p/ns/", limit=10)
        assert len(page) == 10 and more
        page2, _, more = await s.list("/p/ns/", start_after=page[-1].key, limit=10)
        assert page2[0].key == "/p/ns/010" and more
        page3, _, more = await s.list("/p/ns/", start_after=page2[-1].key, limit=10)
        assert len(page3) == 5 and not more
        assert await s.count("/p/") == 26
        await s.close()
    run(body())


def test_reads_agree_while_a_commit_is_not_yet_published(make_store, tmp_path):
    """A write the disk holds but the loop has not published is in neither gets nor lists.

    The loop is blocked (no await) while the writer commits, as happens under load; a list that
    showed the new value to a client whose next get still returned the old one would make that
    client's view go back in time.
    """
    async def body():
        s = await make_store()
        r1 = await s.create("/m/a", b"old")
        await s.create("/m/b", b"other")
        pending = asyncio.ensure_future(s.update("/m/a", b"new"))
        while not s._inflight and not pending.done():   # the op reaches the writer
            await asyncio.sleep(0)
        assert s._inflight
        probe = sqlite3.connect(str(tmp_path / "state.db"))
        deadline = time.monotonic() + 10
        while probe.execute("SELECT value FROM live JOIN log ON rev = mod_rev WHERE live.key='/m/a'").fetchone()[0] != b"new":
            assert time.monotonic() < deadline, "the writer never committed"
            time.sleep(0.005)
        probe.close()
        items, rev, _ = await s.list("/m/")
        assert [kv.value for kv in items] == [b"old", b"other"] and rev == s.revision
        assert (await s.get("/m/a")).value == b"old"
        assert await s.count("/m/", start_after="/m/a") == 1
        r2 = await pending
        items, rev, _ = await s.list("/m/")
        assert [kv.value for kv in items] == [b"new", b"other"] and rev == r2 > r1
        await s.close()
    run(body())


def test_concurrent_writes_get_distinct_ordered_revisions(make_store):
    async def body():
        s = await make_store()
        revs = await asyncio.gather(*(s.create(f"/c/{i}", b"v") for i in range(500)))
        assert len(set(revs)) == 500
        assert max(revs) == s.revision
        # Concurrent updates with the same expected revision: exactly one wins.
        base = await s.create("/race", b"0")
        results = await asyncio.gather(*(s.update("/race", str(i).encode(), base) for i in range(20)),
                                       return_exceptions=True)
        assert sum(1 for r in results if isinstance(r, int)) == 1
        assert all(isinstance(r, RevisionMismatch) for r in results if not isinstance(r, int))
        await s.close()
    run(body())


def test_watch_live_and_from_history(make_store):
    async def body():
        s = await make_store()
        r0 = s.revision
        r1 = await s.create("/w/a", b"1")
        await s.update("/w/a", b"2")
        await s.create("/other/b", b"x")
        r4 = await s.delete("/w/a")
        w = s.watch("/w/", r0)
        evs = [await w.next(1) for _ in range(3)]
        assert [(e.type, e.value, e.prev_value) for e in evs] == [
            (PUT, b"1", None), (PUT, b"2", b"1"), (DELETE, b"2", b"2")]
        assert evs[0].created and not evs[1].created and evs[2].revision == r4
        assert await w.next(0.05) is None
        r5 = await s.create("/w/c", b"3")
        ev = await w.next(1)
        assert (ev.key, ev.revision) == ("/w/c", r5)
        w.close()
        # A watch from a later revision sees only later events.
        w2 = s.watch("/w/", r1)
        assert (await w2.next(1)).value == b"2"
        w2.close()
        await s.close()
    run(body())


def test_watch_history_from_disk_after_restart(make_store):
    async def body():
        s = await make_store()
        r0 = s.revision
        for i in range(5):
            await s.create(f"/d/{i}", b"v")
        await s.close()
        s2 = await make_store()
        assert s2.revision == r0 + 5
        w = s2.watch("/d/", r0 + 2)
        keys = [(await w.next(1)).key for _ in range(3)]
        assert keys == ["/d/2", "/d/3", "/d/4"]
        w.close()
        await s2.close()
    run(body())


def test_compaction_expires_old_revisions(make_store):
    async def body():
        s = await make_store()
        r0 = s.revision
        revs = [await s.create(f"/k/{i}", b"v") for i in range(5)]
        await s.compact(revs[2])
        assert s.compacted_revision == revs[2]
        with pytest.raises(Compacted):
            s.watch("/k/", r0)
        w = s.watch("/k/", revs[2])
        assert (await w.next(1)).revision == revs[3]
        w.close()
        await s.close()
        s2 = await make_store()
        assert s2.compacted_revision == revs[2]
        with pytest.raises(Compacted):
            s2.watch("/k/", revs[1])
        await s2.close()
    run(body())


def test_compaction_keeps_the_values_of_live_keys(make_store, tmp_path):
    """A key's value is its change-log row at its last write: compaction past that revision
    keeps the row, and drops it once the key changed or was deleted, or nothing would remain."""
    async def body():
        s = await make_store()
        await s.create("/v/kept", b"kept-1")
        await s.create("/v/changed", b"old")
        await s.create("/v/deleted", b"gone")
        await s.update("/v/changed", b"new")
        await s.delete("/v/deleted")
        await s.compact(s.revision)
        await s.create("/v/later", b"later")
        await s.close()
        s2 = await make_store()
        items, _, _ = await s2.list("/v/")
        assert [(kv.key, kv.value) for kv in items] == [
            ("/v/changed", b"new"), ("/v/kept", b"kept-1"), ("/v/later", b"later")]
        await s2.compact(s2.revision)
        await s2.close()
        db = sqlite3.connect(str(tmp_path / "state.db"))
        logged = sorted(v for k, v in db.execute("SELECT key, value FROM log WHERE key LIKE '/v/%'"))
        db.close()
        assert logged == [b"kept-1", b"later", b"new"]
    run(body())


def test_history_from_disk_gives_previous_values_that_compaction_passed(make_store, tmp_path):
    """A row names the revision of the value it replaced instead of storing it again: compaction
    keeps those rows while an event after the compaction point needs them, and a history read
    from disk (no events in memory after a restart) gives the same values as the live watch."""
    async def body():
        s = await make_store()
        await s.create("/h/a", b"a1")
        await s.create("/h/b", b"b1")
        point = await s.update("/h/b", b"b2")
        await s.update("/h/a", b"a2")
        await s.delete("/h/b")
        await s.create("/h/c", b"c1")
        await s.compact(point)
        live = s.watch("/h/", point)
        expected = [(e.type, e.key, e.value, e.prev_value) for e in [await live.next(1) for _ in range(3)]]
        live.close()
        await s.close()
        s2 = await make_store()
        w = s2.watch("/h/", point)
        got = [(e.type, e.key, e.value, e.prev_value) for e in [await w.next(1) for _ in range(3)]]
        w.close()
        await s2.close()
        assert got == expected == [(PUT, "/h/a", b"a2", b"a1"), (DELETE, "/h/b", b"b2", b"b2"),
                                   (PUT, "/h/c", b"c1", None)]
        db = sqlite3.connect(str(tmp_path / "state.db"))
        kept = sorted(v for (v,) in db.execute("SELECT value FROM log WHERE key LIKE '/h/%'"))
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        db.close()
        assert page_size == 16384   # a new database's pages: fewer WAL frames per commit
        # b1 went with the compaction; a1 and b2 stay for the events after it (the deletion
        # stores no value of its own).
        assert kept == [b"", b"a1", b"a2", b"b2", b"c1"]
    run(body())


def test_a_database_with_values_in_kv_is_moved_to_the_log(tmp_path):
    """Databases written before the `live` table kept every value in `kv`; opening one moves
    them to the change log (the compacted part) and keeps history and revisions as they were."""
    path = str(tmp_path / "state.db")
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, create_rev INTEGER NOT NULL,
                         mod_rev INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE log (rev INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL,
                          value BLOB NOT NULL, prev BLOB, create_rev INTEGER NOT NULL, ts REAL NOT NULL);
        CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO kv VALUES ('/o/a', X'61', 2, 2), ('/o/b', X'6232', 3, 5);
        INSERT INTO log VALUES (4, '/o/c', 0, X'63', NULL, 4, 1.0), (5, '/o/b', 0, X'6232', X'62', 3, 1.0),
                               (6, '/o/c', 1, X'63', X'63', 4, 1.0);
        INSERT INTO meta VALUES ('rev', 6), ('compact', 3);
    """)
    db.commit()
    db.close()

    async def body():
        s = SqliteStore(path)
        assert s.revision == 6 and s.compacted_revision == 3
        items, _, _ = await s.list("/o/")
        assert [(kv.key, kv.value, kv.create_revision, kv.mod_revision) for kv in items] == [
            ("/o/a", b"a", 2, 2), ("/o/b", b"b2", 3, 5)]
        w = s.watch("/o/", 3)
        evs = [await w.next(1) for _ in range(3)]
        # Rows of that time carry their previous values (and a deletion's value) themselves.
        assert [(e.type, e.key, e.revision, e.value, e.prev_value) for e in evs] == [
            (PUT, "/o/c", 4, b"c", None), (PUT, "/o/b", 5, b"b2", b"b"), (DELETE, "/o/c", 6, b"c", b"c")]
        w.close()
        await s.update("/o/a", b"a2")
        await s.close()
        s2 = SqliteStore(path)
        items, _, _ = await s2.list("/o/")
        assert [(kv.key, kv.value) for kv in items] == [("/o/a", b"a2"), ("/o/b", b"b2")]
        await s2.close()
    run(body())
    db = sqlite3.connect(path)
    assert not db.execute("SELECT 1 FROM sqlite_master WHERE name='kv'").fetchone()
    db.close()


def test_time_window_compaction(make_store):
    now = [1000.0]

    async def body():
        s = await make_store(compaction_window=1.0, clock=lambda: now[0])
        r = await s.create("/t/a", b"v")
        now[0] += 10
        await s.create("/t/b", b"v")
        # The compactor runs every second at this window size.
        for _ in range(60):
            if s.compacted_revision >= r:
                break
            await asyncio.sleep(0.1)
        assert s.compacted_revision == r
        await s.close()
    run(body())


_KILL_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from pocketkube.store.sqlite import SqliteStore
    async def main():
        s = SqliteStore(sys.argv[1])
        n = 0
        while True:
            await s.create(f"/durable/{n:06d}", b"x" * 100)
            print(n, flush=True)   # printed only after the write was acknowledged
            n += 1
    asyncio.run(main())
""")


def test_acknowledged_writes_survive_kill_9(tmp_path):
    path = str(tmp_path / "state.db")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    p = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, path], stdout=subprocess.PIPE, env=env)
    acked = -1
    for line in p.stdout:
        acked = int(line)
        if acked >= 300:
            break
    p.send_signal(signal.SIGKILL)
    p.wait()

    async def check():
        s = SqliteStore(path)
        assert await s.count("/durable/") >= acked + 1
        for i in range(acked + 1):
            assert await s.get(f"/durable/{i:06d}") is not None
        await s.close()
    run(check())


def _writer_pids(path: str) -> list[int]:
    """The store writer processes (sqlwriter.py) working on the database at `path`."""
    pids = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"sqlwriter.py") for a in argv) and path.encode() in argv:
            pids.append(int(p))
    return pids


def _wait_until(check, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_writer_killed_mid_batch_fails_that_batch_and_is_replaced(tmp_path):
    """A batch its writer never committed fails as a storage error; nothing stored changes,
    and the next write gets a new writer."""
    path = str(tmp_path / "state.db")

    async def body():
        s = SqliteStore(path)
        r1 = await s.create("/x/a", b"old")
        [pid] = _writer_pids(path)
        os.kill(pid, signal.SIGSTOP)
        pending = asyncio.ensure_future(s.update("/x/a", b"lost"))
        while not s._inflight:   # the batch reaches the writer, which never runs it
            await asyncio.sleep(0.001)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(StoreError, match="storage failure"):
            await pending
        assert (await s.get("/x/a")).value == b"old" and s.revision == r1
        r2 = await s.update("/x/a", b"new", expected_revision=r1)
        assert r2 == r1 + 1 and (await s.get("/x/a")).value == b"new"
        assert len(_writer_pids(path)) == 1 and pid not in _writer_pids(path)
        await s.close()
        s2 = SqliteStore(path)
        kv = await s2.get("/x/a")
        assert (kv.value, kv.mod_revision) == (b"new", r2)
        await s2.close()
    run(body())


_COMMIT_THEN_DIE = textwrap.dedent("""
    import marshal, os, socket, sqlite3, sys
    sys.path.insert(0, {dir!r})
    import sqlwriter
    sock = socket.socket(fileno=int(sys.argv[1]))
    db = sqlite3.connect(sys.argv[2], isolation_level=None)
    f = sock.makefile("rb")
    n = sqlwriter.HEADER.unpack(f.read(sqlwriter.HEADER.size))[0]
    sqlwriter.write(db, marshal.loads(f.read(n)))
    os._exit(1)   # committed, never answered
""")


def _writer_script(tmp_path, text: str) -> str:
    """A stand-in for the store's writer (`text` formatted with the real one's directory)."""
    import pocketkube.store.sqlite as sqlite_store
    script = tmp_path / "writer.py"
    script.write_text(text.format(dir=os.path.dirname(sqlite_store._WRITER)))
    return str(script)


def test_writer_dying_after_its_commit_still_publishes_the_batch(tmp_path, monkeypatch):
    import pocketkube.store.sqlite as sqlite_store
    script = _writer_script(tmp_path, _COMMIT_THEN_DIE)
    path = str(tmp_path / "state.db")

    async def body():
        monkeypatch.setattr(sqlite_store, "_WRITER", script)
        s = SqliteStore(path)
        w = s.watch("/y/", s.revision)
        r = await s.create("/y/a", b"kept")
        assert (await s.get("/y/a")).value == b"kept" and s.revision == r
        assert (await w.next(1)).revision == r
        monkeypatch.undo()
        assert await s.create("/y/b", b"next") == r + 1
        w.close()
        await s.close()
    run(body())


_FAIL_FIRST = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {dir!r})
    import sqlwriter
    real = sqlwriter.write
    calls = []

    def write(db, batch):
        calls.append(batch)
        if len(calls) == 1:
            time.sleep(0.3)   # the next batch is checked and sent meanwhile
            raise OSError("disk full")
        real(db, batch)
    sqlwriter.write = write
    sqlwriter.main()
""")


def test_a_failed_batch_fails_the_batch_sent_after_it(tmp_path, monkeypatch):
    """With two batches at the writer, the second was checked as if the first had happened:
    when the first fails, so does the second, nothing of either is published, and the next
    write follows what is."""
    import pocketkube.store.sqlite as sqlite_store
    script = _writer_script(tmp_path, _FAIL_FIRST)
    path = str(tmp_path / "state.db")

    async def body():
        monkeypatch.setattr(sqlite_store, "_WRITER", script)
        s = SqliteStore(path)
        w = s.watch("/z/", s.revision)
        first = asyncio.ensure_future(s.create("/z/a", b"1"))
        while not s._inflight:
            await asyncio.sleep(0.001)
        # Checked against the unpublished create: an update of it at its revision passes.
        second = asyncio.ensure_future(s.update("/z/a", b"2", expected_revision=s.revision + 1))
        while len(s._inflight) < 2:
            await asyncio.sleep(0.001)
        assert await s.get("/z/a") is None
        for fut in (first, second):
            with pytest.raises(StoreError, match="storage failure"):
                await fut
        assert await s.get("/z/a") is None and await w.next(0.05) is None
        r = await s.create("/z/a", b"3")
        assert r == s.revision and (await w.next(1)).value == b"3"
        w.close()
        await s.close()
        s2 = SqliteStore(path)
        kv = await s2.get("/z/a")
        assert (kv.value, kv.mod_revision) == (b"3", r)
        await s2.close()
    run(body())


def test_close_answers_writes_still_waiting(make_store):
    """Writes accepted before close are answered, also those that fail their checks."""
    async def body():
        s = await make_store()
        await s.create("/q/a", b"1")
        taken = asyncio.ensure_future(s.create("/q/a", b"2"))
        fresh = asyncio.ensure_future(s.create("/q/b", b"3"))
        await asyncio.sleep(0)   # both submitted, neither sent yet
        await asyncio.wait_for(s.close(), 10)
        with pytest.raises(KeyExists):
            await taken
        assert isinstance(await fresh, int)
    run(body())


def test_writer_exits_with_the_store_and_with_its_process(tmp_path):
    path = str(tmp_path / "state.db")

    async def closed():
        s = SqliteStore(path)
        await s.create("/z/a", b"v")
        assert len(_writer_pids(path)) == 1
        await s.close()
        assert _writer_pids(path) == []
    run(closed())
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    p = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, path], stdout=subprocess.PIPE, env=env)
    for line in p.stdout:
        if int(line) >= 10:
            break
    assert len(_writer_pids(path)) == 1
    p.send_signal(signal.SIGKILL)
    p.wait()
    _wait_until(lambda: not _writer_pids(path), "the writer outlived the store's process")
