"""batch/v1 validation: Job and CronJob (`pkg/apis/batch/validation/validation.go`).

Includes the Job strategy's options as they stand with today's feature gates: prefixed
`batch.kubernetes.io/*` labels are required on the template of generated selectors, Indexed
Jobs may change completions together with parallelism, and a suspended Job that never ran may
change its template's scheduling directives.
"""

from __future__ import annotations

import re

from pocketkube.api.errors import OMIT as _OMIT
from pocketkube.api.errors import FieldError, duplicate, invalid, not_supported, required, too_many
from pocketkube.api.names import is_dns1123_label, name_is_dns_subdomain
from pocketkube.api.selectors import SelectorError, selector_from_dict, validate_label_selector

from .common import (
    JSONValue,
    as_int,
    child,
    deep_equal,
    dict_of,
    immutable,
    index,
    list_of,
    nonneg,
    str_of,
)
from .meta import has_label, validate_object_meta, validate_object_meta_update
from .podspec import validate_pod_template_spec

try:  # the schedule syntax check needs croniter; without it only that one check is skipped
    import croniter as _croniter
except ImportError:  # pragma: no cover - depends on the environment
    _croniter = None

LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"

_MAX_PARALLELISM_INDEXED = 100000
_MAX_FAILED_INDEXES = 100_000
_COMPLETIONS_SOFT_LIMIT = 100_000
_PARALLELISM_HIGH_COMPLETIONS = 10_000
_MAX_FAILED_HIGH_COMPLETIONS = 10_000
_MAX_RULES = 20
_MAX_EXIT_CODES = 255
_MAX_CONDITION_PATTERNS = 20
_MAX_MANAGED_BY = 63
_ACTIONS = ["Count", "FailIndex", "FailJob", "Ignore"]
_REPLACEMENT = ["Failed", "TerminatingOrFailed"]
_CONCURRENCY = ["Allow", "Forbid", "Replace"]
_DOMAIN_PREFIXED_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_TZ_PART_RE = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")


# --- Job -------------------------------------------------------------------------------------


def _generated_selector(job: dict) -> list[FieldError]:
    spec = dict_of(job.get("spec"))
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    meta = dict_of(job.get("metadata"))
    uid = str_of(meta.get("uid"))
    name = str_of(meta.get("name"))
    errs: list[FieldError] = []
    if not uid:
        errs.append(required("metadata.uid", ""))
    tmeta = dict_of(dict_of(spec.get("template")).get("metadata"))
    tpath = "spec.template.metadata"
    errs.extend(has_label(tmeta, tpath, LEGACY_CONTROLLER_UID, uid))
    errs.extend(has_label(tmeta, tpath, LEGACY_JOB_NAME, name))
    errs.extend(has_label(tmeta, tpath, CONTROLLER_UID, uid))
    errs.extend(has_label(tmeta, tpath, JOB_NAME, name))
    expected = {
        CONTROLLER_UID: uid,
        JOB_NAME: name,
        LEGACY_CONTROLLER_UID: uid,
        LEGACY_JOB_NAME: name,
    }
    try:
        if not selector_from_dict(dict_of(spec["selector"])).matches(expected):
            errs.append(
                invalid(
                    "spec.selector", JSONValue(spec["selector"]), "`selector` not auto-generated"
                )
            )
    except SelectorError:
        pass
    return errs


def _pod_failure_policy(spec: dict, path: str) -> list[FieldError]:
    pfp = dict_of(spec.get("podFailurePolicy"))
    rules = list_of(pfp.get("rules"))
    rpath = child(path, "rules")
    errs: list[FieldError] = []
    if len(rules) > _MAX_RULES:
        errs.append(too_many(rpath, len(rules), _MAX_RULES))
    tspec = dict_of(dict_of(spec.get("template")).get("spec"))
    names = {
        str_of(dict_of(c).get("name"))
        for c in list_of(tspec.get("containers")) + list_of(tspec.get("initContainers"))
    }
    for i, rule in enumerate(rules):
        rule = dict_of(rule)
        p = index(rpath, i)
        action = str_of(rule.get("action"))
        if not action:
            errs.append(
                required(
                    child(p, "action"), 'valid values: ["Count" "FailIndex" "FailJob" "Ignore"]'
                )
            )
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                errs.append(
                    invalid(
                        child(p, "action"), action, "requires the backoffLimitPerIndex to be set"
                    )
                )
        elif action not in _ACTIONS:
            errs.append(not_supported(child(p, "action"), action, _ACTIONS))
        oec = rule.get("onExitCodes")
        conds = list_of(rule.get("onPodConditions"))
        if oec is not None:
            oec = dict_of(oec)
            opath = child(p, "onExitCodes")
            op = str_of(oec.get("operator"))
            if not op:
                errs.append(required(child(opath, "operator"), 'valid values: ["In" "NotIn"]'))
            elif op not in ("In", "NotIn"):
                errs.append(not_supported(child(opath, "operator"), op, ["In", "NotIn"]))
            cn = oec.get("containerName")
            if cn is not None and cn not in names:
                errs.append(
                    invalid(
                        child(opath, "containerName"),
                        cn,
                        "must be one of the container or initContainer names in the pod template",
                    )
                )
            values = list_of(oec.get("values"))
            vpath = child(opath, "values")
            if not values:
                errs.append(invalid(vpath, JSONValue(values), "at least one value is required"))
            elif len(values) > _MAX_EXIT_CODES:
                errs.append(too_many(vpath, len(values), _MAX_EXIT_CODES))
            seen: set = set()
            ordered = True
            for j, v in enumerate(values):
                if op == "In" and v == 0:
                    errs.append(invalid(index(vpath, j), v, "must not be 0 for the In operator"))
                if v in seen:
                    errs.append(duplicate(index(vpath, j), v))
                seen.add(v)
                if (
                    j > 0
                    and isinstance(v, int)
                    and isinstance(values[j - 1], int)
                    and values[j - 1] > v
                ):
                    ordered = False
            if not ordered:
                errs.append(invalid(vpath, JSONValue(values), "must be ordered"))
        if conds:
            cpath = child(p, "onPodConditions")
            if len(conds) > _MAX_CONDITION_PATTERNS:
                errs.append(too_many(cpath, len(conds), _MAX_CONDITION_PATTERNS))
            for j, c in enumerate(conds):
                c = dict_of(c)
                status = str_of(c.get("status"))
                spath = child(index(cpath, j), "status")
                if not status:
                    errs.append(required(spath, 'valid values: ["False" "True" "Unknown"]'))
                elif status not in ("False", "True", "Unknown"):
                    errs.append(not_supported(spath, status, ["False", "True", "Unknown"]))
        if oec is not None and conds:
            errs.append(
                _omit_invalid(p, "specifying both OnExitCodes and OnPodConditions is not supported")
            )
        if oec is None and not conds:
            errs.append(
                _omit_invalid(p, "specifying one of OnExitCodes and OnPodConditions is required")
            )
    return errs


def _validate_job_spec_common(spec: dict, path: str) -> list[FieldError]:
    """validateJobSpec: everything but the selector."""
    errs: list[FieldError] = []
    for f in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ):
        errs.extend(nonneg(spec.get(f), child(path, f)))
    mfi = spec.get("maxFailedIndexes")
    if mfi is not None:
        errs.extend(nonneg(mfi, child(path, "maxFailedIndexes")))
        if spec.get("backoffLimitPerIndex") is None:
            errs.append(
                required(child(path, "backoffLimitPerIndex"), "when maxFailedIndexes is specified")
            )
    mb = spec.get("managedBy")
    if mb is not None:
        mb = str_of(mb)
        errs.extend(_domain_prefixed_path(child(path, "managedBy"), mb))
        if len(mb) > _MAX_MANAGED_BY:
            errs.append(
                FieldError(
                    "FieldValueTooLong",
                    child(path, "managedBy"),
                    _OMIT,
                    f"may not be more than {_MAX_MANAGED_BY} bytes",
                )
            )
    mode = spec.get("completionMode")
    completions = as_int(spec.get("completions"))
    parallelism = as_int(spec.get("parallelism"))
    mfi_i = as_int(mfi)
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            errs.append(
                not_supported(child(path, "completionMode"), mode, ["NonIndexed", "Indexed"])
            )
        if mode == "Indexed":
            if spec.get("completions") is None:
                errs.append(required(child(path, "completions"), "when completion mode is Indexed"))
            if parallelism is not None and parallelism > _MAX_PARALLELISM_INDEXED:
                errs.append(
                    invalid(
                        child(path, "parallelism"),
                        parallelism,
                        "must be less than or equal to 100000 when completion mode is Indexed",
                    )
                )
            if completions is not None and mfi_i is not None and mfi_i > completions:
                errs.append(
                    invalid(
                        child(path, "maxFailedIndexes"),
                        mfi_i,
                        "must be less than or equal to completions",
                    )
                )
            if mfi_i is not None and mfi_i > _MAX_FAILED_INDEXES:
                errs.append(
                    invalid(
                        child(path, "maxFailedIndexes"),
                        mfi_i,
                        "must be less than or equal to 100000",
                    )
                )
            if (
                completions is not None
                and completions > _COMPLETIONS_SOFT_LIMIT
                and spec.get("backoffLimitPerIndex") is not None
            ):
                if mfi is None:
                    errs.append(
                        required(
                            child(path, "maxFailedIndexes"),
                            "must be specified when completions is above 100000",
                        )
                    )
                if parallelism is not None and parallelism > _PARALLELISM_HIGH_COMPLETIONS:
                    errs.append(
                        invalid(
                            child(path, "parallelism"),
                            parallelism,
                            "must be less than or equal to 10000 when completions are "
                            "above 100000 and used with backoff limit per index",
                        )
                    )
                if mfi_i is not None and mfi_i > _MAX_FAILED_HIGH_COMPLETIONS:
                    errs.append(
                        invalid(
                            child(path, "maxFailedIndexes"),
                            mfi_i,
                            "must be less than or equal to 10000 when completions are "
                            "above 100000 and used with backoff limit per index",
                        )
                    )
    if mode is None or mode == "NonIndexed":
        if spec.get("backoffLimitPerIndex") is not None:
            errs.append(
                invalid(
                    child(path, "backoffLimitPerIndex"),
                    spec["backoffLimitPerIndex"],
                    "requires indexed completion mode",
                )
            )
        if mfi is not None:
            errs.append(
                invalid(child(path, "maxFailedIndexes"), mfi, "requires indexed completion mode")
            )
    if spec.get("podFailurePolicy") is not None:
        errs.extend(_pod_failure_policy(spec, child(path, "podFailurePolicy")))
    if spec.get("successPolicy") is not None and mode != "Indexed":
        errs.append(
            invalid(
                child(path, "successPolicy"),
                JSONValue(spec["successPolicy"]),
                "requires indexed completion mode",
            )
        )
    prp = spec.get("podReplacementPolicy")
    if prp is not None:
        ppath = child(path, "podReplacementPolicy")
        if spec.get("podFailurePolicy") is not None:
            if prp != "Failed":
                errs.append(not_supported(ppath, prp, ["Failed"]))
        elif prp not in _REPLACEMENT:
            errs.append(not_supported(ppath, prp, _REPLACEMENT))
    tpath = child(path, "template")
    errs.extend(validate_pod_template_spec(spec.get("template"), tpath))
    rp = str_of(dict_of(dict_of(spec.get("template")).get("spec")).get("restartPolicy"))
    rpath = child(child(tpath, "spec"), "restartPolicy")
    if rp in ("Always", ""):
        errs.append(required(rpath, 'valid values: "OnFailure", "Never"'))
    elif rp not in ("OnFailure", "Never"):
        errs.append(not_supported(rpath, rp, ["OnFailure", "Never"]))
    elif spec.get("podFailurePolicy") is not None and rp != "Never":
        errs.append(
            invalid(rpath, rp, 'only "Never" is supported when podFailurePolicy is specified')
        )
    return errs


def _domain_prefixed_path(path: str, value: str) -> list[FieldError]:
    """IsDomainPrefixedPath: `domain/path` with a DNS-subdomain domain."""
    if not value:
        return [required(path, "")]
    parts = value.split("/", 1)
    if len(parts) != 2 or not parts[1]:
        return [invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    host, rest = parts
    errs: list[FieldError] = []
    if not _DOMAIN_PREFIXED_RE.fullmatch(host):
        errs.append(invalid(path, host, "must be a valid DNS subdomain (e.g. 'example.com')"))
    if not re.fullmatch(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+", rest):
        errs.append(invalid(path, rest, "Invalid path"))
    return errs


def validate_job_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    errs = _validate_job_spec_common(spec, path)
    sel = spec.get("selector")
    if sel is None:
        errs.append(required(child(path, "selector"), ""))
    else:
        errs.extend(validate_label_selector(dict_of(sel), child(path, "selector")))
    labels = dict_of(dict_of(dict_of(spec.get("template")).get("metadata")).get("labels"))
    try:
        parsed = selector_from_dict(dict_of(sel) if sel is not None else None)
        if not parsed.matches(labels):
            errs.append(
                invalid(
                    child(child(child(path, "template"), "metadata"), "labels"),
                    JSONValue(labels),
                    "`selector` does not match template `labels`",
                )
            )
    except SelectorError:
        pass
    return errs


def validate_job(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    spec = dict_of(obj.get("spec"))
    if old is not None:
        return _validate_job_update(obj, old)
    errs = validate_object_meta(meta, True, name_is_dns_subdomain)
    errs.extend(_generated_selector(obj))
    errs.extend(validate_job_spec(spec))
    completions = as_int(spec.get("completions"))
    if spec.get("completionMode") == "Indexed" and completions is not None and completions > 0:
        hostname = f"{meta.get('name') or ''}-{completions - 1}"
        if is_dns1123_label(hostname):
            errs.append(
                invalid(
                    "metadata.name",
                    meta.get("name") or "",
                    f"will not able to create pod with invalid DNS label: {hostname}",
                )
            )
    return errs


_SCHEDULING_TEMPLATE_FIELDS = ("nodeSelector", "tolerations", "schedulingGates")


def _suspended_never_started(job: dict) -> bool:
    spec = dict_of(job.get("spec"))
    status = dict_of(job.get("status"))
    return spec.get("suspend") is True and not status.get("startTime")


def _validate_job_update(obj: dict, old: dict) -> list[FieldError]:
    meta, old_meta = dict_of(obj.get("metadata")), dict_of(old.get("metadata"))
    spec, old_spec = dict_of(obj.get("spec")), dict_of(old.get("spec"))
    errs = validate_object_meta_update(meta, old_meta)
    errs.extend(validate_job_spec(spec))
    # Completions: Indexed Jobs may scale completions in tandem with parallelism.
    if spec.get("completionMode") == "Indexed":
        c, oc = spec.get("completions"), old_spec.get("completions")
        if c != oc and c is not None and c != spec.get("parallelism"):
            errs.append(
                invalid(
                    "spec.completions", c, "can only be modified in tandem with spec.parallelism"
                )
            )
    else:
        errs.extend(
            immutable(spec.get("completions"), old_spec.get("completions"), "spec.completions")
        )
    errs.extend(immutable(spec.get("selector"), old_spec.get("selector"), "spec.selector"))
    tpl, old_tpl = dict_of(spec.get("template")), dict_of(old_spec.get("template"))
    if _suspended_never_started(old):
        # Scheduling directives of a Job that never started may be changed.
        tspec, otspec = dict_of(tpl.get("spec")), dict_of(old_tpl.get("spec"))
        cmp_new = {
            **tpl,
            "metadata": {**dict_of(tpl.get("metadata"))},
            "spec": {k: v for k, v in tspec.items() if k not in _SCHEDULING_TEMPLATE_FIELDS},
        }
        cmp_old = {
            **old_tpl,
            "metadata": {**dict_of(old_tpl.get("metadata"))},
            "spec": {k: v for k, v in otspec.items() if k not in _SCHEDULING_TEMPLATE_FIELDS},
        }
        for m in (cmp_new["metadata"], cmp_old["metadata"]):
            m.pop("labels", None)
            m.pop("annotations", None)
        for s in (cmp_new["spec"], cmp_old["spec"]):
            aff = dict_of(s.get("affinity"))
            if "nodeAffinity" in aff:
                rest = {k: v for k, v in aff.items() if k != "nodeAffinity"}
                if rest:
                    s["affinity"] = rest
                else:
                    s.pop("affinity", None)
        if not deep_equal(cmp_new, cmp_old):
            errs.append(invalid("spec.template", JSONValue(tpl), "field is immutable"))
    else:
        errs.extend(immutable(tpl, old_tpl, "spec.template"))
    for f in (
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ):
        errs.extend(immutable(spec.get(f), old_spec.get(f), child("spec", f)))
    return errs


def validate_job_status(obj: dict, old: dict) -> list[FieldError]:
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    st, ost = dict_of(obj.get("status")), dict_of(old.get("status"))
    for f in ("active", "succeeded", "failed", "ready", "terminating"):
        errs.extend(nonneg(st.get(f), child("status", f)))
    conds = {
        dict_of(c).get("type"): dict_of(c).get("status") for c in list_of(st.get("conditions"))
    }
    old_conds = {
        dict_of(c).get("type"): dict_of(c).get("status") for c in list_of(ost.get("conditions"))
    }
    complete = conds.get("Complete") == "True"
    failed = conds.get("Failed") == "True"
    if complete and failed:
        errs.append(
            _omit_invalid(
                "status.conditions", "cannot set Complete=True and Failed=true conditions"
            )
        )
    finished = complete or failed
    active = as_int(st.get("active")) or 0
    if finished and active > 0:
        errs.append(invalid("status.active", active, "active>0 is invalid for finished job"))
    if finished and not st.get("startTime"):
        errs.append(required("status.startTime", "startTime is required for finished job"))
    if complete and not st.get("completionTime"):
        errs.append(
            required("status.completionTime", "completionTime is required for Complete jobs")
        )
    if st.get("completionTime") and not complete:
        errs.append(
            invalid(
                "status.completionTime",
                st["completionTime"],
                "cannot set completionTime when there is no Complete=True condition",
            )
        )
    ready = as_int(st.get("ready"))
    if ready is not None and ready > active:
        errs.append(invalid("status.ready", ready, "cannot set more ready pods than active"))
    for t in ("Failed", "Complete", "FailureTarget"):
        if old_conds.get(t) == "True" and conds.get(t) != "True":
            errs.append(
                _omit_invalid(
                    "status.conditions", f"cannot disable the terminal {t}=True condition"
                )
            )
    for f in ("failed", "succeeded"):
        n, o = as_int(st.get(f)) or 0, as_int(ost.get(f)) or 0
        if n < o:
            errs.append(invalid(child("status", f), n, f"cannot decrease the {f} counter"))
    return errs


def _omit_invalid(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, _OMIT, detail)


# --- CronJob ---------------------------------------------------------------------------------


_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _schedule(schedule: str, allow_tz: bool, time_zone, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    problem = _cron_problem(schedule)
    if problem:
        errs.append(invalid(path, schedule, problem))
    has_tz = "TZ" in schedule
    if allow_tz and has_tz and time_zone is not None:
        errs.append(
            invalid(path, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule")
        )
    elif not allow_tz and has_tz:
        errs.append(
            invalid(
                path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            )
        )
    return errs


def _cron_problem(schedule: str) -> str:
    """cron.ParseStandard's error text, or "" for a schedule it accepts.

    The shape (descriptor or five fields) is checked here with robfig/cron's wording; the
    syntax of each field is left to croniter when it is installed.
    """
    expr = schedule.strip()
    if expr.startswith(("TZ=", "CRON_TZ=")):
        expr = expr.split(" ", 1)[1].strip() if " " in expr else ""
    if not expr:
        return "empty spec string"
    fields = expr.split()
    if expr.startswith("@"):
        if expr in _DESCRIPTORS or expr.startswith("@every "):
            return ""
        return f"unrecognized descriptor: {expr}"
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    if _croniter is not None:
        try:
            ok = bool(_croniter.croniter.is_valid(expr))
        except Exception:  # noqa: BLE001 - any parser failure is a bad schedule
            ok = False
        if not ok:
            return f"failed to parse schedule: {expr}"
    return ""


def _time_zone(tz, path: str) -> list[FieldError]:
    if tz is None:
        return []
    tz = str_of(tz)
    if not tz:
        return [invalid(path, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART_RE.fullmatch(part):
            return [invalid(path, tz, f"unknown time zone {tz}")]
    if tz.lower() == "local":
        return [
            invalid(
                path,
                tz,
                "timeZone must be an explicit time zone as defined in "
                "https://www.iana.org/time-zones",
            )
        ]
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except Exception:  # noqa: BLE001 - unknown or unloadable zone
        return [invalid(path, tz, f"unknown time zone {tz}")]
    return []


def validate_job_template_spec(tpl: dict, path: str) -> list[FieldError]:
    spec = dict_of(tpl.get("spec"))
    spath = child(path, "spec")
    errs = _validate_job_spec_common(spec, spath)
    if spec.get("selector") is not None:
        errs.append(
            invalid(
                child(spath, "selector"),
                JSONValue(spec["selector"]),
                "`selector` will be auto-generated",
            )
        )
    if spec.get("manualSelector") is True:
        errs.append(not_supported(child(spath, "manualSelector"), True, ["nil", "false"]))
    return errs


def validate_cronjob_spec(
    spec: dict, old_spec: dict | None, path: str = "spec"
) -> list[FieldError]:
    errs: list[FieldError] = []
    schedule = str_of(spec.get("schedule"))
    if not schedule:
        errs.append(required(child(path, "schedule"), ""))
    else:
        allow_tz = old_spec is not None and "TZ" in str_of(old_spec.get("schedule"))
        errs.extend(_schedule(schedule, allow_tz, spec.get("timeZone"), child(path, "schedule")))
    errs.extend(nonneg(spec.get("startingDeadlineSeconds"), child(path, "startingDeadlineSeconds")))
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        errs.extend(_time_zone(spec.get("timeZone"), child(path, "timeZone")))
    cp = str_of(spec.get("concurrencyPolicy"))
    if not cp:
        errs.append(required(child(path, "concurrencyPolicy"), ""))
    elif cp not in _CONCURRENCY:
        errs.append(not_supported(child(path, "concurrencyPolicy"), cp, _CONCURRENCY))
    errs.extend(
        validate_job_template_spec(dict_of(spec.get("jobTemplate")), child(path, "jobTemplate"))
    )
    errs.extend(
        nonneg(spec.get("successfulJobsHistoryLimit"), child(path, "successfulJobsHistoryLimit"))
    )
    errs.extend(nonneg(spec.get("failedJobsHistoryLimit"), child(path, "failedJobsHistoryLimit")))
    return errs


def validate_cronjob(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    spec = dict_of(obj.get("spec"))
    if old is None:
        errs = validate_object_meta(meta, True, name_is_dns_subdomain)
        errs.extend(validate_cronjob_spec(spec, None))
        name = str_of(meta.get("name"))
        if len(name) > 52:
            errs.append(invalid("metadata.name", name, "must be no more than 52 characters"))
        return errs
    errs = validate_object_meta_update(meta, dict_of(old.get("metadata")))
    errs.extend(validate_cronjob_spec(spec, dict_of(old.get("spec"))))
    return errs


def validate_cronjob_status(obj: dict, old: dict) -> list[FieldError]:
    return validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
