"""A container's environment, computed the way the kubelet computes it before starting it.

Why it exists: what a process sees in its environment is part of the Pod API. Users write
`$(VAR)` references, pull keys out of ConfigMaps and Secrets, ask for their own pod's name, IP
or memory limit, and expect `KUBERNETES_SERVICE_HOST` to be there. The kubelet's
`makeEnvironmentVariables` (pkg/kubelet/kubelet_pods.go) defines all of it, and this module
follows it step by step:

1. `envFrom` sources first, in order (ConfigMap / Secret, with `prefix`; a missing source fails
   the container unless `optional`); later sources override earlier keys.
2. `env` in order, overriding `envFrom`: `value` is expanded with `$(NAME)` references to the
   variables defined so far and to the service variables (`$$` escapes a `$`, an unknown
   reference stays as written), `valueFrom` resolves fieldRef / resourceFieldRef /
   configMapKeyRef / secretKeyRef. A missing object or key fails the container with the
   kubelet's `CreateContainerConfigError` message unless the reference is `optional`.
3. Service link variables (`<SVC>_SERVICE_HOST`, `<SVC>_PORT_<n>_TCP`, ...): those of the
   `kubernetes` Service in `default` always (when it exists), and of every Service with a
   cluster IP in the pod's namespace when `enableServiceLinks` (default true) - never
   overriding a variable the container defines.

The container runtime adds `HOSTNAME` (the pod's hostname) in front unless the container sets
it; since our runtimes are not Docker, it is included here so shells see it.

Order: the kubelet builds a map, so it has none; ours is stable for tests and humans (HOSTNAME,
then envFrom and env in definition order, an override keeping its first position, then service
variables sorted by service).

Current Kubernetes (RelaxedEnvironmentVariableValidation, GA) injects every `envFrom` key; we
only skip keys that no environment could hold (empty, containing '=' or non-printable ASCII)
and report them through `warn("InvalidEnvironmentVariableNames", message)` with the message
older kubelets used.

The downward API helpers (`extract_field_path`, `resource_field_value`, `node_allocatable`)
are shared with downwardAPI volumes (volumes.py).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import shutil
import socket
from typing import Callable

from ..api.errors import ApiError, go_quote
from ..api.names import is_dns1123_label, is_qualified_name
from ..api.quantity import parse as parse_quantity_full
from ..client import Client
from .services import ServiceCache

CLUSTER_DOMAIN = "cluster.local"
_MASTER_SERVICE = ("default", "kubernetes")

Warn = Callable[[str, str], None]


class ContainerConfigError(Exception):
    """The kubelet's CreateContainerConfigError: the container cannot be configured (yet)."""

    reason: str = "CreateContainerConfigError"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- $(VAR) expansion (third_party/forked/golang/expansion) ----------------------------------


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand `$(NAME)` references; `$$` is a literal `$`; unknown names stay `$(NAME)`."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:
                # An unterminated reference is copied through as written.
                out.append("$(")
                i += 2
            else:
                name = text[i + 2:close]
                value = lookup(name)
                out.append(f"$({name})" if value is None else value)
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


# --- downward API: pod fields ----------------------------------------------------------------


def format_map(m: dict) -> str:
    """fieldpath.FormatMap: sorted `key="value"` lines (Go %q quoting), no trailing newline."""
    return "\n".join(f"{k}={go_quote(str(m[k]))}" for k in sorted(m))


def _split_subscript(path: str) -> tuple[str, str] | None:
    if not path.endswith("']"):
        return None
    parts = path[:-2].split("['", 1)
    if len(parts) < 2 or not parts[0]:
        return None
    return parts[0], parts[1]


def extract_field_path(pod: dict, field_path: str) -> str:
    """fieldpath.ExtractFieldPathAsString: the metadata fields a downwardAPI volume may show.

    Raises ValueError with upstream's message for anything else.
    """
    meta = pod.get("metadata") or {}
    sub = _split_subscript(field_path)
    if sub is not None:
        path, key = sub
        if path == "metadata.annotations":
            errs = is_qualified_name(key.lower())
            if errs:
                raise ValueError(f"invalid key subscript in {field_path}: {';'.join(errs)}")
            return str((meta.get("annotations") or {}).get(key, ""))
        if path == "metadata.labels":
            errs = is_qualified_name(key)
            if errs:
                raise ValueError(f"invalid key subscript in {field_path}: {';'.join(errs)}")
            return str((meta.get("labels") or {}).get(key, ""))
        raise ValueError(f"fieldPath {go_quote(field_path)} does not support subscript")
    if field_path == "metadata.annotations":
        return format_map(meta.get("annotations") or {})
    if field_path == "metadata.labels":
        return format_map(meta.get("labels") or {})
    if field_path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(meta.get(field_path.split(".", 1)[1]) or "")
    raise ValueError(f"unsupported fieldPath: {field_path}")


def _convert_field_label(api_version: str, field_path: str) -> str:
    """ConvertDownwardAPIFieldLabel for v1 pods: `spec.host` is the old name of nodeName."""
    if api_version and api_version != "v1":
        raise ValueError(f"unsupported pod version: {api_version}")
    return "spec.nodeName" if field_path == "spec.host" else field_path


def node_host_ips(node: dict | None) -> list[str]:
    """nodeutil.GetNodeHostIPs: the first InternalIP (else ExternalIP), then one of the other
    IP family if the node has one."""
    addrs = ((node or {}).get("status") or {}).get("addresses") or []
    candidates: list[str] = []
    for kind in ("InternalIP", "ExternalIP"):
        candidates += [a.get("address", "") for a in addrs if a.get("type") == kind]
    ips: list[str] = []
    for c in candidates:
        try:
            ip = ipaddress.ip_address(c)
        except ValueError:
            continue
        if not ips:
            ips.append(str(ip))
        elif ipaddress.ip_address(ips[0]).version != ip.version:
            ips.append(str(ip))
            break
    return ips


def _pod_ips(pod: dict) -> list[str]:
    status = pod.get("status") or {}
    ips = [p.get("ip", "") for p in status.get("podIPs") or [] if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def _host_ips(pod: dict, node: dict | None) -> list[str]:
    # The kubelet asks its Node object; the pod's own status is the fallback.
    ips = node_host_ips(node)
    if ips:
        return ips
    status = pod.get("status") or {}
    ips = [p.get("ip", "") for p in status.get("hostIPs") or [] if p.get("ip")]
    if not ips and status.get("hostIP"):
        ips = [status["hostIP"]]
    return ips


def pod_field_value(pod: dict, field_ref: dict, node: dict | None = None) -> str:
    """podFieldSelectorRuntimeValue: a fieldRef as an env var sees it."""
    path = _convert_field_label(field_ref.get("apiVersion") or "v1", field_ref.get("fieldPath", ""))
    spec = pod.get("spec") or {}
    if path == "spec.nodeName":
        return spec.get("nodeName") or ""
    if path == "spec.serviceAccountName":
        return spec.get("serviceAccountName") or ""
    if path in ("status.hostIP", "status.hostIPs"):
        ips = _host_ips(pod, node)
        if not ips:
            raise ValueError("host IP unknown; known addresses: []")
        return ips[0] if path == "status.hostIP" else ",".join(ips)
    if path == "status.podIP":
        ips = _pod_ips(pod)
        return ips[0] if ips else ""
    if path == "status.podIPs":
        return ",".join(_pod_ips(pod))
    if path == "spec.terminationGracePeriodSeconds":
        t = spec.get("terminationGracePeriodSeconds")
        return "30" if t is None else str(t)
    return extract_field_path(pod, path)


# --- downward API: resources -----------------------------------------------------------------


def _machine_allocatable() -> dict[str, str]:
    """What this machine offers, for when no Node object is at hand."""
    out = {"cpu": str(os.cpu_count() or 1)}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    out["memory"] = str(int(line.split()[1]) * 1024)
                    break
    except OSError:
        pass
    try:
        out["ephemeral-storage"] = str(shutil.disk_usage("/").total)
    except OSError:
        pass
    return out


def node_allocatable(node: dict | None) -> dict[str, str]:
    """The node's status.allocatable, or this machine's capacity if there is no Node."""
    alloc = ((node or {}).get("status") or {}).get("allocatable")
    return dict(alloc) if alloc else _machine_allocatable()


def _with_default_limits(container: dict, allocatable: dict[str, str]) -> dict:
    """MergeContainerResourceLimits: an unset or zero limit reads as the node's allocatable."""
    resources = dict(container.get("resources") or {})
    limits = dict(resources.get("limits") or {})
    names = ["cpu", "memory", "ephemeral-storage"] + [k for k in allocatable
                                                     if k.startswith("hugepages-")]
    for name in names:
        q = limits.get(name)
        if (q is None or parse_quantity_full(str(q)).value == 0) and name in allocatable:
            limits[name] = allocatable[name]
    resources["limits"] = limits
    return {**container, "resources": resources}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _milli(q) -> int:
    v = parse_quantity_full(str(q)).value * 1000
    i = int(v)
    return i + 1 if v > i else i


def _value(q) -> int:
    v = parse_quantity_full(str(q)).value
    i = int(v)
    return i + 1 if v > i else i


def container_resource_value(ref: dict, container: dict) -> str:
    """ExtractContainerResourceValue: the quantity divided by the divisor, rounded up."""
    divisor = str(ref.get("divisor") or "0")
    if parse_quantity_full(divisor).value == 0:
        divisor = "1"
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise ValueError(f"unsupported container resource : {resource}")
    if name not in ("cpu", "memory", "ephemeral-storage") and not name.startswith("hugepages-"):
        raise ValueError(f"unsupported container resource : {resource}")
    q = ((container.get("resources") or {}).get(kind) or {}).get(name, "0")
    if name == "cpu":
        return str(_ceil_div(_milli(q), _milli(divisor)))
    return str(_ceil_div(_value(q), _value(divisor)))


def _find_container(pod: dict, name: str) -> dict:
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if c.get("name") == name:
            return c
    raise ValueError(f"container {name} not found")


def resource_field_value(ref: dict, pod: dict, container: dict | None,
                         allocatable: dict[str, str]) -> str:
    """A resourceFieldRef with the kubelet's defaulting of unset limits to node allocatable.

    `container` is the one the env var belongs to; `containerName` in the ref wins (and is
    required in volumes).
    """
    name = ref.get("containerName")
    target = _find_container(pod, name) if name else container
    if target is None:
        raise ValueError("container  not found")
    return container_resource_value(ref, _with_default_limits(target, allocatable))


# --- hostname --------------------------------------------------------------------------------


def pod_hostname(pod: dict) -> str:
    """GeneratePodHostNameAndDomain: the hostname the pod's containers see.

    `spec.hostname` or the pod name, cut to 63 characters without a trailing '-' or '.';
    `hostname.subdomain.ns.svc.cluster.local` with setHostnameAsFQDN; the node's own name for
    hostNetwork pods.
    """
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    if spec.get("hostNetwork"):
        return socket.gethostname()
    hostname = meta.get("name", "")
    if spec.get("hostname"):
        errs = is_dns1123_label(spec["hostname"])
        if errs:
            raise ContainerConfigError(f"pod Hostname {go_quote(spec['hostname'])} is not a "
                                       f"valid DNS label: {';'.join(errs)}")
        hostname = spec["hostname"]
    if len(hostname) > 63:
        truncated = hostname[:63].rstrip("-.")
        if not truncated:
            raise ContainerConfigError(f"hostname for pod {go_quote(meta.get('name', ''))} "
                                       f"was invalid: {go_quote(truncated)}")
        hostname = truncated
    if spec.get("setHostnameAsFQDN") and spec.get("subdomain"):
        hostname = (f"{hostname}.{spec['subdomain']}.{meta.get('namespace', 'default')}"
                    f".svc.{CLUSTER_DOMAIN}")
    return hostname


# --- service links (pkg/kubelet/envvars) -----------------------------------------------------


def _env_name(s: str) -> str:
    return s.replace("-", "_").upper()


def service_env(services: list[dict]) -> list[tuple[str, str]]:
    """envvars.FromServices: the Docker-link style variables of each service with an IP."""
    out: list[tuple[str, str]] = []
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        ports = spec.get("ports") or []
        if ip in ("", "None") or not ports:
            continue
        prefix = _env_name(svc["metadata"]["name"])
        out.append((prefix + "_SERVICE_HOST", ip))
        out.append((prefix + "_SERVICE_PORT", str(ports[0].get("port"))))
        for p in ports:
            if p.get("name"):
                out.append((f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}", str(p.get("port"))))
        host = f"[{ip}]" if ":" in ip else ip
        for i, p in enumerate(ports):
            proto = (p.get("protocol") or "TCP")
            url = f"{proto.lower()}://{host}:{p.get('port')}"
            if i == 0:
                out.append((prefix + "_PORT", url))
            pp = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
            out += [(pp, url), (pp + "_PROTO", proto.lower()), (pp + "_PORT", str(p.get("port"))),
                    (pp + "_ADDR", ip)]
    return out


async def _service_env_map(client: Client, namespace: str, links: bool,
                           cache: ServiceCache | None = None) -> dict[str, str]:
    """getServiceEnvVarMap: the master `kubernetes` service always, the namespace's if links.

    From the agent's service cache once it has synced, as the kubelet's lister; else from the API."""
    cached = cache is not None and cache.synced
    chosen: dict[str, dict] = {}
    if links:
        try:
            items = cache.in_namespace(namespace) if cached else \
                (await client.list("services", namespace)).get("items") or []
        except ApiError as e:
            raise ContainerConfigError("failed to list services when setting up env vars") from e
        for s in items:
            chosen[s["metadata"]["name"]] = s
    if not (links and namespace == _MASTER_SERVICE[0]):
        master = None
        if cached:
            master = cache.get(*_MASTER_SERVICE)
        else:
            try:
                master = await client.get("services", *_MASTER_SERVICE)
            except ApiError as e:
                if e.code != 404:
                    raise ContainerConfigError(
                        "failed to list services when setting up env vars") from e
        if master is not None:
            # The master service wins over a namespace's own service of the same name.
            chosen[_MASTER_SERVICE[1]] = master
    return dict(service_env([chosen[k] for k in sorted(chosen)]))


# --- the environment -------------------------------------------------------------------------


class _Sources:
    """ConfigMaps and Secrets fetched once per call, as the kubelet's per-call maps do."""

    def __init__(self, client: Client, namespace: str):
        self.client = client
        self.namespace = namespace
        self.cache: dict[tuple[str, str], dict | None] = {}

    async def get(self, kind: str, name: str) -> dict | None:
        """The object's decoded data, or None if it does not exist; other errors raise."""
        key = (kind, name)
        if key not in self.cache:
            res = "configmaps" if kind == "configmap" else "secrets"
            try:
                obj = await self.client.get(res, self.namespace, name)
            except ApiError as e:
                if e.code != 404:
                    raise ContainerConfigError(e.message) from e
                self.cache[key] = None
            else:
                self.cache[key] = decode_data(kind, obj)
        return self.cache[key]


def decode_data(kind: str, obj: dict) -> dict[str, str]:
    """A ConfigMap's `data` or a Secret's base64 `data`, as text (bytes kept lossless)."""
    if kind == "configmap":
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}
    return {k: base64.b64decode(v or "").decode("utf-8", "surrogateescape")
            for k, v in (obj.get("data") or {}).items()}


def _not_found(kind: str, name: str) -> ContainerConfigError:
    # The kubelet's object managers name the resource in the singular.
    return ContainerConfigError(f"{kind} {go_quote(name)} not found")


def _valid_env_name(name: str) -> bool:
    return bool(name) and all(32 <= ord(c) < 127 and c != "=" for c in name)


async def _value_from(vf: dict, pod: dict, container: dict, node: dict | None,
                      allocatable: dict[str, str], sources: _Sources) -> str | None:
    """One `valueFrom`; None when an optional ConfigMap/Secret or key is missing."""
    try:
        if vf.get("fieldRef"):
            return pod_field_value(pod, vf["fieldRef"], node)
        if vf.get("resourceFieldRef"):
            return resource_field_value(vf["resourceFieldRef"], pod, container, allocatable)
    except ValueError as e:
        raise ContainerConfigError(str(e)) from None
    for kind, label, field in (("configmap", "ConfigMap", "configMapKeyRef"),
                               ("secret", "Secret", "secretKeyRef")):
        ref = vf.get(field)
        if not ref:
            continue
        name, key = ref.get("name", ""), ref.get("key", "")
        data = await sources.get(kind, name)
        if data is None:
            if ref.get("optional"):
                return None
            raise _not_found(kind, name)
        if key not in data:
            if ref.get("optional"):
                return None
            ns = sources.namespace
            raise ContainerConfigError(f"couldn't find key {key} in {label} {ns}/{name}")
        return data[key]
    return ""


async def container_env(client: Client, pod: dict, container: dict, node: dict | None = None,
                        *, warn: Warn | None = None,
                        service_cache: ServiceCache | None = None) -> list[tuple[str, str]]:
    """The container's environment as (name, value) pairs, in the kubelet's semantics.

    Raises ContainerConfigError (reason CreateContainerConfigError) when a referenced
    ConfigMap, Secret or key is missing and not optional, or a field cannot be resolved.
    `node` (the agent's Node object) supplies host IPs and allocatable for unset limits;
    `pod.status.podIP(s)` must already hold the pod's IPs. `warn(reason, message)` receives
    Warning events the kubelet would record. `service_cache`: the agent's, for the service
    variables (the API is asked when there is none).
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    ns = meta.get("namespace") or "default"
    links = spec.get("enableServiceLinks")
    services = await _service_env_map(client, ns, True if links is None else bool(links), service_cache)
    sources = _Sources(client, ns)
    env: dict[str, str] = {}

    for ef in container.get("envFrom") or []:
        prefix = ef.get("prefix") or ""
        for kind, ref in (("configmap", ef.get("configMapRef")), ("secret", ef.get("secretRef"))):
            if not ref:
                continue
            name = ref.get("name", "")
            data = await sources.get(kind, name)
            if data is None:
                if ref.get("optional"):
                    continue
                raise _not_found(kind, name)
            invalid = []
            for k, v in data.items():
                if not _valid_env_name(prefix + k):
                    invalid.append(prefix + k)
                    continue
                env[prefix + k] = v
            if invalid and warn:
                label = "configMap" if kind == "configmap" else "secret"
                warn("InvalidEnvironmentVariableNames",
                     f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {label} {ns}/{name} "
                     f"were skipped since they are considered invalid environment variable names.")

    def lookup(name: str) -> str | None:
        if name in env:
            return env[name]
        return services.get(name)

    allocatable: dict[str, str] = {}
    for ev in container.get("env") or []:
        value = ev.get("value") or ""
        if value:
            value = expand(value, lookup)
        elif ev.get("valueFrom"):
            if ev["valueFrom"].get("resourceFieldRef") and not allocatable:
                allocatable = node_allocatable(node)
            resolved = await _value_from(ev["valueFrom"], pod, container, node, allocatable,
                                         sources)
            if resolved is None:
                continue  # an optional reference to nothing defines no variable
            value = resolved
        env[ev.get("name", "")] = value

    result: list[tuple[str, str]] = []
    if "HOSTNAME" not in env:
        result.append(("HOSTNAME", pod_hostname(pod)))
    result += list(env.items())
    result += [(k, v) for k, v in services.items() if k not in env]
    return result
