"""The kinds pocketkube serves, as one table that discovery, routing and storage read.

A Kubernetes resource is named several ways (kind, plural, singular, short names, categories)
and has subresources with their own response kinds. Keeping all of that in one registry means
discovery documents, URL routing, store keys and error messages can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Subresource:
    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = tuple(ALL_VERBS)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def key_prefix(self) -> str:
        """Store key prefix for every object of this resource (ends with '/')."""
        g = self.group or "core"
        return f"/{g}/{self.plural}/"

    def key(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"{self.key_prefix}{namespace}/{name}"
        return f"{self.key_prefix}{name}"

    def list_prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.key_prefix}{namespace}/"
        return self.key_prefix

    def subresource(self, name: str) -> Subresource | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None


def _status(group: str, version: str, kind: str) -> Subresource:
    return Subresource("status", group, version, kind, ("get", "patch", "update"))


def _scale() -> Subresource:
    return Subresource("scale", "autoscaling", "v1", "Scale", ("get", "patch", "update"))


def _r(group: str, version: str, kind: str, plural: str, namespaced: bool = True, short=(),
       categories=(), status: bool = True, scale: bool = False, extra=(), verbs=None) -> Resource:
    subs = []
    if status:
        subs.append(_status(group, version, kind))
    if scale:
        subs.append(_scale())
    subs.extend(extra)
    return Resource(group, version, kind, plural, kind.lower(), namespaced, tuple(short),
                    tuple(categories), tuple(subs), tuple(verbs or ALL_VERBS))


RESOURCES: list[Resource] = [
    # core/v1
    _r("", "v1", "Namespace", "namespaces", namespaced=False, short=["ns"],
       verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
       extra=[Subresource("finalize", "", "v1", "Namespace", ("update",))]),
    _r("", "v1", "Pod", "pods", short=["po"], categories=["all"], extra=[
        Subresource("binding", "", "v1", "Binding", ("create",)),
        Subresource("log", "", "v1", "Pod", ("get",)),
    ]),
    _r("", "v1", "Node", "nodes", namespaced=False, short=["no"]),
    _r("", "v1", "Event", "events", short=["ev"], status=False),
    _r("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False, short=["pv"]),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=["pvc"]),
    _r("", "v1", "ConfigMap", "configmaps", short=["cm"], status=False),
    _r("", "v1", "Secret", "secrets", status=False),
    _r("", "v1", "Service", "services", short=["svc"], categories=["all"]),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short=["sa"], status=False),
    # apps/v1
    _r("apps", "v1", "Deployment", "deployments", short=["deploy"], categories=["all"], scale=True),
    _r("apps", "v1", "ReplicaSet", "replicasets", short=["rs"], categories=["all"], scale=True),
    _r("apps", "v1", "StatefulSet", "statefulsets", short=["sts"], categories=["all"], scale=True),
    _r("apps", "v1", "DaemonSet", "daemonsets", short=["ds"], categories=["all"]),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions", status=False),
    # batch/v1
    _r("batch", "v1", "Job", "jobs", categories=["all"]),
    _r("batch", "v1", "CronJob", "cronjobs", short=["cj"], categories=["all"]),
    # coordination.k8s.io/v1
    _r("coordination.k8s.io", "v1", "Lease", "leases", status=False),
    # storage.k8s.io/v1
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short=["sc"],
       status=False),
    # events.k8s.io/v1
    _r("events.k8s.io", "v1", "Event", "events", short=["ev"], status=False),
]

# Order in which groups are advertised (the first group wins a short-name clash, as "ev" does).
GROUP_ORDER = ["", "apps", "events.k8s.io", "batch", "coordination.k8s.io", "storage.k8s.io"]

_BY_PATH: dict[tuple[str, str, str], Resource] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
_BY_KIND: dict[tuple[str, str], Resource] = {}
for _res in RESOURCES:
    _BY_KIND.setdefault((_res.api_version, _res.kind), _res)


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Resource | None:
    return _BY_KIND.get((api_version, kind))


def group_versions() -> list[tuple[str, str]]:
    """(group, version) pairs in advertised order."""
    seen: list[tuple[str, str]] = []
    for g in GROUP_ORDER:
        for r in RESOURCES:
            if r.group == g and (g, r.version) not in seen:
                seen.append((g, r.version))
    return seen


def resources_in(group: str, version: str) -> list[Resource]:
    return [r for r in RESOURCES if r.group == group and r.version == version]
