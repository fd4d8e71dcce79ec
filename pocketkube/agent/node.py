"""The node's own object and heartbeats: registration, the Lease, the Ready condition.

The control plane decides a node is alive from two signals, as with a real kubelet: the Lease
`kube-node-lease/<node>` renewed every 10 s (cheap, what the node lifecycle controller
watches), and the Node's status, whose conditions carry a lastHeartbeatTime refreshed when
something changed or at least every five minutes. If the controller marked the node Unknown
after a pause (a stopped agent, a suspended machine), the next report sets Ready back to True
at once. Capacity and system info come from the real machine (see `machine`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ..api.errors import ApiError
from ..client import STRATEGIC, Client
from ..client.informer import Informer
from ..clock import Clock
from .events import NORMAL, EventRecorder
from .machine import Machine
from .tasks import cancel_and_wait, stop_informer

log = logging.getLogger("pocketkube.agent.node")

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40             # seconds (kubelet's nodeLeaseDurationSeconds)
RENEW_INTERVAL = 10.0           # a quarter of the lease duration
STATUS_UPDATE_INTERVAL = 10.0   # nodeStatusUpdateFrequency: how often status is computed
STATUS_REPORT_INTERVAL = 300.0  # nodeStatusReportFrequency: a heartbeat even when nothing changed

_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available",
     "NodeHasSufficientMemory"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", "NodeHasNoDiskPressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available",
     "NodeHasSufficientPID"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status", "NodeReady"),
)


def node_labels(name: str, machine: Machine, extra: dict | None) -> dict:
    labels = {"beta.kubernetes.io/arch": machine.arch, "beta.kubernetes.io/os": "linux",
              "kubernetes.io/arch": machine.arch, "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    labels.update(extra or {})
    return labels


# The directory where this node keeps local-path volumes (the local-path provisioner reads it,
# so that each machine's volumes live under its own data directory).
LOCAL_PATH_DIR_ANNOTATION = "pocketkube.dev/local-path-dir"


class NodeManager:
    def __init__(self, client: Client, name: str, clock: Clock, machine: Machine, recorder: EventRecorder, *,
                 address: str, port: int, runtime_version: str, kubelet_version: str,
                 labels: dict | None = None, pod_cidr: str | None = None, annotations: dict | None = None,
                 renew_interval: float = RENEW_INTERVAL, status_interval: float = STATUS_UPDATE_INTERVAL,
                 report_interval: float = STATUS_REPORT_INTERVAL):
        self.client = client
        self.name = name
        self.clock = clock
        self.machine = machine
        self.recorder = recorder
        self.address = address
        self.port = port
        self.runtime_version = runtime_version
        self.kubelet_version = kubelet_version
        self.labels = node_labels(name, machine, labels)
        self.pod_cidr = pod_cidr
        self.annotations = {"volumes.kubernetes.io/controller-managed-attach-detach": "true", **(annotations or {})}
        self.renew_interval = renew_interval
        self.status_interval = status_interval
        self.report_interval = report_interval
        self.uid = ""
        self._lease: dict | None = None
        self._last_report = 0.0
        self._last_sent: dict | None = None
        self._informer: Informer | None = None
        self._tasks: list[asyncio.Task] = []
        self._kick = asyncio.Event()
        self.on_node_change: Callable[[dict], None] | None = None

    # ---- the object ----

    def _status(self, previous: list | None) -> dict:
        now = self.clock.rfc3339()
        prev = {c.get("type"): c for c in previous or []}
        conditions = []
        for ctype, status, reason, message, _ in _CONDITIONS:
            old = prev.get(ctype)
            transition = old.get("lastTransitionTime") if old and old.get("status") == status else None
            conditions.append({"type": ctype, "status": status, "lastHeartbeatTime": now,
                               "lastTransitionTime": transition or now, "reason": reason, "message": message})
        m = self.machine
        return {
            "capacity": m.capacity(),
            "allocatable": m.allocatable(),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.address},
                          {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {
                "machineID": m.machine_id, "systemUUID": m.system_uuid, "bootID": m.boot_id,
                "kernelVersion": m.kernel, "osImage": m.os_image,
                "containerRuntimeVersion": self.runtime_version, "kubeletVersion": self.kubelet_version,
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": m.arch,
            },
        }

    def _object(self) -> dict:
        spec: dict = {}
        if self.pod_cidr:
            spec = {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]}
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": dict(self.labels),
                             "annotations": dict(self.annotations)},
                "spec": spec, "status": self._status(None)}

    def _transition_events(self, previous: list | None) -> None:
        prev = {c.get("type"): c.get("status") for c in previous or []}
        for ctype, status, _, _, event in _CONDITIONS:
            if prev.get(ctype) != status:
                self.recorder.node_event(NORMAL, event, f"Node {self.name} status is now: {event}")

    async def register(self) -> dict:
        """Create the Node, or bring an existing one up to date (labels, status)."""
        self.recorder.node_event(NORMAL, "Starting", "Starting kubelet.")
        obj = self._object()
        try:
            node = await self.client.create("nodes", None, obj)
            self.uid = node["metadata"]["uid"]
            self._sent(obj["status"])
            self._transition_events(None)
            return node
        except ApiError as e:
            if e.reason != "AlreadyExists":
                raise
        current = await self.client.get("nodes", None, self.name)
        self.uid = current["metadata"]["uid"]
        patch: dict = {"metadata": {"labels": self.labels, "annotations": obj["metadata"]["annotations"]}}
        if self.pod_cidr and not (current.get("spec") or {}).get("podCIDR"):
            patch["spec"] = obj["spec"]
        await self.client.patch("nodes", None, self.name, patch, STRATEGIC)
        return await self.post_status(current)

    def _sent(self, status: dict) -> None:
        self._last_report = self.clock.now()
        self._last_sent = status

    async def post_status(self, current: dict | None = None) -> dict:
        if current is None:
            current = await self.client.get("nodes", None, self.name)
        previous = (current.get("status") or {}).get("conditions")
        status = self._status(previous)
        node = await self.client.patch("nodes", None, self.name, {"status": status}, STRATEGIC,
                                       subresource="status")
        self._transition_events(previous)
        self._sent(status)
        return node

    @staticmethod
    def _comparable(status: dict | None) -> tuple:
        if not status:
            return ()
        conds = tuple((c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or [])
        return (conds, repr(status.get("capacity")), repr(status.get("allocatable")),
                repr(status.get("addresses")), repr(status.get("nodeInfo")))

    # ---- the lease ----

    def _lease_object(self) -> dict:
        meta: dict = {"name": self.name, "namespace": LEASE_NAMESPACE}
        if self.uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_DURATION,
                         "renewTime": self.clock.rfc3339_micro()}}

    async def renew_lease(self) -> None:
        # As the kubelet: update the lease we last wrote; read it only without one or on a conflict.
        for _ in range(3):
            try:
                if self._lease is None:
                    try:
                        self._lease = await self.client.get("leases", LEASE_NAMESPACE, self.name)
                    except ApiError as e:
                        if e.code != 404:
                            raise
                        self._lease = await self.client.create("leases", LEASE_NAMESPACE, self._lease_object())
                        return
                lease = dict(self._lease)
                lease["spec"] = dict(lease.get("spec") or {}, holderIdentity=self.name,
                                     leaseDurationSeconds=LEASE_DURATION, renewTime=self.clock.rfc3339_micro())
                if self.uid and not (lease["metadata"].get("ownerReferences")):
                    lease["metadata"] = dict(lease["metadata"], ownerReferences=self._lease_object()["metadata"]
                                             ["ownerReferences"])
                self._lease = await self.client.update("leases", LEASE_NAMESPACE, lease)
                return
            except ApiError as e:
                self._lease = None
                if e.code not in (404, 409):
                    raise

    # ---- loops ----

    async def start(self) -> None:
        # As the kubelet, keep trying until the API server takes the registration.
        delay = 0.5
        while True:
            try:
                await self.register()
                await self.renew_lease()
                break
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("registering node %s failed (retrying in %gs): %s", self.name, delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._informer = Informer(self.client, "nodes", field_selector=f"metadata.name={self.name}")
        self._informer.add_handler(self._on_node)
        self._informer.start()
        await self._informer.wait_synced()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._lease_loop(), name="kubelet-lease"),
                       loop.create_task(self._status_loop(), name="kubelet-node-status")]

    async def stop(self) -> None:
        for t in self._tasks:
            await cancel_and_wait(t)
        self._tasks = []
        await stop_informer(self._informer)
        self._informer = None

    def node(self) -> dict | None:
        return self._informer.get(self.name) if self._informer else None

    def _on_node(self, kind: str, old: dict | None, new: dict | None) -> None:
        if new is None:
            return
        ready = next((c for c in (new.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            self._kick.set()   # marked NotReady/Unknown by someone else: report at once
        if self.on_node_change is not None:
            self.on_node_change(new)

    async def _lease_loop(self) -> None:
        while True:
            await self.clock.sleep(self.renew_interval)
            try:
                await self.renew_lease()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the API may be briefly away; the next round tries again
                log.warning("renewing the lease of node %s failed: %s", self.name, e)

    async def _wait_kick(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep_until(self.clock.now() + seconds))
        kicked = asyncio.ensure_future(self._kick.wait())
        try:
            await asyncio.wait([sleeper, kicked], return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            kicked.cancel()
        self._kick.clear()

    async def _status_loop(self) -> None:
        while True:
            await self._wait_kick(self.status_interval)
            try:
                current = self.node()
                if current is None:
                    # Deleted under us: register again, as the kubelet does after its node object is removed.
                    await self.register()
                    continue
                changed = self._comparable(current.get("status")) != self._comparable(self._status(
                    (current.get("status") or {}).get("conditions")))
                if changed or self.clock.now() - self._last_report >= self.report_interval:
                    await self.post_status(current)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("updating the status of node %s failed: %s", self.name, e)
