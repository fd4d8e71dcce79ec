"""Storage validation: PersistentVolume, PersistentVolumeClaim (and claim specs) and StorageClass.

PV/PVC rules come from core validation, StorageClass from `pkg/apis/storage/validation`.
The update rules matter most here: a PV's source and a PVC's spec are immutable, except that
a bound claim may grow its storage request.
"""

from __future__ import annotations

from pocketkube.api.errors import FieldError, forbidden, invalid, not_supported, required, too_long
from pocketkube.api.names import is_dns1123_subdomain, is_qualified_name, name_is_dns_subdomain
from pocketkube.api.quantity import format_quantity, parse
from pocketkube.api.selectors import validate_label_selector

from .common import JSONValue, child, deep_equal, dict_of, immutable, key, list_of, str_of
from .diff import spec_diff
from .meta import validate_object_meta, validate_object_meta_update
from .podspec import validate_node_selector
from .volumes import validate_csi_driver_name, validate_path_no_backsteps

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
VOLUME_MODES = ["Block", "Filesystem"]
_RECLAIM = ["Delete", "Recycle", "Retain"]

# PersistentVolumeSource members in upstream's checking order.
_PV_SOURCES = [
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
]
_PV_FORBIDDEN_NAME = {"cephfs": "cephFS"}
_PV_SOURCE_PATH = {"gcePersistentDisk": "persistentDisk"}


def _access_modes(modes: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    rwop = other = False
    for m in modes:
        if m not in ACCESS_MODES:
            errs.append(not_supported(path, m, ACCESS_MODES))
        if m == "ReadWriteOncePod":
            rwop = True
        elif m in ACCESS_MODES:
            other = True
    if rwop and other:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _positive_quantity(value, path: str) -> list[FieldError]:
    """ValidatePositiveQuantityValue (plus parse errors)."""
    try:
        q = parse(value if isinstance(value, str) else str(value))
    except ValueError as e:
        return [invalid(path, value, str(e))]
    if q.value <= 0:
        return [invalid(path, format_quantity(q.value, q.format), "must be greater than zero")]
    return []


def _data_source(ds: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not ds.get("name"):
        errs.append(required(child(path, "name"), ""))
    kind = str_of(ds.get("kind"))
    if not kind:
        errs.append(required(child(path, "kind"), ""))
    group = str_of(ds.get("apiGroup"))
    if not group and kind != "PersistentVolumeClaim":
        errs.append(
            invalid(
                path, kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"
            )
        )
    if group:
        errs.extend(invalid(child(path, "apiGroup"), group, m) for m in is_dns1123_subdomain(group))
    return errs


def validate_pvc_spec(spec: dict, path: str) -> list[FieldError]:
    """ValidatePersistentVolumeClaimSpec."""
    errs: list[FieldError] = []
    modes = list_of(spec.get("accessModes"))
    if not modes:
        errs.append(required(child(path, "accessModes"), "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        errs.extend(validate_label_selector(dict_of(spec["selector"]), child(path, "selector")))
    errs.extend(_access_modes(modes, child(path, "accessModes")))
    requests = dict_of(dict_of(spec.get("resources")).get("requests"))
    spath = key(child(path, "resources"), "storage")
    if "storage" not in requests:
        errs.append(required(spath, ""))
    else:
        errs.extend(_positive_quantity(requests["storage"], spath))
    sc = spec.get("storageClassName")
    if sc:
        errs.extend(
            invalid(child(path, "storageClassName"), sc, m)
            for m in name_is_dns_subdomain(str_of(sc), False)
        )
    vm = spec.get("volumeMode")
    if vm is not None and vm not in VOLUME_MODES:
        errs.append(not_supported(child(path, "volumeMode"), vm, VOLUME_MODES))
    if spec.get("dataSource") is not None:
        errs.extend(_data_source(dict_of(spec["dataSource"]), child(path, "dataSource")))
    if spec.get("dataSourceRef") is not None:
        errs.extend(_data_source(dict_of(spec["dataSourceRef"]), child(path, "dataSourceRef")))
    ds, dsr = spec.get("dataSource"), spec.get("dataSourceRef")
    if dsr is not None and dict_of(dsr).get("namespace"):
        if ds is not None:
            errs.append(
                invalid(
                    path,
                    child(path, "dataSource"),
                    "may not be specified when dataSourceRef.namespace is specified",
                )
            )
    elif ds is not None and dsr is not None:
        d, r = dict_of(ds), dict_of(dsr)
        if (d.get("apiGroup"), d.get("kind"), d.get("name")) != (
            r.get("apiGroup"),
            r.get("kind"),
            r.get("name"),
        ):
            errs.append(invalid(path, child(path, "dataSource"), "must match dataSourceRef"))
    return errs


def validate_pvc(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    spec = dict_of(obj.get("spec"))
    if old is None:
        errs = validate_object_meta(meta, True, name_is_dns_subdomain)
        errs.extend(validate_pvc_spec(spec, "spec"))
        return errs
    old_spec = dict_of(old.get("spec"))
    errs = validate_object_meta_update(meta, dict_of(old.get("metadata")))
    errs.extend(validate_object_meta(meta, True, name_is_dns_subdomain))
    errs.extend(validate_pvc_spec(spec, "spec"))
    cmp_new, cmp_old = dict(spec), dict(old_spec)
    if not old_spec.get("volumeName"):
        cmp_old["volumeName"] = cmp_new.get("volumeName")
    if cmp_old.get("storageClassName") is None and cmp_new.get("storageClassName") is not None:
        beta = dict_of(dict_of(old.get("metadata")).get("annotations")).get(
            "volume.beta.kubernetes.io/storage-class"
        )
        if beta is None or beta == cmp_new["storageClassName"]:
            cmp_old["storageClassName"] = cmp_new["storageClassName"]
    bound = dict_of(obj.get("status")).get("phase") == "Bound"
    new_req = dict_of(dict_of(spec.get("resources")).get("requests"))
    old_req = dict_of(dict_of(old_spec.get("resources")).get("requests"))
    if bound:
        # Bound claims may resize: compare everything but the storage request.
        cmp_new["resources"] = {
            **dict_of(spec.get("resources")),
            "requests": {**new_req, "storage": old_req.get("storage")},
        }
        cmp_new.pop("volumeAttributesClassName", None)
        cmp_old.pop("volumeAttributesClassName", None)
    if not deep_equal(cmp_new, cmp_old):
        errs.append(
            forbidden(
                "spec",
                "spec is immutable after creation except resources.requests "
                "and volumeAttributesClassName for bound claims\n"
                + spec_diff("core.PersistentVolumeClaimSpec", cmp_old, cmp_new),
            )
        )
    try:
        new_size = parse(str_of(new_req.get("storage")) or "0").value
        old_size = parse(str_of(old_req.get("storage")) or "0").value
        cap = dict_of(dict_of(old.get("status")).get("capacity")).get("storage")
        status_size = parse(str_of(cap) or "0").value
    except ValueError:
        new_size = old_size = status_size = 0
    if new_size < old_size and new_size <= status_size:
        errs.append(
            forbidden(
                "spec.resources.requests.storage", "field can not be less than status.capacity"
            )
        )
    errs.extend(immutable(spec.get("volumeMode"), old_spec.get("volumeMode"), "volumeMode"))
    return errs


def validate_pvc_status(obj: dict, old: dict) -> list[FieldError]:
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    if not list_of(dict_of(obj.get("spec")).get("accessModes")):
        errs.append(required("Spec.accessModes", ""))
    for r, q in dict_of(dict_of(obj.get("status")).get("capacity")).items():
        errs.extend(_basic_resource(q, key("status.capacity", r)))
    return errs


def _basic_resource(value, path: str) -> list[FieldError]:
    """validateBasicResource: the whole-number value may not be negative."""
    try:
        q = parse(value if isinstance(value, str) else str(value))
    except ValueError as e:
        return [invalid(path, value, str(e))]
    if q.value < 0:
        v = int(q.value) if q.value == int(q.value) else int(q.value) - 1
        return [invalid(path, v, "must be a valid resource quantity")]
    return []


def validate_pv_spec(spec: dict, pv_name: str, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    modes = list_of(spec.get("accessModes"))
    if not modes:
        errs.append(required(child(path, "accessModes"), ""))
    errs.extend(_access_modes(modes, child(path, "accessModes")))
    capacity = dict_of(spec.get("capacity"))
    cpath = child(path, "capacity")
    if not capacity:
        errs.append(required(cpath, ""))
    if "storage" not in capacity or len(capacity) > 1:
        errs.append(not_supported(cpath, JSONValue(capacity), ["storage"]))
    for r, q in capacity.items():
        errs.extend(_basic_resource(q, key(cpath, r)))
        errs.extend(_positive_quantity(q, key(cpath, r)))
    rp = spec.get("persistentVolumeReclaimPolicy")
    if rp and rp not in _RECLAIM:
        errs.append(not_supported(child(path, "persistentVolumeReclaimPolicy"), rp, _RECLAIM))
    affinity_set = False
    na = spec.get("nodeAffinity")
    if na is not None:
        affinity_set = True
        req = dict_of(na).get("required")
        npath = child(path, "nodeAffinity")
        if req is not None:
            errs.extend(validate_node_selector(dict_of(req), child(npath, "required")))
        else:
            errs.append(
                required(child(npath, "required"), "must specify required node constraints")
            )
    n = 0
    for src_key in _PV_SOURCES:
        src = spec.get(src_key)
        if src is None:
            continue
        if n > 0 and src_key != "flexVolume":
            errs.append(
                forbidden(
                    child(path, _PV_FORBIDDEN_NAME.get(src_key, src_key)),
                    "may not specify more than 1 volume type",
                )
            )
            continue
        n += 1
        src = dict_of(src)
        spath = child(path, _PV_SOURCE_PATH.get(src_key, src_key))
        if src_key in ("hostPath", "local"):
            p = str_of(src.get("path"))
            if not p:
                errs.append(required(child(spath, "path"), ""))
            else:
                errs.extend(validate_path_no_backsteps(p, child(spath, "path")))
                t = src.get("type")
                types = [
                    "",
                    "BlockDevice",
                    "CharDevice",
                    "Directory",
                    "DirectoryOrCreate",
                    "File",
                    "FileOrCreate",
                    "Socket",
                ]
                if src_key == "hostPath" and t is not None and t not in types:
                    errs.append(not_supported(child(spath, "type"), t, types))
            if src_key == "local" and not affinity_set:
                errs.append(
                    required(child(path, "nodeAffinity"), "Local volume requires node affinity")
                )
        elif src_key == "nfs":
            if not src.get("server"):
                errs.append(required(child(spath, "server"), ""))
            p = str_of(src.get("path"))
            if not p:
                errs.append(required(child(spath, "path"), ""))
            if not p.startswith("/"):
                errs.append(invalid(child(spath, "path"), p, "must be an absolute path"))
        elif src_key == "csi":
            errs.extend(validate_csi_driver_name(str_of(src.get("driver")), child(spath, "driver")))
            if not src.get("volumeHandle"):
                errs.append(required(child(spath, "volumeHandle"), ""))
    if n == 0:
        errs.append(required(path, "must specify a volume type"))
    hp = dict_of(spec.get("hostPath")).get("path")
    if (
        hp is not None
        and str_of(hp).rstrip("/") == ""
        and str_of(hp).startswith("/")
        and rp == "Recycle"
    ):
        errs.append(
            forbidden(
                child(path, "persistentVolumeReclaimPolicy"),
                "may not be 'recycle' for a hostPath mount of '/'",
            )
        )
    sc = spec.get("storageClassName")
    if sc:
        errs.extend(
            invalid(child(path, "storageClassName"), sc, m)
            for m in name_is_dns_subdomain(str_of(sc), False)
        )
    vm = spec.get("volumeMode")
    if vm is not None and vm not in VOLUME_MODES:
        errs.append(not_supported(child(path, "volumeMode"), vm, VOLUME_MODES))
    return errs


def validate_pv(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    spec = dict_of(obj.get("spec"))
    errs = [] if old is None else validate_object_meta_update(meta, dict_of(old.get("metadata")))
    errs.extend(validate_object_meta(meta, False, name_is_dns_subdomain))
    errs.extend(validate_pv_spec(spec, str_of(meta.get("name"))))
    if old is None:
        return errs
    old_spec = dict_of(old.get("spec"))
    new_src = {k: spec.get(k) for k in _PV_SOURCES if spec.get(k) is not None}
    old_src = {k: old_spec.get(k) for k in _PV_SOURCES if old_spec.get(k) is not None}
    # A CSI volume may gain a controllerExpandSecretRef.
    if (
        "csi" in new_src
        and "csi" in old_src
        and dict_of(old_src["csi"]).get("controllerExpandSecretRef") is None
    ):
        new_src["csi"] = {
            k: v for k, v in dict_of(new_src["csi"]).items() if k != "controllerExpandSecretRef"
        }
    if not deep_equal(new_src, old_src):
        errs.append(
            forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation\n"
                + spec_diff("core.PersistentVolumeSource", old_src, new_src),
            )
        )
    errs.extend(immutable(spec.get("volumeMode"), old_spec.get("volumeMode"), "volumeMode"))
    if old_spec.get("nodeAffinity") is not None and not deep_equal(
        spec.get("nodeAffinity"), old_spec.get("nodeAffinity")
    ):
        errs.append(
            invalid(
                "nodeAffinity",
                JSONValue(spec.get("nodeAffinity")),
                "field is immutable, except for updating from beta label to GA",
            )
        )
    return errs


def validate_pv_status(obj: dict, old: dict) -> list[FieldError]:
    return validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))


# --- StorageClass ----------------------------------------------------------------------------

_SC_RECLAIM = ["Delete", "Retain"]
_BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]


def validate_storage_class(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    if old is not None:
        return _storage_class_update(obj, old)
    errs = validate_object_meta(meta, False, name_is_dns_subdomain)
    prov = str_of(obj.get("provisioner"))
    if not prov:
        errs.append(required("provisioner", ""))
    else:
        errs.extend(
            invalid("provisioner", prov.lower(), m) for m in is_qualified_name(prov.lower())
        )
    params = dict_of(obj.get("parameters"))
    if len(params) > 512:
        errs.append(too_long("parameters", 512))
    else:
        total = 0
        for k, v in params.items():
            if not k:
                errs.append(invalid("parameters", k, "field can not be empty."))
            total += len(k) + len(str_of(v))
        if total > 256 * 1024:
            errs.append(too_long("parameters", 256 * 1024))
    rp = obj.get("reclaimPolicy")
    if rp and rp not in _SC_RECLAIM:
        errs.append(not_supported("reclaimPolicy", rp, _SC_RECLAIM))
    vbm = obj.get("volumeBindingMode")
    if vbm is None:
        errs.append(required("volumeBindingMode", ""))
    elif vbm not in _BINDING_MODES:
        errs.append(not_supported("volumeBindingMode", vbm, _BINDING_MODES))
    return errs


def _storage_class_update(obj: dict, old: dict) -> list[FieldError]:
    errs = validate_object_meta_update(dict_of(obj.get("metadata")), dict_of(old.get("metadata")))
    if not deep_equal(obj.get("parameters"), old.get("parameters")):
        errs.append(forbidden("parameters", "updates to parameters are forbidden."))
    if obj.get("provisioner") != old.get("provisioner"):
        errs.append(forbidden("provisioner", "updates to provisioner are forbidden."))
    if obj.get("reclaimPolicy") != old.get("reclaimPolicy"):
        errs.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    errs.extend(
        immutable(obj.get("volumeBindingMode"), old.get("volumeBindingMode"), "volumeBindingMode")
    )
    return errs
