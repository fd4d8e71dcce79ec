"""The Deployment controller: watches Deployments, ReplicaSets and pods, and syncs Deployments.

Why it exists: this is the loop of kube-controller-manager's deployment controller
(`pkg/controller/deployment/deployment_controller.go`). Handlers only decide which Deployment
to look at: a ReplicaSet event goes to the Deployment that controls it (or, for an orphan, to
every Deployment whose selector matches, so one of them can adopt it), and the deletion of the
last pod of a Recreate Deployment wakes it up. `sync(key)` then takes the steps in upstream's
order: claim ReplicaSets (adopt matching orphans after a fresh read proves the Deployment is
not being deleted, release those that no longer match), then the first that applies of:
status only (being deleted), paused, server-side rollback, scaling event, and the rollout
strategy (Recreate or RollingUpdate).

A sync works on a private copy of the Deployment and never changes an informer's objects.
Writes are guarded by resourceVersion; a conflict means the informer is about to deliver a
newer object, whose event syncs the Deployment again, so conflicts are retried quietly.
"""

from __future__ import annotations

import logging

from ...api.errors import ApiError
from ...api.selectors import LabelSelector
from ...client import MERGE
from ...client.informer import object_key
from ..base import Controller, OwnedIndex, Owners, adopt, controlled_elsewhere, controller_ref, release
from ..podcontrol import SpamFilter
from . import util
from .recreate import rollout_recreate
from .rollback import get_rollback_to, rollback
from .rolling import rollout_rolling
from .sync import RS, check_paused_conditions, is_scaling_event, sync, sync_status_only

log = logging.getLogger("pocketkube.controllers.deployment")

DEPLOYMENTS = "deployments.apps"
PODS = "pods"


class DeploymentController(Controller):
    name = "deployment"
    workers = 5  # --concurrent-deployment-syncs

    def setup(self) -> None:
        self.deployments = self.informers.get(DEPLOYMENTS)
        self.replicasets = self.informers.get(RS)
        self.pods = self.informers.get(PODS)
        self.spam = SpamFilter(self.clock)
        self.owners = Owners(self.deployments, "Deployment")
        # ReplicaSets by the uid of their controller (orphans by namespace), and pods by the uid
        # of their ReplicaSet: Recreate asks "are any old pods left?" on every pod deletion,
        # which must not cost a scan of every pod.
        self.rs_index = OwnedIndex()
        self.pod_index = OwnedIndex()
        self.deployments.add_handler(self._on_deployment)
        self.replicasets.add_handler(self._on_replicaset)
        self.pods.add_handler(self._on_pod)

    # ---- helpers the strategy modules use --------------------------------------------------------

    @staticmethod
    def key_of(d: dict) -> str:
        return object_key(d)

    def event(self, d: dict, type_: str, reason: str, message: str) -> None:
        # client-go's recorder drops an object's events beyond 25 per 5 minutes; so do we.
        if self.spam.allow(d, type_):
            self.recorder.event(d, type_, reason, reason, message)

    async def update_status(self, d: dict) -> dict:
        """UpdateStatus with the copy's resourceVersion, which then follows the write.

        Upstream's status subresource for Deployments also stores annotation changes, which is
        how the revision annotation reaches the Deployment. Where the server keeps annotations
        out of status writes, the annotation is written through the main resource instead.
        """
        m = d["metadata"]
        written = await self.client.update_status(DEPLOYMENTS, m.get("namespace"), d)
        want = (m.get("annotations") or {}).get(util.REVISION)
        if want is not None and util.annotations(written).get(util.REVISION) != want:
            written = await self.client.patch(
                DEPLOYMENTS, m.get("namespace"), m["name"],
                {"metadata": {"annotations": {util.REVISION: want},
                              "resourceVersion": util.meta(written).get("resourceVersion")}}, MERGE)
        m["resourceVersion"] = util.meta(written).get("resourceVersion")
        return written

    def schedule_check(self, key: str, delay: float) -> None:
        """Sync again after `delay` (the queue keeps one timer per key, the earliest)."""
        self.queue.add_after(key, delay)

    def selector(self, d: dict) -> LabelSelector | None:
        return self.owners.selector(d)

    # ---- event handlers --------------------------------------------------------------------------

    def _on_deployment(self, kind: str, old: dict | None, new: dict | None) -> None:
        obj = new if new is not None else old
        self.enqueue(obj)

    def _resolve(self, namespace: str, ref: dict | None) -> dict | None:
        return self.owners.resolve(namespace, ref)

    def _deployments_for_replicaset(self, rs: dict) -> list[dict]:
        """Deployments whose selector matches an orphan ReplicaSet's labels."""
        return self.owners.matching(rs) if util.meta(rs).get("labels") else []

    def _on_replicaset(self, kind: str, old: dict | None, new: dict | None) -> None:
        if kind == "DELETED":
            self.rs_index.update(object_key(old), None)
            d = self._resolve(util.meta(old).get("namespace") or "", controller_ref(old))
            if d is not None:
                self.enqueue(d)
            return
        m = util.meta(new)
        ns = m.get("namespace") or ""
        self.rs_index.update(object_key(new), new)
        if kind == "ADDED" or old is None:
            ref = controller_ref(new)
            if ref is not None:
                d = self._resolve(ns, ref)
                if d is not None:
                    self.enqueue(d)
                return
            for d in self._deployments_for_replicaset(new):
                self.enqueue(d)
            return
        if util.meta(old).get("resourceVersion") == m.get("resourceVersion"):
            return
        cur_ref, old_ref = controller_ref(new), controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            d = self._resolve(ns, old_ref)
            if d is not None:
                self.enqueue(d)
        if cur_ref is not None:
            d = self._resolve(ns, cur_ref)
            if d is not None:
                self.enqueue(d)
            return
        if ref_changed or util.meta(old).get("labels") != m.get("labels"):
            for d in self._deployments_for_replicaset(new):
                self.enqueue(d)

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        pod = new if new is not None else old
        key = object_key(pod)
        if controlled_elsewhere(key, old, new, "ReplicaSet", self.pod_index):
            return
        self.pod_index.update(key, new)
        if kind == "DELETED":
            self._pod_deleted(old)

    def _pod_deleted(self, pod: dict) -> None:
        """A Recreate Deployment waits for its old pods to be gone: wake it when the last goes."""
        ns = util.meta(pod).get("namespace") or ""
        ref = controller_ref(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.get(f"{ns}/{ref.get('name')}")
        if rs is None or util.meta(rs).get("uid") != ref.get("uid"):
            return
        d = self._resolve(ns, controller_ref(rs))
        if d is None or ((d.get("spec") or {}).get("strategy") or {}).get("type") != "Recreate":
            return
        for other in self.rs_index.owned(util.meta(d).get("uid")):
            if self.pod_index.count(util.meta(other).get("uid")):
                return
        self.enqueue(d)

    # ---- sync ------------------------------------------------------------------------------------

    async def _safe_sync(self, key: str) -> None:
        try:
            await self.sync(key)
        except ApiError as e:
            if e.code != 409 or e.reason == "AlreadyExists":
                raise
            # Written against a stale copy: the newer object's event requeues the key. The
            # delayed add is only a safety net.
            log.debug("deployment %s: conflict, waiting for the newer object: %s", key, e)
            self.queue.add_after(key, 1.0)

    async def sync(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            return
        d = util.copy(cached)
        d.setdefault("apiVersion", "apps/v1")
        d.setdefault("kind", "Deployment")
        spec = d.setdefault("spec", {})
        d.setdefault("status", {})
        sel = spec.get("selector")
        if sel is not None and not sel.get("matchLabels") and not sel.get("matchExpressions"):
            self.event(d, "Warning", "SelectingAll",
                       "This deployment is selecting all pods. A non-empty selector is required.")
            if int(d["status"].get("observedGeneration") or 0) < util.generation(d):
                d["status"]["observedGeneration"] = util.generation(d)
                await self.update_status(d)
            return
        rs_list = await self.claim_replica_sets(d)
        if util.meta(d).get("deletionTimestamp"):
            await sync_status_only(self, d, rs_list)
            return
        await check_paused_conditions(self, d)
        if spec.get("paused"):
            await sync(self, d, rs_list)
            return
        if get_rollback_to(d) is not None:
            await rollback(self, d, rs_list)
            return
        if await is_scaling_event(self, d, rs_list):
            await sync(self, d, rs_list)
            return
        strategy = (spec.get("strategy") or {}).get("type")
        if strategy == "Recreate":
            await rollout_recreate(self, d, rs_list, self.pod_map(d, rs_list))
        elif strategy == "RollingUpdate":
            await rollout_rolling(self, d, rs_list)
        else:
            raise ValueError(f"unexpected deployment strategy type: {strategy}")

    async def claim_replica_sets(self, d: dict) -> list[dict]:
        """ClaimReplicaSets: ours that match, plus adopted orphans; release ours that stopped matching."""
        m = d["metadata"]
        uid = m.get("uid")
        deleting = bool(m.get("deletionTimestamp"))
        sel = self.selector(d)
        if sel is None:
            return []
        out: list[dict] = []
        checked = False
        owned, orphans = self.rs_index.of(d)
        for rs in sorted(owned + orphans, key=object_key):
            rm = util.meta(rs)
            matches = sel.matches(rm.get("labels") or {})
            ref = controller_ref(rs)
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    out.append(rs)
                elif not deleting:
                    try:
                        await release(self.client, RS, rs, d)
                    except ApiError as e:
                        if e.code not in (404, 409, 422):
                            raise
                continue
            if deleting or not matches or rm.get("deletionTimestamp"):
                continue
            if not checked:
                await self._recheck_deletion(d)
                checked = True
            try:
                out.append(await adopt(self.client, RS, rs, d))
            except ApiError as e:
                if e.code != 404:
                    raise
        return out

    async def _recheck_deletion(self, d: dict) -> None:
        """A fresh read before adopting: a Deployment being deleted must not take new ReplicaSets."""
        m = d["metadata"]
        fresh = await self.client.get(DEPLOYMENTS, m.get("namespace"), m["name"])
        fm = util.meta(fresh)
        if fm.get("uid") != m.get("uid"):
            raise RuntimeError(f"original Deployment {m.get('namespace')}/{m['name']} is gone: "
                               f"got uid {fm.get('uid')}, wanted {m.get('uid')}")
        if fm.get("deletionTimestamp"):
            raise RuntimeError(f"{m.get('namespace')}/{m['name']} has just been deleted at {fm['deletionTimestamp']}")

    def pod_map(self, d: dict, rs_list: list[dict]) -> dict[str, list[dict]]:
        """The Deployment's pods grouped by the uid of the ReplicaSet that controls them."""
        sel = self.selector(d)
        out: dict[str, list[dict]] = {}
        for rs in rs_list:
            uid = util.meta(rs).get("uid")
            out[uid] = [p for p in self.pod_index.owned(uid)
                        if sel is not None and sel.matches(util.meta(p).get("labels") or {})]
        return out
