"""Defaulting of objects as kube-apiserver does it before validation and storage.

Clients read back what the apiserver stored, defaults included (`kubectl get -o yaml` shows
`imagePullPolicy`, `terminationMessagePath`, a Deployment's `strategy`...), and controllers
rely on those fields being set. This module reproduces, for the kinds pocketkube serves:

* the `SetDefaults_*` functions of `pkg/apis/{core,apps,batch,storage}/v1/defaults.go` and
  the declarative `+default=` markers of `k8s.io/api` (ports' protocol, grpc service, ...);
* what decoding does on the way: `stringData` folded into a Secret's `data`,
  `serviceAccount` mirrored from `serviceAccountName`, quantities spelled as the apiserver
  stores them (`0.5` -> `500m`, `1024Mi` -> `1Gi`, but `1.125` kept as written; resource lists
  rounded up to milli units);
* create-time rules from the registry strategies and default admission plugins that give
  new objects their shape: a Namespace's `kubernetes` finalizer, a Job's generated selector
  and labels, a Pod's priority.

`apply_defaults` mutates in place and only fills what is missing, so running it again on an
already defaulted object changes nothing. Create-only steps run when `create` is true; when
the caller does not say, an object without `metadata.resourceVersion` is taken as a create.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

from .quantity import canonical, int64_form

if TYPE_CHECKING:
    from .resources import Resource

# --- helpers ---------------------------------------------------------------------------------


def _d(parent: dict, key: str) -> dict:
    """parent[key] as a dict, creating it when missing or null."""
    v = parent.get(key)
    if not isinstance(v, dict):
        v = {}
        parent[key] = v
    return v


def _dicts(v: Any) -> list[dict]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


@lru_cache(maxsize=4096)
def _stored_quantity(s: str, milli: bool = False) -> str:
    """The spelling kube-apiserver stores and returns for a quantity written `s`.

    Usually the canonical one, but ParseQuantity keeps the text it was given when it judges
    it canonical already (`int64_form`'s cached spelling), and Quantity.String() then returns
    that text as is: "1.125" stays "1.125" (not "1125m"), "1E3" stays "1E3", "+1" stays "+1".
    A ResourceList's RoundUp to milli units drops the kept text only when it had to round.
    Quantity.UnmarshalJSON trims surrounding space before parsing.
    """
    s = s.strip()
    form = int64_form(s)
    if form is not None and form[3] and (not milli or form[1] >= -3):
        return s
    return canonical(s, milli)


def _canonical_list(rl: Any, milli: bool = True) -> None:
    """Stored spellings of the quantities in a ResourceList; invalid ones are left for
    validation to report."""
    if not isinstance(rl, dict):
        return
    for k, v in rl.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            v = str(v)
        if isinstance(v, str):
            try:
                rl[k] = _stored_quantity(v, milli)
            except ValueError:
                pass


def _canonical_field(parent: dict, key: str) -> None:
    v = parent.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = str(v)
    if isinstance(v, str):
        try:
            parent[key] = _stored_quantity(v)
        except ValueError:
            pass


# --- image references ------------------------------------------------------------------------

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_REFERENCE_RE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)


# What reference.ParseNormalizedNamed rejects beyond the grammar: a bare 64-hex image ID, a
# repository path (after "docker.io/library/" normalisation) over 255 characters, and a
# digest go-digest cannot validate (only sha256/384/512, lowercase hex of the exact length).
_IMAGE_ID_RE = re.compile(r"[a-f0-9]{64}")
_DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")


def _repository_path(name: str) -> str:
    """The path part of a repository name as splitDockerDomain normalises it."""
    first, slash, rest = name.partition("/")
    if slash and (any(c in first for c in ".:") or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain in ("docker.io", "index.docker.io") and "/" not in path:
        path = "library/" + path
    return path


def image_tag(image: str) -> str:
    """The tag parsers.ParseImageName reports: "latest" when neither tag nor digest is given,
    "" for a digest-only or unparsable reference."""
    if not isinstance(image, str) or not _REFERENCE_RE.fullmatch(image):
        return ""
    if _IMAGE_ID_RE.fullmatch(image):
        return ""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if len(_repository_path(name[: len(name) - len(tag) - 1] if tag else name)) > 255:
        return ""
    if digest:
        algorithm, _, hex_ = digest.partition(":")
        if len(hex_) != _DIGEST_HEX.get(algorithm) or not _LOWER_HEX_RE.fullmatch(hex_):
            return ""
    if not tag and not digest:
        return "latest"
    return tag


def default_pull_policy(image: str) -> str:
    return "Always" if image_tag(image) == "latest" else "IfNotPresent"


# --- pod spec --------------------------------------------------------------------------------


def _http_get(action: Any) -> None:
    if isinstance(action, dict):
        if not action.get("path"):
            action["path"] = "/"
        if not action.get("scheme"):
            action["scheme"] = "HTTP"


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for field, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if not probe.get(field):
            probe[field] = value
    _http_get(probe.get("httpGet"))
    grpc = probe.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""


def _field_ref(ref: Any) -> None:
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _resource_field_ref(ref: Any) -> None:
    # A zero Quantity is serialized as "0", so an unset divisor reads back as "0".
    if isinstance(ref, dict):
        if ref.get("divisor") is None:
            ref["divisor"] = "0"
        else:
            _canonical_field(ref, "divisor")


def _container(c: dict) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = default_pull_policy(c.get("image") or "")
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    for p in _dicts(c.get("ports")):
        if not p.get("protocol"):
            p["protocol"] = "TCP"
    for e in _dicts(c.get("env")):
        vf = e.get("valueFrom")
        if isinstance(vf, dict):
            _field_ref(vf.get("fieldRef"))
            _resource_field_ref(vf.get("resourceFieldRef"))
            # FileKeySelector's `+default=false`: an env var read from a file is required
            # unless it says otherwise, and the stored object says so.
            fk = vf.get("fileKeyRef")
            if isinstance(fk, dict) and fk.get("optional") is None:
                fk["optional"] = False
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(probe))
    lc = c.get("lifecycle")
    if isinstance(lc, dict):
        for hook in ("postStart", "preStop"):
            h = lc.get(hook)
            if isinstance(h, dict):
                _http_get(h.get("httpGet"))
    res = c.get("resources")
    if isinstance(res, dict):
        _canonical_list(res.get("limits"))
        _canonical_list(res.get("requests"))


_VOLUME_SOURCES = (
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
)
_FILE_MODE = 420  # 0644


def _downward_items(items: Any) -> None:
    for item in _dicts(items):
        _field_ref(item.get("fieldRef"))
        _resource_field_ref(item.get("resourceFieldRef"))


def _volume(v: dict) -> None:
    if not any(v.get(s) is not None for s in _VOLUME_SOURCES):
        v["emptyDir"] = {}
        return
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        src = v.get(kind)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = _FILE_MODE
    da = v.get("downwardAPI")
    if isinstance(da, dict):
        _downward_items(da.get("items"))
    proj = v.get("projected")
    if isinstance(proj, dict):
        for s in _dicts(proj.get("sources")):
            if isinstance(s.get("downwardAPI"), dict):
                _downward_items(s["downwardAPI"].get("items"))
            tok = s.get("serviceAccountToken")
            if isinstance(tok, dict) and tok.get("expirationSeconds") is None:
                tok["expirationSeconds"] = 3600
    hp = v.get("hostPath")
    if isinstance(hp, dict) and hp.get("type") is None:
        hp["type"] = ""
    ed = v.get("emptyDir")
    if isinstance(ed, dict):
        _canonical_field(ed, "sizeLimit")
    eph = v.get("ephemeral")
    if isinstance(eph, dict) and isinstance(eph.get("volumeClaimTemplate"), dict):
        _pvc_spec(_d(eph["volumeClaimTemplate"], "spec"))
    img = v.get("image")
    if isinstance(img, dict) and not img.get("pullPolicy"):
        img["pullPolicy"] = default_pull_policy(img.get("reference") or "")
    # Declarative defaults of the in-tree sources.
    iscsi = v.get("iscsi")
    if isinstance(iscsi, dict) and not iscsi.get("iscsiInterface"):
        iscsi["iscsiInterface"] = "default"
    rbd = v.get("rbd")
    if isinstance(rbd, dict):
        for k, dv in (("pool", "rbd"), ("user", "admin"), ("keyring", "/etc/ceph/keyring")):
            if not rbd.get(k):
                rbd[k] = dv
    az = v.get("azureDisk")
    if isinstance(az, dict):
        for k, dv in (
            ("cachingMode", "ReadWrite"),
            ("fsType", "ext4"),
            ("readOnly", False),
            ("kind", "Shared"),
        ):
            if az.get(k) is None:
                az[k] = dv
    sio = v.get("scaleIO")
    if isinstance(sio, dict):
        for k, dv in (("storageMode", "ThinProvisioned"), ("fsType", "xfs")):
            if not sio.get(k):
                sio[k] = dv


def default_pod_spec(spec: dict, is_pod: bool = False) -> None:
    """SetDefaults_PodSpec and the per-element defaults below it; SetDefaults_Pod when is_pod."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    # v1 conversion: serviceAccount is the deprecated alias of serviceAccountName.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for v in _dicts(spec.get("volumes")):
        _volume(v)
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in _dicts(spec.get(field)):
            _container(c)
    _canonical_list(spec.get("overhead"))
    res = spec.get("resources")
    if isinstance(res, dict):
        _canonical_list(res.get("limits"))
        _canonical_list(res.get("requests"))
    if not is_pod:
        return
    for field in ("containers", "initContainers"):
        for c in _dicts(spec.get(field)):
            res = c.get("resources")
            if isinstance(res, dict) and isinstance(res.get("limits"), dict):
                req = _d(res, "requests")
                for k, q in res["limits"].items():
                    req.setdefault(k, q)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for field in ("containers", "initContainers"):
            for c in _dicts(spec.get(field)):
                for p in _dicts(c.get("ports")):
                    if not p.get("hostPort"):
                        p["hostPort"] = p.get("containerPort")


def default_pod_template(tpl: Any) -> None:
    if isinstance(tpl, dict):
        default_pod_spec(_d(tpl, "spec"))


_SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


def _pod(obj: dict, create: bool) -> None:
    spec = _d(obj, "spec")
    default_pod_spec(spec, is_pod=True)
    if create:
        # The Priority admission plugin; with no default PriorityClass the priority is 0.
        if spec.get("priority") is None:
            name = spec.get("priorityClassName") or ""
            if not name:
                spec["priority"] = 0
            elif name in _SYSTEM_PRIORITIES:
                spec["priority"] = _SYSTEM_PRIORITIES[name]
        if spec.get("priority") is not None and not spec.get("preemptionPolicy"):
            spec["preemptionPolicy"] = "PreemptLowerPriority"


# --- core kinds ------------------------------------------------------------------------------


def _pvc_spec(spec: dict) -> None:
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    res = spec.get("resources")
    if isinstance(res, dict):
        _canonical_list(res.get("limits"))
        _canonical_list(res.get("requests"))


def _pvc(obj: dict, create: bool) -> None:
    _pvc_spec(_d(obj, "spec"))
    status = _d(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"
    _canonical_list(status.get("capacity"))
    _canonical_list(status.get("allocatedResources"))


def _pv(obj: dict, create: bool) -> None:
    spec = _d(obj, "spec")
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    hp = spec.get("hostPath")
    if isinstance(hp, dict) and hp.get("type") is None:
        hp["type"] = ""
    _canonical_list(spec.get("capacity"))
    status = _d(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


def _namespace(obj: dict, create: bool) -> None:
    meta = _d(obj, "metadata")
    name = meta.get("name")
    if name:
        _d(meta, "labels")["kubernetes.io/metadata.name"] = name
    status = _d(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Active"
    if create:
        # The namespace strategy insists on the "kubernetes" finalizer at creation only: it is
        # removed over the namespace's life and must not come back.
        spec = _d(obj, "spec")
        fins = spec.get("finalizers")
        if not isinstance(fins, list):
            fins = []
        if "kubernetes" not in fins:
            spec["finalizers"] = fins + ["kubernetes"]


def _node(obj: dict, create: bool) -> None:
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    _canonical_list(status.get("capacity"))
    _canonical_list(status.get("allocatable"))
    if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def _secret(obj: dict, create: bool) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    # v1 conversion folds stringData into data (stringData wins) and never stores it.
    sd = obj.pop("stringData", None)
    if isinstance(sd, dict) and sd:
        data = _d(obj, "data")
        for k, v in sd.items():
            if isinstance(v, str):
                data[k] = base64.b64encode(v.encode()).decode()


def _headless_without_selector(spec: dict) -> bool:
    return spec.get("clusterIP") == "None" and not spec.get("selector")


def _service(obj: dict, create: bool) -> None:
    spec = _d(obj, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        client = cfg.get("clientIP") if isinstance(cfg, dict) else None
        if not isinstance(client, dict) or client.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    stype = spec["type"]
    for p in _dicts(spec.get("ports")):
        if not p.get("protocol"):
            p["protocol"] = "TCP"
        tp = p.get("targetPort")
        if tp is None or tp == 0 or tp == "":
            p["targetPort"] = p.get("port")
    accessible = stype in ("LoadBalancer", "NodePort") or (
        stype == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if accessible and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and stype in (
        "NodePort",
        "LoadBalancer",
        "ClusterIP",
    ):
        spec["internalTrafficPolicy"] = "Cluster"
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if stype == "ExternalName":
        return
    # The service strategy keeps clusterIP and clusterIPs in step.
    cip, cips = spec.get("clusterIP"), spec.get("clusterIPs")
    if cip and not cips:
        spec["clusterIPs"] = [cip]
    elif cips and not cip and isinstance(cips, list):
        spec["clusterIP"] = cips[0]
    # IP family fields as the allocator sets them on a single-stack IPv4 cluster; a headless
    # service without selector asks for every family the cluster has.
    if spec.get("ipFamilyPolicy") is None:
        spec["ipFamilyPolicy"] = (
            "RequireDualStack" if _headless_without_selector(spec) else "SingleStack"
        )
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]


# --- apps ------------------------------------------------------------------------------------


def _deployment(obj: dict, create: bool) -> None:
    spec = _d(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _d(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _d(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = "25%"
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_pod_template(spec.get("template"))


def _replicaset(obj: dict, create: bool) -> None:
    spec = _d(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(spec.get("template"))


def _daemonset(obj: dict, create: bool) -> None:
    spec = _d(obj, "spec")
    us = _d(spec, "updateStrategy")
    if not us.get("type"):
        us["type"] = "RollingUpdate"
    if us["type"] == "RollingUpdate":
        ru = _d(us, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = 1
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(spec.get("template"))


def _statefulset(obj: dict, create: bool) -> None:
    spec = _d(obj, "spec")
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    us = _d(spec, "updateStrategy")
    if not us.get("type"):
        us["type"] = "RollingUpdate"
        if us.get("rollingUpdate") is None:
            us["rollingUpdate"] = {}
    ru = us.get("rollingUpdate")
    if us["type"] == "RollingUpdate" and isinstance(ru, dict) and ru.get("partition") is None:
        ru["partition"] = 0
    policy = _d(spec, "persistentVolumeClaimRetentionPolicy")
    for k in ("whenDeleted", "whenScaled"):
        if not policy.get(k):
            policy[k] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(spec.get("template"))
    for claim in _dicts(spec.get("volumeClaimTemplates")):
        # Claim templates are whole PersistentVolumeClaims and read back as such.
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        _pvc(claim, create)


# --- batch -----------------------------------------------------------------------------------

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"


def _job_spec(spec: dict) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        for rule in _dicts(pfp.get("rules")):
            for pattern in _dicts(rule.get("onPodConditions")):
                if not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if pfp is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False


def _generate_job_selector(obj: dict) -> None:
    """The Job strategy's PrepareForCreate: label the template and select on the uid."""
    meta = _d(obj, "metadata")
    spec = _d(obj, "spec")
    uid, name = meta.get("uid"), meta.get("name") or ""
    if spec.get("manualSelector") is True or not uid:
        return
    labels = _d(_d(_d(spec, "template"), "metadata"), "labels")
    for k in ("job-name", JOB_NAME):
        labels.setdefault(k, name)
    for k in ("controller-uid", CONTROLLER_UID):
        labels.setdefault(k, uid)
    selector = _d(spec, "selector")
    _d(selector, "matchLabels").setdefault(CONTROLLER_UID, uid)


def _job(obj: dict, create: bool) -> None:
    spec = _d(obj, "spec")
    _job_spec(spec)
    default_pod_template(spec.get("template"))
    if create:
        _generate_job_selector(obj)
    # SetDefaults_Job: a Job without labels takes its template's (generated ones included,
    # as a read-back of the stored Job shows).
    meta = _d(obj, "metadata")
    tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if isinstance(tlabels, dict) and not meta.get("labels"):
        meta["labels"] = dict(tlabels)


def _cronjob(obj: dict, create: bool) -> None:
    spec = _d(obj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    jt = spec.get("jobTemplate")
    if isinstance(jt, dict) and isinstance(jt.get("spec"), dict):
        default_pod_template(jt["spec"].get("template"))


# --- others ----------------------------------------------------------------------------------


def _storage_class(obj: dict, create: bool) -> None:
    if not obj.get("reclaimPolicy"):
        obj["reclaimPolicy"] = "Delete"
    if not obj.get("volumeBindingMode"):
        obj["volumeBindingMode"] = "Immediate"


def _nothing(obj: dict, create: bool) -> None:
    return None


_DEFAULTERS: dict[tuple[str, str], Callable[[dict, bool], None]] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("", "Node"): _node,
    ("", "Secret"): _secret,
    ("", "PersistentVolume"): _pv,
    ("", "PersistentVolumeClaim"): _pvc,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("storage.k8s.io", "StorageClass"): _storage_class,
    # No defaults upstream: ConfigMap, ServiceAccount, Event, Lease, ControllerRevision.
}

# Kinds whose defaults are all inside spec. A status update keeps the stored spec, defaulted when
# it was stored, so for these it has nothing to fill in.
_SPEC_ONLY = {("", "Pod"), ("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"),
              ("apps", "DaemonSet")}


def status_update_keeps_spec(resource: "Resource") -> bool:
    """Whether a status update leaves the stored spec exactly as it is (no defaults to fill)."""
    return (resource.group, resource.kind) in _SPEC_ONLY


def apply_status_update_defaults(resource: "Resource", obj: dict) -> None:
    """Defaults for an object written through its status subresource."""
    if not status_update_keeps_spec(resource):
        apply_defaults(resource, obj, create=False)


def apply_defaults(resource: "Resource", obj: dict, *, create: bool | None = None) -> None:
    """Fill in `obj`'s defaults in place, as the apiserver does for `resource`'s kind.

    `create` selects the create-only steps; when None it is inferred from the absence of
    `metadata.resourceVersion`. A Job's selector is generated only once `metadata.uid` is set.
    """
    fn = _DEFAULTERS.get((resource.group, resource.kind), _nothing)
    if create is None:
        meta = obj.get("metadata")
        create = not (isinstance(meta, dict) and meta.get("resourceVersion"))
    fn(obj, create)
