"""Helpers shared by the conformance test files: the object bodies upstream's e2e tests build
(test/e2e/framework/{deployment,replicaset}) and the reads they repeat, through the official
Python client."""

from __future__ import annotations

REVISION = "deployment.kubernetes.io/revision"
NOWHERE = {"pocketkube.dev/no-such-node": "true"}   # pods that can never become available


def template(labels: dict, image: str = "nginx:1.14", **spec) -> dict:
    return {"metadata": {"labels": dict(labels)},
            "spec": {"containers": [{"name": "c", "image": image}], **spec}}


def rs_body(name: str, replicas: int, labels: dict, annotations: dict | None = None, **tspec) -> dict:
    meta = {"name": name, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": template(labels, **tspec)}}


def deployment_body(name: str, replicas: int, labels: dict, **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": template(labels), **spec}}


def owned_rs(apps, ns: str, deployment: str) -> list:
    items = apps.list_namespaced_replica_set(ns).items
    return [r for r in items if any(o.name == deployment and o.controller for o in r.metadata.owner_references or [])]


def active_pods(core, ns: str, selector: str) -> list:
    return [p for p in core.list_namespaced_pod(ns, label_selector=selector).items
            if p.metadata.deletion_timestamp is None]
