"""ReplicaSet controller: keep `spec.replicas` pods of a template alive, and say how many there are.

Why it exists: a ReplicaSet is the unit a Deployment scales and rolls, and the thing that
brings a deleted or failed pod back under a new name. This is kube-controller-manager's
ReplicaSet controller (pkg/controller/replicaset/replica_set.go), step for step:

* read the ReplicaSet and the pods that could be its own from the informer caches (pods it
  controls, plus orphans in its namespace; both found through an index, never a list call);
* claim: adopt matching orphans (after a fresh read proves the ReplicaSet is not being
  deleted), release controlled pods whose labels no longer match;
* if the expectations from the previous sync have been observed and the ReplicaSet is not
  being deleted, create or delete the difference: creates in slow-start batches (1, 2, 4, ...;
  at most 500 per sync; stop at the first failure), deletes in Kubernetes' ranking
  (`ranking.py`), with SuccessfulCreate/SuccessfulDelete/FailedCreate events;
* write the status through the status subresource: replicas, fullyLabeledReplicas,
  readyReplicas, availableReplicas (minReadySeconds, measured on the injected clock),
  terminatingReplicas, observedGeneration, and the ReplicaFailure condition.

Expectations make the controller wait for its informer to see the pods it just created or
deleted before it counts again, so it never creates the same pods twice. Terminating pods do not
count as replicas, so a deleted pod is replaced at once, as upstream does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Iterable

from ..api.errors import ApiError
from ..api.selectors import LabelSelector
from ..client.informer import ObjectMemo, object_key
from .base import (Controller, Expectations, OwnedIndex, Owners, adopt, controlled_elsewhere, controller_ref,
                   pod_from_template, release)
from ..client.bounded import bounded_map
from .podcontrol import NAMESPACE_TERMINATING_CAUSE, PodControl, has_status_cause, slow_start_batch
from .ranking import Placement, available_after, is_pod_ready, pods_to_delete

log = logging.getLogger("pocketkube.replicaset")

RS = "replicasets.apps"
PODS = "pods"
BURST_REPLICAS = 500          # upstream's burstReplicas: creates or deletes per sync
REPLICA_FAILURE = "ReplicaFailure"
RANK_MEMO_SECONDS = 30.0      # how long a ranking memo outlives its last use (see _ranks_memo)


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def _get_condition(status: dict, ctype: str) -> dict | None:
    for c in status.get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None


# What one owned pod counts for (a census class): the kind in the low bits, then two flags.
_SKIP, _TERMINATING, _RELEASE, _ACTIVE = 0, 1, 2, 3
_KIND = 3
_FULLY_LABELED = 4
_READY = 8


def _classify(pod: dict, matches, template_labels: list, deleting: bool) -> int:
    """A controlled pod's census class under one ReplicaSet spec (no time in it)."""
    pmeta = pod["metadata"]
    status = pod.get("status")
    if status and status.get("phase") in _FINISHED:
        return _SKIP
    m = matches(pmeta.get("labels") or _NO_LABELS)
    if pmeta.get("deletionTimestamp"):
        return _TERMINATING if m else _SKIP
    if not m:
        return _SKIP if deleting else _RELEASE
    return _ACTIVE | _flags(pod, template_labels)


def _flags(pod: dict, template_labels: list) -> int:
    """An active pod's status flags: all the template's labels, Ready."""
    c = 0
    labels = pod["metadata"].get("labels") or _NO_LABELS
    for k, v in template_labels:
        if labels.get(k) != v:
            break
    else:
        c |= _FULLY_LABELED
    status = pod.get("status")
    for cond in (status.get("conditions") or ()) if status else ():
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                c |= _READY
            break
    return c


class Census:
    """What one pass over a ReplicaSet's candidate pods found (claim inputs and status counts)."""

    __slots__ = ("active", "to_release", "to_adopt", "terminating", "fully_labeled", "ready", "available",
                 "next_available")

    def __init__(self) -> None:
        self.active: list[dict] = []        # controlled, matching, neither finished nor deleting
        self.to_release: list[dict] = []    # controlled but no longer matching
        self.to_adopt: list[dict] = []      # matching orphans
        self.terminating = 0                # controlled, matching, being deleted, not finished
        self.fully_labeled = 0
        self.ready = 0
        self.available = 0
        self.next_available: float | None = None  # seconds until the next ready pod becomes available

    def add_adopted(self, pod: dict, template_labels: list, min_ready: int, now: float) -> None:
        """Count a pod just adopted (it matched, so it is active, as in upstream's claim)."""
        self.active.append(pod)
        c = _flags(pod, template_labels)
        if c & _FULLY_LABELED:
            self.fully_labeled += 1
        if c & _READY:
            self.ready += 1
            self.available_in(available_after(pod, min_ready, now) if min_ready else 0.0)

    def available_in(self, wait: float | None) -> None:
        """Count a ready pod that is available after `wait` seconds (0: now)."""
        if wait == 0.0:
            self.available += 1
        elif wait is not None and (self.next_available is None or wait < self.next_available):
            self.next_available = wait


_NO_LABELS: dict = {}
# Metadata whose change is a reason to sync a ReplicaSet at once (besides its spec's generation).
_RS_META = ("generation", "deletionTimestamp", "labels", "ownerReferences", "finalizers")
_FINISHED = ("Succeeded", "Failed")


class CensusMemo:
    """A ReplicaSet's census kept between syncs: each pod's class, and the sums of them.

    While thousands of pods start, every one changes several times, and a sync that walked all
    of them each time would cost the event loop O(pods) per change. With the keys that changed
    since the last census (from the pod index), a sync reclassifies only those.
    """

    __slots__ = ("uid", "basis", "classes", "per_class", "active", "release")

    def __init__(self, uid: str = "") -> None:
        self.uid = uid
        self.reset(None)

    def reset(self, basis: object) -> None:
        """Forget every class: they were computed on another basis (see take_census)."""
        self.basis = basis
        self.classes: dict[str, int] = {}       # pod key -> class
        self.per_class = [0] * 16
        self.active: dict[str, dict] = {}       # pod key -> pod, for the active ones
        self.release: dict[str, dict] = {}      # pod key -> pod, for those to release


def take_census(rs: dict, selector: LabelSelector, owned: dict[str, dict], orphans: list[dict], now: float,
                memo: CensusMemo | None = None, changed: Iterable[str] | None = None) -> Census:
    """Count the pods a ReplicaSet controls and find the orphans of its namespace it could adopt.

    `owned` maps the keys of the pods known (from the index) to be controlled by `rs` to the
    pods. Claimed pods are counted for the status on the way: the status describes the pods
    found before any create or delete, as upstream's does. With a `memo` of an earlier census
    and the keys `changed` since, only those pods are classified again.
    """
    spec = rs.get("spec") or {}
    template_labels = list((((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}).items())
    min_ready = spec.get("minReadySeconds") or 0
    meta = rs["metadata"]
    deleting = bool(meta.get("deletionTimestamp"))
    ns = meta.get("namespace") or ""
    matches = selector.matches
    census = Census()
    if memo is None:
        memo = CensusMemo()
    # Every class derives from these (not from the generation: scaling moves that).
    basis = (meta.get("uid"), deleting, spec.get("selector"), template_labels)
    if changed is None or basis != memo.basis:
        memo.reset(basis)
        changed = owned.keys()
    classes, per_class, active, release = memo.classes, memo.per_class, memo.active, memo.release
    for key in changed:
        c = classes.pop(key, None)
        if c is not None:
            per_class[c] -= 1
            if c & _KIND == _ACTIVE:
                del active[key]
            elif c == _RELEASE:
                del release[key]
        pod = owned.get(key)
        if pod is None:
            continue
        c = _classify(pod, matches, template_labels, deleting)
        classes[key] = c
        per_class[c] += 1
        if c & _KIND == _ACTIVE:
            active[key] = pod
        elif c == _RELEASE:
            release[key] = pod
    census.active = list(active.values())
    census.to_release = list(release.values())
    census.terminating = per_class[_TERMINATING]
    for c in range(_ACTIVE, 16, 4):
        if c & _FULLY_LABELED:
            census.fully_labeled += per_class[c]
        if c & _READY:
            census.ready += per_class[c]
            if not min_ready:
                census.available += per_class[c]
    if min_ready:
        for key, pod in active.items():
            if classes[key] & _READY:
                census.available_in(available_after(pod, min_ready, now))
    if not deleting:
        for pod in orphans:
            pmeta = pod["metadata"]
            if pmeta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in _FINISHED:
                continue
            if (pmeta.get("namespace") or "") == ns and matches(pmeta.get("labels") or _NO_LABELS):
                census.to_adopt.append(pod)
    return census


def calculate_status(rs: dict, census: Census, manage_error: Exception | None, now_rfc3339: str) -> dict:
    """The status the ReplicaSet should have (calculateStatus), without observedGeneration."""
    spec = rs.get("spec") or {}
    status = dict(rs.get("status") or {})
    conditions = list(status.get("conditions") or ())
    failure = _get_condition(status, REPLICA_FAILURE)
    if manage_error is not None and failure is None:
        diff = len(census.active) - (spec.get("replicas") if spec.get("replicas") is not None else 1)
        reason = "FailedCreate" if diff < 0 else ("FailedDelete" if diff > 0 else "")
        conditions.append({"type": REPLICA_FAILURE, "status": "True", "lastTransitionTime": now_rfc3339,
                           "reason": reason, "message": str(manage_error)})
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    status["replicas"] = len(census.active)
    status["fullyLabeledReplicas"] = census.fully_labeled
    status["readyReplicas"] = census.ready
    status["availableReplicas"] = census.available
    status["terminatingReplicas"] = census.terminating
    return status


_COUNTS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "terminatingReplicas")


def status_unchanged(rs: dict, new: dict) -> bool:
    old = rs.get("status") or {}
    if any((old.get(k) or 0) != (new.get(k) or 0) for k in _COUNTS):
        return False
    if ("terminatingReplicas" in old) != ("terminatingReplicas" in new):
        return False
    if (rs["metadata"].get("generation") or 0) != (old.get("observedGeneration") or 0):
        return False
    return (old.get("conditions") or []) == (new.get("conditions") or [])


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 5                 # --concurrent-replicaset-syncs
    burst_replicas = BURST_REPLICAS
    create_concurrency = 100    # requests in flight within one slow-start batch

    def setup(self) -> None:
        self.expectations = Expectations(self.clock)
        self.pod_control = PodControl(self.client, self.recorder, self.clock)
        self.rs_informer = self.informers.get(RS)
        self.pod_informer = self.informers.get(PODS)
        self.owners = Owners(self.rs_informer, "ReplicaSet")
        # Pods by the uid of their controller, and orphans by namespace: a sync looks only at the
        # pods it could own, whatever the size of the namespace.
        self.pod_index = OwnedIndex()
        self.placement = Placement()     # active pods per ReplicaSet and node, for the ranking
        self._sync_cost: dict[str, float] = {}   # seconds of CPU the last sync of each key took
        # What syncs of big ReplicaSets need not compute again (census classes, ranking facts).
        self._census: dict[str, CensusMemo] = {}
        self._ranks: dict[str, tuple[ObjectMemo, float]] = {}   # with the loop time of its last use
        self._soon: set[str] = set()
        self.rs_informer.add_handler(self._on_rs)
        self.pod_informer.add_handler(self._on_pod)

    def selector(self, rs: dict) -> LabelSelector | None:
        """The ReplicaSet's compiled selector (None if invalid), cached per uid and generation."""
        return self.owners.selector(rs)

    def pods_of(self, rs: dict) -> tuple[dict[str, dict], list[dict]]:
        """Pods this ReplicaSet controls (by key), and the orphans of its namespace (FilterPodsByOwner)."""
        meta = rs["metadata"]
        return self.pod_index.owned_by(meta["uid"]), self.pod_index.orphans(meta.get("namespace") or "")

    # ---- event handlers ------------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: dict | None) -> dict | None:
        return self.owners.resolve(namespace, ref)

    def _matching_replicasets(self, pod: dict) -> list[str]:
        """Keys of the ReplicaSets whose selector matches an orphan pod (GetPodReplicaSets)."""
        return [object_key(rs) for rs in self.owners.matching(pod)]

    def _on_rs(self, kind: str, old: dict | None, new: dict | None) -> None:
        if kind == "DELETED":
            key = object_key(old)
            self._sync_cost.pop(key, None)
            memo = self._census.pop(key, None)
            if memo is not None:
                self.pod_index.untrack(memo.uid)
            self._ranks.pop(key, None)
            self.expectations.forget(key)
            self.queue.add(key)
            return
        key = object_key(new)
        if old is not None and old["metadata"].get("uid") != new["metadata"].get("uid"):
            self.expectations.forget(key)
        elif old is not None and all(old["metadata"].get(f) == new["metadata"].get(f) for f in _RS_META):
            # Only its status moved (mostly our own write): nothing to act on in a hurry.
            self._add_soon(key)
            return
        self.queue.add(key)

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        key = object_key(new or old)
        if controlled_elsewhere(key, old, new, "ReplicaSet", self.pod_index):
            return
        self.placement.update(key, new, self.pod_index.update(key, new))
        if kind == "ADDED":
            self._pod_added(new)
        elif kind == "MODIFIED":
            self._pod_updated(old, new)
        else:
            self._pod_deleted(old)

    def _pod_added(self, pod: dict) -> None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            # Restarted with a pod already being deleted: count it as a deletion, never adopt it.
            self._pod_deleted(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            rs = self._resolve(meta.get("namespace") or "", ref)
            if rs is not None:
                key = object_key(rs)
                self.expectations.creation_observed(key)
                # The last pod of a batch unblocks the next one; the others only move counters.
                if self.expectations.satisfied(key):
                    self.queue.add(key)
                else:
                    self._add_soon(key)
            return
        for key in self._matching_replicasets(pod):
            self.queue.add(key)

    def _pod_updated(self, old: dict, cur: dict) -> None:
        ometa, cmeta = old["metadata"], cur["metadata"]
        if ometa.get("resourceVersion") == cmeta.get("resourceVersion"):
            return
        labels_changed = ometa.get("labels") != cmeta.get("labels")
        if cmeta.get("deletionTimestamp"):
            # A graceful deletion counts as observed at once, so the replacement starts now.
            self._pod_deleted(cur)
            if labels_changed:
                self._pod_deleted(old)
            return
        ns = cmeta.get("namespace") or ""
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = (cur_ref or {}).get("uid") != (old_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            rs = self._resolve(ns, old_ref)
            if rs is not None:
                self.queue.add(object_key(rs))
        if cur_ref is not None:
            rs = self._resolve(ns, cur_ref)
            if rs is None:
                return
            key = object_key(rs)
            if labels_changed or ref_changed:
                self.queue.add(key)
            else:
                self._add_soon(key)
            min_ready = (rs.get("spec") or {}).get("minReadySeconds") or 0
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                # Look again once the pod has been ready long enough to count as available.
                self.queue.add_after(key, min_ready + 1.0)
            return
        if labels_changed or ref_changed:
            for key in self._matching_replicasets(cur):
                self.queue.add(key)

    def _add_soon(self, key: str) -> None:
        """Sync for a change that only moves the status counters, gathering a burst of them.

        A sync of a ReplicaSet with thousands of pods costs milliseconds of the one event loop,
        and while its pods start, every one of them changes several times. Waiting twice the
        last sync's cost before syncing again keeps the controller under about a third of the
        loop however large the ReplicaSet, and costs a small one nothing (no wait below 1 ms).
        The wait is on the event loop's own timer: it paces work, it is not a timeout that
        tests would want to jump over.
        """
        delay = 2 * self._sync_cost.get(key, 0.0)
        if delay < 0.001:
            self.queue.add(key)
            return
        if key in self._soon:
            return
        self._soon.add(key)

        def fire() -> None:
            self._soon.discard(key)
            self.queue.add(key)
        asyncio.get_running_loop().call_later(delay, fire)

    def _pod_deleted(self, pod: dict) -> None:
        meta = pod["metadata"]
        rs = self._resolve(meta.get("namespace") or "", controller_ref(pod))
        if rs is None:
            return
        key = object_key(rs)
        waiting = not self.expectations.satisfied(key)
        self.expectations.deletion_observed(key, object_key(pod))
        if waiting and self.expectations.satisfied(key):
            self.queue.add(key)     # the last deletion we waited for
        else:
            self._add_soon(key)     # one of many (a scale down, the collector emptying us)

    # ---- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        rs = self.rs_informer.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        needs_sync = self.expectations.satisfied(key)
        selector = self.selector(rs)
        if selector is None:
            return  # an invalid selector is not retried: only a new spec can fix it
        now = self.clock.now()
        started = time.perf_counter()
        owned, orphans = self.pods_of(rs)
        uid = rs["metadata"]["uid"]
        memo = self._census.get(key)
        if memo is None or memo.uid != uid:
            if memo is not None:
                self.pod_index.untrack(memo.uid)
            memo = self._census[key] = CensusMemo(uid)
        census = take_census(rs, selector, owned, orphans, now, memo, self.pod_index.take_changes(uid))
        self._sync_cost[key] = time.perf_counter() - started
        await self._claim(rs, census, now)
        manage_error: Exception | None = None
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            manage_error = await self._manage(key, rs, census.active)
        updated = await self._update_status(rs, calculate_status(rs, census, manage_error, self.clock.rfc3339(now)))
        min_ready = (updated.get("spec") or {}).get("minReadySeconds") or 0
        if manage_error is None and min_ready > 0 and census.next_available is not None:
            # Look again when the next ready pod has been ready for minReadySeconds.
            self.queue.add_after(key, census.next_available)
        if manage_error is not None:
            raise manage_error

    async def _claim(self, rs: dict, census: Census, now: float) -> None:
        """Release and adopt as ControllerRefManager.ClaimPods; adopted pods join the census."""
        errors: list[Exception] = []
        if census.to_release:
            for r in await asyncio.gather(*(self._release(rs, p) for p in census.to_release)):
                if r is not None:
                    errors.append(r)
        if census.to_adopt:
            blocked = await self._can_adopt(rs)
            if blocked is not None:
                errors.append(blocked)
            else:
                spec = rs.get("spec") or {}
                template_labels = list((((spec.get("template") or {}).get("metadata") or {})
                                        .get("labels") or {}).items())
                for r in await asyncio.gather(*(self._adopt(rs, p) for p in census.to_adopt)):
                    if isinstance(r, Exception):
                        errors.append(r)
                    elif r is not None:
                        census.add_adopted(r, template_labels, spec.get("minReadySeconds") or 0, now)
        if errors:
            raise errors[0]

    async def _can_adopt(self, rs: dict) -> Exception | None:
        """RecheckDeletionTimestamp: a fresh read, so a deleted ReplicaSet never adopts."""
        meta = rs["metadata"]
        ns, name = meta.get("namespace") or "", meta["name"]
        try:
            fresh = await self.client.get(RS, ns, name)
        except ApiError as e:
            return e
        if fresh["metadata"].get("uid") != meta["uid"]:
            return RuntimeError(f"original ReplicaSet {ns}/{name} is gone: got uid "
                                f"{fresh['metadata'].get('uid')}, wanted {meta['uid']}")
        if fresh["metadata"].get("deletionTimestamp"):
            return RuntimeError(f"{ns}/{name} has just been deleted at {fresh['metadata']['deletionTimestamp']}")
        return None

    async def _adopt(self, rs: dict, pod: dict) -> dict | Exception | None:
        try:
            return await adopt(self.client, PODS, pod, rs)
        except ApiError as e:
            return None if e.code == 404 else e

    async def _release(self, rs: dict, pod: dict) -> Exception | None:
        try:
            await release(self.client, PODS, pod, rs)
        except ApiError as e:
            # Gone, or no longer the pod we looked at: nothing left to release.
            if e.code not in (404, 409, 422):
                return e
        return None

    async def _manage(self, key: str, rs: dict, pods: list[dict]) -> Exception | None:
        """Create or delete the difference (manageReplicas); returns the first failure."""
        spec = rs.get("spec") or {}
        replicas = spec.get("replicas") if spec.get("replicas") is not None else 1
        ns = rs["metadata"].get("namespace") or ""
        diff = len(pods) - replicas
        if diff < 0:
            n = min(-diff, self.burst_replicas)
            # Set, not add: we only get here once earlier expectations were met or expired.
            self.expectations.forget(key)
            self.expectations.expect_creations(key, n)
            body = pod_from_template(spec.get("template") or {}, rs, f"{rs['metadata']['name']}-")

            async def create() -> None:
                try:
                    await self.pod_control.create_pod(ns, body, rs)
                except ApiError as e:
                    # A terminating namespace refuses every create: nothing to retry.
                    if not has_status_cause(e, NAMESPACE_TERMINATING_CAUSE):
                        raise
            done, err = await slow_start_batch(n, 1, create, self.create_concurrency)
            if done < n:
                # Neither the failed nor the skipped creates will ever be observed.
                self.expectations.lower_creations(key, n - done)
            return err
        if diff > 0:
            n = min(diff, self.burst_replicas)
            memo = self._ranks_memo(key)
            on_node = self.placement.on_nodes(self._related_uids(rs))
            victims = pods_to_delete(pods, None, n, self.clock.now(), memo, on_node)
            self.expectations.forget(key)
            self.expectations.expect_deletions(key, [object_key(p) for p in victims])

            async def delete(pod: dict) -> Exception | None:
                try:
                    await self.pod_control.delete_pod(ns, pod["metadata"]["name"], rs, current=pod)
                    return None
                except ApiError as e:
                    # The informer will not observe a delete that did not happen.
                    self.expectations.deletion_observed(key, object_key(pod))
                    return None if e.code == 404 else e
            errors = [e for e in await bounded_map(delete, victims, self.create_concurrency) if e is not None]
            return errors[0] if errors else None
        return None

    def _ranks_memo(self, key: str) -> ObjectMemo:
        """The ranking memo of a ReplicaSet being scaled down, kept RANK_MEMO_SECONDS after its
        last use.

        A Deployment's rollout scales its old ReplicaSet down in steps a few seconds apart:
        kept between them, the memo spares ranking thousands of pods from scratch at each step.
        Dropped afterwards, it holds no pod objects (deleted, or replaced since) for long.
        """
        loop = asyncio.get_running_loop()
        kept = self._ranks.get(key)
        memo = kept[0] if kept is not None else ObjectMemo()
        used = loop.time()
        self._ranks[key] = (memo, used)

        def expire() -> None:
            if self._ranks.get(key) == (memo, used):   # not used again since
                del self._ranks[key]
        loop.call_later(RANK_MEMO_SECONDS, expire)
        return memo

    def _related_uids(self, rs: dict) -> list[str]:
        """Every ReplicaSet sharing this one's controller, whose pods are related
        (getIndirectlyRelatedPods); an object has one controller: their pods never overlap."""
        owner = controller_ref(rs)
        if owner is None:
            return [rs["metadata"]["uid"]]
        ns = rs["metadata"].get("namespace") or ""
        return [other["metadata"]["uid"] for other in self.owners.in_namespace(ns)
                if (controller_ref(other) or {}).get("uid") == owner.get("uid")]

    async def _update_status(self, rs: dict, status: dict) -> dict:
        """Write the status if it changed, retrying once on a conflict (updateReplicaSetStatus)."""
        if status_unchanged(rs, status):
            return rs
        meta = rs["metadata"]
        # The generation acted on, even when retrying against a newer copy.
        status = dict(status, observedGeneration=meta.get("generation") or 0)
        current = rs
        for attempt in range(2):
            body = dict(current, status=status)
            try:
                return await self.client.update_status(RS, meta.get("namespace"), body)
            except ApiError as e:
                if e.code == 404:
                    return rs   # deleted meanwhile: its DELETED event ends the story
                if attempt == 1:
                    raise
            current = await self.client.get(RS, meta.get("namespace"), meta["name"])
            if current["metadata"].get("uid") != meta["uid"]:
                return current
        return current

