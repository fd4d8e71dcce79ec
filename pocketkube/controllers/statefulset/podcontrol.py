"""Writes a StatefulSet makes to its pods and claims, with upstream's events (stateful_pod_control.go).

Why it exists: unlike a ReplicaSet's, a StatefulSet's pod is created only after its claims exist
(so the pod's volumes always refer to claims that are there), is updated in place when its
identity or storage drifts, and its claims carry the owner references the retention policy asks
for. Every write leaves the event upstream leaves on the StatefulSet, e.g. `SuccessfulCreate`
"create Pod web-0 in StatefulSet web successful" and "create Claim www-web-0 Pod web-0 in
StatefulSet web success", or the `Failed...` counterpart with the error.

Claims and pods are read from the informer caches (upstream's listers); a claim the cache has
not seen yet is created, and AlreadyExists then just means the cache is behind.
"""

from __future__ import annotations

import copy

from ...api.errors import ApiError
from ...client import Client
from ...client.events import EventRecorder
from ...client.informer import Informer
from ..podcontrol import SpamFilter
from . import utils

PODS = "pods"
PVCS = "persistentvolumeclaims"


class StatefulPodControl:
    def __init__(self, client: Client, recorder: EventRecorder, spam: SpamFilter,
                 pods: Informer, claims: Informer):
        self.client = client
        self.recorder = recorder
        self.spam = spam
        self.pods = pods
        self.claims = claims

    # ---- events ----------------------------------------------------------------------------------

    def _event(self, sts: dict, type_: str, reason: str, message: str) -> None:
        # client-go's recorder drops an object's events beyond 25 per 5 minutes; so do we.
        if self.spam.allow(sts, type_):
            self.recorder.event(sts, type_, reason, reason.removeprefix("Successful").removeprefix("Failed"),
                                message)

    def _record(self, verb: str, sts: dict, ok: str, failed: str, err: Exception | None) -> None:
        if err is None:
            self._event(sts, "Normal", f"Successful{verb.title()}", ok)
        else:
            self._event(sts, "Warning", f"Failed{verb.title()}", f"{failed} failed error: {err}")

    def record_pod_event(self, verb: str, sts: dict, pod: dict, err: Exception | None) -> None:
        what = f"{verb.lower()} Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']}"
        self._record(verb, sts, f"{what} successful", what, err)

    def record_claim_event(self, verb: str, sts: dict, pod: dict, claim: dict, err: Exception | None) -> None:
        v, cname, name, set_name = verb.lower(), claim["metadata"]["name"], pod["metadata"]["name"], sts["metadata"]["name"]
        self._record(verb, sts, f"{v} Claim {cname} Pod {name} in StatefulSet {set_name} success",
                     f"{v} Claim {cname} for Pod {name} in StatefulSet {set_name}", err)

    # ---- claims ----------------------------------------------------------------------------------

    def get_claim(self, namespace: str, name: str) -> dict | None:
        return self.claims.get(f"{namespace}/{name}")

    async def create_claims(self, sts: dict, pod: dict) -> None:
        """createPersistentVolumeClaims: make the pod's missing claims; a claim being deleted is
        an error (the pod must wait for it to go and be made again)."""
        errors: list[str] = []
        for claim in utils.claims_for(sts, utils.ordinal_of(pod)).values():
            meta = claim["metadata"]
            existing = self.get_claim(meta["namespace"] or "", meta["name"])
            if existing is None:
                try:
                    await self.client.create(PVCS, meta["namespace"], claim)
                    self.record_claim_event("create", sts, pod, claim, None)
                except ApiError as e:
                    # AlreadyExists: made on an earlier pass the cache has not delivered yet.
                    if not (e.code == 409 and e.reason == "AlreadyExists"):
                        errors.append(f"failed to create PVC {meta['name']}: {e}")
                        self.record_claim_event("create", sts, pod, claim, e)
            elif existing["metadata"].get("deletionTimestamp"):
                errors.append(f"pvc {meta['name']} is being deleted")
        if errors:
            raise RuntimeError(", ".join(errors) if len(errors) == 1 else "[" + ", ".join(errors) + "]")

    async def create_missing_claims(self, sts: dict, pod: dict) -> None:
        await self.create_claims(sts, pod)
        try:
            await self.update_claims_for_retention(sts, pod)
        except Exception as e:
            self.record_pod_event("update", sts, pod, e)
            raise

    def claims_match_retention(self, sts: dict, pod: dict) -> bool:
        ns = sts["metadata"].get("namespace") or ""
        for tpl in utils.claim_templates(sts):
            claim = self.get_claim(ns, utils.claim_name(sts, tpl, utils.ordinal_of(pod)))
            if claim is not None and not utils.claim_owner_up_to_date(claim, sts, pod):
                return False
        return True

    async def update_claims_for_retention(self, sts: dict, pod: dict) -> None:
        """UpdatePodClaimForRetentionPolicy: set the claims' owner references for the policy."""
        ns = sts["metadata"].get("namespace") or ""
        for tpl in utils.claim_templates(sts):
            cname = utils.claim_name(sts, tpl, utils.ordinal_of(pod))
            claim = self.get_claim(ns, cname)
            if claim is None:
                continue   # picked up on a later pass
            if utils.has_unexpected_controller(claim, sts, pod):
                self._event(sts, "Warning", "ConflictingController",
                            f"PersistentVolumeClaim {cname} has a conflicting OwnerReference that acts as a "
                            "manging controller, the retention policy is ignored for this claim")
            if not utils.claim_owner_up_to_date(claim, sts, pod):
                claim = copy.deepcopy(claim)
                utils.update_claim_owner_refs(claim, sts, pod)
                try:
                    await self.client.update(PVCS, ns, claim)
                except ApiError as e:
                    raise RuntimeError(f"could not update claim {cname} for delete policy ownerRefs: {e}") from e

    def pod_claim_is_stale(self, sts: dict, pod: dict) -> bool:
        """PodClaimIsStale: with whenScaled=Delete, a claim still owned by an earlier pod of this
        name is on its way out; the pod must not be made until it is gone."""
        if utils.retention_policy(sts)[1] == utils.RETAIN:
            return False
        for claim in utils.claims_for(sts, utils.ordinal_of(pod)).values():
            existing = self.get_claim(claim["metadata"]["namespace"] or "", claim["metadata"]["name"])
            if existing is not None and utils.has_stale_owner_ref(existing, pod, utils._is_pod_ref):
                return True
        return False

    # ---- pods ------------------------------------------------------------------------------------

    async def create_pod(self, sts: dict, pod: dict) -> dict:
        """CreateStatefulPod: claims first, then the pod, then the claims' retention references."""
        try:
            await self.create_claims(sts, pod)
        except Exception as e:
            self.record_pod_event("create", sts, pod, e)
            raise
        try:
            created = await self.client.create(PODS, pod["metadata"]["namespace"], pod)
        except ApiError as e:
            if not (e.code == 409 and e.reason == "AlreadyExists"):
                self.record_pod_event("create", sts, pod, e)
            raise
        try:
            await self.update_claims_for_retention(sts, created)
        except Exception as e:
            self.record_pod_event("update", sts, pod, e)
            raise
        self.record_pod_event("create", sts, pod, None)
        return created

    async def update_pod(self, sts: dict, pod: dict) -> None:
        """UpdateStatefulPod: restore identity, storage and claim references; retry conflicts."""
        pod = copy.deepcopy(pod)
        attempted = False
        err: Exception | None = None
        for _ in range(5):
            consistent = True
            if not utils.identity_matches(sts, pod):
                utils.update_identity(sts, pod)
                consistent = False
            try:
                if not utils.storage_matches(sts, pod):
                    utils.update_storage(sts, pod)
                    consistent = False
                    await self.create_claims(sts, pod)
                if not self.claims_match_retention(sts, pod):
                    await self.update_claims_for_retention(sts, pod)
                    consistent = False
            except Exception as e:
                self.record_pod_event("update", sts, pod, e)
                raise
            if consistent:
                return
            attempted = True
            try:
                await self.client.update(PODS, pod["metadata"]["namespace"], pod)
                err = None
                break
            except ApiError as e:
                err = e
                if e.code != 409:
                    break
                fresh = self.pods.get(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
                if fresh is not None:
                    pod = copy.deepcopy(fresh)
        if attempted:
            self.record_pod_event("update", sts, pod, err)
        if err is not None:
            raise err

    async def delete_pod(self, sts: dict, pod: dict) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(PODS, meta["namespace"], meta["name"],
                                     preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
        except ApiError as e:
            if e.code in (404, 409):
                return   # gone already, or replaced by a newer pod of that name: nothing to delete
            self.record_pod_event("delete", sts, pod, e)
            raise
        self.record_pod_event("delete", sts, pod, None)
