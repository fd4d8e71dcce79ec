"""One pass of the StatefulSet control loop over a set and its pods (stateful_set_control.go).

Why it exists: this is where a StatefulSet's guarantees are kept, in upstream's order:

1. revisions: the set's template is recorded as a ControllerRevision (a new one, or an earlier one
   renumbered when the template went back to it); `status.currentRevision` names the revision the
   old pods run, `updateRevision` the one new pods get;
2. pods are sorted by ordinal into replicas (in `[start, start+replicas)`) and condemned (the
   rest); a missing replica is made at the current revision below the partition and at the
   update revision above it;
3. replicas are processed in ordinal order: failed or succeeded pods are deleted (and made again
   on a later pass), missing ones created after their claims, pending ones get missing claims,
   and drifted identity/storage/claim references are repaired. With OrderedReady ("monotonic")
   the pass stops at the first pod it created, or that is terminating, not Running and Ready, or
   not yet available; with Parallel every replica is handled in slow-start batches;
4. condemned pods are deleted from the highest ordinal, one at a time waiting for each to go,
   and only when every replica is healthy (OrderedReady), or all at once (Parallel);
5. RollingUpdate then deletes, from the highest ordinal down to the partition, pods not at the
   update revision, at most `maxUnavailable` unavailable at a time (the deleted pods come back at
   the update revision on a later pass); OnDelete leaves that to the user;
6. the status is written if it changed, and history is truncated to revisionHistoryLimit.
"""

from __future__ import annotations

import copy
import itertools
import logging

from ...api.errors import ApiError
from ...clock import Clock
from .. import history as hist
from ..podcontrol import slow_start_batch
from . import utils
from .podcontrol import StatefulPodControl
from .status import StatusUpdater

log = logging.getLogger("pocketkube.controllers.statefulset")

MAX_BATCH = 500   # in-flight requests in Parallel mode (upstream's MaxBatchSize)


def compute_status(pods: list[dict], min_ready: int, now: float, current: str, update: str) -> dict:
    """Counts for the status (computeReplicaStatus over every list given)."""
    replicas = ready = available = current_n = updated = 0
    for pod in pods:
        created = utils.is_created(pod)
        if created:
            replicas += 1
        if utils.is_running_and_ready(pod):
            ready += 1
            if utils.is_running_and_available(pod, min_ready, now):
                available += 1
        if created and not utils.is_terminating(pod):
            rev = utils.pod_revision(pod)
            if rev == current:
                current_n += 1
            if rev == update:
                updated += 1
    return {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available,
            "currentReplicas": current_n, "updatedReplicas": updated}


def complete_rolling_update(sts: dict, status: dict) -> None:
    """Once every replica is updated and ready, the update revision becomes the current one."""
    spec = sts.get("spec") or {}
    n = utils.replicas_of(sts)
    if ((spec.get("updateStrategy") or {}).get("type") == "RollingUpdate"
            and status["updatedReplicas"] == n and status["readyReplicas"] == n and status["replicas"] == n):
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = status["updateRevision"]


_COMPARED = ("replicas", "currentReplicas", "readyReplicas", "updatedReplicas", "currentRevision",
             "availableReplicas", "updateRevision", "collisionCount")


def inconsistent_status(sts: dict, status: dict) -> bool:
    old = sts.get("status") or {}
    if int(status.get("observedGeneration") or 0) > int(old.get("observedGeneration") or 0):
        return True
    return any((old.get(k) or 0) != (status.get(k) or 0) for k in _COMPARED)


async def run_for_all(n: int, fn, monotonic: bool) -> tuple[bool, Exception | None]:
    """runForAll: in order, stopping at the first pod that blocks (monotonic); otherwise in
    slow-start batches (1, 2, 4, ... up to 500 in flight), stopping at a batch with a failure."""
    if monotonic:
        for i in range(n):
            stop, err = await fn(i)
            if stop or err is not None:
                return True, err
        return False, None
    if n == 0:
        return False, None
    indexes = itertools.count()

    async def one() -> None:
        _, err = await fn(next(indexes))
        if err is not None:
            raise err
    _, err = await slow_start_batch(n, 1, one, MAX_BATCH)
    return err is not None, err


class StatefulSetControl:
    def __init__(self, pod_control: StatefulPodControl, status_updater: StatusUpdater,
                 history: hist.History, clock: Clock):
        self.pod_control = pod_control
        self.status_updater = status_updater
        self.history = history
        self.clock = clock

    async def update(self, sts: dict, pods: list[dict], revisions: list[dict]) -> dict | None:
        """UpdateStatefulSet: one pass; returns the status it computed. History is truncated
        whatever happened, then the first error (if any) is raised."""
        sts = copy.deepcopy(sts)
        revisions = hist.sort_revisions(revisions)
        current = update = status = None
        err: Exception | None = None
        try:
            current, update, cc = await self.revisions(sts, revisions)
            status, err = await self.update_pods(sts, current, update, cc, pods)
            if status is not None:
                try:
                    await self.update_status(sts, status)
                except ApiError as e:
                    err = err or e
        except Exception as e:  # noqa: BLE001 - raised below, after the history is kept in bounds
            err = e
        live = {r["metadata"]["name"] for r in (current, update) if r is not None}
        live.update(utils.pod_revision(p) for p in pods)
        try:
            await self.history.truncate(revisions, live, (sts.get("spec") or {}).get("revisionHistoryLimit"))
        except ApiError as e:
            err = err or e
        if err is not None:
            raise err
        return status

    async def revisions(self, sts: dict, revisions: list[dict]) -> tuple[dict, dict, int]:
        """getStatefulSetRevisions: (current, update, collisionCount). May create a revision, or
        renumber an earlier one the template has gone back to (a rollback)."""
        cc = int((sts.get("status") or {}).get("collisionCount") or 0)
        template = (sts.get("spec") or {}).get("template") or {}
        candidate = hist.new_revision(sts, (template.get("metadata") or {}).get("labels"),
                                      hist.template_patch(template), hist.next_revision(revisions), cc,
                                      sts["metadata"].get("annotations"))
        equal = hist.find_equal_revisions(revisions, candidate)
        if equal and hist.equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            update = await self.history.update_revision(equal[-1], candidate["revision"])
        else:
            update, cc = await self.history.create(sts, candidate, cc)
        want = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if r["metadata"]["name"] == want), None) or update
        return current, update, cc

    async def update_pods(self, sts: dict, current_rev: dict, update_rev: dict, cc: int,
                          pods: list[dict]) -> tuple[dict, Exception | None]:
        """updateStatefulSet: create, repair and delete pods; returns (status, first error)."""
        pc = self.pod_control
        current_set = utils.apply_revision(sts, current_rev)
        update_set = utils.apply_revision(sts, update_rev)
        cur_name, upd_name = current_rev["metadata"]["name"], update_rev["metadata"]["name"]
        spec = sts.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        status = {"observedGeneration": sts["metadata"].get("generation") or 0,
                  "currentRevision": cur_name, "updateRevision": upd_name, "collisionCount": cc,
                  **compute_status(pods, min_ready, now, cur_name, upd_name)}

        start, end = utils.start_ordinal(sts), utils.end_ordinal(sts)
        replicas: list[dict | None] = [None] * utils.replicas_of(sts)
        condemned: list[dict] = []
        for pod in pods:
            o = utils.ordinal_of(pod)
            if start <= o <= end:
                replicas[o - start] = pod
            elif o >= 0:
                condemned.append(pod)
        for o in range(start, end + 1):
            if replicas[o - start] is None:
                replicas[o - start] = utils.new_versioned_pod(current_set, update_set, cur_name, upd_name, o)
        condemned.sort(key=utils.ordinal_of, reverse=True)

        first_unhealthy = None
        for pod in replicas:
            if utils.is_unavailable(pod, min_ready, now):
                first_unhealthy = pod
                break
        if first_unhealthy is None:
            for pod in reversed(condemned):
                if utils.is_unavailable(pod, min_ready, now):
                    first_unhealthy = pod
                    break

        def final(err: Exception | None) -> tuple[dict, Exception | None]:
            status.update(compute_status(replicas + condemned, min_ready, now, cur_name, upd_name))
            return status, err

        if sts["metadata"].get("deletionTimestamp"):
            return status, None
        monotonic = not utils.allows_burst(sts)

        async def process_replica(i: int) -> tuple[bool, Exception | None]:
            pod = replicas[i]
            try:
                if utils.phase(pod) in ("Failed", "Succeeded"):
                    # Evicted or otherwise finished: delete it; it is made again once it is gone.
                    if not utils.is_terminating(pod):
                        await pc.delete_pod(sts, pod)
                    return True, None
                if not utils.is_created(pod):
                    if pc.pod_claim_is_stale(sts, pod):
                        return True, None
                    await pc.create_pod(sts, pod)
                    # Parallel: the rest of this replica's checks wait for the pod to be seen.
                    return monotonic, None
                if utils.phase(pod) == "Pending":
                    await pc.create_missing_claims(sts, pod)
                if monotonic and (utils.is_terminating(pod) or not utils.is_running_and_ready(pod)
                                  or not utils.is_running_and_available(pod, min_ready, now)):
                    return True, None
                if utils.identity_matches(sts, pod) and utils.storage_matches(sts, pod) \
                        and pc.claims_match_retention(update_set, pod):
                    return False, None
                await pc.update_pod(update_set, pod)
                return False, None
            except Exception as e:  # noqa: BLE001 - handed to the caller as upstream's error
                return True, e

        stop, err = await run_for_all(len(replicas), process_replica, monotonic)
        if stop or err is not None:
            return final(err)

        async def fix_claims(i: int) -> tuple[bool, Exception | None]:
            try:
                if not pc.claims_match_retention(update_set, condemned[i]):
                    await pc.update_claims_for_retention(update_set, condemned[i])
                return False, None
            except Exception as e:  # noqa: BLE001
                return True, e

        stop, err = await run_for_all(len(condemned), fix_claims, monotonic)
        if stop or err is not None:
            return final(err)

        async def process_condemned(i: int) -> tuple[bool, Exception | None]:
            pod = condemned[i]
            if utils.is_terminating(pod):
                return monotonic, None   # OrderedReady waits for it to be gone
            if monotonic and pod is not first_unhealthy and (
                    not utils.is_running_and_ready(pod) or not utils.is_running_and_available(pod, min_ready, now)):
                return True, None
            try:
                await pc.delete_pod(sts, pod)
            except Exception as e:  # noqa: BLE001
                return True, e
            return True, None

        stop, err = await run_for_all(len(condemned), process_condemned, monotonic)
        if stop or err is not None:
            return final(err)
        final(None)

        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return status, None
        return await self.rolling_update(sts, replicas, upd_name, status, min_ready, now)

    async def rolling_update(self, sts: dict, replicas: list[dict], upd_name: str, status: dict,
                             min_ready: int, now: float) -> tuple[dict, Exception | None]:
        """updateStatefulSetAfterInvariantEstablished: delete outdated pods from the top down to
        the partition, keeping at most maxUnavailable replicas unavailable."""
        ru = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
        update_min = int(ru.get("partition") or 0)
        try:
            max_unavailable = utils.max_unavailable(sts)
        except ValueError as e:
            return status, e
        unavailable = sum(1 for p in replicas if utils.is_unavailable(p, min_ready, now))
        if unavailable >= max_unavailable:
            return status, None
        budget = max_unavailable - unavailable
        deleted = 0
        for target in range(len(replicas) - 1, update_min - 1, -1):
            if deleted >= budget:
                break
            pod = replicas[target]
            if utils.pod_revision(pod) != upd_name and not utils.is_terminating(pod):
                log.debug("statefulset %s: deleting %s for update", sts["metadata"]["name"], pod["metadata"]["name"])
                try:
                    await self.pod_control.delete_pod(sts, pod)
                except ApiError as e:
                    if e.code != 404:
                        return status, e
                deleted += 1
                status["currentReplicas"] = max(0, status["currentReplicas"] - 1)
        return status, None

    async def update_status(self, sts: dict, status: dict) -> None:
        """updateStatefulSetStatus: finish a completed rolling update, write only on a change."""
        complete_rolling_update(sts, status)
        if not inconsistent_status(sts, status):
            return
        await self.status_updater.update(sts, status)

    async def adopt_orphan_revisions(self, sts: dict, revisions: list[dict]) -> None:
        for rev in revisions:
            await self.history.adopt(sts, rev)
