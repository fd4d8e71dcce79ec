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

import math
import random

from . import topologyspread
from .cache import Cache, NodeInfo
from .filters import node_matches_affinity
from .podinfo import PodInfo, tolerates

MAX_SCORE = 100
WEIGHT_TAINT, WEIGHT_AFFINITY, WEIGHT_FIT, WEIGHT_SPREAD, WEIGHT_BALANCED = 3, 2, 1, 2, 1
HOSTNAME_MAX_SKEW, ZONE_MAX_SKEW = 3, 5

def _resource_scores(pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """LeastAllocated (weight 1) plus, for pods that request something, BalancedAllocation (1).

    One loop for both: this runs for every feasible node of every pod.
    """
    p_nz_cpu, p_nz_mem = pod.res.nz_cpu, pod.res.nz_mem
    p_cpu, p_mem = pod.res.cpu, pod.res.mem
    balanced = bool(p_cpu or p_mem)   # BalancedAllocation skips best-effort pods
    out = []
    for ni in nodes:
        acpu, amem = ni.alloc_cpu, ni.alloc_mem
        total = weights = 0
        if acpu:
            req = ni.nz_cpu + p_nz_cpu
            total += (acpu - req) * MAX_SCORE // acpu if req <= acpu else 0
            weights += 1
        if amem:
            req = ni.nz_mem + p_nz_mem
            total += (amem - req) * MAX_SCORE // amem if req <= amem else 0
            weights += 1
        s = WEIGHT_FIT * (total // weights) if weights else 0
        if balanced:
            if acpu and amem:
                fc = (ni.req_cpu + p_cpu) / acpu
                fm = (ni.req_mem + p_mem) / amem
                std = abs((fc if fc < 1.0 else 1.0) - (fm if fm < 1.0 else 1.0)) / 2
                s += WEIGHT_BALANCED * int((1 - std) * MAX_SCORE)
            else:
                s += WEIGHT_BALANCED * MAX_SCORE
        out.append(s)
    return out


def _spread_raw(pod: PodInfo, owner: str, nodes: list[NodeInfo], cache: Cache) -> list[int]:
    """PodTopologySpread Score (before normalising) under the system default constraints."""
    host_weight = math.log(len(nodes) + 2)
    host_base = HOSTNAME_MAX_SKEW - 1
    if not cache.zoned:
        # No zones anywhere: only the hostname constraint applies (math.Round: half away from 0).
        return [int(ni.owners.get(owner, 0) * host_weight + host_base + 0.5) if ni.hostname is not None else 0
                for ni in nodes]
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


def _normalize_spread(raw: list[int], ignored: list[bool] | None = None) -> list[int]:
    """PodTopologySpread NormalizeScore: fewer matching pods is better; ignored nodes get 0."""
    kept = [s for i, s in enumerate(raw) if not ignored or not ignored[i]]
    if not kept:
        return [0] * len(raw)
    lo, hi = min(kept), max(kept)
    out = []
    for i, s in enumerate(raw):
        if ignored and ignored[i]:
            out.append(0)
        elif hi == 0:
            out.append(MAX_SCORE)
        else:
            out.append(MAX_SCORE * (hi + lo - s) // hi)
    return out


def _default_normalize(raw: list[int], reverse: bool) -> list[int] | None:
    """helper.DefaultNormalizeScore; None when every node scores the same."""
    hi = max(raw)
    if hi == 0:
        return None
    out = [MAX_SCORE * s // hi for s in raw]
    return [MAX_SCORE - s for s in out] if reverse else out


def score(pod: PodInfo, nodes: list[NodeInfo], cache: Cache) -> list[int]:
    """Weighted totals for `nodes` (all of which passed the filters)."""
    totals = _resource_scores(pod, nodes)
    if any(ni.prefer_taints for ni in nodes):
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
            for i, s in enumerate(_normalize_spread(raw, ignored)):
                totals[i] += WEIGHT_SPREAD * s
    elif pod.owner:
        for i, s in enumerate(_normalize_spread(_spread_raw(pod, pod.owner, nodes, cache))):
            totals[i] += WEIGHT_SPREAD * s
    return totals


def select_host(nodes: list[NodeInfo], totals: list[int], rng: random.Random) -> NodeInfo:
    """The best-scoring node; among equals, each is equally likely."""
    best = max(totals)
    tied = [i for i, s in enumerate(totals) if s == best]
    return nodes[tied[0] if len(tied) == 1 else tied[rng.randrange(len(tied))]]
