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

from pocketkube.store import DELETE, PUT, Compacted, KeyExists, KeyNotFound, RevisionMismatch
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
        await asyncio.sleep(0)   # the op reaches the writer's queue
        probe = sqlite3.connect(str(tmp_path / "state.db"))
        deadline = time.monotonic() + 10
        while probe.execute("SELECT value FROM kv WHERE key='/m/a'").fetchone()[0] != b"new":
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
