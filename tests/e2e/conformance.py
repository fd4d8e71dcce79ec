"""Helpers shared by the conformance test files: the object bodies upstream's e2e tests build
(test/e2e/framework/{deployment,replicaset}), the reads they repeat and their resumable watch
(watchtools.Until), through the official Python client."""

from __future__ import annotations

import time

from kubernetes import watch

REVISION = "deployment.kubernetes.io/revision"
TIMEOUT = 30   # seconds; ample for the simulated cluster on a loaded machine
# The images upstream's tests name (only strings here: simulated nodes run nothing).
WEBSERVER_NAME, WEBSERVER_IMAGE = "httpd", "registry.k8s.io/e2e-test-images/httpd:2.4.38-4"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
HOLD = "pocketkube.dev/conformance-hold"   # a finalizer of the tests' own, to keep objects in view
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


class Events:
    """A watch that each step resumes where the previous one stopped (watchtools.Until).

    `until` streams from the last resourceVersion seen and returns the first event `pred`
    accepts; `pred` may also raise to fail on an event that must not happen. The stream is
    reopened from where it stopped if the server ends it early; the deadline is the test's.
    """

    def __init__(self, list_fn, resource_version: str, *args, **kwargs):
        self.list_fn, self.args, self.kwargs = list_fn, args, kwargs
        self.rv = resource_version
        self.seen: list[tuple[str, object]] = []

    def until(self, pred, timeout: float = TIMEOUT, message: str = "event"):
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            w = watch.Watch()
            stream = w.stream(self.list_fn, *self.args, resource_version=self.rv,
                              timeout_seconds=max(1, int(left)), _request_timeout=left + 5, **self.kwargs)
            try:
                for ev in stream:
                    obj = ev["object"]
                    self.rv = obj.metadata.resource_version
                    self.seen.append((ev["type"], obj))
                    if pred(ev["type"], obj):
                        return obj
            finally:
                stream.close()
        raise AssertionError(f"timed out after {timeout}s watching for {message}; saw "
                             f"{[(t, o.metadata.name, o.metadata.resource_version) for t, o in self.seen[-10:]]}")
