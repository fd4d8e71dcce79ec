"""Server-side rollback: the `deprecated.deployment.rollback.to` annotation.

Why it exists: apps/v1 has no `spec.rollbackTo`; `kubectl rollout undo` rolls back on its own by
patching the template of the chosen revision into the Deployment. Older API versions
(extensions/v1beta1, apps/v1beta1) asked the controller to do it, and that request survives as
an annotation that clients (or old manifests) can still set. Upstream
(`pkg/controller/deployment/rollback.go`) keeps honouring it, and so do we: revision 0 means
the previous one; the Deployment takes that ReplicaSet's template (without its hash label) and
annotations, the annotation is removed, and an event says what happened
(DeploymentRollback, DeploymentRollbackRevisionNotFound, DeploymentRollbackTemplateUnchanged).
The next sync then rolls out the restored template like any other change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import util
from .sync import get_all_replica_sets_and_sync_revision

if TYPE_CHECKING:
    from .controller import DeploymentController


def get_rollback_to(d: dict) -> int | None:
    v = util.annotations(d).get(util.ROLLBACK_TO)
    if not v:
        return None
    try:
        return int(v)
    except ValueError:
        return None  # an invalid request is ignored, as upstream


async def rollback(dc: "DeploymentController", d: dict, rs_list: list[dict]) -> None:
    new_rs, old_rss = await get_all_replica_sets_and_sync_revision(dc, d, rs_list, True)
    all_rss = old_rss + [new_rs]
    to = get_rollback_to(d) or 0
    if to == 0:
        to = util.last_revision(all_rss)
        if to == 0:
            dc.event(d, "Warning", util.ROLLBACK_REVISION_NOT_FOUND, "Unable to find last revision.")
            await update_deployment_and_clear_rollback_to(dc, d)
            return
    for rs in all_rss:
        if rs is not None and util.revision(rs) == to:
            if await rollback_to_template(dc, d, rs):
                dc.event(d, "Normal", util.ROLLBACK_DONE,
                         f'Rolled back deployment "{util.meta(d)["name"]}" to revision {to}')
            return
    dc.event(d, "Warning", util.ROLLBACK_REVISION_NOT_FOUND, "Unable to find the revision to rollback to.")
    await update_deployment_and_clear_rollback_to(dc, d)


async def rollback_to_template(dc: "DeploymentController", d: dict, rs: dict) -> bool:
    performed = False
    rs_template = (rs.get("spec") or {}).get("template") or {}
    if not util.equal_ignore_hash(d["spec"].get("template"), rs_template):
        template = util.copy(rs_template)
        labels = (template.get("metadata") or {}).get("labels")
        if labels is not None:
            labels.pop(util.POD_TEMPLATE_HASH, None)
        d["spec"]["template"] = template
        # The target's change-cause (and other annotations) come back with its template, so the
        # ReplicaSet does not inherit the annotations of the version being undone.
        util.set_deployment_annotations_to(d, rs)
        performed = True
    else:
        dc.event(d, "Warning", util.ROLLBACK_TEMPLATE_UNCHANGED,
                 f'The rollback revision contains the same template as current deployment "{util.meta(d)["name"]}"')
    await update_deployment_and_clear_rollback_to(dc, d)
    return performed


async def update_deployment_and_clear_rollback_to(dc: "DeploymentController", d: dict) -> None:
    d.setdefault("metadata", {}).setdefault("annotations", {}).pop(util.ROLLBACK_TO, None)
    await dc.client.update("deployments.apps", util.meta(d).get("namespace"), d)
