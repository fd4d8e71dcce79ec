"""Persistent storage with the real kubectl on the `cluster` fixture's local process node.

* The default `local-path` class: a claim without a class, used by a pod, gets a volume
  provisioned on the pod's node under `<data dir>/node/storage`; the file the pod writes into
  its mount is in that directory; deleting the claim deletes the volume and its directory.
* The seed's `st-nginx.yaml` PersistentVolume and PersistentVolumeClaim, with the `nfs:` source
  swapped for a `hostPath:` to a temporary directory (no test may contact the seed's NFS
  server). The session's server is shared with other tests that may hold volumes of class
  `manual` too, so this volume is named `nfs-pv-<namespace>` and carries a label that the
  claim selects; everything else is the seed's. `kubectl get pv,pvc` shows both Bound; deleting
  the claim recycles the volume (Recycle): its files are scrubbed and it is Available again.
* An NFS volume the node cannot mount (no NFS client, or nothing serving on loopback) fails to
  recycle: phase Failed and a VolumeFailedRecycle event saying why.
"""

from __future__ import annotations

import os

import pytest
import yaml

from tests.conftest import SEED, wait_until


def _isolated() -> bool:
    return os.geteuid() == 0 and os.uname().sysname == "Linux"


def phase(c, kind: str, name: str, ns: str | None = None) -> str:
    args = ["-n", ns] if ns else []
    p = c.kubectl(*args, "get", kind, name, "-o", "jsonpath={.status.phase}", check=False)
    return p.stdout.strip() if p.returncode == 0 else ""


def gone(c, kind: str, name: str, ns: str | None = None) -> bool:
    args = ["-n", ns] if ns else []
    p = c.kubectl(*args, "get", kind, name, "--ignore-not-found", "-o", "name", check=False)
    return p.returncode == 0 and not p.stdout.strip()


def test_local_path_claim_is_provisioned_on_the_pods_node(cluster, ns):
    if not _isolated():
        pytest.skip("pods are not isolated here (not root on Linux): volume mounts are not applied")
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "writer"},
           "spec": {"containers": [{"name": "w", "image": "busybox",
                                    "command": ["sh", "-c", "echo hello-local-path > /data/hello.txt; sleep 3600"],
                                    "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                    "terminationGracePeriodSeconds": 1,
                    "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=yaml.safe_dump_all([claim, pod]))
    wait_until(lambda: phase(cluster, "pvc", "data", ns) == "Bound", 30, message="claim bound")
    pvc = cluster.kubectl_json("-n", ns, "get", "pvc", "data")
    assert pvc["spec"]["storageClassName"] == "local-path"
    pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
    node = cluster.kubectl_json("-n", ns, "get", "pod", "writer")["spec"]["nodeName"]
    path = pv["spec"]["hostPath"]["path"]
    assert path == os.path.join(cluster.data_dir, "node", "storage",
                                f"{pv['metadata']['name']}_{ns}_data")
    # The node names its own storage directory (an agent on another machine names its own).
    annotations = cluster.kubectl_json("get", "node", node)["metadata"]["annotations"]
    assert annotations["pocketkube.dev/local-path-dir"] == os.path.join(cluster.data_dir, "node", "storage")
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [node]
    target = os.path.join(path, "hello.txt")

    def written():
        try:
            with open(target) as f:
                return f.read() == "hello-local-path\n"
        except OSError:
            return False
    wait_until(written, 30, message=f"{target} written by the pod")
    # Reclaim policy Delete: the claim goes (after its pod), then the volume and its directory.
    cluster.kubectl("-n", ns, "delete", "pod", "writer", "--wait=false")
    cluster.kubectl("-n", ns, "delete", "pvc", "data", "--wait=false")
    wait_until(lambda: gone(cluster, "pv", pv["metadata"]["name"]), 45, message="volume deleted")
    assert not os.path.exists(path)


def _seed_volume_and_claim(ns: str, host_dir: str) -> list[dict]:
    with open(os.path.join(SEED, "st-nginx.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    pv = next(d for d in docs if d["kind"] == "PersistentVolume")
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    # The seed's NFS export is swapped for a local directory (see the module docstring).
    del pv["spec"]["nfs"]
    pv["spec"]["hostPath"] = {"path": host_dir}
    pv["metadata"]["name"] = f"nfs-pv-{ns}"
    pv["metadata"]["labels"] = {"storage-test": ns}
    pvc["spec"]["selector"] = {"matchLabels": {"storage-test": ns}}
    return [pv, pvc]


def test_seed_volume_and_claim_bind_and_recycle(cluster, ns, tmp_path):
    host_dir = tmp_path / "html"
    host_dir.mkdir()
    pv, pvc = _seed_volume_and_claim(ns, str(host_dir))
    name = pv["metadata"]["name"]
    try:
        cluster.kubectl("-n", ns, "create", "-f", "-", input=yaml.safe_dump_all([pv, pvc]))
        wait_until(lambda: phase(cluster, "pvc", "nfs-pvc", ns) == "Bound", 30, message="nfs-pvc bound")
        wait_until(lambda: phase(cluster, "pv", name) == "Bound", 30, message="volume bound")
        out = cluster.kubectl("-n", ns, "get", "pv,pvc").stdout
        lines = [line.split() for line in out.splitlines() if line.strip()]
        pv_header = next(line for line in out.splitlines() if line.startswith("NAME") and "RECLAIM" in line)
        assert pv_header.split()[:9] == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS",
                                         "CLAIM", "STORAGECLASS"]
        pv_row = next(line for line in lines if line[0] == f"persistentvolume/{name}")
        assert pv_row[1:7] == ["10Gi", "RWX", "Recycle", "Bound", f"{ns}/nfs-pvc", "manual"]
        pvc_header = next(line for line in out.splitlines() if line.startswith("NAME") and "VOLUME " in line + " ")
        assert pvc_header.split()[:8] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES",
                                          "STORAGECLASS", "VOLUMEATTRIBUTESCLASS"]
        pvc_row = next(line for line in lines if line[0] == "persistentvolumeclaim/nfs-pvc")
        assert pvc_row[1:6] == ["Bound", name, "10Gi", "RWX", "manual"]
        # Data on the volume; the claim goes; Recycle scrubs it and frees the volume.
        (host_dir / "index.html").write_text("Hello SeSAC\n")
        (host_dir / ".hidden").write_text("x")
        (host_dir / "sub").mkdir()
        (host_dir / "sub" / "f").write_text("y")
        cluster.kubectl("-n", ns, "delete", "pvc", "nfs-pvc")
        wait_until(lambda: phase(cluster, "pv", name) == "Available", 45, message="volume recycled")
        vol = cluster.kubectl_json("get", "pv", name)
        assert "claimRef" not in vol["spec"]
        assert host_dir.is_dir() and list(host_dir.iterdir()) == []
        events = cluster.kubectl_json("-n", "default", "get", "events",
                                      "--field-selector", f"involvedObject.name={name}")["items"]
        assert any(e["reason"] == "VolumeRecycled" and e["message"] == "Volume recycled" for e in events)
    finally:
        cluster.kubectl("delete", "pv", name, "--ignore-not-found", "--wait=false", check=False)


def test_nfs_volume_that_cannot_be_mounted_fails_to_recycle(cluster, ns):
    name = f"nfs-unreachable-{ns}"
    # Loopback only: no test contacts another address.
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": {"storage-test": ns}},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"], "storageClassName": "manual",
                   "persistentVolumeReclaimPolicy": "Recycle", "nfs": {"server": "127.0.0.1", "path": "/export"}}}
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
           "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "manual",
                    "resources": {"requests": {"storage": "1Gi"}},
                    "selector": {"matchLabels": {"storage-test": ns}}}}
    try:
        cluster.kubectl("-n", ns, "create", "-f", "-", input=yaml.safe_dump_all([pv, pvc]))
        wait_until(lambda: phase(cluster, "pvc", "c", ns) == "Bound", 30, message="claim bound")
        cluster.kubectl("-n", ns, "delete", "pvc", "c")
        wait_until(lambda: phase(cluster, "pv", name) == "Failed", 45, message="recycle failed")
        vol = cluster.kubectl_json("get", "pv", name)
        assert vol["status"]["message"].startswith('Recycle failed: MountVolume.SetUp failed for volume "vol"')
        events = cluster.kubectl_json("-n", "default", "get", "events",
                                      "--field-selector", f"involvedObject.name={name}")["items"]
        assert any(e["reason"] == "VolumeFailedRecycle" and e["type"] == "Warning" for e in events)
        assert gone(cluster, "pod", f"recycler-for-{name}", "default")
    finally:
        cluster.kubectl("delete", "pv", name, "--ignore-not-found", "--wait=false", check=False)
