"""DaemonSet updates: revision history and the RollingUpdate strategy.

Why it exists: a DaemonSet's template changes in place, so the controller needs a memory of the
templates it has had to tell old pods from new ones, to roll them over at a controlled pace, and to
let `kubectl rollout history|undo daemonset/x` list and restore earlier templates. This is upstream's
`pkg/controller/daemon/update.go`:

* `construct_history` claims the ControllerRevisions (adopting matching orphans, releasing ours
  that stopped matching), finds the one whose data equals the current template's patch (or
  creates it, numbered one past the highest), folds duplicates into the newest (relabelling their
  pods), and renumbers it when an undo brought an old template back. Its `controller-revision-hash`
  label is the hash every new pod carries: the pod-template-hash, as upstream computes it. The
  bookkeeping itself (names, collisions, adoption, renumbering, truncation) is the shared
  `controllers/history.py`;
* `rolling_update` without surge deletes old pods so that at most maxUnavailable daemon pods are
  unavailable (old pods that are not available go at once, they cost nothing); the core loop then
  creates the new pods. With maxSurge it first creates a new pod beside an old one on up to
  maxSurge nodes, and deletes the old pod once the new one is available. A rollback to a revision
  whose pods are still running therefore restarts nothing: they are the current revision again;
* `cleanup_history` keeps revisionHistoryLimit old revisions, never one that live pods carry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...api.errors import ApiError
from ...client import MERGE
from ..base import controller_ref
from ..podtemplate.hash import compute_hash
from ..history import Naming, find_equal_revisions, new_revision, sort_revisions, template_patch
from ..ranking import is_pod_available
from .util import daemonset_util as util

if TYPE_CHECKING:
    from .daemon_controller import DaemonSetController

PODS = "pods"
REVISIONS = "controllerrevisions.apps"
DAEMONSETS = "daemonsets.apps"


# ---- history ----------------------------------------------------------------------------------

async def controlled_histories(dsc: DaemonSetController, ds: dict) -> list[dict]:
    """ClaimControllerRevisions: ours that match, adopted orphans; ours that stopped matching are released."""
    sel = dsc.selector(ds)
    if sel is None:
        return []
    meta = ds["metadata"]
    uid, ns = meta.get("uid"), meta.get("namespace") or ""
    claimed: list[dict] = []
    orphans: list[dict] = []
    for rev in dsc.history.list(ds, sel):
        (claimed if controller_ref(rev) is not None else orphans).append(rev)
    for rev in dsc.revisions.list():
        rmeta = rev["metadata"]
        if (rmeta.get("namespace") or "") == ns and (controller_ref(rev) or {}).get("uid") == uid \
                and not sel.matches(rmeta.get("labels") or {}):
            await dsc.history.release(ds, rev)
    if orphans:
        await dsc.recheck_deletion(ds)
        for rev in orphans:
            try:
                claimed.append(await dsc.history.adopt(ds, rev))
            except ApiError as e:
                if e.code not in (404, 409, 422):
                    raise
    return claimed


def revision_hash(rev: dict) -> str:
    return (rev["metadata"].get("labels") or {}).get(util.CONTROLLER_REVISION_HASH, "")


async def construct_history(dsc: DaemonSetController, ds: dict) -> tuple[dict, list[dict]]:
    """The current revision (created or renumbered as needed) and the old ones.

    `ds` is the sync's private copy: a hash collision raises its status.collisionCount here.
    """
    ns = ds["metadata"].get("namespace")
    data = template_patch((ds.get("spec") or {}).get("template") or {})
    current: list[dict] = []
    old: list[dict] = []
    for rev in await controlled_histories(dsc, ds):
        if util.CONTROLLER_REVISION_HASH not in (rev["metadata"].get("labels") or {}):
            # Upstream labels a revision that lacks the hash with its name, so pods can match it.
            labels = {util.CONTROLLER_REVISION_HASH: rev["metadata"]["name"]}
            rev = await dsc.client.patch(REVISIONS, ns, rev["metadata"]["name"], {"metadata": {"labels": labels}},
                                         MERGE)
        (current if rev.get("data") == data else old).append(rev)
    next_number = max((int(r.get("revision") or 0) for r in old), default=0) + 1
    if not current:
        cur = await snapshot(dsc, ds, data, next_number)
    else:
        cur = await dedup_current(dsc, ds, current)
        if int(cur.get("revision") or 0) < next_number:
            # An undo brought this template back: it becomes the newest revision again.
            cur = await dsc.history.update_revision(cur, next_number)
    return cur, old


async def snapshot(dsc: DaemonSetController, ds: dict, data: dict, number: int) -> dict:
    """A new revision of the current template, named `<ds>-<hash>` and labelled with the hash its
    pods carry; the hash is the pod-template-hash (ComputeHash of the template and the collision
    count), as upstream's DaemonSet controller names it. A name taken by other data raises the
    collision count in the status."""
    template = (ds.get("spec") or {}).get("template") or {}
    cc = (ds.get("status") or {}).get("collisionCount")
    naming = Naming(util.CONTROLLER_REVISION_HASH, lambda _rev, n: compute_hash(template, n))
    rev = new_revision(ds, (template.get("metadata") or {}).get("labels"), data, number, cc,
                       ds["metadata"].get("annotations"), naming)
    created, new_cc = await dsc.history.create(ds, rev, cc, naming)
    if new_cc != cc:
        await store_collision_count(dsc, ds, new_cc)
    return created


async def store_collision_count(dsc: DaemonSetController, ds: dict, cc: int) -> None:
    """Keep a raised collisionCount in the status, so the next hash starts past the collision."""
    meta = ds["metadata"]
    fresh = await dsc.client.get(DAEMONSETS, meta.get("namespace"), meta["name"])
    fresh["status"] = dict(fresh.get("status") or {}, collisionCount=cc)
    written = await dsc.client.update_status(DAEMONSETS, meta.get("namespace"), fresh)
    ds.setdefault("status", {})["collisionCount"] = cc
    meta["resourceVersion"] = written["metadata"].get("resourceVersion")


async def dedup_current(dsc: DaemonSetController, ds: dict, current: list[dict]) -> dict:
    """dedupCurHistories: keep the highest-numbered duplicate, move the pods of the others to it."""
    if len(current) == 1:
        return current[0]
    keep = sort_revisions(current)[-1]
    keep_hash = revision_hash(keep)
    ns = ds["metadata"].get("namespace")
    for rev in find_equal_revisions(current, keep):
        if rev["metadata"]["name"] == keep["metadata"]["name"]:
            continue
        for pod in await dsc.daemon_pods(ds):
            if (pod["metadata"].get("labels") or {}).get(util.CONTROLLER_REVISION_HASH) != keep_hash:
                await dsc.client.patch(PODS, ns, pod["metadata"]["name"],
                                       {"metadata": {"labels": {util.CONTROLLER_REVISION_HASH: keep_hash}}}, MERGE)
        await dsc.history.delete(rev)
    return keep


async def cleanup_history(dsc: DaemonSetController, ds: dict, old: list[dict]) -> None:
    """Delete the oldest revisions beyond revisionHistoryLimit that no pod still runs."""
    limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if limit is None else int(limit)
    to_kill = len(old) - limit
    if to_kill <= 0:
        return
    node_to_pods = await dsc.nodes_to_daemon_pods(ds, include_deleted_terminal=True)
    live_hashes = {h for pods in node_to_pods.values() for p in pods
                   if (h := (p["metadata"].get("labels") or {}).get(util.CONTROLLER_REVISION_HASH))}
    live = {r["metadata"]["name"] for r in old if revision_hash(r) in live_hashes}
    # Upstream counts live revisions against the limit too: delete `to_kill` non-live ones.
    not_live = len(old) - len(live)
    await dsc.history.truncate(sort_revisions(old), live, max(0, not_live - to_kill))


# ---- rolling update ---------------------------------------------------------------------------

def updated_pods_on_node(ds: dict, pods: list[dict], hash_: str) -> tuple[dict | None, dict | None, bool]:
    """findUpdatedPodsOnNode: the node's new and old pod; False when it holds more than one of either."""
    new = old = None
    generation = util.template_generation(ds)
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if util.is_pod_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def desired_node_counts(dsc: DaemonSetController, ds: dict, nodes: list[dict],
                        node_to_pods: dict[str, list[dict]]) -> tuple[int, int]:
    """updatedDesiredNodeCounts: (maxSurge, maxUnavailable); nodes that need a pod join the map."""
    desired = 0
    for node in nodes:
        if not dsc.node_should_run(node, ds)[0]:
            continue
        desired += 1
        node_to_pods.setdefault(node["metadata"]["name"], [])
    max_unavailable = util.unavailable_count(ds, desired)
    max_surge = util.surge_count(ds, desired)
    if desired > 0 and max_unavailable == 0 and max_surge == 0:
        max_unavailable = 1  # an impossible configuration falls back to the default
    return max_surge, max_unavailable


async def rolling_update(dsc: DaemonSetController, ds: dict, nodes: list[dict], hash_: str) -> None:
    """Delete old pods within maxUnavailable, or surge new ones within maxSurge."""
    node_to_pods = await dsc.nodes_to_daemon_pods(ds)
    max_surge, max_unavailable = desired_node_counts(dsc, ds, nodes, node_to_pods)
    min_ready = (ds.get("spec") or {}).get("minReadySeconds") or 0
    now = dsc.clock.now()
    if max_surge == 0:
        num_unavailable = 0
        replacements: list[dict] = []
        candidates: list[dict] = []
        for node_name, pods in sorted(node_to_pods.items()):
            new, old, ok = updated_pods_on_node(ds, pods, hash_)
            if not ok:
                num_unavailable += 1    # the core loop prunes the extra pods first
                continue
            if (old is None) == (new is None):
                num_unavailable += 1    # nothing yet, or both: the core loop acts on this node
            elif new is not None:
                if not is_pod_available(new, min_ready, now):
                    num_unavailable += 1
            elif not is_pod_available(old, min_ready, now):
                replacements.append(old)    # costs no availability to replace
            elif num_unavailable < max_unavailable:
                candidates.append(old)
        remaining = max(0, min(max_unavailable - num_unavailable, len(candidates)))
        await dsc.sync_nodes(ds, replacements + candidates[:remaining], [], hash_)
        return
    to_delete: list[dict] = []
    allowed_new: list[str] = []
    candidate_new: list[str] = []
    num_surge = 0
    for node_name, pods in sorted(node_to_pods.items()):
        new, old, ok = updated_pods_on_node(ds, pods, hash_)
        if not ok:
            num_surge += 1
            continue
        if old is None:
            continue
        if new is None:
            if not is_pod_available(old, min_ready, now):
                allowed_new.append(node_name)
            elif num_surge < max_surge:
                candidate_new.append(node_name)
            continue
        if not is_pod_available(new, min_ready, now):
            num_surge += 1      # waiting for the new pod here
            continue
        to_delete.append(old)   # the new pod is available: the old one may go
    remaining = max(0, min(max_surge - num_surge, len(candidate_new)))
    await dsc.sync_nodes(ds, to_delete, allowed_new + candidate_new[:remaining], hash_)
