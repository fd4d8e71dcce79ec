"""Container validation: names, images, ports, env, mounts, resources, probes, lifecycle.

Mirrors `validateContainerCommon`, `validateContainers` and `validateInitContainers` in core
validation, including the order errors are reported in (kubectl prints them in that order).
Resource quantities are compared as numbers through `quantity.parse`.
"""

from __future__ import annotations

import re

from pocketkube.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_found,
    not_supported,
    required,
)
from pocketkube.api.names import (
    is_dns1123_label,
    is_qualified_name,
    name_is_dns_subdomain,
    regex_error,
)
from pocketkube.api.quantity import format_quantity, parse

from .common import JSONValue, as_int, child, dict_of, index, key, list_of, nonneg, str_of
from .volumes import validate_local_descending_path, validate_path_no_backsteps

PORT_RANGE_ERROR = "must be between 1 and 65535, inclusive"
ID_RANGE_ERROR = "must be between 0 and 2147483647, inclusive"

_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"]
_HTTP_SCHEMES = ["HTTP", "HTTPS"]
_MOUNT_PROPAGATIONS = ["Bidirectional", "HostToContainer", "None"]

_port_name_charset = re.compile(r"[-a-z0-9]+")
_port_name_letter = re.compile(r"[a-z]")
_http_header_re = re.compile(r"[-A-Za-z0-9]+")
_HTTP_HEADER_ERROR = regex_error(
    "a valid HTTP header must consist of alphanumeric characters or '-'",
    "[-A-Za-z0-9]+",
    "X-Header-Name",
)
_RELAXED_ENV_ERROR = (
    "a valid environment variable name must consist only of printable ASCII "
    "characters other than '='"
)

ENV_FIELD_PATHS = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
]
_DOWNWARD_LABELS = {
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
}
_RESOURCE_FIELD_PATHS = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
]
_HUGEPAGE_PREFIXES = ("requests.hugepages-", "limits.hugepages-")
_CPU_DIVISORS = {"1m", "1"}
_BYTE_DIVISORS = {"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"}

_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_STANDARD_RESOURCES = _STANDARD_CONTAINER_RESOURCES | {
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "requests.storage",
}


# --- small format checks ---------------------------------------------------------------------


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [PORT_RANGE_ERROR]


def is_valid_port_name(port: str) -> list[str]:
    errs = []
    if len(port) > 15:
        errs.append("must be no more than 15 characters")
    if not _port_name_charset.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _port_name_letter.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def validate_port_num_or_name(port, path: str) -> list[FieldError]:
    """ValidatePortNumOrName for an IntOrString port."""
    if isinstance(port, bool):
        return []
    if isinstance(port, int):
        return [invalid(path, port, m) for m in is_valid_port_num(port)]
    if isinstance(port, str):
        return [invalid(path, port, m) for m in is_valid_port_name(port)]
    return []


def is_relaxed_env_var_name(name: str) -> list[str]:
    for ch in name:
        if ord(ch) > 127 or not ch.isprintable() or ch == "=":
            return [_RELAXED_ENV_ERROR]
    return []


def validate_pull_policy(policy: str, path: str) -> list[FieldError]:
    if policy in _PULL_POLICIES:
        return []
    if not policy:
        return [required(path, "")]
    return [not_supported(path, policy, _PULL_POLICIES)]


# --- ports and env ---------------------------------------------------------------------------


def validate_container_ports(ports: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, p in enumerate(ports):
        p = dict_of(p)
        ipath = index(path, i)
        name = str_of(p.get("name"))
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                errs.extend(invalid(child(ipath, "name"), name, m) for m in msgs)
            elif name in names:
                errs.append(duplicate(child(ipath, "name"), name))
            else:
                names.add(name)
        cp = as_int(p.get("containerPort")) or 0
        if cp == 0:
            errs.append(required(child(ipath, "containerPort"), ""))
        else:
            errs.extend(
                invalid(child(ipath, "containerPort"), cp, m) for m in is_valid_port_num(cp)
            )
        hp = as_int(p.get("hostPort")) or 0
        if hp:
            errs.extend(invalid(child(ipath, "hostPort"), hp, m) for m in is_valid_port_num(hp))
        proto = str_of(p.get("protocol"))
        if not proto:
            errs.append(required(child(ipath, "protocol"), ""))
        elif proto not in _PROTOCOLS:
            errs.append(not_supported(child(ipath, "protocol"), proto, _PROTOCOLS))
    return errs


def _split_subscripted(path: str) -> tuple[str, str] | None:
    if not path.endswith("']"):
        return None
    parts = path[:-2].split("['", 1)
    if len(parts) < 2 or not parts[0]:
        return None
    return parts[0], parts[1]


def validate_object_field_selector(fs: dict, expressions: list[str], path: str) -> list[FieldError]:
    api_version = str_of(fs.get("apiVersion"))
    if not api_version:
        return [required(child(path, "apiVersion"), "")]
    field_path = str_of(fs.get("fieldPath"))
    if not field_path:
        return [required(child(path, "fieldPath"), "")]
    # ConvertDownwardAPIFieldLabel
    err = ""
    internal = field_path
    split = _split_subscripted(field_path)
    if api_version != "v1":
        err = f"unsupported pod version: {api_version}"
    elif split is not None:
        if split[0] not in ("metadata.annotations", "metadata.labels"):
            err = f"field label does not support subscript: {field_path}"
    elif field_path == "spec.host":
        internal = "spec.nodeName"
    elif field_path not in _DOWNWARD_LABELS:
        err = f"field label not supported: {field_path}"
    if err:
        return [invalid(child(path, "fieldPath"), field_path, f"error converting fieldPath: {err}")]
    if split is not None:
        sub = split[1].lower() if split[0] == "metadata.annotations" else split[1]
        return [invalid(path, sub, m) for m in is_qualified_name(sub)]
    if internal not in expressions:
        return [not_supported(child(path, "fieldPath"), internal, sorted(expressions))]
    return []


def validate_resource_field_selector(fs: dict, path: str, volume: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    resource = str_of(fs.get("resource"))
    if volume and not fs.get("containerName"):
        errs.append(required(child(path, "containerName"), ""))
    elif not resource:
        errs.append(required(child(path, "resource"), ""))
    elif resource not in _RESOURCE_FIELD_PATHS and not resource.startswith(_HUGEPAGE_PREFIXES):
        errs.append(not_supported(child(path, "resource"), resource, _RESOURCE_FIELD_PATHS))
    divisor = fs.get("divisor")
    if isinstance(divisor, str):
        try:
            q = parse(divisor)
        except ValueError as e:
            return errs + [invalid(child(path, "divisor"), divisor, str(e))]
        if q.value == 0:
            return errs
        d = format_quantity(q.value, q.format)
        if resource in ("limits.cpu", "requests.cpu") and d not in _CPU_DIVISORS:
            errs.append(
                invalid(
                    child(path, "divisor"),
                    resource,
                    "only divisor's values 1m and 1 are supported with the cpu resource",
                )
            )
        elif resource in ("limits.memory", "requests.memory") and d not in _BYTE_DIVISORS:
            errs.append(
                invalid(
                    child(path, "divisor"),
                    resource,
                    "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, "
                    "1Ti, 1Pi, 1Ei are supported with the memory resource",
                )
            )
        elif (
            resource in ("limits.ephemeral-storage", "requests.ephemeral-storage")
            and d not in _BYTE_DIVISORS
        ):
            errs.append(
                invalid(
                    child(path, "divisor"),
                    resource,
                    "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, "
                    "1Ti, 1Pi, 1Ei are supported with the local ephemeral storage "
                    "resource",
                )
            )
    return errs


def _key_selector(sel: dict, path: str) -> list[FieldError]:
    from .core import is_config_map_key

    name = str_of(sel.get("name"))
    errs = [invalid(child(path, "name"), name, m) for m in name_is_dns_subdomain(name, False)]
    k = str_of(sel.get("key"))
    if not k:
        errs.append(required(child(path, "key"), ""))
    else:
        errs.extend(invalid(child(path, "key"), k, m) for m in is_config_map_key(k))
    return errs


def validate_env(env: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ev in enumerate(env):
        ev = dict_of(ev)
        ipath = index(path, i)
        name = str_of(ev.get("name"))
        if not name:
            errs.append(required(child(ipath, "name"), ""))
        else:
            errs.extend(
                invalid(child(ipath, "name"), name, m) for m in is_relaxed_env_var_name(name)
            )
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vf = dict_of(vf)
        vpath = child(ipath, "valueFrom")
        n = 0
        if vf.get("fieldRef") is not None:
            n += 1
            errs.extend(
                validate_object_field_selector(
                    dict_of(vf["fieldRef"]), ENV_FIELD_PATHS, child(vpath, "fieldRef")
                )
            )
        if vf.get("resourceFieldRef") is not None:
            n += 1
            errs.extend(
                validate_resource_field_selector(
                    dict_of(vf["resourceFieldRef"]), child(vpath, "resourceFieldRef"), False
                )
            )
        if vf.get("configMapKeyRef") is not None:
            n += 1
            errs.extend(
                _key_selector(dict_of(vf["configMapKeyRef"]), child(vpath, "configMapKeyRef"))
            )
        if vf.get("secretKeyRef") is not None:
            n += 1
            errs.extend(_key_selector(dict_of(vf["secretKeyRef"]), child(vpath, "secretKeyRef")))
        if n == 0:
            errs.append(
                invalid(
                    vpath,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, "
                    "`configMapKeyRef` or `secretKeyRef`",
                )
            )
        elif ev.get("value"):
            errs.append(invalid(vpath, "", "may not be specified when `value` is not empty"))
        elif n > 1:
            errs.append(invalid(vpath, "", "may not have more than one field specified at a time"))
    return errs


def validate_env_from(env_from: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ev in enumerate(env_from):
        ev = dict_of(ev)
        ipath = index(path, i)
        prefix = str_of(ev.get("prefix"))
        if prefix:
            errs.extend(
                invalid(child(ipath, "prefix"), prefix, m) for m in is_relaxed_env_var_name(prefix)
            )
        n = 0
        for kind in ("configMapRef", "secretRef"):
            if ev.get(kind) is None:
                continue
            n += 1
            name = str_of(dict_of(ev[kind]).get("name"))
            npath = child(child(ipath, kind), "name")
            if not name:
                errs.append(required(npath, ""))
            else:
                errs.extend(invalid(npath, name, m) for m in name_is_dns_subdomain(name, True))
        if n == 0:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif n > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


# --- mounts ----------------------------------------------------------------------------------


def validate_volume_mounts(
    mounts: list,
    devices: dict[str, str],
    volumes: dict[str, dict] | None,
    container: dict,
    path: str,
) -> list[FieldError]:
    """`volumes` None skips the name lookup (StatefulSet templates mount claim templates)."""
    errs: list[FieldError] = []
    points: set[str] = set()
    device_paths = set(devices.values())
    privileged = dict_of(container.get("securityContext")).get("privileged") is True
    for i, m in enumerate(mounts):
        m = dict_of(m)
        ipath = index(path, i)
        name = str_of(m.get("name"))
        mount_path = str_of(m.get("mountPath"))
        if not name:
            errs.append(required(child(ipath, "name"), ""))
        if volumes is not None and name not in volumes:
            errs.append(not_found(child(ipath, "name"), name))
        if not mount_path:
            errs.append(required(child(ipath, "mountPath"), ""))
        if mount_path in points:
            errs.append(invalid(child(ipath, "mountPath"), mount_path, "must be unique"))
        points.add(mount_path)
        if name in devices:
            errs.append(
                invalid(child(ipath, "name"), name, "must not already exist in volumeDevices")
            )
        if mount_path in device_paths:
            errs.append(
                invalid(
                    child(ipath, "mountPath"),
                    mount_path,
                    "must not already exist as a path in volumeDevices",
                )
            )
        if volumes is not None and dict_of(volumes.get(name)).get("image") is not None:
            for f in ("subPath", "subPathExpr"):
                if m.get(f):
                    errs.append(
                        invalid(child(ipath, f), m[f], "not allowed in image volume sources")
                    )
        sub = str_of(m.get("subPath"))
        if sub:
            errs.extend(validate_local_descending_path(sub, child(path, "subPath")))
        expr = str_of(m.get("subPathExpr"))
        if expr:
            if sub:
                errs.append(
                    invalid(
                        child(ipath, "subPathExpr"),
                        expr,
                        "subPathExpr and subPath are mutually exclusive",
                    )
                )
            errs.extend(validate_local_descending_path(expr, child(path, "subPathExpr")))
        prop = m.get("mountPropagation")
        if prop is not None:
            ppath = child(path, "mountPropagation")
            if prop not in _MOUNT_PROPAGATIONS:
                errs.append(not_supported(ppath, prop, _MOUNT_PROPAGATIONS))
            if prop == "Bidirectional" and not privileged:
                errs.append(
                    forbidden(
                        ppath,
                        "Bidirectional mount propagation is available only "
                        "to privileged containers",
                    )
                )
        rro = m.get("recursiveReadOnly")
        if rro is not None:
            rpath = child(path, "recursiveReadOnly")
            if rro in ("Enabled", "IfPossible"):
                if not m.get("readOnly"):
                    errs.append(forbidden(rpath, "may only be specified when readOnly is true"))
                if prop not in (None, "None"):
                    errs.append(
                        forbidden(
                            rpath,
                            "may only be specified when mountPropagation is None or not specified",
                        )
                    )
            elif rro != "Disabled":
                errs.append(not_supported(rpath, rro, ["Disabled", "Enabled", "IfPossible"]))
    return errs


def validate_volume_devices(
    devices: list, mounts: dict[str, str], volumes: dict[str, dict] | None, path: str
) -> list[FieldError]:
    errs: list[FieldError] = []
    paths: set[str] = set()
    names: set[str] = set()
    mount_paths = set(mounts.values())
    for i, d in enumerate(devices):
        d = dict_of(d)
        ipath = index(path, i)
        name = str_of(d.get("name"))
        dev_path = str_of(d.get("devicePath"))
        if not name:
            errs.append(required(child(ipath, "name"), ""))
        if name in names:
            errs.append(invalid(child(ipath, "name"), name, "must be unique"))
        if volumes is not None:
            vol = volumes.get(name)
            if vol is None:
                errs.append(not_found(child(ipath, "name"), name))
            elif vol.get("persistentVolumeClaim") is None and vol.get("ephemeral") is None:
                errs.append(
                    invalid(
                        child(ipath, "name"),
                        name,
                        "can only use volume source type "
                        "of PersistentVolumeClaim or Ephemeral for block mode",
                    )
                )
        if not dev_path:
            errs.append(required(child(ipath, "devicePath"), ""))
        if dev_path in paths:
            errs.append(invalid(child(ipath, "devicePath"), dev_path, "must be unique"))
        if dev_path and validate_path_no_backsteps(dev_path, path):
            errs.append(
                invalid(child(ipath, "devicePath"), dev_path, "can not contain backsteps ('..')")
            )
        else:
            paths.add(dev_path)
        if name in mounts:
            errs.append(
                invalid(child(ipath, "name"), name, "must not already exist in volumeMounts")
            )
        if dev_path in mount_paths:
            errs.append(
                invalid(
                    child(ipath, "devicePath"),
                    dev_path,
                    "must not already exist as a path in volumeMounts",
                )
            )
        if name:
            names.add(name)
    return errs


# --- resources -------------------------------------------------------------------------------


def _is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def is_overcommit_allowed(name: str) -> bool:
    return _is_native(name) and not _is_hugepages(name)


def _is_integer_resource(name: str) -> bool:
    if name in (
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    ):
        return True
    return not _is_native(name) and not name.startswith("requests.")


def validate_resource_name(name: str, path: str) -> list[FieldError]:
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name and name not in _STANDARD_RESOURCES and not _is_hugepages(name):
        errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
    return errs


def validate_container_resource_name(name: str, path: str) -> list[FieldError]:
    errs = validate_resource_name(name, path)
    if "/" not in name:
        if name not in _STANDARD_CONTAINER_RESOURCES and not _is_hugepages(name):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native(name):
        if name.startswith("requests.") or is_qualified_name("requests." + name):
            errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def quantity_errors(name: str, value, path: str) -> tuple[object, list[FieldError]]:
    """ValidateResourceQuantityValue: (parsed quantity or None, errors)."""
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            return None, []
    try:
        q = parse(value)
    except ValueError as e:
        return None, [invalid(path, value, str(e))]
    errs = []
    text = format_quantity(q.value, q.format)
    if q.value < 0:
        errs.append(invalid(path, text, "must be greater than or equal to 0"))
    if _is_integer_resource(name) and (q.value * 1000) % 1000:
        errs.append(invalid(path, text, "must be an integer"))
    return q, errs


def validate_resource_requirements(
    res: dict, path: str, name_fn=validate_container_resource_name
) -> list[FieldError]:
    errs: list[FieldError] = []
    lim_path, req_path = child(path, "limits"), child(path, "requests")
    limits = dict_of(res.get("limits"))
    requests = dict_of(res.get("requests"))
    parsed_limits = {}
    lim_cpu_mem = req_cpu_mem = lim_huge = req_huge = False
    for name, value in limits.items():
        fpath = key(lim_path, name)
        errs.extend(name_fn(name, fpath))
        q, qerrs = quantity_errors(name, value, fpath)
        errs.extend(qerrs)
        if q is not None:
            parsed_limits[name] = q
        lim_huge = lim_huge or _is_hugepages(name)
        lim_cpu_mem = lim_cpu_mem or name in ("cpu", "memory")
    for name, value in requests.items():
        fpath = key(req_path, name)
        errs.extend(name_fn(name, fpath))
        q, qerrs = quantity_errors(name, value, fpath)
        errs.extend(qerrs)
        lim = parsed_limits.get(name)
        if q is not None and lim is not None:
            text = format_quantity(q.value, q.format)
            ltext = format_quantity(lim.value, lim.format)
            if q.value != lim.value and not is_overcommit_allowed(name):
                errs.append(invalid(req_path, text, f"must be equal to {name} limit of {ltext}"))
            elif q.value > lim.value:
                errs.append(
                    invalid(
                        req_path, text, f"must be less than or equal to {name} limit of {ltext}"
                    )
                )
        elif name not in limits and not is_overcommit_allowed(name):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
        req_huge = req_huge or _is_hugepages(name)
        req_cpu_mem = req_cpu_mem or name in ("cpu", "memory")
    if not lim_cpu_mem and not req_cpu_mem and (req_huge or lim_huge):
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    return errs


# --- probes and lifecycle --------------------------------------------------------------------


def _handler(h: dict, grace, path: str, kinds: tuple[str, ...]) -> list[FieldError]:
    errs: list[FieldError] = []
    n = 0
    for kind in kinds:
        action = h.get(kind)
        if action is None:
            continue
        apath = child(path, kind)
        if n > 0:
            errs.append(forbidden(apath, "may not specify more than 1 handler type"))
            continue
        n += 1
        action = dict_of(action)
        if kind == "exec":
            if not list_of(action.get("command")):
                errs.append(required(child(apath, "command"), ""))
        elif kind == "httpGet":
            if not action.get("path"):
                errs.append(required(child(apath, "path"), ""))
            errs.extend(validate_port_num_or_name(action.get("port"), child(apath, "port")))
            scheme = action.get("scheme") or ""
            if scheme not in _HTTP_SCHEMES:
                errs.append(not_supported(child(apath, "scheme"), scheme, _HTTP_SCHEMES))
            for hdr in list_of(action.get("httpHeaders")):
                hname = str_of(dict_of(hdr).get("name"))
                if not _http_header_re.fullmatch(hname):
                    errs.append(invalid(child(apath, "httpHeaders"), hname, _HTTP_HEADER_ERROR))
        elif kind == "tcpSocket":
            errs.extend(validate_port_num_or_name(action.get("port"), child(apath, "port")))
        elif kind == "grpc":
            port = as_int(action.get("port"))
            if port is not None:
                errs.extend(invalid(child(apath, "port"), port, m) for m in is_valid_port_num(port))
        elif kind == "sleep":
            secs = as_int(action.get("seconds"))
            g = as_int(grace)
            if secs is not None and g is not None and (secs < 0 or secs > g):
                errs.append(
                    invalid(
                        apath,
                        secs,
                        f"must be non-negative and less than terminationGracePeriodSeconds ({g})",
                    )
                )
    if n == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")


def validate_probe(probe, grace, path: str, kind: str) -> list[FieldError]:
    """kind: "liveness", "readiness" or "startup"."""
    if probe is None:
        return []
    probe = dict_of(probe)
    errs = _handler(probe, grace, path, _PROBE_HANDLERS)
    for f in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs.extend(nonneg(probe.get(f), child(path, f)))
    tgps = as_int(probe.get("terminationGracePeriodSeconds"))
    if tgps is not None and tgps <= 0:
        errs.append(
            invalid(child(path, "terminationGracePeriodSeconds"), tgps, "must be greater than 0")
        )
    st = as_int(probe.get("successThreshold"))
    if kind in ("liveness", "startup") and st is not None and st != 1:
        errs.append(invalid(child(path, "successThreshold"), st, "must be 1"))
    if kind == "readiness" and probe.get("terminationGracePeriodSeconds") is not None:
        errs.append(
            invalid(
                child(path, "terminationGracePeriodSeconds"),
                probe["terminationGracePeriodSeconds"],
                "must not be set for readinessProbes",
            )
        )
    return errs


def validate_lifecycle(lc: dict, grace, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for hook in ("postStart", "preStop"):
        if lc.get(hook) is not None:
            errs.extend(_handler(dict_of(lc[hook]), grace, child(path, hook), _LIFECYCLE_HANDLERS))
    return errs


# --- security context ------------------------------------------------------------------------


def validate_id(v, path: str) -> list[FieldError]:
    i = as_int(v)
    if i is not None and not 0 <= i <= 2147483647:
        return [invalid(path, i, ID_RANGE_ERROR)]
    return []


def validate_seccomp_profile(sp, path: str) -> list[FieldError]:
    if sp is None:
        return []
    sp = dict_of(sp)
    t = sp.get("type") or ""
    errs: list[FieldError] = []
    types = ["Localhost", "RuntimeDefault", "Unconfined"]
    if not t:
        errs.append(required(child(path, "type"), "type is required when seccompProfile is set"))
    elif t not in types:
        errs.append(not_supported(child(path, "type"), t, types))
    if t == "Localhost":
        lp = sp.get("localhostProfile")
        if lp is None:
            errs.append(
                required(
                    child(path, "localhostProfile"), "must be set when seccomp type is Localhost"
                )
            )
        else:
            errs.extend(validate_local_descending_path(str_of(lp), child(path, "localhostProfile")))
    elif sp.get("localhostProfile") is not None:
        errs.append(
            invalid(
                child(path, "localhostProfile"),
                JSONValue(sp),
                "can only be set when seccomp type is Localhost",
            )
        )
    return errs


def validate_security_context(sc, path: str, host_users: bool) -> list[FieldError]:
    if sc is None:
        return []
    sc = dict_of(sc)
    errs = validate_id(sc.get("runAsUser"), child(path, "runAsUser"))
    errs.extend(validate_id(sc.get("runAsGroup"), child(path, "runAsGroup")))
    pm = sc.get("procMount")
    if pm is not None:
        if pm not in ("Default", "Unmasked"):
            errs.append(not_supported(child(path, "procMount"), pm, ["Default", "Unmasked"]))
        if host_users and pm == "Unmasked":
            errs.append(
                invalid(child(path, "procMount"), pm, "`hostUsers` must be false to use `Unmasked`")
            )
    errs.extend(validate_seccomp_profile(sc.get("seccompProfile"), child(path, "seccompProfile")))
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            errs.append(
                invalid(
                    path,
                    JSONValue(sc),
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                )
            )
        for cap in list_of(dict_of(sc.get("capabilities")).get("add")):
            if cap == "CAP_SYS_ADMIN":
                errs.append(
                    invalid(
                        path,
                        JSONValue(sc),
                        "cannot set `allowPrivilegeEscalation` "
                        "to false and `capabilities.Add` CAP_SYS_ADMIN",
                    )
                )
    return errs


# --- containers ------------------------------------------------------------------------------


def _validate_resize_policy(policies: list, path: str, pod_restart: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, p in enumerate(policies):
        p = dict_of(p)
        rn = str_of(p.get("resourceName"))
        rp = str_of(p.get("restartPolicy"))
        if rn in seen:
            errs.append(duplicate(index(path, i), rn))
        seen.add(rn)
        if not rn:
            errs.append(required(path, ""))
        elif rn not in ("cpu", "memory"):
            errs.append(not_supported(path, rn, ["cpu", "memory"]))
        if not rp:
            errs.append(required(path, ""))
        elif rp not in ("NotRequired", "RestartContainer"):
            errs.append(not_supported(path, rp, ["NotRequired", "RestartContainer"]))
        if pod_restart == "Never" and rp != "NotRequired":
            errs.append(invalid(path, rp, "must be 'NotRequired' when `restartPolicy` is 'Never'"))
    return errs


def validate_container_common(
    ctr: dict, volumes: dict[str, dict] | None, path: str, pod_restart: str, host_users: bool
) -> list[FieldError]:
    errs: list[FieldError] = []
    name = str_of(ctr.get("name"))
    npath = child(path, "name")
    if not name:
        errs.append(required(npath, ""))
    else:
        errs.extend(invalid(npath, name, m) for m in is_dns1123_label(name))
    if not ctr.get("image"):
        errs.append(required(child(path, "image"), ""))
    tmp = str_of(ctr.get("terminationMessagePolicy"))
    if not tmp:
        errs.append(required(child(path, "terminationMessagePolicy"), ""))
    elif tmp not in _TERMINATION_MESSAGE_POLICIES:
        errs.append(
            not_supported(
                child(path, "terminationMessagePolicy"), tmp, _TERMINATION_MESSAGE_POLICIES
            )
        )
    mounts = list_of(ctr.get("volumeMounts"))
    devices = list_of(ctr.get("volumeDevices"))
    mount_map = {
        str_of(dict_of(m).get("name")): str_of(dict_of(m).get("mountPath")) for m in mounts
    }
    device_map = {
        str_of(dict_of(d).get("name")): str_of(dict_of(d).get("devicePath")) for d in devices
    }
    errs.extend(validate_container_ports(list_of(ctr.get("ports")), child(path, "ports")))
    errs.extend(validate_env(list_of(ctr.get("env")), child(path, "env")))
    errs.extend(validate_env_from(list_of(ctr.get("envFrom")), child(path, "envFrom")))
    errs.extend(
        validate_volume_mounts(mounts, device_map, volumes, ctr, child(path, "volumeMounts"))
    )
    errs.extend(validate_volume_devices(devices, mount_map, volumes, child(path, "volumeDevices")))
    errs.extend(
        validate_pull_policy(str_of(ctr.get("imagePullPolicy")), child(path, "imagePullPolicy"))
    )
    errs.extend(
        validate_resource_requirements(dict_of(ctr.get("resources")), child(path, "resources"))
    )
    errs.extend(
        _validate_resize_policy(
            list_of(ctr.get("resizePolicy")), child(path, "resizePolicy"), pod_restart
        )
    )
    errs.extend(
        validate_security_context(
            ctr.get("securityContext"), child(path, "securityContext"), host_users
        )
    )
    return errs


def _host_port_conflicts(containers: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for ci, ctr in enumerate(containers):
        for pi, p in enumerate(list_of(dict_of(ctr).get("ports"))):
            p = dict_of(p)
            hp = as_int(p.get("hostPort")) or 0
            if not hp:
                continue
            k = f"{str_of(p.get('protocol'))}/{str_of(p.get('hostIP'))}/{hp}"
            if k in seen:
                errs.append(
                    duplicate(child(index(child(index(path, ci), "ports"), pi), "hostPort"), k)
                )
            else:
                seen.add(k)
    return errs


def validate_containers(
    containers: list,
    volumes: dict[str, dict] | None,
    grace,
    path: str,
    pod_restart: str,
    host_users: bool,
) -> list[FieldError]:
    if not containers:
        return [required(path, "")]
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, ctr in enumerate(containers):
        ctr = dict_of(ctr)
        cpath = index(path, i)
        errs.extend(validate_container_common(ctr, volumes, cpath, pod_restart, host_users))
        name = str_of(ctr.get("name"))
        if name in names:
            errs.append(duplicate(child(cpath, "name"), name))
        else:
            names.add(name)
        if ctr.get("lifecycle") is not None:
            errs.extend(
                validate_lifecycle(dict_of(ctr["lifecycle"]), grace, child(cpath, "lifecycle"))
            )
        errs.extend(
            validate_probe(
                ctr.get("livenessProbe"), grace, child(cpath, "livenessProbe"), "liveness"
            )
        )
        errs.extend(
            validate_probe(
                ctr.get("readinessProbe"), grace, child(cpath, "readinessProbe"), "readiness"
            )
        )
        errs.extend(
            validate_probe(ctr.get("startupProbe"), grace, child(cpath, "startupProbe"), "startup")
        )
        if ctr.get("restartPolicy") is not None:
            errs.append(
                forbidden(child(cpath, "restartPolicy"), "may not be set for non-init containers")
            )
    errs.extend(_host_port_conflicts(containers, path))
    return errs


_INIT_ONLY_WITH_ALWAYS = ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe")


def validate_init_containers(
    containers: list,
    regular: list,
    volumes: dict[str, dict] | None,
    grace,
    path: str,
    pod_restart: str,
    host_users: bool,
) -> list[FieldError]:
    errs: list[FieldError] = []
    names = {str_of(dict_of(c).get("name")) for c in regular}
    for i, ctr in enumerate(containers):
        ctr = dict_of(ctr)
        cpath = index(path, i)
        errs.extend(validate_container_common(ctr, volumes, cpath, pod_restart, host_users))
        restart_always = False
        rp = ctr.get("restartPolicy")
        if rp is not None:
            if rp != "Always":
                errs.append(not_supported(child(cpath, "restartPolicy"), rp, ["Always"]))
            restart_always = rp == "Always"
        name = str_of(ctr.get("name"))
        if name in names:
            errs.append(duplicate(child(cpath, "name"), name))
        elif name:
            names.add(name)
        errs.extend(_host_port_conflicts([ctr], path))
        if restart_always:
            if ctr.get("lifecycle") is not None:
                errs.extend(
                    validate_lifecycle(dict_of(ctr["lifecycle"]), grace, child(cpath, "lifecycle"))
                )
            errs.extend(
                validate_probe(
                    ctr.get("livenessProbe"), grace, child(cpath, "livenessProbe"), "liveness"
                )
            )
            errs.extend(
                validate_probe(
                    ctr.get("readinessProbe"), grace, child(cpath, "readinessProbe"), "readiness"
                )
            )
            errs.extend(
                validate_probe(
                    ctr.get("startupProbe"), grace, child(cpath, "startupProbe"), "startup"
                )
            )
        else:
            for f in _INIT_ONLY_WITH_ALWAYS:
                if ctr.get(f) is not None:
                    errs.append(
                        forbidden(
                            child(cpath, f),
                            "may not be set for init containers without restartPolicy=Always",
                        )
                    )
    return errs
