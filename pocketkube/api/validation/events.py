"""Event validation for core/v1 and events.k8s.io/v1 (`pkg/apis/core/validation/events.go`).

Both APIs store the same internal Event. core/v1 keeps the lenient legacy rules (its
metadata is not even name-checked), events.k8s.io/v1 adds the strict ones. Errors name the
internal fields (`involvedObject`, `message`) whichever API the client used, as upstream does.
"""

from __future__ import annotations

from pocketkube.api.errors import FieldError, invalid, required
from pocketkube.api.names import is_dns1123_subdomain, is_qualified_name, name_is_dns_subdomain

from .common import as_int, deep_equal, dict_of, immutable, str_of
from .meta import validate_object_meta, validate_object_meta_update

# events.k8s.io/v1 field -> internal (core/v1) field.
_FROM_EVENTS_V1 = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}


def _internal(obj: dict, events_api: bool) -> dict:
    if not events_api:
        return obj
    return {_FROM_EVENTS_V1.get(k, k): v for k, v in obj.items()}


def _legacy(ev: dict, events_api: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    meta = dict_of(ev.get("metadata"))
    ns = str_of(meta.get("namespace"))
    involved_ns = str_of(dict_of(ev.get("involvedObject")).get("namespace"))
    ctrl_field = "reportingController" if events_api else "reportingComponent"
    if not ev.get("eventTime"):
        if not involved_ns:
            if ns not in ("", "default"):
                errs.append(
                    invalid(
                        "involvedObject.namespace", involved_ns, "does not match event.namespace"
                    )
                )
        elif ns != involved_ns:
            errs.append(
                invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
            )
    else:
        if not involved_ns and ns not in ("default", "kube-system"):
            errs.append(
                invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
            )
        ctrl = str_of(ev.get("reportingComponent"))
        if not ctrl:
            errs.append(required(ctrl_field, ""))
        errs.extend(invalid(ctrl_field, ctrl, m) for m in is_qualified_name(ctrl))
        for f, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
            v = str_of(ev.get(f))
            if not v:
                errs.append(required(f, ""))
            if len(v) > limit:
                errs.append(invalid(f, "", f"can have at most {limit} characters"))
        if len(str_of(ev.get("message"))) > 1024:
            errs.append(invalid("message", "", "can have at most 1024 characters"))
    errs.extend(invalid("namespace", ns, m) for m in is_dns1123_subdomain(ns))
    return errs


def _series(ev: dict) -> list[FieldError]:
    s = ev.get("series")
    if s is None:
        return []
    s = dict_of(s)
    errs = []
    if (as_int(s.get("count")) or 0) < 2:
        errs.append(invalid("series.count", "", "should be at least 2"))
    if not s.get("lastObservedTime"):
        errs.append(required("series.lastObservedTime", ""))
    return errs


def validate_event(obj: dict, old: dict | None, events_api: bool) -> list[FieldError]:
    ev = _internal(obj, events_api)
    errs = _legacy(ev, events_api)
    if not events_api:
        return errs
    meta = dict_of(ev.get("metadata"))
    if old is None:
        errs.extend(validate_object_meta(meta, True, name_is_dns_subdomain))
        errs.extend(_series(ev))
        if not ev.get("eventTime"):
            errs.append(required("eventTime", ""))
        t = ev.get("type")
        if t not in ("Normal", "Warning"):
            errs.append(invalid("type", "", f"has invalid value: {str_of(t)}"))
        for f in ("firstTimestamp", "lastTimestamp", "count"):
            if ev.get(f):
                errs.append(invalid(f, "", "needs to be unset"))
        src = dict_of(ev.get("source"))
        if src.get("component") or src.get("host"):
            errs.append(invalid("source", "", "needs to be unset"))
        return errs
    prev = _internal(old, events_api)
    errs.extend(validate_object_meta_update(meta, dict_of(prev.get("metadata"))))
    if not deep_equal(ev.get("series"), prev.get("series")):
        errs.extend(_series(ev))
    for f in (
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "reason",
        "type",
        "eventTime",
        "action",
        "related",
    ):
        errs.extend(immutable(ev.get(f), prev.get(f), f))
    errs.extend(
        immutable(
            ev.get("reportingComponent"), prev.get("reportingComponent"), "reportingController"
        )
    )
    errs.extend(
        immutable(ev.get("reportingInstance"), prev.get("reportingInstance"), "reportingInstance")
    )
    return errs
