"""The `batch.kubernetes.io/job-tracking` finalizer and its expectations
(`pkg/controller/job/tracking_utils.go`).

Every pod a Job creates carries this finalizer, so a finished pod cannot disappear (deleted by
a user, the garbage collector or the pod GC) before the Job has counted it. The controller
first records the pod's UID in `status.uncountedTerminatedPods`, then removes the finalizer,
then moves the UID into the `succeeded`/`failed` counters. Until the informer shows the
finalizer gone, the UID is "expected": the next sync must not count that pod a second time.
"""

from __future__ import annotations

JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"


def has_tracking_finalizer(pod: dict) -> bool:
    return JOB_TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or ())


def remove_finalizer_patch() -> dict:
    """Strategic merge patch that drops only our finalizer, whatever else the list holds."""
    return {"metadata": {"$deleteFromPrimitiveList/finalizers": [JOB_TRACKING_FINALIZER]}}


class UIDTrackingExpectations:
    """Per Job key, the pod UIDs whose finalizer removal has been sent but not yet observed."""

    def __init__(self) -> None:
        self._uids: dict[str, set[str]] = {}

    def expected(self, key: str) -> set[str]:
        return set(self._uids.get(key, ()))

    def expect_removed(self, key: str, uids: list[str]) -> None:
        self._uids.setdefault(key, set()).update(uids)

    def observed(self, key: str, uid: str) -> None:
        s = self._uids.get(key)
        if s is not None:
            s.discard(uid)
            if not s:
                del self._uids[key]

    def forget(self, key: str) -> None:
        self._uids.pop(key, None)
