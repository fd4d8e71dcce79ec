"""Pod volumes on disk: plugin layouts, atomic updates, type checks, claims, mounts, clean-up.

Real files in tmp dirs and the in-process API. The NFS test never reaches a server: without
the mount.nfs helper it fails before mounting, and with it the only address used is loopback.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import stat
import subprocess

import pytest

from pocketkube.agent.env import ContainerConfigError
from pocketkube.agent.volumes import (VolumeError, container_mounts, prepare_volumes,
                                      refresh_volumes, remove_volumes)
from pocketkube.api.core import Api
from pocketkube.client.inprocess import InProcessClient
from pocketkube.store.sqlite import SqliteStore


def run(tmp_path, body):
    async def main():
        store = SqliteStore(str(tmp_path / "s.db"))
        api = Api(store)
        await api.bootstrap()
        try:
            await body(InProcessClient(api))
        finally:
            await store.close()
    asyncio.run(main())


async def make_pod(client, volumes, mounts=(), name="web", labels=None, resources=None,
                   **spec):
    c = {"name": "app", "image": "busybox", "volumeMounts": list(mounts)}
    if resources:
        c["resources"] = resources
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": labels or {"app": "web"},
                        "annotations": {"owner": "team-a"}},
           "spec": {"containers": [c], "volumes": volumes, "nodeName": "n1", **spec}}
    return await client.create("pods", "default", pod)


def cm(name, **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def read(path):
    with open(path) as f:
        return f.read()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_configmap_volume_layout_items_modes_and_updates(tmp_path):
    async def body(client):
        await client.create("configmaps", "default", cm("cfg", **{"app.conf": "v1", "x": "1"}))
        pod = await make_pod(client, [
            {"name": "all", "configMap": {"name": "cfg"}},
            {"name": "some", "configMap": {"name": "cfg", "defaultMode": 0o600, "items": [
                {"key": "app.conf", "path": "conf/app.conf"},
                {"key": "x", "path": "x-file", "mode": 0o400}]}},
        ])
        pod_dir = str(tmp_path / "pod")
        paths = await prepare_volumes(client, pod, pod_dir)
        all_dir = paths["all"]
        assert all_dir == os.path.join(pod_dir, "volumes", "kubernetes.io~configmap", "all")
        assert read(os.path.join(all_dir, "app.conf")) == "v1"
        assert mode(os.path.join(all_dir, "app.conf")) == 0o644
        # The kubelet's atomic layout: key -> ..data/key, ..data -> ..<timestamp>.
        assert os.readlink(os.path.join(all_dir, "app.conf")) == "..data/app.conf"
        ts = os.readlink(os.path.join(all_dir, "..data"))
        assert ts.startswith("..") and os.path.isdir(os.path.join(all_dir, ts))
        some = paths["some"]
        assert sorted(os.listdir(some)) == sorted(["..data", ts_name(some), "conf", "x-file"])
        assert read(os.path.join(some, "conf", "app.conf")) == "v1"
        assert mode(os.path.join(some, "conf", "app.conf")) == 0o600
        assert mode(os.path.join(some, "x-file")) == 0o400

        # Nothing changed: refresh keeps the same version.
        await refresh_volumes(client, pod, pod_dir)
        assert os.readlink(os.path.join(all_dir, "..data")) == ts
        # An update (changed value, removed key, new key) lands in one atomic swap. The
        # item-projected volume now lacks key x: its refresh fails (after the others were
        # refreshed) and it keeps its old contents.
        await client.update("configmaps", "default", cm("cfg", **{"app.conf": "v2", "y": "2"}))
        with pytest.raises(VolumeError) as err:
            await refresh_volumes(client, pod, pod_dir)
        assert err.value.message == ('MountVolume.SetUp failed for volume "some" : '
                                     'configmap references non-existent config key: x')
        new_ts = os.readlink(os.path.join(all_dir, "..data"))
        assert new_ts != ts and not os.path.exists(os.path.join(all_dir, ts))
        assert read(os.path.join(all_dir, "app.conf")) == "v2"
        assert read(os.path.join(all_dir, "y")) == "2"
        assert not os.path.lexists(os.path.join(all_dir, "x"))
        assert read(os.path.join(some, "x-file")) == "1"
    run(tmp_path, body)


def ts_name(target):
    return os.readlink(os.path.join(target, "..data"))


def test_missing_configmap_fails_unless_optional(tmp_path):
    async def body(client):
        pod = await make_pod(client, [{"name": "cfg", "configMap": {"name": "cfg"}}])
        with pytest.raises(VolumeError) as err:
            await prepare_volumes(client, pod, str(tmp_path / "p1"))
        assert err.value.reason == "FailedMount"
        assert err.value.message == ('MountVolume.SetUp failed for volume "cfg" : '
                                     'configmap "cfg" not found')
        pod = await make_pod(client, [{"name": "cfg", "configMap": {"name": "cfg",
                                                                    "optional": True}}], name="p2")
        paths = await prepare_volumes(client, pod, str(tmp_path / "p2"))
        assert [n for n in os.listdir(paths["cfg"]) if not n.startswith("..")] == []
        # Once it exists, a refresh brings its keys in.
        await client.create("configmaps", "default", cm("cfg", a="1"))
        await refresh_volumes(client, pod, str(tmp_path / "p2"))
        assert read(os.path.join(paths["cfg"], "a")) == "1"
    run(tmp_path, body)


def test_secret_volume_is_decoded(tmp_path):
    async def body(client):
        await client.create("secrets", "default", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"},
            "data": {"tls.key": base64.b64encode(b"\x00\xffkey").decode()},
            "stringData": {"user": "admin"}})
        pod = await make_pod(client, [
            {"name": "tls", "secret": {"secretName": "tls"}},
            {"name": "gone", "secret": {"secretName": "gone", "optional": True}}])
        paths = await prepare_volumes(client, pod, str(tmp_path / "pod"))
        d = paths["tls"]
        assert "kubernetes.io~secret" in d
        with open(os.path.join(d, "tls.key"), "rb") as f:
            assert f.read() == b"\x00\xffkey"
        assert read(os.path.join(d, "user")) == "admin"
        assert mode(os.path.join(d, "user")) == 0o644
        pod2 = await make_pod(client, [{"name": "s", "secret": {"secretName": "nope"}}], name="p2")
        with pytest.raises(VolumeError, match='volume "s" : secret "nope" not found'):
            await prepare_volumes(client, pod2, str(tmp_path / "p2"))
    run(tmp_path, body)


def test_downward_api_and_projected_volumes(tmp_path):
    async def body(client):
        await client.create("configmaps", "default", cm("ca", **{"ca.crt": "CERT"}))
        items = [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "tier", "fieldRef": {"fieldPath": "metadata.labels['tier']"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "app",
                                                 "resource": "limits.memory", "divisor": "1Mi"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "app",
                                                 "resource": "limits.cpu", "divisor": "1m"}},
        ]
        pod = await make_pod(client, [
            {"name": "info", "downwardAPI": {"items": items}},
            {"name": "api", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}},
                {"configMap": {"name": "ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                                            "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            ]}}],
            labels={"app": "web", "tier": "fe"}, resources={"limits": {"memory": "64Mi"}},
            serviceAccountName="default")
        node = {"status": {"allocatable": {"cpu": "3", "memory": "8Gi"}}}
        pod_dir = str(tmp_path / "pod")
        paths = await prepare_volumes(client, pod, pod_dir, node=node)
        info = paths["info"]
        assert "kubernetes.io~downward-api" in info
        assert read(os.path.join(info, "labels")) == 'app="web"\ntier="fe"'
        assert read(os.path.join(info, "annotations")) == 'owner="team-a"'
        assert read(os.path.join(info, "name")) == "web"
        assert read(os.path.join(info, "tier")) == "fe"
        assert read(os.path.join(info, "mem")) == "64"
        assert read(os.path.join(info, "cpu")) == "3000"   # no limit: node allocatable
        api = paths["api"]
        assert "kubernetes.io~projected" in api
        assert read(os.path.join(api, "ca.crt")) == "CERT"
        assert read(os.path.join(api, "namespace")) == "default"
        assert os.path.getsize(os.path.join(api, "token")) > 0
        # A label change reaches the file on refresh.
        pod["metadata"]["labels"]["tier"] = "be"
        await refresh_volumes(client, pod, pod_dir, node=node)
        assert read(os.path.join(info, "labels")) == 'app="web"\ntier="be"'
        # A missing projected source is reported with the volume's name.
        await client.delete("configmaps", "default", "ca")
        with pytest.raises(VolumeError) as err:
            await refresh_volumes(client, pod, pod_dir, node=node)
        assert err.value.message == ('MountVolume.SetUp failed for volume "api" : '
                                     'configmap "ca" not found')
    run(tmp_path, body)


def test_empty_dir_and_host_path_type_checks(tmp_path):
    async def body(client):
        existing_dir = tmp_path / "data"
        existing_dir.mkdir()
        existing_file = tmp_path / "file.txt"
        existing_file.write_text("x")
        sock_path = str(tmp_path / "s.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(sock_path)

        def hp(name, path, typ=None):
            src = {"path": str(path)}
            if typ is not None:
                src["type"] = typ
            return {"name": name, "hostPath": src}
        good = [
            {"name": "scratch", "emptyDir": {}},
            hp("dir", existing_dir, "Directory"),
            hp("mkdir", tmp_path / "new" / "deep", "DirectoryOrCreate"),
            hp("touch", tmp_path / "new-file", "FileOrCreate"),
            hp("file", existing_file, "File"),
            hp("sock", sock_path, "Socket"),
            hp("null", "/dev/null", "CharDevice"),
            hp("untyped", tmp_path / "untyped"),
        ]
        pod = await make_pod(client, good)
        pod_dir = str(tmp_path / "pod")
        paths = await prepare_volumes(client, pod, pod_dir)
        srv.close()
        scratch = paths["scratch"]
        assert scratch == os.path.join(pod_dir, "volumes", "kubernetes.io~empty-dir", "scratch")
        assert mode(scratch) == 0o777
        assert paths["dir"] == str(existing_dir)
        assert os.path.isdir(paths["mkdir"]) and mode(paths["mkdir"]) == 0o755
        assert os.path.isfile(paths["touch"]) and mode(paths["touch"]) & 0o777 == 0o644 & ~0o022
        assert os.path.isdir(paths["untyped"])

        bad = [
            (hp("v", tmp_path / "missing", "Directory"), "is not a directory"),
            (hp("v", existing_file, "Directory"), "is not a directory"),
            (hp("v", existing_dir, "File"), "is not a file"),
            (hp("v", existing_dir, "FileOrCreate"), "is not a file"),
            (hp("v", existing_file, "DirectoryOrCreate"), "is not a directory"),
            (hp("v", existing_file, "Socket"), "is not a socket file"),
            (hp("v", existing_file, "CharDevice"), "is not a character device"),
            (hp("v", "/dev/null", "BlockDevice"), "is not a block device"),
        ]
        for i, (vol, what) in enumerate(bad):
            p = await make_pod(client, [vol], name=f"bad{i}")
            with pytest.raises(VolumeError) as err:
                await prepare_volumes(client, p, str(tmp_path / f"bad{i}"))
            path = vol["hostPath"]["path"]
            assert err.value.message == ('MountVolume.SetUp failed for volume "v" : '
                                         f'hostPath type check failed: {path} {what}')
    run(tmp_path, body)


async def make_claim(client, name, pv_source, bound=True, claim_ref=True, pv_name=None):
    pv_name = pv_name or f"pv-{name}"
    pvc = await client.create("persistentvolumeclaims", "default", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": pv_name,
                 "resources": {"requests": {"storage": "1Gi"}}}})
    spec = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], **pv_source}
    if claim_ref:
        spec["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": "default",
                            "name": name, "uid": pvc["metadata"]["uid"]}
    await client.create("persistentvolumes", None, {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
        "spec": spec})
    if bound:
        pvc["status"] = {"phase": "Bound"}
        await client.update_status("persistentvolumeclaims", "default", pvc)
    return pvc


def test_claims_resolve_to_host_path_volumes(tmp_path):
    async def body(client):
        data = tmp_path / "pv-data"
        await make_claim(client, "data", {"hostPath": {"path": str(data),
                                                       "type": "DirectoryOrCreate"}})
        await make_claim(client, "pending", {"hostPath": {"path": str(data)}}, bound=False)
        await make_claim(client, "unclaimed", {"hostPath": {"path": str(data)}},
                         claim_ref=False)
        pod = await make_pod(client, [
            {"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}],
            [{"name": "data", "mountPath": "/data"}])
        paths = await prepare_volumes(client, pod, str(tmp_path / "pod"))
        assert paths == {"data": str(data)} and os.path.isdir(data)
        (m,) = container_mounts(pod, pod["spec"]["containers"][0], paths)
        assert (m.host_path, m.container_path, m.read_only) == (str(data), "/data", True)

        cases = [("pending", "error processing PVC default/pending: PVC is not bound"),
                 ("missing", "error processing PVC default/missing: failed to fetch PVC from API"
                             ' server: persistentvolumeclaims "missing" not found'),
                 ("unclaimed", "error processing PVC default/unclaimed: found PV object "
                               "pv-unclaimed but it has a nil pv.Spec.ClaimRef indicating it is "
                               "not yet bound to the claim")]
        for claim, message in cases:
            p = await make_pod(client, [{"name": "v",
                                         "persistentVolumeClaim": {"claimName": claim}}],
                               name=f"p-{claim}")
            with pytest.raises(VolumeError) as err:
                await prepare_volumes(client, p, str(tmp_path / claim))
            assert err.value.message == message

        await make_claim(client, "local", {"local": {"path": str(tmp_path / "no-disk")},
                                           "nodeAffinity": {"required": {"nodeSelectorTerms": [
                                               {"matchExpressions": [{
                                                   "key": "kubernetes.io/hostname",
                                                   "operator": "In", "values": ["n1"]}]}]}}})
        p = await make_pod(client, [{"name": "v", "persistentVolumeClaim": {"claimName": "local"}}],
                           name="p-local")
        with pytest.raises(VolumeError) as err:
            await prepare_volumes(client, p, str(tmp_path / "local"))
        assert err.value.message == ('MountVolume.NewMounter initialization failed for volume '
                                     f'"pv-local" : path "{tmp_path / "no-disk"}" does not exist')
    run(tmp_path, body)


def test_nfs_volume_that_cannot_be_mounted_says_why(tmp_path):
    async def body(client):
        # Loopback only, a path no server exports; never an address from elsewhere.
        await make_claim(client, "shared", {"nfs": {"server": "127.0.0.1",
                                                    "path": "/pocketkube-test-no-such-export"}},
                         pv_name="nfs-pv")
        pod = await make_pod(client, [{"name": "shared",
                                       "persistentVolumeClaim": {"claimName": "shared"}}])
        pod_dir = str(tmp_path / "pod")
        with pytest.raises(VolumeError) as err:
            await prepare_volumes(client, pod, pod_dir, nfs_timeout=3.0)
        message = err.value.message
        assert message.startswith('MountVolume.SetUp failed for volume "nfs-pv" : mount failed: ')
        if "not installed" in message:
            assert message.endswith("mount.nfs is not installed on this node "
                                    "(install nfs-common)")
        else:
            assert "Mounting arguments: -t nfs 127.0.0.1:/pocketkube-test-no-such-export" in message
        # No mount point is left behind.
        assert not os.path.exists(os.path.join(pod_dir, "volumes", "kubernetes.io~nfs", "nfs-pv"))
    run(tmp_path, body)


def test_sub_path_mounts(tmp_path):
    async def body(client):
        await client.create("configmaps", "default", cm("cfg", **{"nginx.conf": "conf"}))
        outside = tmp_path / "outside"
        outside.mkdir()
        mounts = [
            {"name": "scratch", "mountPath": "/work", "subPath": "a/b"},
            {"name": "scratch", "mountPath": "/logs", "subPathExpr": "logs/$(POD_NAME)"},
            {"name": "cfg", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"},
            {"name": "scratch", "mountPath": "/ro", "readOnly": True},
        ]
        pod = await make_pod(client, [{"name": "scratch", "emptyDir": {}},
                                      {"name": "cfg", "configMap": {"name": "cfg"}}], mounts)
        paths = await prepare_volumes(client, pod, str(tmp_path / "pod"))
        c = pod["spec"]["containers"][0]
        got = container_mounts(pod, c, paths, env=[("POD_NAME", "web")])
        work, logs, conf, ro = got
        assert work.host_path == os.path.join(paths["scratch"], "a", "b")
        assert os.path.isdir(work.host_path) and mode(work.host_path) == 0o777
        assert (work.container_path, work.read_only) == ("/work", False)
        assert logs.host_path == os.path.join(paths["scratch"], "logs", "web")
        # A configMap subPath is the real file (a bind mount of the symlink would go stale).
        assert read(conf.host_path) == "conf" and not os.path.islink(conf.host_path)
        assert conf.host_path.startswith(paths["cfg"]) and conf.read_only
        assert (ro.host_path, ro.read_only) == (paths["scratch"], True)

        with pytest.raises(ContainerConfigError, match="missing value for POD_NAME"):
            container_mounts(pod, c, paths)
        os.symlink(str(outside), os.path.join(paths["scratch"], "escape"))
        bad = {**c, "volumeMounts": [{"name": "scratch", "mountPath": "/x", "subPath": "escape"}]}
        with pytest.raises(ContainerConfigError, match='failed to prepare subPath for volumeMount '
                                                       '"scratch" of container "app"'):
            container_mounts(pod, bad, paths)
        bad = {**c, "volumeMounts": [{"name": "other", "mountPath": "/x"}]}
        with pytest.raises(ContainerConfigError, match='cannot find volume "other" to mount '
                                                       'into container "app"'):
            container_mounts(pod, bad, paths)
    run(tmp_path, body)


def test_remove_volumes_keeps_host_path_and_pv_data(tmp_path):
    async def body(client):
        await client.create("configmaps", "default", cm("cfg", a="1"))
        host = tmp_path / "host-data"
        host.mkdir()
        (host / "keep.txt").write_text("precious")
        pv_data = tmp_path / "pv-data"
        pv_data.mkdir()
        (pv_data / "db").write_text("rows")
        await make_claim(client, "data", {"hostPath": {"path": str(pv_data)}})
        pod = await make_pod(client, [
            {"name": "scratch", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "host", "hostPath": {"path": str(host), "type": "Directory"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}])
        pod_dir = tmp_path / "pod"
        paths = await prepare_volumes(client, pod, str(pod_dir))
        scratch = paths["scratch"]
        with open(os.path.join(scratch, "tmp.txt"), "w") as f:
            f.write("scratch")
        # Links out of the emptyDir must be removed as links, never followed.
        os.symlink(str(host), os.path.join(scratch, "to-host"))
        os.symlink(str(pv_data / "db"), os.path.join(scratch, "to-db"))
        await asyncio.to_thread(remove_volumes, str(pod_dir))
        assert not os.path.exists(pod_dir / "volumes")
        assert (host / "keep.txt").read_text() == "precious"
        assert (pv_data / "db").read_text() == "rows"
        remove_volumes(str(pod_dir))  # idempotent
    run(tmp_path, body)


def _mount(*args) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_remove_volumes_unmounts_nfs_and_never_enters_other_mounts(tmp_path):
    pod_dir = tmp_path / "pod"
    # Stand-ins: a tmpfs where an NFS export would be mounted, and a bind mount of host data
    # inside an emptyDir (same filesystem, which os.path.ismount cannot see).
    nfs = pod_dir / "volumes" / "kubernetes.io~nfs" / "nfs-pv"
    scratch = pod_dir / "volumes" / "kubernetes.io~empty-dir" / "scratch"
    host = tmp_path / "host"
    for d in (nfs, scratch / "bound", host):
        d.mkdir(parents=True)
    (host / "keep.txt").write_text("precious")
    if not _mount("-t", "tmpfs", "none", str(nfs)):
        pytest.skip("cannot mount here")
    try:
        assert _mount("--bind", str(host), str(scratch / "bound"))
        (nfs / "remote.txt").write_text("on the server")
        remove_volumes(str(pod_dir))
        assert not nfs.exists()  # unmounted (lazily) and its mount point removed
        assert (host / "keep.txt").read_text() == "precious"
        assert (scratch / "bound" / "keep.txt").exists()  # left alone, still mounted
    finally:
        subprocess.run(["umount", "-l", str(scratch / "bound")], capture_output=True)
        subprocess.run(["umount", "-l", str(nfs)], capture_output=True)
    remove_volumes(str(pod_dir))
    assert not (pod_dir / "volumes").exists()
    assert (host / "keep.txt").read_text() == "precious"
