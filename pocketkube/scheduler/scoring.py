"""Scores: of the nodes that fit, which one is best?

kube-scheduler's default Score plugins and weights, each normalised to 0..100 as upstream does:

- TaintToleration (weight 3): fewer untolerated PreferNoSchedule taints is better;
- NodeAffinity (2): the sum of the weights of the preferred terms the node matches;
- NodeResourcesFit, LeastAllocated (1): more free CPU and memory, counting pods that asked for
  nothing as 100m/200Mi, so empty pods spread too;
- PodTopologySpread (2): the pod's ScheduleAnyway constraints (`topologyspread.py`) or, for a
  pod without constraints, the system defaults: fewer replicas of the same workload on the
  node (max skew 3 per hostname) and in its zone (max skew 5 per topology.kubernetes.io/zone),
  replicas being pods with the same ReplicaSet, StatefulSet or ReplicationController owner
  (upstream derives the same groups from their selectors, and from Services);
- NodeResourcesBalancedAllocation (1): CPU and memory used in similar proportions.

The highest total wins; ties are broken at random. Plugins whose score would be the same on
every node are skipped, which changes no decision. Not scored (yet): preferred inter-pod
affinity and ImageLocality.
"""

from __future__ import annotations

import itertools
import math
import random

from . import topologyspread
from .cache import Cache, NodeInfo, ShapeMemo
from .filters import node_matches_affinity, run_filters, verdicts_shareable
from .podinfo import PodInfo, tolerates

MAX_SCORE = 100
WEIGHT_TAINT, WEIGHT_AFFINITY, WEIGHT_FIT, WEIGHT_SPREAD, WEIGHT_BALANCED = 3, 2, 1, 2, 1
HOSTNAME_MAX_SKEW, ZONE_MAX_SKEW = 3, 5

def _resource_score(pod: PodInfo, ni: NodeInfo) -> int:
    """LeastAllocated (weight 1) plus, for pods that request something, BalancedAllocation (1)."""
    res = pod.res
    acpu, amem = ni.alloc_cpu, ni.alloc_mem
    total = weights = 0
    if acpu:
        req = ni.nz_cpu + res.nz_cpu
        total += (acpu - req) * MAX_SCORE // acpu if req <= acpu else 0
        weights += 1
    if amem:
        req = ni.nz_mem + res.nz_mem
        total += (amem - req) * MAX_SCORE // amem if req <= amem else 0
        weights += 1
    s = WEIGHT_FIT * (total // weights) if weights else 0
    if res.cpu or res.mem:   # BalancedAllocation skips best-effort pods
        if acpu and amem:
            fc = (ni.req_cpu + res.cpu) / acpu
            fm = (ni.req_mem + res.mem) / amem
            std = abs((fc if fc < 1.0 else 1.0) - (fm if fm < 1.0 else 1.0)) / 2
            s += WEIGHT_BALANCED * int((1 - std) * MAX_SCORE)
        else:
            s += WEIGHT_BALANCED * MAX_SCORE
    return s


def _host_spread(owner: str, ni: NodeInfo, host_weight: float) -> int:
    """The hostname constraint's raw PodTopologySpread score (math.Round: half away from 0)."""
    if ni.hostname is None:
        return 0
    return int(ni.owners.get(owner, 0) * host_weight + HOSTNAME_MAX_SKEW - 1 + 0.5)


class ScoreMemo(ShapeMemo):
    """Per-node scores of the last pods of one shape (see ShapeMemo), keyed by the pod's
    requests and owner."""

    def resource_and_spread(self, pod: PodInfo, nodes: list[NodeInfo]) -> tuple[list[int], list[int]]:
        """(resource scores, raw hostname-spread scores) for a pod spread by its owner, zoneless."""
        r = pod.res
        memo = self.for_shape((r.nz_cpu, r.nz_mem, r.cpu, r.mem, pod.owner, len(nodes)))
        host_weight = math.log(len(nodes) + 2)
        owner = pod.owner
        res: list[int] = []
        raw: list[int] = []
        for ni in nodes:
            m = memo.get(ni.name)
            if m is None or m[0] != ni.version:
                m = memo[ni.name] = (ni.version, _resource_score(pod, ni), _host_spread(owner, ni, host_weight))
            res.append(m[1])
            raw.append(m[2])
        return res, raw


class ReplicaScan(ShapeMemo):
    """The whole filter and score pass for the next replica of a shape, redone only where a
    node changed.

    For a pod whose filter verdicts FilterMemo may keep and whose scores are ScoreMemo's (the
    resource scores and the default hostname spreading), each node's verdict and scores depend
    on the pod's shape and the node alone. ScoreMemo and FilterMemo still visit every node per
    pod; between two replicas only a few nodes change (the one the last replica went to, those
    that lost a pod), so this keeps per shape the verdicts and scores of every node, in filter
    order, and recomputes those whose version moved. The totals are the ones the full pass would
    give, in the same order, so select_host picks the same node. It answers only when the full
    pass would visit every node and one of them at least fits; otherwise the caller runs the full
    pass (which explains the failure). Where some nodes do not fit (full of pods, as in a rolling
    update whose surge fills the cluster), the others are scored as the full pass scores its
    feasible nodes: the spreading weight counts only those.
    """

    @staticmethod
    def applies(pod: PodInfo, cache: Cache) -> bool:
        """Whether the pod's verdicts and totals are those this keeps: filters FilterMemo may
        share, scores ScoreMemo's, and no taint or node-affinity preference to score."""
        return (verdicts_shareable(pod) and _memo_scored(pod, cache) and not pod.preferred
                and not cache.prefer_tainted)

    def totals(self, pod: PodInfo, cache: Cache, start: int) -> tuple[list[NodeInfo], list[int]] | None:
        """(nodes in filter order, their totals), or None: use the full pass."""
        nodes = cache.nodes
        n = len(nodes)
        r = pod.res
        st = self.for_shape((pod.tolerations, r.cpu, r.mem, r.eph, r.nz_cpu, r.nz_mem, pod.owner))
        if st.get("nodes") is not nodes or st["n"] != n or st["start"] != start:
            # Another node list (a node added or removed) or another rotation: start afresh.
            st.update(nodes=nodes, n=n, start=start, order=nodes[start:] + nodes[:start],
                      versions=[None] * n, fits=[False] * n, res=[0] * n, raw=[0] * n,
                      fit_count=0, fit_raw=[0] * n, fit_versions=[None] * n)
        order, versions = st["order"], st["versions"]
        current = [ni.version for ni in order]
        if current != versions:
            fits, res, raw = st["fits"], st["res"], st["raw"]
            host_weight = math.log(n + 2)
            owner = pod.owner
            for i, version in enumerate(current):
                if version != versions[i]:
                    ni = order[i]
                    versions[i] = version
                    fits[i] = run_filters(pod, ni) is None
                    res[i] = _resource_score(pod, ni)
                    raw[i] = _host_spread(owner, ni, host_weight)
        fits = st["fits"]
        k = fits.count(True)
        if k == n:
            return order, _add_spread(st["res"], st["raw"])
        if not k:
            return None
        # The raw spreading scores at the weight for k feasible nodes, kept like the others
        # while k stays the same (a full cluster stays full for many replicas).
        fit_raw, fit_versions = st["fit_raw"], st["fit_versions"]
        recount = st["fit_count"] != k
        if recount or fit_versions != current:
            host_weight = math.log(k + 2)
            owner = pod.owner
            for i, version in enumerate(current):
                if recount or version != fit_versions[i]:
                    fit_raw[i] = _host_spread(owner, order[i], host_weight)
                    fit_versions[i] = version
            st["fit_count"] = k
        return (list(itertools.compress(order, fits)),
                _add_spread(list(itertools.compress(st["res"], fits)), list(itertools.compress(fit_raw, fits))))


def _spread_raw(pod: PodInfo, owner: str, nodes: list[NodeInfo], cache: Cache) -> list[int]:
    """PodTopologySpread Score (before normalising) under the system default constraints."""
    host_weight = math.log(len(nodes) + 2)
    if not cache.zoned:
        # No zones anywhere: only the hostname constraint applies.
        return [_host_spread(owner, ni, host_weight) for ni in nodes]
    host_base = HOSTNAME_MAX_SKEW - 1
    zone_weight = math.log(len({ni.zone or "" for ni in nodes}) + 2)
    zone_base = ZONE_MAX_SKEW - 1
    if pod.node_selector is None and pod.required is None:
        zone_counts = {z: c.get(owner, 0) for z, c in cache.zone_owners.items()}
    else:
        # nodeAffinityPolicy Honor: only nodes the pod could land on count for its domains.
        zone_counts = {}
        for ni in cache.nodes:
            if ni.zone and node_matches_affinity(pod, ni):
                zone_counts[ni.zone] = zone_counts.get(ni.zone, 0) + ni.owners.get(owner, 0)
    out = []
    for ni in nodes:
        s = 0.0
        if ni.hostname is not None:
            s += ni.owners.get(owner, 0) * host_weight + host_base
        if ni.zone is not None:
            s += zone_counts.get(ni.zone, 0) * zone_weight + zone_base
        out.append(int(s + 0.5))
    return out


def _add_spread(totals: list[int], raw: list[int], ignored: list[bool] | None = None) -> list[int]:
    """`totals` plus the weighted PodTopologySpread NormalizeScore of `raw`, in one pass: fewer
    matching pods is better; ignored nodes get 0."""
    if not ignored:
        lo, hi = min(raw, default=0), max(raw, default=0)
        if hi == 0:
            return [t + WEIGHT_SPREAD * MAX_SCORE for t in totals]
        return [t + WEIGHT_SPREAD * (MAX_SCORE * (hi + lo - s) // hi) for t, s in zip(totals, raw)]
    kept = [s for i, s in enumerate(raw) if not ignored[i]]
    if not kept:
        return list(totals)
    lo, hi = min(kept), max(kept)
    out = []
    for t, s, skip in zip(totals, raw, ignored):
        if skip:
            out.append(t)
        elif hi == 0:
            out.append(t + WEIGHT_SPREAD * MAX_SCORE)
        else:
            out.append(t + WEIGHT_SPREAD * (MAX_SCORE * (hi + lo - s) // hi))
    return out


def _default_normalize(raw: list[int], reverse: bool) -> list[int] | None:
    """helper.DefaultNormalizeScore; None when every node scores the same."""
    hi = max(raw)
    if hi == 0:
        return None
    out = [MAX_SCORE * s // hi for s in raw]
    return [MAX_SCORE - s for s in out] if reverse else out


def _memo_scored(pod: PodInfo, cache: Cache) -> bool:
    """Whether the pod's resource and spreading scores on a node depend on the node and the
    pod's shape alone (ScoreMemo's case): spread by its owner, under the hostname default only."""
    return bool(pod.owner) and not pod.spread and not cache.zoned


def score(pod: PodInfo, nodes: list[NodeInfo], cache: Cache, memo: ScoreMemo | None = None) -> list[int]:
    """Weighted totals for `nodes` (all of which passed the filters)."""
    spread_raw = None
    if memo is not None and _memo_scored(pod, cache):
        totals, spread_raw = memo.resource_and_spread(pod, nodes)
    else:
        totals = [_resource_score(pod, ni) for ni in nodes]
    if cache.prefer_tainted and any(ni.prefer_taints for ni in nodes):
        tols = pod.prefer_tolerations
        raw = [sum(1 for k, v, e in ni.prefer_taints if not tolerates(tols, k, v, e)) for ni in nodes]
        norm = _default_normalize(raw, reverse=True)
        if norm is not None:
            for i, s in enumerate(norm):
                totals[i] += WEIGHT_TAINT * s
    if pod.preferred:
        raw = [sum(w for w, term in pod.preferred if term.matches(ni.labels, ni.name)) for ni in nodes]
        norm = _default_normalize(raw, reverse=False)
        if norm is not None:
            for i, s in enumerate(norm):
                totals[i] += WEIGHT_AFFINITY * s
    if pod.spread:
        explicit = topologyspread.score_raw(pod, nodes, cache)
        if explicit is not None:
            raw, ignored = explicit
            totals = _add_spread(totals, raw, ignored)
    elif pod.owner:
        if spread_raw is None:
            spread_raw = _spread_raw(pod, pod.owner, nodes, cache)
        totals = _add_spread(totals, spread_raw)
    return totals


def select_host(nodes: list[NodeInfo], totals: list[int], rng: random.Random) -> NodeInfo:
    """The best-scoring node; among equals, each is equally likely."""
    best = max(totals)
    tied = [i for i, s in enumerate(totals) if s == best]
    return nodes[tied[0] if len(tied) == 1 else tied[rng.randrange(len(tied))]]
