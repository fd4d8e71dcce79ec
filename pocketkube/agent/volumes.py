"""Pod volumes on a node: what the kubelet's volume plugins put on disk before containers start.

Why it exists: a container's files come from its volumes, and users rely on the exact shape
the kubelet gives them - where an emptyDir lives, which hostPath types are checked, how a
ConfigMap's keys become files, how updates appear, what a missing object says in the
FailedMount event. This module is those plugins for one pod directory (the kubelet's
`/var/lib/kubelet/pods/<uid>`), under `<pod_dir>/volumes/<plugin>/<volume>`:

* emptyDir (`kubernetes.io~empty-dir`): a 0777 directory. `medium: Memory` and `sizeLimit`
  are not enforced (no tmpfs): the data sits on the node's disk.
* hostPath: the host path itself, after the `type` check (DirectoryOrCreate creates 0755,
  FileOrCreate creates 0644, Directory/File/Socket/CharDevice/BlockDevice must exist as such).
  With type "" there is no check, and a missing path is created as a directory, as the
  container runtimes do when they bind it.
* configMap / secret / downwardAPI / projected (`kubernetes.io~configmap`, `~secret`,
  `~downward-api`, `~projected`): files written with the kubelet's AtomicWriter layout - the
  data in a hidden `..<timestamp>` directory, a `..data` symlink to it, and one user-visible
  symlink per top-level name (`key -> ..data/key`) - so `refresh_volumes` can swap in new
  contents with one atomic rename, exactly how updates reach running pods upstream.
  Secret values are base64-decoded. A projected serviceAccountToken becomes a placeholder
  token file: pocketkube has no TokenRequest API, so the file exists (clients that read it do
  not crash) but the token authenticates nothing.
* persistentVolumeClaim (and generic `ephemeral` volumes, whose claim is `<pod>-<volume>`):
  the claim must be Bound to a PV whose claimRef points back at it; hostPath and local PVs
  give their path, NFS PVs are mounted with `mount -t nfs` at `kubernetes.io~nfs/<pv>`.
* nfs: mounted the same way. A node without the mount.nfs helper fails with a message that
  says so instead of mount's cryptic one.

Failures raise `VolumeError` whose message is the kubelet's FailedMount event text
(`MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found`); claim problems use
the volume manager's `error processing PVC ns/name: ...` text.

`container_mounts` turns a container's volumeMounts into runtime `Mount`s (subPath and
subPathExpr resolved safely inside the volume, configMap/secret/downwardAPI/projected always
read-only as upstream), and `remove_volumes` deletes what this module created without ever
following a symlink or descending into a mount point, so hostPath and PV data survive.

Disk work runs in threads (`asyncio.to_thread`) so the event loop keeps serving watches;
`container_mounts` and `remove_volumes` are plain functions (the agent runs the latter in a
thread).
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import logging
import os
import re
import shutil
import signal
import stat
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

from ..api.errors import ApiError, go_quote
from ..client import Client
from .env import (ContainerConfigError, expand, extract_field_path, node_allocatable,
                  resource_field_value)

try:
    from ..runtime.base import Mount
except ImportError:  # pragma: no cover - the runtime package is written alongside this one
    @dataclass
    class Mount:  # type: ignore[no-redef]
        """Identical to pocketkube.runtime.base.Mount (used until that module exists)."""

        host_path: str
        container_path: str
        read_only: bool = False


log = logging.getLogger("pocketkube.agent.volumes")

EMPTY_DIR = "kubernetes.io~empty-dir"
CONFIGMAP = "kubernetes.io~configmap"
SECRET = "kubernetes.io~secret"
DOWNWARD_API = "kubernetes.io~downward-api"
PROJECTED = "kubernetes.io~projected"
NFS = "kubernetes.io~nfs"

DEFAULT_MODE = 0o644         # ConfigMap/Secret/DownwardAPI/Projected VolumeSourceDefaultMode
NFS_MOUNT_TIMEOUT = 10.0     # seconds before a hanging `mount -t nfs` is given up
PLACEHOLDER_TOKEN = b"pocketkube-placeholder-token"
_API_DATA_SOURCES = ("configMap", "secret", "downwardAPI", "projected")
_MNT_DETACH = 2
_OCTAL = re.compile(r"\\([0-7]{3})")

Payload = dict[str, tuple[bytes, int]]   # relative path -> (content, mode)


class VolumeError(Exception):
    """A volume could not be set up; `message` is the kubelet's FailedMount event text."""

    reason: str = "FailedMount"

    def __init__(self, message: str, volume: str = ""):
        super().__init__(message)
        self.message = message
        self.volume = volume


class _SetUpError(Exception):
    """A plugin's own error text, before the kubelet's `MountVolume...` prefix is added."""


def _set_up_failed(volume: str, err: Exception | str) -> VolumeError:
    return VolumeError(f"MountVolume.SetUp failed for volume {go_quote(volume)} : {err}", volume)


def _go_os_error(op: str, path: str, e: OSError) -> str:
    # Go's *PathError text: "mkdir /x: permission denied".
    return f"{op} {path}: {(e.strerror or str(e)).lower()}"


def _aggregate(errs: list[str]) -> str:
    """utilerrors.NewAggregate: one error as is, several as [a, b]."""
    return errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"


# --- the atomic writer (pkg/volume/util/atomic_writer.go) ------------------------------------

DATA_DIR = "..data"
NEW_DATA_DIR = "..data_tmp"


def _clean_payload(payload: Payload) -> Payload:
    clean: Payload = {}
    for path, content in payload.items():
        if not path:
            raise _SetUpError(f"invalid path: must not be empty: {go_quote(path)}")
        if os.path.isabs(path):
            raise _SetUpError(f"invalid path: must be relative path: {path}")
        items = path.split("/")
        if ".." in items:
            raise _SetUpError(f"invalid path: must not contain '..': {path}")
        if items[0].startswith("..") and len(items[0]) > 2:
            raise _SetUpError(f"invalid path: must not start with '..': {path}")
        clean[os.path.normpath(path)] = content
    return clean


def _paths_to_remove(payload: Payload, old_ts: str) -> set[str]:
    """Paths of the old version that the new payload no longer has."""
    old: set[str] = set()
    for root, dirs, files in os.walk(old_ts):
        for n in dirs + files:
            old.add(os.path.relpath(os.path.join(root, n), old_ts))
    new: set[str] = set()
    for p in payload:
        while p:
            new.add(p)
            p = os.path.dirname(p)
    return old - new


def _should_write(payload: Payload, old_ts: str) -> bool:
    for path, (content, mode) in payload.items():
        full = os.path.join(old_ts, path)
        try:
            st = os.lstat(full)
            with open(full, "rb") as f:
                if f.read() != content or stat.S_IMODE(st.st_mode) != mode:
                    return True
        except FileNotFoundError:
            return True
    return False


def atomic_write(target: str, payload: Payload) -> bool:
    """Project `payload` into `target` atomically; returns whether anything changed.

    Readers see either the whole old version or the whole new one: files live in a fresh
    timestamped directory and the `..data` symlink is renamed over to point at it.
    """
    clean = _clean_payload(payload)
    data_link = os.path.join(target, DATA_DIR)
    try:
        old_name = os.readlink(data_link)
    except FileNotFoundError:
        old_name = ""
    old_ts = os.path.join(target, old_name) if old_name else ""
    to_remove: set[str] = set()
    if old_name:
        to_remove = _paths_to_remove(clean, old_ts)
        if not to_remove and not _should_write(clean, old_ts):
            return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    ts_dir = tempfile.mkdtemp(prefix=stamp, dir=target)
    try:
        # 0755 so that every container user can traverse it, whatever the umask.
        os.chmod(ts_dir, 0o755)
        for path, (content, mode) in clean.items():
            full = os.path.join(ts_dir, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(content)
            os.chmod(full, mode)
        for path in clean:
            top = path.split("/", 1)[0]
            visible = os.path.join(target, top)
            if not os.path.lexists(visible):
                os.symlink(os.path.join(DATA_DIR, top), visible)
        tmp_link = os.path.join(target, NEW_DATA_DIR)
        if os.path.lexists(tmp_link):  # left behind by an interrupted write
            os.unlink(tmp_link)
        os.symlink(os.path.basename(ts_dir), tmp_link)
        os.rename(tmp_link, data_link)
    except BaseException:
        shutil.rmtree(ts_dir, ignore_errors=True)
        raise
    for path in to_remove:
        if "/" not in path:  # only the top-level symlinks are user-visible
            try:
                os.unlink(os.path.join(target, path))
            except FileNotFoundError:
                pass
    if old_ts:
        shutil.rmtree(old_ts, ignore_errors=True)
    return True


# --- payloads: configMap, secret, downwardAPI, projected -------------------------------------


async def _get_object(client: Client, res: str, kind: str, namespace: str, name: str,
                      optional: bool) -> dict | None:
    """The object, None if missing but optional; a missing required object is an error."""
    try:
        return await client.get(res, namespace, name)
    except ApiError as e:
        if e.code == 404:
            if optional:
                return None
            raise _SetUpError(f"{kind} {go_quote(name)} not found") from None
        raise _SetUpError(e.message) from None


def _make_payload(items: list | None, data: dict[str, bytes], default_mode: int, optional: bool,
                  missing: str) -> Payload:
    """MakePayload: every key, or only the listed items (key -> path, own mode)."""
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: Payload = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise _SetUpError(f"{missing}: {key}")
        mode = item.get("mode")
        out[item.get("path", key)] = (data[key], default_mode if mode is None else int(mode))
    return out


def _configmap_bytes(cm: dict | None) -> dict[str, bytes]:
    if cm is None:
        return {}
    data = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    data.update({k: base64.b64decode(v or "") for k, v in (cm.get("binaryData") or {}).items()})
    return data


def _secret_bytes(secret: dict | None) -> dict[str, bytes]:
    if secret is None:
        return {}
    return {k: base64.b64decode(v or "") for k, v in (secret.get("data") or {}).items()}


async def _configmap_payload(client: Client, ns: str, src: dict, default_mode: int) -> Payload:
    optional = bool(src.get("optional"))
    cm = await _get_object(client, "configmaps", "configmap", ns, src.get("name", ""), optional)
    return _make_payload(src.get("items"), _configmap_bytes(cm), default_mode, optional,
                         "configmap references non-existent config key")


async def _secret_payload(client: Client, ns: str, src: dict, name_field: str,
                          default_mode: int) -> Payload:
    optional = bool(src.get("optional"))
    secret = await _get_object(client, "secrets", "secret", ns, src.get(name_field, ""), optional)
    return _make_payload(src.get("items"), _secret_bytes(secret), default_mode, optional,
                         "secret references non-existent secret key")


def _downward_payload(pod: dict, items: list | None, default_mode: int,
                      allocatable: Callable[[], dict[str, str]]) -> tuple[Payload, list[str]]:
    """CollectData: one file per item; errors are collected, not raised, as upstream."""
    out: Payload = {}
    errs: list[str] = []
    for item in items or []:
        mode = item.get("mode")
        content = b""
        try:
            if item.get("fieldRef"):
                content = extract_field_path(pod, item["fieldRef"].get("fieldPath", "")).encode()
            elif item.get("resourceFieldRef"):
                content = resource_field_value(item["resourceFieldRef"], pod, None,
                                               allocatable()).encode()
        except ValueError as e:
            errs.append(str(e))
        out[os.path.normpath(item.get("path", ""))] = (
            content, default_mode if mode is None else int(mode))
    return out, errs


async def _projected_payload(client: Client, pod: dict, src: dict,
                             allocatable: Callable[[], dict[str, str]]) -> Payload:
    ns = pod["metadata"].get("namespace") or "default"
    default_mode = int(src.get("defaultMode", DEFAULT_MODE))
    out: Payload = {}
    errs: list[str] = []
    for s in src.get("sources") or []:
        try:
            if s.get("configMap") is not None:
                out.update(await _configmap_payload(client, ns, s["configMap"], default_mode))
            elif s.get("secret") is not None:
                out.update(await _secret_payload(client, ns, s["secret"], "name", default_mode))
            elif s.get("downwardAPI") is not None:
                payload, derrs = _downward_payload(pod, s["downwardAPI"].get("items"),
                                                   default_mode, allocatable)
                out.update(payload)
                errs += derrs
            elif s.get("serviceAccountToken") is not None:
                out[s["serviceAccountToken"].get("path", "token")] = (PLACEHOLDER_TOKEN,
                                                                       default_mode)
            # clusterTrustBundle / podCertificate sources have no API here: nothing to project.
        except _SetUpError as e:
            errs.append(str(e))
    if errs:
        raise _SetUpError(_aggregate(errs))
    return out


# --- hostPath --------------------------------------------------------------------------------


def _check_host_path(path: str, typ: str) -> None:
    """hostPath's SetUp: the `type` check, creating what the *OrCreate types create."""
    if ".." in path.split("/"):
        raise _SetUpError(f"invalid HostPath `{path}`: must not contain '..'")
    try:
        if typ == "":
            # No check upstream; the runtime creates a missing source as a directory.
            if not os.path.lexists(path):
                os.makedirs(path, 0o755, exist_ok=True)
            return
        if typ == "DirectoryOrCreate" and not os.path.exists(path):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o755)
            return
        if typ == "FileOrCreate" and not os.path.exists(path):
            fd = os.open(path, os.O_CREAT | os.O_RDONLY, 0o644)
            os.close(fd)
            return
    except OSError as e:
        op = "open" if typ == "FileOrCreate" else "mkdir"
        raise _SetUpError(_go_os_error(op, path, e)) from None
    checks = {
        "DirectoryOrCreate": (stat.S_ISDIR, "a directory"),
        "Directory": (stat.S_ISDIR, "a directory"),
        "FileOrCreate": (stat.S_ISREG, "a file"),
        "File": (stat.S_ISREG, "a file"),
        "Socket": (stat.S_ISSOCK, "a socket file"),
        "CharDevice": (stat.S_ISCHR, "a character device"),
        "BlockDevice": (stat.S_ISBLK, "a block device"),
    }
    if typ not in checks:
        raise _SetUpError(f"{typ} is an invalid volume type")
    test, what = checks[typ]
    try:
        ok = test(os.stat(path).st_mode)
    except OSError:
        ok = False
    if not ok:
        raise _SetUpError(f"hostPath type check failed: {path} is not {what}")


# --- NFS -------------------------------------------------------------------------------------


def _nfs_helper() -> str | None:
    for candidate in (shutil.which("mount.nfs"), "/sbin/mount.nfs", "/usr/sbin/mount.nfs"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _mount_failed(why: str, args: list[str], output: bytes) -> str:
    # mount-utils' error text, which the kubelet puts in the FailedMount event.
    return (f"mount failed: {why}\nMounting command: mount\nMounting arguments: {' '.join(args)}"
            f"\nOutput: {output.decode(errors='replace').strip()}")


def _rmdir_quietly(path: str) -> None:
    try:
        if not os.path.ismount(path):
            os.rmdir(path)
    except OSError:
        pass


async def _mount_nfs(server: str, export: str, target: str, options: list[str], read_only: bool,
                     timeout: float) -> None:
    if await asyncio.to_thread(os.path.ismount, target):
        return  # mounted by an earlier SetUp of this pod
    if _nfs_helper() is None:
        raise _SetUpError("mount failed: mount.nfs is not installed on this node "
                          "(install nfs-common)")
    host = f"[{server}]" if ":" in server else server
    opts = list(options) + (["ro"] if read_only else [])
    args = ["-t", "nfs"] + (["-o", ",".join(opts)] if opts else []) + [f"{host}:{export}", target]
    await asyncio.to_thread(os.makedirs, target, 0o750, True)
    try:
        # Its own session, so a hung mount.nfs child can be killed with its parent.
        proc = await asyncio.create_subprocess_exec(
            "mount", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        await asyncio.to_thread(_rmdir_quietly, target)
        raise _SetUpError(_mount_failed(str(e), args, b"")) from None
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            await asyncio.wait_for(proc.wait(), 2.0)
        except asyncio.TimeoutError:
            log.warning("mount of %s did not exit after SIGKILL", target)
        await asyncio.to_thread(_rmdir_quietly, target)
        raise _SetUpError(_mount_failed(f"timed out after {timeout:g}s", args, b"")) from None
    if proc.returncode != 0:
        await asyncio.to_thread(_rmdir_quietly, target)
        raise _SetUpError(_mount_failed(f"exit status {proc.returncode}", args, output))


# --- persistent volume claims ----------------------------------------------------------------


async def _claimed_volume(client: Client, pod: dict, claim_name: str, ephemeral: bool
                          ) -> dict:
    """The volume manager's getPVCExtractPV + getPVSpec: the PV bound to the claim."""
    ns = pod["metadata"].get("namespace") or "default"

    def failed(why: str) -> VolumeError:
        return VolumeError(f"error processing PVC {ns}/{claim_name}: {why}")
    try:
        pvc = await client.get("persistentvolumeclaims", ns, claim_name)
    except ApiError as e:
        raise failed(f"failed to fetch PVC from API server: {e.message}") from None
    if pvc["metadata"].get("deletionTimestamp"):
        raise failed("PVC is being deleted")
    if (pvc.get("status") or {}).get("phase") != "Bound":
        raise failed("PVC is not bound")
    pv_name = (pvc.get("spec") or {}).get("volumeName") or ""
    if not pv_name:
        raise failed("PVC has empty pvc.Spec.VolumeName")
    if ephemeral:
        owners = pvc["metadata"].get("ownerReferences") or []
        if not any(o.get("controller") and o.get("uid") == pod["metadata"].get("uid")
                   for o in owners):
            raise VolumeError(f"PVC {ns}/{claim_name} was not created for pod "
                              f"{ns}/{pod['metadata'].get('name')} (pod is not owner)")
    try:
        pv = await client.get("persistentvolumes", None, pv_name)
    except ApiError as e:
        raise failed(f"failed to fetch PV {pv_name} from API server: {e.message}") from None
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref:
        raise failed(f"found PV object {pv_name} but it has a nil pv.Spec.ClaimRef indicating "
                     f"it is not yet bound to the claim")
    if ref.get("uid") != pvc["metadata"].get("uid"):
        raise failed(f"found PV object {pv_name} but its pv.Spec.ClaimRef.UID {ref.get('uid', '')}"
                     f" does not point to claim.UID {pvc['metadata'].get('uid', '')}")
    return pv


async def _pv_path(pv: dict, pod_dir: str, read_only: bool, nfs_timeout: float) -> str:
    name = pv["metadata"]["name"]
    spec = pv.get("spec") or {}
    try:
        if spec.get("hostPath"):
            path = spec["hostPath"].get("path", "")
            await asyncio.to_thread(_check_host_path, path, spec["hostPath"].get("type") or "")
            return path
        if spec.get("local"):
            path = spec["local"].get("path", "")
            if not await asyncio.to_thread(os.path.exists, path):
                raise VolumeError(f"MountVolume.NewMounter initialization failed for volume "
                                  f"{go_quote(name)} : path {go_quote(path)} does not exist", name)
            if not await asyncio.to_thread(os.path.isdir, path):
                raise VolumeError(f"MountVolume.NewMounter initialization failed for volume "
                                  f"{go_quote(name)} : only directory and block device are "
                                  f"supported", name)
            return path
        if spec.get("nfs"):
            nfs = spec["nfs"]
            target = os.path.join(pod_dir, "volumes", NFS, name)
            await _mount_nfs(nfs.get("server", ""), nfs.get("path", ""), target,
                             spec.get("mountOptions") or [], read_only or bool(nfs.get("readOnly")),
                             nfs_timeout)
            return target
    except _SetUpError as e:
        raise _set_up_failed(name, e) from None
    raise VolumeError(f"MountVolume.SetUp failed for volume {go_quote(name)} : "
                      f"no volume plugin matched", name)


# --- setting volumes up ----------------------------------------------------------------------


def _volume_kind(vol: dict) -> str:
    for kind in ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected",
                 "persistentVolumeClaim", "ephemeral", "nfs"):
        if vol.get(kind) is not None:
            return kind
    return ""


def _api_data_dir(pod_dir: str, kind: str, name: str) -> str:
    plugin = {"configMap": CONFIGMAP, "secret": SECRET, "downwardAPI": DOWNWARD_API,
              "projected": PROJECTED}[kind]
    return os.path.join(pod_dir, "volumes", plugin, name)


def _make_dir(path: str, mode: int) -> None:
    os.makedirs(path, exist_ok=True)
    if stat.S_IMODE(os.stat(path).st_mode) != mode:
        os.chmod(path, mode)


async def _api_data_payload(client: Client, pod: dict, vol: dict, kind: str,
                            allocatable: Callable[[], dict[str, str]]) -> Payload:
    ns = pod["metadata"].get("namespace") or "default"
    src = vol[kind]
    mode = int(src.get("defaultMode", DEFAULT_MODE))
    if kind == "configMap":
        return await _configmap_payload(client, ns, src, mode)
    if kind == "secret":
        return await _secret_payload(client, ns, src, "secretName", mode)
    if kind == "downwardAPI":
        payload, errs = _downward_payload(pod, src.get("items"), mode, allocatable)
        if errs:
            raise _SetUpError(_aggregate(errs))
        return payload
    return await _projected_payload(client, pod, src, allocatable)


async def _set_up(client: Client, pod: dict, vol: dict, pod_dir: str,
                  allocatable: Callable[[], dict[str, str]], nfs_timeout: float) -> str:
    name = vol.get("name", "")
    kind = _volume_kind(vol)
    try:
        if kind == "emptyDir":
            path = os.path.join(pod_dir, "volumes", EMPTY_DIR, name)
            # 0777: any container user may write its scratch space.
            await asyncio.to_thread(_make_dir, path, 0o777)
            return path
        if kind == "hostPath":
            path = vol["hostPath"].get("path", "")
            await asyncio.to_thread(_check_host_path, path, vol["hostPath"].get("type") or "")
            return path
        if kind in _API_DATA_SOURCES:
            payload = await _api_data_payload(client, pod, vol, kind, allocatable)
            path = _api_data_dir(pod_dir, kind, name)

            def write() -> None:
                _make_dir(path, 0o777)
                atomic_write(path, payload)
            try:
                await asyncio.to_thread(write)
            except OSError as e:
                raise _SetUpError(str(e)) from None
            return path
        if kind == "nfs":
            nfs = vol["nfs"]
            path = os.path.join(pod_dir, "volumes", NFS, name)
            await _mount_nfs(nfs.get("server", ""), nfs.get("path", ""), path, [],
                             bool(nfs.get("readOnly")), nfs_timeout)
            return path
    except _SetUpError as e:
        raise _set_up_failed(name, e) from None
    if kind in ("persistentVolumeClaim", "ephemeral"):
        if kind == "ephemeral":
            claim, read_only = f"{pod['metadata'].get('name', '')}-{name}", False
        else:
            claim = vol["persistentVolumeClaim"].get("claimName", "")
            read_only = bool(vol["persistentVolumeClaim"].get("readOnly"))
        try:
            pv = await _claimed_volume(client, pod, claim, kind == "ephemeral")
        except VolumeError as e:
            e.volume = name
            raise
        return await _pv_path(pv, pod_dir, read_only, nfs_timeout)
    raise VolumeError(f"MountVolume.SetUp failed for volume {go_quote(name)} : "
                      f"no volume plugin matched", name)


def _allocatable_for(node: dict | None) -> Callable[[], dict[str, str]]:
    cache: list[dict[str, str]] = []

    def get() -> dict[str, str]:
        if not cache:
            cache.append(node_allocatable(node))
        return cache[0]
    return get


async def prepare_volumes(client: Client, pod: dict, pod_dir: str, *, node: dict | None = None,
                          nfs_timeout: float = NFS_MOUNT_TIMEOUT) -> dict[str, str]:
    """Set up every volume of the pod; volume name -> host directory (or file) path.

    Idempotent: call it again on a retry or after a restart. Raises VolumeError (reason
    FailedMount) for the first volume that cannot be set up. `node` supplies allocatable for
    downwardAPI resourceFieldRefs of containers without limits.
    """
    allocatable = _allocatable_for(node)
    paths: dict[str, str] = {}
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        paths[vol.get("name", "")] = await _set_up(client, pod, vol, pod_dir, allocatable,
                                                   nfs_timeout)
    return paths


async def refresh_volumes(client: Client, pod: dict, pod_dir: str, *,
                          node: dict | None = None) -> None:
    """Bring configMap/secret/downwardAPI/projected volumes up to date, atomically.

    Every volume is tried; the first failure is raised afterwards as VolumeError and the
    volume keeps its previous contents (as upstream, when an object is deleted under a pod).
    """
    allocatable = _allocatable_for(node)
    first: VolumeError | None = None
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        if _volume_kind(vol) not in _API_DATA_SOURCES:
            continue
        try:
            await _set_up(client, pod, vol, pod_dir, allocatable, NFS_MOUNT_TIMEOUT)
        except VolumeError as e:
            first = first or e
    if first is not None:
        raise first


# --- container mounts ------------------------------------------------------------------------


def _expand_subpath(expr: str, env: list[tuple[str, str]] | None) -> str:
    """ExpandContainerVolumeMounts: every referenced variable must have a non-empty value."""
    values = dict(env or [])
    missing: set[str] = set()

    def lookup(name: str) -> str:
        if not values.get(name):
            missing.add(name)
        return values.get(name, "")
    out = expand(expr, lookup)
    if missing:
        raise ContainerConfigError(f"missing value for {', '.join(sorted(missing))}")
    return out


def _prepare_subpath(volume_path: str, sub: str, mount: str, container: str) -> str:
    if os.path.isabs(sub):
        raise ContainerConfigError(f"error SubPath `{sub}` must not be an absolute path")
    if ".." in sub.split("/"):
        raise ContainerConfigError(f"unable to provision SubPath `{sub}`: must not contain '..'")
    full = os.path.join(volume_path, sub)
    if not os.path.lexists(full):
        # Created now with the volume's own mode, as the kubelet does, so it is not left to
        # the runtime to create it root-owned with some other mode.
        try:
            perm = stat.S_IMODE(os.stat(volume_path).st_mode)
            os.makedirs(full, exist_ok=True)
            os.chmod(full, perm)
        except OSError:
            raise ContainerConfigError(f"failed to create subPath directory for volumeMount "
                                       f"{go_quote(mount)} of container "
                                       f"{go_quote(container)}") from None
    # A symlink inside the volume must not lead the mount out of it.
    real = os.path.realpath(full)
    base = os.path.realpath(volume_path)
    if real != base and not real.startswith(base.rstrip("/") + "/"):
        raise ContainerConfigError(f"failed to prepare subPath for volumeMount {go_quote(mount)}"
                                   f" of container {go_quote(container)}")
    return real


def container_mounts(pod: dict, container: dict, volume_paths: dict[str, str], *,
                     env: list[tuple[str, str]] | None = None) -> list[Mount]:
    """The container's volumeMounts as runtime mounts (the kubelet's makeMounts).

    `env` (from container_env) expands subPathExpr. Raises ContainerConfigError for a mount
    of an unknown volume or a bad subPath. API-data volumes are always read-only, as are
    read-only claims and NFS sources.
    """
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    cname = container.get("name", "")
    mounts: list[Mount] = []
    for vm in container.get("volumeMounts") or []:
        name = vm.get("name", "")
        host = volume_paths.get(name)
        if host is None:
            raise ContainerConfigError(f"cannot find volume {go_quote(name)} to mount into "
                                       f"container {go_quote(cname)}")
        sub = vm.get("subPath") or ""
        if vm.get("subPathExpr"):
            sub = _expand_subpath(vm["subPathExpr"], env)
        if sub:
            host = _prepare_subpath(host, sub, name, cname)
        vol = volumes.get(name) or {}
        read_only = (bool(vm.get("readOnly"))
                     or any(vol.get(k) is not None for k in _API_DATA_SOURCES)
                     or bool((vol.get("persistentVolumeClaim") or {}).get("readOnly"))
                     or bool((vol.get("nfs") or {}).get("readOnly")))
        mounts.append(Mount(host_path=host, container_path=vm.get("mountPath", ""),
                            read_only=read_only))
    return mounts


# --- tear-down -------------------------------------------------------------------------------


def _mount_points() -> set[str]:
    """Every mount point of this mount namespace (bind mounts included, unlike ismount)."""
    points: set[str] = set()
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4:
                    # Octal escapes (\040 for a space) as the kernel writes them.
                    points.add(_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[4]))
    except OSError:
        pass
    return points


def _is_mount(path: str, points: set[str]) -> bool:
    return path in points or os.path.realpath(path) in points or os.path.ismount(path)


def _unmount(path: str) -> None:
    # A lazy detach never waits on an unreachable server; nothing of ours is using it now.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
        log.warning("unmount %s failed: %s", path, os.strerror(ctypes.get_errno()))


def _remove_tree(path: str, points: set[str]) -> bool:
    """Delete `path`, never following a symlink nor entering a mount; True when all gone."""
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return True
    if _is_mount(path, points):
        log.warning("not removing %s: something is mounted there", path)
        return False
    gone = True
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                gone = _remove_tree(entry.path, points) and gone
            else:
                os.unlink(entry.path)
    if gone:
        os.rmdir(path)
    return gone


def remove_volumes(pod_dir: str) -> None:
    """Delete the pod's emptyDir/configMap/secret/downwardAPI/projected data, unmount its NFS
    volumes; hostPath and PV data (which live outside pod_dir) are never touched.

    Blocking disk work: call it with asyncio.to_thread.
    """
    root = os.path.join(pod_dir, "volumes")
    if not os.path.isdir(root) or os.path.islink(root):
        return
    points = _mount_points()
    nfs_dir = os.path.join(root, NFS)
    if os.path.isdir(nfs_dir) and not os.path.islink(nfs_dir):
        for name in os.listdir(nfs_dir):
            target = os.path.join(nfs_dir, name)
            if _is_mount(target, points):
                _unmount(target)
        points = _mount_points()
    _remove_tree(root, points)

