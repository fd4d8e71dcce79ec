"""A pod template printed as go-spew prints the Go struct (`%#v`), the bytes Kubernetes hashes.

Why it exists: kube-controller-manager names a Deployment's ReplicaSets after an FNV-32a hash
of `spew.Sprintf("%#v", deployment.Spec.Template)` (controller.ComputeHash with
dump.ForHash, formerly hashutil.DeepHashObject), so the same manifest gives the same ReplicaSet and pod names on
pocketkube as on a Kubernetes cluster of the version we serve. That text holds every field of
the Go struct in declaration order, zero values and Go type names included; gotypes.py has
the types (generated from Kubernetes' own, see tools/podtemplate_hash).

The object printed is the one the controller holds: decoded from the API server's protobuf,
where an empty list or map is nil and a quantity is parsed from its stored spelling. What
this module cannot reproduce (a quantity Go keeps as an inf.Dec, a timestamp in the template)
raises Unsupported; the caller then hashes another rendering, and only the name differs.
"""

from __future__ import annotations

from typing import Any

from ...api.quantity import int64_form
from .gotypes import ROOT, TYPES


class Unsupported(ValueError):
    """The template holds a value whose Go form is not reproduced here."""


def render(template: dict | None) -> str:
    """`spew.ConfigState{SortKeys: true, DisableMethods: true, ...}.Sprintf("%#v", template)`."""
    out: list[str] = []
    _value(template or {}, ROOT, False, out)
    return "".join(out)


def drop_empty_collections(template: dict) -> dict:
    """`template` without its empty lists and maps, in place: what the controller's copy holds
    after protobuf (nil) and what Go's JSON encoder then writes (omitempty leaves them out).
    Empty objects that are structs (`securityContext: {}`, `emptyDir: {}`) stay."""
    _prune(template, ROOT)
    return template


def _prune(v: Any, name: str) -> None:
    t = TYPES[name]
    kind = t[0]
    if kind == "ptr":
        _prune(v, t[1])
    elif kind == "struct" and isinstance(v, dict):
        for _, json_name, field_type, embedded in t[1]:
            if embedded:
                _prune(v, field_type)
            elif json_name in v:
                if TYPES[field_type][0] in ("slice", "map") and not v[json_name]:
                    del v[json_name]
                else:
                    _prune(v[json_name], field_type)
    elif kind == "slice" and isinstance(v, list):
        for item in v:
            _prune(item, t[1])
    elif kind == "map" and isinstance(v, dict):
        for item in v.values():
            _prune(item, t[2])


def _value(v: Any, name: str, bare: bool, out: list[str]) -> None:
    # `bare` is spew's ignoreNextType: elements of slices and maps, and what a pointer points
    # to, are printed without their type.
    t = TYPES[name]
    kind = t[0]
    if kind == "ptr":
        if v is None:
            out.append("<nil>" if bare else f"({name})<nil>")
            return
        out.append("<*>" if bare else f"(*{t[1]})")
        _value(v, t[1], True, out)
        return
    if not bare:
        out.append(f"({name})")
    if kind == "struct":
        if v is None:
            v = {}
        if not isinstance(v, dict):
            raise Unsupported(f"{name} is not an object")
        out.append("{")
        for i, (go_name, json_name, field_type, embedded) in enumerate(t[1]):
            if i:
                out.append(" ")
            out.append(go_name + ":")
            _value(v if embedded else v.get(json_name) if json_name else None, field_type, False, out)
        out.append("}")
    elif kind == "slice":
        if not v:
            out.append("<nil>")
            return
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(" ")
            _value(item, t[1], True, out)
        out.append("]")
    elif kind == "map":
        if not v:
            out.append("<nil>")
            return
        out.append("map[")
        for i, key in enumerate(sorted(v)):
            if i:
                out.append(" ")
            out.append(f"{key}:")
            _value(v[key], t[2], True, out)
        out.append("]")
    elif kind == "string":
        out.append("" if v is None else str(v))
    elif kind == "bool":
        out.append("true" if v else "false")
    elif kind in ("int", "int32", "int64", "uint", "uint8", "uint64"):
        out.append(str(int(v or 0)))
    elif kind == "special":
        out.append(_SPECIAL[name](v))
    else:
        raise Unsupported(f"{name} of kind {kind}")


def _quantity(v: Any) -> str:
    try:
        form = int64_form(v) if isinstance(v, str) else None
    except ValueError:
        form = None
    if form is None:
        raise Unsupported(f"quantity {v!r}")
    value, scale, fmt, cached = form
    return (f"{{i:(resource.int64Amount){{value:(int64){value} scale:(resource.Scale){scale}}} "
            f"d:(resource.infDecAmount){{Dec:(*inf.Dec)<nil>}} s:(string){cached} Format:(resource.Format){fmt}}}")


def _int_or_string(v: Any) -> str:
    if isinstance(v, str):
        return f"{{Type:(intstr.Type)1 IntVal:(int32)0 StrVal:(string){v}}}"
    return f"{{Type:(intstr.Type)0 IntVal:(int32){int(v or 0)} StrVal:(string)}}"


def _time(v: Any) -> str:
    if v:
        raise Unsupported("a timestamp in a pod template")
    return "{wall:(uint64)0 ext:(int64)0 loc:(*time.Location)<nil>}"


_SPECIAL = {"resource.Quantity": _quantity, "intstr.IntOrString": _int_or_string, "time.Time": _time}
