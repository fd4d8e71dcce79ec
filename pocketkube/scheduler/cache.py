"""The scheduler's picture of the cluster: per-node aggregates kept up to date incrementally.

Deciding where a pod goes must not cost a scan of every pod in the cluster, so each node keeps
running totals (requested and "non-zero" requested resources, pod count, host ports in use,
replicas per owner) that change by one pod's worth whenever a pod arrives, leaves or finishes.

Pods the scheduler has just placed are *assumed*: counted on their node at once, before the
binding is written and long before the watch reports it, so the next decision already sees
the capacity they use (kube-scheduler's assume cache). The watch event later confirms the
assumption; a failed binding forgets it. Terminal pods (Succeeded/Failed) free their node's
resources; pods being deleted still hold them but no longer count as replicas for spreading.
"""

from __future__ import annotations

import itertools
from collections import Counter

from .podinfo import LABEL_HOSTNAME, LABEL_ZONE, spread_owner
from .resources import CPU, EPHEMERAL, MEMORY, PODS, PodRes, host_ports, resource_fields, resource_list
from .terms import compile_terms

# A node's version moves with every change to it, so that scores and filter verdicts computed
# for it can be reused while it stays. Drawn from one counter for all nodes: a node deleted and
# created again under its name never shows a version its predecessor had.
_VERSIONS = itertools.count(1)


class ShapeMemo:
    """Per-node results kept for the last pods of each shape, reused while a node's `version`
    stays: scheduling a ReplicaSet's replicas one after another, only the node the last one went
    to needs its numbers again. Bounded: past MAX_SHAPES shapes it starts over."""

    MAX_SHAPES = 64

    def __init__(self) -> None:
        self._shapes: dict[tuple, dict[str, tuple]] = {}

    def for_shape(self, shape: tuple) -> dict[str, tuple]:
        """node name -> (node version, results...) for pods of this shape."""
        memo = self._shapes.get(shape)
        if memo is None:
            if len(self._shapes) >= self.MAX_SHAPES:
                self._shapes.clear()
            memo = self._shapes[shape] = {}
        return memo


_NOT_SCALAR = {CPU, MEMORY, EPHEMERAL, PODS}


class PodEntry:
    """One pod counted on a node."""

    __slots__ = ("key", "uid", "node", "res", "ports", "owner", "spreads", "assumed", "priority", "namespace",
                 "labels", "anti_terms", "sizes")

    def __init__(self, key: str, uid: str, node: str, res: PodRes, ports: tuple, owner: str | None,
                 spreads: bool, assumed: bool = False, priority: int = 0, labels: dict | None = None,
                 anti_terms: tuple = ()):
        self.key = key
        self.uid = uid
        self.node = node
        self.res = res
        self.ports = ports
        self.owner = owner
        self.spreads = spreads          # counts as a replica (not being deleted)
        self.assumed = assumed
        self.priority = priority
        self.namespace = key.split("/", 1)[0]
        self.labels = labels or {}
        self.anti_terms = anti_terms    # required pod anti-affinity, checked against newcomers
        self.sizes: tuple | None = None  # resource_fields() of the spec `res` was computed from


class NodeInfo:
    """A node and the running totals of the pods on it."""

    __slots__ = ("name", "node", "labels", "unschedulable", "hard_taints", "prefer_taints",
                 "alloc_cpu", "alloc_mem", "alloc_eph", "alloc_pods", "alloc_scalar",
                 "req_cpu", "req_mem", "req_eph", "req_scalar", "nz_cpu", "nz_mem", "npods",
                 "ports", "port_any", "owners", "pods", "zone", "hostname", "version")

    def __init__(self, name: str):
        self.name = name
        self.node: dict | None = None
        self.labels: dict = {}
        self.unschedulable = False
        self.hard_taints: tuple = ()
        self.prefer_taints: tuple = ()
        self.alloc_cpu = self.alloc_mem = self.alloc_eph = self.alloc_pods = 0
        self.alloc_scalar: dict[str, int] = {}
        self.req_cpu = self.req_mem = self.req_eph = 0
        self.req_scalar: dict[str, int] = {}
        self.nz_cpu = self.nz_mem = 0
        self.npods = 0
        self.ports: Counter = Counter()      # (ip, protocol, port)
        self.port_any: Counter = Counter()   # (protocol, port), whatever the IP
        self.owners: Counter = Counter()     # controller uid -> replicas here
        self.pods: dict[str, PodEntry] = {}
        self.zone: str | None = None
        self.hostname: str | None = None
        self.version = next(_VERSIONS)   # see _VERSIONS

    def set_node(self, node: dict) -> None:
        self.version = next(_VERSIONS)
        self.node = node
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        self.labels = meta.get("labels") or {}
        self.unschedulable = bool(spec.get("unschedulable"))
        hard, prefer = [], []
        for t in spec.get("taints") or ():
            eff = t.get("effect")
            item = (t.get("key") or "", t.get("value") or "", eff)
            if eff in ("NoSchedule", "NoExecute"):
                hard.append(item)
            elif eff == "PreferNoSchedule":
                prefer.append(item)
        self.hard_taints = tuple(hard)
        self.prefer_taints = tuple(prefer)
        alloc = resource_list((node.get("status") or {}).get("allocatable"))
        self.alloc_cpu = alloc.get(CPU, 0)
        self.alloc_mem = alloc.get(MEMORY, 0)
        self.alloc_eph = alloc.get(EPHEMERAL, 0)
        self.alloc_pods = alloc.get(PODS, 0)
        self.alloc_scalar = {k: v for k, v in alloc.items() if k not in _NOT_SCALAR}
        self.zone = self.labels.get(LABEL_ZONE)
        self.hostname = self.labels.get(LABEL_HOSTNAME)

    def add(self, e: PodEntry, sign: int = 1) -> None:
        self.version = next(_VERSIONS)
        r = e.res
        self.req_cpu += sign * r.cpu
        self.req_mem += sign * r.mem
        self.req_eph += sign * r.eph
        self.nz_cpu += sign * r.nz_cpu
        self.nz_mem += sign * r.nz_mem
        self.npods += sign
        if r.scalar:
            for k, v in r.scalar.items():
                self.req_scalar[k] = self.req_scalar.get(k, 0) + sign * v
        for ip, proto, port in e.ports:
            self.ports[(ip, proto, port)] += sign
            self.port_any[(proto, port)] += sign
            if sign < 0:
                if self.ports[(ip, proto, port)] <= 0:
                    del self.ports[(ip, proto, port)]
                if self.port_any[(proto, port)] <= 0:
                    del self.port_any[(proto, port)]
        if e.owner and e.spreads:
            self.owners[e.owner] += sign
            if sign < 0 and self.owners[e.owner] <= 0:
                del self.owners[e.owner]
        if sign > 0:
            self.pods[e.key] = e
        else:
            self.pods.pop(e.key, None)

    def port_conflict(self, ip: str, proto: str, port: int) -> bool:
        """HostPortInfo.CheckConflict: 0.0.0.0 collides with every address."""
        if ip == "0.0.0.0":
            return (proto, port) in self.port_any
        return (ip, proto, port) in self.ports or ("0.0.0.0", proto, port) in self.ports


def _terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class Cache:
    """Nodes and the pods bound (or assumed bound) to them."""

    def __init__(self):
        self.infos: dict[str, NodeInfo] = {}     # includes nodes known only through their pods
        self.nodes: list[NodeInfo] = []          # nodes that exist, in a stable order
        self.pods: dict[str, PodEntry] = {}
        self.zone_owners: dict[str, Counter] = {}
        self.zoned = 0                           # nodes with a zone label
        self.prefer_tainted = 0                  # nodes with a PreferNoSchedule taint
        self.anti_pods: dict[str, PodEntry] = {}  # placed pods with required anti-affinity

    # ---- nodes ----

    def _info(self, name: str) -> NodeInfo:
        ni = self.infos.get(name)
        if ni is None:
            ni = self.infos[name] = NodeInfo(name)
        return ni

    def set_node(self, node: dict) -> NodeInfo:
        name = node["metadata"]["name"]
        ni = self._info(name)
        fresh = ni.node is None
        old_zone = ni.zone
        self.zoned -= bool(old_zone)
        self.prefer_tainted -= bool(not fresh and ni.prefer_taints)
        ni.set_node(node)
        self.zoned += bool(ni.zone)
        self.prefer_tainted += bool(ni.prefer_taints)
        if old_zone != ni.zone and not fresh:
            self._move_zone(ni, old_zone)
        elif fresh and ni.zone:
            self._move_zone(ni, None)
        if fresh:
            self.nodes.append(ni)
        return ni

    def remove_node(self, name: str) -> None:
        ni = self.infos.get(name)
        if ni is None or ni.node is None:
            return
        if ni.zone:
            self._zone_add(ni, ni.zone, -1)
            self.zoned -= 1
        self.prefer_tainted -= bool(ni.prefer_taints)
        ni.node = None
        ni.zone = None
        self.nodes = [n for n in self.nodes if n is not ni]
        if not ni.pods:
            del self.infos[name]

    def _zone_add(self, ni: NodeInfo, zone: str, sign: int) -> None:
        counts = self.zone_owners.setdefault(zone, Counter())
        for owner, n in ni.owners.items():
            counts[owner] += sign * n
            if counts[owner] <= 0:
                del counts[owner]

    def _move_zone(self, ni: NodeInfo, old_zone: str | None) -> None:
        if old_zone:
            self._zone_add(ni, old_zone, -1)
        if ni.zone:
            self._zone_add(ni, ni.zone, 1)

    # ---- pods ----

    def _place(self, e: PodEntry, sign: int) -> None:
        ni = self._info(e.node)
        ni.add(e, sign)
        if e.owner and e.spreads and ni.zone and ni.node is not None:
            counts = self.zone_owners.setdefault(ni.zone, Counter())
            counts[e.owner] += sign
            if counts[e.owner] <= 0:
                del counts[e.owner]
        if sign < 0 and ni.node is None and not ni.pods:
            del self.infos[e.node]

    def assume(self, key: str, uid: str, node: str, info) -> None:
        """Count a pod (a PodInfo) on `node` before its binding is written."""
        self.remove_pod(key)
        e = PodEntry(key, uid, node, info.res, info.ports, info.owner, True, assumed=True, priority=info.priority,
                     labels=info.labels, anti_terms=info.anti_terms)
        # What `res` was computed from: the binding's event then confirms it without a recount.
        e.sizes = resource_fields(info.obj.get("spec") or {})
        self._add(e)

    def _add(self, e: PodEntry) -> None:
        self.pods[e.key] = e
        if e.anti_terms:
            self.anti_pods[e.key] = e
        self._place(e, 1)

    def is_assumed(self, key: str, uid: str) -> bool:
        e = self.pods.get(key)
        return e is not None and e.assumed and e.uid == uid

    def forget(self, key: str, uid: str) -> bool:
        """Drop an assumption whose binding failed; True if it freed capacity."""
        e = self.pods.get(key)
        if e is None or not e.assumed or e.uid != uid:
            return False
        self.remove_pod(key)
        return True

    def update_pod(self, key: str, pod: dict) -> tuple[bool, bool]:
        """Account for a pod with spec.nodeName: (capacity freed, a pod or its labels appeared)."""
        spec = pod.get("spec") or {}
        meta = pod.get("metadata") or {}
        node = spec.get("nodeName")
        old = self.pods.get(key)
        if _terminal(pod):
            if old is not None:
                self.remove_pod(key)
                return True, False
            return False, False
        spreads = not meta.get("deletionTimestamp")
        uid = meta.get("uid") or ""
        labels = meta.get("labels") or {}
        if old is not None and old.uid == uid and old.node == node:
            # Confirming an assumption counts as the pod appearing, for pods waiting on pods.
            relabelled = old.labels != labels or old.assumed
            old.assumed = False
            old.labels = labels
            if old.spreads != spreads:
                self._place(old, -1)
                old.spreads = spreads
                self._place(old, 1)
            # Requests of a bound pod only change through in-place resize: recount only then.
            sizes = resource_fields(spec)
            if sizes == old.sizes:
                return False, relabelled
            old.sizes = sizes
            res = PodRes(spec)
            if (res.cpu, res.mem, res.eph, res.scalar) != (old.res.cpu, old.res.mem, old.res.eph, old.res.scalar):
                self._place(old, -1)
                old.res = res
                self._place(old, 1)
                return True, relabelled
            return False, relabelled
        freed = False
        if old is not None:
            self.remove_pod(key)
            freed = True
        prio = spec.get("priority")
        ns = meta.get("namespace") or ""
        e = PodEntry(key, uid, node, PodRes(spec), host_ports(spec), spread_owner(pod), spreads,
                     priority=prio if isinstance(prio, int) else 0, labels=labels,
                     anti_terms=compile_terms(spec, "podAntiAffinity", ns, labels))
        e.sizes = resource_fields(spec)
        self._add(e)
        return freed, True

    def remove_pod(self, key: str) -> bool:
        e = self.pods.pop(key, None)
        if e is None:
            return False
        self.anti_pods.pop(key, None)
        self._place(e, -1)
        return True
