"""The node agent: pocketkube's kubelet for one real node.

`Agent` ties the pieces together. It registers the Node and keeps its Lease and status fresh
(`node`), watches the pods bound to the node (one informer, `spec.nodeName=<node>`), gives each
pod one `PodWorker` (keyed by UID: never two workers on one pod), posts pod status through the
pods/status subresource, and answers `kubectl logs` for the API server (`logs`).

Status writes are coalesced: a worker only says "my status may have changed" and a keyed work
queue computes and writes it once per burst, only when it differs from what the API has.

No process outlives its pod or the agent: leftovers of an earlier run are removed on start
(`runtime.cleanup_orphans`), and `stop()` stops every container and frees every sandbox. The
Node object stays, and goes NotReady once its lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from typing import AsyncIterator

from ..api.errors import ApiError
from ..client import Client
from ..client.informer import Informer
from ..client.workqueue import WorkQueue, run_workers
from ..clock import Clock
from ..runtime.base import Runtime
from .backoff import Backoff
from .events import EventRecorder
from .logs import choose_run, pick_container, run_log_path, since_from, stream
from .machine import MAX_PODS, Machine, internal_ip
from .node import LOCAL_PATH_DIR_ANNOTATION, NodeManager
from .podstatus import container_status, merge_status, pod_status
from .services import ServiceCache
from .tasks import cancel_and_wait, stop_informer
from .worker import PodWorker, pod_dir

log = logging.getLogger("pocketkube.agent")

DEFAULT_LOG_PORT = 10250
VERSION = "0.1.0"
VOLUME_REFRESH_INTERVAL = 60.0   # how often configMap/secret/downwardAPI volumes catch up
SHUTDOWN_GRACE = 5.0             # at most this long for a container to exit when the agent stops
# Made ahead for pods to come (see runtime/podnets.py and runtime/spawnd.py): networks take
# ~3 ms of kernel time each, one at a time, so there is one for every pod the node can take
# and a burst never waits for the network helper (100 pods at once: p99 540-610 -> 390-520 ms
# against 64 spares); a process forked ahead saves the spawn helper a fork (1-2 ms) but holds
# ~0.9 MB, so fewer of those: the helper forks the rest of a burst.
WARM_SANDBOXES = MAX_PODS
WARM_PROCESSES = 16


def kubelet_version() -> str:
    try:
        from ..server.app import KUBE_VERSION
        return "v%d.%d.%d" % KUBE_VERSION
    except Exception:  # the server package is optional on a node
        return "v1.37.0"


class Agent:
    def __init__(self, client: Client, node_name: str, runtime: Runtime, state_dir: str, clock: Clock | None = None,
                 labels: dict | None = None, address: str | None = None, log_port: int | None = None, *,
                 shutdown_grace: float = SHUTDOWN_GRACE, status_workers: int = 16,
                 warm_sandboxes: int = WARM_SANDBOXES, warm_processes: int = WARM_PROCESSES):
        self.client = client
        self.node_name = node_name
        self.runtime = runtime
        self.state_dir = os.path.abspath(state_dir)
        self.clock = clock or Clock()
        self.labels = labels
        self.address = address
        self.log_port = log_port or DEFAULT_LOG_PORT
        self.shutdown_grace = shutdown_grace
        self.status_workers = status_workers
        self.warm_sandboxes = warm_sandboxes
        self.warm_processes = warm_processes
        self.host_ip = address or ""
        self.recorder = EventRecorder(client, node_name, self.clock)
        self.backoff = Backoff()
        self.workers: dict[str, PodWorker] = {}        # pod UID -> its worker
        self.node_manager: NodeManager | None = None
        self._informer: Informer | None = None
        self.services = ServiceCache(client)
        self._status_queue: WorkQueue | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self.stats = {"status_writes": 0, "conflicts": 0}

    # ---- lifecycle ----

    async def start(self) -> None:
        os.makedirs(os.path.join(self.state_dir, "pods"), exist_ok=True)
        leftovers = await self.runtime.cleanup_orphans()
        if leftovers:
            log.info("removed %d leftovers of an earlier run", leftovers)
        start_pool = getattr(self.runtime, "start_pool", None)
        if start_pool is not None:
            start_pool(self.warm_sandboxes, self.warm_processes)
        machine = await asyncio.to_thread(Machine.detect, self.state_dir)
        if not self.host_ip:
            self.host_ip = await asyncio.to_thread(internal_ip)
        self.recorder.start()
        self.node_manager = NodeManager(
            self.client, self.node_name, self.clock, machine, self.recorder, address=self.host_ip,
            port=self.log_port, runtime_version=f"pocketkube-{getattr(self.runtime, 'name', 'process')}://{VERSION}",
            kubelet_version=kubelet_version(), labels=self.labels, pod_cidr=getattr(self.runtime, "node_cidr", None),
            # Where this node keeps local-path volumes: the provisioner reads it from the Node,
            # so every machine uses its own data directory.
            annotations={LOCAL_PATH_DIR_ANNOTATION: os.path.join(self.state_dir, "storage")})
        await self.node_manager.start()
        self._status_queue = WorkQueue("pod-status", self.clock)
        self._informer = Informer(self.client, "pods", field_selector=f"spec.nodeName={self.node_name}")
        self._informer.add_handler(self._on_pod)
        self.services.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(run_workers(self._status_queue, self._sync_status, self.status_workers),
                                            name="kubelet-status"))
        self._informer.start()
        await self._informer.wait_synced()
        await asyncio.to_thread(self._remove_stale_pod_dirs, {p["metadata"]["uid"] for p in self._informer.list()})
        self._tasks.append(loop.create_task(self._refresh_loop(), name="kubelet-volume-refresh"))

    async def stop(self) -> None:
        self._stopping = True   # from now on the API is left as it is: pods keep their last status
        await stop_informer(self._informer)
        await self.services.stop()
        if self._status_queue is not None:
            self._status_queue.shutdown()
        workers = list(self.workers.values())
        await asyncio.gather(*(w.shutdown(self.shutdown_grace) for w in workers), return_exceptions=True)
        for t in self._tasks:
            await cancel_and_wait(t)
        self._tasks = []
        if self.node_manager is not None:
            await self.node_manager.stop()
        await self.recorder.stop()
        drain_pool = getattr(self.runtime, "drain_pool", None)
        if drain_pool is not None:
            await drain_pool()
        close = getattr(self.runtime, "close", None)
        if close is not None:   # the runtime's own helpers and threads go with the agent
            await asyncio.to_thread(close)

    def node(self) -> dict | None:
        return self.node_manager.node() if self.node_manager else None

    def get_pod(self, namespace: str, name: str) -> dict | None:
        return self._informer.get(f"{namespace}/{name}") if self._informer else None

    # ---- pods ----

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        if new is None:
            if old is None:
                return
            uid = old["metadata"].get("uid")
            w = self.workers.get(uid)
            if w is not None:
                w.mark_removed()
                asyncio.get_running_loop().create_task(self._forget(w))
            else:
                asyncio.get_running_loop().create_task(self._remove_dir(pod_dir(self.state_dir, old)))
            return
        uid = new["metadata"]["uid"]
        if old is not None and old["metadata"].get("uid") != uid:
            # Replaced under the same name while our watch was away (seen as one change on relist).
            self._on_pod("DELETED", old, None)
        w = self.workers.get(uid)
        if w is not None:
            w.update(new)
            return
        if (new.get("status") or {}).get("phase") in ("Succeeded", "Failed") and \
                not new["metadata"].get("deletionTimestamp"):
            return   # finished before this agent knew it: nothing runs, its logs stay on disk
        w = PodWorker(self, new)
        self.workers[uid] = w
        w.start()

    async def _forget(self, w: PodWorker) -> None:
        await w.done.wait()
        if self.workers.get(w.uid) is w:
            del self.workers[w.uid]
        self.backoff.forget_prefix(w.uid + "/")

    async def _remove_dir(self, path: str) -> None:
        await asyncio.to_thread(shutil.rmtree, path, True)

    def _remove_stale_pod_dirs(self, known: set[str]) -> None:
        """Pod directories of pods that no longer exist (deleted while the agent was away)."""
        from .volumes import remove_volumes
        root = os.path.join(self.state_dir, "pods")
        for entry in os.listdir(root):
            uid = entry.rsplit("_", 1)[-1]
            if uid in known:
                continue
            path = os.path.join(root, entry)
            try:
                remove_volumes(path)
            except Exception as e:
                log.warning("removing volumes under %s failed: %s", path, e)
                continue
            if not os.path.isdir(os.path.join(path, "volumes")):
                shutil.rmtree(path, ignore_errors=True)

    async def _refresh_loop(self) -> None:
        while True:
            await self.clock.sleep(VOLUME_REFRESH_INTERVAL)
            for w in list(self.workers.values()):
                w.refresh_volumes()

    # ---- status ----

    def request_status(self, worker: PodWorker) -> None:
        if self._status_queue is not None:
            self._status_queue.add(worker.uid)

    async def _sync_status(self, uid: str) -> None:
        w = self.workers.get(uid)
        if w is not None:
            await self.write_status(w)

    def _latest(self, w: PodWorker) -> dict | None:
        """The newest copy of the pod we know: the informer's, or the one our last write returned."""
        cached = self._informer.get(w.key) if self._informer else None
        if cached is not None and cached["metadata"].get("uid") != w.uid:
            cached = None
        mine = w.last_written
        if mine is None:
            return cached
        if cached is None:
            return None if w.removed else mine
        try:
            newer = int(mine["metadata"]["resourceVersion"]) > int(cached["metadata"]["resourceVersion"])
        except (KeyError, ValueError):
            newer = False
        return mine if newer else cached

    async def write_status(self, w: PodWorker) -> None:
        """Post the worker's status if it differs from the API's (retrying conflicts)."""
        if self._stopping:
            return
        async with w.status_lock:
            pod = self._latest(w)
            for attempt in range(5):
                if pod is None or w.removed:
                    return
                status = pod_status(pod, w.facts, self.clock)
                old = pod.get("status") or {}
                if (old.get("phase") in ("Succeeded", "Failed")) and old.get("phase") != status.get("phase"):
                    return   # a terminal phase is final
                merged = merge_status(old, status)
                if merged == old:
                    return
                try:
                    w.last_written = await self.client.update_status("pods", w.namespace, dict(pod, status=merged))
                    self.stats["status_writes"] += 1
                    return
                except ApiError as e:
                    if e.code == 404 or (e.code == 409 and "UID" in e.message):
                        return
                    if e.code != 409:
                        raise
                    self.stats["conflicts"] += 1
                try:
                    pod = await self.client.get("pods", w.namespace, w.name)
                except ApiError as e:
                    if e.code == 404:
                        return
                    raise
                if pod["metadata"].get("uid") != w.uid:
                    return
                w.last_written = pod

    # ---- logs ----

    async def logs(self, pod: dict, container: str | None, follow: bool, previous: bool, tail: int | None,
                   since_seconds: int | None, since_time: str | None, timestamps: bool,
                   limit_bytes: int | None) -> AsyncIterator[bytes]:
        """The log stream behind `kubectl logs`; errors (400, with the kubelet's messages) come
        before the first chunk."""
        name, is_init = pick_container(pod, container)
        meta = pod["metadata"]
        w = self.workers.get(meta.get("uid"))
        if w is not None:
            cs = w.by_name[name]
            status = container_status(cs, "PodInitializing" if w.facts.init_containers else "ContainerCreating")
        else:
            key = "initContainerStatuses" if is_init else "containerStatuses"
            status = next((s for s in (pod.get("status") or {}).get(key) or [] if s.get("name") == name), None)
        cid, index = choose_run(status, name, meta["name"], previous)
        raw_id = cid.split("://", 1)[-1]
        path = (w.log_paths.get(raw_id) if w is not None else None) or \
            run_log_path(pod_dir(self.state_dir, pod), name, index)

        def stopped() -> bool:
            if w is None:
                return True
            inst = w.instances.get(name)
            return inst is None or inst.id != raw_id

        async for chunk in stream(path, since_from(since_seconds, since_time), tail, timestamps, limit_bytes,
                                  follow, stopped):
            yield chunk
