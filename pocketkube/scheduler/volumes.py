"""VolumeBinding: a pod goes only where its persistent volumes can follow.

kube-scheduler's VolumeBinding plugin, in the same phases:

- PreFilter: every claim the pod mounts must exist (``persistentvolumeclaim "x" not found``),
  not be lost or being deleted, and, if unbound, use a WaitForFirstConsumer class (``pod has
  unbound immediate PersistentVolumeClaims`` otherwise). Bound local volumes pinned to
  hostnames narrow the candidate nodes at once.
- Filter, per node: a bound claim's volume must accept the node (``node(s) had volume node
  affinity conflict``); an unbound WaitForFirstConsumer claim needs an available volume that
  accepts the node, or a class that can provision there (``node(s) didn't find available
  persistent volumes to bind``).
- Reserve: the chosen volumes are assumed (a claimRef on the volume, the
  ``volume.kubernetes.io/selected-node`` annotation on a claim to provision) in an overlay of
  the informer caches, so the next pod does not pick the same volume.
- PreBind: the assumptions are written through the API, then the pod's binding waits until the
  PV controller / provisioner has bound every claim (upstream's 10-minute bind timeout); a
  provisioner that gives up removes the annotation, which fails the attempt and reschedules.
"""

from __future__ import annotations

import asyncio
import copy

from ..api.errors import ApiError, go_quote
from ..client import Client
from ..client.informer import Informer
from ..clock import Clock
from .cache import NodeInfo
from .filters import UNRESOLVABLE, Status
from .nodeselector import Term, match_terms
from .podinfo import LABEL_HOSTNAME, PodInfo
from .resources import int_value

ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"

ERR_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"

BIND_TIMEOUT = 600.0


class VolumeError(Exception):
    """A PreBind failure; the attempt is retried after a back-off."""


def claim_class(pvc: dict) -> str:
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    if ANN_BETA_CLASS in ann:
        return ann[ANN_BETA_CLASS]
    return (pvc.get("spec") or {}).get("storageClassName") or ""


def volume_class(pv: dict) -> str:
    ann = (pv.get("metadata") or {}).get("annotations") or {}
    if ANN_BETA_CLASS in ann:
        return ann[ANN_BETA_CLASS]
    return (pv.get("spec") or {}).get("storageClassName") or ""


def fully_bound(pvc: dict) -> bool:
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    return bool((pvc.get("spec") or {}).get("volumeName")) and (
        ANN_BIND_COMPLETED in ann or (pvc.get("status") or {}).get("phase") == "Bound")


def _pv_terms(pv: dict) -> list[Term] | None:
    req = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required"))
    if not req:
        return None
    return [Term(t) for t in req.get("nodeSelectorTerms") or ()]


def pv_accepts(pv: dict, ni: NodeInfo) -> bool:
    """volume.CheckNodeAffinity."""
    terms = _pv_terms(pv)
    return terms is None or match_terms(terms, ni.labels, ni.name)


def local_node_names(pv: dict) -> set[str] | None:
    """Hostnames a volume is pinned to (GetLocalPersistentVolumeNodeNames), None if not pinned."""
    req = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required"))
    if not req:
        return None
    out: set[str] = set()
    for t in req.get("nodeSelectorTerms") or ():
        names: set[str] | None = None
        for e in t.get("matchExpressions") or ():
            if e.get("key") == LABEL_HOSTNAME and e.get("operator") == "In":
                s = set(e.get("values") or ())
                names = s if names is None else names & s
        if names is None:
            return None  # a term without a hostname allows other nodes too
        out |= names
    return out


def _storage(obj: dict, path: str) -> int:
    spec = obj.get("spec") or {}
    q = (spec.get("resources") or {}).get("requests", {}).get("storage") if path == "request" \
        else (spec.get("capacity") or {}).get("storage")
    return int_value(str(q)) if q is not None else 0


def _topology_matches(sc: dict, labels: dict) -> bool:
    terms = sc.get("allowedTopologies") or []
    if not terms:
        return True
    for t in terms:
        ok = True
        for e in t.get("matchLabelExpressions") or ():
            if labels.get(e.get("key")) not in (e.get("values") or ()):
                ok = False
                break
        if ok:
            return True
    return False


class VolumeState:
    """One scheduling attempt's view of the pod's claims."""

    __slots__ = ("bound", "delayed", "eligible", "class_pvs")

    def __init__(self):
        self.bound: list[dict] = []
        self.delayed: list[dict] = []
        self.eligible: set[str] | None = None
        self.class_pvs: dict[str, list[dict]] = {}   # volumes the delayed claims could use


class PodVolumes:
    """What Reserve chose on the selected node: volumes to pre-bind and claims to provision."""

    def __init__(self, static: list[tuple[dict, dict]], provision: list[dict]):
        self.static = static
        self.provision = provision


class VolumeBinder:
    def __init__(self, client: Client, clock: Clock, pvcs: Informer, pvs: Informer, classes: Informer,
                 bind_timeout: float = BIND_TIMEOUT):
        self.client = client
        self.clock = clock
        self.pvcs = pvcs
        self.pvs = pvs
        self.classes = classes
        self.bind_timeout = bind_timeout
        self.assumed_pvs: dict[str, dict] = {}
        self.assumed_pvcs: dict[str, dict] = {}
        self._changed = asyncio.Event()

    # ---- caches --------------------------------------------------------------------------------

    def on_change(self, res: str, obj: dict | None) -> None:
        """An informer event: the API object now supersedes any assumption about it."""
        if obj is not None:
            meta = obj.get("metadata") or {}
            if res == "pvc":
                self.assumed_pvcs.pop(f"{meta.get('namespace')}/{meta.get('name')}", None)
            elif res == "pv":
                self.assumed_pvs.pop(meta.get("name"), None)
        self._changed.set()
        self._changed = asyncio.Event()

    def pvc(self, ns: str, name: str) -> dict | None:
        key = f"{ns}/{name}"
        return self.assumed_pvcs.get(key) or self.pvcs.get(key)

    def pv(self, name: str) -> dict | None:
        return self.assumed_pvs.get(name) or self.pvs.get(name)

    def _class(self, name: str) -> dict | None:
        return self.classes.get(name)

    def _delay_binding(self, pvc: dict) -> bool:
        name = claim_class(pvc)
        if not name:
            return False
        sc = self._class(name)
        return sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"

    # ---- PreFilter -----------------------------------------------------------------------------

    def prefilter(self, pod: PodInfo) -> tuple[str | None, VolumeState | None]:
        """(failure message, state); both None when the pod uses no claims."""
        if not pod.claims:
            return None, None
        state = VolumeState()
        for _vol, claim, ephemeral in pod.claims:
            pvc = self.pvc(pod.namespace, claim)
            if pvc is None:
                if ephemeral:
                    return (f"waiting for ephemeral volume controller to create the persistentvolumeclaim "
                            f"{go_quote(claim)}"), None
                return f"persistentvolumeclaim {go_quote(claim)} not found", None
            meta = pvc.get("metadata") or {}
            if (pvc.get("status") or {}).get("phase") == "Lost":
                return (f"persistentvolumeclaim {go_quote(claim)} bound to non-existent persistentvolume "
                        f"{go_quote((pvc.get('spec') or {}).get('volumeName') or '')}"), None
            if meta.get("deletionTimestamp"):
                return f"persistentvolumeclaim {go_quote(claim)} is being deleted", None
            if ephemeral and not any(r.get("controller") and r.get("uid") == pod.uid
                                     for r in meta.get("ownerReferences") or ()):
                return (f"PVC {pod.namespace}/{claim} was not created for pod {pod.namespace}/{pod.name} "
                        f"(pod is not owner)"), None
            if fully_bound(pvc):
                state.bound.append(pvc)
            elif self._delay_binding(pvc) and not (pvc.get("spec") or {}).get("volumeName"):
                state.delayed.append(pvc)
            else:
                return ERR_UNBOUND_IMMEDIATE, None
        for pvc in state.bound:
            pv = self.pv(pvc["spec"]["volumeName"])
            names = local_node_names(pv) if pv is not None else None
            if names is not None:
                state.eligible = names if state.eligible is None else state.eligible & names
        if state.delayed:
            wanted = {claim_class(pvc) for pvc in state.delayed}
            for name in set(self.pvs.cache) | set(self.assumed_pvs):
                pv = self.pv(name)
                if pv is not None and volume_class(pv) in wanted:
                    state.class_pvs.setdefault(volume_class(pv), []).append(pv)
        return None, state

    # ---- Filter --------------------------------------------------------------------------------

    def _matching_volumes(self, state: VolumeState, ni: NodeInfo, claims: list[dict]
                          ) -> tuple[list[tuple[dict, dict]], list[dict]]:
        """findMatchingVolumes: (static bindings, claims left to provision)."""
        chosen: set[str] = set()
        static, rest = [], []
        for pvc in sorted(claims, key=lambda c: _storage(c, "request")):
            pv = self._find_volume(pvc, state.class_pvs.get(claim_class(pvc), ()), ni, chosen)
            if pv is None:
                rest.append(pvc)
            else:
                chosen.add(pv["metadata"]["name"])
                static.append((pv, pvc))
        return static, rest

    @staticmethod
    def _find_volume(pvc: dict, pvs: list[dict], ni: NodeInfo, chosen: set[str]) -> dict | None:
        """volume.FindMatchingVolume on the scheduler path: the smallest volume that fits."""
        meta = pvc.get("metadata") or {}
        spec = pvc.get("spec") or {}
        want = _storage(pvc, "request")
        modes = set(spec.get("accessModes") or ())
        mode = spec.get("volumeMode") or "Filesystem"
        selector = spec.get("selector")
        best, best_size = None, 0
        for pv in pvs:
            pmeta = pv.get("metadata") or {}
            pspec = pv.get("spec") or {}
            if pmeta.get("deletionTimestamp"):
                continue
            size = _storage(pv, "capacity")
            if size < want or (pspec.get("volumeMode") or "Filesystem") != mode:
                continue
            fits_node = pv_accepts(pv, ni)
            ref = pspec.get("claimRef")
            if ref and ref.get("namespace") == meta.get("namespace") and ref.get("name") == meta.get("name") \
                    and (not ref.get("uid") or ref.get("uid") == meta.get("uid")):
                return pv if fits_node else None
            if ref or pmeta.get("name") in chosen or (pv.get("status") or {}).get("phase") != "Available":
                continue
            if not fits_node:
                continue
            if selector:
                from ..api.selectors import selector_from_dict
                try:
                    if not selector_from_dict(selector).matches(pmeta.get("labels") or {}):
                        continue
                except Exception:
                    continue
            if not modes <= set(pspec.get("accessModes") or ()):
                continue
            if best is None or size < best_size:
                best, best_size = pv, size
        return best

    def _provisionable(self, pvc: dict, ni: NodeInfo) -> bool:
        sc = self._class(claim_class(pvc))
        if sc is None:
            return False
        prov = sc.get("provisioner") or ""
        if not prov or prov == NO_PROVISIONER:
            return False
        return _topology_matches(sc, ni.labels)

    def filter(self, state: VolumeState, ni: NodeInfo) -> Status | None:
        """FindPodVolumes for one node."""
        reasons = []
        pv_missing = False
        for pvc in state.bound:
            pv = self.pv(pvc["spec"]["volumeName"])
            if pv is None:
                pv_missing = True
                break
            if not pv_accepts(pv, ni):
                reasons.append(ERR_NODE_CONFLICT)
                break
        if state.delayed:
            ok = True
            to_match, to_provision = [], []
            for pvc in state.delayed:
                ann = (pvc.get("metadata") or {}).get("annotations") or {}
                sel = ann.get(ANN_SELECTED_NODE)
                if sel is not None and sel != ni.name:
                    ok = False  # already being provisioned for another node
                    break
                (to_match if sel is None else to_provision).append(pvc)
            if ok:
                if to_match:
                    to_provision += self._matching_volumes(state, ni, to_match)[1]
                ok = all(self._provisionable(pvc, ni) for pvc in to_provision)
            if not ok:
                reasons.append(ERR_BIND_CONFLICT)
        if pv_missing:
            reasons.append(ERR_PV_NOT_EXIST)
        return Status(UNRESOLVABLE, tuple(reasons), "VolumeBinding") if reasons else None

    # ---- Reserve / PreBind ---------------------------------------------------------------------

    def assume(self, pod: PodInfo, state: VolumeState | None, ni: NodeInfo) -> PodVolumes | None:
        """Choose and assume the volumes on the selected node; None when all claims are bound."""
        if state is None or not state.delayed:
            return None
        to_match = [c for c in state.delayed
                    if ANN_SELECTED_NODE not in ((c.get("metadata") or {}).get("annotations") or {})]
        provision = [c for c in state.delayed if c not in to_match]
        static, rest = self._matching_volumes(state, ni, to_match) if to_match else ([], [])
        provision += rest
        bindings = []
        for pv, pvc in static:
            pv = copy.deepcopy(pv)
            meta = pvc["metadata"]
            if not (pv["spec"].get("claimRef") or {}).get("uid"):
                pv["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                                          "namespace": meta["namespace"], "name": meta["name"],
                                          "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
                pv["metadata"].setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = "yes"
            self.assumed_pvs[pv["metadata"]["name"]] = pv
            bindings.append((pv, pvc))
        claims = []
        for pvc in provision:
            pvc = copy.deepcopy(pvc)
            pvc["metadata"].setdefault("annotations", {})[ANN_SELECTED_NODE] = ni.name
            self.assumed_pvcs[f"{pvc['metadata']['namespace']}/{pvc['metadata']['name']}"] = pvc
            claims.append(pvc)
        return PodVolumes(bindings, claims)

    def revert(self, vols: PodVolumes | None) -> None:
        if vols is None:
            return
        for pv, _pvc in vols.static:
            self.assumed_pvs.pop(pv["metadata"]["name"], None)
        for pvc in vols.provision:
            self.assumed_pvcs.pop(f"{pvc['metadata']['namespace']}/{pvc['metadata']['name']}", None)

    async def bind(self, pod: PodInfo, vols: PodVolumes, node: str, pod_exists) -> None:
        """bindAPIUpdate, then wait (checkBindings) until the claims are bound."""
        for i, (pv, pvc) in enumerate(vols.static):
            try:
                vols.static[i] = (await self.client.update("persistentvolumes", None, pv), pvc)
            except ApiError as e:
                raise VolumeError(str(e)) from None
        for i, pvc in enumerate(vols.provision):
            meta = pvc["metadata"]
            try:
                vols.provision[i] = await self.client.patch(
                    "persistentvolumeclaims", meta["namespace"], meta["name"],
                    {"metadata": {"annotations": {ANN_SELECTED_NODE: node},
                                  "resourceVersion": meta.get("resourceVersion")}})
            except ApiError as e:
                raise VolumeError(str(e)) from None
        deadline = self.clock.now() + self.bind_timeout
        while not self._bindings_done(pod, vols, node, pod_exists):
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                raise VolumeError("binding volumes: context deadline exceeded")
            await self._wait_change(min(1.0, remaining))

    @staticmethod
    def _older(live: dict, written: dict) -> bool:
        """The informer has not yet seen our own write."""
        try:
            return int(live["metadata"]["resourceVersion"]) < int(written["metadata"]["resourceVersion"])
        except (KeyError, ValueError, TypeError):
            return False

    def _bindings_done(self, pod: PodInfo, vols: PodVolumes, node: str, pod_exists) -> bool:
        if not pod_exists():
            raise VolumeError(f"binding volumes: pod does not exist any more: pods {go_quote(pod.name)} not found")
        for pv, pvc in vols.static:
            live_pv = self.pvs.get(pv["metadata"]["name"])
            live = self.pvcs.get(f"{pvc['metadata']['namespace']}/{pvc['metadata']['name']}")
            if live_pv is None or live is None or self._older(live_pv, pv):
                return False
            if not ((live_pv.get("spec") or {}).get("claimRef") or {}).get("uid"):
                raise VolumeError(f"binding volumes: ClaimRef got reset for pv {go_quote(pv['metadata']['name'])}")
            if not fully_bound(live):
                return False
        for pvc in vols.provision:
            meta = pvc["metadata"]
            live = self.pvcs.get(f"{meta['namespace']}/{meta['name']}")
            if live is None:
                raise VolumeError(f"binding volumes: failed to check provisioning pvc: "
                                  f"persistentvolumeclaim {go_quote(meta['name'])} not found")
            if self._older(live, pvc):
                return False
            ann = (live.get("metadata") or {}).get("annotations") or {}
            if ann.get(ANN_SELECTED_NODE) != node:
                # A provisioner that gives up removes the annotation to ask for another node.
                raise VolumeError(f"binding volumes: provisioning failed for PVC {go_quote(meta['name'])}")
            if not fully_bound(live):
                return False
        return True

    async def _wait_change(self, timeout: float) -> None:
        changed = asyncio.ensure_future(self._changed.wait())
        sleep = asyncio.ensure_future(self.clock.sleep_until(self.clock.now() + timeout))
        try:
            await asyncio.wait({changed, sleep}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            sleep.cancel()
