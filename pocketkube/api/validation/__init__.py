"""Validation of objects on every write, as kube-apiserver's per-kind strategies do it.

`validate(resource, obj, old)` runs the create rules when `old` is None and the update rules
otherwise; `validate_status_update` runs the status-subresource rules. Each kind's rules live
in a module per API group (core, storage, apps, batch, events, other) built from shared
pieces (meta, podspec, containers, volumes); this module only dispatches. The returned
`FieldError`s print exactly as upstream's field.Error, in upstream's order, so the caller can
turn them into the 422 Invalid Status kubectl shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from pocketkube.api.errors import FieldError

from . import apps, batch, core, events, other, storage
from .common import dict_of
from .meta import validate_object_meta_update

if TYPE_CHECKING:
    from pocketkube.api.resources import Resource

Validator = Callable[[dict, "dict | None"], list[FieldError]]
StatusValidator = Callable[[dict, dict], list[FieldError]]

_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): core.validate_pod,
    ("", "Service"): core.validate_service,
    ("", "Namespace"): core.validate_namespace,
    ("", "Node"): core.validate_node,
    ("", "ConfigMap"): core.validate_config_map,
    ("", "Secret"): core.validate_secret,
    ("", "ServiceAccount"): core.validate_service_account,
    ("", "PersistentVolume"): storage.validate_pv,
    ("", "PersistentVolumeClaim"): storage.validate_pvc,
    ("", "Event"): lambda obj, old: events.validate_event(obj, old, False),
    ("events.k8s.io", "Event"): lambda obj, old: events.validate_event(obj, old, True),
    ("apps", "Deployment"): apps.validate_deployment,
    ("apps", "ReplicaSet"): apps.validate_replicaset,
    ("apps", "StatefulSet"): apps.validate_statefulset,
    ("apps", "DaemonSet"): apps.validate_daemonset,
    ("apps", "ControllerRevision"): apps.validate_controller_revision,
    ("batch", "Job"): batch.validate_job,
    ("batch", "CronJob"): batch.validate_cronjob,
    ("coordination.k8s.io", "Lease"): other.validate_lease,
    ("storage.k8s.io", "StorageClass"): storage.validate_storage_class,
}

_STATUS_VALIDATORS: dict[tuple[str, str], StatusValidator] = {
    ("", "Pod"): core.validate_pod_status,
    ("", "Service"): core.validate_service_status,
    ("", "Namespace"): core.validate_namespace_status,
    ("", "PersistentVolume"): storage.validate_pv_status,
    ("", "PersistentVolumeClaim"): storage.validate_pvc_status,
    ("", "Node"): lambda obj, old: core.validate_node(obj, old),
    ("apps", "Deployment"): apps.validate_deployment_status,
    ("apps", "ReplicaSet"): apps.validate_replicaset_status,
    ("apps", "StatefulSet"): apps.validate_statefulset_status,
    ("apps", "DaemonSet"): apps.validate_daemonset_status,
    ("batch", "Job"): batch.validate_job_status,
    ("batch", "CronJob"): batch.validate_cronjob_status,
}


def validate(resource: "Resource", obj: dict, old: dict | None = None) -> list[FieldError]:
    """Create (old is None) or update validation of `obj` for its kind."""
    fn = _VALIDATORS.get((resource.group, resource.kind))
    if fn is None:
        return []
    return fn(obj, old)


def validate_status_update(resource: "Resource", obj: dict, old: dict) -> list[FieldError]:
    """Validation of a write to the status subresource."""
    fn = _STATUS_VALIDATORS.get((resource.group, resource.kind))
    if fn is None:
        # Node status (and kinds without status rules) only has metadata rules upstream.
        return validate_object_meta_update(
            dict_of(obj.get("metadata")), dict_of(old.get("metadata"))
        )
    return fn(obj, old)


def validate_namespace_finalize(obj: dict, old: dict) -> list[FieldError]:
    """The namespaces/finalize subresource."""
    return core.validate_namespace_finalize(obj, old)


__all__ = ["validate", "validate_status_update", "validate_namespace_finalize"]
