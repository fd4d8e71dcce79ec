"""The kubelet's event recorder: core/v1 Events about pods and the node, written in the background.

`kubectl describe pod` and `kubectl get events` show what the kubelet did (Pulled, Created,
Started, Killing, BackOff, Unhealthy, ...). As client-go's recorder, events are named
`<object>.<hex nanoseconds>`, carry source {component: kubelet, host: <node>}, and an event
identical to one sent recently (same object, field path, type, reason and message) is not
written again: the existing one gets count+1 and a new lastTimestamp by a patch, which is
what shows up as "(x7 over 4m25s)". Writing happens in a background task so that a pod
worker never waits for the API to record what it did, at the kubelet's default event rate
(eventRecordQPS 50, eventBurst 100): a node starting a hundred pods at once writes their
statuses first and the rest of their Created/Started events over the next seconds.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from ..api.errors import ApiError
from ..client import STRATEGIC, Client
from ..client.ratelimit import TokenBucket
from ..clock import Clock
from .tasks import cancel_and_wait

log = logging.getLogger("pocketkube.agent.events")

NORMAL = "Normal"
WARNING = "Warning"
_CACHE_SIZE = 4096
_QUEUE_SIZE = 1000   # as the broadcaster's buffer: beyond it, events are dropped, never waited for
EVENT_QPS, EVENT_BURST = 50, 100


def pod_ref(pod: dict, field_path: str | None = None) -> dict:
    meta = pod["metadata"]
    ref = {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"],
           "uid": meta.get("uid", ""), "apiVersion": "v1"}
    if meta.get("resourceVersion"):
        ref["resourceVersion"] = meta["resourceVersion"]
    if field_path:
        ref["fieldPath"] = field_path
    return ref


def container_field_path(pod: dict, container: str) -> str | None:
    """spec.containers{c} / spec.initContainers{c}, as kubelet's GenerateContainerRef."""
    spec = pod.get("spec") or {}
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        if any(c.get("name") == container for c in spec.get(kind) or []):
            return f"spec.{kind}{{{container}}}"
    return None


def node_ref(node: str) -> dict:
    # The kubelet refers to its node with the node name as UID.
    return {"kind": "Node", "name": node, "uid": node}


class EventRecorder:
    def __init__(self, client: Client, node: str, clock: Clock, qps: float = EVENT_QPS, burst: int = EVENT_BURST):
        self.client = client
        self.node = node
        self.clock = clock
        self._seen: collections.OrderedDict[tuple, dict] = collections.OrderedDict()
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._last_ns = 0
        # Real time, not the injected clock: a frozen test clock must not stop events.
        self._bucket = TokenBucket(qps, burst) if qps > 0 else None

    def start(self) -> None:
        self._queue = asyncio.Queue(_QUEUE_SIZE)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kubelet-events")

    async def stop(self, drain_timeout: float = 2.0) -> None:
        if self._task is None:
            return
        if self._queue is not None:
            try:
                await asyncio.wait_for(self._queue.join(), drain_timeout)
            except asyncio.TimeoutError:
                pass
        await cancel_and_wait(self._task)
        self._task = None

    async def flush(self) -> None:
        """Until every event recorded so far is written (for tests and orderly shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    def pod_event(self, pod: dict, type_: str, reason: str, message: str, container: str | None = None) -> None:
        fp = container_field_path(pod, container) if container else None
        self.event(pod_ref(pod, fp), pod["metadata"].get("namespace") or "default", type_, reason, message)

    def node_event(self, type_: str, reason: str, message: str) -> None:
        self.event(node_ref(self.node), "default", type_, reason, message)

    def event(self, ref: dict, namespace: str, type_: str, reason: str, message: str) -> None:
        if self._queue is None:
            return
        try:
            self._queue.put_nowait((ref, namespace, type_, reason, message, self.clock.now()))
        except asyncio.QueueFull:
            log.warning("event queue full, dropping %s %s for %s", reason, message, ref.get("name"))

    def _name(self, obj_name: str, now: float) -> str:
        ns = int(now * 1e9)
        self._last_ns = ns = max(ns, self._last_ns + 1)   # unique even when the clock stands still
        return f"{obj_name}.{ns:x}"

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                if self._bucket is not None:
                    await self._bucket.wait()
                await self._write(*item)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("writing event %s for %s failed: %s", item[3], item[0].get("name"), e)
            finally:
                self._queue.task_done()

    async def _write(self, ref: dict, namespace: str, type_: str, reason: str, message: str, now: float) -> None:
        key = (ref.get("kind"), ref.get("namespace"), ref.get("name"), ref.get("uid"), ref.get("fieldPath"),
               type_, reason, message)
        ts = self.clock.rfc3339(now)
        seen = self._seen.get(key)
        if seen is not None:
            self._seen.move_to_end(key)
            seen["count"] += 1
            try:
                await self.client.patch("events", seen["namespace"], seen["name"],
                                        {"count": seen["count"], "lastTimestamp": ts}, STRATEGIC)
                return
            except ApiError as e:
                if e.code != 404:
                    raise
                # Expired or deleted meanwhile: record it afresh.
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": self._name(ref["name"], now), "namespace": namespace},
            "involvedObject": ref, "reason": reason, "message": message,
            "source": {"component": "kubelet", "host": self.node},
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1, "type": type_,
            "eventTime": None, "reportingComponent": "kubelet", "reportingInstance": self.node,
        }
        for _ in range(8):
            try:
                created = await self.client.create("events", namespace, body)
                break
            except ApiError as e:
                # Another recorder (an earlier agent run) used this name at the same instant.
                if e.reason != "AlreadyExists":
                    raise
                body["metadata"]["name"] = self._name(ref["name"], now)
        else:
            return
        self._seen[key] = {"namespace": namespace, "name": created["metadata"]["name"], "count": 1}
        while len(self._seen) > _CACHE_SIZE:
            self._seen.popitem(last=False)
