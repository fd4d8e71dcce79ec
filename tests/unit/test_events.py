"""Event pacing: token buckets, the kubelet's and the scheduler's event rate, the 1,000-event queue."""

from __future__ import annotations

import asyncio

import pytest

from pocketkube.agent.events import EventRecorder as KubeletRecorder
from pocketkube.api.core import Api
from pocketkube.client.events import EventRecorder
from pocketkube.client.inprocess import InProcessClient
from pocketkube.client.ratelimit import TokenBucket
from pocketkube.clock import FakeClock
from pocketkube.store.sqlite import SqliteStore
from tests.unit.harness import run


def test_token_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    b = TokenBucket(2.0, 3, lambda: now[0])
    assert [b.allow() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5     # one token back
    assert b.allow() and not b.allow()
    now[0] += 100     # never more than the burst saved up
    assert sum(b.allow() for _ in range(10)) == 3


def test_token_bucket_reservations_queue_up_behind_each_other():
    now = [10.0]
    b = TokenBucket(4.0, 2, lambda: now[0])
    assert [b.reserve() for _ in range(5)] == [0.0, 0.0, 0.25, 0.5, 0.75]
    now[0] += 0.75    # the debt is paid off: the next token is due a quarter second later
    assert b.reserve() == pytest.approx(0.25)


async def _cluster(tmp_path):
    store = SqliteStore(str(tmp_path / "s.db"))
    api = Api(store, FakeClock())
    await api.bootstrap()
    return store, InProcessClient(api)


def _pod(i: int) -> dict:
    return {"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "default", "uid": f"u{i}"},
            "spec": {"containers": [{"name": "c"}]}}


def test_kubelet_events_go_out_at_the_event_rate_after_a_burst(tmp_path):
    async def main():
        store, c = await _cluster(tmp_path)
        # The injected clock stands still: pacing is in real time, so events still flow.
        rec = KubeletRecorder(c, "n1", FakeClock(), qps=20, burst=2)
        rec.start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(6):
            rec.pod_event(_pod(i), "Normal", "Started", "Started container c", "c")
        await asyncio.wait_for(rec.flush(), 10)
        # Two at once, then four more at 20 a second.
        assert loop.time() - t0 >= 4 / 20 - 0.01
        assert len((await c.list("events", "default"))["items"]) == 6
        await rec.stop()
        await store.close()
    run(main())


def test_events_beyond_a_thousand_pending_are_dropped(tmp_path):
    async def main():
        store, c = await _cluster(tmp_path)
        rec = EventRecorder(c, FakeClock(), "default-scheduler")
        rec.start()
        # Recorded without yielding, as a scheduler placing a burst of pods: nothing is written yet.
        for i in range(1005):
            rec.event(_pod(i), "Normal", "Scheduled", "Scheduled", f"Successfully assigned default/p{i} to n1")
        await asyncio.wait_for(rec.flush(), 30)
        items = (await c.list("events", "default"))["items"]
        # The first thousand are kept, the five after them are not.
        assert sorted(e["involvedObject"]["name"] for e in items) == sorted(f"p{i}" for i in range(1000))
        await rec.stop()
        await store.close()
    run(main())
