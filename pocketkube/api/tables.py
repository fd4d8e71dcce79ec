"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for and prints.

kubectl does not know how to lay out a Pod or a Deployment; it sends `Accept: ...;as=Table`
and prints whatever columns the server returns. So the headers and every cell string here
(READY "1/2", STATUS "Init:0/1", RESTARTS "3 (5m ago)", AGE "2d3h", ...) are what users see,
and must match upstream's printers (kubernetes `pkg/printers/internalversion/printers.go`,
apimachinery `util/duration`) or scripts and eyes trained on a real cluster notice.

Like the real apiserver, every row carries the `-o wide` cells too; kubectl hides columns with
priority > 0 unless asked. Objects are the stored JSON dicts, read as-is: no copies, and
defaults that upstream's defaulting would always have filled in are assumed when absent.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable

from .selectors import SelectorError, format_label_selector, selector_string

if TYPE_CHECKING:
    from pocketkube.api.resources import Resource

__all__ = ["to_table", "human_duration", "translate_timestamp_since", "columns_for"]

_E: dict = {}  # shared read-only default for missing sub-objects; never mutated
_UTC = timezone.utc
_GO_ZERO = datetime(1, 1, 1, tzinfo=_UTC)

# --------------------------------------------------------------------------------------------
# Durations and timestamps


def human_duration(d: timedelta) -> str:
    """apimachinery `duration.HumanDuration`: ~2-3 significant figures, e.g. 2m3s, 3h4m, 2d3h."""
    us = (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    # Go truncates toward zero (int(d.Seconds())), Python's // floors: keep the sign apart.
    seconds = us // 1_000_000 if us >= 0 else -((-us) // 1_000_000)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        # Up to 2s of clock skew between writer and reader still reads as "now".
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _parse_time(value: Any) -> datetime | None:
    """metav1.Time / MicroTime text to an aware datetime; None for absent, zero or garbage."""
    if not value or not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_UTC)
    if t == _GO_ZERO:
        return None
    return t


def translate_timestamp_since(value: Any, now: datetime) -> str:
    """printers.go `translateTimestampSince`: age of a timestamp, "<unknown>" when unset."""
    t = _parse_time(value)
    if t is None:
        return "<unknown>"
    return human_duration(now - t)


_since = translate_timestamp_since

# --------------------------------------------------------------------------------------------
# Column definitions
#
# Upstream fills most descriptions from the API types' Go doc comments (SwaggerDoc). The same
# text is in the OpenAPI schema we ship, so a description may name (definition, field) and is
# looked up once, on first use; without the schema it degrades to "" (kubectl never shows it).

def _doc(definition: str, field: str) -> tuple[str, str]:
    """A description to be read from the schema: (definition name, property)."""
    return (definition, field)


_META_NAME = _doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "name")
_META_CREATED = _doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "creationTimestamp")


def _col(name: str, type_: str, description: Any, priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": description,
            "priority": priority}


def _name_col(priority: int = 0) -> dict:
    return _col("Name", "string", _META_NAME, priority, "name")


def _age_col() -> dict:
    return _col("Age", "string", _META_CREATED)


_CONTAINERS_DOC = "Names of each container in the template."
_IMAGES_DOC = "Images referenced by each container in the template."


def _resolve_descriptions(columns: list[dict]) -> list[dict]:
    defs: dict | None
    try:
        from pocketkube.api import schema

        defs = schema.definitions()
    except Exception:  # the schema package is optional for printing
        defs = None
    out = []
    for c in columns:
        desc = c["description"]
        if isinstance(desc, tuple):
            text = ""
            if defs is not None:
                prop = ((defs.get(desc[0]) or _E).get("properties") or _E).get(desc[1]) or _E
                text = prop.get("description", "")
            c = dict(c, description=text)
        out.append(c)
    return out


def _core(kind: str) -> str:
    return "io.k8s.api.core.v1." + kind


def _apps(kind: str) -> str:
    return "io.k8s.api.apps.v1." + kind


def _batch(kind: str) -> str:
    return "io.k8s.api.batch.v1." + kind


# --------------------------------------------------------------------------------------------
# Shared cell helpers


def _layout_containers(pod_spec: dict) -> tuple[str, str]:
    containers = pod_spec.get("containers") or ()
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def _format_labels(labels: dict | None) -> str:
    """labels.FormatLabels: sorted "k=v" pairs (sorted as whole strings, like Set.String)."""
    if not labels:
        return "<none>"
    return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))


def _condition_true(conditions: list | None, type_: str) -> bool:
    """Status of the first condition of that type (later duplicates are ignored upstream)."""
    for c in conditions or ():
        if c.get("type") == type_:
            return c.get("status") == "True"
    return False


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# --------------------------------------------------------------------------------------------
# Pods

_POD_SUCCEEDED_CONDITIONS = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                              "message": "The pod has completed successfully."}]
_POD_FAILED_CONDITIONS = [{"type": "Completed", "status": "True", "reason": "Failed",
                           "message": "The pod failed."}]


def _later(current: datetime | None, terminated: dict | None) -> datetime | None:
    if terminated is None:
        return current
    t = _parse_time(terminated.get("finishedAt"))
    if t is not None and (current is None or current < t):
        return t
    return current


def _pod_cells(pod: dict, now: datetime) -> list:
    meta = pod.get("metadata") or _E
    spec = pod.get("spec") or _E
    status = pod.get("status") or _E
    init_specs = spec.get("initContainers") or ()
    conditions = status.get("conditions") or ()

    restarts = 0
    sidecar_restarts = 0
    ready = 0
    total = len(spec.get("containers") or ())
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = status.get("phase") or "Pending"
    reason = status.get("reason") or phase
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    # Sidecars (init containers with restartPolicy Always) count as regular containers.
    sidecars = set()
    for c in init_specs:
        if c.get("restartPolicy") == "Always":
            sidecars.add(c.get("name"))
            total += 1

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or ()):
        rc = _int(cs.get("restartCount"))
        restarts += rc
        last_term = (cs.get("lastState") or _E).get("terminated")
        last_restart = _later(last_restart, last_term)
        is_sidecar = cs.get("name") in sidecars
        if is_sidecar:
            sidecar_restarts += rc
            last_sidecar_restart = _later(last_sidecar_restart, last_term)
        state = cs.get("state") or _E
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if terminated is not None and _int(terminated.get("exitCode")) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif _int(terminated.get("signal")) != 0:
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        # Only sidecar restarts carry over once regular containers are up.
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        # Walk backwards so the first container's state wins, as upstream does.
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += _int(cs.get("restartCount"))
            last_restart = _later(last_restart, (cs.get("lastState") or _E).get("terminated"))
            state = cs.get("state") or _E
            waiting = state.get("waiting")
            terminated = state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if _int(terminated.get("signal")) != 0:
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{_int(terminated.get('exitCode'))}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        # A finished container next to a still-running one does not make the pod "Completed".
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if meta.get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_str = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_str = f"{restarts} ({human_duration(now - last_restart)} ago)"

    pod_ip = ""
    ips = status.get("podIPs")
    if ips:
        pod_ip = ips[0].get("ip", "")
    elif status.get("podIP"):
        # v1 -> internal conversion fills podIPs from a lone podIP.
        pod_ip = status["podIP"]

    gates = spec.get("readinessGates")
    readiness = "<none>"
    if gates:
        true_count = 0
        for g in gates:
            ctype = g.get("conditionType")
            for c in conditions:
                if c.get("type") == ctype:
                    if c.get("status") == "True":
                        true_count += 1
                    break
        readiness = f"{true_count}/{len(gates)}"

    return [
        meta.get("name", ""),
        f"{ready}/{total}",
        reason,
        restarts_str,
        _since(meta.get("creationTimestamp"), now),
        pod_ip or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        readiness,
    ]


def _pod_conditions(pod: dict) -> list | None:
    phase = (pod.get("status") or _E).get("phase")
    if phase == "Succeeded":
        return _POD_SUCCEEDED_CONDITIONS
    if phase == "Failed":
        return _POD_FAILED_CONDITIONS
    return None


_POD_COLUMNS = [
    _name_col(),
    _col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "string", "The aggregate status of the containers in this pod."),
    _col("Restarts", "string", "The number of times the containers in this pod have been "
         "restarted and when the last container in this pod has restarted."),
    _age_col(),
    _col("IP", "string", _doc(_core("PodStatus"), "podIP"), 1),
    _col("Node", "string", _doc(_core("PodSpec"), "nodeName"), 1),
    _col("Nominated Node", "string", _doc(_core("PodStatus"), "nominatedNodeName"), 1),
    _col("Readiness Gates", "string", _doc(_core("PodSpec"), "readinessGates"), 1),
]

# --------------------------------------------------------------------------------------------
# Nodes and namespaces

_ROLE_PREFIX = "node-role.kubernetes.io/"
_ROLE_LABEL = "kubernetes.io/role"


def _node_cells(node: dict, now: datetime) -> list:
    meta = node.get("metadata") or _E
    status = node.get("status") or _E
    info = status.get("nodeInfo") or _E

    ready = None
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready":
            ready = c  # upstream builds a map, so the last Ready condition wins
    if ready is None:
        parts = ["Unknown"]
    else:
        parts = ["Ready" if ready.get("status") == "True" else "NotReady"]
    if (node.get("spec") or _E).get("unschedulable"):
        parts.append("SchedulingDisabled")

    roles = set()
    for k, v in (meta.get("labels") or _E).items():
        if k.startswith(_ROLE_PREFIX):
            if len(k) > len(_ROLE_PREFIX):
                roles.add(k[len(_ROLE_PREFIX):])
        elif k == _ROLE_LABEL and v:
            roles.add(v)

    internal_ip = external_ip = "<none>"
    for a in status.get("addresses") or ():
        t = a.get("type")
        if t == "InternalIP" and internal_ip == "<none>":
            internal_ip = a.get("address", "")
        elif t == "ExternalIP" and external_ip == "<none>":
            external_ip = a.get("address", "")

    return [
        meta.get("name", ""),
        ",".join(parts),
        ",".join(sorted(roles)) or "<none>",
        _since(meta.get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        internal_ip,
        external_ip,
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


_NODE_COLUMNS = [
    _name_col(),
    _col("Status", "string", "The status of the node"),
    _col("Roles", "string", "The roles of the node"),
    _age_col(),
    _col("Version", "string", _doc(_core("NodeSystemInfo"), "kubeletVersion")),
    _col("Internal-IP", "string", _doc(_core("NodeStatus"), "addresses"), 1),
    _col("External-IP", "string", _doc(_core("NodeStatus"), "addresses"), 1),
    _col("OS-Image", "string", _doc(_core("NodeSystemInfo"), "osImage"), 1),
    _col("Kernel-Version", "string", _doc(_core("NodeSystemInfo"), "kernelVersion"), 1),
    _col("Container-Runtime", "string",
         _doc(_core("NodeSystemInfo"), "containerRuntimeVersion"), 1),
]


def _namespace_cells(ns: dict, now: datetime) -> list:
    meta = ns.get("metadata") or _E
    # The namespace strategy always sets a phase; "Active" is what it starts as.
    phase = (ns.get("status") or _E).get("phase") or "Active"
    return [meta.get("name", ""), phase, _since(meta.get("creationTimestamp"), now)]


_NAMESPACE_COLUMNS = [
    _name_col(),
    _col("Status", "string", "The status of the namespace"),
    _age_col(),
]

# --------------------------------------------------------------------------------------------
# Events (core/v1 and events.k8s.io/v1 print the same; the latter is converted upstream)


def _event_cells_from(obj: dict, now: datetime, involved: dict, source: dict, message: str,
                      first_ts: Any, last_ts: Any, count: int, reporting_controller: str) -> list:
    meta = obj.get("metadata") or _E
    if _parse_time(first_ts) is not None:
        first = _since(first_ts, now)
    else:
        first = _since(obj.get("eventTime"), now)
    last = _since(last_ts, now) if _parse_time(last_ts) is not None else first
    series = obj.get("series")
    if series is not None:
        last = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events have no count in the new API

    kind = (involved.get("kind") or "").lower()
    name = involved.get("name") or ""
    target = f"{kind}/{name}" if name else kind

    component = source.get("component") or reporting_controller or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    src = f"{component}, {instance}" if instance else component

    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        src,
        (message or "").strip(),
        first,
        count,
        meta.get("name", ""),
    ]


def _event_cells(ev: dict, now: datetime) -> list:
    return _event_cells_from(ev, now, ev.get("involvedObject") or _E, ev.get("source") or _E,
                             ev.get("message", ""), ev.get("firstTimestamp"),
                             ev.get("lastTimestamp"), _int(ev.get("count")),
                             ev.get("reportingComponent", ""))


def _events_v1_cells(ev: dict, now: datetime) -> list:
    return _event_cells_from(ev, now, ev.get("regarding") or _E, ev.get("deprecatedSource") or _E,
                             ev.get("note", ""), ev.get("deprecatedFirstTimestamp"),
                             ev.get("deprecatedLastTimestamp"), _int(ev.get("deprecatedCount")),
                             ev.get("reportingController", ""))


_EVENT_COLUMNS = [
    _col("Last Seen", "string", _doc(_core("Event"), "lastTimestamp")),
    _col("Type", "string", _doc(_core("Event"), "type")),
    _col("Reason", "string", _doc(_core("Event"), "reason")),
    _col("Object", "string", _doc(_core("Event"), "involvedObject")),
    _col("Subobject", "string", _doc(_core("ObjectReference"), "fieldPath"), 1),
    _col("Source", "string", _doc(_core("Event"), "source"), 1),
    _col("Message", "string", _doc(_core("Event"), "message")),
    _col("First Seen", "string", _doc(_core("Event"), "firstTimestamp"), 1),
    _col("Count", "string", _doc(_core("Event"), "count"), 1),
    _name_col(priority=1),
]

# --------------------------------------------------------------------------------------------
# Storage

_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))
_BETA_SC_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def _access_modes(modes: list | None) -> str:
    """helper.GetAccessModesAsString: fixed order RWO,ROX,RWX,RWOP whatever the input order."""
    if not modes:
        return ""
    return ",".join(short for full, short in _ACCESS_MODES if full in modes)


def _pv_cells(pv: dict, now: datetime) -> list:
    meta = pv.get("metadata") or _E
    spec = pv.get("spec") or _E
    status = pv.get("status") or _E
    claim = spec.get("claimRef")
    claim_str = f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else ""
    phase = "Terminating" if meta.get("deletionTimestamp") else (status.get("phase") or "Pending")
    annotations = meta.get("annotations") or _E
    if _BETA_SC_ANNOTATION in annotations:
        sc = annotations[_BETA_SC_ANNOTATION]
    else:
        sc = spec.get("storageClassName") or ""
    vac = spec.get("volumeAttributesClassName")
    return [
        meta.get("name", ""),
        str((spec.get("capacity") or _E).get("storage", "0")),
        _access_modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy") or "Retain",
        phase,
        claim_str,
        sc,
        vac if vac is not None else "<unset>",
        status.get("reason", ""),
        _since(meta.get("creationTimestamp"), now),
        spec.get("volumeMode") or "Filesystem",
    ]


_PV_COLUMNS = [
    _name_col(),
    _col("Capacity", "string", _doc(_core("PersistentVolumeSpec"), "capacity")),
    _col("Access Modes", "string", _doc(_core("PersistentVolumeSpec"), "accessModes")),
    _col("Reclaim Policy", "string",
         _doc(_core("PersistentVolumeSpec"), "persistentVolumeReclaimPolicy")),
    _col("Status", "string", _doc(_core("PersistentVolumeStatus"), "phase")),
    _col("Claim", "string", _doc(_core("PersistentVolumeSpec"), "claimRef")),
    _col("StorageClass", "string", "StorageClass of the pv"),
    _col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
    _col("Reason", "string", _doc(_core("PersistentVolumeStatus"), "reason")),
    _age_col(),
    _col("VolumeMode", "string", _doc(_core("PersistentVolumeSpec"), "volumeMode"), 1),
]


def _pvc_cells(pvc: dict, now: datetime) -> list:
    meta = pvc.get("metadata") or _E
    spec = pvc.get("spec") or _E
    status = pvc.get("status") or _E
    phase = "Terminating" if meta.get("deletionTimestamp") else (status.get("phase") or "Pending")
    capacity = access = ""
    # Capacity and modes are only meaningful once the claim is bound to a volume.
    if spec.get("volumeName"):
        access = _access_modes(status.get("accessModes"))
        capacity = str((status.get("capacity") or _E).get("storage", "0"))
    annotations = meta.get("annotations") or _E
    if _BETA_SC_ANNOTATION in annotations:
        sc = annotations[_BETA_SC_ANNOTATION]
    else:
        sc = spec.get("storageClassName") or ""
    vac = spec.get("volumeAttributesClassName")
    return [
        meta.get("name", ""),
        phase,
        spec.get("volumeName", ""),
        capacity,
        access,
        sc,
        vac if vac is not None else "<unset>",
        _since(meta.get("creationTimestamp"), now),
        spec.get("volumeMode") or "Filesystem",
    ]


_PVC_COLUMNS = [
    _name_col(),
    _col("Status", "string", _doc(_core("PersistentVolumeClaimStatus"), "phase")),
    _col("Volume", "string", _doc(_core("PersistentVolumeClaimSpec"), "volumeName")),
    _col("Capacity", "string", _doc(_core("PersistentVolumeClaimStatus"), "capacity")),
    _col("Access Modes", "string", _doc(_core("PersistentVolumeClaimStatus"), "accessModes")),
    _col("StorageClass", "string", "StorageClass of the pvc"),
    _col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
    _age_col(),
    _col("VolumeMode", "string", _doc(_core("PersistentVolumeClaimSpec"), "volumeMode"), 1),
]

_DEFAULT_SC = ("storageclass.kubernetes.io/is-default-class",
               "storageclass.beta.kubernetes.io/is-default-class")


def _storage_class_cells(sc: dict, now: datetime) -> list:
    meta = sc.get("metadata") or _E
    annotations = meta.get("annotations") or _E
    name = meta.get("name", "")
    if annotations.get(_DEFAULT_SC[0]) == "true" or annotations.get(_DEFAULT_SC[1]) == "true":
        name += " (default)"
    return [
        name,
        sc.get("provisioner", ""),
        sc.get("reclaimPolicy") or "Delete",
        sc.get("volumeBindingMode") or "Immediate",
        bool(sc.get("allowVolumeExpansion")),
        _since(meta.get("creationTimestamp"), now),
    ]


_SC = "io.k8s.api.storage.v1.StorageClass"
_STORAGE_CLASS_COLUMNS = [
    _name_col(),
    _col("Provisioner", "string", _doc(_SC, "provisioner")),
    _col("ReclaimPolicy", "string", _doc(_SC, "reclaimPolicy")),
    _col("VolumeBindingMode", "string", _doc(_SC, "volumeBindingMode")),
    _col("AllowVolumeExpansion", "string", _doc(_SC, "allowVolumeExpansion")),
    _age_col(),
]

# --------------------------------------------------------------------------------------------
# Config and identity


def _configmap_cells(cm: dict, now: datetime) -> list:
    meta = cm.get("metadata") or _E
    return [meta.get("name", ""), len(cm.get("data") or _E) + len(cm.get("binaryData") or _E),
            _since(meta.get("creationTimestamp"), now)]


_CONFIGMAP_COLUMNS = [_name_col(), _col("Data", "string", _doc(_core("ConfigMap"), "data")),
                      _age_col()]


def _secret_cells(secret: dict, now: datetime) -> list:
    meta = secret.get("metadata") or _E
    return [meta.get("name", ""), secret.get("type") or "Opaque", len(secret.get("data") or _E),
            _since(meta.get("creationTimestamp"), now)]


_SECRET_COLUMNS = [
    _name_col(),
    _col("Type", "string", _doc(_core("Secret"), "type")),
    _col("Data", "string", _doc(_core("Secret"), "data")),
    _age_col(),
]


def _service_account_cells(sa: dict, now: datetime) -> list:
    meta = sa.get("metadata") or _E
    return [meta.get("name", ""), len(sa.get("secrets") or ()),
            _since(meta.get("creationTimestamp"), now)]


_SERVICE_ACCOUNT_COLUMNS = [
    _name_col(),
    _col("Secrets", "string", _doc(_core("ServiceAccount"), "secrets")),
    _age_col(),
]


def _lease_cells(lease: dict, now: datetime) -> list:
    meta = lease.get("metadata") or _E
    return [meta.get("name", ""), (lease.get("spec") or _E).get("holderIdentity") or "",
            _since(meta.get("creationTimestamp"), now)]


_LEASE_COLUMNS = [
    _name_col(),
    _col("Holder", "string", _doc("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")),
    _age_col(),
]

# --------------------------------------------------------------------------------------------
# Services


def _service_external_ip(spec: dict, status: dict, svc_type: str) -> str:
    external_ips = spec.get("externalIPs") or ()
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if svc_type == "LoadBalancer":
        found = set()
        for ing in (status.get("loadBalancer") or _E).get("ingress") or ():
            if ing.get("ip"):
                found.add(ing["ip"])
            elif ing.get("hostname"):
                found.add(ing["hostname"])
        # The server prints wide cells, so the 16-character clipping never applies here.
        lb = sorted(found)
        if external_ips:
            return ",".join(lb + list(external_ips))
        return ",".join(lb) if lb else "<pending>"
    if svc_type == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _service_cells(svc: dict, now: datetime) -> list:
    meta = svc.get("metadata") or _E
    spec = svc.get("spec") or _E
    status = svc.get("status") or _E
    svc_type = spec.get("type") or "ClusterIP"
    cluster_ips = spec.get("clusterIPs")
    if cluster_ips:
        cluster_ip = cluster_ips[0]
    else:
        cluster_ip = spec.get("clusterIP") or "<none>"
    pieces = []
    for p in spec.get("ports") or ():
        proto = p.get("protocol") or "TCP"
        node_port = _int(p.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{_int(p.get('port'))}:{node_port}/{proto}")
        else:
            pieces.append(f"{_int(p.get('port'))}/{proto}")
    return [
        meta.get("name", ""),
        svc_type,
        cluster_ip,
        _service_external_ip(spec, status, svc_type),
        ",".join(pieces) or "<none>",
        _since(meta.get("creationTimestamp"), now),
        _format_labels(spec.get("selector")),
    ]


_SERVICE_COLUMNS = [
    _name_col(),
    _col("Type", "string", _doc(_core("ServiceSpec"), "type")),
    _col("Cluster-IP", "string", _doc(_core("ServiceSpec"), "clusterIP")),
    _col("External-IP", "string", _doc(_core("ServiceSpec"), "externalIPs")),
    _col("Port(s)", "string", _doc(_core("ServiceSpec"), "ports")),
    _age_col(),
    _col("Selector", "string", _doc(_core("ServiceSpec"), "selector"), 1),
]

# --------------------------------------------------------------------------------------------
# Workloads


def _template_spec(obj_spec: dict) -> dict:
    return ((obj_spec.get("template") or _E).get("spec")) or _E


def _replicas(spec: dict) -> int:
    # Defaulting sets replicas to 1 when unset; an explicit 0 stays 0.
    r = spec.get("replicas")
    return 1 if r is None else _int(r)


def _deployment_cells(d: dict, now: datetime) -> list:
    meta = d.get("metadata") or _E
    spec = d.get("spec") or _E
    status = d.get("status") or _E
    names, images = _layout_containers(_template_spec(spec))
    try:
        selector = selector_string(spec.get("selector"))
    except SelectorError:
        selector = "<invalid>"
    return [
        meta.get("name", ""),
        f"{_int(status.get('readyReplicas'))}/{_replicas(spec)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _since(meta.get("creationTimestamp"), now),
        names,
        images,
        selector,
    ]


_DEPLOYMENT_COLUMNS = [
    _name_col(),
    _col("Ready", "string", "Number of the pod with ready state"),
    _col("Up-to-date", "string", _doc(_apps("DeploymentStatus"), "updatedReplicas")),
    _col("Available", "string", _doc(_apps("DeploymentStatus"), "availableReplicas")),
    _age_col(),
    _col("Containers", "string", _CONTAINERS_DOC, 1),
    _col("Images", "string", _IMAGES_DOC, 1),
    _col("Selector", "string", _doc(_apps("DeploymentSpec"), "selector"), 1),
]


def _replicaset_cells(rs: dict, now: datetime) -> list:
    meta = rs.get("metadata") or _E
    spec = rs.get("spec") or _E
    status = rs.get("status") or _E
    names, images = _layout_containers(_template_spec(spec))
    return [
        meta.get("name", ""),
        _replicas(spec),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


_REPLICASET_COLUMNS = [
    _name_col(),
    _col("Desired", "integer", _doc(_apps("ReplicaSetSpec"), "replicas")),
    _col("Current", "integer", _doc(_apps("ReplicaSetStatus"), "replicas")),
    _col("Ready", "integer", _doc(_apps("ReplicaSetStatus"), "readyReplicas")),
    _age_col(),
    _col("Containers", "string", _CONTAINERS_DOC, 1),
    _col("Images", "string", _IMAGES_DOC, 1),
    _col("Selector", "string", _doc(_apps("ReplicaSetSpec"), "selector"), 1),
]


def _statefulset_cells(sts: dict, now: datetime) -> list:
    meta = sts.get("metadata") or _E
    spec = sts.get("spec") or _E
    status = sts.get("status") or _E
    names, images = _layout_containers(_template_spec(spec))
    return [
        meta.get("name", ""),
        f"{_int(status.get('readyReplicas'))}/{_replicas(spec)}",
        _since(meta.get("creationTimestamp"), now),
        names,
        images,
    ]


_STATEFULSET_COLUMNS = [
    _name_col(),
    _col("Ready", "string", "Number of the pod with ready state"),
    _age_col(),
    _col("Containers", "string", _CONTAINERS_DOC, 1),
    _col("Images", "string", _IMAGES_DOC, 1),
]


def _daemonset_cells(ds: dict, now: datetime) -> list:
    meta = ds.get("metadata") or _E
    spec = ds.get("spec") or _E
    status = ds.get("status") or _E
    pod_spec = _template_spec(spec)
    names, images = _layout_containers(pod_spec)
    return [
        meta.get("name", ""),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        _format_labels(pod_spec.get("nodeSelector")),
        _since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


_DAEMONSET_COLUMNS = [
    _name_col(),
    _col("Desired", "integer", _doc(_apps("DaemonSetStatus"), "desiredNumberScheduled")),
    _col("Current", "integer", _doc(_apps("DaemonSetStatus"), "currentNumberScheduled")),
    _col("Ready", "integer", _doc(_apps("DaemonSetStatus"), "numberReady")),
    _col("Up-to-date", "integer", _doc(_apps("DaemonSetStatus"), "updatedNumberScheduled")),
    _col("Available", "integer", _doc(_apps("DaemonSetStatus"), "numberAvailable")),
    _col("Node Selector", "string", _doc(_core("PodSpec"), "nodeSelector")),
    _age_col(),
    _col("Containers", "string", _CONTAINERS_DOC, 1),
    _col("Images", "string", _IMAGES_DOC, 1),
    _col("Selector", "string", _doc(_apps("DaemonSetSpec"), "selector"), 1),
]


def _controller_revision_cells(cr: dict, now: datetime) -> list:
    meta = cr.get("metadata") or _E
    controller = "<none>"
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            api_version = ref.get("apiVersion", "")
            group = api_version.split("/", 1)[0] if "/" in api_version else ""
            kind = ref.get("kind", "")
            name = ref.get("name", "")
            if not group and not kind:
                controller = name
            else:
                group_kind = f"{kind}.{group}" if group else kind
                controller = f"{group_kind.lower()}/{name}"
            break
    return [meta.get("name", ""), controller, _int(cr.get("revision")),
            _since(meta.get("creationTimestamp"), now)]


_CONTROLLER_REVISION_COLUMNS = [
    _name_col(),
    _col("Controller", "string", "Controller of the object"),
    _col("Revision", "string", _doc(_apps("ControllerRevision"), "revision")),
    _age_col(),
]


def _job_cells(job: dict, now: datetime) -> list:
    meta = job.get("metadata") or _E
    spec = job.get("spec") or _E
    status = job.get("status") or _E
    succeeded = _int(status.get("succeeded"))
    completions = spec.get("completions")
    if completions is not None:
        done = f"{succeeded}/{_int(completions)}"
    else:
        parallelism = _int(spec.get("parallelism"))
        done = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"

    took = ""
    start = _parse_time(status.get("startTime"))
    if start is not None:
        end = _parse_time(status.get("completionTime"))
        took = human_duration((end or now) - start)

    conditions = status.get("conditions")
    if _condition_true(conditions, "Complete"):
        state = "Complete"
    elif _condition_true(conditions, "Failed"):
        state = "Failed"
    elif meta.get("deletionTimestamp"):
        state = "Terminating"
    elif _condition_true(conditions, "Suspended"):
        state = "Suspended"
    elif _condition_true(conditions, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"

    names, images = _layout_containers(_template_spec(spec))
    return [meta.get("name", ""), state, done, took, _since(meta.get("creationTimestamp"), now),
            names, images, format_label_selector(spec.get("selector"))]


_JOB_COLUMNS = [
    _name_col(),
    _col("Status", "string", "Status of the job."),
    _col("Completions", "string", _doc(_batch("JobStatus"), "succeeded")),
    _col("Duration", "string", "Time required to complete the job."),
    _age_col(),
    _col("Containers", "string", _CONTAINERS_DOC, 1),
    _col("Images", "string", _IMAGES_DOC, 1),
    _col("Selector", "string", _doc(_batch("JobSpec"), "selector"), 1),
]


def _cronjob_cells(cj: dict, now: datetime) -> list:
    meta = cj.get("metadata") or _E
    spec = cj.get("spec") or _E
    status = cj.get("status") or _E
    last = status.get("lastScheduleTime")
    job_spec = (spec.get("jobTemplate") or _E).get("spec") or _E
    names, images = _layout_containers(_template_spec(job_spec))
    tz = spec.get("timeZone")
    return [
        meta.get("name", ""),
        spec.get("schedule", ""),
        tz if tz is not None else "<none>",
        "True" if spec.get("suspend") else "False",  # defaulting turns an unset suspend into false
        len(status.get("active") or ()),
        _since(last, now) if last is not None else "<none>",
        _since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(job_spec.get("selector")),
    ]


_CRONJOB_COLUMNS = [
    _name_col(),
    _col("Schedule", "string", _doc(_batch("CronJobSpec"), "schedule")),
    _col("Timezone", "string", _doc(_batch("CronJobSpec"), "timeZone")),
    _col("Suspend", "boolean", _doc(_batch("CronJobSpec"), "suspend")),
    _col("Active", "integer", _doc(_batch("CronJobStatus"), "active")),
    _col("Last Schedule", "string", _doc(_batch("CronJobStatus"), "lastScheduleTime")),
    _age_col(),
    _col("Containers", "string", _CONTAINERS_DOC, 1),
    _col("Images", "string", _IMAGES_DOC, 1),
    _col("Selector", "string", _doc(_batch("JobSpec"), "selector"), 1),
]

# --------------------------------------------------------------------------------------------
# Fallback for kinds without a printer (apiserver `rest.NewDefaultTableConvertor`)


def _default_cells(obj: dict, now: datetime) -> list:
    meta = obj.get("metadata") or _E
    t = _parse_time(meta.get("creationTimestamp"))
    # Go formats the zero time too, rather than leaving the cell empty.
    created = t.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else "0001-01-01T00:00:00Z"
    return [meta.get("name", ""), created]


_DEFAULT_COLUMNS = [
    _name_col(),
    _col("Created At", "date", _META_CREATED),
]

# --------------------------------------------------------------------------------------------
# Registry

_Cells = Callable[[dict, datetime], list]
_Conditions = Callable[[dict], "list | None"]

_PRINTERS: dict[tuple[str, str], tuple[list[dict], _Cells, _Conditions | None]] = {
    ("", "Pod"): (_POD_COLUMNS, _pod_cells, _pod_conditions),
    ("", "Node"): (_NODE_COLUMNS, _node_cells, None),
    ("", "Namespace"): (_NAMESPACE_COLUMNS, _namespace_cells, None),
    ("", "Event"): (_EVENT_COLUMNS, _event_cells, None),
    ("events.k8s.io", "Event"): (_EVENT_COLUMNS, _events_v1_cells, None),
    ("", "PersistentVolume"): (_PV_COLUMNS, _pv_cells, None),
    ("", "PersistentVolumeClaim"): (_PVC_COLUMNS, _pvc_cells, None),
    ("", "ConfigMap"): (_CONFIGMAP_COLUMNS, _configmap_cells, None),
    ("", "Secret"): (_SECRET_COLUMNS, _secret_cells, None),
    ("", "Service"): (_SERVICE_COLUMNS, _service_cells, None),
    ("", "ServiceAccount"): (_SERVICE_ACCOUNT_COLUMNS, _service_account_cells, None),
    ("apps", "Deployment"): (_DEPLOYMENT_COLUMNS, _deployment_cells, None),
    ("apps", "ReplicaSet"): (_REPLICASET_COLUMNS, _replicaset_cells, None),
    ("apps", "StatefulSet"): (_STATEFULSET_COLUMNS, _statefulset_cells, None),
    ("apps", "DaemonSet"): (_DAEMONSET_COLUMNS, _daemonset_cells, None),
    ("apps", "ControllerRevision"):
        (_CONTROLLER_REVISION_COLUMNS, _controller_revision_cells, None),
    ("batch", "Job"): (_JOB_COLUMNS, _job_cells, None),
    ("batch", "CronJob"): (_CRONJOB_COLUMNS, _cronjob_cells, None),
    ("coordination.k8s.io", "Lease"): (_LEASE_COLUMNS, _lease_cells, None),
    ("storage.k8s.io", "StorageClass"): (_STORAGE_CLASS_COLUMNS, _storage_class_cells, None),
}

_RESOLVED: dict[tuple[str, str], list[dict]] = {}


def _printer(group: str, kind: str) -> tuple[list[dict], _Cells, _Conditions | None]:
    entry = _PRINTERS.get((group, kind))
    if entry is None:
        return _DEFAULT_COLUMNS, _default_cells, None
    return entry


def columns_for(group: str, kind: str) -> list[dict]:
    """Column definitions for a kind (descriptions resolved); a fresh list of fresh dicts."""
    key = (group, kind) if (group, kind) in _PRINTERS else ("*", "*")
    cols = _RESOLVED.get(key)
    if cols is None:
        cols = _resolve_descriptions(_printer(group, kind)[0])
        _RESOLVED[key] = cols
    return [dict(c) for c in cols]


def to_table(resource: "Resource", objects: list[dict], include_object: str = "Metadata",
             now: "datetime | None" = None) -> dict:
    """Render objects of one resource as a meta.k8s.io/v1 Table.

    include_object is the `includeObject` query parameter: "Metadata" (the default) attaches a
    PartialObjectMetadata to each row, "Object" the whole object, "None" nothing. The caller
    fills `metadata` (resourceVersion, continue).
    """
    if now is None:
        now = datetime.now(_UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=_UTC)
    _, cells_fn, conditions_fn = _printer(resource.group, resource.kind)

    rows = []
    append = rows.append
    for obj in objects:
        row: dict[str, Any] = {"cells": cells_fn(obj, now)}
        if conditions_fn is not None:
            conds = conditions_fn(obj)
            if conds:
                row["conditions"] = [dict(c) for c in conds]
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj.get("metadata") or {}}
        append(row)

    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns_for(resource.group, resource.kind),
        "rows": rows,
    }
