"""The CronJob controller: create a Job at every tick of a cron schedule.

Why it exists: a CronJob is a Job on a timetable. This is kube-controller-manager's
`cronjob_controllerv2` with its `utils.go`, in its order. A sync:

1. lists the Jobs the CronJob controls and deletes the oldest finished ones beyond
   successfulJobsHistoryLimit / failedJobsHistoryLimit ("SuccessfulDelete");
2. reconciles `status.active` with them: a finished Job leaves it ("SawCompletedJob"), one
   that disappeared too ("MissingJob"); the newest completion time is `lastSuccessfulTime`;
3. unless the CronJob is being deleted, suspended, or has an unusable schedule or time zone,
   finds the most recent schedule time not yet started (between `lastScheduleTime`, or the
   creation time, and now, no earlier than `startingDeadlineSeconds` ago). Only that one runs:
   after downtime the missed ones are not replayed, and more than 100 of them earn the warning
   "TooManyMissedTimes". Then concurrencyPolicy: Forbid skips while a Job is active
   ("JobAlreadyActive"), Replace deletes the active ones first, Allow just adds one;
4. creates the Job `<cronjob>-<scheduled time in minutes since the epoch>` (the name is the
   lock that prevents a second Job for the same tick) with the annotation
   `batch.kubernetes.io/cronjob-scheduled-timestamp`, and records it in `status.active` and
   `lastScheduleTime`;
5. asks to be synced again just after the next schedule time, measured on the injected clock.

Schedules are standard five-field cron (with the @yearly .. @hourly macros and @every <d>),
evaluated by croniter in `spec.timeZone` (UTC by default), as robfig/cron does upstream.
"""

from __future__ import annotations

import copy
import logging
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from ..api.errors import ApiError
from ..client.informer import object_key
from ..client.retry import get_or_none
from ..clock import parse_rfc3339
from .base import Controller, Owners, controller_ref, new_controller_ref
from .job.util import finished_condition, is_job_finished, is_job_succeeded
from .podcontrol import NAMESPACE_TERMINATING_CAUSE, has_status_cause

log = logging.getLogger("pocketkube.controllers.cronjob")

CRONJOBS = "cronjobs.batch"
JOBS = "jobs.batch"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = 0.1     # seconds past the tick, against clock skew
TOO_MANY_MISSED = 100

_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ScheduleError(ValueError):
    pass


class Schedule:
    """A parsed schedule: `next(t)` is the first activation strictly after `t` (epoch seconds)."""

    def __init__(self, spec: str, tz: str | None = None):
        text = spec.strip()
        for prefix in ("TZ=", "CRON_TZ="):
            if text.startswith(prefix):
                zone, _, text = text[len(prefix):].partition(" ")
                tz = zone
                text = text.strip()
        try:
            self.zone = ZoneInfo(tz) if tz else UTC
        except Exception as e:  # noqa: BLE001 - unknown or unloadable zone
            raise ScheduleError(f"provided bad location {tz}: {e}") from None
        self.every: float | None = None
        self.expr = ""
        if not text:
            raise ScheduleError("empty spec string")
        if text.startswith("@every "):
            self.every = _parse_duration(text[len("@every "):].strip())
            return
        if text.startswith("@"):
            if text not in _MACROS:
                raise ScheduleError(f"unrecognized descriptor: {text}")
            text = _MACROS[text]
        fields = text.split()
        if len(fields) != 5:
            raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
        # robfig/cron accepts "?" for "any" in the day fields; croniter spells it "*".
        text = " ".join("*" if f == "?" else f for f in fields)
        if not croniter.is_valid(text):
            raise ScheduleError(f"failed to parse schedule: {text}")
        self.expr = text

    def next(self, t: float) -> float:
        if self.every is not None:
            # ConstantDelaySchedule: whole seconds, at least one.
            return float(int(t) + max(1, int(self.every)))
        start = datetime.fromtimestamp(t, self.zone)
        return croniter(self.expr, start).get_next(datetime).timestamp()


def _parse_duration(text: str) -> float:
    """A Go duration ("90s", "1h30m")."""
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ScheduleError(f"failed to parse duration {text}: time: invalid duration \"{text}\"")
    return total


def most_recent_schedule_time(cj: dict, now: float, sched: Schedule,
                              include_starting_deadline: bool) -> tuple[float, float | None, int]:
    """(earliest time considered, the most recent unmet schedule time or None, missed count).

    The count is upstream's estimate from the distance between two ticks; more than 100
    means "many". Raises ScheduleError for a schedule that never fires twice (31 February).
    """
    meta = cj["metadata"]
    earliest = parse_rfc3339((cj.get("status") or {}).get("lastScheduleTime"))
    if earliest is None:
        earliest = parse_rfc3339(meta.get("creationTimestamp")) or now
    deadline = (cj.get("spec") or {}).get("startingDeadlineSeconds")
    if include_starting_deadline and deadline is not None:
        earliest = max(earliest, now - deadline)
    t1 = sched.next(earliest)
    t2 = sched.next(t1)
    if now < t1:
        return earliest, None, 0
    if now < t2:
        return earliest, t1, 0
    between = round(t2 - t1)
    if between < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    missed = int(now - t1) // between + 1
    # Jump close to now, then let the schedule find the exact last tick (irregular schedules
    # such as "30 6-16/4 * * 1-5" are not evenly spaced).
    t = sched.next(t1 + (missed - 2) * between)
    recent = None
    while t <= now:
        recent = t
        t = sched.next(t)
    return earliest, recent, missed


def next_schedule_delay(cj: dict, now: float, sched: Schedule) -> float:
    """Seconds until just after the next tick (nextScheduleTimeDuration)."""
    try:
        earliest, recent, missed = most_recent_schedule_time(cj, now, sched, False)
        if recent is None:
            recent = earliest if missed == 0 else now
    except ScheduleError:
        recent = now
    return sched.next(recent) + NEXT_SCHEDULE_DELTA - now


def job_name(cj: dict, scheduled: float) -> str:
    return f"{cj['metadata']['name']}-{int(scheduled) // 60}"


def _go_rfc3339(t: float, zone) -> str:
    dt = datetime.fromtimestamp(int(t), zone)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    off = dt.utcoffset() or timedelta(0)
    if off == timedelta(0):
        return text + "Z"
    sign = "+" if off >= timedelta(0) else "-"
    minutes = int(abs(off.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _rfc1123z(t: float) -> str:
    return datetime.fromtimestamp(int(t), UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def job_from_template(cj: dict, scheduled: float) -> dict:
    """The Job for one tick (getJobFromTemplate2)."""
    tpl = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmeta = tpl.get("metadata") or {}
    tz = (cj.get("spec") or {}).get("timeZone")
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = _go_rfc3339(scheduled, ZoneInfo(tz) if tz else UTC)
    meta = {"name": job_name(cj, scheduled), "namespace": cj["metadata"].get("namespace"),
            "annotations": annotations, "ownerReferences": [new_controller_ref(cj)]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": copy.deepcopy(tpl.get("spec") or {})}


def _job_ref(job: dict) -> dict:
    meta = job["metadata"]
    return {"kind": "Job", "namespace": meta.get("namespace"), "name": meta["name"], "uid": meta["uid"],
            "apiVersion": "batch/v1", "resourceVersion": meta.get("resourceVersion")}


def _start_order(job: dict) -> tuple:
    """byJobStartTime: started Jobs by start time (oldest first), unstarted last, then by name."""
    start = parse_rfc3339((job.get("status") or {}).get("startTime"))
    return (start is None, start or 0.0, job["metadata"]["name"])


class CronJobController(Controller):
    name = "cronjob"
    workers = 5   # --concurrent-cron-job-syncs

    def setup(self) -> None:
        self.cronjobs = self.informers.get(CRONJOBS)
        self.jobs = self.informers.get(JOBS)
        self._timers: dict[str, float] = {}
        self.owners = Owners(self.cronjobs, "CronJob")
        self.cronjobs.add_handler(self._on_cronjob)
        self.jobs.add_handler(self._on_job)

    # ---- handlers --------------------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: dict | None) -> dict | None:
        return self.owners.resolve(namespace, ref)

    def _on_job(self, kind: str, old: dict | None, new: dict | None) -> None:
        job = new if new is not None else old
        ns = job["metadata"].get("namespace") or ""
        if kind == "MODIFIED":
            if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
                return
            old_ref, cur_ref = controller_ref(old), controller_ref(new)
            if old_ref != cur_ref and old_ref is not None:
                cj = self._resolve(ns, old_ref)
                if cj is not None:
                    self.enqueue(cj)
        cj = self._resolve(ns, controller_ref(job))
        if cj is not None:
            self.enqueue(cj)

    def _on_cronjob(self, kind: str, old: dict | None, new: dict | None) -> None:
        if kind != "MODIFIED":
            self.queue.add(object_key(new if new is not None else old))
            return
        ospec, nspec = old.get("spec") or {}, new.get("spec") or {}
        if ospec.get("schedule") != nspec.get("schedule") or ospec.get("timeZone") != nspec.get("timeZone"):
            try:
                sched = Schedule(nspec.get("schedule") or "", nspec.get("timeZone"))
            except ScheduleError:
                self.recorder.event(new, "Warning", "UnParseableCronJobSchedule", "Sync",
                                    f"unparseable schedule for cronjob: {nspec.get('schedule')}")
                return
            self.requeue_after(object_key(new), next_schedule_delay(new, self.clock.now(), sched))
            return
        self.queue.add(object_key(new))

    def requeue_after(self, key: str, delay: float) -> None:
        """Sync at the next tick on the injected clock, once however often a sync asks for it."""
        now = self.clock.now()
        due = now + delay
        pending = self._timers.get(key)
        if pending is not None and now < pending and abs(pending - due) < 0.001:
            return
        self._timers[key] = due
        self.queue.add_after(key, delay)

    # ---- sync ------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        shared = self.cronjobs.get(key)
        if shared is None:
            self._timers.pop(key, None)
            return
        jobs = self._jobs_of(shared)
        cj = copy.deepcopy(shared)
        cj.setdefault("status", {})
        changed = await self._cleanup_finished_jobs(cj, jobs)
        requeue: float | None = None
        sync_error: Exception | None = None
        try:
            requeue, changed_by_sync = await self._sync_cronjob(cj, jobs)
            changed = changed or changed_by_sync
        except Exception as e:  # noqa: BLE001 - the status is still written, then retried
            sync_error = e
        if changed:
            status = dict(cj["status"])
            if not status.get("active"):
                status.pop("active", None)
            await self.client.update_status(CRONJOBS, cj["metadata"].get("namespace"), dict(cj, status=status))
        if requeue is not None:
            self.requeue_after(key, requeue)
            return
        if sync_error is not None:
            raise sync_error

    def _jobs_of(self, cj: dict) -> list[dict]:
        ns = cj["metadata"].get("namespace") or ""
        name = cj["metadata"]["name"]
        out = []
        for job in self.jobs.cache.values():
            if (job["metadata"].get("namespace") or "") != ns:
                continue
            ref = controller_ref(job)
            if ref is not None and ref.get("kind") == "CronJob" and ref.get("name") == name:
                out.append(job)
        return out

    async def _sync_cronjob(self, cj: dict, jobs: list[dict]) -> tuple[float | None, bool]:
        now = self.clock.now()
        status = cj["status"]
        meta = cj["metadata"]
        ns = meta.get("namespace") or ""
        spec = cj.get("spec") or {}
        changed = False
        children = set()
        for j in jobs:
            uid = j["metadata"]["uid"]
            children.add(uid)
            found = _in_active(cj, uid)
            if not found and not is_job_finished(j):
                fresh = await self.client.get(CRONJOBS, ns, meta["name"])
                if _in_active(fresh, uid):
                    # Our cache is behind our own status write: take the fresh status.
                    cj["status"] = status = copy.deepcopy(fresh.get("status") or {})
                    continue
                self.recorder.event(cj, "Warning", "UnexpectedJob", "Sync",
                                    f"Saw a job that the controller did not create or forgot: {j['metadata']['name']}")
            elif found and is_job_finished(j):
                cond = finished_condition(j)
                _remove_active(cj, uid)
                self.recorder.event(cj, "Normal", "SawCompletedJob", "Sync",
                                    f"Saw completed job: {j['metadata']['name']}, status: {cond['type']}")
                changed = True
            elif is_job_succeeded(j):
                done = (j.get("status") or {}).get("completionTime")
                last = status.get("lastSuccessfulTime")
                if done and (last is None or (parse_rfc3339(done) or 0) > (parse_rfc3339(last) or 0)):
                    status["lastSuccessfulTime"] = done
                    changed = True
        for ref in list(status.get("active") or ()):
            if ref.get("uid") in children:
                continue
            # Not in the cache: ask the API before believing it gone.
            if await get_or_none(self.client, JOBS, ref.get("namespace") or ns, ref.get("name")) is None:
                self.recorder.event(cj, "Normal", "MissingJob", "Sync", f"Active job went missing: {ref.get('name')}")
                _remove_active(cj, ref.get("uid"))
                changed = True

        if meta.get("deletionTimestamp"):
            return None, changed
        tz = spec.get("timeZone")
        if tz is not None:
            try:
                ZoneInfo(tz)
            except Exception as e:  # noqa: BLE001 - unknown or unloadable zone
                self.recorder.event(cj, "Warning", "UnknownTimeZone", "Sync", f'invalid timeZone: "{tz}": {e}')
                return None, changed
        if spec.get("suspend"):
            return None, changed
        schedule = spec.get("schedule") or ""
        if "TZ" in schedule:
            self.recorder.event(cj, "Warning", "UnsupportedSchedule", "Sync",
                                f'CRON_TZ or TZ used in schedule "{schedule}" is not officially supported, see '
                                f"https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details")
            tz = None
        try:
            sched = Schedule(schedule, tz)
        except ScheduleError as e:
            self.recorder.event(cj, "Warning", "UnparseableSchedule", "Sync", f'unparseable schedule: "{schedule}" : {e}')
            return None, changed
        try:
            _, scheduled, missed = most_recent_schedule_time(cj, now, sched, True)
        except ScheduleError as e:
            self.recorder.event(cj, "Warning", "InvalidSchedule", "Sync", f"invalid schedule: {schedule} : {e}")
            return None, changed
        if scheduled is not None and missed > TOO_MANY_MISSED:
            self.recorder.event(cj, "Warning", "TooManyMissedTimes", "Sync",
                                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                                "or check clock skew")
        if scheduled is None:
            return next_schedule_delay(cj, now, sched), changed
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + deadline < now:
            self.recorder.event(cj, "Warning", "MissSchedule", "Sync",
                                f"Missed scheduled time to start a job: {_rfc1123z(scheduled)}")
            return next_schedule_delay(cj, now, sched), changed
        name = job_name(cj, scheduled)
        if any(r.get("name") == name and (r.get("namespace") or ns) == ns for r in status.get("active") or ()) \
                or parse_rfc3339(status.get("lastScheduleTime")) == int(scheduled):
            return next_schedule_delay(cj, now, sched), changed
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.recorder.event(cj, "Normal", "JobAlreadyActive", "Sync",
                                "Not starting job because prior execution is running and concurrency policy is Forbid")
            return next_schedule_delay(cj, now, sched), changed
        if policy == "Replace":
            for ref in list(status.get("active") or ()):
                try:
                    job = await self.client.get(JOBS, ref.get("namespace") or ns, ref.get("name"))
                except ApiError as e:
                    self.recorder.event(cj, "Warning", "FailedGet", "Sync", f"Get job: {e}")
                    raise
                if not await self._delete_job(cj, job):
                    raise RuntimeError(f"could not replace job {ns}/{job['metadata']['name']}")
                changed = True

        body = job_from_template(cj, scheduled)
        try:
            created = await self.client.create(JOBS, ns, body)
            self.recorder.event(cj, "Normal", "SuccessfulCreate", "Create", f"Created job {created['metadata']['name']}")
        except ApiError as e:
            if has_status_cause(e, NAMESPACE_TERMINATING_CAUSE):
                raise
            if e.code != 409:
                self.recorder.event(cj, "Warning", "FailedCreate", "Create", f"Error creating job: {e}")
                raise
            # Created before, but the status write was lost: record it now if it is ours.
            created = await self.client.get(JOBS, ns, name)
            ref = controller_ref(created)
            if ref is None or ref.get("uid") != meta["uid"] or _in_active(cj, created["metadata"]["uid"]):
                # Someone else's Job, or ours already recorded: nothing to add; keep ticking.
                return next_schedule_delay(cj, now, sched), changed
            if is_job_finished(created):
                # Two ticks in one minute share a name (@every 10s): the Job already ran and is
                # seen completed; recording it as active again would only report it again.
                status["lastScheduleTime"] = self.clock.rfc3339(scheduled)
                return next_schedule_delay(cj, now, sched), True
        status.setdefault("active", []).append(_job_ref(created))
        status["lastScheduleTime"] = self.clock.rfc3339(scheduled)
        return next_schedule_delay(cj, now, sched), True

    async def _cleanup_finished_jobs(self, cj: dict, jobs: list[dict]) -> bool:
        spec = cj.get("spec") or {}
        ok_limit, failed_limit = spec.get("successfulJobsHistoryLimit"), spec.get("failedJobsHistoryLimit")
        if ok_limit is None and failed_limit is None:
            return False
        succeeded, failed = [], []
        for j in jobs:
            cond = finished_condition(j)
            if cond is not None:
                (succeeded if cond["type"] == "Complete" else failed).append(j)
        changed = False
        for group, limit in ((succeeded, ok_limit), (failed, failed_limit)):
            if limit is None or len(group) <= limit:
                continue
            group.sort(key=_start_order)
            for j in group[:len(group) - limit]:
                if await self._delete_job(cj, j):
                    changed = True
        return changed

    async def _delete_job(self, cj: dict, job: dict) -> bool:
        """Delete a Job and its pods (background propagation) and drop it from status.active."""
        name = job["metadata"]["name"]
        try:
            await self.client.delete(JOBS, job["metadata"].get("namespace"), name, propagation_policy="Background")
        except ApiError as e:
            self.recorder.event(cj, "Warning", "FailedDelete", "Delete", f"Deleted job: {e}")
            return False
        _remove_active(cj, job["metadata"]["uid"])
        self.recorder.event(cj, "Normal", "SuccessfulDelete", "Delete", f"Deleted job {name}")
        return True


def _in_active(cj: dict, uid: str) -> bool:
    return any(r.get("uid") == uid for r in (cj.get("status") or {}).get("active") or ())


def _remove_active(cj: dict, uid: str | None) -> None:
    status = cj.setdefault("status", {})
    status["active"] = [r for r in status.get("active") or () if r.get("uid") != uid]
