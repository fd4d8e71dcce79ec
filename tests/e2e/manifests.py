"""Minimal valid objects of every kind pocketkube serves, for CRUD tests."""

from __future__ import annotations

POD_TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
}


def objects_of_every_kind(name: str = "sample") -> list[dict]:
    """(namespaced objects first, then cluster-scoped ones with unique names)."""
    sel = {"matchLabels": {"app": "web"}}
    return [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
         "spec": POD_TEMPLATE["spec"]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "v"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
         "involvedObject": {"kind": "Pod", "name": name, "apiVersion": "v1"},
         "reason": "Testing", "message": "hello", "type": "Normal"},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"replicas": 2, "selector": sel, "template": POD_TEMPLATE}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
         "spec": {"replicas": 2, "selector": sel, "template": POD_TEMPLATE}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
         "spec": {"replicas": 2, "serviceName": name, "selector": sel, "template": POD_TEMPLATE}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
         "spec": {"selector": sel, "template": POD_TEMPLATE}},
        {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": name},
         "revision": 1, "data": {"spec": {"template": {"$patch": "replace"}}}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
         "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": POD_TEMPLATE["spec"]["containers"]}}}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
         "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
             "restartPolicy": "OnFailure", "containers": POD_TEMPLATE["spec"]["containers"]}}}}}},
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
         "spec": {"holderIdentity": "me", "leaseDurationSeconds": 40}},
        {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name + "-new"},
         "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "test/ctl",
         "reportingInstance": "test-1", "action": "Testing", "reason": "Testing", "type": "Normal",
         "regarding": {"kind": "Pod", "name": name}},
    ]


def cluster_objects(suffix: str) -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{suffix}", "labels": {"t": suffix}}},
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"pv-{suffix}"},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                  "hostPath": {"path": f"/tmp/pv-{suffix}"}}},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": f"sc-{suffix}"},
         "provisioner": "example.com/none"},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{suffix}"}},
    ]
