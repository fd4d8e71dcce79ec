"""Time as a dependency: every component asks a `Clock`, never the `time` module.

Back-offs, deadlines, CronJob schedules, node heartbeats and object timestamps all read the
clock they are given, so tests can run minutes of cluster time in milliseconds with
`FakeClock.advance()` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import time
from datetime import datetime, timezone


@functools.lru_cache(maxsize=256)
def _rfc3339_seconds(t: int) -> str:
    # Every write stamps a time, and most stamps of a busy second are the same string.
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """Wall-clock time and sleeping."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, t: float) -> None:
        """Until clock time `t`. A timer armed in one place and started as a task later must use
        this: a delay computed beforehand goes stale if time moves before the task runs."""
        await self.sleep(t - self.now())

    def rfc3339(self, ts: float | None = None) -> str:
        """Kubernetes metav1.Time form: second precision, UTC, 'Z'."""
        return _rfc3339_seconds(int(self.now() if ts is None else ts))

    def rfc3339_micro(self, ts: float | None = None) -> str:
        """metav1.MicroTime form, used by Leases and events.k8s.io Events."""
        t = self.now() if ts is None else ts
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeClock(Clock):
    """A clock that moves only when told to; sleepers wake as time passes them."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + seconds)

    async def sleep_until(self, t: float) -> None:
        if t <= self._now:
            await asyncio.sleep(0)
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (t, next(self._seq), fut))
        await fut

    def advance(self, seconds: float) -> None:
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)


def parse_rfc3339(text: str | None) -> float | None:
    """Seconds since the epoch for a metav1.Time / MicroTime string (None if absent or bad)."""
    if not text:
        return None
    return _parse_rfc3339(text)


# Objects made together share their timestamps (whole seconds): thousands of pods of one
# ReplicaSet carry a few dozen distinct strings, which rankings and status checks parse over and over.
@functools.lru_cache(maxsize=4096)
def _parse_rfc3339(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
