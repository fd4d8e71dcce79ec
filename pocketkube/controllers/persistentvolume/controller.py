"""The PersistentVolume controller: binds claims to volumes and keeps both phases true.

Why it exists: a claim is only a request; something has to pick the volume, write the two-way
link (the volume's `spec.claimRef`, the claim's `spec.volumeName`) and move both through their
phases, and do it the way kube-controller-manager does (`pkg/controller/volume/persistentvolume/
pv_controller.go`), because users read those phases, annotations and events:

* claims: an unbound claim gets the best matching volume (`index.py`), or the default
  StorageClass if it names none (retroactive default class assignment), or waits: for its first
  consumer (WaitForFirstConsumer classes, until the scheduler picks a node), for a provisioner
  (`ExternalProvisioning`, with the `volume.kubernetes.io/storage-provisioner` annotations), or
  with `FailedBinding` when there is no class at all. Binding writes the volume first (claimRef,
  `pv.kubernetes.io/bound-by-controller`, phase Bound) and the claim second (volumeName,
  `pv.kubernetes.io/bind-completed`, phase Bound, capacity, access modes). A bound claim whose
  volume disappears or belongs to someone else becomes Lost.
* volumes: Available without a claimRef (or with a claimRef that has no uid yet: pre-bound by
  a user or the scheduler), Bound while their claim points back, Released when the claim is
  gone, and then the reclaim policy runs (`reclaim.py`).

Every write is remembered until the informer catches up (upstream's "assume cache"), so the
next sync never undoes or repeats a write the informer has not delivered yet. One worker syncs
claims and volumes one at a time, as upstream's single-threaded queues, so two claims never race
for one volume.
"""

from __future__ import annotations

import asyncio
import copy
import logging

from ...api.errors import ApiError
from ...client.informer import object_key
from ...clock import Clock
from ...scheduler.volumes import ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_SELECTED_NODE
from ..base import Controller, SharedInformers
from . import reclaim
from .index import (SelectorError, check_volume_satisfies_claim, claim_class, find_best_match,
                    is_bound_to_claim)

log = logging.getLogger("pocketkube.persistentvolume")

PVS = "persistentvolumes"
PVCS = "persistentvolumeclaims"
CLASSES = "storageclasses.storage.k8s.io"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
RESYNC_PERIOD = 15.0          # upstream's PV controller resync period

CLAIM = "claim:"
VOLUME = "volume:"


def _ann(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _rv(obj: dict | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def claim_ref(pvc: dict) -> dict:
    """reference.GetReference for a claim: what a volume's claimRef holds."""
    meta = pvc["metadata"]
    return {"kind": "PersistentVolumeClaim", "namespace": meta.get("namespace"), "name": meta["name"],
            "uid": meta.get("uid"), "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion")}


def default_class(classes: list[dict]) -> dict | None:
    """GetDefaultClass: the newest class annotated as default (the name breaks ties)."""
    defaults = [c for c in classes if _ann(c).get(ANN_DEFAULT_CLASS) == "true"
                or _ann(c).get(ANN_BETA_DEFAULT_CLASS) == "true"]
    if not defaults:
        return None
    return max(defaults, key=lambda c: (c["metadata"].get("creationTimestamp") or "", c["metadata"]["name"]))


def pod_claim_names(pod: dict) -> list[str]:
    """Claims a pod mounts, generic ephemeral volumes included (`<pod>-<volume>`)."""
    out = []
    for v in (pod.get("spec") or {}).get("volumes") or ():
        if v.get("persistentVolumeClaim"):
            out.append(v["persistentVolumeClaim"].get("claimName") or "")
        elif v.get("ephemeral") is not None:
            out.append(f"{pod['metadata'].get('name')}-{v.get('name')}")
    return out


def pod_terminated(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def watch_storage(ctrl: Controller) -> None:
    """The informers every storage controller reads (as `ctrl.pvcs`, `ctrl.pvs`, `ctrl.pods`):
    each claim or volume change queues a `claim:` or `volume:` key, pods go to `ctrl._on_pod`."""
    ctrl.pvcs = ctrl.informers.get(PVCS)
    ctrl.pvs = ctrl.informers.get(PVS)
    ctrl.pods = ctrl.informers.get("pods")
    ctrl.pvcs.add_handler(lambda t, old, new: new is not None and ctrl.queue.add(CLAIM + object_key(new)))
    ctrl.pvs.add_handler(lambda t, old, new: new is not None and ctrl.queue.add(VOLUME + new["metadata"]["name"]))
    ctrl.pods.add_handler(ctrl._on_pod)


class PersistentVolumeController(Controller):
    name = "persistentvolume"
    workers = 1

    def __init__(self, client, clock: Clock, informers: SharedInformers, recorder=None):
        self._pv_written: dict[str, dict] = {}
        self._pvc_written: dict[str, dict] = {}
        self._said: dict[str, tuple[str, str]] = {}     # claim uid -> last pending event
        self.retry_after: dict[str, tuple[float, float]] = {}  # volume uid -> (when, delay)
        self._resync_task = None
        super().__init__(client, clock, informers, recorder)

    # ---- informers -----------------------------------------------------------------------------

    def setup(self) -> None:
        self.pvs = self.informers.get(PVS)
        self.pvcs = self.informers.get(PVCS)
        self.classes = self.informers.get(CLASSES)
        self.pods = self.informers.get("pods")
        self.pvs.add_handler(self._on_pv)
        self.pvcs.add_handler(self._on_pvc)
        self.classes.add_handler(self._on_class)
        self.pods.add_handler(self._on_pod)

    def _on_pv(self, kind: str, old: dict | None, new: dict | None) -> None:
        obj = new if new is not None else old
        name = obj["metadata"]["name"]
        written = self._pv_written.get(name)
        if new is None or (written is not None and _rv(new) >= _rv(written)):
            self._pv_written.pop(name, None)
        self.queue.add(VOLUME + name)
        if new is not None:
            ref = (new.get("spec") or {}).get("claimRef")
            if ref:
                self.queue.add(f"{CLAIM}{ref.get('namespace')}/{ref.get('name')}")
            if (new.get("status") or {}).get("phase") == "Available" and not ref:
                self._enqueue_pending_claims()
        else:
            ref = (old.get("spec") or {}).get("claimRef")
            if ref:
                self.queue.add(f"{CLAIM}{ref.get('namespace')}/{ref.get('name')}")

    def _on_pvc(self, kind: str, old: dict | None, new: dict | None) -> None:
        obj = new if new is not None else old
        key = object_key(obj)
        written = self._pvc_written.get(key)
        if new is None or (written is not None and _rv(new) >= _rv(written)):
            self._pvc_written.pop(key, None)
        if new is None:
            # deleteClaim: the volume it was bound to may need reclaiming now.
            self._said.pop(obj["metadata"].get("uid") or "", None)
            vn = (obj.get("spec") or {}).get("volumeName")
            if vn:
                self.queue.add(VOLUME + vn)
            return
        self.queue.add(CLAIM + key)

    def _on_class(self, kind: str, old: dict | None, new: dict | None) -> None:
        # A new default class or binding mode changes what pending claims should do.
        self._enqueue_pending_claims()

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        pod = new if new is not None else old
        pv = reclaim.recycler_pod_volume(pod)
        if pv:
            self.queue.add(VOLUME + pv)
            return
        if (pod.get("spec") or {}).get("nodeName") and old is not None and (old.get("spec") or {}).get("nodeName"):
            if new is None or pod_terminated(new):
                # A volume waiting to be recycled until its last pod is gone.
                for name in pod_claim_names(pod):
                    self.queue.add(f"{CLAIM}{pod['metadata'].get('namespace')}/{name}")

    def _enqueue_pending_claims(self) -> None:
        for key, pvc in self.pvcs.cache.items():
            if not (pvc.get("spec") or {}).get("volumeName"):
                self.queue.add(CLAIM + key)

    async def start(self) -> None:
        await super().start()
        self._resync_task = asyncio.get_running_loop().create_task(self._resync())

    async def stop(self) -> None:
        if self._resync_task is not None:
            self._resync_task.cancel()
        await super().stop()

    async def _resync(self) -> None:
        """Upstream's periodic resync: conditions that no event announces get another look."""
        while True:
            await self.clock.sleep(RESYNC_PERIOD)
            for key in list(self.pvcs.cache):
                self.queue.add(CLAIM + key)
            for name in list(self.pvs.cache):
                self.queue.add(VOLUME + name)

    # ---- the assume cache ----------------------------------------------------------------------

    def volume(self, name: str) -> dict | None:
        cached = self.pvs.get(name)
        written = self._pv_written.get(name)
        if written is not None and (cached is None or _rv(written) > _rv(cached)):
            return written
        return cached

    def claim(self, key: str) -> dict | None:
        cached = self.pvcs.get(key)
        written = self._pvc_written.get(key)
        if written is not None and cached is not None and _rv(written) > _rv(cached):
            return written
        return cached

    def all_volumes(self) -> list[dict]:
        out = []
        for name in set(self.pvs.cache) | set(self._pv_written):
            pv = self.volume(name)
            if pv is not None:
                out.append(pv)
        return out

    def _store_pv(self, pv: dict) -> dict:
        self._pv_written[pv["metadata"]["name"]] = pv
        return pv

    def _store_pvc(self, pvc: dict) -> dict:
        self._pvc_written[object_key(pvc)] = pvc
        return pvc

    def storage_class(self, name: str) -> dict | None:
        return self.classes.get(name) if name else None

    # ---- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        if key.startswith(CLAIM):
            pvc = self.claim(key[len(CLAIM):])
            if pvc is not None:
                await self.sync_claim(pvc)
        elif key.startswith(VOLUME):
            pv = self.volume(key[len(VOLUME):])
            if pv is not None:
                await self.sync_volume(pv)

    def _delay_binding(self, pvc: dict) -> bool:
        """IsDelayBindingMode: the claim's class exists and waits for the first consumer."""
        sc = self.storage_class(claim_class(pvc))
        return sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"

    async def sync_claim(self, pvc: dict) -> None:
        if ANN_BIND_COMPLETED not in _ann(pvc):
            await self._sync_unbound_claim(pvc)
        else:
            await self._sync_bound_claim(pvc)

    def _pending_event(self, pvc: dict, type_: str, reason: str, message: str) -> None:
        """An event about a claim that keeps waiting, written once per reason rather than on
        every resync (upstream's broadcaster folds such repeats into one event's count)."""
        uid = pvc["metadata"].get("uid") or ""
        if self._said.get(uid) == (reason, message):
            return
        self._said[uid] = (reason, message)
        self.recorder.event(pvc, type_, reason, reason, message)

    async def _sync_unbound_claim(self, pvc: dict) -> None:
        spec = pvc.get("spec") or {}
        if not spec.get("volumeName"):
            delay = self._delay_binding(pvc)
            try:
                pv = find_best_match(pvc, self.all_volumes(), delay)
            except SelectorError as e:
                log.info("claim %s: %s", object_key(pvc), e)
                return
            if pv is not None:
                await self.bind(pv, pvc)
                return
            if await self._assign_default_class(pvc):
                return
            cls = claim_class(pvc)
            if delay and ANN_SELECTED_NODE not in _ann(pvc):
                self._wait_for_consumer_event(pvc)
            elif cls:
                await self._provision(pvc, cls)
                return
            else:
                self._pending_event(pvc, "Normal", "FailedBinding",
                                    "no persistent volumes available for this claim and no storage class is set")
            await self.update_claim_status(pvc, "Pending", None)
            return
        name = spec["volumeName"]
        pv = self.volume(name)
        if pv is None:
            await self.update_claim_status(pvc, "Pending", None)
            return
        if not (pv.get("spec") or {}).get("claimRef"):
            why = check_volume_satisfies_claim(pv, pvc)
            if why:
                self._pending_event(pvc, "Warning", "VolumeMismatch",
                                    f'Cannot bind to requested volume "{name}": {why}')
                await self.update_claim_status(pvc, "Pending", None)
                return
            await self.bind(pv, pvc)
        elif is_bound_to_claim(pv, pvc):
            await self.bind(pv, pvc)
        else:
            self._pending_event(pvc, "Warning", "FailedBinding",
                                f'volume "{name}" already bound to a different claim.')
            if ANN_BOUND_BY_CONTROLLER in _ann(pvc):
                ref = pv["spec"]["claimRef"]
                raise RuntimeError(f'invalid binding of claim "{object_key(pvc)}" to volume "{name}": '
                                   f'volume already claimed by "{ref.get("namespace")}/{ref.get("name")}"')
            await self.update_claim_status(pvc, "Pending", None)

    def _wait_for_consumer_event(self, pvc: dict) -> None:
        """emitEventForUnboundDelayBindingClaim: say which pods are still to be scheduled."""
        meta = pvc["metadata"]
        waiting = sorted(p["metadata"]["name"] for p in self.pods.cache.values()
                         if p["metadata"].get("namespace") == meta.get("namespace")
                         and meta["name"] in pod_claim_names(p) and not pod_terminated(p)
                         and not (p.get("spec") or {}).get("nodeName"))
        if not waiting:
            self._pending_event(pvc, "Normal", "WaitForFirstConsumer",
                                "waiting for first consumer to be created before binding")
        elif len(waiting) == 1:
            self._pending_event(pvc, "Normal", "WaitForPodScheduled", f"waiting for pod {waiting[0]} to be scheduled")
        else:
            self._pending_event(pvc, "Normal", "WaitForPodScheduled",
                                f"waiting for pods {','.join(waiting)} to be scheduled")

    async def _assign_default_class(self, pvc: dict) -> bool:
        """Retroactive default StorageClass assignment: only for claims that name no class at all
        (`storageClassName: ""` asks for class-less volumes and is left alone)."""
        spec = pvc.get("spec") or {}
        if spec.get("storageClassName") is not None or "volume.beta.kubernetes.io/storage-class" in _ann(pvc):
            return False
        sc = default_class(self.classes.list())
        if sc is None:
            return False
        new = copy.deepcopy(pvc)
        new["spec"]["storageClassName"] = sc["metadata"]["name"]
        self._store_pvc(await self.client.update(PVCS, pvc["metadata"]["namespace"], new))
        return True

    async def _provision(self, pvc: dict, cls: str) -> None:
        """provisionClaim for an external provisioner: mark the claim and wait for the volume."""
        sc = self.storage_class(cls)
        if sc is None:
            self._pending_event(pvc, "Warning", "ProvisioningFailed", f'storageclass.storage.k8s.io "{cls}" not found')
            await self.update_claim_status(pvc, "Pending", None)
            return
        prov = sc.get("provisioner") or ""
        if prov.startswith("kubernetes.io/"):
            # No in-tree provisioning plugins here (kubernetes.io/no-provisioner included).
            self._pending_event(pvc, "Warning", "ProvisioningFailed", "no provisionable volume plugin matched")
            await self.update_claim_status(pvc, "Pending", None)
            return
        ann = _ann(pvc)
        if ann.get(ANN_STORAGE_PROVISIONER) != prov or ann.get(ANN_BETA_STORAGE_PROVISIONER) != prov:
            new = copy.deepcopy(pvc)
            anns = new["metadata"].setdefault("annotations", {})
            anns[ANN_STORAGE_PROVISIONER] = prov
            anns[ANN_BETA_STORAGE_PROVISIONER] = prov
            pvc = self._store_pvc(await self.client.update(PVCS, pvc["metadata"]["namespace"], new))
        self._pending_event(pvc, "Normal", "ExternalProvisioning",
                            f"Waiting for a volume to be created either by the external provisioner '{prov}' "
                            f"or manually by the system administrator. If volume creation is delayed, please "
                            f"verify that the provisioner is running and correctly registered.")
        await self.update_claim_status(pvc, "Pending", None)

    async def _sync_bound_claim(self, pvc: dict) -> None:
        name = (pvc.get("spec") or {}).get("volumeName")
        if not name:
            await self._claim_lost(pvc, "ClaimLost", "Bound claim has lost reference to PersistentVolume. "
                                                   "Data on the volume is lost!")
            return
        pv = self.volume(name)
        if pv is None:
            await self._claim_lost(pvc, "ClaimLost", "Bound claim has lost its PersistentVolume. "
                                                   "Data on the volume is lost!")
            return
        ref = (pv.get("spec") or {}).get("claimRef")
        if not ref or ref.get("uid") == pvc["metadata"].get("uid"):
            await self.bind(pv, pvc)
        else:
            await self._claim_lost(pvc, "ClaimMisbound", "Two claims are bound to the same volume, "
                                                       "this one is bound incorrectly")

    async def _claim_lost(self, pvc: dict, reason: str, message: str) -> None:
        if (pvc.get("status") or {}).get("phase") == "Lost":
            return
        new = await self.update_claim_status(pvc, "Lost", None)
        self.recorder.event(new, "Warning", reason, reason, message)

    async def sync_volume(self, pv: dict) -> None:
        spec = pv.get("spec") or {}
        ref = spec.get("claimRef")
        if not ref:
            await self.update_volume_phase(pv, "Available")
            return
        if not ref.get("uid"):
            # Pre-bound to a claim that has not been bound yet: the claim's sync does it.
            await self.update_volume_phase(pv, "Available")
            return
        key = f"{ref.get('namespace')}/{ref.get('name')}"
        pvc = self.claim(key)
        phase = (pv.get("status") or {}).get("phase")
        if pvc is None and phase not in ("Released", "Failed"):
            # A provisioner or the scheduler may have written the volume before our claim informer
            # saw the claim: ask the API before reclaiming anything.
            pvc = await self._live_claim(ref)
        if pvc is not None and pvc["metadata"].get("uid") != ref.get("uid"):
            pvc = await self._live_claim(ref)
            if pvc is not None and pvc["metadata"].get("uid") != ref.get("uid"):
                pvc = None  # deleted and created again under the same name
        if pvc is None:
            if phase not in ("Released", "Failed"):
                pv = await self.update_volume_phase(pv, "Released")
            await reclaim.reclaim_volume(self, pv)
            return
        if not (pvc.get("spec") or {}).get("volumeName"):
            # The claim's sync finishes the binding (the scheduler pre-bound this volume, or a
            # provisioner created it for the claim).
            self.queue.add(CLAIM + key)
            return
        if pvc["spec"]["volumeName"] == pv["metadata"]["name"]:
            await self.update_volume_phase(pv, "Bound")
            return
        # The claim is bound to another volume.
        if ANN_DYNAMICALLY_PROVISIONED in _ann(pv) and spec.get("persistentVolumeReclaimPolicy") == "Delete":
            if phase not in ("Released", "Failed"):
                pv = await self.update_volume_phase(pv, "Released")
            await reclaim.reclaim_volume(self, pv)
            return
        await self.unbind_volume(pv)

    async def _live_claim(self, ref: dict) -> dict | None:
        try:
            return await self.client.get(PVCS, ref.get("namespace"), ref.get("name"))
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    # ---- writes --------------------------------------------------------------------------------

    async def bind(self, pv: dict, pvc: dict) -> None:
        """Volume first, then claim; any failure leaves the rest to the next sync."""
        pv = await self._bind_volume_to_claim(pv, pvc)
        pv = await self.update_volume_phase(pv, "Bound")
        pvc = await self._bind_claim_to_volume(pvc, pv)
        await self.update_claim_status(pvc, "Bound", pv)
        self._said.pop(pvc["metadata"].get("uid") or "", None)

    async def _bind_volume_to_claim(self, pv: dict, pvc: dict) -> dict:
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        meta = pvc["metadata"]
        set_by_controller = not is_bound_to_claim(pv, pvc)
        dirty = False
        new = copy.deepcopy(pv)
        if ref.get("name") != meta["name"] or ref.get("namespace") != meta.get("namespace") \
                or ref.get("uid") != meta.get("uid"):
            new["spec"]["claimRef"] = claim_ref(pvc)
            dirty = True
        if set_by_controller and ANN_BOUND_BY_CONTROLLER not in _ann(pv):
            new["metadata"].setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = "yes"
            dirty = True
        if not dirty:
            return pv
        return self._store_pv(await self.client.update(PVS, None, new))

    async def _bind_claim_to_volume(self, pvc: dict, pv: dict) -> dict:
        new = copy.deepcopy(pvc)
        anns = new["metadata"].setdefault("annotations", {})
        dirty = False
        if (pvc.get("spec") or {}).get("volumeName") != pv["metadata"]["name"]:
            new["spec"]["volumeName"] = pv["metadata"]["name"]
            anns.setdefault(ANN_BOUND_BY_CONTROLLER, "yes")
            dirty = True
        if ANN_BIND_COMPLETED not in anns:
            anns[ANN_BIND_COMPLETED] = "yes"
            dirty = True
        if not dirty:
            return pvc
        return self._store_pvc(await self.client.update(PVCS, pvc["metadata"]["namespace"], new))

    async def update_claim_status(self, pvc: dict, phase: str, pv: dict | None) -> dict:
        status = dict(pvc.get("status") or {})
        dirty = False
        if status.get("phase") != phase:
            status["phase"] = phase
            dirty = True
        if pv is None:
            for k in ("accessModes", "capacity"):
                if status.get(k) is not None:
                    status.pop(k)
                    dirty = True
        else:
            modes = (pv.get("spec") or {}).get("accessModes")
            if status.get("accessModes") != modes:
                status["accessModes"] = modes
                dirty = True
            # Capacity only as the claim becomes Bound: a later difference may be a resize.
            if (pvc.get("status") or {}).get("phase") != phase:
                cap = (pv.get("spec") or {}).get("capacity") or {}
                if (status.get("capacity") or {}).get("storage") != cap.get("storage"):
                    status["capacity"] = dict(cap)
                    dirty = True
        if not dirty:
            return pvc
        new = dict(pvc)
        new["status"] = status
        return self._store_pvc(await self.client.update_status(PVCS, pvc["metadata"]["namespace"], new))

    async def update_volume_phase(self, pv: dict, phase: str, message: str = "") -> dict:
        if (pv.get("status") or {}).get("phase") == phase:
            return pv
        new = dict(pv)
        status = dict(pv.get("status") or {})
        status["phase"] = phase
        if message:
            status["message"] = message
        else:
            status.pop("message", None)
        new["status"] = status
        return self._store_pv(await self.client.update_status(PVS, None, new))

    async def update_volume_phase_with_event(self, pv: dict, phase: str, type_: str, reason: str,
                                             message: str) -> dict:
        """The phase and an event, only when the phase changes (upstream's ...WithEvent)."""
        if (pv.get("status") or {}).get("phase") == phase:
            return pv
        new = await self.update_volume_phase(pv, phase, message)
        self.recorder.event(new, type_, reason, reason, message)
        return new

    async def unbind_volume(self, pv: dict) -> dict:
        """Roll a binding back: a controller-made claimRef goes, a user's keeps only its name."""
        new = copy.deepcopy(pv)
        anns = new["metadata"].get("annotations") or {}
        if ANN_BOUND_BY_CONTROLLER in anns:
            new["spec"].pop("claimRef", None)
            anns.pop(ANN_BOUND_BY_CONTROLLER)
            if not anns:
                new["metadata"].pop("annotations", None)
        else:
            new["spec"]["claimRef"] = {k: v for k, v in new["spec"]["claimRef"].items() if k != "uid"}
        written = self._store_pv(await self.client.update(PVS, None, new))
        return await self.update_volume_phase(written, "Available")
