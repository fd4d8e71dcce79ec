"""InterPodAffinity: required pod affinity and anti-affinity between pods.

A term says "in the same <topologyKey> domain as pods matching <selector> in <namespaces>".
As upstream, a PreFilter pass over the pods already placed counts, per (topology key, value),
the pods the incoming pod's terms match, and the placed pods whose own anti-affinity terms
match the incoming pod; the per-node Filter then only looks those counts up:

- the pod's affinity terms need a matching pod in the node's domain (``node(s) didn't match pod
  affinity rules``), except for the first pod of a group that matches its own terms;
- its anti-affinity terms forbid one (``node(s) didn't match pod anti-affinity rules``);
- placed pods' anti-affinity terms forbid the incoming pod in their domain (``node(s) didn't
  satisfy existing pods anti-affinity rules``).

Preferred terms are not scored.
"""

from __future__ import annotations

from collections import Counter

from .filters import UNRESOLVABLE, UNSCHEDULABLE, Status
from .terms import NamespaceLabels

S_AFFINITY = Status(UNRESOLVABLE, ("node(s) didn't match pod affinity rules",), "InterPodAffinity")
S_ANTI = Status(UNSCHEDULABLE, ("node(s) didn't match pod anti-affinity rules",), "InterPodAffinity")
S_EXISTING_ANTI = Status(UNSCHEDULABLE, ("node(s) didn't satisfy existing pods anti-affinity rules",),
                         "InterPodAffinity")


class AffinityState:
    """PreFilter counts for one attempt."""

    __slots__ = ("affinity", "anti", "existing_anti", "self_match")

    def __init__(self):
        self.affinity: Counter = Counter()
        self.anti: Counter = Counter()
        self.existing_anti: Counter = Counter()
        self.self_match = False


def prefilter(pod, cache, ns_labels: NamespaceLabels) -> AffinityState | None:
    """Counts for `pod` (a PodInfo); None when the plugin has nothing to check."""
    aff, anti = pod.affinity_terms, pod.anti_terms
    if not aff and not anti and not cache.anti_pods:
        return None
    state = AffinityState()
    infos = cache.infos
    for e in cache.anti_pods.values():
        ni = infos.get(e.node)
        if ni is None or ni.node is None:
            continue
        for t in e.anti_terms:
            if t.key in ni.labels and t.matches(pod.namespace, pod.labels, ns_labels):
                state.existing_anti[(t.key, ni.labels[t.key])] += 1
    if aff or anti:
        for ni in cache.nodes:
            labels_n = ni.labels
            for e in ni.pods.values():
                ns, lbls = e.namespace, e.labels
                if aff and all(t.matches(ns, lbls, ns_labels) for t in aff):
                    for t in aff:
                        if t.key in labels_n:
                            state.affinity[(t.key, labels_n[t.key])] += 1
                for t in anti:
                    if t.key in labels_n and t.matches(ns, lbls, ns_labels):
                        state.anti[(t.key, labels_n[t.key])] += 1
        state.self_match = bool(aff) and all(t.matches(pod.namespace, pod.labels, ns_labels) for t in aff)
    if not aff and not anti and not state.existing_anti:
        return None
    return state


def filter_node(pod, state: AffinityState, ni) -> Status | None:
    labels = ni.labels
    if pod.affinity_terms:
        exist = True
        for t in pod.affinity_terms:
            v = labels.get(t.key)
            if v is None:
                return S_AFFINITY
            if state.affinity.get((t.key, v), 0) <= 0:
                exist = False
        if not exist and not (not state.affinity and state.self_match):
            return S_AFFINITY
    if state.anti:
        for t in pod.anti_terms:
            v = labels.get(t.key)
            if v is not None and state.anti.get((t.key, v), 0) > 0:
                return S_ANTI
    if state.existing_anti:
        for kv in labels.items():
            if state.existing_anti.get(kv, 0) > 0:
                return S_EXISTING_ANTI
    return None
