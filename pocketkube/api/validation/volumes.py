"""Pod volume validation: names, exactly one source per volume, and the common sources' fields.

Follows `ValidateVolumes` / `validateVolumeSource` in core validation. The sources pods use
in practice (emptyDir, hostPath, configMap, secret, downwardAPI, projected, PVC, NFS, CSI,
ephemeral, image) are checked field by field; the legacy in-tree cloud sources are counted
(so "may not specify more than 1 volume type" still fires) with their required fields only.
"""

from __future__ import annotations

from pocketkube.api.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from pocketkube.api.names import is_dns1123_label, name_is_dns_subdomain
from pocketkube.api.quantity import parse

from .common import as_int, child, dict_of, index, list_of, str_of

FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"

_HOST_PATH_TYPES = [
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
]

# (json key, path segment used for its own field errors) in upstream's checking order; the
# odd segments ("persistentDisk", "cephfs") are upstream's.
_SOURCES = [
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "persistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephfs"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwardAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
]
# Where upstream's "more than 1 volume type" error names a different field.
_FORBIDDEN_NAME = {"cephfs": "cephFS", "downwardAPI": "downwarAPI"}

# Fields each legacy source must set.
_REQUIRED = {
    "gitRepo": ("repository",),
    "gcePersistentDisk": ("pdName",),
    "awsElasticBlockStore": ("volumeID",),
    "iscsi": ("targetPortal", "iqn"),
    "glusterfs": ("endpoints", "path"),
    "rbd": ("monitors", "image"),
    "cinder": ("volumeID",),
    "cephfs": ("monitors",),
    "quobyte": ("registry", "volume"),
    "flexVolume": ("driver",),
    "azureFile": ("secretName", "shareName"),
    "vsphereVolume": ("volumePath",),
    "photonPersistentDisk": ("pdID",),
    "portworxVolume": ("volumeID",),
    "azureDisk": ("diskName", "diskURI"),
    "storageos": ("volumeName",),
    "scaleIO": ("gateway", "system", "volumeName"),
}

_VOLUME_FIELD_PATHS = [
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
]


def validate_path_no_backsteps(target: str, path: str) -> list[FieldError]:
    if ".." in target.replace("\\", "/").split("/"):
        return [invalid(path, target, "must not contain '..'")]
    return []


def validate_local_descending_path(target: str, path: str) -> list[FieldError]:
    errs = []
    if target.startswith("/"):
        errs.append(invalid(path, target, "must be a relative path"))
    errs.extend(validate_path_no_backsteps(target, path))
    return errs


def validate_local_non_reserved_path(target: str, path: str) -> list[FieldError]:
    errs = validate_local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(path, target, "must not start with '..'"))
    return errs


def _mode(v, path: str) -> list[FieldError]:
    m = as_int(v)
    if m is not None and (m > 0o777 or m < 0):
        return [invalid(path, m, FILE_MODE_ERROR)]
    return []


def _key_to_path(kp: dict, path: str) -> list[FieldError]:
    errs = []
    if not kp.get("key"):
        errs.append(required(child(path, "key"), ""))
    p = str_of(kp.get("path"))
    if not p:
        errs.append(required(child(path, "path"), ""))
    errs.extend(validate_local_non_reserved_path(p, child(path, "path")))
    errs.extend(_mode(kp.get("mode"), child(path, "mode")))
    return errs


def _items(src: dict, path: str) -> list[FieldError]:
    errs = []
    ipath = child(path, "items")
    for i, kp in enumerate(list_of(src.get("items"))):
        errs.extend(_key_to_path(dict_of(kp), index(ipath, i)))
    return errs


def _secret(src: dict, path: str) -> list[FieldError]:
    errs = []
    if not src.get("secretName"):
        errs.append(required(child(path, "secretName"), ""))
    errs.extend(_mode(src.get("defaultMode"), child(path, "defaultMode")))
    errs.extend(_items(src, path))
    return errs


def _config_map(src: dict, path: str) -> list[FieldError]:
    errs = []
    if not src.get("name"):
        errs.append(required(child(path, "name"), ""))
    errs.extend(_mode(src.get("defaultMode"), child(path, "defaultMode")))
    errs.extend(_items(src, path))
    return errs


def _downward_file(f: dict, path: str) -> list[FieldError]:
    from .containers import validate_object_field_selector, validate_resource_field_selector

    errs = []
    p = str_of(f.get("path"))
    if not p:
        errs.append(required(child(path, "path"), ""))
    errs.extend(validate_local_non_reserved_path(p, child(path, "path")))
    if f.get("fieldRef") is not None:
        errs.extend(
            validate_object_field_selector(
                dict_of(f["fieldRef"]), _VOLUME_FIELD_PATHS, child(path, "fieldRef")
            )
        )
        if f.get("resourceFieldRef") is not None:
            errs.append(
                invalid(
                    path,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                )
            )
    elif f.get("resourceFieldRef") is not None:
        errs.extend(
            validate_resource_field_selector(
                dict_of(f["resourceFieldRef"]), child(path, "resourceFieldRef"), True
            )
        )
    else:
        errs.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    errs.extend(_mode(f.get("mode"), child(path, "mode")))
    return errs


def _downward_api(src: dict, path: str) -> list[FieldError]:
    errs = _mode(src.get("defaultMode"), child(path, "defaultMode"))
    for f in list_of(src.get("items")):
        errs.extend(_downward_file(dict_of(f), path))
    return errs


def _projected(src: dict, path: str) -> list[FieldError]:
    errs = _mode(src.get("defaultMode"), child(path, "defaultMode"))
    paths: set[str] = set()
    for i, s in enumerate(list_of(src.get("sources"))):
        s = dict_of(s)
        spath = index(child(path, "sources"), i)
        n = 0
        for kind, name_key in (("secret", "name"), ("configMap", "name")):
            if s.get(kind) is None:
                continue
            n += 1
            sub = dict_of(s[kind])
            ppath = child(spath, kind)
            if not sub.get(name_key):
                errs.append(required(child(ppath, "name"), ""))
            for j, kp in enumerate(list_of(sub.get("items"))):
                kp = dict_of(kp)
                errs.extend(_key_to_path(kp, index(child(ppath, "items"), j)))
                if kp.get("path"):
                    if kp["path"] in paths:
                        errs.append(
                            invalid(path, sub.get("name") or "", "conflicting duplicate paths")
                        )
                    paths.add(kp["path"])
        if s.get("downwardAPI") is not None:
            n += 1
            for f in list_of(dict_of(s["downwardAPI"]).get("items")):
                f = dict_of(f)
                errs.extend(_downward_file(f, child(spath, "downwardAPI")))
                if f.get("path"):
                    if f["path"] in paths:
                        errs.append(invalid(path, f["path"], "conflicting duplicate paths"))
                    paths.add(f["path"])
        if s.get("serviceAccountToken") is not None:
            n += 1
            tok = dict_of(s["serviceAccountToken"])
            tpath = child(spath, "serviceAccountToken")
            exp = as_int(tok.get("expirationSeconds"))
            if exp is not None and exp < 600:
                errs.append(
                    invalid(
                        child(tpath, "expirationSeconds"),
                        exp,
                        "may not specify a duration less than 10 minutes",
                    )
                )
            if exp is not None and exp > 1 << 32:
                errs.append(
                    invalid(
                        child(tpath, "expirationSeconds"),
                        exp,
                        "may not specify a duration larger than 2^32 seconds",
                    )
                )
            if not tok.get("path"):
                errs.append(required(child(path, "path"), ""))
            else:
                errs.extend(validate_local_non_reserved_path(tok["path"], child(path, "path")))
        if s.get("clusterTrustBundle") is not None:
            n += 1
        if n > 1:
            errs.append(forbidden(spath, "may not specify more than 1 volume type per source"))
    return errs


def _host_path(src: dict, path: str) -> list[FieldError]:
    p = str_of(src.get("path"))
    if not p:
        return [required(child(path, "path"), "")]
    errs = validate_path_no_backsteps(p, child(path, "path"))
    t = src.get("type")
    if t is not None and t not in _HOST_PATH_TYPES:
        errs.append(not_supported(child(path, "type"), t, _HOST_PATH_TYPES))
    return errs


def _empty_dir(src: dict, path: str) -> list[FieldError]:
    limit = src.get("sizeLimit")
    if isinstance(limit, str):
        try:
            if parse(limit).value < 0:
                return [
                    forbidden(
                        child(path, "sizeLimit"),
                        "SizeLimit field must be a valid resource quantity",
                    )
                ]
        except ValueError as e:
            return [invalid(child(path, "sizeLimit"), limit, str(e))]
    return []


def _pvc(src: dict, path: str) -> list[FieldError]:
    if not src.get("claimName"):
        return [required(child(path, "claimName"), "")]
    return []


def _nfs(src: dict, path: str) -> list[FieldError]:
    errs = []
    if not src.get("server"):
        errs.append(required(child(path, "server"), ""))
    p = str_of(src.get("path"))
    if not p:
        errs.append(required(child(path, "path"), ""))
    if not p.startswith("/"):
        errs.append(invalid(child(path, "path"), p, "must be an absolute path"))
    return errs


def validate_csi_driver_name(driver: str, path: str) -> list[FieldError]:
    from pocketkube.api.errors import too_long
    from pocketkube.api.names import is_dns1123_subdomain

    errs = []
    if not driver:
        errs.append(required(path, ""))
    if len(driver) > 63:
        errs.append(too_long(path, 63))
    errs.extend(invalid(path, driver, m) for m in is_dns1123_subdomain(driver.lower()))
    return errs


def _csi(src: dict, path: str) -> list[FieldError]:
    errs = validate_csi_driver_name(str_of(src.get("driver")), child(path, "driver"))
    ref = src.get("nodePublishSecretRef")
    if ref is not None:
        name = str_of(dict_of(ref).get("name"))
        if not name:
            errs.append(required(child(child(path, "nodePublishSecretRef"), "name"), ""))
        else:
            errs.extend(
                invalid(child(path, "name"), name, m) for m in name_is_dns_subdomain(name, False)
            )
    return errs


def _ephemeral(src: dict, path: str) -> list[FieldError]:
    tpl = src.get("volumeClaimTemplate")
    if tpl is None:
        return [required(child(path, "volumeClaimTemplate"), "")]
    from .meta import validate_template_object_meta
    from .storage import validate_pvc_spec

    tpath = child(path, "volumeClaimTemplate")
    tpl = dict_of(tpl)
    errs = validate_template_object_meta(dict_of(tpl.get("metadata")), child(tpath, "metadata"))
    errs.extend(validate_pvc_spec(dict_of(tpl.get("spec")), child(tpath, "spec")))
    return errs


def _image(src: dict, path: str, is_pod: bool) -> list[FieldError]:
    from .containers import validate_pull_policy

    errs = []
    if is_pod and not src.get("reference"):
        errs.append(required(child(path, "reference"), ""))
    errs.extend(validate_pull_policy(src.get("pullPolicy") or "", child(path, "pullPolicy")))
    return errs


def _legacy(key: str, src: dict, path: str) -> list[FieldError]:
    errs = []
    for f in _REQUIRED.get(key, ()):
        if not src.get(f):
            errs.append(required(child(path, f), ""))
    if key == "nfs":
        errs.extend(_nfs(src, path))
    return errs


def validate_volume_source(
    vol: dict, path: str, vol_name: str, pod_name: str, is_pod: bool
) -> list[FieldError]:
    errs: list[FieldError] = []
    n = 0
    for key, seg in _SOURCES:
        src = vol.get(key)
        if src is None:
            continue
        if n > 0:
            errs.append(
                forbidden(
                    child(path, _FORBIDDEN_NAME.get(key, key)),
                    "may not specify more than 1 volume type",
                )
            )
            continue
        n += 1
        src = dict_of(src)
        spath = child(path, seg)
        if key == "emptyDir":
            errs.extend(_empty_dir(src, spath))
        elif key == "hostPath":
            errs.extend(_host_path(src, spath))
        elif key == "secret":
            errs.extend(_secret(src, spath))
        elif key == "configMap":
            errs.extend(_config_map(src, spath))
        elif key == "downwardAPI":
            errs.extend(_downward_api(src, spath))
        elif key == "projected":
            errs.extend(_projected(src, spath))
        elif key == "persistentVolumeClaim":
            errs.extend(_pvc(src, spath))
        elif key == "nfs":
            errs.extend(_nfs(src, spath))
        elif key == "csi":
            errs.extend(_csi(src, spath))
        elif key == "ephemeral":
            errs.extend(_ephemeral(src, spath))
            if pod_name and vol_name:
                pvc = f"{pod_name}-{vol_name}"
                errs.extend(
                    invalid(child(path, "name"), vol_name, f'PVC name "{pvc}": {m}')
                    for m in name_is_dns_subdomain(pvc, False)
                )
        elif key == "image":
            errs.extend(_image(src, spath, is_pod))
        else:
            errs.extend(_legacy(key, src, spath))
    if n == 0:
        errs.append(required(path, "must specify a volume type"))
    return errs


def validate_volumes(
    volumes: list, path: str, pod_name: str = "", is_pod: bool = False
) -> tuple[dict[str, dict], list[FieldError]]:
    """ValidateVolumes: the valid volumes by name (for mount checks) and the errors."""
    errs: list[FieldError] = []
    by_name: dict[str, dict] = {}
    created_pvcs = set()
    if pod_name:
        created_pvcs = {
            f"{pod_name}-{v.get('name')}"
            for v in volumes
            if isinstance(v, dict) and v.get("ephemeral") is not None
        }
    for i, vol in enumerate(volumes):
        vol = dict_of(vol)
        ipath = index(path, i)
        npath = child(ipath, "name")
        name = str_of(vol.get("name"))
        el = validate_volume_source(vol, ipath, name, pod_name, is_pod)
        if not name:
            el.append(required(npath, ""))
        else:
            el.extend(invalid(npath, name, m) for m in is_dns1123_label(name))
        if name in by_name:
            el.append(duplicate(npath, name))
        if not el:
            by_name[name] = vol
        else:
            errs.extend(el)
        claim = dict_of(vol.get("persistentVolumeClaim")).get("claimName")
        if claim and claim in created_pvcs:
            errs.append(
                invalid(
                    child(child(ipath, "persistentVolumeClaim"), "claimName"),
                    claim,
                    "must not reference a PVC that gets created for an ephemeral volume",
                )
            )
    return by_name, errs
