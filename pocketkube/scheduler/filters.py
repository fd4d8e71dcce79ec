"""Filters: can this pod run on this node at all?

These are kube-scheduler's default Filter plugins, run in upstream's order and stopping at the
first that rejects the node, because the first rejection is what users read in the
"0/N nodes are available" message: NodeUnschedulable, TaintToleration, NodeAffinity,
NodePorts, NodeResourcesFit here, then VolumeBinding (`volumes.py`), PodTopologySpread
(`topologyspread.py`) and InterPodAffinity (`podaffinity.py`), which need cluster-wide counts. Each failure carries
upstream's reason text and whether preemption could ever help (`UNSCHEDULABLE`) or not
(`UNRESOLVABLE`, upstream's UnschedulableAndUnresolvable), which the preemption part of the
message depends on. The checks read the precomputed `PodInfo` and the node's running totals
only, so a filter pass over a node is a handful of comparisons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cache import ShapeMemo
from .nodeselector import match_terms
from .podinfo import PodInfo, tolerates

if TYPE_CHECKING:
    from .cache import NodeInfo

UNSCHEDULABLE = 1
UNRESOLVABLE = 2

# Upstream reason texts.
ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_TAINT = "node(s) had untolerated taint(s)"
ERR_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_TOO_MANY_PODS = "Too many pods"


class Status:
    """Why one node was rejected: upstream's framework.Status for a Filter."""

    __slots__ = ("code", "reasons", "plugin")

    def __init__(self, code: int, reasons: tuple[str, ...], plugin: str):
        self.code = code
        self.reasons = reasons
        self.plugin = plugin


S_UNSCHEDULABLE = Status(UNRESOLVABLE, (ERR_UNSCHEDULABLE,), "NodeUnschedulable")
S_TAINT = Status(UNRESOLVABLE, (ERR_TAINT,), "TaintToleration")
S_AFFINITY = Status(UNRESOLVABLE, (ERR_AFFINITY,), "NodeAffinity")
S_PORTS = Status(UNSCHEDULABLE, (ERR_PORTS,), "NodePorts")


def node_matches_affinity(pod: PodInfo, ni: NodeInfo) -> bool:
    """nodeSelector AND required node affinity."""
    labels = ni.labels
    sel = pod.node_selector
    if sel:
        for k, v in sel.items():
            if labels.get(k) != v:
                return False
    if pod.required is not None and not match_terms(pod.required, labels, ni.name):
        return False
    return True


def fit_reasons(pod: PodInfo, ni: NodeInfo) -> tuple[str, ...]:
    """NodeResourcesFit: every resource the node lacks, as upstream lists them."""
    reasons = []
    if ni.npods + 1 > ni.alloc_pods:
        reasons.append(ERR_TOO_MANY_PODS)
    if not pod.has_requests:
        return tuple(reasons)
    r = pod.res
    if r.cpu and r.cpu > ni.alloc_cpu - ni.req_cpu:
        reasons.append("Insufficient cpu")
    if r.mem and r.mem > ni.alloc_mem - ni.req_mem:
        reasons.append("Insufficient memory")
    if r.eph and r.eph > ni.alloc_eph - ni.req_eph:
        reasons.append("Insufficient ephemeral-storage")
    if r.scalar:
        for name, v in r.scalar.items():
            if v > ni.alloc_scalar.get(name, 0) - ni.req_scalar.get(name, 0):
                reasons.append(f"Insufficient {name}")
    return tuple(reasons)


def run_filters(pod: PodInfo, ni: NodeInfo) -> Status | None:
    """The node-local default filters in upstream order; None when the node fits."""
    if ni.unschedulable and not pod.tolerates_unschedulable:
        return S_UNSCHEDULABLE
    if ni.hard_taints:
        tols = pod.tolerations
        for key, value, effect in ni.hard_taints:
            if not tolerates(tols, key, value, effect):
                return S_TAINT
    if (pod.node_selector is not None or pod.required is not None) and not node_matches_affinity(pod, ni):
        return S_AFFINITY
    if pod.ports:
        for ip, proto, port in pod.ports:
            if ni.port_conflict(ip, proto, port):
                return S_PORTS
    # NodeResourcesFit, inlined for the common case of a pod that fits.
    r = pod.res
    if (ni.npods < ni.alloc_pods and r.cpu <= ni.alloc_cpu - ni.req_cpu and r.mem <= ni.alloc_mem - ni.req_mem
            and r.eph <= ni.alloc_eph - ni.req_eph and not r.scalar):
        return None
    reasons = fit_reasons(pod, ni)
    if reasons:
        return Status(UNSCHEDULABLE, reasons, "NodeResourcesFit")
    return None


class FilterMemo(ShapeMemo):
    """The node-local filters' verdicts for the last pods of one shape (see ShapeMemo), as
    ScoreMemo keeps scores.

    Only for pods whose verdict depends on nothing but their tolerations and requests: no node
    selector or required affinity, no host ports, no extended resources (run_filters reads
    nothing else of the pod).
    """

    def verdicts(self, pod: PodInfo) -> dict[str, tuple] | None:
        """name -> (node version, run_filters result) for pods of this one's shape; None when
        the pod's verdicts cannot be shared."""
        if not verdicts_shareable(pod):
            return None
        r = pod.res
        return self.for_shape((pod.tolerations, r.cpu, r.mem, r.eph))


def verdicts_shareable(pod: PodInfo) -> bool:
    """Whether run_filters reads nothing of the pod but its tolerations and requests, so that
    its verdict on a node holds for every pod of the same tolerations and requests."""
    return pod.node_selector is None and pod.required is None and not pod.ports and not pod.res.scalar
