"""What every batch controller asks of a Job: is it finished, and how (`pkg/controller/job/util`).

The Job controller stops syncing a finished Job, the CronJob controller sorts its children into
successful and failed history by it, and the TTL-after-finished controller starts its clock
at the moment the finishing condition was written. One definition keeps the three in step.
"""

from __future__ import annotations

COMPLETE = "Complete"
FAILED = "Failed"


def finished_condition(job: dict) -> dict | None:
    """The Complete or Failed condition with status True, if the Job has one."""
    for c in ((job.get("status") or {}).get("conditions") or ()):
        if c.get("type") in (COMPLETE, FAILED) and c.get("status") == "True":
            return c
    return None


def is_job_finished(job: dict) -> bool:
    return finished_condition(job) is not None


def is_job_succeeded(job: dict) -> bool:
    c = finished_condition(job)
    return c is not None and c.get("type") == COMPLETE
