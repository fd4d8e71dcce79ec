"""PodSpec and PodTemplateSpec validation (`ValidatePodSpec`, `ValidatePodTemplateSpec`).

Every workload kind embeds a pod template, so this is the hottest validator: it walks the
spec once, in upstream's order, and reuses the volume table built at the start for every
container's mounts.
"""

from __future__ import annotations

import ipaddress
import re

import orjson

from pocketkube.api.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from pocketkube.api.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    name_is_dns_subdomain,
    validate_annotations,
    validate_labels,
)
from pocketkube.api.selectors import validate_label_selector

from .common import JSONValue, as_int, child, dict_of, index, list_of, str_of
from .containers import (
    validate_containers,
    validate_id,
    validate_init_containers,
    validate_resource_requirements,
    validate_seccomp_profile,
)
from .volumes import validate_volumes

_RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
_TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
_NODE_SELECTOR_OPS = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}
MAX_INT32 = (1 << 31) - 1


def validate_label_name(k: str, path: str) -> list[FieldError]:
    return [invalid(path, k, m) for m in is_qualified_name(k)]


# A dotted quad without leading zeros: what the strict parser accepts for IPv4, checked without
# building an address object (every pod status write carries its IPs).
_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                   r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def is_valid_ip(path: str, value: str) -> list[FieldError]:
    """IsValidIP (the strict parser: no leading zeros, no zones)."""
    if _IPV4.fullmatch(value):
        return []
    try:
        ipaddress.ip_address(value)
        return []
    except ValueError:
        return [
            invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        ]


def validate_tolerations(tolerations: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, t in enumerate(tolerations):
        t = dict_of(t)
        ipath = index(path, i)
        k = str_of(t.get("key"))
        op = str_of(t.get("operator"))
        effect = str_of(t.get("effect"))
        value = str_of(t.get("value"))
        if k:
            errs.extend(validate_label_name(k, child(ipath, "key")))
        if not k and op != "Exists":
            errs.append(
                invalid(
                    child(ipath, "operator"),
                    op,
                    "operator must be Exists when `key` is "
                    'empty, which means "match all values and all keys"',
                )
            )
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(
                invalid(
                    child(ipath, "effect"),
                    effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if op in ("Equal", ""):
            msgs = is_valid_label_value(value)
            if msgs:
                errs.append(invalid(child(ipath, "operator"), value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(
                    invalid(
                        child(ipath, "operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        else:
            errs.append(not_supported(child(ipath, "operator"), op, ["Equal", "Exists"]))
        if effect and effect not in _TAINT_EFFECTS:
            errs.append(not_supported(child(ipath, "effect"), effect, _TAINT_EFFECTS))
    return errs


def _node_selector_requirement(rq: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    op = str_of(rq.get("operator"))
    values = list_of(rq.get("values"))
    if op in ("In", "NotIn"):
        if not values:
            errs.append(
                required(
                    child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'"
                )
            )
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(
                forbidden(
                    child(path, "values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(
                required(
                    child(path, "values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                )
            )
    else:
        errs.append(invalid(child(path, "operator"), op, "not a valid selector operator"))
    errs.extend(validate_label_name(str_of(rq.get("key")), child(path, "key")))
    return errs


def _node_selector_term(term: dict, path: str, check_values: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    for j, rq in enumerate(list_of(term.get("matchExpressions"))):
        rq = dict_of(rq)
        rpath = index(child(path, "matchExpressions"), j)
        errs.extend(_node_selector_requirement(rq, rpath))
        if check_values:
            for vi, v in enumerate(list_of(rq.get("values"))):
                errs.extend(
                    invalid(index(child(rpath, "values"), vi), v, m)
                    for m in is_valid_label_value(str_of(v))
                )
    for j, rq in enumerate(list_of(term.get("matchFields"))):
        rq = dict_of(rq)
        rpath = index(child(path, "matchFields"), j)
        op = str_of(rq.get("operator"))
        values = list_of(rq.get("values"))
        if op in ("In", "NotIn"):
            if len(values) != 1:
                errs.append(
                    required(
                        child(rpath, "values"),
                        "must be only one value when "
                        "`operator` is 'In' or 'NotIn' for node field selector",
                    )
                )
        else:
            errs.append(invalid(child(rpath, "operator"), op, "not a valid selector operator"))
        if rq.get("key") != "metadata.name":
            errs.append(
                invalid(
                    child(rpath, "key"), str_of(rq.get("key")), "not a valid field selector key"
                )
            )
        else:
            for vi, v in enumerate(values):
                errs.extend(
                    invalid(index(child(rpath, "values"), vi), v, m)
                    for m in name_is_dns_subdomain(str_of(v), False)
                )
    return errs


def validate_node_selector(ns: dict, path: str) -> list[FieldError]:
    tpath = child(path, "nodeSelectorTerms")
    terms = list_of(ns.get("nodeSelectorTerms"))
    if not terms:
        return [required(tpath, "must have at least one node selector term")]
    errs: list[FieldError] = []
    for i, term in enumerate(terms):
        errs.extend(_node_selector_term(dict_of(term), index(tpath, i), True))
    return errs


def _pod_affinity_term(term: dict, path: str) -> list[FieldError]:
    errs = validate_label_selector(term.get("labelSelector"), child(path, "labelSelector"))
    errs.extend(
        validate_label_selector(term.get("namespaceSelector"), child(path, "namespaceSelector"))
    )
    for ns in list_of(term.get("namespaces")):
        errs.extend(invalid(child(path, "namespace"), ns, m) for m in is_dns1123_label(str_of(ns)))
    topo = str_of(term.get("topologyKey"))
    if not topo:
        errs.append(required(child(path, "topologyKey"), "can not be empty"))
    errs.extend(validate_label_name(topo, child(path, "topologyKey")))
    return errs


def _pod_affinity(aff: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    rpath = child(path, "requiredDuringSchedulingIgnoredDuringExecution")
    for i, term in enumerate(list_of(aff.get("requiredDuringSchedulingIgnoredDuringExecution"))):
        errs.extend(_pod_affinity_term(dict_of(term), index(rpath, i)))
    ppath = child(path, "preferredDuringSchedulingIgnoredDuringExecution")
    for i, wt in enumerate(list_of(aff.get("preferredDuringSchedulingIgnoredDuringExecution"))):
        wt = dict_of(wt)
        w = as_int(wt.get("weight")) or 0
        if w <= 0 or w > 100:
            errs.append(invalid(child(index(ppath, i), "weight"), w, "must be in the range 1-100"))
        errs.extend(
            _pod_affinity_term(
                dict_of(wt.get("podAffinityTerm")), child(index(ppath, i), "podAffinityTerm")
            )
        )
    return errs


def validate_affinity(aff, path: str) -> list[FieldError]:
    if aff is None:
        return []
    aff = dict_of(aff)
    errs: list[FieldError] = []
    na = aff.get("nodeAffinity")
    if na is not None:
        na = dict_of(na)
        npath = child(path, "nodeAffinity")
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if req is not None:
            errs.extend(
                validate_node_selector(
                    dict_of(req), child(npath, "requiredDuringSchedulingIgnoredDuringExecution")
                )
            )
        ppath = child(npath, "preferredDuringSchedulingIgnoredDuringExecution")
        for i, t in enumerate(list_of(na.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            t = dict_of(t)
            w = as_int(t.get("weight")) or 0
            if w <= 0 or w > 100:
                errs.append(
                    invalid(child(index(ppath, i), "weight"), w, "must be in the range 1-100")
                )
            errs.extend(
                _node_selector_term(
                    dict_of(t.get("preference")), child(index(ppath, i), "preference"), False
                )
            )
    if aff.get("podAffinity") is not None:
        errs.extend(_pod_affinity(dict_of(aff["podAffinity"]), child(path, "podAffinity")))
    if aff.get("podAntiAffinity") is not None:
        errs.extend(_pod_affinity(dict_of(aff["podAntiAffinity"]), child(path, "podAntiAffinity")))
    return errs


def _dns_config(cfg, policy: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if policy == "None":
        if cfg is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not list_of(dict_of(cfg).get("nameservers")):
            return [
                required(
                    child(path, "nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )
            ]
    if cfg is None:
        return errs
    cfg = dict_of(cfg)
    ns = list_of(cfg.get("nameservers"))
    if len(ns) > 3:
        errs.append(
            invalid(
                child(path, "nameservers"), JSONValue(ns), "must not have more than 3 nameservers"
            )
        )
    for i, n in enumerate(ns):
        errs.extend(is_valid_ip(index(child(path, "nameservers"), i), str_of(n)))
    searches = list_of(cfg.get("searches"))
    if len(searches) > 32:
        errs.append(
            invalid(
                child(path, "searches"),
                JSONValue(searches),
                "must not have more than 32 search paths",
            )
        )
    if len(" ".join(str_of(s) for s in searches)) > 2048:
        errs.append(
            invalid(
                child(path, "searches"),
                JSONValue(searches),
                "must not have more than 2048 characters (including spaces) in the search list",
            )
        )
    for i, s in enumerate(searches):
        s = str_of(s)
        if s != ".":
            s = s.removesuffix(".")
            # Relaxed DNS search validation (GA): underscores are allowed.
            errs.extend(
                invalid(index(child(path, "searches"), i), s, m)
                for m in is_dns1123_subdomain(s.replace("_", "a"))
            )
    for i, opt in enumerate(list_of(cfg.get("options"))):
        if not dict_of(opt).get("name"):
            errs.append(required(index(child(path, "options"), i), "must not be empty"))
    return errs


def _topology_spread(constraints: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, c in enumerate(constraints):
        c = dict_of(c)
        cpath = index(path, i)
        skew = as_int(c.get("maxSkew")) or 0
        if skew <= 0:
            errs.append(invalid(child(cpath, "maxSkew"), skew, "must be greater than zero"))
        if not c.get("topologyKey"):
            errs.append(required(child(cpath, "topologyKey"), "can not be empty"))
        wu = str_of(c.get("whenUnsatisfiable"))
        if wu not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(
                not_supported(
                    child(cpath, "whenUnsatisfiable"), wu, ["DoNotSchedule", "ScheduleAnyway"]
                )
            )
        for other in constraints[i + 1 :]:
            other = dict_of(other)
            if other.get("topologyKey") == c.get("topologyKey") and other.get(
                "whenUnsatisfiable"
            ) == c.get("whenUnsatisfiable"):
                errs.append(
                    duplicate(
                        child(cpath, "{topologyKey, whenUnsatisfiable}"),
                        f"{{{c.get('topologyKey')}, {wu}}}",
                    )
                )
                break
        md = c.get("minDomains")
        if md is not None:
            mdv = as_int(md) or 0
            if mdv <= 0:
                errs.append(invalid(child(cpath, "minDomains"), mdv, "must be greater than zero"))
            elif wu != "DoNotSchedule":
                errs.append(
                    invalid(
                        child(cpath, "minDomains"),
                        mdv,
                        f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {wu}",
                    )
                )
        errs.extend(validate_label_selector(c.get("labelSelector"), child(cpath, "labelSelector")))
    return errs


def _pod_security_context(sc, spec: dict, path: str) -> list[FieldError]:
    if sc is None:
        return []
    sc = dict_of(sc)
    errs = validate_id(sc.get("fsGroup"), child(path, "fsGroup"))
    errs.extend(validate_id(sc.get("runAsUser"), child(path, "runAsUser")))
    errs.extend(validate_id(sc.get("runAsGroup"), child(path, "runAsGroup")))
    for g, gid in enumerate(list_of(sc.get("supplementalGroups"))):
        errs.extend(validate_id(gid, index(child(path, "supplementalGroups"), g)))
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        errs.append(
            invalid(
                child(path, "shareProcessNamespace"),
                True,
                "ShareProcessNamespace and HostPID cannot both be enabled",
            )
        )
    spath = child(path, "sysctls")
    seen: set[str] = set()
    for i, s in enumerate(list_of(sc.get("sysctls"))):
        name = str_of(dict_of(s).get("name"))
        if not name:
            errs.append(required(child(index(spath, i), "name"), ""))
        elif name in seen:
            errs.append(duplicate(child(index(spath, i), "name"), name))
        seen.add(name)
    fgcp = sc.get("fsGroupChangePolicy")
    if fgcp is not None and fgcp not in ("Always", "OnRootMismatch"):
        errs.append(
            not_supported(child(path, "fsGroupChangePolicy"), fgcp, ["Always", "OnRootMismatch"])
        )
    errs.extend(validate_seccomp_profile(sc.get("seccompProfile"), child(path, "seccompProfile")))
    sgp = sc.get("supplementalGroupsPolicy")
    if sgp is not None and sgp not in ("Merge", "Strict"):
        errs.append(
            not_supported(child(path, "supplementalGroupsPolicy"), sgp, ["Merge", "Strict"])
        )
    return errs


# Specs already found valid, as their JSON with the arguments that matter. A controller creates
# thousands of pods from one template, so most pod creates repeat a validation that passed;
# only valid specs are remembered (errors must be reported in full every time). The pod name
# matters only to ephemeral volumes, whose claim names derive from it: such specs are not kept.
_VALID: dict[tuple, None] = {}
_VALID_MAX = 256


def _memo_key(spec: dict, path: str, is_pod: bool, volumes_known: bool) -> tuple | None:
    for v in list_of(spec.get("volumes")):
        if isinstance(v, dict) and "ephemeral" in v:
            return None
    try:
        return (orjson.dumps(spec), path, is_pod, volumes_known)
    except TypeError:  # not plain JSON (a bad value that validation must report)
        return None


def validate_pod_spec(
    spec: dict, path: str, *, pod_name: str = "", is_pod: bool = False, volumes_known: bool = True
) -> list[FieldError]:
    """ValidatePodSpec. `volumes_known` False skips mount-to-volume lookups (StatefulSet)."""
    key = _memo_key(spec, path, is_pod, volumes_known)
    if key is not None and key in _VALID:
        return []
    errs = _validate_pod_spec(spec, path, pod_name, is_pod, volumes_known)
    if not errs and key is not None:
        if len(_VALID) >= _VALID_MAX:
            del _VALID[next(iter(_VALID))]
        _VALID[key] = None
    return errs


def _validate_pod_spec(
    spec: dict, path: str, pod_name: str, is_pod: bool, volumes_known: bool
) -> list[FieldError]:
    errs: list[FieldError] = []
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        errs.append(required(child(path, "terminationGracePeriodSeconds"), ""))
    host_users = dict_of(spec.get("securityContext")).get("hostUsers") is not False
    restart = str_of(spec.get("restartPolicy"))
    vols, verrs = validate_volumes(
        list_of(spec.get("volumes")), child(path, "volumes"), pod_name, is_pod
    )
    errs.extend(verrs)
    if not volumes_known:
        vols = None
    containers = list_of(spec.get("containers"))
    init = list_of(spec.get("initContainers"))
    errs.extend(
        validate_containers(containers, vols, grace, child(path, "containers"), restart, host_users)
    )
    errs.extend(
        validate_init_containers(
            init, containers, vols, grace, child(path, "initContainers"), restart, host_users
        )
    )
    if spec.get("resources") is not None:
        errs.extend(
            validate_resource_requirements(dict_of(spec["resources"]), child(path, "resources"))
        )
    if spec.get("hostNetwork") is True:
        for i, c in enumerate(containers):
            for j, p in enumerate(list_of(dict_of(c).get("ports"))):
                p = dict_of(p)
                hp, cp = as_int(p.get("hostPort")) or 0, as_int(p.get("containerPort")) or 0
                if (is_pod or hp != 0) and hp != cp:
                    errs.append(
                        invalid(
                            child(
                                index(child(index(child(path, "containers"), i), "ports"), j),
                                "hostPort",
                            ),
                            hp,
                            "must match `containerPort` when `hostNetwork` is true",
                        )
                    )
    if restart not in _RESTART_POLICIES:
        errs.append(
            required(child(path, "restartPolicy"), "")
            if not restart
            else not_supported(child(path, "restartPolicy"), restart, _RESTART_POLICIES)
        )
    dns = str_of(spec.get("dnsPolicy"))
    if dns not in _DNS_POLICIES:
        errs.append(
            required(child(path, "dnsPolicy"), "")
            if not dns
            else not_supported(child(path, "dnsPolicy"), dns, _DNS_POLICIES)
        )
    errs.extend(validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector")))
    errs.extend(
        _pod_security_context(spec.get("securityContext"), spec, child(path, "securityContext"))
    )
    for i, s in enumerate(list_of(spec.get("imagePullSecrets"))):
        if isinstance(s, dict) and set(s) - {"name"}:
            errs.append(
                invalid(
                    index(child(path, "imagePullSecrets"), i), JSONValue(s), "only name may be set"
                )
            )
    errs.extend(validate_affinity(spec.get("affinity"), child(path, "affinity")))
    errs.extend(_dns_config(spec.get("dnsConfig"), dns, child(path, "dnsConfig")))
    for i, g in enumerate(list_of(spec.get("readinessGates"))):
        ct = str_of(dict_of(g).get("conditionType"))
        gpath = child(index(child(path, "readinessGates"), i), "conditionType")
        errs.extend(invalid(gpath, ct, m) for m in is_qualified_name(ct))
    seen_gates: set[str] = set()
    for i, g in enumerate(list_of(spec.get("schedulingGates"))):
        name = str_of(dict_of(g).get("name"))
        gpath = index(child(path, "schedulingGates"), i)
        errs.extend(invalid(gpath, name, m) for m in is_qualified_name(name))
        if name in seen_gates:
            errs.append(duplicate(gpath, name))
        seen_gates.add(name)
    errs.extend(
        _topology_spread(
            list_of(spec.get("topologySpreadConstraints")), child(path, "topologySpreadConstraints")
        )
    )
    if not host_users:
        for f, label in (
            ("hostNetwork", "hostNetwork"),
            ("hostPID", "HostPID"),
            ("hostIPC", "HostIPC"),
        ):
            if spec.get(f) is True:
                errs.append(forbidden(child(path, label), "when `pod.Spec.HostUsers` is false"))
    for f in ("serviceAccountName", "nodeName", "priorityClassName"):
        v = str_of(spec.get(f))
        if v:
            errs.extend(invalid(child(path, f), v, m) for m in name_is_dns_subdomain(v, False))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None:
        v = as_int(ads)
        if v is not None and (v < 1 or v > MAX_INT32):
            errs.append(
                invalid(
                    child(path, "activeDeadlineSeconds"),
                    v,
                    f"must be between 1 and {MAX_INT32}, inclusive",
                )
            )
    for f in ("hostname", "subdomain"):
        v = str_of(spec.get(f))
        if v:
            errs.extend(invalid(child(path, f), v, m) for m in is_dns1123_label(v))
    errs.extend(validate_tolerations(list_of(spec.get("tolerations")), child(path, "tolerations")))
    for i, ha in enumerate(list_of(spec.get("hostAliases"))):
        ha = dict_of(ha)
        hpath = index(child(path, "hostAliases"), i)
        errs.extend(is_valid_ip(child(hpath, "ip"), str_of(ha.get("ip"))))
        for j, h in enumerate(list_of(ha.get("hostnames"))):
            errs.extend(
                invalid(index(child(hpath, "hostnames"), j), h, m)
                for m in is_dns1123_subdomain(str_of(h))
            )
    rc = spec.get("runtimeClassName")
    if rc is not None:
        errs.extend(
            invalid(child(path, "runtimeClassName"), rc, m)
            for m in name_is_dns_subdomain(str_of(rc), False)
        )
    pp = spec.get("preemptionPolicy")
    if pp is not None and pp not in ("PreemptLowerPriority", "Never"):
        errs.append(
            required(child(path, "preemptionPolicy"), "")
            if not pp
            else not_supported(
                child(path, "preemptionPolicy"), pp, ["PreemptLowerPriority", "Never"]
            )
        )
    os_name = dict_of(spec.get("os")).get("name")
    if spec.get("os") is not None:
        if not os_name:
            errs.append(required(child(child(path, "os"), "name"), ""))
        elif os_name not in ("linux", "windows"):
            errs.append(
                not_supported(child(child(path, "os"), "name"), os_name, ["linux", "windows"])
            )
    return errs


def validate_pod_template_spec(tpl, path: str, *, volumes_known: bool = True) -> list[FieldError]:
    """ValidatePodTemplateSpec."""
    tpl = dict_of(tpl)
    meta = dict_of(tpl.get("metadata"))
    spec = dict_of(tpl.get("spec"))
    # Upstream reports template label errors at `<template>.labels`, without "metadata".
    errs = validate_labels(meta.get("labels"), child(path, "labels"))
    errs.extend(validate_annotations(meta.get("annotations"), child(path, "annotations")))
    errs.extend(validate_pod_spec(spec, child(path, "spec"), volumes_known=volumes_known))
    if list_of(spec.get("ephemeralContainers")):
        errs.append(
            forbidden(
                child(child(path, "spec"), "ephemeralContainers"),
                "ephemeral containers not allowed in pod template",
            )
        )
    return errs
