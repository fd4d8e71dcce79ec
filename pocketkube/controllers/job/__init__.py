"""The Job controller (kube-controller-manager's `job` controller).

A Job runs pods until `completions` of them succeed (or one does, for a work queue without
completions), `parallelism` at a time, and fails on too many failures, a passed deadline or a
podFailurePolicy rule. The package is laid out as upstream's `pkg/controller/job`, one concern
per module:

* `job_controller`     - informers, handlers, the order of a sync, pod creation and deletion,
                         and the finalizer-based counting of finished pods;
* `indexed_job_utils`  - completion indexes, their interval form, index-aware pods;
* `pod_failure_policy` - matching failed pods against podFailurePolicy rules;
* `success_policy`     - an Indexed Job's successPolicy;
* `backoff_utils`      - the delay before failed pods are replaced;
* `tracking_utils`     - the job-tracking finalizer and its expectations;
* `util`               - whether a Job is finished (shared with CronJob and TTL controllers).
"""

from .job_controller import JobController

__all__ = ["JobController"]
