"""The StatefulSet controller: watches StatefulSets and pods, and syncs StatefulSets (stateful_set.go).

Why it exists: this is the loop of kube-controller-manager's statefulset controller. Handlers
only decide which StatefulSet to look at: a pod event goes to the set that controls it (or, for
an orphan, to every set in its namespace whose selector matches, so one can adopt it), and a pod
that just became ready wakes its set again after minReadySeconds, when it counts as available;
a claim being deleted wakes the sets that select it (a pod may be waiting for its stale claim).
`sync(key)` then takes upstream's steps: adopt orphaned ControllerRevisions, claim the pods
whose names make them members (`<set>-<ordinal>`; matching orphans are adopted after a fresh
read proves the set is not being deleted, ours that no longer match are released), and run one
pass of `control.StatefulSetControl`.

Pods are indexed by namespace and the set name their own name carries, so a sync looks only at
its own members. There are no expectations: pod names are fixed, so a create the cache has not
seen yet fails with AlreadyExists instead of making a second pod; such a sync is simply tried
again once the cache catches up.
"""

from __future__ import annotations

import copy
import logging

from ...api.errors import ApiError
from ...api.selectors import LabelSelector
from ...client.informer import object_key
from ..base import Controller, Owners, adopt, controlled_elsewhere, controller_ref, release
from ..history import History
from ..podcontrol import SpamFilter
from ..ranking import is_pod_ready
from . import utils
from .control import StatefulSetControl
from .podcontrol import PODS, PVCS, StatefulPodControl
from .status import STATEFULSETS, StatusUpdater

log = logging.getLogger("pocketkube.controllers.statefulset")


class StatefulSetController(Controller):
    name = "statefulset"
    workers = 5   # --concurrent-statefulset-syncs

    def setup(self) -> None:
        self.sets = self.informers.get(STATEFULSETS)
        self.pods = self.informers.get(PODS)
        self.claims = self.informers.get(PVCS)
        self.history = History(self.client, self.informers)
        self.pod_control = StatefulPodControl(self.client, self.recorder, SpamFilter(self.clock),
                                              self.pods, self.claims)
        self.control = StatefulSetControl(self.pod_control, StatusUpdater(self.client), self.history, self.clock)
        self.owners = Owners(self.sets, "StatefulSet")
        # (namespace, set name taken from the pod's name) -> pod keys
        self._members: dict[tuple[str, str], set[str]] = {}
        self.sets.add_handler(self._on_set)
        self.pods.add_handler(self._on_pod)
        self.claims.add_handler(self._on_claim)

    # ---- indexes ---------------------------------------------------------------------------------

    @staticmethod
    def _member_key(pod: dict) -> tuple[str, str]:
        meta = pod["metadata"]
        return meta.get("namespace") or "", utils.parent_and_ordinal(meta.get("name") or "")[0]

    # ---- event handlers --------------------------------------------------------------------------

    def _on_set(self, kind: str, old: dict | None, new: dict | None) -> None:
        self.enqueue(new if new is not None else old)

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        # An update never renames a pod: only adds and deletes move the name index.
        if kind == "ADDED":
            self._members.setdefault(self._member_key(new), set()).add(object_key(new))
            self._pod_added(new)
        elif kind == "MODIFIED":
            # Names count whoever controls the pod (above); updates only for our own and orphans.
            if not controlled_elsewhere("", old, new, "StatefulSet"):
                self._pod_updated(old, new)
        else:
            mkey = self._member_key(old)
            members = self._members.get(mkey)
            if members is not None:
                members.discard(object_key(old))
                if not members:
                    del self._members[mkey]
            self._pod_deleted(old)

    def _pod_added(self, pod: dict) -> None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            sts = self.owners.resolve(meta.get("namespace") or "", ref)
            if sts is not None:
                self.enqueue(sts)
                min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
                if min_ready > 0 and is_pod_ready(pod):
                    self.queue.add_after(object_key(sts), float(min_ready))
            return
        for sts in self.owners.matching(pod):
            self.enqueue(sts)

    def _pod_updated(self, old: dict, cur: dict) -> None:
        ometa, cmeta = old["metadata"], cur["metadata"]
        if ometa.get("resourceVersion") == cmeta.get("resourceVersion"):
            return
        ns = cmeta.get("namespace") or ""
        labels_changed = ometa.get("labels") != cmeta.get("labels")
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = (cur_ref or {}).get("uid") != (old_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            sts = self.owners.resolve(ns, old_ref)
            if sts is not None:
                self.enqueue(sts)
        if cur_ref is not None:
            sts = self.owners.resolve(ns, cur_ref)
            if sts is None:
                return
            self.enqueue(sts)
            min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                # Look again once it has been ready long enough to count as available.
                self.queue.add_after(object_key(sts), float(min_ready))
            return
        if labels_changed or ref_changed:
            for sts in self.owners.matching(cur):
                self.enqueue(sts)

    def _on_claim(self, kind: str, old: dict | None, new: dict | None) -> None:
        """A claim going away may unblock a pod waiting for its stale claim (whenScaled=Delete):
        wake the sets whose selector matches the claim (claims carry the set's matchLabels)."""
        if kind == "ADDED" or (kind == "MODIFIED" and not new["metadata"].get("deletionTimestamp")):
            return
        claim = new if new is not None else old
        for sts in self.owners.matching(claim):
            self.enqueue(sts)

    def _pod_deleted(self, pod: dict) -> None:
        sts = self.owners.resolve(pod["metadata"].get("namespace") or "", controller_ref(pod))
        if sts is not None:
            self.enqueue(sts)

    # ---- sync ------------------------------------------------------------------------------------

    async def _safe_sync(self, key: str) -> None:
        try:
            await self.sync(key)
        except ApiError as e:
            if e.code != 409:
                raise
            # AlreadyExists (a pod or claim the cache has not delivered yet) or Conflict (a stale
            # copy): the newer object's event syncs the set again; the delayed add is a safety net.
            log.debug("statefulset %s: %s; waiting for the cache", key, e)
            self.queue.add_after(key, 1.0)

    async def sync(self, key: str) -> None:
        cached = self.sets.get(key)
        if cached is None:
            return
        sts = copy.deepcopy(cached)
        sts.setdefault("apiVersion", "apps/v1")
        sts.setdefault("kind", "StatefulSet")
        sel = self.owners.selector(sts)
        if sel is None:
            return   # an invalid selector is not retried: only a new spec can fix it
        await self._adopt_orphan_revisions(sts, sel)
        pods = await self._claim_pods(sts, sel)
        revisions = self.history.list(sts, sel)
        status = await self.control.update(sts, pods, revisions)
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if status is not None and min_ready > 0 and status.get("availableReplicas") != utils.replicas_of(sts):
            self.queue.add_after(key, float(min_ready))

    async def _can_adopt(self, sts: dict) -> None:
        """RecheckDeletionTimestamp: a fresh read, so a deleted set never adopts."""
        meta = sts["metadata"]
        fresh = await self.client.get(STATEFULSETS, meta.get("namespace"), meta["name"])
        if fresh["metadata"].get("uid") != meta.get("uid"):
            raise RuntimeError(f"original StatefulSet {meta.get('namespace')}/{meta['name']} is gone: "
                               f"got uid {fresh['metadata'].get('uid')}, wanted {meta.get('uid')}")
        if fresh["metadata"].get("deletionTimestamp"):
            raise RuntimeError(f"{meta.get('namespace')}/{meta['name']} has just been deleted at "
                               f"{fresh['metadata']['deletionTimestamp']}")

    async def _adopt_orphan_revisions(self, sts: dict, sel: LabelSelector) -> None:
        orphans = [r for r in self.history.list(sts, sel) if controller_ref(r) is None]
        if orphans:
            await self._can_adopt(sts)
            await self.control.adopt_orphan_revisions(sts, orphans)

    async def _claim_pods(self, sts: dict, sel: LabelSelector) -> list[dict]:
        """getPodsForStatefulSet: members by name, claimed as ControllerRefManager.ClaimPods."""
        meta = sts["metadata"]
        uid = meta.get("uid")
        deleting = bool(meta.get("deletionTimestamp"))
        out: list[dict] = []
        checked = False
        for k in sorted(self._members.get((meta.get("namespace") or "", meta["name"]), ())):
            pod = self.pods.get(k)
            if pod is None:
                continue
            pmeta = pod["metadata"]
            matches = sel.matches(pmeta.get("labels") or {})
            ref = controller_ref(pod)
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    out.append(pod)
                elif not deleting:
                    try:
                        await release(self.client, PODS, pod, sts)
                    except ApiError as e:
                        if e.code not in (404, 409, 422):
                            raise
                continue
            if deleting or not matches or pmeta.get("deletionTimestamp"):
                continue
            if not checked:
                await self._can_adopt(sts)
                checked = True
            try:
                out.append(await adopt(self.client, PODS, pod, sts))
            except ApiError as e:
                if e.code != 404:
                    raise
        return out
