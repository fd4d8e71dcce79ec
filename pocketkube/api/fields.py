"""Which fields each kind can be selected by, and how to read them from an object.

Field selectors are not generic JSON paths: every registry declares a short list of fields
(`GetAttrs` / field label conversion funcs upstream), and anything else is refused with
`field label not supported`. kubectl relies on metadata.name and metadata.namespace for every
kind, on spec.nodeName/status.phase for pods and on involvedObject.* for events.
"""

from __future__ import annotations

from typing import Callable

from .errors import bad_request

_COMMON = ("metadata.name", "metadata.namespace")

SUPPORTED: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
             "status.nominatedNodeName"),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
               # events.k8s.io/v1 names
               "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
               "regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath",
               "reportingController", "note"),
    "nodes": ("spec.unschedulable",),
    "namespaces": ("status.phase",),
    "secrets": ("type",),
    "jobs": ("status.successful",),
    "replicasets": ("status.replicas",),
    "persistentvolumeclaims": (),
    "persistentvolumes": (),
}


def _dig(obj: dict, path: str):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _as_text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _event_source(obj: dict) -> str:
    src = obj.get("source") or {}
    return src.get("component") or obj.get("reportingComponent") or ""


def getter(resource: str, fields: list[str]) -> Callable[[dict], Callable[[str], str]]:
    """Validate `fields` for `resource`; return a factory obj -> (field -> value)."""
    allowed = set(_COMMON) | set(SUPPORTED.get(resource, ()))
    for f in fields:
        if f not in allowed:
            raise bad_request(f"field label not supported: {f}")

    def bind(obj: dict) -> Callable[[str], str]:
        def get(path: str) -> str:
            if path == "spec.unschedulable":
                return _as_text(bool((obj.get("spec") or {}).get("unschedulable")))
            if path == "status.successful":
                return _as_text((obj.get("status") or {}).get("succeeded") or 0)
            if path == "status.replicas":
                return _as_text((obj.get("status") or {}).get("replicas") or 0)
            if path == "spec.hostNetwork":
                return _as_text(bool((obj.get("spec") or {}).get("hostNetwork")))
            if path == "source":
                return _event_source(obj)
            if path == "metadata.namespace" and resource in ("namespaces", "nodes", "persistentvolumes"):
                return ""
            if path == "type" and resource == "secrets":
                return _as_text(obj.get("type") or "Opaque")
            return _as_text(_dig(obj, path))
        return get
    return bind
