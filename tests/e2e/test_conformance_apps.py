"""Deployment, ReplicaSet and garbage-collector conformance behaviours through the official
Python client, as upstream's test/e2e/apps/{deployment,replica_set}.go and
test/e2e/apimachinery/garbage_collector.go drive them (ReplicaSets stand in for
ReplicationControllers, which pocketkube does not serve).

Most run against the shared server with three simulated nodes; "serve a basic image on each
replica" runs real processes on the local node and asks every pod over HTTP for its name.
The in-process controller tests (tests/unit/test_deployment.py, test_replicaset.py,
test_garbagecollector.py) cover the same behaviours step by step with a FakeClock.
"""

from __future__ import annotations

import urllib.request

import pytest
from kubernetes import client

from tests.conftest import create_namespace, wait_until
from tests.e2e.conformance import NOWHERE, REVISION, active_pods, deployment_body, owned_rs, rs_body

def test_replicaset_list_and_delete_collection(sim_cluster):
    ns = create_namespace(sim_cluster, "conf-")
    with sim_cluster.client() as api:
        apps = client.AppsV1Api(api)
        for name in ("test-rs-a", "test-rs-b"):
            apps.create_namespaced_replica_set(ns, rs_body(name, 1, {"app": name, "e2e": "collection"}))
        listed = apps.list_namespaced_replica_set(ns, label_selector="e2e=collection").items
        assert sorted(r.metadata.name for r in listed) == ["test-rs-a", "test-rs-b"]
        listed_all = apps.list_replica_set_for_all_namespaces(label_selector="e2e=collection").items
        assert {r.metadata.name for r in listed_all} >= {"test-rs-a", "test-rs-b"}
        apps.delete_collection_namespaced_replica_set(ns, label_selector="e2e=collection")
        wait_until(lambda: not apps.list_namespaced_replica_set(ns, label_selector="e2e=collection").items,
                   20, message="ReplicaSets deleted")
        core = client.CoreV1Api(api)
        wait_until(lambda: not active_pods(core, ns, "e2e=collection"), 20, message="their pods deleted")


def test_rolling_update_deployment_adopts_a_replica_set_and_replaces_its_pods(sim_cluster):
    """upstream testRollingUpdateDeployment: the old ReplicaSet's revision is carried on."""
    ns = create_namespace(sim_cluster, "conf-")
    labels = {"name": "sample-pod"}
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_replica_set(ns, rs_body("test-rolling-update-controller", 1, dict(labels, pod="httpd"),
                                                       {REVISION: "3546343826724305832"}, image="httpd:2.4"))
        wait_until(lambda: len(active_pods(core, ns, "pod=httpd")) == 1, 20, message="old pod")
        apps.create_namespaced_deployment(ns, deployment_body("test-rolling-update-deployment", 1, labels))

        def done():
            d = apps.read_namespaced_deployment("test-rolling-update-deployment", ns)
            return (d.status.updated_replicas == 1 and d.status.available_replicas == 1
                    and (d.status.replicas or 0) == 1 and d.status.observed_generation == d.metadata.generation)
        wait_until(done, 30, message="rollout complete")
        d = apps.read_namespaced_deployment("test-rolling-update-deployment", ns)
        assert d.metadata.annotations[REVISION] == "3546343826724305833"
        rss = {r.metadata.name: r for r in owned_rs(apps, ns, "test-rolling-update-deployment")}
        old = rss.pop("test-rolling-update-controller")
        assert old.spec.replicas == 0
        (new,) = rss.values()
        assert new.metadata.annotations[REVISION] == "3546343826724305833"
        assert new.metadata.name == "test-rolling-update-deployment-" + new.metadata.labels["pod-template-hash"]
        wait_until(lambda: not active_pods(core, ns, "pod=httpd"), 20, message="old pods gone")


def test_deployment_proportional_scaling(sim_cluster):
    """upstream testProportionalScalingDeployment: 10 replicas, maxSurge 3, maxUnavailable 2; a
    rollout stuck on pods that never become available; scaled to 30 mid-rollout."""
    ns = create_namespace(sim_cluster, "conf-")
    labels = {"name": "webserver"}
    with sim_cluster.client() as api:
        apps = client.AppsV1Api(api)
        body = deployment_body("webserver-deployment", 10, labels, strategy={
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}})
        apps.create_namespaced_deployment(ns, body)
        wait_until(lambda: apps.read_namespaced_deployment("webserver-deployment", ns).status.available_replicas == 10,
                   30, message="10 available")
        apps.patch_namespaced_deployment("webserver-deployment", ns, {"spec": {"template": {"spec": {
            "nodeSelector": NOWHERE, "containers": [{"name": "c", "image": "webserver:404"}]}}}})

        def sizes():
            rss = sorted(owned_rs(apps, ns, "webserver-deployment"), key=lambda r: int(r.metadata.annotations[REVISION]))
            return [r.spec.replicas for r in rss]
        # maxUnavailable 2 lets the old ReplicaSet go to 8; maxSurge 3 lets the new one reach 5.
        wait_until(lambda: sizes() == [8, 5], 30, message="rollout stuck at 8 + 5")
        apps.patch_namespaced_deployment_scale("webserver-deployment", ns, {"spec": {"replicas": 30}})
        # 33 allowed, 13 new: the 20 more are split 8:5 in proportion -> 20 and 13.
        wait_until(lambda: sizes() == [20, 13], 30, message="proportionally scaled to 20 + 13")


def test_gc_orphan_background_and_foreground(sim_cluster):
    ns = create_namespace(sim_cluster, "gc-")
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)

        # Orphan: the ReplicaSet stays, without the Deployment's reference.
        apps.create_namespaced_deployment(ns, deployment_body("orphaned", 2, {"app": "orphaned"}))
        wait_until(lambda: len(active_pods(core, ns, "app=orphaned")) == 2, 20, message="orphaned pods")
        (rs,) = owned_rs(apps, ns, "orphaned")
        apps.delete_namespaced_deployment("orphaned", ns, body=client.V1DeleteOptions(propagation_policy="Orphan"))
        wait_until(lambda: not apps.list_namespaced_deployment(ns, field_selector="metadata.name=orphaned").items,
                   20, message="Deployment deleted")
        wait_until(lambda: not apps.read_namespaced_replica_set(rs.metadata.name, ns).metadata.owner_references,
                   20, message="ReplicaSet orphaned")
        assert len(active_pods(core, ns, "app=orphaned")) == 2

        # Background: the ReplicaSet and its pods go after the Deployment.
        apps.create_namespaced_deployment(ns, deployment_body("cascaded", 2, {"app": "cascaded"}))
        wait_until(lambda: len(active_pods(core, ns, "app=cascaded")) == 2, 20, message="cascaded pods")
        apps.delete_namespaced_deployment("cascaded", ns, body=client.V1DeleteOptions(propagation_policy="Background"))
        wait_until(lambda: not owned_rs(apps, ns, "cascaded") and not active_pods(core, ns, "app=cascaded"),
                   20, message="ReplicaSet and pods collected")

        # Foreground: the owner stays, with the foregroundDeletion finalizer, until its pods are gone.
        apps.create_namespaced_replica_set(ns, rs_body("held", 2, {"app": "held"}))
        wait_until(lambda: len(active_pods(core, ns, "app=held")) == 2, 20, message="held pods")
        for p in active_pods(core, ns, "app=held"):
            core.patch_namespaced_pod(p.metadata.name, ns, {"metadata": {"finalizers": ["example.com/hold"]}})
        apps.delete_namespaced_replica_set("held", ns, body=client.V1DeleteOptions(propagation_policy="Foreground"))

        def pods_terminating():
            pods = core.list_namespaced_pod(ns, label_selector="app=held").items
            return len(pods) == 2 and all(p.metadata.deletion_timestamp for p in pods)
        wait_until(pods_terminating, 20, message="pods deleted in the foreground")
        rs = apps.read_namespaced_replica_set("held", ns)
        assert rs.metadata.deletion_timestamp and "foregroundDeletion" in rs.metadata.finalizers
        for p in core.list_namespaced_pod(ns, label_selector="app=held").items:
            core.patch_namespaced_pod(p.metadata.name, ns, {"metadata": {"finalizers": None}})
        wait_until(lambda: not apps.list_namespaced_replica_set(ns, field_selector="metadata.name=held").items,
                   20, message="owner deleted after its pods")


def test_replicaset_serves_a_basic_image_on_each_replica(cluster):
    """upstream testReplicaSetServeImageOrFail: every replica answers with its own pod name.
    Real processes: each pod runs a small HTTP server on its pod IP and says its hostname."""
    ns = create_namespace(cluster, "conf-")
    serve = ("mkdir -p /tmp/www && hostname > /tmp/www/index.html && cd /tmp/www && "
             "exec python3 -m http.server 9376")
    body = rs_body("my-hostname-basic", 2, {"name": "my-hostname-basic"}, image="python",
                   terminationGracePeriodSeconds=1)
    body["spec"]["template"]["spec"]["containers"][0].update(
        {"command": ["sh", "-c", serve], "ports": [{"containerPort": 9376}],
         "volumeMounts": [{"name": "www", "mountPath": "/tmp/www"}]})
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "www", "emptyDir": {}}]
    with cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_replica_set(ns, body)

        def running():
            pods = active_pods(core, ns, "name=my-hostname-basic")
            ok = [p for p in pods if p.status.phase == "Running" and p.status.pod_ip]
            return ok if len(ok) == 2 else None
        pods = wait_until(running, 60, message="2 replicas Running")
        if any(e.reason == "IsolationDisabled" for e in core.list_namespaced_event(ns).items):
            pytest.skip("pods are not isolated here (not root on Linux): two replicas cannot both own port 9376")

        def answers(pod) -> bool:
            try:
                with urllib.request.urlopen(f"http://{pod.status.pod_ip}:9376/", timeout=2) as r:
                    return r.read().decode().strip() == pod.metadata.name
            except OSError:
                return False
        for pod in pods:
            wait_until(lambda: answers(pod), 30, message=f"{pod.metadata.name} answering with its name")
        apps.delete_namespaced_replica_set("my-hostname-basic", ns)
        wait_until(lambda: not core.list_namespaced_pod(ns, label_selector="name=my-hostname-basic").items,
                   30, message="replicas stopped")
