"""Creating and deleting a controller's pods, with the events and pacing Kubernetes uses.

Controllers that own pods (ReplicaSet, and through it Deployment; Job; DaemonSet) create and
delete them the same way (`controller.RealPodControl`, `slowStartBatch`): every create or delete
leaves an event on the owner ("SuccessfulCreate" / "Created pod: x", "FailedCreate" /
"Error creating: ..."), and many creates are sent in batches that double from 1, so that a
template the API rejects costs one failed request, not five hundred.

Events are filtered as client-go's recorder does (EventSourceObjectSpamFilter): per owner and
event type, a bucket of 25 events refilled at one per five minutes. A ReplicaSet creating 10,000
pods therefore writes 25 "SuccessfulCreate" events, not 10,000, exactly as on a real cluster.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Awaitable, Callable

from ..api.errors import ApiError
from ..client import Client
from ..client.bounded import bounded_map
from ..client.events import EventRecorder
from ..client.ratelimit import TokenBucket
from ..clock import Clock

SLOW_START_INITIAL_BATCH = 1
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"


def has_status_cause(err: Exception, cause: str) -> bool:
    if not isinstance(err, ApiError):
        return False
    return any(c.get("reason") == cause or c.get("type") == cause
               for c in (err.details or {}).get("causes") or ())


class SpamFilter:
    """A token bucket per (owner, event type): burst 25, one more every 300 s (client-go)."""

    def __init__(self, clock: Clock, burst: int = 25, refill_every: float = 300.0, remember: int = 4096):
        self.clock = clock
        self.burst = burst
        self.refill_every = refill_every
        self.remember = remember
        self._buckets: collections.OrderedDict[tuple, TokenBucket] = collections.OrderedDict()

    def allow(self, obj: dict, type_: str) -> bool:
        meta = obj.get("metadata") or {}
        key = (obj.get("kind"), meta.get("namespace"), meta.get("name"), meta.get("uid"), type_)
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = TokenBucket(1.0 / self.refill_every, self.burst, self.clock.now)
            while len(self._buckets) > self.remember:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return b.allow()


async def slow_start_batch(count: int, initial: int, fn: Callable[[], Awaitable[None]],
                           concurrency: int = 100) -> tuple[int, Exception | None]:
    """Call `fn` `count` times in batches of 1, 2, 4, ...; stop after a batch with a failure.

    Returns the number of successful calls and the first error. Within a batch at most
    `concurrency` calls are in flight, so one event loop never holds hundreds of half-done
    requests.
    """
    done = 0
    remaining = count
    batch = min(remaining, initial)

    async def one(_: int) -> Exception | None:
        try:
            await fn()
            return None
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - reported to the caller
            return e

    while batch > 0:
        results = await bounded_map(one, range(batch), concurrency)
        errors = [e for e in results if e is not None]
        done += batch - len(errors)
        if errors:
            return done, errors[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return done, None


class PodControl:
    """Creates and deletes an owner's pods, recording the owner's events."""

    def __init__(self, client: Client, recorder: EventRecorder, clock: Clock):
        self.client = client
        self.recorder = recorder
        self.spam = SpamFilter(clock)

    def event(self, owner: dict, type_: str, reason: str, action: str, message: str) -> None:
        if self.spam.allow(owner, type_):
            self.recorder.event(owner, type_, reason, action, message)

    async def create_pod(self, namespace: str, pod: dict, owner: dict) -> dict:
        """Create a pod from `pod` (not changed); the created pod is returned read-only."""
        try:
            created = await self.client.create("pods", namespace, pod, result=False)
        except ApiError as e:
            if not has_status_cause(e, NAMESPACE_TERMINATING_CAUSE):
                self.event(owner, "Warning", "FailedCreate", "Create", f"Error creating: {e}")
            raise
        self.event(owner, "Normal", "SuccessfulCreate", "Create", f"Created pod: {created['metadata']['name']}")
        return created

    async def delete_pod(self, namespace: str, name: str, owner: dict, current: dict | None = None) -> None:
        """Delete a pod of `owner`; `current`: the pod as the caller's informer has it."""
        try:
            await self.client.delete("pods", namespace, name, result=False, current=current)
        except ApiError as e:
            if e.code == 404:
                raise
            self.event(owner, "Warning", "FailedDelete", "Delete", f"Error deleting: {e}")
            raise
        self.event(owner, "Normal", "SuccessfulDelete", "Delete", f"Deleted pod: {name}")
