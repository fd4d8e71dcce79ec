"""PodTopologySpread for pods that declare `spec.topologySpreadConstraints`.

Each constraint counts the pods matching its selector (in the pod's namespace, not being
deleted) per domain of its topology key, over the nodes it includes (by default those matching
the pod's node selector/affinity, whatever their taints). `DoNotSchedule` constraints filter:
a node whose domain would then exceed the global minimum by more than `maxSkew` is rejected
(``node(s) didn't match pod topology spread constraints``), and so is a node without the
topology label (``... (missing required label)``). `ScheduleAnyway` constraints only score:
fewer matching pods in the node's domains is better, as upstream weighs it.

Pods without constraints get the system defaults instead, computed from the running
per-owner counts in `scoring.py`.
"""

from __future__ import annotations

import math

from .filters import UNRESOLVABLE, UNSCHEDULABLE, Status, node_matches_affinity
from .podinfo import tolerates
from .terms import Constraint

ERR_SKEW = "node(s) didn't match pod topology spread constraints"
S_SKEW = Status(UNSCHEDULABLE, (ERR_SKEW,), "PodTopologySpread")
S_MISSING_LABEL = Status(UNRESOLVABLE, (ERR_SKEW + " (missing required label)",), "PodTopologySpread")
_NO_DOMAIN = 1 << 31


def includes(c: Constraint, pod, ni) -> bool:
    """nodeAffinityPolicy / nodeTaintsPolicy: does this node's domain count for the pod?"""
    if c.honor_affinity and not node_matches_affinity(pod, ni):
        return False
    if c.honor_taints:
        for key, value, effect in ni.hard_taints:
            if not tolerates(pod.tolerations, key, value, effect):
                return False
    return True


def count(c: Constraint, ni, ns: str) -> int:
    """Pods on the node the constraint selects (in the pod's namespace, not being deleted)."""
    n = 0
    sel = c.selector
    for e in ni.pods.values():
        if e.spreads and e.namespace == ns and sel.matches(e.labels):
            n += 1
    return n


def _has_keys(ni, constraints) -> bool:
    labels = ni.labels
    return all(c.key in labels for c in constraints)


def prefilter(pod, cache) -> list[dict[str, int]] | None:
    """Matching pods per domain value, one map per DoNotSchedule constraint."""
    hard = [c for c in pod.spread if c.hard]
    if not hard:
        return None
    counts: list[dict[str, int]] = [{} for _ in hard]
    for ni in cache.nodes:
        if not _has_keys(ni, hard):
            continue
        for i, c in enumerate(hard):
            if not includes(c, pod, ni):
                continue
            v = ni.labels[c.key]
            counts[i][v] = counts[i].get(v, 0) + count(c, ni, pod.namespace)
    return counts


def filter_node(pod, counts: list[dict[str, int]], ni) -> Status | None:
    hard = [c for c in pod.spread if c.hard]
    for c, domains in zip(hard, counts):
        v = ni.labels.get(c.key)
        if v is None:
            return S_MISSING_LABEL
        low = min(domains.values()) if domains else _NO_DOMAIN
        if len(domains) < c.min_domains:
            low = 0
        self_match = 1 if c.selector.matches(pod.labels) else 0
        if domains.get(v, 0) + self_match - low > c.max_skew:
            return S_SKEW
    return None


def score_raw(pod, nodes, cache) -> tuple[list[int], list[bool]] | None:
    """Upstream's Score for ScheduleAnyway constraints: (raw scores, ignored nodes) or None."""
    soft = [c for c in pod.spread if not c.hard]
    if not soft:
        return None
    ignored = [not _has_keys(ni, soft) for ni in nodes]
    kept = [ni for ni, ig in zip(nodes, ignored) if not ig]
    weights = []
    pair_counts: list[dict[str, int]] = []
    for c in soft:
        if c.key == "kubernetes.io/hostname":
            weights.append(math.log(len(kept) + 2))
            pair_counts.append({})
            continue
        values = {ni.labels[c.key] for ni in kept}
        weights.append(math.log(len(values) + 2))
        counts = dict.fromkeys(values, 0)
        for ni in cache.nodes:
            if not _has_keys(ni, soft) or not includes(c, pod, ni):
                continue
            v = ni.labels[c.key]
            if v in counts:
                counts[v] += count(c, ni, pod.namespace)
        pair_counts.append(counts)
    raw = []
    for ni, ig in zip(nodes, ignored):
        if ig:
            raw.append(0)
            continue
        s = 0.0
        for c, w, counts in zip(soft, weights, pair_counts):
            cnt = count(c, ni, pod.namespace) if c.key == "kubernetes.io/hostname" else counts[ni.labels[c.key]]
            s += cnt * w + (c.max_skew - 1)
        raw.append(int(s + 0.5))
    return raw, ignored
