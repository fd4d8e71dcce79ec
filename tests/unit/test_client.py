"""Client pieces: in-process client, informer (list, watch, relist after 410) and work queue."""

from __future__ import annotations

import asyncio

from pocketkube.api.core import Api
from pocketkube.client.informer import Informer
from pocketkube.client.inprocess import InProcessClient
from pocketkube.client.workqueue import WorkQueue, run_workers
from pocketkube.clock import FakeClock
from pocketkube.store.sqlite import SqliteStore
from tests.unit.harness import ControllerEnv


def cm(name, **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def in_process(tmp_path):
    """A store, and an in-process client over a bootstrapped API on it."""
    store = SqliteStore(str(tmp_path / "s.db"))
    api = Api(store)
    await api.bootstrap()
    return store, InProcessClient(api)


async def until(pred, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.01)


def test_informer_follows_changes_and_recovers_from_compaction(tmp_path):
    async def main():
        store, c = await in_process(tmp_path)
        await c.create("configmaps", "default", cm("a", x="1"))
        inf = Informer(c, "configmaps", "default", watch_timeout=0.5)
        events = []
        inf.add_handler(lambda t, old, new: events.append((t, (new or old)["metadata"]["name"])))
        inf.start()
        await inf.wait_synced(5)
        assert events == [("ADDED", "a")]
        await c.patch("configmaps", "default", "a", {"data": {"x": "2"}})
        await c.create("configmaps", "default", cm("b"))
        await c.delete("configmaps", "default", "a")
        await until(lambda: len(events) == 4)
        assert events[1:] == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
        assert set(inf.cache) == {"default/b"}
        # Compact past the informer's revision while it is between watches: it must relist.
        await inf.stop()
        await c.create("configmaps", "default", cm("c"))
        await c.delete("configmaps", "default", "b")
        await store.compact(store.revision)
        inf.start()
        await until(lambda: set(inf.cache) == {"default/c"})
        assert ("DELETED", "b") in events and ("ADDED", "c") in events
        await inf.stop()
        await store.close()
    asyncio.run(main())


def test_workqueue_dedupes_serialises_and_retries():
    async def main():
        clock = FakeClock()
        q = WorkQueue("t", clock)
        running: set[str] = set()
        calls: list[str] = []
        fail_once = {"b"}

        async def sync(key):
            assert key not in running  # never two workers on one key
            running.add(key)
            calls.append(key)
            await asyncio.sleep(0.01)
            running.discard(key)
            if key in fail_once:
                fail_once.discard(key)
                raise RuntimeError("boom")
        task = asyncio.create_task(run_workers(q, sync, workers=3))
        for k in ("a", "a", "b", "a"):
            q.add(k)
        await until(lambda: calls.count("a") >= 1 and "b" in calls)
        q.add("a")  # while possibly processing: marked dirty, synced again afterwards
        await until(lambda: calls.count("a") == 2)
        assert calls.count("b") == 1
        clock.advance(1)  # the failed key comes back after its back-off
        await until(lambda: calls.count("b") == 2)
        q.shutdown()
        await asyncio.wait_for(task, 2)
    asyncio.run(main())


def test_workqueue_delayed_adds_keep_one_timer_per_key_the_earliest():
    async def main():
        clock = FakeClock()
        q = WorkQueue("t", clock)
        q.add_after("k", 10)
        q.add_after("k", 20)      # later than the pending one: nothing new
        q.add_after("k", 5)       # earlier: replaces it
        await asyncio.sleep(0)
        clock.advance(5)
        await until(lambda: len(q) == 1)
        assert await q.get() == "k"
        q.done("k")
        clock.advance(20)         # the replaced timers never fire
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(q) == 0
        q.add_after("x", 1)
        q.shutdown()              # pending timers go with the queue
        clock.advance(2)
        await asyncio.sleep(0)
        assert len(q) == 0
    asyncio.run(main())


def test_delayed_add_is_due_when_armed_even_if_time_moves_before_its_timer_runs():
    async def main():
        clock = FakeClock()
        q = WorkQueue("t", clock)
        q.add_after("k", 5)
        clock.advance(3)          # before the timer's task has run once (a busy loop)
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(q) == 0
        clock.advance(2)          # five seconds after it was armed
        await until(lambda: len(q) == 1, timeout=2)
    asyncio.run(main())


def test_handler_added_to_a_synced_informer_hears_the_cache_first(tmp_path):
    # As client-go's shared informers: a late handler gets every cached object as ADDED, then
    # the changes after it, never a change to an object it has not heard of.
    async def main():
        async with ControllerEnv(tmp_path) as env:
            await late_handler(env.c)

    async def late_handler(c):
        await c.create("configmaps", "default", cm("a"))
        await c.create("configmaps", "default", cm("b"))
        inf = Informer(c, "configmaps", "default")
        inf.start()
        await inf.wait_synced(5)
        late = []
        inf.add_handler(lambda t, old, new: late.append((t, (new or old)["metadata"]["name"])))
        assert sorted(late) == [("ADDED", "a"), ("ADDED", "b")]
        await c.patch("configmaps", "default", "a", {"data": {"x": "2"}})
        await until(lambda: len(late) == 3)
        assert late[2] == ("MODIFIED", "a")

        async def coroutine_handler(t, old, new):
            pass
        try:
            inf.add_handler(coroutine_handler)
        except TypeError:
            pass
        else:
            raise AssertionError("a coroutine handler added late must be refused")
        await inf.stop()
    asyncio.run(main())


def test_writes_without_a_result_hand_their_object_to_the_watchers(tmp_path, monkeypatch):
    """An in-process write with result=False (and every binding) returns nothing and gives the
    object written to the watchers: each event's object is exactly what decoding the stored
    value gives, resourceVersion included, and no decode was needed for it. A binding, and a
    delete without a result, read the watchers' copy instead of decoding, and do not change it."""
    import orjson
    from pocketkube.api import objects

    async def main():
        store, c = await in_process(tmp_path)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        created = await c.create("pods", "default", pod, result=False)   # read-only: the watchers' too
        assert created["metadata"]["name"] == "p" and created is not pod
        start = store.revision
        decodes = []
        real, real_decode = objects.decode_value, objects.decode
        monkeypatch.setattr(objects, "decode_value", lambda v, r: decodes.append(r) or real(v, r))
        watch = c.watch("pods", "default", resource_version=str(start))
        created_before = orjson.dumps(created)
        monkeypatch.setattr(objects, "decode", lambda kv: decodes.append(kv.mod_revision) or real_decode(kv))
        await c.bind("default", "p", "n1")   # reads the watchers' copy of the created pod
        assert decodes == [] and orjson.dumps(created) == created_before
        got = await c.get("pods", "default", "p")
        decodes.clear()   # a get decodes: its caller may change what it gets
        # From here on the status update and the deletes read the watchers' copy.
        async for ev in watch:
            bound = ev["object"]
            break
        bound_before = orjson.dumps(bound)
        got["status"] = dict(got.get("status") or {}, phase="Running")
        assert await c.update_status("pods", "default", got, result=False) is None
        assert await c.delete("pods", "default", "p", result=False) is None   # graceful: an update
        seen = [bound]
        async for ev in watch:
            seen.append(ev["object"])
            if len(seen) == 3:
                break
        assert orjson.dumps(bound) == bound_before   # read, never changed
        # The final delete reads the watchers' copy and leaves it as it was.
        last_rv = seen[2]["metadata"]["resourceVersion"]
        assert await c.delete("pods", "default", "p", grace_period_seconds=0, result=False) is None
        async for ev in watch:   # carrying the deletion's revision, from the same copy
            gone = ev["object"]
            assert ev["type"] == "DELETED" and int(gone["metadata"]["resourceVersion"]) > int(last_rv)
            assert {**gone, "metadata": {**gone["metadata"], "resourceVersion": last_rv}} == seen[2]
            break
        assert decodes == [] and seen[2]["metadata"]["resourceVersion"] == last_rv
        assert [o["spec"].get("nodeName") for o in seen] == ["n1"] * 3
        assert seen[1]["status"]["phase"] == "Running" and seen[2]["metadata"]["deletionTimestamp"]
        for o in seen:
            rev = int(o["metadata"]["resourceVersion"])
            value = next(e.value for e in store._history("/core/pods/", start) if e.revision == rev)
            assert orjson.dumps(o) == orjson.dumps(real(value, rev))
        await store.close()
    asyncio.run(main())


def test_a_create_without_a_result_returns_the_watchers_object(tmp_path, monkeypatch):
    """The created object (read-only) is what the watchers get: no decode for its event."""
    from pocketkube.api import objects

    async def main():
        store, c = await in_process(tmp_path)
        watch = c.watch("configmaps", "default", resource_version=str(store.revision))
        decodes = []
        real = objects.decode_value
        monkeypatch.setattr(objects, "decode_value", lambda v, r: decodes.append(r) or real(v, r))
        body = cm("a", x="1")
        created = await c.create("configmaps", "default", body, result=False)
        async for ev in watch:
            assert ev["type"] == "ADDED" and ev["object"] is created
            break
        assert decodes == [] and created is not body and created["metadata"]["resourceVersion"]
        await store.close()
    asyncio.run(main())


def test_a_delete_reads_the_callers_watched_copy_when_it_is_current(tmp_path, monkeypatch):
    """A delete without a result given the caller's watched copy reads it when it is the stored
    revision (no decode, even once the watchers' copy is gone from DecodedEvents), and leaves it
    unchanged; a stale copy is not read."""
    import orjson
    from pocketkube.api import objects

    async def main():
        store, c = await in_process(tmp_path)
        watch = c.watch("pods", "default", resource_version=str(store.revision))
        for name in ("a", "b"):
            await c.create("pods", "default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                               "spec": {"nodeName": "n1",   # graceful deletion
                                                        "containers": [{"name": "c", "image": "busybox"}]}},
                           result=False)
        watched = {}
        async for ev in watch:
            watched[ev["object"]["metadata"]["name"]] = ev["object"]
            if len(watched) == 2:
                break
        b = await c.get("pods", "default", "b")
        await c.update("pods", "default", dict(b, metadata=dict(b["metadata"], labels={"x": "y"})))
        c.api.decoded_events = type(c.api.decoded_events)()   # the watchers' copies are gone
        decodes = []
        real = objects.decode_value
        monkeypatch.setattr(objects, "decode_value", lambda v, r: decodes.append(r) or real(v, r))
        before = orjson.dumps(watched["a"])
        await c.delete("pods", "default", "a", result=False, current=watched["a"])
        assert decodes == [] and orjson.dumps(watched["a"]) == before
        assert (await c.get("pods", "default", "a"))["metadata"]["deletionTimestamp"]
        # b's watched copy is of an older revision than the stored one: it is not read.
        await c.delete("pods", "default", "b", result=False, current=watched["b"])
        assert len(decodes) == 1
        got = await c.get("pods", "default", "b")
        assert got["metadata"]["deletionTimestamp"] and got["metadata"]["labels"] == {"x": "y"}
        await store.close()
    asyncio.run(main())
