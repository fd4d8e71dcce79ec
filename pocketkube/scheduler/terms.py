"""Pod-to-pod terms compiled once: affinity terms and topology spread constraints.

Both select other pods with a label selector (joined by the pod's own label values through
`matchLabelKeys` / `mismatchLabelKeys`) within a topology domain. They are compiled when a
pod is first seen, so the per-node checks in `podaffinity.py` and `topologyspread.py` only
match labels.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..api.selectors import LabelSelector, SelectorError, selector_from_dict

NamespaceLabels = Callable[[str], dict]


def merge_label_keys(sel: dict | None, labels: dict, match_keys: Iterable[str], mismatch_keys: Iterable[str] = ()
                     ) -> dict | None:
    """matchLabelKeys / mismatchLabelKeys: the pod's own label values join the selector."""
    exprs = [{"key": k, "operator": "In", "values": [labels[k]]} for k in match_keys or () if k in labels]
    exprs += [{"key": k, "operator": "NotIn", "values": [labels[k]]} for k in mismatch_keys or () if k in labels]
    if not exprs or sel is None:
        return sel
    out = dict(sel)
    out["matchExpressions"] = list(sel.get("matchExpressions") or ()) + exprs
    return out


def _selector(sel: dict | None) -> LabelSelector:
    try:
        return selector_from_dict(sel)
    except SelectorError:
        return LabelSelector.nothing()


class AffinityTerm:
    """A required PodAffinityTerm of a pod in namespace `ns`."""

    __slots__ = ("selector", "namespaces", "ns_selector", "key")

    def __init__(self, term: dict, ns: str, labels: dict):
        self.selector = _selector(merge_label_keys(term.get("labelSelector"), labels,
                                                   term.get("matchLabelKeys") or (),
                                                   term.get("mismatchLabelKeys") or ()))
        self.namespaces = set(term.get("namespaces") or ())
        nss = term.get("namespaceSelector")
        self.ns_selector: LabelSelector | None = _selector(nss) if nss is not None else None
        if not self.namespaces and nss is None:
            self.namespaces = {ns}
        self.key = term.get("topologyKey") or ""

    def matches(self, ns: str, labels: dict, ns_labels: NamespaceLabels) -> bool:
        if ns not in self.namespaces and (self.ns_selector is None or not self.ns_selector.matches(ns_labels(ns))):
            return False
        return self.selector.matches(labels)


def compile_terms(spec: dict, kind: str, ns: str, labels: dict) -> tuple[AffinityTerm, ...]:
    """The required terms of `kind` ("podAffinity" / "podAntiAffinity")."""
    section = ((spec.get("affinity") or {}).get(kind) or {})
    return tuple(AffinityTerm(t, ns, labels)
                 for t in section.get("requiredDuringSchedulingIgnoredDuringExecution") or () if isinstance(t, dict))


class Constraint:
    """One entry of spec.topologySpreadConstraints."""

    __slots__ = ("max_skew", "key", "hard", "selector", "min_domains", "honor_affinity", "honor_taints")

    def __init__(self, c: dict, labels: dict):
        self.max_skew = int(c.get("maxSkew") or 1)
        self.key = c.get("topologyKey") or ""
        self.hard = (c.get("whenUnsatisfiable") or "DoNotSchedule") == "DoNotSchedule"
        self.selector = _selector(merge_label_keys(c.get("labelSelector"), labels, c.get("matchLabelKeys") or ()))
        self.min_domains = int(c.get("minDomains") or 1)
        self.honor_affinity = (c.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"


def compile_constraints(spec: dict, labels: dict) -> tuple[Constraint, ...]:
    return tuple(Constraint(c, labels) for c in spec.get("topologySpreadConstraints") or () if isinstance(c, dict))
