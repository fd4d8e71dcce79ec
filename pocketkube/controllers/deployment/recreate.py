"""The Recreate strategy: every old pod is gone before the first new one is created.

Why it exists: some applications cannot run two versions side by side (a schema migration, a
single-writer volume). Upstream (`pkg/controller/deployment/recreate.go`) scales every old
ReplicaSet to zero, waits until none of their pods is left running (terminating pods count:
a pod is only gone once it is deleted or has finished), and only then creates the new
ReplicaSet at full size. The controller is woken when the last pod of such a Deployment is
deleted (see the pod handler in `controller.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import util
from .progress import sync_rollout_status
from .sync import cleanup_deployment, get_all_replica_sets_and_sync_revision, scale_replica_set_and_record_event

if TYPE_CHECKING:
    from .controller import DeploymentController


async def rollout_recreate(dc: "DeploymentController", d: dict, rs_list: list[dict],
                           pod_map: dict[str, list[dict]]) -> None:
    # No new ReplicaSet yet: creating it now would scale up before the old ones are down.
    new_rs, old_rss = await get_all_replica_sets_and_sync_revision(dc, d, rs_list, False)
    all_rss = old_rss + [new_rs]
    if await scale_down_old_replica_sets_for_recreate(dc, util.active(old_rss), d):
        await sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if old_pods_running(new_rs, old_rss, pod_map):
        await sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if new_rs is None:
        new_rs, old_rss = await get_all_replica_sets_and_sync_revision(dc, d, rs_list, True)
        all_rss = old_rss + [new_rs]
    await scale_replica_set_and_record_event(dc, new_rs, util.spec_replicas(d), d)
    if util.deployment_complete(d, d.get("status") or {}):
        await cleanup_deployment(dc, old_rss, d)
    await sync_rollout_status(dc, all_rss, new_rs, d)


async def scale_down_old_replica_sets_for_recreate(dc: "DeploymentController", old_rss: list[dict],
                                                   d: dict) -> bool:
    scaled = False
    for rs in old_rss:
        if util.spec_replicas(rs) == 0:
            continue
        did, _ = await scale_replica_set_and_record_event(dc, rs, 0, d)
        scaled = scaled or did
    return scaled


def old_pods_running(new_rs: dict | None, old_rss: list[dict], pod_map: dict[str, list[dict]]) -> bool:
    """Does any old ReplicaSet report pods, or any pod outside the new one still exist unfinished?"""
    if util.actual_replica_count(old_rss) > 0:
        return True
    new_uid = util.meta(new_rs).get("uid") if new_rs is not None else None
    for uid, pods in pod_map.items():
        if uid == new_uid:
            continue
        for pod in pods:
            # Unknown counts as running: the pod may well be running on an unreachable node.
            if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
    return False
