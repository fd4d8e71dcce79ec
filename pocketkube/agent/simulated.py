"""Simulated nodes: thousands of Nodes that look real to the control plane and run nothing.

Why it exists: the scheduler, the controllers and the API must be exercised at a scale
(thousands of nodes, tens of thousands of pods) that one machine could never run as real
processes. In the spirit of KWOK, a simulated node registers a realistic Node, keeps its Lease
in kube-node-lease fresh, and answers for the pods bound to it: they become Running and Ready
with the status a kubelet writes (conditions, container statuses, pod IPs, start times), with
no process behind them. Two pod annotations make containers finish, so Jobs and crash loops can
be simulated too:

    pocketkube.dev/simulate-exit-after: "5s"    (a Go duration: 500ms, 5s, 1m30s, 2h)
    pocketkube.dev/simulate-exit-code:  "1"     (default 0)

Why it is shaped like this: one `SimulatedNodes` object serves all of its nodes, so the cost
grows with the number of writes, not of nodes. One pod informer and one node informer (never a
watch per node); one loop per heartbeat kind that spreads lease renewals (and the kubelet's
five-minute status report) evenly over their interval instead of firing them in bursts; and one
keyed work queue whose bounded pool of workers issues the status writes concurrently, so the
store commits them in groups while the event loop keeps serving watches. Container lifecycles
are computed from the injected clock, so a test jumps through minutes of crash-loop back-off
with a FakeClock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from ..api.errors import ApiError
from ..client import STRATEGIC, Client
from ..client.bounded import bounded_map
from ..client.informer import ComponentInformers, Informer
from ..client.workqueue import WorkQueue, run_workers
from ..clock import Clock, parse_rfc3339
from .machine import MAX_PODS

log = logging.getLogger("pocketkube.simulated")

SIMULATED_ANNOTATION = "pocketkube.dev/simulated"
EXIT_AFTER_ANNOTATION = "pocketkube.dev/simulate-exit-after"
EXIT_CODE_ANNOTATION = "pocketkube.dev/simulate-exit-code"
SIMULATED_LABEL = ("type", "simulated")

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40            # seconds; kubelet's default
RENEW_INTERVAL = 10.0          # kubelet renews at a quarter of the lease duration
STATUS_REPORT_INTERVAL = 300.0  # kubelet's nodeStatusReportFrequency: a heartbeat when nothing changed
BACKOFF_INITIAL = 10.0         # kubelet's crash-loop back-off: 10 s doubling ...
BACKOFF_MAX = 300.0            # ... up to five minutes

CAPACITY = {"cpu": "32", "ephemeral-storage": "1Ti", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
            "memory": "256Gi", "pods": str(MAX_PODS)}

# The pod conditions the kubelet writes, in its order (PodScheduled is kept as the scheduler
# wrote it, and added if missing).
_KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


# ---- small helpers ----------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None) -> float | None:
    """Seconds for a Go duration ("5s", "1m30s", "250ms"); a bare number counts as seconds."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    if not _DURATION.fullmatch(text):
        return None
    return sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(text))


def go_duration(seconds: float) -> str:
    """Go's Duration.String() for whole seconds: 10s, 1m20s, 5m0s (as kubelet messages show)."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"


def backoff_delay(restarts: int) -> float:
    """Wait before restart number `restarts + 1`: the first restart is immediate, then 10 s doubling."""
    if restarts <= 0:
        return 0.0
    return min(BACKOFF_INITIAL * (2 ** (restarts - 1)), BACKOFF_MAX)


def _kubelet_version() -> str:
    try:
        from ..server.app import KUBE_VERSION
        return "v%d.%d.%d" % KUBE_VERSION
    except Exception:  # the server package is optional for a node
        return "v1.37.0"


def _hexid(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


# ---- nodes --------------------------------------------------------------------------------------

@dataclass
class _Node:
    name: str
    index: int
    host_ip: str
    pod_prefix: str                  # "10.a.b" of the node's /24 pod range
    uid: str = ""
    lease: dict | None = None        # the last lease we wrote (its resourceVersion saves a read)
    ips: set[int] = field(default_factory=set)
    cursor: int = 0

    @property
    def pod_cidr(self) -> str:
        return f"{self.pod_prefix}.0/24"

    def allocate_ip(self) -> str:
        # Cycle through .2-.254 so a freed address is reused as late as possible.
        for k in range(253):
            host = 2 + (self.cursor + k) % 253
            if host not in self.ips:
                self.ips.add(host)
                self.cursor = (host - 1) % 253
                return f"{self.pod_prefix}.{host}"
        raise RuntimeError(f"node {self.name}: no free pod IP in {self.pod_cidr}")

    def claim_ip(self, ip: str) -> bool:
        prefix, _, host = ip.rpartition(".")
        if prefix != self.pod_prefix or not host.isdigit():
            return False
        self.ips.add(int(host))
        return True

    def release_ip(self, ip: str | None) -> None:
        if ip:
            prefix, _, host = ip.rpartition(".")
            if prefix == self.pod_prefix and host.isdigit():
                self.ips.discard(int(host))


def node_addresses(index: int) -> tuple[str, str]:
    """(InternalIP, pod range prefix) of the simulated node with this global index.

    These addresses are never contacted: nothing listens on them. Node IPs come from
    10.244.0.0/16, pod ranges are /24s from 10.128.0.0/9 (unique for the first 32,768 nodes),
    apart from the 10.42.0.0/16 ranges that real nodes use.
    """
    host_ip = f"10.244.{(index // 254) % 256}.{index % 254 + 1}"
    prefix = f"10.{128 + (index // 256) % 128}.{index % 256}"
    return host_ip, prefix


def healthy_conditions(now: str, previous: list | None = None) -> list[dict]:
    """The four conditions a healthy kubelet posts, keeping transition times that did not change."""
    prev = {c.get("type"): c for c in previous or []}
    out = []
    for ctype, status, reason, message in (
            ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status")):
        old = prev.get(ctype)
        transition = old["lastTransitionTime"] if old and old.get("status") == status and \
            old.get("lastTransitionTime") else now
        out.append({"type": ctype, "status": status, "lastHeartbeatTime": now,
                    "lastTransitionTime": transition, "reason": reason, "message": message})
    return out


def node_object(node: _Node, clock: Clock, kubelet_version: str) -> dict:
    now = clock.rfc3339()
    name = node.name
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
                       "kubernetes.io/os": "linux", SIMULATED_LABEL[0]: SIMULATED_LABEL[1]},
            "annotations": {SIMULATED_ANNOTATION: "true",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
        "status": node_status(node, now, kubelet_version),
    }


def node_status(node: _Node, now: str, kubelet_version: str, previous: list | None = None) -> dict:
    h = _hexid("node", node.name)
    return {
        "capacity": dict(CAPACITY),
        "allocatable": dict(CAPACITY),
        "conditions": healthy_conditions(now, previous),
        "addresses": [{"type": "InternalIP", "address": node.host_ip},
                      {"type": "Hostname", "address": node.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": h[:32], "systemUUID": str(uuid.UUID(h[32:64])), "bootID": str(uuid.UUID(h[:32])),
            "kernelVersion": "simulated", "osImage": "pocketkube simulated node",
            "containerRuntimeVersion": "simulated://1.0.0", "kubeletVersion": kubelet_version,
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
        },
    }


# ---- pods ---------------------------------------------------------------------------------------

@dataclass
class _Container:
    name: str
    cid: str
    running_since: float | None = None
    # The current (or, while a restart is pending, the latest) termination: (code, started, finished).
    terminated: tuple[int, float, float] | None = None
    restart_at: float | None = None    # a restart is pending at this time (crash-loop back-off)
    restarts: int = 0
    last: dict | None = None            # lastState.terminated of the previous instance

    def final(self) -> bool:
        return self.terminated is not None and self.restart_at is None


@dataclass
class _Pod:
    key: str
    uid: str
    node: _Node
    ip: str
    start: float
    policy: str
    exit_after: float | None
    exit_code: int
    deadline: float | None
    containers: list[_Container]
    terminal: str | None = None         # "Succeeded" / "Failed" once finished
    ip_held: bool = True                # the address goes back to the node's pool when finished
    reason: str | None = None
    message: str | None = None
    timer_at: float | None = None
    written: tuple | None = None        # _signature of the last status we wrote

    def release_ip(self) -> None:
        if self.ip_held:
            self.ip_held = False
            self.node.release_ip(self.ip)

    def restarts_on(self, code: int) -> bool:
        return self.policy == "Always" or (self.policy == "OnFailure" and code != 0)

    def advance(self, now: float) -> None:
        """Apply every container exit and restart due by `now` (the clock may jump far ahead)."""
        if self.terminal:
            return
        if self.deadline is not None and now >= self.deadline:
            # kubelet kills the containers of a pod past its activeDeadlineSeconds.
            for c in self.containers:
                if c.running_since is not None:
                    c.terminated = (137, c.running_since, self.deadline)
                    c.running_since = None
                c.restart_at = None
            self.terminal, self.reason = "Failed", "DeadlineExceeded"
            self.message = "Pod was active on the node longer than the specified deadline"
            return
        if self.exit_after is not None:
            for c in self.containers:
                for _ in range(100000):
                    if c.running_since is not None:
                        t_exit = c.running_since + self.exit_after
                        if t_exit > now:
                            break
                        c.terminated = (self.exit_code, c.running_since, t_exit)
                        c.running_since = None
                        if not self.restarts_on(self.exit_code):
                            break
                        c.restart_at = t_exit + backoff_delay(c.restarts)
                    elif c.restart_at is not None:
                        if c.restart_at > now:
                            break
                        code, started, finished = c.terminated  # type: ignore[misc]
                        c.last = _terminated(code, started, finished, c.cid)
                        c.running_since, c.restart_at, c.terminated = c.restart_at, None, None
                        c.restarts += 1
                        c.cid = _hexid(c.cid, str(c.restarts))[:64]
                    else:
                        break
        if self.containers and all(c.final() for c in self.containers):
            clean = all(c.terminated is not None and c.terminated[0] == 0 for c in self.containers)
            self.terminal = "Succeeded" if clean else "Failed"

    def kill(self, now: float, code: int = 143) -> None:
        """Stopped for a graceful deletion: running containers end as SIGTERM leaves them."""
        if self.terminal:
            return
        for c in self.containers:
            if c.running_since is not None:
                c.terminated = (code, c.running_since, now)
                c.running_since = None
            c.restart_at = None
        clean = all(c.terminated is not None and c.terminated[0] == 0 for c in self.containers)
        self.terminal = "Succeeded" if clean else "Failed"

    def next_due(self) -> float | None:
        if self.terminal:
            return None
        due = [self.deadline] if self.deadline is not None else []
        for c in self.containers:
            if c.running_since is not None and self.exit_after is not None:
                due.append(c.running_since + self.exit_after)
            elif c.restart_at is not None:
                due.append(c.restart_at)
        return min(due) if due else None


_FMT = Clock()  # timestamp formatting only


def _terminated(code: int, started: float, finished: float, cid: str) -> dict:
    clock = _FMT
    return {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                           "startedAt": clock.rfc3339(started), "finishedAt": clock.rfc3339(finished),
                           "containerID": f"simulated://{cid}"}}


def _volume_mounts(spec: dict) -> list[dict]:
    out = []
    for m in spec.get("volumeMounts") or []:
        vm = {"name": m.get("name"), "mountPath": m.get("mountPath")}
        if m.get("readOnly"):
            vm["readOnly"] = True
            vm["recursiveReadOnly"] = "Disabled"
        out.append(vm)
    return out


def _base_status(spec: dict, cid: str, restarts: int) -> dict:
    image = spec.get("image") or ""
    st = {"name": spec.get("name"), "image": image, "imageID": f"simulated://{image}",
          "containerID": f"simulated://{cid}", "restartCount": restarts}
    mounts = _volume_mounts(spec)
    if mounts:
        st["volumeMounts"] = mounts
    return st


def _condition(ctype: str, status: str, now: str, current: dict, generation, reason: str | None = None,
               message: str | None = None) -> dict:
    old = current.get(ctype)
    transition = old["lastTransitionTime"] if old and old.get("status") == status and \
        old.get("lastTransitionTime") else now
    c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": transition}
    if generation is not None:
        c["observedGeneration"] = generation
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def pod_status(pod: dict, sim: _Pod, now: float, clock: Clock) -> dict:
    """The status a kubelet would post for this pod at `now`, from the simulated runtime state."""
    spec = pod.get("spec") or {}
    meta = pod["metadata"]
    current = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    generation = meta.get("generation")
    ts = clock.rfc3339
    now_s = ts(now)
    start_s = ts(sim.start)
    phase = sim.terminal or "Running"

    statuses = []
    unready = []
    for cspec, c in zip(spec.get("containers") or [], sim.containers):
        st = _base_status(cspec, c.cid, c.restarts)
        if c.running_since is not None:
            st.update(ready=True, started=True, state={"running": {"startedAt": ts(c.running_since)}})
        elif c.restart_at is not None and c.restart_at > now:
            delay = backoff_delay(c.restarts)
            st.update(ready=False, started=False, state={"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {go_duration(delay)} restarting failed container={c.name} "
                           f"pod={meta['name']}_{meta.get('namespace', '')}({sim.uid})"}})
            unready.append(c.name)
        else:
            code, started, finished = c.terminated or (0, sim.start, now)
            st.update(ready=False, started=False, state=_terminated(code, started, finished, c.cid))
            unready.append(c.name)
        if "waiting" in st["state"] and c.terminated is not None:
            st["lastState"] = _terminated(*c.terminated, c.cid)  # the exit being backed off
        else:
            st["lastState"] = c.last or {}
        statuses.append(st)

    init_statuses = []
    for ic in spec.get("initContainers") or []:
        cid = _hexid(sim.uid, "init", ic.get("name") or "")[:64]
        st = _base_status(ic, cid, 0)
        if ic.get("restartPolicy") == "Always":  # a sidecar runs beside the containers
            if sim.terminal:
                st.update(ready=False, started=False, state=_terminated(0, sim.start, now, cid))
            else:
                st.update(ready=True, started=True, state={"running": {"startedAt": start_s}})
        else:
            st.update(ready=True, started=False, state=_terminated(0, sim.start, sim.start, cid))
        st["lastState"] = {}
        init_statuses.append(st)

    if sim.terminal:
        why = "PodCompleted" if sim.terminal == "Succeeded" else "PodFailed"
        containers_ready = ("False", why, None)
        ready = containers_ready
        initialized = ("True", "PodCompleted" if sim.terminal == "Succeeded" else None, None)
        sandbox = "False"
    else:
        if unready:
            containers_ready = ("False", "ContainersNotReady",
                                f"containers with unready status: [{' '.join(unready)}]")
        else:
            containers_ready = ("True", None, None)
        ready = containers_ready
        if not unready:
            gates = []
            for g in spec.get("readinessGates") or []:
                t = g.get("conditionType")
                c = current.get(t)
                if c is None:
                    gates.append(f"corresponding condition of pod readiness gate \"{t}\" does not exist.")
                elif c.get("status") != "True":
                    gates.append(f"the status of pod readiness gate \"{t}\" is not \"True\", but {c.get('status')}")
            if gates:
                ready = ("False", "ReadinessGatesNotReady", ", ".join(gates))
        initialized = ("True", None, None)
        sandbox = "True"

    conditions = [
        _condition("PodReadyToStartContainers", sandbox, now_s, current, generation),
        _condition("Initialized", initialized[0], now_s, current, generation, initialized[1]),
        _condition("Ready", ready[0], now_s, current, generation, ready[1], ready[2]),
        _condition("ContainersReady", containers_ready[0], now_s, current, generation,
                   containers_ready[1], containers_ready[2]),
        # kubelet reports PodScheduled too (a pod created with nodeName never met a scheduler).
        current.get("PodScheduled") or _condition("PodScheduled", "True", now_s, current, generation),
    ]
    status = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": sim.node.host_ip, "hostIPs": [{"ip": sim.node.host_ip}],
        "podIP": sim.ip, "podIPs": [{"ip": sim.ip}],
        "startTime": start_s,
        "containerStatuses": statuses,
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if generation is not None:
        status["observedGeneration"] = generation
    if sim.reason:
        status["reason"] = sim.reason
        status["message"] = sim.message
    return status


def _signature(status: dict) -> tuple:
    """What a status write would change, ignoring timestamps we would only copy."""
    def cs(items):
        out = []
        for s in items or []:
            state = s.get("state") or {}
            kind = next(iter(state), "")
            detail = (state.get("terminated") or {}).get("exitCode"), (state.get("waiting") or {}).get("reason")
            out.append((s.get("name"), kind, detail, s.get("restartCount"), s.get("ready"), s.get("started"),
                        s.get("containerID")))
        return tuple(out)
    conds = tuple(sorted((c.get("type"), c.get("status"), c.get("reason"))
                         for c in status.get("conditions") or [] if c.get("type") in _KUBELET_CONDITIONS))
    return (status.get("phase"), status.get("reason"), status.get("podIP"), status.get("hostIP"),
            status.get("startTime"), conds, cs(status.get("containerStatuses")),
            cs(status.get("initContainerStatuses")), status.get("observedGeneration"))


# ---- the component ------------------------------------------------------------------------------

class SimulatedNodes:
    """`count` simulated nodes named `<prefix>-<i>`, i from `start_index`."""

    def __init__(self, client: Client, count: int, prefix: str = "sim", clock: Clock | None = None,
                 start_index: int = 0, *, renew_interval: float = RENEW_INTERVAL,
                 status_report_interval: float = STATUS_REPORT_INTERVAL, concurrency: int = 64,
                 informers=None):
        self.client = client
        # `informers` (SharedInformers): the control plane's own pod informer, when in its
        # process; its owner starts and stops it.
        self.informers = informers
        self.clock = clock or Clock()
        self.prefix = prefix
        self.renew_interval = renew_interval
        self.status_report_interval = status_report_interval
        self.concurrency = concurrency
        self.nodes: dict[str, _Node] = {}
        for i in range(start_index, start_index + count):
            host_ip, pod_prefix = node_addresses(i)
            name = f"{prefix}-{i}"
            self.nodes[name] = _Node(name, i, host_ip, pod_prefix)
        self._kubelet_version = _kubelet_version()
        self._pods: dict[str, _Pod] = {}
        self._timers: dict[str, asyncio.Task] = {}
        self._tasks: list[asyncio.Task] = []
        self._pod_queue: WorkQueue | None = None
        self._node_queue: WorkQueue | None = None
        self._informer_set: ComponentInformers | None = None
        self._pod_informer: Informer | None = None
        self._node_informer: Informer | None = None
        self.stats = {"status_writes": 0, "lease_writes": 0, "deletes": 0, "conflicts": 0, "echoes": 0}

    @property
    def names(self) -> list[str]:
        return list(self.nodes)

    # ---- lifecycle ----

    async def start(self) -> None:
        """Register every node and its lease (returns when all are Ready), then serve pods."""
        await bounded_map(self._register, self.nodes.values(), self.concurrency)
        await bounded_map(self._ensure_lease, self.nodes.values(), self.concurrency)
        self._pod_queue = WorkQueue("simulated-pods", self.clock)
        self._node_queue = WorkQueue("simulated-nodes", self.clock)
        self._informer_set = ComponentInformers(self.client, self.informers)
        self._node_informer = self._informer_set.own("nodes", label_selector="=".join(SIMULATED_LABEL))
        self._node_informer.add_handler(self._on_node)
        # Unbound pods are none of a node's business: on our own, the field selector keeps them
        # off the wire; with the control plane's shared pod cache, _on_pod skips them.
        self._pod_informer = self._informer_set.get("pods", field_selector="spec.nodeName!=")
        self._pod_informer.add_handler(self._on_pod)
        await self._informer_set.start()
        loop = asyncio.get_running_loop()
        now = self.clock.now()  # heartbeats count from here, however late their task first runs
        self._tasks = [
            loop.create_task(run_workers(self._pod_queue, self._sync_pod, self.concurrency), name="sim-pods"),
            loop.create_task(run_workers(self._node_queue, self._sync_node, 8), name="sim-nodes"),
            loop.create_task(self._spread(self.renew_interval, self._renew_lease, now), name="sim-leases"),
            loop.create_task(self._spread(self.status_report_interval, self._report_status, now),
                             name="sim-status"),
        ]

    async def stop(self) -> None:
        """Stop serving; the Nodes stay registered and go NotReady once their leases expire."""
        for q in (self._pod_queue, self._node_queue):
            if q is not None:
                q.shutdown()
        for t in list(self._timers.values()) + self._tasks:
            t.cancel()
        for t in list(self._timers.values()) + self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._timers.clear()
        self._tasks = []
        if self._informer_set is not None:
            await self._informer_set.stop()

    # ---- registration and heartbeats ----

    async def _register(self, node: _Node) -> None:
        obj = node_object(node, self.clock, self._kubelet_version)
        try:
            created = await self.client.create("nodes", None, obj)
            node.uid = created["metadata"]["uid"]
            return
        except ApiError as e:
            if e.reason != "AlreadyExists":
                log.warning("registering simulated node %s failed: %s", node.name, e)
                return
        # Registered before (a restart): reconcile labels and report fresh status, as kubelet does.
        try:
            current = await self.client.get("nodes", None, node.name)
            node.uid = current["metadata"]["uid"]
            await self.client.patch("nodes", None, node.name,
                                    {"metadata": {"labels": obj["metadata"]["labels"],
                                                  "annotations": obj["metadata"]["annotations"]}},
                                    STRATEGIC)
            await self._post_status(node, (current.get("status") or {}).get("conditions"))
        except ApiError as e:
            log.warning("updating simulated node %s failed: %s", node.name, e)

    async def _post_status(self, node: _Node, previous: list | None) -> None:
        status = node_status(node, self.clock.rfc3339(), self._kubelet_version, previous)
        await self.client.patch("nodes", None, node.name, {"status": status}, STRATEGIC, subresource="status")
        self.stats["status_writes"] += 1

    def _lease_object(self, node: _Node) -> dict:
        meta: dict = {"name": node.name, "namespace": LEASE_NAMESPACE}
        if node.uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node.uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": node.name, "leaseDurationSeconds": LEASE_DURATION,
                         "renewTime": self.clock.rfc3339_micro()}}

    async def _ensure_lease(self, node: _Node) -> None:
        try:
            node.lease = await self.client.create("leases", LEASE_NAMESPACE, self._lease_object(node))
            self.stats["lease_writes"] += 1
        except ApiError as e:
            if e.reason == "AlreadyExists":
                await self._renew_lease(node)
            else:
                log.warning("creating the lease of %s failed: %s", node.name, e)

    async def _renew_lease(self, node: _Node) -> None:
        # Like kubelet: update from the lease we last wrote; on a conflict or without one, read it.
        for _ in range(2):
            try:
                if node.lease is None:
                    node.lease = await self.client.get("leases", LEASE_NAMESPACE, node.name)
                lease = dict(node.lease)
                lease["spec"] = dict(lease.get("spec") or {}, renewTime=self.clock.rfc3339_micro(),
                                     holderIdentity=node.name, leaseDurationSeconds=LEASE_DURATION)
                node.lease = await self.client.update("leases", LEASE_NAMESPACE, lease)
                self.stats["lease_writes"] += 1
                return
            except ApiError as e:
                node.lease = None
                if e.code == 404:
                    if self._node_informer is None or self._node_informer.get(node.name) is not None:
                        try:
                            node.lease = await self.client.create("leases", LEASE_NAMESPACE, self._lease_object(node))
                            self.stats["lease_writes"] += 1
                        except ApiError as e2:
                            log.warning("recreating the lease of %s failed: %s", node.name, e2)
                    return
                if e.code != 409:
                    log.warning("renewing the lease of %s failed: %s", node.name, e)
                    return
            except Exception as e:  # a lost connection: the next round tries again
                log.warning("renewing the lease of %s failed: %r", node.name, e)
                node.lease = None
                return

    async def _report_status(self, node: _Node) -> None:
        current = self._node_informer.get(node.name) if self._node_informer else None
        if current is None:
            return
        try:
            await self._post_status(node, (current.get("status") or {}).get("conditions"))
        except ApiError as e:
            if e.code != 404:
                log.warning("status report of %s failed: %s", node.name, e)
        except Exception as e:
            log.warning("status report of %s failed: %r", node.name, e)

    async def _spread(self, interval: float, act: Callable[[_Node], Awaitable[None]], start: float) -> None:
        """Call act(node) for every node once per `interval`, in slices spread evenly over it."""
        nodes = list(self.nodes.values())
        if not nodes or interval <= 0:
            return
        slots = max(1, min(len(nodes), int(interval / 0.05)))  # a slice at most every 50 ms
        slices = [nodes[s::slots] for s in range(slots)]
        tick = interval / slots
        k = 1  # slice k - 1 is due at start + k * tick (computed, so no drift accumulates)
        while True:
            delay = start + k * tick - self.clock.now()
            if delay > 1e-9:
                await self.clock.sleep(delay)
            now = self.clock.now() + 1e-9
            batch: list[_Node] = []
            taken = 0
            # After a jump of the clock, every slice that came due is served once, not more.
            while start + k * tick <= now and taken < slots:
                batch.extend(slices[(k - 1) % slots])
                k += 1
                taken += 1
            if start + k * tick <= now:  # more than a whole round behind: skip ahead
                k = int((now - start) / tick) + 1
            await bounded_map(act, batch, self.concurrency)

    # ---- node status: answer the node lifecycle controller ----

    def _on_node(self, kind: str, old: dict | None, new: dict | None) -> None:
        if new is None or new["metadata"]["name"] not in self.nodes:
            return
        ready = next((c for c in (new.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            self._node_queue.add(new["metadata"]["name"])  # type: ignore[union-attr]

    async def _sync_node(self, name: str) -> None:
        # Someone (the node lifecycle controller, after a pause in our heartbeats) marked the node
        # not Ready; a live kubelet posts its real status again on its next status update.
        current = self._node_informer.get(name) if self._node_informer else None
        if current is None:
            return
        ready = next((c for c in (current.get("status") or {}).get("conditions") or []
                      if c.get("type") == "Ready"), None)
        if ready is not None and ready.get("status") == "True":
            return
        try:
            await self._post_status(self.nodes[name], (current.get("status") or {}).get("conditions"))
        except ApiError as e:
            if e.code != 404:
                raise

    # ---- pods ----

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        obj = new or old
        if obj is None:
            return
        node = (obj.get("spec") or {}).get("nodeName")
        if node in self.nodes or (old is not None and (old.get("spec") or {}).get("nodeName") in self.nodes):
            meta = obj["metadata"]
            key = f"{meta.get('namespace')}/{meta['name']}"
            if old is not None and new is not None and self._echo(key, old, new):
                self.stats["echoes"] += 1
                return
            self._pod_queue.add(key)  # type: ignore[union-attr]

    def _echo(self, key: str, old: dict, new: dict) -> bool:
        """Whether an update is our own status write coming back with nothing else changed: its
        sync would compute the status it shows and write nothing. Watched objects are read-only
        and a status update keeps the stored spec, so the same spec object means the same spec."""
        sim = self._pods.get(key)
        if sim is None or sim.written is None or new.get("spec") is not old.get("spec"):
            return False
        meta, ometa = new["metadata"], old["metadata"]
        return (meta.get("uid") == sim.uid and meta.get("deletionTimestamp") == ometa.get("deletionTimestamp")
                and meta.get("generation") == ometa.get("generation")
                and meta.get("annotations") == ometa.get("annotations")
                and _signature(new.get("status") or {}) == sim.written)

    def _forget(self, key: str, sim: _Pod) -> None:
        self._pods.pop(key, None)
        sim.release_ip()
        t = self._timers.pop(key, None)
        if t is not None and t is not asyncio.current_task():
            t.cancel()

    def _adopt(self, pod: dict, node: _Node, key: str) -> _Pod:
        """Runtime state for a pod: fresh, or rebuilt from the status we posted before a restart."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        status = pod.get("status") or {}
        now = self.clock.now()
        ann = meta.get("annotations") or {}
        exit_after = parse_duration(ann.get(EXIT_AFTER_ANNOTATION))
        try:
            exit_code = int(ann.get(EXIT_CODE_ANNOTATION, "0"))
        except ValueError:
            exit_code = 1
        ip = status.get("podIP")
        if not (ip and node.claim_ip(ip)):
            ip = node.allocate_ip()
        start = parse_rfc3339(status.get("startTime")) or now
        previous = {s.get("name"): s for s in status.get("containerStatuses") or []}
        containers = []
        for c in spec.get("containers") or []:
            name = c.get("name") or ""
            sc = _Container(name, _hexid(meta["uid"], name)[:64], running_since=start)
            prev = previous.get(name)
            if prev is not None and str(prev.get("containerID", "")).startswith("simulated://"):
                sc.cid = prev["containerID"].split("://", 1)[1]
                sc.restarts = int(prev.get("restartCount") or 0)
                state = prev.get("state") or {}
                sc.last = prev.get("lastState") or None
                if state.get("running"):
                    sc.running_since = parse_rfc3339(state["running"].get("startedAt")) or now
                else:
                    # Exited for good, or waiting in back-off after the exit kept in lastState.
                    term = state.get("terminated") or (sc.last or {}).get("terminated") or {}
                    if state.get("terminated") is None:
                        sc.last = None  # while waiting, lastState shows `terminated` itself
                    code = int(term.get("exitCode", 0))
                    finished = parse_rfc3339(term.get("finishedAt")) or now
                    sc.running_since = None
                    sc.terminated = (code, parse_rfc3339(term.get("startedAt")) or start, finished)
                    policy = spec.get("restartPolicy") or "Always"
                    if policy == "Always" or (policy == "OnFailure" and code != 0):
                        sc.restart_at = finished + backoff_delay(sc.restarts)
            containers.append(sc)
        ads = spec.get("activeDeadlineSeconds")
        return _Pod(key, meta["uid"], node, ip, start, spec.get("restartPolicy") or "Always", exit_after,
                    exit_code, start + ads if isinstance(ads, int) else None, containers)

    async def _write_status(self, pod: dict, status: dict) -> None:
        """Replace the kubelet's part of the status; conditions others own stay as they are.

        A full status update guarded by the resourceVersion we read costs less than a strategic
        merge patch; if the pod changed meanwhile the write conflicts and the key is retried
        from the informer's newer copy.
        """
        meta = pod["metadata"]
        old = pod.get("status") or {}
        merged = dict(old)
        merged.update(status)
        merged["conditions"] = status["conditions"] + [
            c for c in old.get("conditions") or [] if c.get("type") not in _KUBELET_CONDITIONS]
        for k in ("reason", "message"):
            if k not in status:
                merged.pop(k, None)
        obj = dict(pod, status=merged)
        try:
            await self.client.update_status("pods", meta.get("namespace"), obj, result=False)
            self.stats["status_writes"] += 1
        except ApiError as e:
            if e.code == 404 or (e.code == 409 and "UID" in e.message):
                return  # deleted (or replaced) meanwhile: its own event follows
            if e.code == 409:
                self.stats["conflicts"] += 1
            raise

    def _schedule(self, key: str, at: float) -> None:
        """Sync `key` again at clock time `at` (one timer per pod, the earliest wins)."""
        sim = self._pods.get(key)
        if sim is None:
            return
        t = self._timers.get(key)
        if t is not None and not t.done() and sim.timer_at is not None and sim.timer_at <= at:
            return
        if t is not None:
            t.cancel()
        sim.timer_at = at

        async def fire():
            await self.clock.sleep_until(at)
            if self._timers.get(key) is asyncio.current_task():
                del self._timers[key]
            s = self._pods.get(key)
            if s is not None:
                s.timer_at = None
            if self._pod_queue is not None:
                self._pod_queue.add(key)
        self._timers[key] = asyncio.get_running_loop().create_task(fire())

    async def _sync_pod(self, key: str) -> None:
        pod = self._pod_informer.get(key) if self._pod_informer else None
        sim = self._pods.get(key)
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName")) if pod is not None else None
        if pod is None or node is None or (sim is not None and sim.uid != pod["metadata"]["uid"]):
            if sim is not None:
                self._forget(key, sim)
                sim = None
            if pod is None or node is None:
                return
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            # Graceful deletion: nothing runs, so the containers are gone at once; finish the
            # deletion as kubelet does once they have stopped. Like the kubelet, post the
            # terminal phase first when finalizers keep the pod visible afterwards (a Job's
            # tracking finalizer: the Job counts the pod as failed); without finalizers the
            # object goes at once and that write would only cost time.
            if sim is not None and meta.get("finalizers"):
                sim.kill(self.clock.now())
                status = pod_status(pod, sim, self.clock.now(), self.clock)
                if _signature(status) != _signature(pod.get("status") or {}):
                    try:
                        await self._write_status(pod, status)
                    except ApiError as e:
                        if e.code != 409:
                            raise
                        return  # a newer copy is on its way: sync again from it
                sim.release_ip()
            try:
                await self.client.delete("pods", meta.get("namespace"), meta["name"], grace_period_seconds=0,
                                         preconditions={"uid": meta["uid"]}, result=False, current=pod)
                self.stats["deletes"] += 1
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            # A terminal phase is final, whoever wrote it (the kubelet's status manager never
            # moves a pod out of one): finished before we knew it, or failed by someone else.
            if sim is not None:
                self._forget(key, sim)
            return
        if sim is None:
            sim = self._pods[key] = self._adopt(pod, node, key)
        now = self.clock.now()
        sim.advance(now)
        status = pod_status(pod, sim, now, self.clock)
        written = _signature(status)
        if written != _signature(pod.get("status") or {}):
            # Set before the write: its event can reach _on_pod before the write returns here.
            sim.written = written
            try:
                await self._write_status(pod, status)
            except BaseException:
                sim.written = None
                raise
        if sim.terminal:
            sim.release_ip()
            return
        due = sim.next_due()
        if due is not None:
            self._schedule(key, due)
