"""apps/v1 validation: Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision.

Follows `pkg/apis/apps/validation/validation.go` plus the apps/v1 registry strategies, which
add the one rule users hit most: `spec.selector` cannot change after create.
"""

from __future__ import annotations

import re

from pocketkube.api.errors import FieldError, forbidden, invalid, not_supported, required
from pocketkube.api.names import name_is_dns_label, name_is_dns_subdomain
from pocketkube.api.selectors import SelectorError, selector_from_dict, validate_label_selector

from .common import (
    JSONValue,
    as_int,
    bad,
    child,
    deep_equal,
    dict_of,
    immutable,
    list_of,
    nonneg,
    str_of,
)
from .meta import validate_object_meta, validate_object_meta_update
from .podspec import validate_pod_template_spec

_PERCENT_RE = re.compile(r"[0-9]+%")
_PERCENT_ERROR = (
    "a valid percent string must be a numeric string followed by an ending '%' "
    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
)


# --- shared pieces ---------------------------------------------------------------------------


def _int_or_percent_value(v) -> int:
    """getIntOrPercentValue: the number of a percent, the int itself, or 0."""
    if isinstance(v, str):
        if _PERCENT_RE.fullmatch(v):
            return int(v[:-1])
        return 0
    return as_int(v) or 0


def validate_positive_int_or_percent(v, path: str) -> list[FieldError]:
    if isinstance(v, str):
        if not _PERCENT_RE.fullmatch(v):
            return [invalid(path, v, _PERCENT_ERROR)]
        return []
    return nonneg(v, path)


def not_more_than_100_percent(v, path: str) -> list[FieldError]:
    if isinstance(v, str) and _PERCENT_RE.fullmatch(v) and int(v[:-1]) > 100:
        return [invalid(path, v, "must not be greater than 100%")]
    return []


def _validate_selector(spec: dict, path: str, what: str) -> tuple[object, list[FieldError]]:
    """Required, strictly valid, non-empty selector; returns the parsed selector (or None)."""
    errs: list[FieldError] = []
    sel = spec.get("selector")
    spath = child(path, "selector")
    if sel is None:
        errs.append(required(spath, ""))
    else:
        sel = dict_of(sel)
        errs.extend(validate_label_selector(sel, spath))
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            errs.append(invalid(spath, JSONValue(sel), f"empty selector is invalid for {what}"))
    try:
        parsed = selector_from_dict(sel if sel is None else dict_of(sel))
    except SelectorError:
        errs.append(invalid(spath, bad(sel), "invalid label selector"))
        return None, errs
    return parsed, errs


def _template_for_replicas(tpl, parsed, path: str, kind: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet."""
    errs: list[FieldError] = []
    if tpl is None:
        return [required(path, "")]
    tpl = dict_of(tpl)
    labels = dict_of(dict_of(tpl.get("metadata")).get("labels"))
    if parsed is not None and not parsed.empty() and not parsed.matches(labels):
        errs.append(
            invalid(
                child(child(path, "metadata"), "labels"),
                JSONValue(labels),
                "`selector` does not match template `labels`",
            )
        )
    errs.extend(validate_pod_template_spec(tpl, path))
    spec = dict_of(tpl.get("spec"))
    rp = str_of(spec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported(child(child(path, "spec"), "restartPolicy"), rp, ["Always"]))
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                child(child(path, "spec"), "activeDeadlineSeconds"),
                f"activeDeadlineSeconds in {kind} is not Supported",
            )
        )
    return errs


def _selector_immutable(new: dict, old: dict) -> list[FieldError]:
    return immutable(
        dict_of(new.get("spec")).get("selector"),
        dict_of(old.get("spec")).get("selector"),
        "spec.selector",
    )


# --- Deployment ------------------------------------------------------------------------------


def _deployment_strategy(strategy: dict, path: str) -> list[FieldError]:
    t = str_of(strategy.get("type"))
    ru = strategy.get("rollingUpdate")
    if t == "Recreate":
        if ru is not None:
            return [
                forbidden(
                    child(path, "rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            ]
        return []
    if t == "RollingUpdate":
        rpath = child(path, "rollingUpdate")
        if ru is None:
            return [required(rpath, "this should be defaulted and never be nil")]
        ru = dict_of(ru)
        mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
        errs = validate_positive_int_or_percent(mu, child(rpath, "maxUnavailable"))
        errs.extend(validate_positive_int_or_percent(ms, child(rpath, "maxSurge")))
        if _int_or_percent_value(mu) == 0 and _int_or_percent_value(ms) == 0:
            errs.append(
                invalid(
                    child(rpath, "maxUnavailable"),
                    bad(mu if mu is not None else 0),
                    "may not be 0 when `maxSurge` is 0",
                )
            )
        errs.extend(not_more_than_100_percent(mu, child(rpath, "maxUnavailable")))
        return errs
    return [not_supported(path, JSONValue(strategy), ["Recreate", "RollingUpdate"])]


def validate_deployment_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    errs = nonneg(spec.get("replicas"), child(path, "replicas"))
    parsed, serrs = _validate_selector(spec, path, "deployment")
    errs.extend(serrs)
    if parsed is not None:
        errs.extend(
            _template_for_replicas(
                spec.get("template"), parsed, child(path, "template"), "ReplicaSet"
            )
        )
    errs.extend(_deployment_strategy(dict_of(spec.get("strategy")), child(path, "strategy")))
    errs.extend(nonneg(spec.get("minReadySeconds"), child(path, "minReadySeconds")))
    errs.extend(nonneg(spec.get("revisionHistoryLimit"), child(path, "revisionHistoryLimit")))
    pds = as_int(spec.get("progressDeadlineSeconds"))
    if pds is not None:
        errs.extend(nonneg(pds, child(path, "progressDeadlineSeconds")))
        if pds <= (as_int(spec.get("minReadySeconds")) or 0):
            errs.append(
                invalid(
                    child(path, "progressDeadlineSeconds"),
                    pds,
                    "must be greater than minReadySeconds",
                )
            )
    return errs


def validate_deployment(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    spec = dict_of(obj.get("spec"))
    if old is None:
        errs = validate_object_meta(meta, True, name_is_dns_subdomain)
        errs.extend(validate_deployment_spec(spec))
        return errs
    errs = validate_object_meta_update(meta, dict_of(old.get("metadata")))
    errs.extend(validate_deployment_spec(spec))
    errs.extend(_selector_immutable(obj, old))
    return errs


_STATUS_LE_REPLICAS = "cannot be greater than status.replicas"


def _status_counts(status: dict, path: str, fields: tuple[str, ...]) -> list[FieldError]:
    errs: list[FieldError] = []
    for f in fields:
        errs.extend(nonneg(status.get(f), child(path, f)))
    return errs


def _collision_count(new: dict, old: dict) -> list[FieldError]:
    n = as_int(dict_of(new.get("status")).get("collisionCount"))
    o = as_int(dict_of(old.get("status")).get("collisionCount"))
    if o is not None and (n is None or n < o):
        return [invalid("status.collisionCount", n or 0, "cannot be decremented")]
    return []


def validate_deployment_status(obj: dict, old: dict) -> list[FieldError]:
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    st = dict_of(obj.get("status"))
    errs.extend(
        _status_counts(
            st,
            "status",
            (
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
                "collisionCount",
            ),
        )
    )
    r = as_int(st.get("replicas")) or 0
    for f in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        v = as_int(st.get(f)) or 0
        if v > r:
            errs.append(invalid(child("status", f), v, _STATUS_LE_REPLICAS))
    av, rd = as_int(st.get("availableReplicas")) or 0, as_int(st.get("readyReplicas")) or 0
    if av > rd:
        errs.append(invalid("status.availableReplicas", av, "cannot be greater than readyReplicas"))
    errs.extend(_collision_count(obj, old))
    return errs


# --- ReplicaSet ------------------------------------------------------------------------------


def validate_replicaset_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    errs = nonneg(spec.get("replicas"), child(path, "replicas"))
    errs.extend(nonneg(spec.get("minReadySeconds"), child(path, "minReadySeconds")))
    # Upstream reuses the Deployment wording for ReplicaSets.
    parsed, serrs = _validate_selector(spec, path, "deployment")
    errs.extend(serrs)
    if parsed is not None:
        errs.extend(
            _template_for_replicas(
                spec.get("template"), parsed, child(path, "template"), "ReplicaSet"
            )
        )
    return errs


def validate_replicaset(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    spec = dict_of(obj.get("spec"))
    if old is None:
        errs = validate_object_meta(meta, True, name_is_dns_subdomain)
        errs.extend(validate_replicaset_spec(spec))
        return errs
    errs = validate_object_meta_update(meta, dict_of(old.get("metadata")))
    errs.extend(validate_replicaset_spec(spec))
    errs.extend(_selector_immutable(obj, old))
    return errs


def validate_replicaset_status(obj: dict, old: dict) -> list[FieldError]:
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    st = dict_of(obj.get("status"))
    errs.extend(
        _status_counts(
            st,
            "status",
            (
                "replicas",
                "fullyLabeledReplicas",
                "readyReplicas",
                "availableReplicas",
                "observedGeneration",
            ),
        )
    )
    r = as_int(st.get("replicas")) or 0
    for f in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
        v = as_int(st.get(f)) or 0
        if v > r:
            errs.append(invalid(child("status", f), v, _STATUS_LE_REPLICAS))
    av, rd = as_int(st.get("availableReplicas")) or 0, as_int(st.get("readyReplicas")) or 0
    if av > rd:
        errs.append(invalid("status.availableReplicas", av, "cannot be greater than readyReplicas"))
    return errs


# --- StatefulSet -----------------------------------------------------------------------------

STATEFULSET_UPDATE_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden"
)
_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)
_RETENTION = ["Retain", "Delete"]


def validate_statefulset_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    pmp = str_of(spec.get("podManagementPolicy"))
    if not pmp:
        errs.append(required(child(path, "podManagementPolicy"), ""))
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.append(
            invalid(child(path, "podManagementPolicy"), pmp, "must be 'OrderedReady' or 'Parallel'")
        )
    us = dict_of(spec.get("updateStrategy"))
    upath = child(path, "updateStrategy")
    t = str_of(us.get("type"))
    if not t:
        errs.append(required(upath, ""))
    elif t == "OnDelete":
        if us.get("rollingUpdate") is not None:
            errs.append(
                invalid(
                    child(upath, "rollingUpdate"),
                    JSONValue(us["rollingUpdate"]),
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            )
    elif t == "RollingUpdate":
        ru = us.get("rollingUpdate")
        if ru is not None:
            ru = dict_of(ru)
            rpath = child(upath, "rollingUpdate")
            errs.extend(nonneg(ru.get("partition"), child(rpath, "partition")))
            mu = ru.get("maxUnavailable")
            if mu is not None:
                mpath = child(rpath, "maxUnavailable")
                errs.extend(validate_positive_int_or_percent(mu, mpath))
                if _int_or_percent_value(mu) == 0:
                    errs.append(invalid(mpath, bad(mu), "cannot be 0"))
                errs.extend(not_more_than_100_percent(mu, mpath))
    else:
        errs.append(invalid(upath, JSONValue(us), "must be 'RollingUpdate' or 'OnDelete'"))
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if policy is not None:
        policy = dict_of(policy)
        ppath = child(path, "persistentVolumeClaimRetentionPolicy")
        for f in ("whenDeleted", "whenScaled"):
            v = str_of(policy.get(f))
            if v not in _RETENTION:
                errs.append(not_supported(child(ppath, f), v, _RETENTION))
    errs.extend(nonneg(spec.get("replicas"), child(path, "replicas")))
    errs.extend(nonneg(spec.get("minReadySeconds"), child(path, "minReadySeconds")))
    ordinals = spec.get("ordinals")
    if ordinals is not None:
        errs.extend(nonneg(dict_of(ordinals).get("start"), child(path, "ordinals.start")))
    parsed, serrs = _validate_selector(spec, path, "statefulset")
    if parsed is None and serrs and serrs[-1].detail == "invalid label selector":
        serrs[-1].detail = ""  # upstream's StatefulSet check carries no detail
    errs.extend(serrs)
    tpl = dict_of(spec.get("template"))
    tpath = child(path, "template")
    if parsed is not None:
        labels = dict_of(dict_of(tpl.get("metadata")).get("labels"))
        if not parsed.empty() and not parsed.matches(labels):
            errs.append(
                invalid(
                    child(child(tpath, "metadata"), "labels"),
                    JSONValue(labels),
                    "`selector` does not match template `labels`",
                )
            )
        # Claim templates are volumes too, so mounts of them are only checked by name below.
        errs.extend(validate_pod_template_spec(_with_claim_volumes(tpl, spec), tpath))
    tspec = dict_of(tpl.get("spec"))
    rp = str_of(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported(child(child(tpath, "spec"), "restartPolicy"), rp, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                child(child(tpath, "spec"), "activeDeadlineSeconds"),
                "activeDeadlineSeconds in StatefulSet is not Supported",
            )
        )
    return errs


def _with_claim_volumes(tpl: dict, spec: dict) -> dict:
    claims = list_of(spec.get("volumeClaimTemplates"))
    if not claims:
        return tpl
    tspec = dict_of(tpl.get("spec"))
    existing = {str_of(dict_of(v).get("name")) for v in list_of(tspec.get("volumes"))}
    extra = [
        {"name": name, "persistentVolumeClaim": {"claimName": name}}
        for name in (str_of(dict_of(dict_of(c).get("metadata")).get("name")) for c in claims)
        if name and name not in existing
    ]
    if not extra:
        return tpl
    # Shallow copies only: the caller's object is never modified.
    return {**tpl, "spec": {**tspec, "volumes": list_of(tspec.get("volumes")) + extra}}


def validate_statefulset(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    spec = dict_of(obj.get("spec"))
    if old is None:
        errs = validate_object_meta(meta, True, name_is_dns_label)
        errs.extend(validate_statefulset_spec(spec))
        return errs
    errs = validate_object_meta_update(meta, dict_of(old.get("metadata")))
    errs.extend(validate_statefulset_spec(spec))
    old_spec = dict_of(old.get("spec"))
    rest_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
    rest_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
    if not deep_equal(rest_new, rest_old):
        errs.append(forbidden("spec", STATEFULSET_UPDATE_FORBIDDEN))
    errs.extend(_selector_immutable(obj, old))
    return errs


def validate_statefulset_status(obj: dict, old: dict) -> list[FieldError]:
    st = dict_of(obj.get("status"))
    errs = _status_counts(
        st,
        "status",
        (
            "replicas",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
            "availableReplicas",
            "observedGeneration",
            "collisionCount",
        ),
    )
    r = as_int(st.get("replicas")) or 0
    for f in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
        v = as_int(st.get(f)) or 0
        if v > r:
            errs.append(invalid(child("status", f), v, _STATUS_LE_REPLICAS))
    av, rd = as_int(st.get("availableReplicas")) or 0, as_int(st.get("readyReplicas")) or 0
    if av > rd:
        errs.append(
            invalid("status.availableReplicas", av, "cannot be greater than status.readyReplicas")
        )
    errs.extend(
        validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    )
    errs.extend(_collision_count(obj, old))
    return errs


# --- DaemonSet -------------------------------------------------------------------------------


def _daemonset_update_strategy(us: dict, path: str) -> list[FieldError]:
    t = str_of(us.get("type"))
    if t == "OnDelete":
        return []
    if t == "RollingUpdate":
        ru = us.get("rollingUpdate")
        rpath = child(path, "rollingUpdate")
        if ru is None:
            return [required(rpath, "")]
        ru = dict_of(ru)
        mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
        errs = validate_positive_int_or_percent(mu, child(rpath, "maxUnavailable"))
        errs.extend(validate_positive_int_or_percent(ms, child(rpath, "maxSurge")))
        errs.extend(not_more_than_100_percent(mu, child(rpath, "maxUnavailable")))
        errs.extend(not_more_than_100_percent(ms, child(rpath, "maxSurge")))
        has_u, has_s = _int_or_percent_value(mu) != 0, _int_or_percent_value(ms) != 0
        if has_u and has_s:
            errs.append(
                invalid(
                    child(rpath, "maxSurge"),
                    bad(ms),
                    "may not be set when maxUnavailable is non-zero",
                )
            )
        elif not has_u and not has_s:
            errs.append(required(child(rpath, "maxUnavailable"), "cannot be 0 when maxSurge is 0"))
        return errs
    return [not_supported(path, JSONValue(us), ["RollingUpdate", "OnDelete"])]


def validate_daemonset_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    sel = spec.get("selector")
    spath = child(path, "selector")
    errs = validate_label_selector(dict_of(sel) if sel is not None else None, spath)
    tpl = dict_of(spec.get("template"))
    tpath = child(path, "template")
    labels = dict_of(dict_of(tpl.get("metadata")).get("labels"))
    try:
        parsed = selector_from_dict(dict_of(sel) if sel is not None else None)
        if not parsed.matches(labels):
            errs.append(
                invalid(
                    child(child(tpath, "metadata"), "labels"),
                    JSONValue(labels),
                    "`selector` does not match template `labels`",
                )
            )
    except SelectorError:
        pass
    if (
        sel is not None
        and not dict_of(sel).get("matchLabels")
        and not dict_of(sel).get("matchExpressions")
    ):
        errs.append(invalid(spath, JSONValue(sel), "empty selector is invalid for daemonset"))
    errs.extend(validate_pod_template_spec(tpl, tpath))
    tspec = dict_of(tpl.get("spec"))
    rp = str_of(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported(child(child(tpath, "spec"), "restartPolicy"), rp, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                child(child(tpath, "spec"), "activeDeadlineSeconds"),
                "activeDeadlineSeconds in DaemonSet is not Supported",
            )
        )
    errs.extend(nonneg(spec.get("minReadySeconds"), child(path, "minReadySeconds")))
    errs.extend(nonneg(spec.get("templateGeneration"), child(path, "templateGeneration")))
    errs.extend(
        _daemonset_update_strategy(
            dict_of(spec.get("updateStrategy")), child(path, "updateStrategy")
        )
    )
    errs.extend(nonneg(spec.get("revisionHistoryLimit"), child(path, "revisionHistoryLimit")))
    return errs


def validate_daemonset(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    spec = dict_of(obj.get("spec"))
    if old is None:
        errs = validate_object_meta(meta, True, name_is_dns_subdomain)
        errs.extend(validate_daemonset_spec(spec))
        return errs
    errs = validate_object_meta_update(meta, dict_of(old.get("metadata")))
    errs.extend(validate_daemonset_spec(spec))
    errs.extend(_selector_immutable(obj, old))
    return errs


def validate_daemonset_status(obj: dict, old: dict) -> list[FieldError]:
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    st = dict_of(obj.get("status"))
    errs.extend(
        _status_counts(
            st,
            "status",
            (
                "currentNumberScheduled",
                "numberMisscheduled",
                "desiredNumberScheduled",
                "numberReady",
                "observedGeneration",
                "updatedNumberScheduled",
                "numberAvailable",
                "numberUnavailable",
                "collisionCount",
            ),
        )
    )
    errs.extend(_collision_count(obj, old))
    return errs


# --- ControllerRevision ----------------------------------------------------------------------


def validate_controller_revision(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    if old is None:
        errs = validate_object_meta(meta, True, name_is_dns_subdomain)
    else:
        errs = validate_object_meta_update(meta, dict_of(old.get("metadata")))
        errs.extend(validate_object_meta(meta, True, name_is_dns_subdomain))
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    errs.extend(nonneg(obj.get("revision"), "revision"))
    if old is not None:
        errs.extend(immutable(obj.get("data"), old.get("data"), "data"))
    return errs
