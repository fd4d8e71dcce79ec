"""Storage object in-use protection: claims do not vanish under pods, volumes not under claims.

Why it exists: deleting a claim that a running pod mounts, or a volume that is still bound, would
pull data out from under a workload. Kubernetes prevents it with two finalizers, and so does
this controller (upstream's `pvc-protection` and `pv-protection` controllers in
`pkg/controller/volume/pvcprotection` and `pvprotection`):

* `kubernetes.io/pvc-protection` on every claim: removed once the claim is being deleted and no
  scheduled pod uses it (pods that mount it directly, or own it as a generic ephemeral volume and
  are still running). The pod informer is checked first and the API second, as upstream does, so
  a pod the informer has not seen yet still holds the claim.
* `kubernetes.io/pv-protection` on every volume: removed once the volume is being deleted and is
  no longer Bound.

Upstream an admission plugin adds the finalizers when the objects are created; here the
controller adds them (as upstream's controllers do for objects created before the plugin was
enabled) once the object is Bound. Until then nothing needs protecting - no pod runs on an unbound
claim, and pv-protection only holds Bound volumes - and writing earlier would race the scheduler,
whose pre-binding writes to claims and volumes are guarded by resourceVersion and would fail,
sending the pod into scheduling back-off.
"""

from __future__ import annotations

from ...api.errors import ApiError
from ..base import Controller
from .controller import CLAIM, PVCS, PVS, VOLUME, pod_claim_names, pod_terminated, watch_storage

PVC_FINALIZER = "kubernetes.io/pvc-protection"
PV_FINALIZER = "kubernetes.io/pv-protection"


class StorageProtectionController(Controller):
    name = "pvc-protection"
    workers = 2

    def setup(self) -> None:
        watch_storage(self)

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        pod = new if new is not None else old
        if new is not None and not pod_terminated(new):
            return
        ns = pod["metadata"].get("namespace")
        for name in pod_claim_names(pod):
            pvc = self.pvcs.get(f"{ns}/{name}")
            if pvc is not None and pvc["metadata"].get("deletionTimestamp"):
                self.queue.add(f"{CLAIM}{ns}/{name}")

    async def sync(self, key: str) -> None:
        if key.startswith(CLAIM):
            pvc = self.pvcs.get(key[len(CLAIM):])
            if pvc is not None:
                await self._sync(PVCS, pvc, PVC_FINALIZER, self._claim_in_use)
        elif key.startswith(VOLUME):
            pv = self.pvs.get(key[len(VOLUME):])
            if pv is not None:
                await self._sync(PVS, pv, PV_FINALIZER, self._volume_in_use)

    async def _sync(self, res: str, obj: dict, finalizer: str, in_use) -> None:
        meta = obj["metadata"]
        fins = list(meta.get("finalizers") or ())
        if meta.get("deletionTimestamp"):
            if finalizer not in fins or await in_use(obj):
                return
            fins.remove(finalizer)
        elif finalizer in fins or (obj.get("status") or {}).get("phase") != "Bound":
            return
        else:
            fins.append(finalizer)
        try:
            await self.client.patch(res, meta.get("namespace"), meta["name"],
                                    {"metadata": {"finalizers": fins, "resourceVersion": meta["resourceVersion"]}})
        except ApiError as e:
            if e.code != 404:
                raise  # a conflict: the next sync sees the newer object

    @staticmethod
    def _uses(pod: dict, pvc: dict) -> bool:
        """podUsesPVC: a scheduled pod that mounts the claim (an ephemeral one only while it runs)."""
        if not (pod.get("spec") or {}).get("nodeName"):
            return False
        name = pvc["metadata"]["name"]
        for v in (pod.get("spec") or {}).get("volumes") or ():
            if v.get("persistentVolumeClaim") and v["persistentVolumeClaim"].get("claimName") == name:
                return True
            if v.get("ephemeral") is not None and f"{pod['metadata'].get('name')}-{v.get('name')}" == name \
                    and not pod_terminated(pod):
                return True
        return False

    async def _claim_in_use(self, pvc: dict) -> bool:
        ns = pvc["metadata"].get("namespace")
        if any(p["metadata"].get("namespace") == ns and self._uses(p, pvc) for p in self.pods.cache.values()):
            return True
        live = await self.client.list("pods", ns)
        return any(self._uses(p, pvc) for p in live.get("items") or ())

    @staticmethod
    async def _volume_in_use(pv: dict) -> bool:
        return (pv.get("status") or {}).get("phase") == "Bound"
