"""What makes a pod a DaemonSet's pod for a given node, and whether it is up to date.

Why it exists: the controller, its rolling update and its status all ask the same questions
(upstream `pkg/controller/daemon/util/daemonset_util.go`): which tolerations does every daemon
pod get, which labels tie a pod to a revision, which node is a pod meant for before the scheduler
has bound it, how many pods may be unavailable or surge during an update. The answers live here
once, in upstream's terms:

* every daemon pod tolerates the node problems it must survive: not-ready and unreachable
  NoExecute forever (no tolerationSeconds, so the node lifecycle controller never evicts it), the
  pressure and unschedulable NoSchedule taints, and network-unavailable for hostNetwork pods;
* a pod carries `controller-revision-hash` (the current ControllerRevision's hash) and, when the
  DaemonSet has the `deprecated.daemonset.template.generation` annotation the API server keeps,
  `pod-template-generation`; either one matching means the pod is up to date;
* a pod is pinned to its node by a required node affinity term on `metadata.name`
  (ReplaceDaemonSetPodNodeNameNodeAffinity), so the default scheduler binds it there and nowhere
  else, and that term is how the controller knows a pending pod's node.
"""

from __future__ import annotations

import copy

from ...deployment.util import scaled_value

__all__ = [
    "CONTROLLER_REVISION_HASH",
    "TEMPLATE_GENERATION_ANNOTATION",
    "TEMPLATE_GENERATION_LABEL",
    "add_daemon_tolerations",
    "allows_surge",
    "create_pod_template",
    "is_pod_updated",
    "replace_node_name_affinity",
    "surge_count",
    "target_node_name",
    "template_generation",
    "unavailable_count",
]

CONTROLLER_REVISION_HASH = "controller-revision-hash"          # apps.DefaultDaemonSetUniqueLabelKey
TEMPLATE_GENERATION_LABEL = "pod-template-generation"           # extensions.DaemonSetTemplateGenerationKey
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"

_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"
_NO_SCHEDULE_KEYS = ("node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
                     "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable")
_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


def template_generation(ds: dict) -> int | None:
    """The template generation from the deprecated annotation; None if absent or unparsable."""
    raw = ((ds.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _same_toleration(a: dict, b: dict) -> bool:
    """v1.Toleration.MatchToleration: key, operator, value and effect (Equal is the default)."""
    return ((a.get("key") or "") == (b.get("key") or "")
            and (a.get("effect") or "") == (b.get("effect") or "")
            and (a.get("operator") or "Equal") == (b.get("operator") or "Equal")
            and (a.get("value") or "") == (b.get("value") or ""))


def _add_or_update_toleration(spec: dict, tol: dict) -> None:
    """AddOrUpdateTolerationInPodSpec: a matching toleration is replaced, otherwise appended."""
    out, updated = [], False
    for t in spec.get("tolerations") or ():
        if _same_toleration(t, tol):
            out.append(dict(tol))
            updated = True
        else:
            out.append(t)
    if not updated:
        out.append(dict(tol))
    spec["tolerations"] = out


def add_daemon_tolerations(spec: dict) -> None:
    """AddOrUpdateDaemonPodTolerations, in upstream's order."""
    for key in (_NOT_READY, _UNREACHABLE):
        _add_or_update_toleration(spec, {"key": key, "operator": "Exists", "effect": "NoExecute"})
    for key in _NO_SCHEDULE_KEYS:
        _add_or_update_toleration(spec, {"key": key, "operator": "Exists", "effect": "NoSchedule"})
    if spec.get("hostNetwork"):
        _add_or_update_toleration(spec, {"key": _NETWORK_UNAVAILABLE, "operator": "Exists",
                                         "effect": "NoSchedule"})


def create_pod_template(template: dict, generation: int | None, hash_: str) -> dict:
    """CreatePodTemplate: the DaemonSet's template with the daemon tolerations and revision labels."""
    out = copy.deepcopy(template or {})
    add_daemon_tolerations(out.setdefault("spec", {}))
    labels = out.setdefault("metadata", {}).setdefault("labels", {})
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = str(generation)
    if hash_:
        labels[CONTROLLER_REVISION_HASH] = hash_
    return out


def _rolling(ds: dict) -> dict | None:
    us = (ds.get("spec") or {}).get("updateStrategy") or {}
    if us.get("type") != "RollingUpdate":
        return None
    return us.get("rollingUpdate")


def surge_count(ds: dict, number_to_schedule: int) -> int:
    """SurgeCount: maxSurge scaled (rounding up); 0 unless RollingUpdate asks for it."""
    r = _rolling(ds)
    if r is None or r.get("maxSurge") is None:
        return 0
    return scaled_value(r["maxSurge"], number_to_schedule, True)


def unavailable_count(ds: dict, number_to_schedule: int) -> int:
    """UnavailableCount: maxUnavailable scaled (rounding up); 0 unless RollingUpdate."""
    r = _rolling(ds)
    if r is None:
        return 0
    return scaled_value(r.get("maxUnavailable"), number_to_schedule, True)


def allows_surge(ds: dict) -> bool:
    """More than one pod per node is allowed while updating."""
    try:
        return surge_count(ds, 1) > 0
    except ValueError:
        return False


def is_pod_updated(pod: dict, hash_: str, generation: int | None) -> bool:
    """The pod belongs to the current revision: its hash label or its template generation matches."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == str(generation):
        return True
    return bool(hash_) and labels.get(CONTROLLER_REVISION_HASH) == hash_


def replace_node_name_affinity(affinity: dict | None, node_name: str) -> dict:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: the required node terms become "this node".

    The user's required terms were already checked against the node by the controller, so
    replacing them loses nothing; preferred terms and pod (anti-)affinity stay as they are.
    """
    selector = {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    out = dict(affinity or {})
    node_affinity = dict(out.get("nodeAffinity") or {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = selector
    out["nodeAffinity"] = node_affinity
    return out


def target_node_name(pod: dict) -> str | None:
    """GetTargetNodeName: spec.nodeName, or for a pod not bound yet, its metadata.name term."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in req.get("nodeSelectorTerms") or ():
        for f in (term or {}).get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("operator") == "In":
                values = f.get("values") or []
                return values[0] if len(values) == 1 else None
    return None
