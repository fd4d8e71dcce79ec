"""The RollingUpdate strategy: grow the new ReplicaSet and shrink the old ones in turns.

Why it exists: replacing pods without an outage means never having more than
`replicas + maxSurge` pods nor fewer than `replicas - maxUnavailable` available ones. Each sync
takes one step (upstream `pkg/controller/deployment/rolling.go`): scale the new ReplicaSet up
as far as the surge allows; otherwise scale old ReplicaSets down, first the pods that are not
available anyway (they cost no availability), then as many available ones as the
availability floor allows, counting the new ReplicaSet's not-yet-available pods against it.
The next step waits for the ReplicaSet status changes the previous one causes. A rollout
begun while another is under way (rollover) simply treats every earlier ReplicaSet as old.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...api.errors import ApiError
from . import util
from .progress import sync_rollout_status
from .sync import cleanup_deployment, get_all_replica_sets_and_sync_revision, scale_replica_set_and_record_event

if TYPE_CHECKING:
    from .controller import DeploymentController

log = logging.getLogger("pocketkube.controllers.deployment")


async def rollout_rolling(dc: "DeploymentController", d: dict, rs_list: list[dict]) -> None:
    new_rs, old_rss = await get_all_replica_sets_and_sync_revision(dc, d, rs_list, True)
    all_rss = old_rss + [new_rs]
    if await reconcile_new_replica_set(dc, all_rss, new_rs, d):
        await sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if await reconcile_old_replica_sets(dc, all_rss, util.active(old_rss), new_rs, d):
        await sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if util.deployment_complete(d, d.get("status") or {}):
        await cleanup_deployment(dc, old_rss, d)
    await sync_rollout_status(dc, all_rss, new_rs, d)


async def reconcile_new_replica_set(dc: "DeploymentController", all_rss: list[dict], new_rs: dict,
                                    d: dict) -> bool:
    want = util.spec_replicas(d)
    have = util.spec_replicas(new_rs)
    if have == want:
        return False
    if have > want:
        scaled, _ = await scale_replica_set_and_record_event(dc, new_rs, want, d)
        return scaled
    count = util.new_rs_new_replicas(d, all_rss, new_rs)
    scaled, _ = await scale_replica_set_and_record_event(dc, new_rs, count, d)
    return scaled


async def reconcile_old_replica_sets(dc: "DeploymentController", all_rss: list[dict], old_rss: list[dict],
                                     new_rs: dict, d: dict) -> bool:
    if util.replica_count(old_rss) == 0:
        return False
    all_pods = util.replica_count(all_rss)
    min_available = util.spec_replicas(d) - util.max_unavailable(d)
    new_unavailable = util.spec_replicas(new_rs) - util.status_int(new_rs, "availableReplicas")
    # Leave room for the new ReplicaSet's pods that are not available yet: scaling old ones
    # down on their account would take availability below the floor once they fail.
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return False
    # As upstream, a failed step is not an error of the sync: a ReplicaSet whose status lags
    # its spec (more available than asked for) or a lost write race just means "not now";
    # the status update that resolves it brings the Deployment back.
    try:
        old_rss, cleaned = await cleanup_unhealthy_replicas(dc, old_rss, d, max_scaled_down)
    except (ApiError, RuntimeError) as e:
        log.debug("deployment %s: cleaning up unhealthy replicas: %s", dc.key_of(d), e)
        return False
    try:
        scaled_down = await scale_down_old_replica_sets(dc, old_rss + [new_rs], old_rss, d)
    except (ApiError, RuntimeError) as e:
        log.debug("deployment %s: scaling down old replica sets: %s", dc.key_of(d), e)
        return False
    return cleaned + scaled_down > 0


async def cleanup_unhealthy_replicas(dc: "DeploymentController", old_rss: list[dict], d: dict,
                                     max_cleanup: int) -> tuple[list[dict], int]:
    """Remove old pods that are not available: it costs nothing and unblocks stuck rollouts."""
    old_rss = util.sort_by_creation(old_rss)
    total = 0
    for i, rs in enumerate(old_rss):
        if total >= max_cleanup:
            break
        replicas = util.spec_replicas(rs)
        available = util.status_int(rs, "availableReplicas")
        if replicas == 0 or replicas == available:
            continue
        count = min(max_cleanup - total, replicas - available)
        new_count = replicas - count
        if new_count > replicas:
            raise RuntimeError(f"when cleaning up unhealthy replicas, got invalid request to scale down "
                               f"{util.meta(rs).get('namespace')}/{util.meta(rs)['name']} {replicas} -> {new_count}")
        _, updated = await scale_replica_set_and_record_event(dc, rs, new_count, d)
        total += count
        old_rss[i] = updated
    return old_rss, total


async def scale_down_old_replica_sets(dc: "DeploymentController", all_rss: list[dict], old_rss: list[dict],
                                      d: dict) -> int:
    """Scale old ReplicaSets down, oldest first, as far as the availability floor allows."""
    min_available = util.spec_replicas(d) - util.max_unavailable(d)
    available = util.available_replica_count(all_rss)
    if available <= min_available:
        return 0
    total = 0
    to_scale = available - min_available
    for rs in util.sort_by_creation(old_rss):
        if total >= to_scale:
            break
        replicas = util.spec_replicas(rs)
        if replicas == 0:
            continue
        count = min(replicas, to_scale - total)
        await scale_replica_set_and_record_event(dc, rs, replicas - count, d)
        total += count
    return total
