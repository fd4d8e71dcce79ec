"""The Job controller: run pods until enough of them succeed, and say how it went.

Why it exists: a Job is work that ends. This is kube-controller-manager's Job controller
(`pkg/controller/job/job_controller.go`), in its order. A sync:

1. reads the Job and its pods from the informer caches; claims matching orphans (adding the
   tracking finalizer) and releases pods that no longer match;
2. counts the pods that finished since the status was written (a pod counts once: only while
   it still carries the `batch.kubernetes.io/job-tracking` finalizer and is not already in
   `status.uncountedTerminatedPods`);
3. decides whether the Job is over: a SuccessCriteriaMet or FailureTarget condition written
   earlier, a podFailurePolicy FailJob rule, more failures than backoffLimit (for OnFailure
   pods, container restarts count too), activeDeadlineSeconds passed, too many failed indexes,
   or a successPolicy met;
4. if it is over, deletes the remaining active pods; otherwise creates or deletes pods toward
   min(parallelism, completions - succeeded), after the failure back-off, or deletes all of
   them while the Job is suspended (condition Suspended);
5. writes the status in the two steps that make counting safe: finished pods' UIDs into
   `uncountedTerminatedPods`, then the finalizers off those pods, then the UIDs moved into
   `succeeded`/`failed` (or `completedIndexes`/`failedIndexes`). The terminal condition comes
   as upstream writes it today: FailureTarget or SuccessCriteriaMet first, then, once no pod is
   left terminating and nothing is uncounted, Failed or Complete with the events
   "Completed" / "DeadlineExceeded" / "BackoffLimitExceeded" / ...

Pods whose Job is gone (or finished) but which still carry the finalizer are cleaned by a
second, small queue of orphan pods. All time (start, deadline, back-off) is the injected clock.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time

from ...api.errors import ApiError
from ...api.selectors import LabelSelector
from ...client import STRATEGIC
from ...client.informer import object_key
from ...client.workqueue import WorkQueue
from ...clock import parse_rfc3339
from ..base import (
    Controller,
    Expectations,
    OwnedIndex,
    controlled_elsewhere,
    Owners,
    controller_ref,
    new_controller_ref,
    pod_from_template,
    split_key,
)
from ...client.bounded import bounded_map
from ..podcontrol import (
    NAMESPACE_TERMINATING_CAUSE,
    PodControl,
    has_status_cause,
    slow_start_batch,
)
from ..ranking import (
    is_pod_active,
    is_pod_ready,
    is_pod_terminating,
    rank_pods_for_deletion,
)
from . import indexed_job_utils as ix
from .backoff_utils import (
    DEFAULT_BACKOFF,
    MAX_BACKOFF,
    BackoffStore,
    finished_time,
    remaining_for_failures,
)
from .pod_failure_policy import FAIL_INDEX, match_pod_failure_policy
from .success_policy import REASON as SUCCESS_POLICY_REASON
from .success_policy import match_success_policy
from .tracking_utils import (
    JOB_TRACKING_FINALIZER,
    UIDTrackingExpectations,
    has_tracking_finalizer,
    remove_finalizer_patch,
)
from .util import is_job_finished

log = logging.getLogger("pocketkube.controllers.job")

JOBS = "jobs.batch"
PODS = "pods"
MAX_UNCOUNTED_PODS = 500          # keeps status.uncountedTerminatedPods under ~20 KB
MAX_POD_CREATE_DELETE_PER_SYNC = 500
JOB_CONTROLLER_NAME = "kubernetes.io/job-controller"

# Conditions, reasons and messages exactly as batch/v1 and the upstream controller spell them.
COMPLETE, FAILED = "Complete", "Failed"
SUCCESS_CRITERIA_MET, FAILURE_TARGET, SUSPENDED = "SuccessCriteriaMet", "FailureTarget", "Suspended"
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
MAX_FAILED_INDEXES_EXCEEDED = ("MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes")
FAILED_INDEXES = ("FailedIndexes", "Job has failed indexes")
POD_FAILURE_POLICY_REASON = "PodFailurePolicy"
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")


def _spec(job: dict) -> dict:
    return job.get("spec") or {}


def _find_condition(conditions: list, ctype: str) -> dict | None:
    for c in conditions or ():
        if c.get("type") == ctype:
            return c
    return None


def is_suspended(job: dict) -> bool:
    return _spec(job).get("suspend") is True


def only_replace_failed_pods(job: dict) -> bool:
    """podReplacementPolicy Failed (implied by a podFailurePolicy): terminating pods are not replaced yet."""
    spec = _spec(job)
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: dict, job: dict) -> bool:
    """Failed, or (unless only failed pods are replaced) deleted before it could succeed."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return bool(pod["metadata"].get("deletionTimestamp")) and phase != "Succeeded"


def past_backoff_limit_on_failure(job: dict, pods: list[dict]) -> bool:
    """With restartPolicy OnFailure the kubelet restarts in place: restarts count as failures."""
    spec = _spec(job)
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for p in pods:
        st = p.get("status") or {}
        if st.get("phase") in ("Running", "Pending"):
            for key in ("initContainerStatuses", "containerStatuses"):
                restarts += sum(cs.get("restartCount") or 0 for cs in st.get(key) or ())
    limit = spec.get("backoffLimit")
    limit = 6 if limit is None else limit
    return restarts > 0 if limit == 0 else restarts >= limit


class SyncContext:
    """What one sync learned about a Job and its pods (syncJobCtx)."""

    def __init__(self, job: dict, pods: list[dict], expected_rm: set[str]):
        self.job = job
        self.pods = pods
        self.active_pods = [p for p in pods if is_pod_active(p)]
        self.ready = sum(1 for p in self.active_pods if is_pod_ready(p))
        self.terminating = sum(1 for p in pods if is_pod_terminating(p))
        unc = job["status"]["uncountedTerminatedPods"]
        self.uncounted_succeeded: set[str] = set(unc.get("succeeded") or ())
        self.uncounted_failed: set[str] = set(unc.get("failed") or ())
        self.expected_rm = expected_rm
        self.finished: dict | None = None
        self.succeeded = 0
        self.failed = 0
        self.prev_succeeded_indexes: ix.Intervals = []
        self.succeeded_indexes: ix.Intervals = []
        self.failed_indexes: ix.Intervals | None = None
        self.delayed_deletion: dict[int, dict] = {}
        self.backoff = None

    def valid_pods(self, uncounted: set[str], pred) -> list[dict]:
        """Pods not yet counted (finalizer on, not uncounted, valid index) for which `pred` holds."""
        job = self.job
        indexed = ix.is_indexed(job)
        completions = _spec(job).get("completions") or 0
        out = []
        for p in self.pods:
            uid = p["metadata"]["uid"]
            if not has_tracking_finalizer(p) or uid in uncounted or uid in self.expected_rm:
                continue
            if indexed:
                i = ix.completion_index(p)
                if i == ix.UNKNOWN or i >= completions:
                    continue
            if pred(p):
                out.append(p)
        return out


class JobController(Controller):
    name = "job"
    workers = 5   # --concurrent-job-syncs

    def setup(self) -> None:
        self.expectations = Expectations(self.clock)
        self.finalizer_expectations = UIDTrackingExpectations()
        self.pod_control = PodControl(self.client, self.recorder, self.clock)
        self.backoff_store = BackoffStore()
        self.jobs = self.informers.get(JOBS)
        self.pods = self.informers.get(PODS)
        self.orphan_queue = WorkQueue("job_orphan_pod", self.clock)
        self.owners = Owners(self.jobs, "Job")
        # Pods by the uid of their controller, and orphans by namespace: a sync looks only at
        # the pods it could own.
        self.pod_index = OwnedIndex()
        self._cost: dict[str, float] = {}
        self._pending: set[str] = set()
        self._timers: dict[str, float] = {}
        self.add_queue(self.orphan_queue, self.sync_orphan_pod, 1)
        self.jobs.add_handler(self._on_job)
        self.pods.add_handler(self._on_pod)

    def selector(self, job: dict) -> LabelSelector | None:
        return self.owners.selector(job)

    # ---- event handlers -------------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: dict | None) -> dict | None:
        return self.owners.resolve(namespace, ref)

    def _matching_jobs(self, pod: dict) -> list[str]:
        return [object_key(job) for job in self.owners.matching(pod)]

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        # Another kind's pod still matters when it carries our tracking finalizer (an orphan's).
        key = object_key(new or old)
        if controlled_elsewhere(key, old, new, "Job", self.pod_index) and \
                not any(o is not None and has_tracking_finalizer(o) for o in (old, new)):
            return
        self.pod_index.update(key, new)
        if kind == "DELETED":
            self._pod_deleted(old, final=True)
            return
        if kind == "ADDED":
            self._pod_added(new)
        else:
            self._pod_updated(old, new)

    def _pod_added(self, pod: dict) -> None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            self._pod_deleted(pod, final=False)
            return
        ref = controller_ref(pod)
        if ref is not None:
            job = self._resolve(meta.get("namespace") or "", ref)
            if job is None:
                return
            key = object_key(job)
            self.expectations.creation_observed(key)
            self.enqueue_batched(key)
            return
        if has_tracking_finalizer(pod):
            self.orphan_queue.add(object_key(pod))
        for key in self._matching_jobs(pod):
            self.enqueue_batched(key)

    def _pod_updated(self, old: dict, cur: dict) -> None:
        ometa, cmeta = old["metadata"], cur["metadata"]
        if ometa.get("resourceVersion") == cmeta.get("resourceVersion"):
            return
        if cmeta.get("deletionTimestamp"):
            self._pod_deleted(cur, final=False)
            return
        ns = cmeta.get("namespace") or ""
        finalizer_removed = not has_tracking_finalizer(cur)
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            job = self._resolve(ns, old_ref)
            if job is not None:
                if finalizer_removed:
                    self.finalizer_expectations.observed(object_key(job), cmeta["uid"])
                self.enqueue_batched(object_key(job))
        if cur_ref is not None:
            job = self._resolve(ns, cur_ref)
            if job is None:
                return
            if finalizer_removed:
                self.finalizer_expectations.observed(object_key(job), cmeta["uid"])
            self.enqueue_batched(object_key(job))
            return
        if has_tracking_finalizer(cur):
            self.orphan_queue.add(object_key(cur))
        if ref_changed or ometa.get("labels") != cmeta.get("labels"):
            for key in self._matching_jobs(cur):
                self.enqueue_batched(key)

    def _pod_deleted(self, pod: dict, final: bool) -> None:
        meta = pod["metadata"]
        ref = controller_ref(pod)
        has_fin = has_tracking_finalizer(pod)
        if ref is None:
            if has_fin and not final:
                self.orphan_queue.add(object_key(pod))
            return
        job = self._resolve(meta.get("namespace") or "", ref)
        if job is None or is_job_finished(job):
            if has_fin and not final:
                self.orphan_queue.add(object_key(pod))
            return
        key = object_key(job)
        self.expectations.deletion_observed(key, object_key(pod))
        if final or not has_fin:
            self.finalizer_expectations.observed(key, meta["uid"])
        self.enqueue_batched(key)

    def _on_job(self, kind: str, old: dict | None, new: dict | None) -> None:
        if kind == "DELETED":
            key = object_key(old)
            self._cost.pop(key, None)
            self._timers.pop(key, None)
            self.queue.add(key)
            self._cleanup_pod_finalizers(old)
            return
        key = object_key(new)
        if kind == "ADDED" or (old or {}).get("metadata", {}).get("generation") != new["metadata"].get("generation"):
            self.queue.add(key)
        else:
            self.enqueue_batched(key)
        if kind == "MODIFIED" and is_job_finished(new):
            self._cleanup_pod_finalizers(new)
        start = parse_rfc3339((new.get("status") or {}).get("startTime"))
        ads = _spec(new).get("activeDeadlineSeconds")
        if old is not None and start is not None and ads is not None and _spec(old).get("activeDeadlineSeconds") != ads:
            self.requeue_after(key, ads - (self.clock.now() - start))

    def requeue_after(self, key: str, delay: float) -> None:
        """Sync again after `delay` seconds of the injected clock; one timer per Job and due time
        (a delaying queue keeps only the earliest add of a key, so every sync may ask again)."""
        now = self.clock.now()
        due = now + delay
        pending = self._timers.get(key)
        if pending is not None and now < pending <= due + 0.001:
            return
        self._timers[key] = due
        self.queue.add_after(key, delay)

    def enqueue_batched(self, key: str) -> None:
        """Sync for a pod event or a status write, gathering a burst of them into one sync.

        Upstream waits a fixed second; here the wait is twice what the last sync of this Job
        cost (nothing for a small Job), on the event loop's own timer, so a Job with hundreds
        of pods changing at once is synced a few times, not hundreds, and tests never wait.
        """
        delay = min(0.5, 2 * self._cost.get(key, 0.0))
        if delay < 0.001:
            self.queue.add(key)
            return
        if key in self._pending:
            return
        self._pending.add(key)

        def fire() -> None:
            self._pending.discard(key)
            self.queue.add(key)
        asyncio.get_running_loop().call_later(delay, fire)

    def _cleanup_pod_finalizers(self, job: dict) -> None:
        """A finished or deleted Job leaves its pods' finalizers to the orphan queue."""
        for pod in self.pod_index.owned(job["metadata"].get("uid")):
            if has_tracking_finalizer(pod):
                self.orphan_queue.add(object_key(pod))

    # ---- orphan pods ----------------------------------------------------------------------------

    async def sync_orphan_pod(self, key: str) -> None:
        """Remove the tracking finalizer from a pod no unfinished Job of ours controls."""
        pod = self.pods.get(key)
        if pod is None or not has_tracking_finalizer(pod):
            return
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return
            job = self._resolve(pod["metadata"].get("namespace") or "", ref)
            if job is not None:
                if _managed_elsewhere(job):
                    return
                if not is_job_finished(job):
                    return   # adopted meanwhile: its Job counts it
        ns, name = split_key(key)
        try:
            await self.client.patch(PODS, ns, name, remove_finalizer_patch(), STRATEGIC)
        except ApiError as e:
            if e.code != 404:
                raise

    # ---- sync -----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        shared = self.jobs.get(key)
        if shared is None:
            self.expectations.forget(key)
            self.finalizer_expectations.forget(key)
            self.backoff_store.remove(key)
            return
        if _managed_elsewhere(shared):
            return
        if is_job_finished(shared):
            self.backoff_store.remove(key)
            return
        mode = _spec(shared).get("completionMode")
        if mode not in (None, "NonIndexed", "Indexed"):
            self.recorder.event(shared, "Warning", "UnknownCompletionMode", "Sync",
                                "Skipped Job sync because completion mode is unknown")
            return
        if self.selector(shared) is None:
            return   # an invalid selector is not retried: only a new spec can fix it
        started = time.perf_counter()
        job = copy.deepcopy(shared)
        spec = job.setdefault("spec", {})
        status = job.setdefault("status", {})
        status["uncountedTerminatedPods"] = dict(status.get("uncountedTerminatedPods") or {})
        satisfied = self.expectations.satisfied(key)

        pods = await self._pods_for_job(job)
        ctx = SyncContext(job, pods, self.finalizer_expectations.expected(key))
        active = len(ctx.active_pods)
        new_succeeded = ctx.valid_pods(ctx.uncounted_succeeded,
                                       lambda p: (p.get("status") or {}).get("phase") == "Succeeded")
        new_failed = ctx.valid_pods(ctx.uncounted_failed, lambda p: is_pod_failed(p, job))
        ctx.succeeded = (status.get("succeeded") or 0) + len(new_succeeded) + len(ctx.uncounted_succeeded)
        ctx.failed = (status.get("failed") or 0) + self._non_ignored(job, new_failed) + len(ctx.uncounted_failed)
        now = self.clock.now()
        if not status.get("startTime") and not is_suspended(job):
            status["startTime"] = self.clock.rfc3339(now)
        ctx.backoff = self.backoff_store.new_record(key, new_succeeded, new_failed)

        backoff_limit = spec.get("backoffLimit")
        backoff_limit = 6 if backoff_limit is None else backoff_limit
        conditions = status.get("conditions") or []
        ctx.finished = _true_condition(conditions, SUCCESS_CRITERIA_MET)
        if ctx.finished is None:
            target = _true_condition(conditions, FAILURE_TARGET)
            if target is not None:
                ctx.finished = self._condition(FAILED, target.get("reason", ""), target.get("message", ""))
            else:
                msg = _fail_job_message(job, pods)
                if msg is not None:
                    ctx.finished = self._condition(FAILURE_TARGET, POD_FAILURE_POLICY_REASON, msg)
        if ctx.finished is None:
            if ctx.failed > backoff_limit or past_backoff_limit_on_failure(job, pods):
                ctx.finished = self._condition(FAILURE_TARGET, *BACKOFF_LIMIT_EXCEEDED)
            elif self._past_active_deadline(job):
                ctx.finished = self._condition(FAILURE_TARGET, *DEADLINE_EXCEEDED)
            elif spec.get("activeDeadlineSeconds") is not None and not is_suspended(job):
                start = parse_rfc3339(status.get("startTime")) or now
                self.requeue_after(key, spec["activeDeadlineSeconds"] - (now - start))

        if ix.is_indexed(job):
            completions = spec.get("completions") or 0
            ctx.prev_succeeded_indexes, ctx.succeeded_indexes = self._succeeded_indexes(job, pods)
            ctx.succeeded = ix.total(ctx.succeeded_indexes)
            if ix.has_backoff_limit_per_index(job):
                ctx.failed_indexes = self._failed_indexes(job, pods)
                if ctx.finished is None:
                    mfi = spec.get("maxFailedIndexes")
                    nfailed = ix.total(ctx.failed_indexes)
                    if mfi is not None and nfailed > mfi:
                        ctx.finished = self._condition(FAILURE_TARGET, *MAX_FAILED_INDEXES_EXCEEDED)
                    elif nfailed > 0 and nfailed + ix.total(ctx.succeeded_indexes) >= completions:
                        ctx.finished = self._condition(FAILURE_TARGET, *FAILED_INDEXES)
                ctx.delayed_deletion = self._pods_with_delayed_deletion(ctx)
            if ctx.finished is None:
                msg = match_success_policy(spec.get("successPolicy"), completions, ctx.succeeded_indexes)
                if msg is not None:
                    ctx.finished = self._condition(SUCCESS_CRITERIA_MET, SUCCESS_POLICY_REASON, msg)

        suspend_changed = False
        manage_error: Exception | None = None
        if ctx.finished is not None:
            deleted_ready, deleted, manage_error = await self._delete_pods(job, ctx.active_pods)
            if deleted != active or not satisfied:
                # Pods may remain (or be unseen yet): the Job cannot be declared finished.
                ctx.finished = None
            active -= deleted
            ctx.terminating += deleted
            ctx.ready -= deleted_ready
        else:
            manage_called = False
            if satisfied and not job["metadata"].get("deletionTimestamp"):
                active, manage_error = await self._manage_job(key, job, ctx)
                manage_called = True
            completions = spec.get("completions")
            if completions is None:
                complete = ctx.succeeded > 0 and active == 0
            else:
                complete = ctx.succeeded >= completions and active == 0
            if complete:
                ctx.finished = self._condition(SUCCESS_CRITERIA_MET, *COMPLETIONS_REACHED)
            elif manage_called:
                if is_suspended(job):
                    changed = self._ensure_condition(status, SUSPENDED, "True", "JobSuspended", "Job suspended")
                    if changed:
                        suspend_changed = True
                        self.recorder.event(shared, "Normal", "Suspended", "Suspend", "Job suspended")
                else:
                    changed = self._ensure_condition(status, SUSPENDED, "False", "JobResumed", "Job resumed")
                    if changed:
                        suspend_changed = True
                        self.recorder.event(shared, "Normal", "Resumed", "Resume", "Job resumed")
                        # activeDeadlineSeconds counts time continuously active: restart it.
                        status["startTime"] = self.clock.rfc3339()

        needs_update = (suspend_changed or active != (status.get("active") or 0)
                        or ctx.ready != status.get("ready") or ctx.terminating != status.get("terminating"))
        status["active"] = active
        status["ready"] = ctx.ready
        status["terminating"] = ctx.terminating
        try:
            await self._track_status_and_remove_finalizers(key, ctx, needs_update)
        finally:
            self._cost[key] = time.perf_counter() - started
        if manage_error is not None:
            raise manage_error

    # ---- claim ----------------------------------------------------------------------------------

    async def _pods_for_job(self, job: dict) -> list[dict]:
        """Controlled pods that match, plus matching orphans adopted (with the finalizer)."""
        meta = job["metadata"]
        ns = meta.get("namespace") or ""
        sel = self.selector(job)
        owned, orphans = self.pod_index.of(job)
        deleting = bool(meta.get("deletionTimestamp"))
        out: list[dict] = []
        release: list[dict] = []
        for p in owned:
            if sel is not None and sel.matches(p["metadata"].get("labels") or {}):
                out.append(p)
            elif not deleting:
                release.append(p)
        candidates = []
        if not deleting and sel is not None and not sel.empty():
            candidates = [p for p in orphans if not p["metadata"].get("deletionTimestamp")
                          and sel.matches(p["metadata"].get("labels") or {})]
        errors: list[Exception] = []
        for p in release:
            try:
                await self.client.patch(PODS, ns, p["metadata"]["name"], {"metadata": {
                    "ownerReferences": [{"$patch": "delete", "uid": meta["uid"]}], "uid": p["metadata"]["uid"]}},
                    STRATEGIC)
            except ApiError as e:
                if e.code not in (404, 409, 422):
                    errors.append(e)
        if candidates:
            blocked = await self._can_adopt(job)
            if blocked is not None:
                errors.append(blocked)
            else:
                for p in candidates:
                    try:
                        adopted = await self.client.patch(PODS, ns, p["metadata"]["name"], {"metadata": {
                            "ownerReferences": [new_controller_ref(job)], "uid": p["metadata"]["uid"],
                            "finalizers": [JOB_TRACKING_FINALIZER]}}, STRATEGIC)
                        out.append(adopted)
                    except ApiError as e:
                        if e.code != 404:
                            errors.append(e)
        if errors:
            raise errors[0]
        return out

    async def _can_adopt(self, job: dict) -> Exception | None:
        meta = job["metadata"]
        try:
            fresh = await self.client.get(JOBS, meta.get("namespace"), meta["name"])
        except ApiError as e:
            return e
        if fresh["metadata"].get("uid") != meta["uid"]:
            return RuntimeError(f"original Job {meta.get('namespace')}/{meta['name']} is gone: got uid "
                                f"{fresh['metadata'].get('uid')}, wanted {meta['uid']}")
        if fresh["metadata"].get("deletionTimestamp"):
            return RuntimeError(f"{meta.get('namespace')}/{meta['name']} has just been deleted at "
                                f"{fresh['metadata']['deletionTimestamp']}")
        return None

    # ---- decisions --------------------------------------------------------------------------------

    def _condition(self, ctype: str, reason: str, message: str) -> dict:
        now = self.clock.rfc3339()
        return {"type": ctype, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
                "reason": reason, "message": message}

    def _ensure_condition(self, status: dict, ctype: str, value: str, reason: str, message: str) -> bool:
        """ensureJobConditionStatus: set or update; never add a condition that is False."""
        conditions = status.setdefault("conditions", [])
        cond = _find_condition(conditions, ctype)
        if cond is not None:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) != (value, reason, message):
                cond.clear()
                cond.update(self._condition(ctype, reason, message), status=value)
                return True
            return False
        if value != "False":
            conditions.append(dict(self._condition(ctype, reason, message), status=value))
            return True
        if not conditions:
            status.pop("conditions", None)
        return False

    def _past_active_deadline(self, job: dict) -> bool:
        ads = _spec(job).get("activeDeadlineSeconds")
        start = parse_rfc3339((job.get("status") or {}).get("startTime"))
        if ads is None or start is None or is_suspended(job):
            return False
        return self.clock.now() - start >= ads

    @staticmethod
    def _non_ignored(job: dict, failed: list[dict]) -> int:
        policy = _spec(job).get("podFailurePolicy")
        if policy is None:
            return len(failed)
        return sum(1 for p in failed if match_pod_failure_policy(policy, p).count_failed)

    def _succeeded_indexes(self, job: dict, pods: list[dict]) -> tuple[ix.Intervals, ix.Intervals]:
        completions = _spec(job).get("completions") or 0
        prev = ix.parse_intervals((job.get("status") or {}).get("completedIndexes"), completions)
        new = set()
        for p in pods:
            i = ix.completion_index(p)
            if ((p.get("status") or {}).get("phase") == "Succeeded" and i != ix.UNKNOWN and i < completions
                    and has_tracking_finalizer(p)):
                new.add(i)
        return prev, ix.with_indexes(prev, sorted(new))

    def _failed_indexes(self, job: dict, pods: list[dict]) -> ix.Intervals:
        completions = _spec(job).get("completions") or 0
        failed_text = (job.get("status") or {}).get("failedIndexes")
        prev = ix.parse_intervals(failed_text, completions) if failed_text is not None else []
        new = set()
        for p in pods:
            i = ix.completion_index(p)
            if i != ix.UNKNOWN and i < completions and has_tracking_finalizer(p) and self._index_failed(job, p):
                new.add(i)
        return ix.with_indexes(prev, sorted(new))

    @staticmethod
    def _index_failed(job: dict, pod: dict) -> bool:
        counted = False
        if is_pod_failed(pod, job):
            policy = _spec(job).get("podFailurePolicy")
            if policy is not None:
                m = match_pod_failure_policy(policy, pod)
                if m.action == FAIL_INDEX:
                    return True
                counted = m.count_failed
            else:
                counted = True
        return counted and ix.failure_count(pod) >= (_spec(job).get("backoffLimitPerIndex") or 0)

    def _pods_with_delayed_deletion(self, ctx: SyncContext) -> dict[int, dict]:
        """Per index, the last failed pod whose removal waits until its replacement exists, so the
        replacement can inherit its failure count."""
        job = ctx.job
        active = ix.indexes_of(ctx.active_pods)
        out: dict[int, dict] = {}
        for p in ctx.valid_pods(set(), lambda p: is_pod_failed(p, job)):
            i = ix.completion_index(p)
            if ix.has(ctx.succeeded_indexes, i) or ix.has(ctx.failed_indexes, i) or i in active:
                continue
            last = out.get(i)
            if last is None or (ix.absolute_failure_count(last) <= ix.absolute_failure_count(p)
                                and finished_time(p) >= finished_time(last)):
                out[i] = p
        return out

    # ---- acting -----------------------------------------------------------------------------------

    async def _delete_pods(self, job: dict, pods: list[dict], key: str | None = None) -> tuple[int, int, Exception | None]:
        """Delete pods; returns (ready ones deleted, deleted, first error).

        With `key` (pods the Job no longer wants: surplus, suspended) the finalizer goes first,
        as such pods are never counted, and the deletions are expected. Without it (the Job is
        over: deleteActivePods) the finalizers stay until the status step has counted them.
        """
        ns = job["metadata"].get("namespace") or ""
        errors: list[Exception] = []
        if key is not None:
            self.expectations.expect_deletions(key, [object_key(p) for p in pods])

        async def one(pod: dict) -> bool:
            name = pod["metadata"]["name"]
            try:
                if key is not None and has_tracking_finalizer(pod):
                    await self.client.patch(PODS, ns, name, remove_finalizer_patch(), STRATEGIC)
                await self.pod_control.delete_pod(ns, name, job)
            except ApiError as e:
                if key is not None:
                    self.expectations.deletion_observed(key, object_key(pod))
                if e.code != 404:
                    errors.append(e)
                    return False
            return True
        results = await asyncio.gather(*(one(p) for p in pods))
        deleted = sum(1 for r in results if r)
        deleted_ready = sum(1 for p, r in zip(pods, results) if r and is_pod_ready(p))
        return deleted_ready, deleted, errors[0] if errors else None

    def _pods_for_removal(self, job: dict, pods: list[dict], at_least: int) -> list[dict]:
        """Surplus active pods: repeated or invalid indexes first, then the least advanced."""
        def rank(group: list[dict]) -> list[dict]:
            return list(reversed(rank_pods_for_deletion(group, [])))
        if ix.is_indexed(job):
            rm, left = ix.duplicated_index_pods(pods, _spec(job).get("completions") or 0, rank)
        else:
            rm, left = [], list(pods)
        if len(rm) < at_least:
            rm.extend(rank_pods_for_deletion(left, [])[:at_least - len(rm)])
        return rm

    async def _manage_job(self, key: str, job: dict, ctx: SyncContext) -> tuple[int, Exception | None]:
        """Create or delete pods toward the wanted number of active pods (manageJob)."""
        spec = _spec(job)
        active = len(ctx.active_pods)
        parallelism = spec.get("parallelism")
        parallelism = 1 if parallelism is None else parallelism
        if is_suspended(job):
            victims = self._pods_for_removal(job, ctx.active_pods, active)
            ready, removed, err = await self._delete_pods(job, victims, key)
            ctx.terminating += removed
            ctx.ready -= ready
            return active - removed, err
        completions = spec.get("completions")
        if completions is None:
            want = active if ctx.succeeded > 0 else parallelism
        else:
            want = max(0, min(completions - ctx.succeeded, parallelism))
        victims = self._pods_for_removal(job, ctx.active_pods, max(0, active - want))
        victims = victims[:MAX_POD_CREATE_DELETE_PER_SYNC]
        if victims:
            # Deletions and creations never share a sync; deletions go first.
            ready, removed, err = await self._delete_pods(job, victims, key)
            ctx.terminating += removed
            ctx.ready -= ready
            return active - removed, err
        terminating = ctx.terminating if only_replace_failed_pods(job) else 0
        diff = want - terminating - active
        if diff <= 0:
            return active, None
        if not ix.has_backoff_limit_per_index(job):
            remaining = ctx.backoff.remaining(self.clock)
            if remaining > 0:
                self.requeue_after(key, max(1.0, remaining))
                return active, None
        diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)
        indexes: list[int] = []
        if ix.is_indexed(job):
            indexes = self._pending_indexes(ctx, diff, completions or 0)
            if ix.has_backoff_limit_per_index(job):
                indexes, remaining = self._indexes_ready_now(indexes, ctx.delayed_deletion)
                if remaining > 0:
                    self.requeue_after(key, max(1.0, remaining))
                    return active, None
            diff = len(indexes)
            if diff == 0:
                return active, None
        template = copy.deepcopy(spec.get("template") or {})
        if ix.is_indexed(job):
            ix.add_completion_index_env(template.setdefault("spec", {}))
        tmeta = template.setdefault("metadata", {})
        fins = list(tmeta.get("finalizers") or [])
        if JOB_TRACKING_FINALIZER not in fins:
            fins.append(JOB_TRACKING_FINALIZER)
        tmeta["finalizers"] = fins
        name = job["metadata"]["name"]
        ns = job["metadata"].get("namespace") or ""
        self.expectations.expect_creations(key, diff)
        pending = list(indexes)

        async def create() -> None:
            if pending:
                i = pending.pop(0)
                pod = pod_from_template(template, job, ix.generate_name_with_index(name, i))
                pmeta = pod["metadata"]
                pmeta.setdefault("annotations", {})[ix.COMPLETION_INDEX] = str(i)
                pmeta.setdefault("labels", {})[ix.COMPLETION_INDEX] = str(i)
                pod["spec"]["hostname"] = f"{name}-{i}"
                if ix.has_backoff_limit_per_index(job):
                    self._add_index_failure_count(job, pmeta["annotations"], ctx.delayed_deletion.get(i))
            else:
                pod = pod_from_template(template, job, f"{name}-")
            try:
                await self.pod_control.create_pod(ns, pod, job)
            except ApiError as e:
                if not has_status_cause(e, NAMESPACE_TERMINATING_CAUSE):
                    raise
                self.expectations.lower_creations(key, 1)
        done, err = await slow_start_batch(diff, 1, create)
        if err is not None:
            failed_or_skipped = diff - done
            self.expectations.lower_creations(key, failed_or_skipped)
            return active + done, err
        return active + diff, None

    def _pending_indexes(self, ctx: SyncContext, count: int, completions: int) -> list[int]:
        non_pending = ix.with_indexes(ctx.succeeded_indexes, sorted(ix.indexes_of(ctx.active_pods)))
        if only_replace_failed_pods(ctx.job):
            non_pending = ix.with_indexes(non_pending, sorted(ix.indexes_of(
                [p for p in ctx.pods if is_pod_terminating(p)])))
        if ctx.failed_indexes is not None:
            non_pending = ix.merge(non_pending, ctx.failed_indexes)
        return ix.first_pending_indexes(non_pending, count, completions)

    def _indexes_ready_now(self, indexes: list[int], delayed: dict[int, dict]) -> tuple[list[int], float]:
        """Indexes whose own back-off has passed, or the shortest wait if none has."""
        now_ok: list[int] = []
        shortest: float | None = None
        for i in indexes:
            last = delayed.get(i)
            wait = 0.0
            if last is not None:
                wait = remaining_for_failures(self.clock, DEFAULT_BACKOFF, MAX_BACKOFF,
                                              ix.absolute_failure_count(last) + 1, finished_time(last))
            if wait == 0.0:
                now_ok.append(i)
            elif shortest is None or wait < shortest:
                shortest = wait
        if now_ok:
            return now_ok, 0.0
        return now_ok, shortest or 0.0

    @staticmethod
    def _add_index_failure_count(job: dict, annotations: dict, replaced: dict | None) -> None:
        failures = ignored = 0
        if replaced is not None:
            failures = ix.failure_count(replaced)
            ignored = ix.failure_count(replaced, ix.INDEX_IGNORED_FAILURE_COUNT)
            policy = _spec(job).get("podFailurePolicy")
            if policy is None or match_pod_failure_policy(policy, replaced).count_failed:
                failures += 1
            else:
                ignored += 1
        annotations[ix.INDEX_FAILURE_COUNT] = str(failures)
        if ignored > 0:
            annotations[ix.INDEX_IGNORED_FAILURE_COUNT] = str(ignored)

    # ---- status and finalizers ----------------------------------------------------------------------

    async def _track_status_and_remove_finalizers(self, key: str, ctx: SyncContext, needs_flush: bool) -> None:
        """Count finished pods safely (trackJobStatusAndRemoveFinalizers) and finish the Job."""
        job = ctx.job
        status = job["status"]
        unc = status["uncountedTerminatedPods"]
        unc["succeeded"] = list(unc.get("succeeded") or [])
        unc["failed"] = list(unc.get("failed") or [])
        indexed = ix.is_indexed(job)
        completions = _spec(job).get("completions") or 0
        pods = ctx.pods
        if indexed:
            pods = sorted(pods, key=ix.completion_index)
        with_finalizer = {p["metadata"]["uid"] for p in pods
                          if has_tracking_finalizer(p) and p["metadata"]["uid"] not in ctx.expected_rm}
        if _clean_uncounted(status, with_finalizer):
            needs_flush = True
        to_remove: list[dict] = []
        new_indexes: list[int] = []
        reached_max = False
        policy = _spec(job).get("podFailurePolicy")
        finished_failed = ctx.finished is not None and ctx.finished.get("type") != SUCCESS_CRITERIA_MET
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if not has_tracking_finalizer(pod) or uid in ctx.expected_rm:
                continue   # counted in an earlier sync
            considered_failed = is_pod_failed(pod, job)
            if not self._can_remove_finalizer(ctx, pod, considered_failed):
                continue
            to_remove.append(pod)
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Succeeded" and uid not in ctx.uncounted_failed:
                if indexed:
                    i = ix.completion_index(pod)
                    if i != ix.UNKNOWN and i < completions and not ix.has(ctx.prev_succeeded_indexes, i):
                        new_indexes.append(i)
                        needs_flush = True
                elif uid not in ctx.uncounted_succeeded:
                    needs_flush = True
                    unc["succeeded"].append(uid)
            elif considered_failed or finished_failed:
                i = ix.completion_index(pod)
                valid = not indexed or (i != ix.UNKNOWN and i < completions)
                if uid not in ctx.uncounted_failed and valid and \
                        (policy is None or match_pod_failure_policy(policy, pod).count_failed):
                    needs_flush = True
                    unc["failed"].append(uid)
            if len(new_indexes) + len(unc["succeeded"]) + len(unc["failed"]) >= MAX_UNCOUNTED_PODS:
                reached_max = True
                break
        if indexed:
            ctx.succeeded_indexes = ix.with_indexes(ctx.succeeded_indexes, sorted(set(new_indexes)))
            text = ix.format_intervals(ctx.succeeded_indexes)
            if text != (status.get("completedIndexes") or ""):
                needs_flush = True
            status["succeeded"] = ix.total(ctx.succeeded_indexes)
            status["completedIndexes"] = text
            failed_text = ix.format_intervals(ctx.failed_indexes) if ctx.failed_indexes is not None else None
            if failed_text != status.get("failedIndexes"):
                if failed_text is None:
                    status.pop("failedIndexes", None)
                else:
                    status["failedIndexes"] = failed_text
                needs_flush = True
        if ctx.finished is not None and ctx.finished["type"] == FAILURE_TARGET:
            # The interim condition is written before the finalizers go, so the reason survives.
            status.setdefault("conditions", []).append(ctx.finished)
            needs_flush = True
            ctx.finished = self._condition(FAILED, ctx.finished["reason"], ctx.finished["message"])
        if ctx.finished is not None and ctx.finished["type"] == SUCCESS_CRITERIA_MET:
            if _true_condition(status.get("conditions") or [], SUCCESS_CRITERIA_MET) is None:
                status.setdefault("conditions", []).append(ctx.finished)
                needs_flush = True
            ctx.finished = self._condition(COMPLETE, ctx.finished["reason"], ctx.finished["message"])

        needs_flush = await self._flush_and_remove_finalizers(key, ctx, to_remove, with_finalizer, needs_flush)
        finished = not reached_max and self._enact_finished(ctx)
        if finished or needs_flush:
            ctx.job = await self._update_status(ctx.job)
            if finished:
                self._record_finished(ctx.job, ctx.finished)

    def _can_remove_finalizer(self, ctx: SyncContext, pod: dict, considered_failed: bool) -> bool:
        if (ctx.job["metadata"].get("deletionTimestamp") or ctx.finished is not None
                or (pod.get("status") or {}).get("phase") == "Succeeded"):
            return True
        if not considered_failed:
            return False
        if ix.has_backoff_limit_per_index(ctx.job):
            i = ix.completion_index(pod)
            waiting = ctx.delayed_deletion.get(i)
            if waiting is not None and waiting["metadata"]["uid"] == pod["metadata"]["uid"]:
                return False   # kept until its replacement carries the failure count
        return True

    async def _flush_and_remove_finalizers(self, key: str, ctx: SyncContext, to_remove: list[dict],
                                           with_finalizer: set[str], needs_flush: bool) -> bool:
        if needs_flush:
            ctx.job = await self._update_status(ctx.job)
            self.backoff_store.update(ctx.backoff)
            needs_flush = False
        rm_error: Exception | None = None
        if to_remove:
            self.finalizer_expectations.expect_removed(key, [p["metadata"]["uid"] for p in to_remove])

            async def one(pod: dict) -> bool:
                meta = pod["metadata"]
                try:
                    await self.client.patch(PODS, meta.get("namespace"), meta["name"],
                                            remove_finalizer_patch(), STRATEGIC)
                except ApiError as e:
                    self.finalizer_expectations.observed(key, meta["uid"])
                    if e.code != 404:
                        nonlocal rm_error
                        rm_error = rm_error or e
                        return False
                return True
            for pod, ok in zip(to_remove, await bounded_map(one, to_remove, 100)):
                if ok:
                    with_finalizer.discard(pod["metadata"]["uid"])
        if _clean_uncounted(ctx.job["status"], with_finalizer):
            needs_flush = True
        if rm_error is not None:
            if needs_flush:
                ctx.job = await self._update_status(ctx.job)
            raise rm_error
        return needs_flush

    def _enact_finished(self, ctx: SyncContext) -> bool:
        """Write Complete or Failed once nothing is uncounted and no pod is still terminating."""
        if ctx.finished is None:
            return False
        status = ctx.job["status"]
        unc = status.get("uncountedTerminatedPods") or {}
        if unc.get("succeeded") or unc.get("failed"):
            return False
        if ctx.terminating > 0:
            return False
        cond = ctx.finished
        conditions = status.setdefault("conditions", [])
        existing = _find_condition(conditions, cond["type"])
        if existing is None:
            conditions.append(cond)
        elif (existing.get("status"), existing.get("reason"), existing.get("message")) != \
                (cond["status"], cond["reason"], cond["message"]):
            existing.clear()
            existing.update(cond)
        if cond["type"] == COMPLETE:
            status["completionTime"] = cond["lastTransitionTime"]
        return True

    def _record_finished(self, job: dict, cond: dict) -> None:
        if cond["type"] == COMPLETE:
            completions = _spec(job).get("completions")
            if completions is not None and (job["status"].get("succeeded") or 0) > completions:
                self.recorder.event(job, "Warning", "TooManySucceededPods", "Complete",
                                    "Too many succeeded pods running after completion count reached")
            self.recorder.event(job, "Normal", "Completed", "Complete", "Job completed")
        else:
            self.recorder.event(job, "Warning", cond["reason"], "Fail", cond["message"])

    async def _update_status(self, job: dict) -> dict:
        status = dict(job["status"])
        unc = status.get("uncountedTerminatedPods") or {}
        # Empty lists are left out, as Go's omitempty writes them.
        status["uncountedTerminatedPods"] = {k: v for k, v in unc.items() if v}
        if not status.get("conditions"):
            status.pop("conditions", None)
        body = dict(job, status=status)
        meta = job["metadata"]
        updated = await self.client.update_status(JOBS, meta.get("namespace"), body)
        updated.setdefault("status", {}).setdefault("uncountedTerminatedPods", {})
        updated["status"]["uncountedTerminatedPods"] = {
            "succeeded": list(updated["status"]["uncountedTerminatedPods"].get("succeeded") or []),
            "failed": list(updated["status"]["uncountedTerminatedPods"].get("failed") or [])}
        return updated


def _true_condition(conditions: list, ctype: str) -> dict | None:
    c = _find_condition(conditions, ctype)
    return c if c is not None and c.get("status") == "True" else None


def _managed_elsewhere(job: dict) -> bool:
    managed_by = _spec(job).get("managedBy")
    return managed_by is not None and managed_by != JOB_CONTROLLER_NAME


def _fail_job_message(job: dict, pods: list[dict]) -> str | None:
    policy = _spec(job).get("podFailurePolicy")
    if policy is None:
        return None
    for p in pods:
        if is_pod_failed(p, job):
            msg = match_pod_failure_policy(policy, p).fail_job_message
            if msg is not None:
                return msg
    return None


def _clean_uncounted(status: dict, with_finalizer: set[str]) -> bool:
    """Move UIDs whose finalizer is gone from uncountedTerminatedPods into the counters."""
    unc = status["uncountedTerminatedPods"]
    changed = False
    for field, counter in (("succeeded", "succeeded"), ("failed", "failed")):
        uids = list(unc.get(field) or [])
        keep = [u for u in uids if u in with_finalizer]
        if len(keep) != len(uids):
            changed = True
            status[counter] = (status.get(counter) or 0) + len(uids) - len(keep)
            unc[field] = keep
    return changed
