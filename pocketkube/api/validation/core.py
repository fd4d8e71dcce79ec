"""core/v1 validation: Pod, Service, Namespace, Node, ConfigMap, Secret, ServiceAccount.

Each function takes the new object and the stored one (None on create) and returns the
field errors upstream's `Validate<Kind>` / `Validate<Kind>Update` (plus the registry
strategy's extra rules) would return, in the same order.
"""

from __future__ import annotations

import ipaddress
import re

from pocketkube.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
    too_long,
)
from pocketkube.api.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    regex_error,
    validate_label_name,
    validate_labels,
)

from .common import (
    IMMUTABLE,
    JSONValue,
    Raw,
    as_int,
    child,
    deep_equal,
    dict_of,
    immutable,
    index,
    key,
    list_of,
    str_of,
)
from .containers import is_valid_port_num, quantity_errors, validate_port_num_or_name
from .diff import spec_diff
from .meta import validate_finalizer_name, validate_object_meta, validate_object_meta_update
from .podspec import is_valid_ip, validate_pod_spec, validate_tolerations

MAX_SECRET_SIZE = 1024 * 1024
_CONFIG_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+")
_CONFIG_KEY_ERROR = regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    "[-._a-zA-Z0-9]+",
    "key.name",
    "KEY_NAME",
    "key-name",
)
_INT32_RE = re.compile(r"[+-]?[0-9]+")
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


def _has_chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    """IsConfigMapKey (also used for Secret keys and key selectors)."""
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _CONFIG_KEY_RE.fullmatch(value):
        errs.append(_CONFIG_KEY_ERROR)
    errs.extend(_has_chdir_prefix(value))
    return errs


def is_valid_cidr(path: str, value: str) -> list[FieldError]:
    try:
        ipaddress.ip_network(value, strict=False)
        if "/" in value:
            return []
    except ValueError:
        pass
    return [invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]


# --- Pod -------------------------------------------------------------------------------------


def pod_specific_annotations(annotations: dict, spec: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if MIRROR_ANNOTATION in annotations and not spec.get("nodeName"):
        errs.append(
            invalid(
                key(path, MIRROR_ANNOTATION),
                annotations[MIRROR_ANNOTATION],
                "must set spec.nodeName if mirror pod annotation is set",
            )
        )
    cost = annotations.get(DELETION_COST_ANNOTATION)
    if cost is not None:
        ok = (
            isinstance(cost, str)
            and _INT32_RE.fullmatch(cost)
            and -(1 << 31) <= int(cost) < (1 << 31)
        )
        if not ok:
            errs.append(
                invalid(key(path, DELETION_COST_ANNOTATION), cost, "must be a 32bit integer")
            )
    return errs


def _pod_metadata_and_spec(pod: dict) -> list[FieldError]:
    meta = dict_of(pod.get("metadata"))
    spec = dict_of(pod.get("spec"))
    errs = validate_object_meta(meta, True, name_is_dns_subdomain)
    errs.extend(
        pod_specific_annotations(dict_of(meta.get("annotations")), spec, "metadata.annotations")
    )
    errs.extend(validate_pod_spec(spec, "spec", pod_name=str_of(meta.get("name")), is_pod=True))
    if not spec.get("serviceAccountName"):
        for vi, vol in enumerate(list_of(spec.get("volumes"))):
            for si, src in enumerate(
                list_of(dict_of(dict_of(vol).get("projected")).get("sources"))
            ):
                if dict_of(src).get("serviceAccountToken") is not None:
                    errs.append(
                        forbidden(
                            f"spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken",
                            "must not be specified when serviceAccountName is not set",
                        )
                    )
    for field in ("containers", "initContainers"):
        for i, c in enumerate(list_of(spec.get(field))):
            image = str_of(dict_of(c).get("image"))
            if image != image.strip():
                errs.append(
                    invalid(
                        f"spec.{field}[{i}].image",
                        image,
                        "must not have leading or trailing whitespace",
                    )
                )
    return errs


def validate_pod(obj: dict, old: dict | None) -> list[FieldError]:
    if old is not None:
        return _validate_pod_update(obj, old)
    errs = _pod_metadata_and_spec(obj)
    spec = dict_of(obj.get("spec"))
    if list_of(spec.get("ephemeralContainers")):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and list_of(spec.get("schedulingGates")):
        errs.append(
            forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared")
        )
    return errs


POD_UPDATABLE_FIELDS = ",".join(
    [
        "`spec.containers[*].image`",
        "`spec.initContainers[*].image`",
        "`spec.activeDeadlineSeconds`",
        "`spec.tolerations` (only additions to existing tolerations)",
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
        "negative)",
    ]
)
POD_UPDATE_FORBIDDEN = f"pod updates may not change fields other than {POD_UPDATABLE_FIELDS}"


def _container_updates(new: list, old: list, path: str) -> tuple[list[FieldError], bool]:
    if len(new) != len(old):
        return [forbidden(path, "pod updates may not add or remove containers")], True
    errs: list[FieldError] = []
    for i, c in enumerate(new):
        image = str_of(dict_of(c).get("image"))
        if not image:
            errs.append(required(f"{path}[{i}].image", ""))
        if image.strip() != image:
            errs.append(
                invalid(f"{path}[{i}].image", image, "must not have leading or trailing whitespace")
            )
    return errs, False


def _only_added_tolerations(new: list, old: list, path: str) -> list[FieldError]:
    for o in old:
        o = dict_of(o)
        base = {k: v for k, v in o.items() if k != "tolerationSeconds"}
        if not any(
            {k: v for k, v in dict_of(n).items() if k != "tolerationSeconds"} == base for n in new
        ):
            return [
                forbidden(
                    path, "existing toleration can not be modified except its tolerationSeconds"
                )
            ]
    return validate_tolerations(new, path)


def _validate_pod_update(obj: dict, old: dict) -> list[FieldError]:
    meta, old_meta = dict_of(obj.get("metadata")), dict_of(old.get("metadata"))
    spec, old_spec = dict_of(obj.get("spec")), dict_of(old.get("spec"))
    errs = validate_object_meta_update(meta, old_meta)
    errs.extend(_pod_metadata_and_spec(obj))
    old_ann = dict_of(old_meta.get("annotations"))
    new_ann = dict_of(meta.get("annotations"))
    if old_ann.get(MIRROR_ANNOTATION) != new_ann.get(MIRROR_ANNOTATION):
        verb = "add" if MIRROR_ANNOTATION not in old_ann else "remove or update"
        errs.append(
            forbidden(
                key("metadata.annotations", MIRROR_ANNOTATION),
                f"may not {verb} mirror pod annotation",
            )
        )
    for field in ("containers", "initContainers"):
        cerrs, stop = _container_updates(
            list_of(spec.get(field)), list_of(old_spec.get(field)), f"spec.{field}"
        )
        errs.extend(cerrs)
        if stop:
            return errs
    ads, old_ads = (
        as_int(spec.get("activeDeadlineSeconds")),
        as_int(old_spec.get("activeDeadlineSeconds")),
    )
    if ads is not None:
        if ads < 0 or ads > (1 << 31) - 1:
            errs.append(
                invalid(
                    "spec.activeDeadlineSeconds", ads, "must be between 0 and 2147483647, inclusive"
                )
            )
            return errs
        if old_ads is not None and old_ads < ads:
            errs.append(
                invalid(
                    "spec.activeDeadlineSeconds",
                    ads,
                    "must be less than or equal to previous value",
                )
            )
            return errs
    elif old_ads is not None:
        errs.append(
            invalid(
                "spec.activeDeadlineSeconds",
                None,
                "must not update from a positive integer to nil value",
            )
        )
    errs.extend(
        _only_added_tolerations(
            list_of(spec.get("tolerations")),
            list_of(old_spec.get("tolerations")),
            "spec.tolerations",
        )
    )
    old_gates = {str_of(dict_of(g).get("name")) for g in list_of(old_spec.get("schedulingGates"))}
    for i, g in enumerate(list_of(spec.get("schedulingGates"))):
        name = str_of(dict_of(g).get("name"))
        if name not in old_gates:
            errs.append(
                forbidden(
                    f"spec.schedulingGates[{i}].name",
                    f"only deletion is allowed, but found new scheduling gate '{name}'",
                )
            )
    if spec == old_spec:
        return errs
    munged = dict(spec)
    for field in ("containers", "initContainers"):
        if field in munged or field in old_spec:
            olds = list_of(old_spec.get(field))
            munged[field] = [
                {**dict_of(c), "image": dict_of(olds[i]).get("image")}
                for i, c in enumerate(list_of(spec.get(field)))
            ]
    for field in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged.pop(field, None)
        if field in old_spec:
            munged[field] = old_spec[field]
    old_tgps = as_int(old_spec.get("terminationGracePeriodSeconds"))
    if old_tgps is not None and old_tgps < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_tgps
    if old_spec.get("schedulingGates"):
        # Gated pods may gain node selector entries and change node affinity.
        new_sel, old_sel = (
            dict_of(munged.get("nodeSelector")),
            dict_of(old_spec.get("nodeSelector")),
        )
        if any(new_sel.get(k) != v for k, v in old_sel.items()):
            errs.append(
                invalid(
                    "spec.nodeSelector",
                    JSONValue(new_sel),
                    "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                )
            )
        for field in ("nodeSelector", "affinity"):
            munged.pop(field, None)
            if field in old_spec:
                munged[field] = old_spec[field]
    if not deep_equal(munged, old_spec):
        errs.append(
            forbidden(
                "spec", POD_UPDATE_FORBIDDEN + "\n" + spec_diff("core.PodSpec", old_spec, munged)
            )
        )
    return errs


_SYSTEM_POD_CONDITIONS = {"PodScheduled", "Ready", "Initialized"}


def validate_pod_status(obj: dict, old: dict) -> list[FieldError]:
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    spec, old_spec = dict_of(obj.get("spec")), dict_of(old.get("spec"))
    st, old_st = dict_of(obj.get("status")), dict_of(old.get("status"))
    for i, c in enumerate(list_of(st.get("conditions"))):
        t = str_of(dict_of(c).get("type"))
        if t not in _SYSTEM_POD_CONDITIONS:
            # Upstream reports these under "metadata", not "status".
            errs.extend(
                invalid(f"metadata.conditions[{i}].Type", t, m) for m in is_qualified_name(t)
            )
    if spec.get("nodeName") != old_spec.get("nodeName"):
        errs.append(forbidden("status.nodeName", "may not be changed directly"))
    nnn = str_of(st.get("nominatedNodeName"))
    if nnn and nnn != old_st.get("nominatedNodeName"):
        errs.extend(
            invalid("status.nominatedNodeName", nnn, m) for m in name_is_dns_subdomain(nnn, False)
        )
    if old_st.get("qosClass") or st.get("qosClass"):
        errs.extend(
            immutable(st.get("qosClass") or "", old_st.get("qosClass") or "", "status.qosClass")
        )
    restart = str_of(old_spec.get("restartPolicy"))
    for field in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        if restart == "Always" and field != "ephemeralContainerStatuses":
            continue
        news = {str_of(dict_of(s).get("name")): dict_of(s) for s in list_of(st.get(field))}
        for i, o in enumerate(list_of(old_st.get(field))):
            o = dict_of(o)
            term = dict_of(o.get("state")).get("terminated")
            if term is None:
                continue
            if (
                field != "ephemeralContainerStatuses"
                and restart == "OnFailure"
                and dict_of(term).get("exitCode", 0) != 0
            ):
                continue
            if field == "initContainerStatuses" and _restartable_init(old_spec, o.get("name")):
                continue
            n = news.get(str_of(o.get("name")))
            if n is not None and dict_of(n.get("state")).get("terminated") is None:
                errs.append(
                    forbidden(
                        f"status.{field}[{i}].state",
                        "may not be transitioned to non-terminated state",
                    )
                )
    ips = list_of(st.get("podIPs"))
    for i, ip in enumerate(ips):
        errs.extend(is_valid_ip(f"status.podIPs[{i}]", str_of(dict_of(ip).get("ip"))))
    host_ips = list_of(st.get("hostIPs"))
    if host_ips and st.get("hostIP") != dict_of(host_ips[0]).get("ip"):
        errs.append(
            invalid(
                "status.hostIPs[0].ip", dict_of(host_ips[0]).get("ip"), "must be equal to `hostIP`"
            )
        )
    return errs


def _restartable_init(spec: dict, name) -> bool:
    for c in list_of(spec.get("initContainers")):
        if dict_of(c).get("name") == name:
            return dict_of(c).get("restartPolicy") == "Always"
    return False


# --- Service ---------------------------------------------------------------------------------

_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_AFFINITY = ["ClientIP", "None"]
_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_TRAFFIC = ["Cluster", "Local"]
_IP_FAMILIES = ["IPv4", "IPv6"]
_IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]
_TRAFFIC_DISTRIBUTION = ["PreferClose", "PreferSameNode", "PreferSameZone"]


def _headless(spec: dict) -> bool:
    ips = list_of(spec.get("clusterIPs"))
    return len(ips) == 1 and ips[0] == "None"


def _externally_accessible(spec: dict) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def _service_port(sp: dict, require_name: bool, names: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = str_of(sp.get("name"))
    if require_name and not name:
        errs.append(required(child(path, "name"), ""))
    elif name:
        errs.extend(invalid(child(path, "name"), name, m) for m in is_dns1123_label(name))
        if name in names:
            errs.append(duplicate(child(path, "name"), name))
        else:
            names.add(name)
    port = as_int(sp.get("port")) or 0
    errs.extend(invalid(child(path, "port"), port, m) for m in is_valid_port_num(port))
    proto = str_of(sp.get("protocol"))
    if not proto:
        errs.append(required(child(path, "protocol"), ""))
    elif proto not in _PROTOCOLS:
        errs.append(not_supported(child(path, "protocol"), proto, _PROTOCOLS))
    errs.extend(validate_port_num_or_name(sp.get("targetPort"), child(path, "targetPort")))
    ap = sp.get("appProtocol")
    if ap is not None:
        errs.extend(
            invalid(child(path, "appProtocol"), ap, m) for m in is_qualified_name(str_of(ap))
        )
    return errs


def _cluster_ips(spec: dict) -> list[FieldError]:
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    cip = str_of(spec.get("clusterIP"))
    cips = list_of(spec.get("clusterIPs"))
    if cip:
        if not cips:
            errs.append(required("spec.clusterIPs", ""))
        elif cips[0] != cip:
            errs.append(
                invalid("spec.clusterIPs", JSONValue(cips), "first value must match `clusterIP`")
            )
    elif cips:
        errs.append(
            invalid(
                "spec.clusterIPs",
                JSONValue(cips),
                "must be empty when `clusterIP` is not specified",
            )
        )
    seen: set = set()
    for i, fam in enumerate(list_of(spec.get("ipFamilies"))):
        if fam not in _IP_FAMILIES:
            errs.append(not_supported(f"spec.ipFamilies[{i}]", fam, _IP_FAMILIES))
        if fam in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", fam))
        seen.add(fam)
    pol = spec.get("ipFamilyPolicy")
    if pol is not None and pol not in _IP_FAMILY_POLICIES:
        errs.append(not_supported("spec.ipFamilyPolicy", pol, _IP_FAMILY_POLICIES))
    bad_ip = False
    for i, ip in enumerate(cips):
        if i == 0 and ip == "None":
            if len(cips) > 1:
                bad_ip = True
                errs.append(
                    invalid(
                        "spec.clusterIPs",
                        JSONValue(cips),
                        "'None' must be the first and only value",
                    )
                )
            continue
        e = is_valid_ip(f"spec.clusterIPs[{i}]", str_of(ip))
        bad_ip = bad_ip or bool(e)
        errs.extend(e)
    if len(cips) > 2:
        errs.append(invalid("spec.clusterIPs", JSONValue(cips), "may only hold up to 2 values"))
    if bad_ip:
        return errs
    if len(cips) > 1:
        versions = {ipaddress.ip_address(ip).version for ip in cips}
        if len(versions) != len(cips):
            errs.append(
                invalid(
                    "spec.clusterIPs",
                    JSONValue(cips),
                    "may specify no more than one IP for each IP family",
                )
            )
    fams = list_of(spec.get("ipFamilies"))
    if not _headless(spec):
        for i, ip in enumerate(cips[: len(fams)]):
            v6 = ipaddress.ip_address(ip).version == 6
            if fams[i] == "IPv4" and v6:
                errs.append(
                    invalid(
                        f"spec.clusterIPs[{i}]",
                        ip,
                        f"expected an IPv4 value as indicated by `ipFamilies[{i}]`",
                    )
                )
            if fams[i] == "IPv6" and not v6:
                errs.append(
                    invalid(
                        f"spec.clusterIPs[{i}]",
                        ip,
                        f"expected an IPv6 value as indicated by `ipFamilies[{i}]`",
                    )
                )
    return errs


def _service_port_key(protocol: str, port: int) -> Raw:
    # The internal core.ServicePort key, JSON-encoded with its Go field names.
    return Raw(
        '{"Name":"","Protocol":'
        + f'"{protocol}"'
        + ',"AppProtocol":null,"Port":'
        + f"{port}"
        + ',"TargetPort":0,"NodePort":0}'
    )


def validate_service_object(svc: dict) -> list[FieldError]:
    """ValidateService."""
    meta = dict_of(svc.get("metadata"))
    spec = dict_of(svc.get("spec"))
    errs = validate_object_meta(meta, True, name_is_dns1035_label)
    ports = list_of(spec.get("ports"))
    stype = str_of(spec.get("type"))
    headless = _headless(spec)
    if not ports and not headless and stype != "ExternalName":
        errs.append(required("spec.ports", ""))
    cips = list_of(spec.get("clusterIPs"))
    if stype == "LoadBalancer" and headless:
        errs.append(
            invalid(
                "spec.clusterIPs[0]", cips[0], "may not be set to 'None' for LoadBalancer services"
            )
        )
    elif stype == "NodePort" and headless:
        errs.append(
            invalid("spec.clusterIPs[0]", cips[0], "may not be set to 'None' for NodePort services")
        )
    elif stype == "ExternalName":
        if cips:
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if list_of(spec.get("ipFamilies")):
            errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(
                forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services")
            )
        cname = str_of(spec.get("externalName")).removesuffix(".")
        if cname:
            errs.extend(invalid("spec.externalName", cname, m) for m in is_dns1123_subdomain(cname))
        else:
            errs.append(required("spec.externalName", ""))
    names: set[str] = set()
    for i, p in enumerate(ports):
        errs.extend(_service_port(dict_of(p), len(ports) > 1, names, f"spec.ports[{i}]"))
    if spec.get("selector") is not None:
        errs.extend(validate_labels(dict_of(spec["selector"]), "spec.selector"))
    aff = str_of(spec.get("sessionAffinity"))
    if not aff:
        errs.append(required("spec.sessionAffinity", ""))
    elif aff not in _AFFINITY:
        errs.append(not_supported("spec.sessionAffinity", aff, _AFFINITY))
    cfg_path = "spec.sessionAffinityConfig"
    if aff == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        detail = "when session affinity type is ClientIP"
        if cfg is None:
            errs.append(required(cfg_path, detail))
        elif dict_of(cfg).get("clientIP") is None:
            errs.append(required(f"{cfg_path}.clientIP", detail))
        else:
            t = dict_of(dict_of(cfg)["clientIP"]).get("timeoutSeconds")
            if t is None:
                errs.append(required(f"{cfg_path}.clientIP.timeoutSeconds", detail))
            elif not isinstance(t, int) or t <= 0 or t > 86400:
                errs.append(
                    invalid(
                        f"{cfg_path}.clientIP.timeoutSeconds",
                        t,
                        "must be greater than 0 and less than 86400",
                    )
                )
    elif aff == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(forbidden(cfg_path, "must not be set when session affinity is None"))
    errs.extend(_cluster_ips(spec))
    for i, ip in enumerate(list_of(spec.get("externalIPs"))):
        e = is_valid_ip(f"spec.externalIPs[{i}]", str_of(ip))
        errs.extend(e or _non_special_ip(str_of(ip), f"spec.externalIPs[{i}]"))
    if not stype:
        errs.append(required("spec.type", ""))
    elif stype not in _SERVICE_TYPES:
        errs.append(not_supported("spec.type", stype, _SERVICE_TYPES))
    if stype == "ClusterIP":
        for i, p in enumerate(ports):
            if as_int(dict_of(p).get("nodePort")):
                errs.append(
                    forbidden(
                        f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"
                    )
                )
    seen_np: set = set()
    for i, p in enumerate(ports):
        p = dict_of(p)
        np_ = as_int(p.get("nodePort")) or 0
        if not np_:
            continue
        k = (p.get("protocol"), np_)
        if k in seen_np:
            errs.append(duplicate(f"spec.ports[{i}].nodePort", np_))
        seen_np.add(k)
    seen_p: set = set()
    for i, p in enumerate(ports):
        p = dict_of(p)
        k = (str_of(p.get("protocol")), as_int(p.get("port")) or 0)
        if k in seen_p:
            errs.append(duplicate(f"spec.ports[{i}]", _service_port_key(*k)))
        seen_p.add(k)
    ranges = list_of(spec.get("loadBalancerSourceRanges"))
    if ranges:
        if stype != "LoadBalancer":
            errs.append(
                forbidden(
                    "spec.LoadBalancerSourceRanges",
                    "may only be used when `type` is 'LoadBalancer'",
                )
            )
        for i, r in enumerate(ranges):
            errs.extend(is_valid_cidr(f"spec.LoadBalancerSourceRanges[{i}]", str_of(r).strip()))
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        errs.append(
            forbidden(
                "spec.allocateLoadBalancerNodePorts",
                "may only be used when `type` is 'LoadBalancer'",
            )
        )
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts", ""))
    lbc = spec.get("loadBalancerClass")
    if lbc is not None:
        if stype == "LoadBalancer":
            errs.extend(
                invalid("spec.loadBalancerClass", lbc, m) for m in is_qualified_name(str_of(lbc))
            )
        else:
            errs.append(
                forbidden(
                    "spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"
                )
            )
    etp = str_of(spec.get("externalTrafficPolicy"))
    if not _externally_accessible(spec):
        if etp:
            errs.append(
                invalid(
                    "spec.externalTrafficPolicy",
                    etp,
                    "may only be set for externally-accessible services",
                )
            )
    elif not etp:
        errs.append(required("spec.externalTrafficPolicy", ""))
    elif etp not in _TRAFFIC:
        errs.append(not_supported("spec.externalTrafficPolicy", etp, _TRAFFIC))
    hc = as_int(spec.get("healthCheckNodePort")) or 0
    if not (stype == "LoadBalancer" and etp == "Local"):
        if hc:
            errs.append(
                invalid(
                    "spec.healthCheckNodePort",
                    hc,
                    "may only be set when `type` is "
                    "'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                )
            )
    itp = spec.get("internalTrafficPolicy")
    if itp is None:
        if stype in ("NodePort", "LoadBalancer", "ClusterIP"):
            errs.append(required("spec.internalTrafficPolicy", ""))
    elif itp not in _TRAFFIC:
        errs.append(not_supported("spec.internalTrafficPolicy", itp, _TRAFFIC))
    td = spec.get("trafficDistribution")
    if td is not None and td not in _TRAFFIC_DISTRIBUTION:
        errs.append(not_supported("spec.trafficDistribution", td, _TRAFFIC_DISTRIBUTION))
    return errs


def _non_special_ip(ip: str, path: str) -> list[FieldError]:
    addr = ipaddress.ip_address(ip)
    errs = []
    if addr.is_unspecified:
        errs.append(invalid(path, ip, f"may not be unspecified ({ip})"))
    if addr.is_loopback:
        errs.append(invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if addr.is_link_local:
        errs.append(
            invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        )
    return errs


def validate_service(obj: dict, old: dict | None) -> list[FieldError]:
    if old is None:
        return validate_service_object(obj)
    spec, old_spec = dict_of(obj.get("spec")), dict_of(old.get("spec"))
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    if "ExternalName" not in (spec.get("type"), old_spec.get("type")) and not (
        _headless(spec) and _headless(old_spec)
    ):
        new_ips, old_ips = list_of(spec.get("clusterIPs")), list_of(old_spec.get("clusterIPs"))
        if len(new_ips) == len(old_ips):
            for i, ip in enumerate(old_ips):
                if ip != new_ips[i]:
                    errs.append(
                        invalid(
                            f"spec.clusterIPs[{i}]", JSONValue(new_ips), "may not change once set"
                        )
                    )
        elif len(old_ips) > len(new_ips):
            if not new_ips:
                errs.append(
                    invalid(
                        "spec.clusterIPs[0]",
                        JSONValue(new_ips),
                        "primary clusterIP can not be unset",
                    )
                )
            elif new_ips[0] != old_ips[0]:
                errs.append(
                    invalid("spec.clusterIPs[0]", JSONValue(new_ips), "may not change once set")
                )
        elif old_ips and new_ips[0] != old_ips[0]:
            errs.append(
                invalid("spec.clusterIPs[0]", JSONValue(new_ips), "may not change once set")
            )
        new_f, old_f = list_of(spec.get("ipFamilies")), list_of(old_spec.get("ipFamilies"))
        if len(new_f) == len(old_f) and new_f != old_f:
            errs.append(invalid("spec.ipFamilies[0]", JSONValue(new_f), "may not change once set"))
    if (
        spec.get("type") == "LoadBalancer"
        and old_spec.get("type") == "LoadBalancer"
        and spec.get("loadBalancerClass") != old_spec.get("loadBalancerClass")
    ):
        errs.append(
            invalid(
                "spec.loadBalancerClass", spec.get("loadBalancerClass"), "may not change once set"
            )
        )
    errs.extend(validate_service_object(obj))
    return errs


def validate_service_status(obj: dict, old: dict) -> list[FieldError]:
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    ingress = list_of(dict_of(dict_of(obj.get("status")).get("loadBalancer")).get("ingress"))
    for i, ing in enumerate(ingress):
        ing = dict_of(ing)
        ipath = f"status.loadBalancer.ingress[{i}]"
        if ing.get("ip"):
            errs.extend(is_valid_ip(f"{ipath}.ip", str_of(ing["ip"])))
        if ing.get("hostname"):
            h = str_of(ing["hostname"])
            errs.extend(invalid(f"{ipath}.hostname", h, m) for m in is_dns1123_subdomain(h))
    return errs


# --- Namespace -------------------------------------------------------------------------------


def validate_namespace(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    if old is not None:
        return validate_object_meta_update(meta, dict_of(old.get("metadata")))
    errs = validate_object_meta(meta, False, name_is_dns_label)
    for f in list_of(dict_of(obj.get("spec")).get("finalizers")):
        errs.extend(validate_finalizer_name(str_of(f), "spec.finalizers"))
    return errs


def validate_namespace_status(obj: dict, old: dict) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    errs = validate_object_meta_update(meta, dict_of(old.get("metadata")))
    phase = str_of(dict_of(obj.get("status")).get("phase"))
    if not meta.get("deletionTimestamp"):
        if phase != "Active":
            errs.append(
                invalid(
                    "status.Phase", phase, "may only be 'Active' if `deletionTimestamp` is empty"
                )
            )
    elif phase != "Terminating":
        errs.append(
            invalid(
                "status.Phase",
                phase,
                "may only be 'Terminating' if `deletionTimestamp` is not empty",
            )
        )
    return errs


def validate_namespace_finalize(obj: dict, old: dict) -> list[FieldError]:
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    for i, f in enumerate(list_of(dict_of(obj.get("spec")).get("finalizers"))):
        errs.extend(validate_finalizer_name(str_of(f), f"spec.finalizers[{i}]"))
    return errs


# --- Node ------------------------------------------------------------------------------------

_TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]


def _node_taints(taints: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set = set()
    for i, t in enumerate(taints):
        t = dict_of(t)
        ipath = index(path, i)
        k = str_of(t.get("key"))
        errs.extend(validate_label_name(k, child(ipath, "key")))
        v = str_of(t.get("value"))
        from pocketkube.api.names import is_valid_label_value

        msgs = is_valid_label_value(v)
        if msgs:
            errs.append(invalid(child(ipath, "value"), v, ";".join(msgs)))
        effect = str_of(t.get("effect"))
        if not effect:
            errs.append(required(child(ipath, "effect"), ""))
        elif effect not in _TAINT_EFFECTS:
            errs.append(not_supported(child(ipath, "effect"), effect, _TAINT_EFFECTS))
        if (effect, k) in seen:
            e = duplicate(ipath, JSONValue(t))
            e.detail = "taints must be unique by key and effect pair"
            errs.append(e)
            continue
        seen.add((effect, k))
    return errs


def _node_resources(node: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    st = dict_of(node.get("status"))
    for field in ("capacity", "allocatable"):
        for k, v in dict_of(st.get(field)).items():
            errs.extend(quantity_errors(k, v, f"status.{field}.{k}")[1])
    return errs


def validate_node(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    spec = dict_of(obj.get("spec"))
    if old is not None:
        return _validate_node_update(obj, old)
    errs = validate_object_meta(meta, False, name_is_dns_subdomain)
    if list_of(spec.get("taints")):
        errs.extend(_node_taints(spec["taints"], "metadata.taints"))
    errs.extend(_node_resources(obj))
    cidrs = list_of(spec.get("podCIDRs"))
    for i, c in enumerate(cidrs):
        errs.extend(is_valid_cidr(f"spec.podCIDRs[{i}]", str_of(c)))
    if len(cidrs) > 1:
        seen: set = set()
        for i, c in enumerate(cidrs):
            if c in seen:
                errs.append(duplicate(f"spec.podCIDRs[{i}]", c))
            seen.add(c)
    return errs


def _validate_node_update(obj: dict, old: dict) -> list[FieldError]:
    spec, old_spec = dict_of(obj.get("spec")), dict_of(old.get("spec"))
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    errs.extend(_node_resources(obj))
    seen: list = []
    for i, a in enumerate(list_of(dict_of(obj.get("status")).get("addresses"))):
        if a in seen:
            errs.append(duplicate(f"status.addresses[{i}]", JSONValue(a)))
        seen.append(a)
    old_cidrs = list_of(old_spec.get("podCIDRs"))
    new_cidrs = list_of(spec.get("podCIDRs"))
    msg = 'node updates may not change podCIDR except from "" to valid'
    if old_cidrs:
        if len(old_cidrs) != len(new_cidrs):
            errs.append(forbidden("spec.podCIDRs", msg))
        else:
            errs.extend(
                forbidden("spec.podCIDRs", msg)
                for i, c in enumerate(old_cidrs)
                if c != new_cidrs[i]
            )
    if old_spec.get("providerID") and old_spec.get("providerID") != spec.get("providerID"):
        errs.append(
            forbidden(
                "spec.providerID", 'node updates may not change providerID except from "" to valid'
            )
        )
    if list_of(spec.get("taints")):
        errs.extend(_node_taints(spec["taints"], "metadata.taints"))
    if spec.get("externalID") != old_spec.get("externalID"):
        errs.append(forbidden("spec.externalID", "may not be updated"))
    return errs


# --- ConfigMap, Secret, ServiceAccount -------------------------------------------------------


def _b64_len(s) -> int:
    if not isinstance(s, str):
        return 0
    n = len(s)
    pad = 2 if s.endswith("==") else 1 if s.endswith("=") else 0
    return n * 3 // 4 - pad


def validate_config_map(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    errs: list[FieldError] = []
    if old is not None:
        errs.extend(validate_object_meta_update(meta, dict_of(old.get("metadata"))))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
            if not deep_equal(obj.get("data"), old.get("data")):
                errs.append(forbidden("data", "field is immutable when `immutable` is set"))
            if not deep_equal(obj.get("binaryData"), old.get("binaryData")):
                errs.append(forbidden("binaryData", "field is immutable when `immutable` is set"))
    errs.extend(validate_object_meta(meta, True, name_is_dns_subdomain))
    data = dict_of(obj.get("data"))
    binary = dict_of(obj.get("binaryData"))
    total = 0
    for k, v in data.items():
        errs.extend(invalid(key("data", k), k, m) for m in is_config_map_key(k))
        if k in binary:
            errs.append(invalid(key("data", k), k, "duplicate of key present in binaryData"))
        total += len(v.encode()) if isinstance(v, str) else 0
    for k, v in binary.items():
        errs.extend(invalid(key("binaryData", k), k, m) for m in is_config_map_key(k))
        total += _b64_len(v)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("", MAX_SECRET_SIZE))
    return errs


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_secret(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    errs: list[FieldError] = []
    if old is not None:
        errs.extend(validate_object_meta_update(meta, dict_of(old.get("metadata"))))
        errs.extend(immutable(obj.get("type") or "", old.get("type") or "", "type"))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
            if not deep_equal(obj.get("data"), old.get("data")):
                errs.append(forbidden("data", "field is immutable when `immutable` is set"))
    errs.extend(validate_object_meta(meta, True, name_is_dns_subdomain))
    data = dict_of(obj.get("data"))
    total = 0
    for k, v in data.items():
        errs.extend(invalid(key("data", k), k, m) for m in is_config_map_key(k))
        total += _b64_len(v)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    stype = str_of(obj.get("type"))
    if stype == "kubernetes.io/service-account-token":
        if not dict_of(meta.get("annotations")).get("kubernetes.io/service-account.name"):
            errs.append(
                required(key("metadata.annotations", "kubernetes.io/service-account.name"), "")
            )
    elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        k = _SECRET_REQUIRED_KEYS[stype][0]
        if k not in data:
            errs.append(required(key("data", k), ""))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs.append(required(key("data", "username"), ""))
            errs.append(required(key("data", "password"), ""))
    elif stype == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            errs.append(required(key("data", "ssh-privatekey"), ""))
    elif stype == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in data:
                errs.append(required(key("data", k), ""))
    return errs


def validate_service_account(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    errs = [] if old is None else validate_object_meta_update(meta, dict_of(old.get("metadata")))
    errs.extend(validate_object_meta(meta, True, name_is_dns_subdomain))
    return errs


__all__ = [
    "IMMUTABLE",
    "validate_pod",
    "validate_pod_status",
    "validate_service",
    "validate_service_status",
    "validate_namespace",
    "validate_namespace_status",
    "validate_namespace_finalize",
    "validate_node",
    "validate_config_map",
    "validate_secret",
    "validate_service_account",
    "is_config_map_key",
]
