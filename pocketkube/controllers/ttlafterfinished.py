"""The TTL-after-finished controller: delete a finished Job once its ttlSecondsAfterFinished passed.

Why it exists: finished Jobs (and their pods) pile up; `spec.ttlSecondsAfterFinished` asks the
cluster to clean them. This is kube-controller-manager's `ttlafterfinished` controller
(`pkg/controller/ttlafterfinished`): a Job that is finished (Complete or Failed) and has a TTL
expires at the finishing condition's lastTransitionTime plus the TTL. Before deleting, the Job
is read again from the API (the TTL may have been changed or removed meanwhile), and the delete
carries the Job's UID as a precondition and background propagation, so its pods go through the
garbage collector. Until then the Job is looked at again when it expires, on the injected clock.
"""

from __future__ import annotations

import logging

from ..api.errors import ApiError
from ..client.informer import object_key
from ..client.retry import get_or_none
from ..clock import parse_rfc3339
from .base import Controller, split_key
from .job.util import finished_condition

log = logging.getLogger("pocketkube.controllers.ttlafterfinished")

JOBS = "jobs.batch"


def needs_cleanup(job: dict) -> bool:
    return (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and \
        finished_condition(job) is not None and not job["metadata"].get("deletionTimestamp")


def time_left(job: dict, now: float) -> float | None:
    """Seconds until the Job expires (<= 0: expired), None if it has no TTL or is not finished."""
    if not needs_cleanup(job):
        return None
    finished = parse_rfc3339(finished_condition(job).get("lastTransitionTime"))
    if finished is None:
        return None
    return finished + job["spec"]["ttlSecondsAfterFinished"] - now


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"
    workers = 5   # --concurrent-ttl-after-finished-syncs

    def setup(self) -> None:
        self.jobs = self.informers.get(JOBS)
        self.jobs.add_handler(self._on_job)

    def _on_job(self, kind: str, old: dict | None, new: dict | None) -> None:
        if new is not None and needs_cleanup(new):
            self.queue.add(object_key(new))

    async def sync(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or not self._expired(key, job):
            return
        # The cache may be old: the TTL could have been raised or removed since it was seen.
        ns, name = split_key(key)
        fresh = await get_or_none(self.client, JOBS, ns, name)
        if fresh is None or fresh["metadata"].get("uid") != job["metadata"].get("uid"):
            return
        if not self._expired(key, fresh):
            return
        log.info("cleaning up Job %s: finished and past its ttlSecondsAfterFinished", key)
        try:
            await self.client.delete(JOBS, ns, name, propagation_policy="Background",
                                     preconditions={"uid": fresh["metadata"]["uid"]})
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    def _expired(self, key: str, job: dict) -> bool:
        """True once the TTL has passed; otherwise look again when it will have."""
        left = time_left(job, self.clock.now())
        if left is not None and left > 0:
            self.queue.add_after(key, left)
        return left is not None and left <= 0
