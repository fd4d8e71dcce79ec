"""Per-kind rules that are not validation: what create resets, what update keeps, generation.

Upstream every registry has a "strategy" (PrepareForCreate, PrepareForUpdate, the status
strategy, the default garbage-collection policy). These decide, for example, that a client
cannot set a Deployment's status on create, that a spec change bumps `metadata.generation`
but a status write does not, and that a new Pod starts Pending with its QoS class.
"""

from __future__ import annotations

from typing import Any

from .quantity import parse_quantity
from .resources import Resource

# Kinds whose metadata.generation tracks spec changes.
GENERATION_KINDS = {"deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs",
                    "pods"}
# Kinds whose spec is not under .spec: every change outside metadata counts.
_SPECLESS_GENERATION: set[str] = set()

# Status fields Go always serialises (no omitempty), so clients requiring them find them.
_EMPTY_STATUS: dict[str, dict[str, Any]] = {
    "replicasets": {"replicas": 0},
    "statefulsets": {"replicas": 0, "availableReplicas": 0},
    "daemonsets": {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                   "desiredNumberScheduled": 0, "numberReady": 0},
    "deployments": {},
    "jobs": {},
    "cronjobs": {},
    "services": {"loadBalancer": {}},
}

# apps/v1 carries the DaemonSet's internal spec.templateGeneration in this annotation; the
# controller labels its pods with it (pod-template-generation).
DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

# Kinds whose default delete propagation is Orphan (batch/v1 Job keeps its pods by default).
ORPHAN_BY_DEFAULT = {"jobs"}


def has_status(res: Resource) -> bool:
    return res.subresource("status") is not None


def prepare_for_create(res: Resource, obj: dict) -> None:
    plural = res.plural
    meta = obj.setdefault("metadata", {})
    if plural in GENERATION_KINDS:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if plural in _EMPTY_STATUS:
        obj["status"] = dict(_EMPTY_STATUS[plural])
    elif plural == "pods":
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
    elif plural == "namespaces":
        obj["status"] = {"phase": "Active"}
    elif plural in ("persistentvolumes", "persistentvolumeclaims"):
        obj["status"] = {"phase": "Pending"}
    if plural == "daemonsets":
        _set_annotation(meta, DS_TEMPLATE_GENERATION, "1")


def _set_annotation(meta: dict, key: str, value: str | None) -> None:
    annotations = meta.get("annotations")
    if value is None:
        if isinstance(annotations, dict):
            annotations.pop(key, None)
        return
    if not isinstance(annotations, dict):
        annotations = meta["annotations"] = {}
    annotations[key] = value


def _template_generation(obj: dict) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(DS_TEMPLATE_GENERATION, 0))
    except (TypeError, ValueError):
        return 0


def prepare_for_update(res: Resource, new: dict, old: dict) -> None:
    """Main-resource update: status comes from the stored object; spec changes bump generation."""
    if has_status(res) and res.plural not in ("nodes",):
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if res.plural == "namespaces":
        new.setdefault("status", old.get("status", {"phase": "Active"}))
    meta = new["metadata"]
    old_gen = (old.get("metadata") or {}).get("generation")
    if old_gen is not None:
        meta["generation"] = old_gen
        if spec_changed(res, new, old):
            meta["generation"] = old_gen + 1
    else:
        meta.pop("generation", None)
    if res.plural == "daemonsets":
        gen = _template_generation(old)
        if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            gen += 1
        _set_annotation(meta, DS_TEMPLATE_GENERATION, str(gen) if gen else None)


def spec_changed(res: Resource, new: dict, old: dict) -> bool:
    if res.plural in _SPECLESS_GENERATION:
        strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
        return strip(new) != strip(old)
    return new.get("spec") != old.get("spec")


# What a status write may not change in metadata, per kind, as each upstream status strategy's
# PrepareForUpdate resets it (apps' and batch's keep annotation changes, which conformance
# checks; pods' keep their owner references, which old kubelets used to corrupt). The core kinds
# reset only their spec: components annotate nodes through nodes/status, and the namespace
# conformance test patches an annotation through namespaces/status.
_STATUS_META_ALWAYS = ("deletionTimestamp", "deletionGracePeriodSeconds", "generation")
_STATUS_META_RESET = {
    "deployments": ("labels",),
    "replicasets": ("labels",),
    "statefulsets": ("labels",),
    "pods": ("ownerReferences",),
}
# Kinds without a specific rule reset everything, as ResetObjectMetaForStatus does.
_STATUS_META_ALL = ("labels", "annotations", "finalizers", "ownerReferences")
_STATUS_SPEC_ONLY = {"daemonsets", "jobs", "cronjobs", "namespaces", "nodes", "services",
                     "persistentvolumes", "persistentvolumeclaims"}


def prepare_for_status_update(res: Resource, new: dict, old: dict) -> None:
    """Status subresource: only .status changes (and, for some kinds, some metadata)."""
    for k, v in old.items():
        if k not in ("status", "metadata"):
            new[k] = v
    for k in list(new):
        if k not in old and k not in ("status", "metadata"):
            del new[k]
    meta = new.setdefault("metadata", {})
    old_meta = old.get("metadata") or {}
    if res.plural in _STATUS_META_RESET:
        reset = _STATUS_META_ALWAYS + _STATUS_META_RESET[res.plural]
    elif res.plural in _STATUS_SPEC_ONLY:
        reset = _STATUS_META_ALWAYS
    else:
        reset = _STATUS_META_ALWAYS + _STATUS_META_ALL
    for k in reset:
        if k in old_meta:
            meta[k] = old_meta[k]
        else:
            meta.pop(k, None)


def _requests_limits(container: dict) -> tuple[dict, dict]:
    r = container.get("resources") or {}
    return (r.get("requests") or {}), (r.get("limits") or {})


def qos_class(spec: dict) -> str:
    """The pod's QoS class, as kubelet and apiserver compute it (pkg/apis/core/helper/qos)."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        requests, limits = _requests_limits(c)
        for name in ("cpu", "memory"):
            req, lim = requests.get(name), limits.get(name)
            if req is not None or lim is not None:
                any_set = True
            if lim is None:
                guaranteed = False
            elif req is not None:
                try:
                    if parse_quantity(str(req)) != parse_quantity(str(lim)):
                        guaranteed = False
                except ValueError:
                    guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
