"""What a StatefulSet's pods and claims must look like, and how to tell (stateful_set_utils.go).

Why it exists: a StatefulSet's pods have an identity (`<set>-<ordinal>`, a hostname and the
headless service's subdomain, the pod-name and pod-index labels), storage (one claim per claim
template, `<template>-<set>-<ordinal>`) and a revision label. These pure functions build that
identity, check it, and decide pod health the way upstream does; the control loop in `control`
and the writes in `podcontrol` only call them.
"""

from __future__ import annotations

import copy
import re

from ..base import controller_ref, new_controller_ref, pod_from_template
from ..deployment.util import scaled_value
from ..history import template_of
from ..ranking import available_after, is_pod_ready

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"   # apps.StatefulSetRevisionLabel
RETAIN = "Retain"
DELETE = "Delete"

_ORDINAL = re.compile(r"(.*)-([0-9]+)$")


# ---- names and ordinals ---------------------------------------------------------------------

def parent_and_ordinal(name: str) -> tuple[str, int]:
    """getParentNameAndOrdinal: ("web", 3) for "web-3"; ("", -1) for a name without ordinal."""
    m = _ORDINAL.match(name or "")
    if m is None:
        return "", -1
    n = int(m.group(2))
    return m.group(1), (n if n < 2 ** 31 else -1)


def ordinal_of(pod: dict) -> int:
    return parent_and_ordinal(pod["metadata"].get("name") or "")[1]


def start_ordinal(sts: dict) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def replicas_of(sts: dict) -> int:
    r = (sts.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def end_ordinal(sts: dict) -> int:
    return start_ordinal(sts) + replicas_of(sts) - 1


def in_ordinal_range(pod: dict, sts: dict) -> bool:
    o = ordinal_of(pod)
    return start_ordinal(sts) <= o <= end_ordinal(sts)


def pod_name(sts: dict, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def claim_name(sts: dict, template: dict, ordinal: int) -> str:
    return f"{(template.get('metadata') or {}).get('name')}-{sts['metadata']['name']}-{ordinal}"


def is_member_of(sts: dict, pod: dict) -> bool:
    return parent_and_ordinal(pod["metadata"].get("name") or "")[0] == sts["metadata"]["name"]


# ---- identity and storage -------------------------------------------------------------------

def identity_matches(sts: dict, pod: dict) -> bool:
    meta = pod["metadata"]
    parent, ordinal = parent_and_ordinal(meta.get("name") or "")
    return (ordinal >= 0 and parent == sts["metadata"]["name"]
            and meta.get("name") == pod_name(sts, ordinal)
            and (meta.get("namespace") or "") == (sts["metadata"].get("namespace") or "")
            and (meta.get("labels") or {}).get(POD_NAME_LABEL) == meta.get("name"))


def claim_templates(sts: dict) -> list[dict]:
    return list((sts.get("spec") or {}).get("volumeClaimTemplates") or ())


def storage_matches(sts: dict, pod: dict) -> bool:
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or ()}
    for tpl in claim_templates(sts):
        v = volumes.get((tpl.get("metadata") or {}).get("name"))
        if v is None or (v.get("persistentVolumeClaim") or {}).get("claimName") != claim_name(sts, tpl, ordinal):
            return False
    return True


def claims_for(sts: dict, ordinal: int) -> dict[str, dict]:
    """getPersistentVolumeClaims: template name -> the claim for this ordinal, labelled with the
    template's labels plus the set's matchLabels."""
    match_labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    out = {}
    for tpl in claim_templates(sts):
        tmeta = tpl.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        labels.update(match_labels)
        meta = {k: copy.deepcopy(v) for k, v in tmeta.items()
                if k in ("annotations", "finalizers")}
        meta.update(name=claim_name(sts, tpl, ordinal), namespace=sts["metadata"].get("namespace"))
        if labels:
            meta["labels"] = labels
        out[tmeta.get("name")] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
                                  "spec": copy.deepcopy(tpl.get("spec") or {})}
    return out


def update_storage(sts: dict, pod: dict) -> None:
    """Point the pod's claim-template volumes at this ordinal's claims; keep its other volumes."""
    claims = claims_for(sts, ordinal_of(pod))
    spec = pod.setdefault("spec", {})
    volumes = [{"name": n, "persistentVolumeClaim": {"claimName": c["metadata"]["name"]}}
               for n, c in claims.items()]
    volumes.extend(v for v in spec.get("volumes") or () if v.get("name") not in claims)
    spec["volumes"] = volumes


def update_identity(sts: dict, pod: dict) -> None:
    """Name, namespace and the pod-name / pod-index labels."""
    ordinal = ordinal_of(pod)
    meta = pod["metadata"]
    meta["name"] = pod_name(sts, ordinal)
    meta["namespace"] = sts["metadata"].get("namespace")
    labels = meta.setdefault("labels", {})
    labels[POD_NAME_LABEL] = meta["name"]
    labels[POD_INDEX_LABEL] = str(ordinal)


def new_pod(sts: dict, ordinal: int) -> dict:
    """newStatefulSetPod: the template with identity, hostname/subdomain and claim volumes."""
    pod = pod_from_template((sts.get("spec") or {}).get("template") or {}, sts, "")
    meta = pod["metadata"]
    meta.pop("generateName", None)
    meta["name"] = pod_name(sts, ordinal)
    update_identity(sts, pod)
    # Immutable on a pod, so set only when it is made.
    pod["spec"]["hostname"] = meta["name"]
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        pod["spec"]["subdomain"] = service
    update_storage(sts, pod)
    return pod


def new_versioned_pod(current_set: dict, update_set: dict, current_rev: str, update_rev: str,
                      ordinal: int) -> dict:
    """newVersionedStatefulSetPod: below the partition (or, without a rollingUpdate block, below
    the current replicas) a missing pod is made at the current revision, otherwise at the update
    revision. (Upstream's expression groups as (A && B) || C; so does this one.)"""
    spec = current_set.get("spec") or {}
    us = spec.get("updateStrategy") or {}
    ru = us.get("rollingUpdate")
    start = start_ordinal(current_set)
    current_replicas = int((current_set.get("status") or {}).get("currentReplicas") or 0)
    if (us.get("type") == "RollingUpdate" and ru is None and ordinal < start + current_replicas) or \
            (ru is not None and ordinal < start + int(ru.get("partition") or 0)):
        pod = new_pod(current_set, ordinal)
        pod["metadata"]["labels"][REVISION_LABEL] = current_rev
        return pod
    pod = new_pod(update_set, ordinal)
    pod["metadata"]["labels"][REVISION_LABEL] = update_rev
    return pod


def apply_revision(sts: dict, revision: dict) -> dict:
    """ApplyRevision: a copy of the set with the revision's template (its `$patch: replace`)."""
    clone = copy.deepcopy(sts)
    clone.setdefault("spec", {})["template"] = template_of(revision)
    return clone


def pod_revision(pod: dict) -> str:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL, "")


# ---- health ---------------------------------------------------------------------------------

def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_created(pod: dict) -> bool:
    return phase(pod) != ""


def is_terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_running_and_ready(pod: dict) -> bool:
    return phase(pod) == "Running" and is_pod_ready(pod)


def is_running_and_available(pod: dict, min_ready: int, now: float) -> bool:
    return available_after(pod, min_ready, now) == 0.0


def is_unavailable(pod: dict, min_ready: int, now: float) -> bool:
    return not is_running_and_available(pod, min_ready, now) or is_terminating(pod)


def allows_burst(sts: dict) -> bool:
    return (sts.get("spec") or {}).get("podManagementPolicy") == "Parallel"


def max_unavailable(sts: dict) -> int:
    """getStatefulSetMaxUnavailable: 1 by default, percentages rounded down, never below 1."""
    ru = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    v = ru.get("maxUnavailable")
    n = scaled_value(1 if v is None else v, replicas_of(sts), False)
    return max(n, 1)


# ---- claim retention (ownerReferences that let the garbage collector delete claims) ----------

def retention_policy(sts: dict) -> tuple[str, str]:
    """(whenDeleted, whenScaled), Retain when unset."""
    p = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return p.get("whenDeleted") or RETAIN, p.get("whenScaled") or RETAIN


def _matches_ref(ref: dict, obj: dict, api_version: str, kind: str) -> bool:
    return (ref.get("apiVersion") == api_version and ref.get("kind") == kind
            and ref.get("name") == obj["metadata"].get("name"))


def _is_set_ref(ref: dict, sts: dict) -> bool:
    return _matches_ref(ref, sts, "apps/v1", "StatefulSet")


def _is_pod_ref(ref: dict, pod: dict) -> bool:
    return _matches_ref(ref, pod, "v1", "Pod")


def _refs(obj: dict) -> list[dict]:
    return list(obj["metadata"].get("ownerReferences") or ())


def has_owner_ref(target: dict, owner: dict) -> bool:
    uid = owner["metadata"].get("uid")
    return any(r.get("uid") == uid for r in _refs(target))


def has_stale_owner_ref(claim: dict, obj: dict, is_ref) -> bool:
    """A reference to an object of that name and kind, but another uid (an older incarnation)."""
    for r in _refs(claim):
        if is_ref(r, obj):
            return r.get("uid") != obj["metadata"].get("uid")
    return False


def has_unexpected_controller(claim: dict, sts: dict, pod: dict) -> bool:
    if retention_policy(sts) == (RETAIN, RETAIN):
        return False
    for r in _refs(claim):
        if _is_set_ref(r, sts):
            if r.get("uid") != sts["metadata"].get("uid"):
                return True
            continue
        if _is_pod_ref(r, pod):
            if r.get("uid") != pod["metadata"].get("uid"):
                return True
            continue
        if r.get("controller"):
            return True
    return False


def has_non_controller_owner(claim: dict, sts: dict, pod: dict) -> bool:
    uids = (sts["metadata"].get("uid"), pod["metadata"].get("uid"))
    return any(r.get("uid") in uids and not r.get("controller") for r in _refs(claim))


def claim_owner_up_to_date(claim: dict, sts: dict, pod: dict) -> bool:
    """isClaimOwnerUpToDate: the claim's references say what the retention policy wants:
    Retain/Retain none; Delete on set deletion a set reference; Delete on scale-down a pod
    reference once the pod is out of range (and then no set reference)."""
    if has_stale_owner_ref(claim, sts, _is_set_ref) or has_stale_owner_ref(claim, pod, _is_pod_ref):
        return True   # managed by an earlier incarnation: leave it alone
    if has_unexpected_controller(claim, sts, pod):
        return not (has_owner_ref(claim, sts) or has_owner_ref(claim, pod))
    if has_non_controller_owner(claim, sts, pod):
        return False
    when_deleted, when_scaled = retention_policy(sts)
    has_set, has_pod = has_owner_ref(claim, sts), has_owner_ref(claim, pod)
    scaled_down = not in_ordinal_range(pod, sts)
    if when_scaled == DELETE and when_deleted == DELETE:
        return scaled_down != has_set and scaled_down == has_pod
    if when_scaled == DELETE:
        return not has_set and scaled_down == has_pod
    if when_deleted == DELETE:
        return has_set and not has_pod
    return not has_set and not has_pod


def update_claim_owner_refs(claim: dict, sts: dict, pod: dict) -> None:
    """updateClaimOwnerRefForSetAndPod: rewrite the set/pod references the policy wants."""
    unexpected = has_unexpected_controller(claim, sts, pod)
    refs = [r for r in _refs(claim) if not (_is_set_ref(r, sts) or _is_pod_ref(r, pod))]
    if not unexpected:
        when_deleted, when_scaled = retention_policy(sts)
        scaled_down = not in_ordinal_range(pod, sts)
        wanted = []
        if when_deleted == DELETE and (when_scaled == RETAIN or not scaled_down):
            wanted.append(sts)
        if when_scaled == DELETE and scaled_down:
            wanted.append(pod)
        for owner in wanted:
            if not any(r.get("uid") == owner["metadata"].get("uid") for r in refs):
                refs.append(new_controller_ref(owner))
    claim["metadata"]["ownerReferences"] = refs


def controlled_by_uid(obj: dict, uid: str) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == uid
