"""Events that components report on objects ("Scheduled", "FailedScheduling", "SuccessfulCreate", ...).

Recording an event must never slow a decision, so `event()` only queues it and a
few workers write them. Repeats of the same event on the same pod (a pod retried while it stays
unschedulable) are folded into the existing Event by raising its `count` and `lastTimestamp`,
which is what `kubectl describe` shows as "(x4 over 2m)", instead of piling up new objects.

A component may be given its event client's rate (`qps`, `burst`): the scheduler's events go out
as kube-scheduler's do, at most 50 a second after a burst of 100, so a burst of pods is bound
before its "Scheduled" events are written. As client-go's broadcaster, at most 1,000 events wait;
beyond that they are dropped (a cluster placing 10,000 pods at once keeps a fraction of them).

The Event carries both the core/v1 fields (`source.component`, first/last timestamps, count)
and the events.k8s.io ones (`eventTime`, `action`, `reportingComponent`, `reportingInstance`),
so either API and either generation of tools show who reported it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket

from ..api.errors import ApiError
from ..client import MERGE, Client
from ..clock import Clock
from .ratelimit import TokenBucket

log = logging.getLogger("pocketkube.events")

_MAX_PENDING = 1000   # client-go's maxQueuedEvents
_MAX_REMEMBERED = 4096


class EventRecorder:
    def __init__(self, client: Client, clock: Clock, component: str, workers: int = 8,
                 qps: float = 0.0, burst: int = 0):
        self.client = client
        self.clock = clock
        self.component = component
        self.instance = f"{component}-{socket.gethostname()}"
        self.workers = workers
        self._queue: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        # (uid, type, reason, message) -> [namespace, name, count]
        self._seen: collections.OrderedDict = collections.OrderedDict()
        self._last_ns = 0
        # Real time, not the injected clock: a frozen test clock must not stop events.
        self._bucket = TokenBucket(qps, burst) if qps > 0 else None
        self._dropped = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work(), name=f"{self.component}-events-{i}")
                       for i in range(self.workers)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []

    async def flush(self) -> None:
        """Wait until every queued event is written (tests, shutdown)."""
        await self._queue.join()

    def event(self, obj: dict, type_: str, reason: str, action: str, message: str) -> None:
        if self._queue.qsize() >= _MAX_PENDING:
            self._dropped += 1
            if self._dropped == 1:   # once per overflow, not once per event
                log.warning("%s: dropping events (%s for %s first): more than %d pending", self.component,
                            reason, obj["metadata"].get("name"), _MAX_PENDING)
            return
        self._dropped = 0
        meta = obj["metadata"]
        ref = {"kind": obj.get("kind") or "Pod", "namespace": meta.get("namespace"), "name": meta.get("name"),
               "uid": meta.get("uid"), "apiVersion": obj.get("apiVersion") or "v1",
               "resourceVersion": meta.get("resourceVersion")}
        self._queue.put_nowait((ref, type_, reason, action, message))

    def _name(self, base: str) -> str:
        # Upstream names events <object>.<unix nanoseconds in hex>; keep them unique per process.
        ns = max(int(self.clock.now() * 1e9), self._last_ns + 1)
        self._last_ns = ns
        return f"{base}.{ns:x}"

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if self._bucket is not None:
                    await self._bucket.wait()
                await self._write(*item)
            except asyncio.CancelledError:
                raise
            except ApiError as e:  # an event is best effort, as upstream's broadcaster...
                # ...but a rejected one is a bug in its reporter: say so.
                log.log(logging.WARNING if e.code == 422 else logging.DEBUG, "writing event %s failed: %s",
                        item[2], e)
            except Exception as e:
                log.debug("writing event failed: %r", e)
            finally:
                self._queue.task_done()

    async def _write(self, ref: dict, type_: str, reason: str, action: str, message: str) -> None:
        ns = ref["namespace"] or "default"
        key = (ref["uid"], type_, reason, message)
        now = self.clock.rfc3339()
        seen = self._seen.get(key)
        if seen is not None:
            seen[2] += 1
            self._seen.move_to_end(key)
            try:
                await self.client.patch("events", seen[0], seen[1], {"count": seen[2], "lastTimestamp": now}, MERGE)
                return
            except ApiError as e:
                if e.code != 404:
                    raise
                del self._seen[key]
        for attempt in range(4):
            name = self._name(ref["name"])
            try:
                await self.client.create("events", ns, self._body(ref, ns, name, type_, reason, action, message, now))
                break
            except ApiError as e:
                # Another recorder named an event for the same object in the same nanosecond
                # (a frozen test clock, two components in one process): take a later name.
                if e.code != 409 or attempt == 3:
                    raise
                self._last_ns += random.randint(1, 1 << 20)
        if type_ == "Warning":
            # Only failures repeat; remembering successes would just fill the table.
            self._seen[key] = [ns, name, 1]
            while len(self._seen) > _MAX_REMEMBERED:
                self._seen.popitem(last=False)

    def _body(self, ref: dict, ns: str, name: str, type_: str, reason: str, action: str, message: str,
              now: str) -> dict:
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref,
            "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "eventTime": self.clock.rfc3339_micro(), "action": action,
            "reportingComponent": self.component, "reportingInstance": self.instance,
        }
