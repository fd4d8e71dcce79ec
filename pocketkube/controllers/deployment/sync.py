"""Finding the new ReplicaSet, scaling events, cleanup and status: what every strategy shares.

Why it exists: whichever strategy a Deployment uses, each sync starts by sorting its
ReplicaSets into "the new one" (whose template is the Deployment's, created here when the
strategy is ready for it, with a revision one above the highest old one) and "the old ones";
a change of spec.replicas alone (a scaling event, or any change while paused) is handled by
resizing the ReplicaSets in proportion to their size instead of by rolling; old ReplicaSets
beyond revisionHistoryLimit are deleted once they are empty; and the Deployment's status is
recomputed from its ReplicaSets. Mirrors upstream's `pkg/controller/deployment/sync.go`,
function by function, with the same events ("Scaled up replica set x from 0 to 3") and
conditions (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetCreateError).

Every function takes the controller first (`dc`) and a private copy of the Deployment (`d`),
which it may change; ReplicaSets from the informer are copied before being changed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...api.errors import ApiError
from ..base import new_controller_ref
from ..podtemplate.hash import compute_hash
from . import util

if TYPE_CHECKING:
    from .controller import DeploymentController

log = logging.getLogger("pocketkube.controllers.deployment")

RS = "replicasets.apps"


async def sync_status_only(dc: "DeploymentController", d: dict, rs_list: list[dict]) -> None:
    """A Deployment being deleted: report on its ReplicaSets, change nothing."""
    new_rs, old_rss = await get_all_replica_sets_and_sync_revision(dc, d, rs_list, False)
    await sync_deployment_status(dc, old_rss + [new_rs], new_rs, d)


async def sync(dc: "DeploymentController", d: dict, rs_list: list[dict]) -> None:
    """Scaling events and paused Deployments: resize, clean up, report; never roll."""
    new_rs, old_rss = await get_all_replica_sets_and_sync_revision(dc, d, rs_list, False)
    await scale(dc, d, new_rs, old_rss)
    from .rollback import get_rollback_to  # rollback builds on this module
    if (d.get("spec") or {}).get("paused") and get_rollback_to(d) is None:
        await cleanup_deployment(dc, old_rss, d)
    await sync_deployment_status(dc, old_rss + [new_rs], new_rs, d)


async def check_paused_conditions(dc: "DeploymentController", d: dict) -> None:
    """Progressing goes Unknown (DeploymentPaused / DeploymentResumed) so a Deployment paused
    for longer than its deadline is not reported as stuck when it resumes."""
    if not util.has_progress_deadline(d):
        return
    status = d.setdefault("status", {})
    cond = util.get_condition(status, util.PROGRESSING)
    if cond is not None and cond.get("reason") == util.TIMED_OUT:
        return  # a reported lack of progress stays reported
    paused = bool((d.get("spec") or {}).get("paused"))
    paused_cond = cond is not None and cond.get("reason") == util.PAUSED
    now = dc.clock.rfc3339()
    if paused and not paused_cond:
        util.set_condition(status, util.new_condition(util.PROGRESSING, "Unknown", util.PAUSED,
                                                      "Deployment is paused", now))
    elif not paused and paused_cond:
        util.set_condition(status, util.new_condition(util.PROGRESSING, "Unknown", util.RESUMED,
                                                      "Deployment is resumed", now))
    else:
        return
    await dc.update_status(d)


async def get_all_replica_sets_and_sync_revision(dc: "DeploymentController", d: dict, rs_list: list[dict],
                                                 create: bool) -> tuple[dict | None, list[dict]]:
    """(the new ReplicaSet or None, every old ReplicaSet), the new one's revision brought up to
    date (and created when `create`)."""
    existing = util.find_new_replica_set(d, rs_list)
    _, all_old = util.find_old_replica_sets(d, rs_list, existing)
    new_rs = await get_new_replica_set(dc, d, rs_list, existing, all_old, create)
    return new_rs, all_old


def _replace(rs_list: list[dict], rs: dict) -> None:
    """Later steps of the same sync must see what we just wrote, not the informer's copy."""
    uid = util.meta(rs).get("uid")
    for i, x in enumerate(rs_list):
        if util.meta(x).get("uid") == uid:
            rs_list[i] = rs
            return
    rs_list.append(rs)


async def get_new_replica_set(dc: "DeploymentController", d: dict, rs_list: list[dict], existing: dict | None,
                              old_rss: list[dict], create: bool) -> dict | None:
    new_revision = str(util.max_revision(old_rss) + 1)
    status = d.setdefault("status", {})
    if existing is not None:
        rs_copy = util.copy(existing)
        updated = util.set_new_replica_set_annotations(d, rs_copy, new_revision, True)
        min_ready = (d.get("spec") or {}).get("minReadySeconds") or 0
        if updated or ((rs_copy.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
            if min_ready:
                rs_copy["spec"]["minReadySeconds"] = min_ready
            else:
                rs_copy["spec"].pop("minReadySeconds", None)
            written = await dc.client.update(RS, util.meta(rs_copy).get("namespace"), rs_copy)
            _replace(rs_list, written)
            return written
        # The ReplicaSet's revision is the reliable one: the Deployment's may be stale.
        needs_update = util.set_deployment_revision(d, util.annotations(rs_copy).get(util.REVISION, ""))
        if util.has_progress_deadline(d) and util.get_condition(status, util.PROGRESSING) is None:
            msg = f'Found new replica set "{util.meta(rs_copy)["name"]}"'
            util.set_condition(status, util.new_condition(util.PROGRESSING, "True", util.FOUND_NEW_RS, msg,
                                                          dc.clock.rfc3339()))
            needs_update = True
        if needs_update:
            await dc.update_status(d)
        return rs_copy

    if not create:
        return None

    ns = util.meta(d).get("namespace")
    spec = d.get("spec") or {}
    template = util.copy(spec.get("template") or {})
    pod_hash = compute_hash(template, status.get("collisionCount"))
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = dict(tmeta.get("labels") or {}, **{util.POD_TEMPLATE_HASH: pod_hash})
    selector = util.copy(spec.get("selector") or {})
    selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{util.POD_TEMPLATE_HASH: pod_hash})
    name = f"{util.meta(d)['name']}-{pod_hash}"
    rs_spec: dict = {"replicas": 0, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    new_rs = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        # A name derived from the template makes a repeated create idempotent.
        "metadata": {"name": name, "namespace": ns, "ownerReferences": [new_controller_ref(d)],
                     "labels": dict(tmeta["labels"])},
        "spec": rs_spec,
    }
    new_replicas = util.new_rs_new_replicas(d, old_rss + [new_rs], new_rs)
    rs_spec["replicas"] = new_replicas
    util.set_new_replica_set_annotations(d, new_rs, new_revision, False)

    already_exists = False
    try:
        created = await dc.client.create(RS, ns, new_rs)
    except ApiError as e:
        if e.code == 409 and e.reason == "AlreadyExists":
            already_exists = True
            rs = dc.replicasets.get(f"{ns}/{name}")
            if rs is None:
                # Our own create from a moment ago that the watch has not delivered yet.
                rs = await dc.client.get(RS, ns, name)
            ref = next((r for r in util.meta(rs).get("ownerReferences") or () if r.get("controller")), None)
            if ref is not None and ref.get("uid") == util.meta(d).get("uid") and \
                    util.equal_ignore_hash(spec.get("template"), (rs.get("spec") or {}).get("template")):
                created = rs
            else:
                # A different template hashed to the same name: count the collision (it goes
                # into the next hash) and try again.
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                try:
                    await dc.update_status(d)
                    log.info("deployment %s/%s: hash collision on %s, collisionCount now %d",
                             ns, util.meta(d)["name"], name, status["collisionCount"])
                except ApiError:
                    pass
                raise
        elif any(c.get("reason") == "NamespaceTerminating" for c in ((e.details or {}).get("causes") or ())):
            raise
        else:
            msg = f'Failed to create new replica set "{name}": {e.message}'
            if util.has_progress_deadline(d):
                util.set_condition(status, util.new_condition(util.PROGRESSING, "False", util.FAILED_RS_CREATE,
                                                              msg, dc.clock.rfc3339()))
                try:
                    await dc.update_status(d)
                except ApiError:
                    pass
            dc.event(d, "Warning", util.FAILED_RS_CREATE, msg)
            raise
    _replace(rs_list, created)
    if not already_exists and new_replicas > 0:
        dc.event(d, "Normal", "ScalingReplicaSet",
                 f"Scaled up replica set {util.meta(created)['name']} from 0 to {new_replicas}")
    needs_update = util.set_deployment_revision(d, new_revision)
    if not already_exists and util.has_progress_deadline(d):
        msg = f'Created new replica set "{util.meta(created)["name"]}"'
        util.set_condition(status, util.new_condition(util.PROGRESSING, "True", util.NEW_REPLICASET, msg,
                                                      dc.clock.rfc3339()))
        needs_update = True
    if needs_update:
        await dc.update_status(d)
    return created


async def scale(dc: "DeploymentController", d: dict, new_rs: dict | None, old_rss: list[dict]) -> None:
    """Resize for a scaling event: all to the one active ReplicaSet, old ones to zero when the new
    one is saturated, otherwise proportionally to each ReplicaSet's size (rolling updates)."""
    want = util.spec_replicas(d)
    target = util.find_active_or_latest(new_rs, old_rss)
    if target is not None:
        if util.spec_replicas(target) == want:
            return
        await scale_replica_set_and_record_event(dc, target, want, d)
        return
    if util.is_saturated(d, new_rs):
        for old in util.active(old_rss):
            await scale_replica_set_and_record_event(dc, old, 0, d)
        return
    if not util.is_rolling_update(d):
        return
    all_rss = util.active(old_rss + [new_rs])
    allowed = want + util.max_surge(d) if want > 0 else 0
    to_add = allowed - util.replica_count(all_rss)
    operation = ""
    if to_add > 0:
        all_rss = util.sort_by_size_newer(all_rss)
        operation = "up"
    elif to_add < 0:
        all_rss = util.sort_by_size_older(all_rss)
        operation = "down"
    added = 0
    sizes: dict[str, int] = {}
    for rs in all_rss:
        name = util.meta(rs)["name"]
        if to_add != 0:
            p = util.proportion(rs, d, to_add, added)
            sizes[name] = util.spec_replicas(rs) + p
            added += p
        else:
            sizes[name] = util.spec_replicas(rs)
    for i, rs in enumerate(all_rss):
        name = util.meta(rs)["name"]
        if i == 0 and to_add != 0:
            # Rounding leftovers go to the largest ReplicaSet.
            sizes[name] = max(0, sizes[name] + to_add - added)
        await scale_replica_set(dc, rs, sizes[name], d, operation)


async def scale_replica_set_and_record_event(dc: "DeploymentController", rs: dict, new_scale: int,
                                             d: dict) -> tuple[bool, dict]:
    if util.spec_replicas(rs) == new_scale:
        return False, rs
    operation = "up" if util.spec_replicas(rs) < new_scale else "down"
    return await scale_replica_set(dc, rs, new_scale, d, operation)


async def scale_replica_set(dc: "DeploymentController", rs: dict, new_scale: int, d: dict,
                            operation: str) -> tuple[bool, dict]:
    """Set spec.replicas and the desired/max annotations in one write; an event if it resized."""
    size_changed = util.spec_replicas(rs) != new_scale
    want = util.spec_replicas(d)
    max_replicas = want + util.max_surge(d)
    if not size_changed and not util.replicas_annotations_need_update(rs, want, max_replicas):
        return False, rs
    old_scale = util.spec_replicas(rs)
    rs_copy = util.copy(rs)
    rs_copy.setdefault("spec", {})["replicas"] = new_scale
    util.set_replicas_annotations(rs_copy, want, max_replicas)
    written = await dc.client.update(RS, util.meta(rs_copy).get("namespace"), rs_copy)
    scaled = False
    if size_changed:
        name = util.meta(written)["name"]
        if operation == "up":
            msg = f"Scaled up replica set {name} from {old_scale} to {new_scale}"
        elif operation == "down":
            msg = f"Scaled down replica set {name} from {old_scale} to {new_scale}"
        else:
            msg = f"Scaled replica set {name} from {old_scale} to {new_scale}"
        dc.event(d, "Normal", "ScalingReplicaSet", msg)
        scaled = True
    return scaled, written


async def cleanup_deployment(dc: "DeploymentController", old_rss: list[dict], d: dict) -> None:
    """Delete the oldest empty ReplicaSets beyond spec.revisionHistoryLimit."""
    if not util.has_revision_history_limit(d):
        return
    cleanable = [rs for rs in old_rss if rs is not None and not util.meta(rs).get("deletionTimestamp")]
    diff = len(cleanable) - int(d["spec"]["revisionHistoryLimit"])
    if diff <= 0:
        return
    for rs in util.sort_by_revision(cleanable)[:diff]:
        # Only ReplicaSets that are empty and whose emptiness their controller has confirmed.
        if util.status_int(rs, "replicas") != 0 or util.spec_replicas(rs) != 0 or \
                util.generation(rs) > util.status_int(rs, "observedGeneration"):
            continue
        m = util.meta(rs)
        try:
            await dc.client.delete(RS, m.get("namespace"), m["name"])
        except ApiError as e:
            if e.code != 404:
                raise


def calculate_status(dc: "DeploymentController", all_rss: list[dict | None], new_rs: dict | None, d: dict) -> dict:
    """The status the ReplicaSets add up to, with the Available condition brought up to date."""
    available = util.available_replica_count(all_rss)
    unavailable = max(0, util.replica_count(all_rss) - available)
    old = d.get("status") or {}
    status: dict = {
        "observedGeneration": util.generation(d),
        "replicas": util.actual_replica_count(all_rss),
        "updatedReplicas": util.actual_replica_count([new_rs]),
        "readyReplicas": util.ready_replica_count(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    terminating = util.terminating_replica_count(all_rss)
    if terminating is not None:
        status["terminatingReplicas"] = terminating
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    status["conditions"] = [dict(c) for c in old.get("conditions") or []]
    now = dc.clock.rfc3339()
    if available >= util.spec_replicas(d) - util.max_unavailable(d):
        util.set_condition(status, util.new_condition(util.AVAILABLE, "True", util.MIN_REPLICAS_AVAILABLE,
                                                      "Deployment has minimum availability.", now))
    else:
        util.set_condition(status, util.new_condition(util.AVAILABLE, "False", util.MIN_REPLICAS_UNAVAILABLE,
                                                      "Deployment does not have minimum availability.", now))
    return util.normalized_status(status)


async def sync_deployment_status(dc: "DeploymentController", all_rss: list[dict | None], new_rs: dict | None,
                                 d: dict) -> None:
    new_status = calculate_status(dc, all_rss, new_rs, d)
    if util.normalized_status(d.get("status")) == new_status:
        return
    d["status"] = new_status
    await dc.update_status(d)


async def is_scaling_event(dc: "DeploymentController", d: dict, rs_list: list[dict]) -> bool:
    """Did only spec.replicas change? Active ReplicaSets remember the size they were made for."""
    new_rs, old_rss = await get_all_replica_sets_and_sync_revision(dc, d, rs_list, False)
    for rs in util.active(old_rss + [new_rs]):
        desired = util.desired_replicas_annotation(rs)
        if desired is not None and desired != util.spec_replicas(d):
            return True
    return False
