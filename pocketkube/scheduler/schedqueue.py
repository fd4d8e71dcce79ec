"""The scheduling queue: which pending pod to try next, and when to try a failed one again.

Shaped like kube-scheduler's PriorityQueue, with its three parts:

- active: pods ready to be tried, highest `spec.priority` first, then first come first served;
- backoff: pods that failed recently and wait out a per-pod back-off (1 s doubling to 10 s with
  each attempt) before becoming active again;
- unschedulable: pods no node could take. They stay parked until a cluster change that could
  help them happens (a node added or changed, capacity freed by a pod going away, a volume
  or claim changing), then move to active, or to backoff if their back-off has not passed.
  Pods parked longer than `flush_after` are retried anyway, as upstream's periodic flush does,
  so a missed change can delay a pod but never strand it.

A pod is in at most one part at a time; the heaps use lazy deletion so that every operation
is O(log n) and the idle queue costs nothing but a one-second tick.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from ..clock import Clock

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "in-flight"


class QueuedPod:
    __slots__ = ("key", "priority", "attempts", "last_attempt", "plugins", "where", "seq", "parked_at")

    def __init__(self, key: str, priority: int):
        self.key = key
        self.priority = priority
        self.attempts = 0
        self.last_attempt = 0.0
        self.plugins: frozenset = frozenset()
        self.where = ""
        self.seq = 0
        self.parked_at = 0.0


class SchedulingQueue:
    def __init__(self, clock: Clock, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 flush_after: float = 30.0):
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.flush_after = flush_after
        self.pods: dict[str, QueuedPod] = {}
        self._parked: dict[str, QueuedPod] = {}   # the unschedulable part ...
        self._by_plugin: dict[str, dict[str, QueuedPod]] = {}   # ... indexed by rejecting plugin
        self._active: list = []
        self._backoff: list = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self.pods)

    def where(self, key: str) -> str | None:
        q = self.pods.get(key)
        return q.where if q else None

    # ---- moving pods between the parts -----------------------------------------------------------

    def backoff_duration(self, attempts: int) -> float:
        d = self.initial_backoff
        for _ in range(1, attempts):
            if d > self.max_backoff - d:
                return self.max_backoff
            d += d
        return min(d, self.max_backoff)

    def _unpark(self, q: QueuedPod) -> None:
        if self._parked.pop(q.key, None) is not None:
            for p in q.plugins:
                bucket = self._by_plugin.get(p)
                if bucket is not None:
                    bucket.pop(q.key, None)

    def _to_active(self, q: QueuedPod) -> None:
        self._unpark(q)
        q.where = ACTIVE
        q.seq = next(self._seq)
        heapq.heappush(self._active, (-q.priority, q.seq, q.key))
        self._wakeup.set()

    def _to_backoff(self, q: QueuedPod, ready: float) -> None:
        self._unpark(q)
        q.where = BACKOFF
        q.seq = next(self._seq)
        heapq.heappush(self._backoff, (ready, q.seq, q.key))

    def _requeue(self, q: QueuedPod) -> None:
        """Active if its back-off is over, backoff otherwise."""
        ready = q.last_attempt + self.backoff_duration(q.attempts) if q.attempts else 0.0
        if ready <= self.clock.now():
            self._to_active(q)
        else:
            self._to_backoff(q, ready)

    # ---- what the informer handlers call -----------------------------------------------------------

    def add(self, key: str, priority: int, changed: bool = True) -> None:
        """A pending pod was seen; `changed`: its spec or labels differ from last time."""
        q = self.pods.get(key)
        if q is None:
            q = self.pods[key] = QueuedPod(key, priority)
            self._to_active(q)
            return
        if priority != q.priority and q.where == ACTIVE:
            q.priority = priority
            self._to_active(q)
        q.priority = priority
        if changed and q.where == UNSCHEDULABLE:
            self._requeue(q)

    def delete(self, key: str) -> None:
        q = self.pods.pop(key, None)
        if q is not None:
            self._unpark(q)

    def move(self, plugins: frozenset | None = None) -> int:
        """A cluster change that could help pods rejected by `plugins` (None: any pod)."""
        if not self._parked:
            return 0
        if plugins is None:
            moving = list(self._parked.values())
        else:
            found: dict[str, QueuedPod] = {}
            for p in plugins:
                found.update(self._by_plugin.get(p) or {})
            moving = list(found.values())
        for q in moving:
            self._requeue(q)
        return len(moving)

    # ---- what the scheduling loop calls ----------------------------------------------------------

    async def pop(self) -> str | None:
        """The next pod to schedule, waiting for one; None once closed."""
        while True:
            key = self.pop_ready()
            if key is not None:
                return key
            if self._closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()

    def pop_ready(self) -> str | None:
        """The next pod to schedule if one is waiting now."""
        while self._active:
            _, seq, key = heapq.heappop(self._active)
            q = self.pods.get(key)
            if q is not None and q.where == ACTIVE and q.seq == seq:
                q.where = IN_FLIGHT
                q.attempts += 1
                q.last_attempt = self.clock.now()
                return key
        return None

    def done(self, key: str) -> None:
        """Scheduled (or no longer ours): the pod leaves the queue."""
        self.delete(key)

    def unschedulable(self, key: str, plugins: frozenset) -> None:
        q = self.pods.get(key)
        if q is None:
            return
        self._unpark(q)
        q.plugins = plugins
        q.where = UNSCHEDULABLE
        q.parked_at = self.clock.now()
        self._parked[key] = q
        for p in plugins:
            self._by_plugin.setdefault(p, {})[key] = q

    def retry(self, key: str, priority: int | None = None) -> None:
        """An error (or a failed binding): try again after the back-off."""
        q = self.pods.get(key)
        if q is None:
            q = self.pods[key] = QueuedPod(key, priority or 0)
            q.attempts = 1
            q.last_attempt = self.clock.now()
        self._to_backoff(q, q.last_attempt + self.backoff_duration(q.attempts))

    def flush(self) -> None:
        """The periodic tick: back-offs that ended, and pods parked too long."""
        now = self.clock.now()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            q = self.pods.get(key)
            if q is not None and q.where == BACKOFF and q.seq == seq:
                self._to_active(q)
        if self._parked:
            for q in [q for q in self._parked.values() if now - q.parked_at >= self.flush_after]:
                self._requeue(q)

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()
