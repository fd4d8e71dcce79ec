"""The `local-path` StorageClass and its provisioner, as k3s bundles rancher's local-path-provisioner.

Why it exists: k3s users expect a claim without a class to just work. A default StorageClass
`local-path` (provisioner `rancher.io/local-path`, WaitForFirstConsumer, reclaimPolicy Delete)
exists from the start - this controller creates it when it starts if it is missing, through the
API like any client - and when the scheduler has picked a node for a pod's claim
(`volume.kubernetes.io/selected-node`) and the PV controller has handed the claim to this
provisioner (`volume.kubernetes.io/storage-provisioner`), it creates the claim's volume:

* named `pvc-<claim uid>`, a `hostPath` (type DirectoryOrCreate) directory
  `<storage dir>/<pv>_<namespace>_<claim>` on that node, pinned to it by nodeAffinity on
  `kubernetes.io/hostname`, with the claim's request as capacity, its access modes and volume
  mode, the class's reclaim policy and mount options, a claimRef to the claim, and the
  annotations `pv.kubernetes.io/provisioned-by: rancher.io/local-path` and
  `local.path.provisioner/selected-node`; the kubelet creates the directory when the pod mounts
  it, and the PV controller then binds the claim;
* events `Provisioning` and `ProvisioningSucceeded` (or `ProvisioningFailed`) on the claim, from
  the provisioner, as sig-storage-lib-external-provisioner writes them.

When such a volume is Released with reclaim policy Delete, a helper pod
(`helper-pod-delete-<pv>` in kube-system, on the volume's node, as rancher's provisioner does)
removes the directory on that node, then the volume object is deleted. A pod, because the
directory is on the node's disk, which may be another machine: the agent there removes it. A
volume whose node no longer exists is deleted without cleaning up (nothing could reach its disk).

Where the storage directory is: as in k3s, the ConfigMap `kube-system/local-path-config`
(`config.json` with `nodePathMap`: a list of `{"node": <name or DEFAULT_PATH_FOR_NON_LISTED_NODES>,
"paths": [...]}`) says, per node, when it exists. Otherwise each pocketkube node names its own
directory in the annotation `pocketkube.dev/local-path-dir` (`<its state dir>/storage`: on
another machine, under that agent's data directory); nodes without it (simulated ones) use
`<data dir>/node/storage`, the control plane's node state directory, which this process can
name when it runs beside the store.
"""

from __future__ import annotations

import json
import logging
import os
import random

from ...api.errors import ApiError
from ...client.events import EventRecorder
from ...client.informer import object_key
from ...clock import Clock
from ...scheduler.podinfo import LABEL_HOSTNAME
from ...scheduler.volumes import ANN_SELECTED_NODE
from ..base import Controller, SharedInformers
from .controller import (ANN_DEFAULT_CLASS, ANN_DYNAMICALLY_PROVISIONED, ANN_STORAGE_PROVISIONER, CLAIM,
                         CLASSES, PVCS, PVS, VOLUME, claim_ref, watch_storage)
from ...agent.node import LOCAL_PATH_DIR_ANNOTATION
from .index import claim_class, storage_request
from .reclaim import SIMULATE_EXIT_AFTER, delete_pod, delete_volume

log = logging.getLogger("pocketkube.localpath")

PROVISIONER = "rancher.io/local-path"
CLASS_NAME = "local-path"
CONFIG_NAMESPACE = "kube-system"
CONFIG_NAME = "local-path-config"
DEFAULT_PATH_KEY = "DEFAULT_PATH_FOR_NON_LISTED_NODES"
FALLBACK_ROOT = "/var/lib/pocketkube/storage"
ANN_LOCAL_SELECTED_NODE = "local.path.provisioner/selected-node"
HELPER_NAMESPACE = "kube-system"
HELPER_PREFIX = "helper-pod-delete-"
HELPER_IMAGE = "busybox"
POLL = 1.0
RETRY = 15.0


def default_storage_class() -> dict:
    """The StorageClass k3s ships (`local-storage.yaml`)."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": CLASS_NAME, "annotations": {ANN_DEFAULT_CLASS: "true"}},
            "provisioner": PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"}


def data_dir_of(client) -> str | None:
    """The control plane's data directory, when this process holds its SQLite store."""
    path = getattr(getattr(getattr(client, "api", None), "store", None), "path", None)
    return os.path.dirname(os.path.abspath(path)) if isinstance(path, str) and path else None


def node_path(config: dict | None, node: str, default_root: str) -> str:
    """The storage directory for `node` from a local-path-config `config.json`."""
    entries = (config or {}).get("nodePathMap") or []
    fallback = None
    for e in entries:
        paths = e.get("paths") or []
        if not paths:
            continue
        if e.get("node") == node:
            return paths[0]
        if e.get("node") == DEFAULT_PATH_KEY:
            fallback = paths[0]
    return fallback or default_root


def volume_node(pv: dict) -> str | None:
    ann = (pv.get("metadata") or {}).get("annotations") or {}
    if ann.get(ANN_LOCAL_SELECTED_NODE):
        return ann[ANN_LOCAL_SELECTED_NODE]
    for t in ((((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
              .get("nodeSelectorTerms") or ()):
        for e in t.get("matchExpressions") or ():
            if e.get("key") == LABEL_HOSTNAME and e.get("values"):
                return e["values"][0]
    return None


def helper_pod(pv: dict, node: str, path: str) -> dict:
    """rancher's teardown helper pod: `rm -rf` of the volume directory, on the volume's node."""
    parent = os.path.dirname(path.rstrip("/")) or "/"
    size = str(storage_request({"spec": {"resources": {"requests": pv["spec"].get("capacity") or {}}}}))
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": HELPER_PREFIX + pv["metadata"]["name"], "namespace": HELPER_NAMESPACE,
                     "annotations": {SIMULATE_EXIT_AFTER: "0s"}},
        "spec": {
            "nodeName": node, "restartPolicy": "Never", "tolerations": [{"operator": "Exists"}],
            "volumes": [{"name": "data", "hostPath": {"path": parent, "type": "DirectoryOrCreate"}}],
            "containers": [{
                "name": "helper-pod", "image": HELPER_IMAGE, "command": ["/bin/sh", "-c", 'rm -rf "$VOL_DIR"'],
                "env": [{"name": "VOL_DIR", "value": path},
                        {"name": "VOL_MODE", "value": pv["spec"].get("volumeMode") or "Filesystem"},
                        {"name": "VOL_SIZE_BYTES", "value": size}],
                "volumeMounts": [{"name": "data", "mountPath": parent}],
            }],
        },
    }


class _Recorder(EventRecorder):
    """Event names (`<object>.<hex nanoseconds>`) from a sequence offset from other recorders'.

    EventRecorder keeps names unique per recorder; the PV controller's and this one write events
    about the same claims in one process, and under a frozen test clock their sequences would
    meet. Starting this one far ahead keeps them apart.
    """

    def __init__(self, client, clock: Clock, component: str):
        super().__init__(client, clock, component)
        self._last_ns = int(clock.now() * 1e9) + random.randrange(1 << 24, 1 << 32)


class LocalPathProvisioner(Controller):
    name = "local-path-provisioner"
    workers = 4

    def __init__(self, client, clock: Clock, informers: SharedInformers, recorder=None):
        recorder = recorder or _Recorder(client, clock, f"{PROVISIONER}_{self.name}")
        data_dir = data_dir_of(client)
        self.default_root = os.path.join(data_dir, "node", "storage") if data_dir else FALLBACK_ROOT
        self._retry_at: dict[str, float] = {}
        super().__init__(client, clock, informers, recorder)

    def setup(self) -> None:
        self.classes = self.informers.get(CLASSES)
        self.nodes = self.informers.get("nodes")
        watch_storage(self)

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        pod = new if new is not None else old
        meta = pod["metadata"]
        if meta.get("namespace") == HELPER_NAMESPACE and meta.get("name", "").startswith(HELPER_PREFIX):
            self.queue.add(VOLUME + meta["name"][len(HELPER_PREFIX):])

    async def start(self) -> None:
        await self.ensure_default_class()
        await super().start()

    async def ensure_default_class(self) -> None:
        if self.classes.get(CLASS_NAME) is not None:
            return
        try:
            await self.client.create(CLASSES, None, default_storage_class())
        except ApiError as e:
            if e.code != 409:
                log.warning("creating the default StorageClass %s failed: %s", CLASS_NAME, e)

    async def sync(self, key: str) -> None:
        if key.startswith(CLAIM):
            pvc = self.pvcs.get(key[len(CLAIM):])
            if pvc is not None:
                await self._sync_claim(pvc)
        elif key.startswith(VOLUME):
            pv = self.pvs.get(key[len(VOLUME):])
            if pv is not None:
                await self._sync_volume(pv)

    # ---- provisioning ----------------------------------------------------------------------------

    def _ours(self, pvc: dict) -> dict | None:
        sc = self.classes.get(claim_class(pvc))
        if sc is None or sc.get("provisioner") != PROVISIONER:
            return None
        return sc

    async def _sync_claim(self, pvc: dict) -> None:
        meta = pvc["metadata"]
        ann = meta.get("annotations") or {}
        if (pvc.get("spec") or {}).get("volumeName") or meta.get("deletionTimestamp") \
                or ann.get(ANN_STORAGE_PROVISIONER) != PROVISIONER:
            return
        sc = self._ours(pvc)
        if sc is None:
            return
        pv_name = f"pvc-{meta['uid']}"
        if self.pvs.get(pv_name) is not None:
            return
        node_name = ann.get(ANN_SELECTED_NODE)
        if not node_name:
            if sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                return  # the scheduler has not chosen a node yet
            self._failed(pvc, sc, "configuration error, no node was specified")
            return
        node = self.nodes.get(node_name)
        if node is None:
            # Give the choice back to the scheduler (rescheduleProvisioning): without the
            # annotation its binding attempt fails and the pod is scheduled again.
            self._failed(pvc, sc, f'nodes "{node_name}" not found')
            await self.client.patch(PVCS, meta["namespace"], meta["name"],
                                    {"metadata": {"annotations": {ANN_SELECTED_NODE: None},
                                                  "resourceVersion": meta["resourceVersion"]}})
            return
        self.recorder.event(pvc, "Normal", "Provisioning", "Provisioning",
                            f'External provisioner is provisioning volume for claim "{object_key(pvc)}"')
        own = ((node.get("metadata") or {}).get("annotations") or {}).get(LOCAL_PATH_DIR_ANNOTATION)
        root = node_path(await self._config(), node_name, own or self.default_root)
        pv = self._volume(pvc, sc, node, pv_name, os.path.join(root, f"{pv_name}_{meta['namespace']}_{meta['name']}"))
        try:
            await self.client.create(PVS, None, pv)
        except ApiError as e:
            if e.code != 409:
                self._failed(pvc, sc, e.message)
                raise
        self.recorder.event(pvc, "Normal", "ProvisioningSucceeded", "Provisioning",
                            f"Successfully provisioned volume {pv_name}")

    def _failed(self, pvc: dict, sc: dict, why: str) -> None:
        self.recorder.event(pvc, "Warning", "ProvisioningFailed", "Provisioning",
                            f'failed to provision volume with StorageClass "{sc["metadata"]["name"]}": {why}')

    async def _config(self) -> dict | None:
        try:
            cm = await self.client.get("configmaps", CONFIG_NAMESPACE, CONFIG_NAME)
        except ApiError as e:
            if e.code == 404:
                return None
            raise
        try:
            return json.loads((cm.get("data") or {}).get("config.json") or "{}")
        except ValueError:
            log.warning("%s/%s: config.json is not JSON; using %s", CONFIG_NAMESPACE, CONFIG_NAME, self.default_root)
            return None

    @staticmethod
    def _volume(pvc: dict, sc: dict, node: dict, name: str, path: str) -> dict:
        spec = pvc.get("spec") or {}
        hostname = ((node.get("metadata") or {}).get("labels") or {}).get(LABEL_HOSTNAME) or node["metadata"]["name"]
        pv_spec: dict = {
            "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")},
            "accessModes": list(spec.get("accessModes") or ()),
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": sc["metadata"]["name"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": LABEL_HOSTNAME, "operator": "In", "values": [hostname]}]}]}},
            "claimRef": claim_ref(pvc),
        }
        if sc.get("mountOptions"):
            pv_spec["mountOptions"] = list(sc["mountOptions"])
        return {"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {ANN_DYNAMICALLY_PROVISIONED: PROVISIONER,
                                                           ANN_LOCAL_SELECTED_NODE: node["metadata"]["name"]}},
                "spec": pv_spec}

    # ---- deleting --------------------------------------------------------------------------------

    async def _sync_volume(self, pv: dict) -> None:
        meta = pv["metadata"]
        spec = pv.get("spec") or {}
        if (meta.get("annotations") or {}).get(ANN_DYNAMICALLY_PROVISIONED) != PROVISIONER \
                or spec.get("persistentVolumeReclaimPolicy") != "Delete" \
                or (pv.get("status") or {}).get("phase") != "Released" or meta.get("deletionTimestamp"):
            return
        name = meta["name"]
        path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
        node = volume_node(pv)
        if not path or not node or self.nodes.get(node) is None:
            log.warning("volume %s: node %s is gone; deleting the volume without cleaning its directory", name, node)
            await delete_volume(self.client, pv)
            return
        pod = self.pods.get(f"{HELPER_NAMESPACE}/{HELPER_PREFIX}{name}")
        if pod is None:
            wait = self._retry_at.get(name, 0) - self.clock.now()
            if wait > 0:
                self.queue.add_after(VOLUME + name, wait)
                return
            try:
                await self.client.create("pods", HELPER_NAMESPACE, helper_pod(pv, node, path))
            except ApiError as e:
                if e.code != 409:
                    raise
            return
        if pod["metadata"].get("deletionTimestamp"):
            self.queue.add_after(VOLUME + name, POLL)
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Succeeded":
            await delete_pod(self.client, pod)
            self._retry_at.pop(name, None)
            await delete_volume(self.client, pv)
        elif phase == "Failed":
            await delete_pod(self.client, pod)
            self._retry_at[name] = self.clock.now() + RETRY
            self.recorder.event(pv, "Warning", "VolumeFailedDelete", "Deleting",
                                f"failed to delete volume {name}: helper pod failed to remove {path}")
            self.queue.add_after(VOLUME + name, RETRY)
        else:
            self.queue.add_after(VOLUME + name, POLL)


__all__ = ["LocalPathProvisioner", "default_storage_class", "node_path", "helper_pod"]
