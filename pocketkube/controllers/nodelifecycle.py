"""Node lifecycle: notice nodes that stopped reporting, taint them, and evict their pods.

Why it exists: a node that dies says nothing. Only an observer noticing the silence can mark it
unhealthy so that the scheduler stops using it and its pods are replaced elsewhere. This is
kube-controller-manager's node lifecycle controller together with its NoExecute taint manager
(`pkg/controller/nodelifecycle`, `pkg/controller/tainteviction`), with the same names, reasons,
messages and events:

* Health. Every kubelet renews a Lease in kube-node-lease (and posts node status now and then).
  Like upstream, the controller keeps its own "probe" timestamp per node, set from *its* clock
  whenever it observes a renewed lease or a new Ready heartbeat, so clock skew between machines
  does not matter. When the probe is older than the grace period (40 s), every kubelet-owned
  condition becomes Unknown ("NodeStatusUnknown", "Kubelet stopped posting node status."), a
  NodeNotReady event is recorded and the node's pods are marked not Ready. The kubelet puts
  Ready back itself when it returns; the controller never writes Ready=True.
* Taints follow conditions. Ready False/Unknown give node.kubernetes.io/not-ready / unreachable
  with effect NoSchedule and NoExecute (the NoExecute one carries timeAdded); pressure
  conditions and spec.unschedulable give their NoSchedule taints. Taints disappear when the
  condition clears. Only taints this controller owns are touched.
* NoExecute eviction. A pod on a node with NoExecute taints is deleted (event
  TaintManagerEviction, condition DisruptionTarget/DeletionByTaintManager) at once if some taint
  is not tolerated, otherwise when the shortest tolerationSeconds runs out, counted from the
  taint's timeAdded; a toleration without seconds tolerates forever. Pods lacking a
  not-ready/unreachable NoExecute toleration get the one the apiserver's DefaultTolerationSeconds
  admission adds (300 s).

Not modelled: zones and their disruption modes (upstream stops evicting when every node of every
zone is down, and rate-limits tainting to 0.1 node/s per zone): here taints and evictions apply
at once, which is what a one-machine cluster wants to see.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..api.errors import ApiError
from ..client import MERGE, STRATEGIC, Client
from ..client.informer import ComponentInformers, Informer, object_key
from ..client.retry import get_or_none, retry_on_conflict
from ..client.workqueue import WorkQueue, run_workers
from ..clock import Clock, parse_rfc3339

log = logging.getLogger("pocketkube.nodelifecycle")

NODE_CONTROLLER = "node-controller"
TAINT_EVICTION_CONTROLLER = "taint-eviction-controller"
LEASE_NAMESPACE = "kube-node-lease"

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

# {condition type: {status: taint key}} as upstream's nodeConditionToTaintKeyStatusMap.
CONDITION_TAINTS = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
_CONDITION_TAINT_KEYS = {k for m in CONDITION_TAINTS.values() for k in m.values()}
# Conditions the kubelet owns and the controller turns Unknown (NetworkUnavailable is not).
_KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


# ---- taints and tolerations --------------------------------------------------------------------

def tolerates(toleration: dict, taint: dict) -> bool:
    """Toleration.ToleratesTaint: effect, key and value (operator Equal/Exists) must match."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def with_default_tolerations(tolerations: list[dict], seconds: float) -> list[dict]:
    """The pod's tolerations plus those DefaultTolerationSeconds admission would have added."""
    out = list(tolerations)
    for key in (TAINT_NOT_READY, TAINT_UNREACHABLE):
        if not any((t.get("key") or "") in ("", key) and (t.get("effect") or "") in ("", "NoExecute")
                   for t in tolerations):
            out.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds})
    return out


def eviction_time(taints: list[dict], tolerations: list[dict], added_at) -> float | None:
    """When a pod must leave a node with these NoExecute taints: a time, or None for never.

    added_at(taint) -> when the taint was added. Each taint must be tolerated by some
    toleration (the first that matches is the one used, as GetMatchingTolerations); the pod
    stays until the shortest tolerationSeconds has passed since its taint was added.
    """
    fire: float | None = None
    for taint in taints:
        tol = next((t for t in tolerations if tolerates(t, taint)), None)
        if tol is None:
            return float("-inf")  # not tolerated: at once
        secs = tol.get("tolerationSeconds")
        if secs is None:
            continue
        t = added_at(taint) + max(0, secs)
        fire = t if fire is None else min(fire, t)
    return fire


def _condition(node: dict, ctype: str) -> dict | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _owned_taint(t: dict) -> bool:
    if t.get("effect") == "NoSchedule":
        return t.get("key") in _CONDITION_TAINT_KEYS or t.get("key") == TAINT_UNSCHEDULABLE
    if t.get("effect") == "NoExecute":
        return t.get("key") in (TAINT_NOT_READY, TAINT_UNREACHABLE)
    return False


def desired_taints(node: dict, now: str) -> list[dict] | None:
    """The node's taints with this controller's share recomputed; None when nothing changes."""
    want: list[tuple[str, str]] = []
    for c in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get(c.get("type"), {}).get(c.get("status"))
        if key:
            want.append((key, "NoSchedule"))
    if (node.get("spec") or {}).get("unschedulable"):
        want.append((TAINT_UNSCHEDULABLE, "NoSchedule"))
    ready = _condition(node, "Ready")
    status = ready.get("status") if ready else None
    if status == "False":
        want.append((TAINT_NOT_READY, "NoExecute"))
    elif status == "Unknown":
        want.append((TAINT_UNREACHABLE, "NoExecute"))
    current = list((node.get("spec") or {}).get("taints") or [])
    have = {(t.get("key"), t.get("effect")) for t in current if _owned_taint(t)}
    wanted = set(want)
    if have == wanted:
        return None
    out = [t for t in current if not _owned_taint(t) or (t.get("key"), t.get("effect")) in wanted]
    for key, effect in want:
        if (key, effect) not in have:
            taint = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = now
            out.append(taint)
    return out


# ---- events -------------------------------------------------------------------------------------

class _Recorder:
    """core/v1 Events as client-go's recorder writes them (name = object name + hex nanoseconds).

    A fake clock stands still, so names are kept unique with a process-wide counter.
    """

    _last_ns = 0

    def __init__(self, client: Client, clock: Clock, component: str):
        self.client = client
        self.clock = clock
        self.component = component

    async def event(self, ref: dict, etype: str, reason: str, message: str) -> None:
        now = self.clock.rfc3339()
        ns = ref.get("namespace") or "default"
        body = {"apiVersion": "v1", "kind": "Event", "metadata": {"namespace": ns},
                "involvedObject": ref, "reason": reason, "message": message,
                "source": {"component": self.component}, "firstTimestamp": now, "lastTimestamp": now,
                "count": 1, "type": etype, "eventTime": None, "reportingComponent": self.component,
                "reportingInstance": ""}
        for _ in range(3):
            ns_time = max(int(self.clock.now() * 1e9), _Recorder._last_ns + 1)
            _Recorder._last_ns = ns_time
            body["metadata"]["name"] = f"{ref['name']}.{ns_time:x}"
            try:
                await self.client.create("events", ns, body)
                return
            except ApiError as e:
                if e.reason != "AlreadyExists":
                    log.debug("event %s for %s not recorded: %s", reason, ref.get("name"), e)
                    return
            except Exception as e:  # events are best effort, as upstream
                log.debug("event %s for %s not recorded: %r", reason, ref.get("name"), e)
                return


def _pod_ref(pod: dict, full: bool) -> dict:
    meta = pod["metadata"]
    ref = {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "namespace": meta.get("namespace", "")}
    if full:
        ref["uid"] = meta.get("uid", "")
        ref["resourceVersion"] = meta.get("resourceVersion", "")
    return ref


def _node_ref(node: dict) -> dict:
    meta = node["metadata"]
    return {"apiVersion": "v1", "kind": "Node", "name": meta["name"], "uid": meta.get("uid", "")}


# ---- the controller -----------------------------------------------------------------------------

@dataclass
class _Health:
    probe: float                     # our clock's time of the last sign of life
    heartbeat: str | None = None     # Ready.lastHeartbeatTime as last seen
    renew: str | None = None         # lease spec.renewTime as last seen


class NodeLifecycleController:
    def __init__(self, client: Client, clock: Clock | None = None, grace_period: float = 40.0,
                 eviction_default: float = 300.0, *, startup_grace_period: float | None = None,
                 monitor_period: float | None = None, workers: int = 8, informers=None):
        self.client = client
        # `informers` (SharedInformers): the controller manager's nodes and pods, which it starts
        # and stops; pods then include unbound ones, which the handlers pass over.
        self.informers = informers
        self.clock = clock or Clock()
        self.grace_period = grace_period
        self.eviction_default = eviction_default
        # Upstream: 60 s for nodes that never posted status, beside the 40 s grace period.
        self.startup_grace_period = startup_grace_period if startup_grace_period is not None \
            else grace_period * 1.5
        # Upstream checks every 5 s; a short grace period (tests, --node-monitor-grace-period 3)
        # needs a check well within it.
        self.monitor_period = monitor_period if monitor_period is not None \
            else min(5.0, max(0.05, grace_period / 8))
        self.workers = workers
        self.recorder = _Recorder(client, self.clock, NODE_CONTROLLER)
        self.eviction_recorder = _Recorder(client, self.clock, TAINT_EVICTION_CONTROLLER)
        self._health: dict[str, _Health] = {}
        self._known: dict[str, dict] = {}           # nodes the monitor has announced
        self._retry_not_ready: set[str] = set()     # pods of these nodes still to be marked not Ready
        self._pods_by_node: dict[str, set[str]] = {}
        self._evictions: dict[str, tuple[float, asyncio.Task]] = {}
        self._taint_seen: dict[tuple[str, str, str], float] = {}
        self._informer_set: ComponentInformers | None = None
        self._nodes: Informer | None = None
        self._leases: Informer | None = None
        self._pods: Informer | None = None
        self._node_queue: WorkQueue | None = None
        self._pod_queue: WorkQueue | None = None
        self._evict_queue: WorkQueue | None = None
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()  # fire-and-forget events, referenced until done

    # ---- lifecycle ----

    async def start(self) -> None:
        self._node_queue = WorkQueue("node-lifecycle", self.clock)
        self._pod_queue = WorkQueue("node-lifecycle-pods", self.clock)
        self._evict_queue = WorkQueue("taint-eviction", self.clock)
        self._informer_set = ComponentInformers(self.client, self.informers)
        self._leases = self._informer_set.own("leases", namespace=LEASE_NAMESPACE)
        self._nodes = self._informer_set.get("nodes")
        self._pods = self._informer_set.get("pods", field_selector="spec.nodeName!=")
        self._leases.add_handler(self._on_lease)
        self._nodes.add_handler(self._on_node)
        self._pods.add_handler(self._on_pod)
        await self._informer_set.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(run_workers(self._node_queue, self._sync_node_taints, self.workers),
                             name="nodelifecycle-taints"),
            loop.create_task(run_workers(self._pod_queue, self._sync_pod, 4), name="nodelifecycle-pods"),
            loop.create_task(run_workers(self._evict_queue, self._evict, self.workers), name="taint-eviction"),
            loop.create_task(self._monitor_loop(), name="nodelifecycle-monitor"),
        ]

    async def stop(self) -> None:
        for q in (self._node_queue, self._pod_queue, self._evict_queue):
            if q is not None:
                q.shutdown()
        tasks = self._tasks + [t for _, t in self._evictions.values()] + list(self._background)
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        self._evictions.clear()
        if self._informer_set is not None:
            await self._informer_set.stop()

    # ---- observing health ----

    def _observe(self, node: dict) -> _Health:
        """Refresh the probe timestamp when the node shows a new Ready heartbeat."""
        name = node["metadata"]["name"]
        ready = _condition(node, "Ready")
        beat = ready.get("lastHeartbeatTime") if ready else None
        h = self._health.get(name)
        now = self.clock.now()
        if h is None:
            # A node that never posted status is measured from its creation (startup grace).
            created = parse_rfc3339(node["metadata"].get("creationTimestamp"))
            start = min(now, created) if (ready is None and created is not None) else now
            lease = self._leases.get(f"{LEASE_NAMESPACE}/{name}") if self._leases else None
            h = self._health[name] = _Health(start, beat, ((lease or {}).get("spec") or {}).get("renewTime"))
            if lease is not None:
                h.probe = now
        elif beat != h.heartbeat:
            h.heartbeat = beat
            h.probe = now
        return h

    def _on_lease(self, kind: str, old: dict | None, new: dict | None) -> None:
        if new is None:
            return
        name = new["metadata"]["name"]
        renew = (new.get("spec") or {}).get("renewTime")
        h = self._health.get(name)
        if h is None:
            return  # the node's first sighting reads the lease
        prev, cur = parse_rfc3339(h.renew), parse_rfc3339(renew)
        if cur is not None and (prev is None or cur > prev):
            h.renew = renew
            h.probe = self.clock.now()

    def _on_node(self, kind: str, old: dict | None, new: dict | None) -> None:
        if new is None:
            name = (old or {}).get("metadata", {}).get("name")
            self._health.pop(name, None)
            self._taint_seen = {k: v for k, v in self._taint_seen.items() if k[0] != name}
            return
        self._observe(new)
        name = new["metadata"]["name"]
        if old is None or _taint_inputs(old) != _taint_inputs(new):
            self._node_queue.add(name)  # type: ignore[union-attr]
        if old is None or _no_execute(old) != _no_execute(new):
            for key in list(self._pods_by_node.get(name, ())):
                pod = self._pods.get(key) if self._pods else None
                if pod is not None:
                    self._process_eviction(key, pod)

    # ---- monitoring ----

    async def _monitor_loop(self) -> None:
        while True:
            try:
                await self._monitor()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("monitoring node health failed")
            await self.clock.sleep(self.monitor_period)

    async def _monitor(self) -> None:
        nodes = self._nodes.list() if self._nodes else []
        names = {n["metadata"]["name"] for n in nodes}
        added = [n for n in nodes if n["metadata"]["name"] not in self._known]
        removed = [n for name, n in self._known.items() if name not in names]
        for n in added:
            self._known[n["metadata"]["name"]] = n
        for n in removed:
            self._known.pop(n["metadata"]["name"], None)

        async def announce(item) -> None:
            verb, n = item
            name = n["metadata"]["name"]
            what = f"Registered Node {name} in Controller" if verb == "RegisteredNode" else \
                f"Removing Node {name} from Controller"
            await self.recorder.event(_node_ref(n), "Normal", verb, f"Node {name} event: {what}")
        await _bounded([("RegisteredNode", n) for n in added] + [("RemovingNode", n) for n in removed],
                      announce, 32)
        await _bounded(nodes, self._check_node, 16)

    async def _check_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        for _ in range(5):  # upstream NodeHealthUpdateRetry
            try:
                observed, current = await self._try_update_health(node)
                break
            except ApiError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    log.warning("updating the health of node %s failed: %s", name, e)
                    return
                try:
                    node = await self.client.get("nodes", None, name)
                except ApiError:
                    return
        else:
            return
        if current != "True" and observed == "True":
            await self.recorder.event(_node_ref(node), "Normal", "NodeNotReady",
                                      f"Node {name} status is now: NodeNotReady")
            self._retry_not_ready.add(name)
        if name in self._retry_not_ready and current != "True":
            if await self._mark_pods_not_ready(name):
                self._retry_not_ready.discard(name)
        elif current == "True":
            self._retry_not_ready.discard(name)

    async def _try_update_health(self, node: dict) -> tuple[str | None, str | None]:
        """Mark the node's conditions Unknown if it has been silent too long (tryUpdateNodeHealth)."""
        h = self._observe(node)
        ready = _condition(node, "Ready")
        observed = ready.get("status") if ready else "Unknown"
        grace = self.startup_grace_period if ready is None else self.grace_period
        now = self.clock.now()
        if now <= h.probe + grace:
            return observed, observed
        if ready is not None and ready.get("status") == "Unknown":
            return observed, observed  # already marked: upstream writes only when Ready changes
        stamp = self.clock.rfc3339(now)
        created = node["metadata"].get("creationTimestamp")
        changes = []
        for ctype in _KUBELET_CONDITIONS:
            c = _condition(node, ctype)
            if c is None:
                changes.append({"type": ctype, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                                "message": "Kubelet never posted node status.",
                                "lastHeartbeatTime": created, "lastTransitionTime": stamp})
            elif c.get("status") != "Unknown":
                changes.append(dict(c, status="Unknown", reason="NodeStatusUnknown",
                                    message="Kubelet stopped posting node status.", lastTransitionTime=stamp))
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                 "status": {"conditions": changes}}
        await self.client.patch("nodes", None, node["metadata"]["name"], patch, STRATEGIC, subresource="status")
        log.info("node %s stopped posting status: marked Unknown", node["metadata"]["name"])
        return (ready.get("status") if ready else None), "Unknown"

    async def _mark_pods_not_ready(self, node_name: str) -> bool:
        ok = True
        for key in list(self._pods_by_node.get(node_name, ())):
            pod = self._pods.get(key) if self._pods else None
            if pod is not None and not await self._mark_pod_not_ready(pod, node_name):
                ok = False
        return ok

    async def _mark_pod_not_ready(self, pod: dict, node_name: str) -> bool:
        """MarkPodsNotReady for one pod: Ready=False, and a NodeNotReady warning on the pod."""
        if (pod.get("spec") or {}).get("nodeName") != node_name:
            return True
        ready = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") == "False":
            return True
        cond = dict(ready, status="False", lastTransitionTime=self.clock.rfc3339())
        meta = pod["metadata"]
        try:
            await self.client.patch("pods", meta.get("namespace"), meta["name"],
                                    {"metadata": {"uid": meta["uid"]}, "status": {"conditions": [cond]}},
                                    STRATEGIC, subresource="status")
        except ApiError as e:
            if e.code == 404:
                return True
            log.info("marking pod %s/%s not ready failed: %s", meta.get("namespace"), meta["name"], e)
            return False
        await self.recorder.event(_pod_ref(pod, True), "Warning", "NodeNotReady", "Node is not ready")
        return True

    # ---- taints ----

    async def _sync_node_taints(self, name: str) -> None:
        cached = self._nodes.get(name) if self._nodes else None

        async def read() -> dict | None:
            nonlocal cached
            if cached is not None:
                out, cached = cached, None
                return out
            return await self._get_or_none("nodes", None, name)

        async def write(node: dict) -> None:
            taints = desired_taints(node, self.clock.rfc3339())
            if taints is None:
                return
            patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                     "spec": {"taints": taints or None}}
            await self.client.patch("nodes", None, name, patch, MERGE)

        await retry_on_conflict(read, write, f"taints of node {name}", attempts=5)

    async def _get_or_none(self, res: str, ns: str | None, name: str) -> dict | None:
        return await get_or_none(self.client, res, ns, name)

    # ---- pods ----

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        key = object_key(new or old)  # type: ignore[arg-type]
        old_node = (old.get("spec") or {}).get("nodeName") if old else None
        new_node = (new.get("spec") or {}).get("nodeName") if new else None
        if not old_node and not new_node:
            return  # not on a node (yet): nothing to evict or mark
        if old_node and old_node != new_node:
            s = self._pods_by_node.get(old_node)
            if s is not None:
                s.discard(key)
                if not s:
                    del self._pods_by_node[old_node]
        if new is None:
            self._cancel_eviction(key, old)
            return
        if new_node:
            self._pods_by_node.setdefault(new_node, set()).add(key)
        old_tol = (old.get("spec") or {}).get("tolerations") if old else None
        new_tol = (new.get("spec") or {}).get("tolerations")
        if old is None or old_node != new_node or old_tol != new_tol or \
                bool(old["metadata"].get("deletionTimestamp")) != bool(new["metadata"].get("deletionTimestamp")):
            self._process_eviction(key, new)
        if new_node and old_node != new_node:
            self._pod_queue.add(key)  # type: ignore[union-attr]

    async def _sync_pod(self, key: str) -> None:
        # A pod that lands on a node that is not Ready is marked not Ready too (processPod).
        pod = self._pods.get(key) if self._pods else None
        if pod is None:
            return
        node_name = (pod.get("spec") or {}).get("nodeName")
        node = self._nodes.get(node_name) if (self._nodes and node_name) else None
        if node is None or node_name not in self._health:
            return
        ready = _condition(node, "Ready")
        if ready is not None and ready.get("status") != "True":
            if not await self._mark_pod_not_ready(pod, node_name):
                raise RuntimeError(f"pod {key}: could not mark it not ready")

    # ---- NoExecute taint eviction ----

    def _added_at(self, node_name: str):
        def added(taint: dict) -> float:
            t = parse_rfc3339(taint.get("timeAdded"))
            if t is not None:
                return t
            # A taint without timeAdded counts from when this controller first saw it.
            return self._taint_seen.setdefault((node_name, taint.get("key", ""), taint.get("effect", "")),
                                               self.clock.now())
        return added

    def _due(self, pod: dict) -> float | None:
        """When this pod must be evicted, or None."""
        node_name = (pod.get("spec") or {}).get("nodeName")
        node = self._nodes.get(node_name) if (self._nodes and node_name) else None
        if node is None or pod["metadata"].get("deletionTimestamp"):
            return None
        taints = _no_execute(node)
        if not taints:
            return None
        tolerations = with_default_tolerations((pod.get("spec") or {}).get("tolerations") or [],
                                               self.eviction_default)
        return eviction_time(list(taints), tolerations, self._added_at(node_name))

    def _process_eviction(self, key: str, pod: dict) -> None:
        due = self._due(pod)
        if due is None:
            self._cancel_eviction(key, pod)
            return
        current = self._evictions.get(key)
        if current is not None:
            if current[0] <= due:
                return  # an earlier eviction is already scheduled (upstream keeps it)
            current[1].cancel()
        async def fire():
            await self.clock.sleep_until(due)
            self._evictions.pop(key, None)
            self._evict_queue.add(key)  # type: ignore[union-attr]
        self._evictions[key] = (due, asyncio.get_running_loop().create_task(fire()))

    def _cancel_eviction(self, key: str, pod: dict | None) -> None:
        current = self._evictions.pop(key, None)
        if current is None:
            return
        current[1].cancel()
        if pod is not None:
            meta = pod["metadata"]
            t = asyncio.get_running_loop().create_task(self.eviction_recorder.event(
                _pod_ref(pod, False), "Normal", "TaintManagerEviction",
                f"Cancelling deletion of Pod {meta.get('namespace')}/{meta['name']}"))
            self._background.add(t)
            t.add_done_callback(self._background.discard)

    async def _evict(self, key: str) -> None:
        pod = self._pods.get(key) if self._pods else None
        if pod is None:
            return
        due = self._due(pod)
        if due is None:
            return
        if due > self.clock.now():
            self._process_eviction(key, pod)  # the taints changed meanwhile
            return
        meta = pod["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        log.info("evicting pod %s/%s from tainted node %s", ns, name, (pod.get("spec") or {}).get("nodeName"))
        await self.eviction_recorder.event(_pod_ref(pod, False), "Normal", "TaintManagerEviction",
                                           f"Marking for deletion Pod {ns}/{name}")
        for attempt in range(5):  # upstream retries five times
            try:
                current = await self.client.get("pods", ns, name)
                conds = (current.get("status") or {}).get("conditions") or []
                if not any(c.get("type") == "DisruptionTarget" and c.get("status") == "True" for c in conds):
                    cond = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                            "message": "Taint manager: deleting due to NoExecute taint",
                            "lastTransitionTime": self.clock.rfc3339(), "lastProbeTime": None}
                    await self.client.patch("pods", ns, name,
                                            {"metadata": {"uid": current["metadata"]["uid"]},
                                             "status": {"conditions": [cond]}},
                                            STRATEGIC, subresource="status")
                await self.client.delete("pods", ns, name)
                return
            except ApiError as e:
                if e.code == 404:
                    return
                if attempt == 4:
                    raise
                await asyncio.sleep(0.01)


async def _bounded(items: list, fn, limit: int) -> None:
    """Run fn over items with at most `limit` in flight."""
    it = iter(items)

    async def worker():
        for x in it:
            await fn(x)
    await asyncio.gather(*(worker() for _ in range(max(1, min(limit, len(items))))))


def _no_execute(node: dict) -> tuple:
    return tuple(t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute")


def _taint_inputs(node: dict) -> tuple:
    conds = tuple(sorted((c.get("type"), c.get("status")) for c in (node.get("status") or {}).get("conditions") or []))
    taints = tuple(sorted((t.get("key", ""), t.get("effect", ""))
                          for t in (node.get("spec") or {}).get("taints") or []))
    return conds, bool((node.get("spec") or {}).get("unschedulable")), taints
