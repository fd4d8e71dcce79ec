"""A keyed work queue with rate-limited retries, as client-go's workqueue.

Handlers only enqueue keys; workers pop a key and sync it. A key is never processed by two
workers at once: if it is added again while being processed it is marked dirty and handed out
once the current sync finishes, so a burst of changes to one object becomes one extra sync.
Failures are retried with per-key exponential back-off (5 ms doubling up to 1000 s, as
client-go's default controller rate limiter), measured on the injected clock.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Awaitable, Callable

from ..clock import Clock

log = logging.getLogger("pocketkube.workqueue")


class WorkQueue:
    def __init__(self, name: str = "", clock: Clock | None = None, base_delay: float = 0.005,
                 max_delay: float = 1000.0):
        self.name = name
        self.clock = clock or Clock()
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: collections.deque[str] = collections.deque()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        # Delayed adds, one per key (client-go's delaying queue): the earliest ready time wins.
        self._waiting: dict[str, tuple[float, asyncio.Task]] = {}
        self._wakeup = asyncio.Event()
        self._shutdown = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if self._shutdown:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.append(key)
            self._wakeup.set()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        if self._shutdown:
            return
        at = self.clock.now() + delay
        pending = self._waiting.get(key)
        if pending is not None:
            if pending[0] <= at:
                return
            pending[1].cancel()

        async def later():
            await self.clock.sleep_until(at)
            if self._waiting.get(key, (None, None))[1] is task:
                del self._waiting[key]
            self.add(key)
        task = asyncio.get_running_loop().create_task(later())
        self._waiting[key] = (at, task)

    def add_rate_limited(self, key: str) -> None:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.add_after(key, min(self.base_delay * (2 ** n), self.max_delay))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def retries(self, key: str) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> str | None:
        while not self._queue:
            if self._shutdown:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._queue.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def shutdown(self) -> None:
        self._shutdown = True
        for _, task in self._waiting.values():
            task.cancel()
        self._waiting.clear()
        self._wakeup.set()


async def run_workers(queue: WorkQueue, sync: Callable[[str], Awaitable[None]], workers: int = 1) -> None:
    """Run `workers` loops that sync keys until the queue shuts down; failed keys are retried."""
    async def worker():
        while True:
            key = await queue.get()
            if key is None:
                return
            try:
                await sync(key)
                queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("%s: sync %s failed (retry %d): %s", queue.name, key, queue.retries(key) + 1, e)
                queue.add_rate_limited(key)
            finally:
                queue.done(key)
    await asyncio.gather(*(worker() for _ in range(workers)))
