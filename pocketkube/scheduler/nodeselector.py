"""Node selector terms (required and preferred node affinity, PV node affinity), compiled.

A NodeSelectorTerm ANDs label expressions (In, NotIn, Exists, DoesNotExist, Gt, Lt) and
`metadata.name` fields; terms are ORed. Terms are compiled once into tuples so matching a node
is a few dict lookups. As upstream, an invalid term never matches (the others still count), a
required term with nothing in it selects no node, and a preferred one matches every node.
"""

from __future__ import annotations

import re

_INT_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int(s) -> int | None:
    """strconv.ParseInt(s, 10, 64)."""
    s = str(s)
    if not _INT_RE.fullmatch(s):
        return None
    n = int(s)
    return n if -(1 << 63) <= n < (1 << 63) else None


def _compile_expr(e: dict):
    """One NodeSelectorRequirement as (key, op, values); None if upstream would reject it."""
    key = e.get("key") or ""
    op = e.get("operator")
    values = e.get("values") or []
    if op in ("In", "NotIn"):
        if not values:
            return None
        return (key, op, frozenset(values))
    if op in ("Exists", "DoesNotExist"):
        return None if values else (key, op, None)
    if op in ("Gt", "Lt"):
        if len(values) != 1:
            return None
        n = _parse_int(values[0])
        return None if n is None else (key, op, n)
    return None


class Term:
    """A NodeSelectorTerm: label expressions and metadata.name fields, all ANDed."""

    __slots__ = ("exprs", "fields", "valid")

    def __init__(self, term: dict | None, preferred: bool = False):
        term = term or {}
        self.exprs = []
        self.fields = []
        self.valid = True
        for e in term.get("matchExpressions") or ():
            c = _compile_expr(e)
            if c is None:
                self.valid = False
            else:
                self.exprs.append(c)
        for f in term.get("matchFields") or ():
            c = _compile_expr(f)
            if c is None or c[0] != "metadata.name" or c[1] not in ("In", "NotIn") or len(c[2]) != 1:
                self.valid = False
            else:
                self.fields.append(c)
        # A required term with nothing in it selects no node; a preferred one matches every node.
        if not preferred and not self.exprs and not self.fields:
            self.valid = False

    def matches(self, labels: dict, name: str) -> bool:
        if not self.valid:
            return False
        for key, op, arg in self.exprs:
            if op == "In":
                v = labels.get(key)
                if v is None or v not in arg:
                    return False
            elif op == "NotIn":
                v = labels.get(key)
                if v is not None and v in arg:
                    return False
            elif op == "Exists":
                if key not in labels:
                    return False
            elif op == "DoesNotExist":
                if key in labels:
                    return False
            else:
                v = labels.get(key)
                n = _parse_int(v) if v is not None else None
                if n is None or (n <= arg if op == "Gt" else n >= arg):
                    return False
        for _key, op, arg in self.fields:
            if (name in arg) != (op == "In"):
                return False
        return True


def match_terms(terms: list[Term], labels: dict, name: str) -> bool:
    """NodeSelectorTerms are ORed."""
    for t in terms:
        if t.matches(labels, name):
            return True
    return False


def name_terms(raw_terms: list) -> set[str] | None | bool:
    """NodeAffinity PreFilter: the node names the required terms pin the pod to.

    None: any node; a set: only these; False: the terms contradict each other.
    """
    names: set[str] = set()
    for t in raw_terms:
        term_names: set[str] | None = None
        for f in (t or {}).get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("operator") == "In":
                s = set(f.get("values") or ())
                term_names = s if term_names is None else term_names & s
        if term_names is None:
            return None
        names |= term_names
    return names if names else False
