"""Rollout progress: the Progressing condition, the progress deadline, replica failures.

Why it exists: a rollout can stall (an image that never pulls, a quota that refuses pods), and
nothing fails loudly when it does. Upstream (`pkg/controller/deployment/progress.go`) turns the
silence into a condition: Progressing=True with ReplicaSetUpdated each time more pods are
updated, ready or available (or fewer old ones remain); NewReplicaSetAvailable once the
rollout completes; and Progressing=False with ProgressDeadlineExceeded when no progress has
been reported for spec.progressDeadlineSeconds. `kubectl rollout status` exits with an error on
that reason. A ReplicaSet's ReplicaFailure condition (pods it could not create) is copied onto
the Deployment. The deadline is measured on the injected clock, and a Deployment that has not
progressed is looked at again when its deadline would pass, so it times out on time without
any periodic resync.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...clock import parse_rfc3339
from . import util
from .sync import calculate_status

if TYPE_CHECKING:
    from .controller import DeploymentController


async def sync_rollout_status(dc: "DeploymentController", all_rss: list[dict | None], new_rs: dict | None,
                              d: dict) -> None:
    new_status = calculate_status(dc, all_rss, new_rs, d)
    name = util.meta(d)["name"]
    if not util.has_progress_deadline(d):
        util.remove_condition(new_status, util.PROGRESSING)
    current = util.get_condition(d.get("status"), util.PROGRESSING)
    # A finished rollout being resynced: nothing to estimate.
    complete_before = (int(new_status.get("replicas") or 0) == int(new_status.get("updatedReplicas") or 0)
                       and current is not None and current.get("reason") == util.NEW_RS_AVAILABLE)
    now = dc.clock.rfc3339()
    if util.has_progress_deadline(d) and not complete_before:
        rs_name = util.meta(new_rs)["name"] if new_rs is not None else None
        if util.deployment_complete(d, new_status):
            msg = (f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name
                   else f'Deployment "{name}" has successfully progressed.')
            util.set_condition(new_status, util.new_condition(util.PROGRESSING, "True", util.NEW_RS_AVAILABLE,
                                                              msg, now))
        elif util.deployment_progressing(d, new_status):
            msg = (f'ReplicaSet "{rs_name}" is progressing.' if rs_name
                   else f'Deployment "{name}" is progressing.')
            cond = util.new_condition(util.PROGRESSING, "True", util.REPLICASET_UPDATED, msg, now)
            # Unlike other conditions, each sign of progress refreshes lastUpdateTime even when
            # the reason stays the same; the transition time stays while the status is True.
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                util.remove_condition(new_status, util.PROGRESSING)
            util.set_condition(new_status, cond)
        elif util.deployment_timed_out(d, new_status, dc.clock.now()):
            msg = (f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name
                   else f'Deployment "{name}" has timed out progressing.')
            util.set_condition(new_status, util.new_condition(util.PROGRESSING, "False", util.TIMED_OUT, msg, now))

    failures = replica_failures(all_rss, new_rs)
    if failures:
        util.set_condition(new_status, failures[0])
    else:
        util.remove_condition(new_status, util.REPLICA_FAILURE)
    new_status = util.normalized_status(new_status)

    if util.normalized_status(d.get("status")) == new_status:
        requeue_stuck_deployment(dc, d, new_status)
        return
    d["status"] = new_status
    await dc.update_status(d)


def replica_failures(all_rss: list[dict | None], new_rs: dict | None) -> list[dict]:
    """ReplicaFailure conditions of the new ReplicaSet, else of any other, as Deployment conditions."""
    def of(rs: dict | None) -> list[dict]:
        if rs is None:
            return []
        return [util.replica_set_to_deployment_condition(c)
                for c in (rs.get("status") or {}).get("conditions") or [] if c.get("type") == util.REPLICA_FAILURE]
    found = of(new_rs)
    if found:
        return found
    out: list[dict] = []
    for rs in all_rss:
        out.extend(of(rs))
    return out


def requeue_stuck_deployment(dc: "DeploymentController", d: dict, new_status: dict) -> float:
    """Look again when the deadline would pass; -1 when no check is due, 0 when it is now."""
    current = util.get_condition(d.get("status"), util.PROGRESSING)
    if not util.has_progress_deadline(d) or current is None:
        return -1.0
    if util.deployment_complete(d, new_status) or current.get("reason") == util.TIMED_OUT:
        return -1.0
    since = parse_rfc3339(current.get("lastUpdateTime")) or dc.clock.now()
    after = since + int(d["spec"]["progressDeadlineSeconds"]) - dc.clock.now()
    key = dc.key_of(d)
    if after < 1.0:
        dc.queue.add_rate_limited(key)
        return 0.0
    # A second more, so the check never lands just before the deadline.
    dc.schedule_check(key, after + 1.0)
    return after
