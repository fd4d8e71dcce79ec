"""The delay before a Job replaces failed pods (`pkg/controller/job/backoff_utils.go`).

A Job whose pods keep failing must not hammer the cluster: after the n-th consecutive failure
(failures since the last success) new pods wait 10 s * 2^(n-1), capped. The controller keeps,
per Job, how many pods failed since the last success and when the last one finished; the
finish time of a pod is read from its containers, else from its Ready=False condition, else
from its deletion. With backoffLimitPerIndex each index counts its own failures, carried from
pod to pod in the `batch.kubernetes.io/job-index-failure-count` annotation.

Everything is measured on the injected clock, so tests move time instead of waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...clock import Clock, parse_rfc3339

DEFAULT_BACKOFF = 10.0
# The Kubernetes documentation promises "capped at six minutes" for Job pod back-off; that is
# the figure users plan with, so it is the one kept here.
MAX_BACKOFF = 360.0


@dataclass
class BackoffRecord:
    key: str
    failures_after_last_success: int = 0
    last_failure_time: float | None = None

    def remaining(self, clock: Clock, default: float = DEFAULT_BACKOFF, cap: float = MAX_BACKOFF) -> float:
        return remaining_for_failures(clock, default, cap, self.failures_after_last_success, self.last_failure_time)


class BackoffStore:
    """The back-off record of every Job being synced, by key."""

    def __init__(self) -> None:
        self._records: dict[str, BackoffRecord] = {}

    def update(self, record: BackoffRecord) -> None:
        self._records[record.key] = record

    def remove(self, key: str) -> None:
        self._records.pop(key, None)

    def new_record(self, key: str, new_succeeded: list[dict], new_failed: list[dict]) -> BackoffRecord:
        """The record after counting the pods that finished since the last sync."""
        old = self._records.get(key)
        rec = BackoffRecord(key, old.failures_after_last_success, old.last_failure_time) if old else BackoffRecord(key)
        failed = sorted(finished_time(p) for p in new_failed)
        if not new_succeeded:
            if failed:
                rec.failures_after_last_success += len(failed)
                rec.last_failure_time = failed[-1]
            return rec
        rec.failures_after_last_success = 0
        rec.last_failure_time = None
        last_success = max(finished_time(p) for p in new_succeeded)
        for t in reversed(failed):
            if t <= last_success:
                break
            if rec.last_failure_time is None:
                rec.last_failure_time = t
            rec.failures_after_last_success += 1
        return rec


def finished_time(pod: dict) -> float:
    """When a pod finished: its containers' last exit, Ready=False, its deletion, or its creation."""
    status = pod.get("status") or {}
    latest = None
    statuses = status.get("containerStatuses") or ()
    for cs in statuses:
        term = (cs.get("state") or {}).get("terminated")
        t = parse_rfc3339((term or {}).get("finishedAt"))
        if t is None:
            latest = None
            break
        latest = t if latest is None or t > latest else latest
    if latest is not None:
        return latest
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready":
            t = parse_rfc3339(c.get("lastTransitionTime")) if c.get("status") == "False" else None
            if t is not None:
                return t
            break
    meta = pod.get("metadata") or {}
    deleted = parse_rfc3339(meta.get("deletionTimestamp"))
    if deleted is not None:
        return deleted - (meta.get("deletionGracePeriodSeconds") or 0)
    return parse_rfc3339(meta.get("creationTimestamp")) or 0.0


def remaining_for_failures(clock: Clock, default: float, cap: float, failures: int,
                           last_failure: float | None) -> float:
    """Seconds still to wait after `failures` consecutive failures, the last at `last_failure`."""
    if failures == 0 or last_failure is None:
        return 0.0
    delay = default
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            delay = cap
            break
    elapsed = clock.now() - last_failure
    return 0.0 if delay < elapsed else delay - elapsed
