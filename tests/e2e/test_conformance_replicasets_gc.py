"""The ReplicaSet, garbage-collector and Namespace conformance behaviours, one test each.

Each test takes the steps of upstream's test/e2e/apps/replica_set.go,
test/e2e/apimachinery/garbage_collector.go or test/e2e/apimachinery/namespace.go through the
official Python client and asserts what upstream asserts. pocketkube does not serve
ReplicationControllers, so where upstream's garbage-collector tests use an RC a ReplicaSet
with the same pods stands in (each such test says so).

All but one run on the shared server with three simulated nodes, where a pod is Running as soon
as it is scheduled and nothing really runs; "serve a basic image on each replica" runs real
processes on the local node and asks every pod over HTTP for its name. Upstream's timeouts are
minutes (a real cluster, other tests in parallel); here every wait has a deadline of TIMEOUT,
ample for the simulated cluster on a loaded machine. Where upstream sleeps to see whether the
garbage collector wrongly deletes something, these tests instead wait until the collector has
caught up with a canary (`gc_caught_up`) and then look.

The in-process tests of the same controllers, step by step on a FakeClock, are
tests/unit/test_replicaset.py, test_garbagecollector.py and test_namespace_controller.py.
"""

from __future__ import annotations

import itertools
import urllib.request
import uuid

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from tests.conftest import create_namespace, wait_until
from tests.e2e.conformance import (HOLD, PAUSE_IMAGE, TIMEOUT, WEBSERVER_IMAGE, WEBSERVER_NAME, Events, active_pods,
                                   deployment_body, rs_body)

NGINX_IMAGE = "registry.k8s.io/e2e-test-images/nginx:1.14-4"
_labels = itertools.count(1)


# ---- what upstream's framework does ----------------------------------------------------------------

def new_rs(name: str, replicas: int, labels: dict, container: str, image: str) -> dict:
    """replica_set.go newRS: labels on the ReplicaSet, its selector and its pods; no grace period."""
    body = rs_body(name, replicas, labels, image=image, terminationGracePeriodSeconds=0)
    body["spec"]["template"]["spec"]["containers"][0]["name"] = container
    return body


def owner_rs(name: str, replicas: int, labels: dict) -> dict:
    """garbage_collector.go newOwnerRC, as a ReplicaSet: nginx pods with no grace period."""
    return new_rs(name, replicas, labels, "nginx", NGINX_IMAGE)


def uniq_label(key: str, value: str) -> dict:
    """getUniqLabel: a label no other test uses."""
    n = next(_labels)
    return {f"{key}-{n:05d}": f"{value}-{n:05d}"}


def selector_of(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def foreground(uid: str | None = None) -> client.V1DeleteOptions:
    return delete_options("Foreground", uid)


def background(uid: str | None = None) -> client.V1DeleteOptions:
    return delete_options("Background", uid)


def orphan(uid: str | None = None) -> client.V1DeleteOptions:
    return delete_options("Orphan", uid)


def delete_options(policy: str, uid: str | None) -> client.V1DeleteOptions:
    """getForegroundOptions() and friends, with the UID precondition upstream adds to each delete."""
    pre = client.V1Preconditions(uid=uid) if uid else None
    return client.V1DeleteOptions(propagation_policy=policy, preconditions=pre)


def estimate_maximum_pods(core: client.CoreV1Api, lo: int, hi: int) -> int:
    """estimateMaximumPods: half of what the ready nodes say they can hold, within [lo, hi]."""
    total = 0
    for node in core.list_node().items:
        if not any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
            continue
        pods = (node.status.allocatable or {}).get("pods")
        total += int(pods) if pods is not None else 10
    return max(lo, min(hi, total // 2))


def wait_pods_running(core: client.CoreV1Api, ns: str, selector: str, n: int) -> list:
    """e2epod.VerifyPodsRunning: `n` live pods match, all Running."""
    def running():
        pods = active_pods(core, ns, selector)
        return pods if len(pods) == n and all(p.status.phase == "Running" for p in pods) else None
    return wait_until(running, TIMEOUT, message=f"{n} pods {selector} Running")


def wait_for_replicas(apps: client.AppsV1Api, ns: str, name: str) -> object:
    """waitForReplicas: status.replicas reaches spec.replicas."""
    def done():
        rs = apps.read_namespaced_replica_set(name, ns)
        return rs if (rs.status.replicas or 0) == rs.spec.replicas else None
    return wait_until(done, TIMEOUT, message=f"ReplicaSet {name} status.replicas == spec.replicas")


def remaining(api: client.ApiClient, ns: str) -> dict[str, int]:
    """verifyRemainingObjects' counts: every object of the kind in the namespace, deleting or not."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    return {"Deployments": len(apps.list_namespaced_deployment(ns).items),
            "ReplicaSets": len(apps.list_namespaced_replica_set(ns).items),
            "Pods": len(core.list_namespaced_pod(ns).items)}


def gone(read) -> bool:
    """True once `read()` answers 404."""
    try:
        read()
    except ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def gc_caught_up(core: client.CoreV1Api, ns: str) -> None:
    """Wait until the garbage collector has caught up with every pod event before this call.

    Upstream sleeps 30 s to give a wrong deletion time to happen. Instead: create a canary pod
    owned by a ConfigMap, delete the ConfigMap, and wait for the collector to delete the pod. It
    can do so only once it has taken in the pod's creation, which its pod informer delivers after
    every earlier pod event, and worked its queue up to it; a deletion those earlier events called
    for would have been sent by then (as surely as after upstream's sleep, and in well under a
    second)."""
    name = "gc-canary-" + uuid.uuid4().hex[:6]
    owner = core.create_namespaced_config_map(ns, {"metadata": {"name": name}})
    core.create_namespaced_pod(ns, {
        "metadata": {"name": name, "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": owner.metadata.uid}]},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": PAUSE_IMAGE}]}})
    core.delete_namespaced_config_map(name, ns, body=background())
    wait_until(lambda: gone(lambda: core.read_namespaced_pod(name, ns)), TIMEOUT,
               message="the garbage collector to collect its canary pod")


def condition(obj, ctype: str):
    return next((c for c in obj.status.conditions or [] if c.type == ctype), None)


# ---- [sig-apps] ReplicaSet ---------------------------------------------------------------------------

def test_replicaset_should_serve_a_basic_image_on_each_replica(cluster):
    """[sig-apps] ReplicaSet should serve a basic image on each replica with a public image [Conformance]

    upstream testReplicaSetServeImageOrFail: every replica answers with its own pod name. Real
    processes on the local node: each pod runs a small HTTP server on its pod IP and says its
    hostname (upstream's serve-hostname image does the same); two replicas where upstream has one,
    so that "each" replica is asked."""
    ns = create_namespace(cluster, "conf-")
    name = "my-hostname-basic-" + uuid.uuid4().hex[:8]
    serve = ("mkdir -p /tmp/www && hostname > /tmp/www/index.html && cd /tmp/www && "
             "exec python3 -m http.server 9376")
    body = rs_body(name, 2, {"name": name}, image="python", terminationGracePeriodSeconds=1)
    body["spec"]["template"]["spec"]["containers"][0].update(
        {"name": "serve-hostname", "command": ["sh", "-c", serve], "ports": [{"containerPort": 9376}],
         "volumeMounts": [{"name": "www", "mountPath": "/tmp/www"}]})
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "www", "emptyDir": {}}]
    with cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_replica_set(ns, body)

        def isolation_disabled() -> bool:
            return any(e.reason == "IsolationDisabled" for e in core.list_namespaced_event(ns).items)

        def running():
            pods = active_pods(core, ns, f"name={name}")
            ok = [p for p in pods if p.status.phase == "Running" and p.status.pod_ip]
            return ok if len(ok) == 2 else None
        # Without isolation the second replica cannot bind the port and never runs: look for the
        # pods' IsolationDisabled event as well, so that case is reported as such, not as a timeout.
        wait_until(lambda: isolation_disabled() or running(), 60, message="2 replicas Running")
        if isolation_disabled():
            pytest.skip("pods are not isolated here (isolation needs root on Linux): the replicas share the "
                        "host's network and hostname, so they cannot each serve port 9376 with their own name")
        pods = wait_until(running, 60, message="2 replicas Running")
        assert all(p.metadata.name.startswith(name + "-") for p in pods)

        def answers(pod) -> bool:
            try:
                with urllib.request.urlopen(f"http://{pod.status.pod_ip}:9376/", timeout=2) as r:
                    return r.read().decode().strip() == pod.metadata.name
            except OSError:
                return False
        for pod in pods:
            wait_until(lambda: answers(pod), 30, message=f"{pod.metadata.name} answering with its name")
        apps.delete_namespaced_replica_set(name, ns)
        wait_until(lambda: not core.list_namespaced_pod(ns, label_selector=f"name={name}").items,
                   30, message="replicas stopped")


def test_replicaset_should_adopt_matching_pods_on_creation_and_release_no_longer_matching_pods(sim_cluster):
    """[sig-apps] ReplicaSet should adopt matching pods on creation and release no longer matching pods [Conformance]

    upstream testRSAdoptMatchingAndReleaseNotMatching: an ownerless pod is adopted by (or replaced
    for) a new ReplicaSet that selects it; relabelled, it is released."""
    ns = create_namespace(sim_cluster, "conf-")
    name = "pod-adoption-release"
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        core.create_namespaced_pod(ns, {"metadata": {"name": name, "labels": {"name": name}},
                                        "spec": {"containers": [{"name": name, "image": WEBSERVER_IMAGE}]}})
        wait_until(lambda: core.read_namespaced_pod(name, ns).status.phase == "Running", TIMEOUT,
                   message="the orphan pod Running")

        rs = apps.create_namespaced_replica_set(ns, new_rs(name, 1, {"name": name}, name, WEBSERVER_IMAGE))

        def adopted_or_deleted():
            try:
                pod = core.read_namespaced_pod(name, ns)
            except ApiException as e:
                if e.status == 404:
                    return "deleted"
                raise
            return "adopted" if any(o.controller and o.uid == rs.metadata.uid
                                    for o in pod.metadata.owner_references or []) else None
        wait_until(adopted_or_deleted, TIMEOUT, message="the orphan pod adopted (or deleted)")

        # e2epod.PodsCreated: the pods named after the ReplicaSet, as many as it asks for.
        def created():
            pods = [p for p in core.list_namespaced_pod(ns).items if p.metadata.name.startswith(name)
                    and p.metadata.deletion_timestamp is None]
            return pods if len(pods) == 1 else None
        (pod,) = wait_until(created, TIMEOUT, message="the ReplicaSet's one pod")

        def relabel():
            p = core.read_namespaced_pod(pod.metadata.name, ns)
            p.metadata.labels = {"name": "not-matching-name"}
            try:
                core.replace_namespaced_pod(p.metadata.name, ns, p)
            except ApiException as e:
                if e.status == 409:
                    return False
                raise
            return True
        wait_until(relabel, TIMEOUT, message="the pod relabelled")

        def released():
            p = core.read_namespaced_pod(pod.metadata.name, ns)
            return not any(o.controller and o.uid == rs.metadata.uid for o in p.metadata.owner_references or [])
        wait_until(released, TIMEOUT, message="the pod released")


def test_replicaset_should_have_a_working_scale_subresource(sim_cluster):
    """[sig-apps] ReplicaSet Replicaset should have a working scale subresource [Conformance]

    upstream testRSScaleSubresources: get, update and patch the scale subresource."""
    ns = create_namespace(sim_cluster, "conf-")
    labels = {"name": "sample-pod", "pod": WEBSERVER_NAME}
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_replica_set(ns, new_rs("test-rs", 1, labels, WEBSERVER_NAME, WEBSERVER_IMAGE))
        wait_pods_running(core, ns, "name=sample-pod", 1)
        # The scale's status is the ReplicaSet's; let the controller write it first.
        wait_for_replicas(apps, ns, "test-rs")

        scale = apps.read_namespaced_replica_set_scale("test-rs", ns)
        assert scale.spec.replicas == 1
        assert scale.status.replicas == 1

        scale.metadata.resource_version = ""   # an unconditional update
        scale.spec.replicas = 2
        result = apps.replace_namespaced_replica_set_scale("test-rs", ns, scale)
        assert result.spec.replicas == 2
        assert apps.read_namespaced_replica_set("test-rs", ns).spec.replicas == 2

        apps.patch_namespaced_replica_set_scale("test-rs", ns, {"spec": {"replicas": 4}})
        assert apps.read_namespaced_replica_set("test-rs", ns).spec.replicas == 4, \
            "replicaset should have 4 replicas"


def test_replicaset_replace_and_patch(sim_cluster):
    """[sig-apps] ReplicaSet Replace and Patch tests [Conformance]

    upstream testRSLifeCycle: scale by update, then a strategic merge patch of labels, replicas
    and template; a watch from before the creation must show the patched ReplicaSet with all
    three replicas ready and available."""
    ns = create_namespace(sim_cluster, "conf-")
    labels = {"name": "sample-pod", "pod": WEBSERVER_NAME}
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        listed = apps.list_replica_set_for_all_namespaces(label_selector="test-rs=patched")
        apps.create_namespaced_replica_set(ns, new_rs("test-rs", 1, labels, WEBSERVER_NAME, WEBSERVER_IMAGE))
        wait_pods_running(core, ns, "name=sample-pod", 1)

        # e2ereplicaset.UpdateReplicaSetWithRetries
        def scale_to_2():
            rs = apps.read_namespaced_replica_set("test-rs", ns)
            rs.spec.replicas = 2
            try:
                apps.replace_namespaced_replica_set("test-rs", ns, rs)
            except ApiException as e:
                if e.status == 409:
                    return False
                raise
            return True
        wait_until(scale_to_2, TIMEOUT, message="ReplicaSet scaled to 2")

        apps.patch_namespaced_replica_set("test-rs", ns, {
            "metadata": {"labels": {"test-rs": "patched"}},
            "spec": {"replicas": 3, "template": {"spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "test-rs", "image": PAUSE_IMAGE}]}}}})

        def patched_and_ready(_type, rs) -> bool:
            return (rs.metadata.name == "test-rs" and (rs.metadata.labels or {}).get("test-rs") == "patched"
                    and rs.status.ready_replicas == 3 and rs.status.available_replicas == 3
                    and rs.spec.template.spec.containers[0].image == PAUSE_IMAGE
                    and rs.spec.template.spec.termination_grace_period_seconds == 0)
        Events(apps.list_namespaced_replica_set, listed.metadata.resource_version, ns,
               label_selector="test-rs=patched").until(patched_and_ready,
                                                       message="the patched ReplicaSet with 3 replicas ready")


def test_replicaset_should_list_and_delete_a_collection(sim_cluster):
    """[sig-apps] ReplicaSet should list and delete a collection of ReplicaSets [Conformance]

    upstream listRSDeleteCollection."""
    ns = create_namespace(sim_cluster, "conf-")
    e2e = uuid.uuid4().hex[:5]
    labels = {"name": "sample-pod", "pod": WEBSERVER_NAME, "e2e": e2e}
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_replica_set(ns, new_rs("test-rs", 3, labels, WEBSERVER_NAME, WEBSERVER_IMAGE))
        wait_pods_running(core, ns, "name=sample-pod", 3)
        apps.read_namespaced_replica_set("test-rs", ns)

        listed = apps.list_replica_set_for_all_namespaces(label_selector=f"e2e={e2e}").items
        assert len(listed) == 1, "filtered list wasn't found"

        apps.delete_collection_namespaced_replica_set(ns, label_selector=f"e2e={e2e}", grace_period_seconds=1)
        listed = apps.list_replica_set_for_all_namespaces(label_selector=f"e2e={e2e}").items
        assert listed == [], "filtered list should have no replicas"
        # Not upstream's, but what deleting them means: their pods go too.
        wait_until(lambda: not active_pods(core, ns, "name=sample-pod"), TIMEOUT, message="their pods deleted")


def test_replicaset_should_validate_status_endpoints(sim_cluster):
    """[sig-apps] ReplicaSet should validate Replicaset Status endpoints [Conformance]

    upstream testRSStatus: read /status, update it with a new condition, patch it with another;
    a watch from before the creation must show each."""
    ns = create_namespace(sim_cluster, "conf-")
    labels = {"name": "sample-pod", "pod": WEBSERVER_NAME}
    selector = selector_of(labels)
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        listed = apps.list_replica_set_for_all_namespaces(label_selector=selector)
        created = apps.create_namespaced_replica_set(ns, new_rs("test-rs", 1, labels, WEBSERVER_NAME,
                                                                WEBSERVER_IMAGE))
        wait_pods_running(core, ns, "name=sample-pod", 1)

        rs_resource = dynamic.DynamicClient(api).resources.get(api_version="apps/v1", kind="ReplicaSet")
        got = rs_resource.status.get(name="test-rs", namespace=ns)
        assert got.kind == "ReplicaSet" and got.metadata.name == "test-rs" and got.status is not None

        def update_status():
            rs = apps.read_namespaced_replica_set("test-rs", ns)
            rs.status.conditions = (rs.status.conditions or []) + [client.V1ReplicaSetCondition(
                type="StatusUpdate", status="True", reason="E2E", message="Set from e2e test")]
            try:
                return apps.replace_namespaced_replica_set_status("test-rs", ns, rs)
            except ApiException as e:
                if e.status == 409:
                    return None
                raise
        updated = wait_until(update_status, TIMEOUT, message="status updated")
        assert condition(updated, "StatusUpdate").message == "Set from e2e test"

        def ours(rs) -> bool:
            return (rs.metadata.name == created.metadata.name and rs.metadata.namespace == ns
                    and rs.metadata.labels.get("name") == labels["name"]
                    and rs.metadata.labels.get("pod") == labels["pod"])

        def status_updated(_type, rs) -> bool:
            c = condition(rs, "StatusUpdate")
            return ours(rs) and c is not None and c.reason == "E2E" and c.message == "Set from e2e test"
        Events(apps.list_namespaced_replica_set, listed.metadata.resource_version, ns,
               label_selector=selector).until(status_updated, message="the updated status")

        patched = apps.patch_namespaced_replica_set_status(
            "test-rs", ns, {"status": {"conditions": [{"type": "StatusPatched", "status": "True"}]}},
            _content_type="application/merge-patch+json")
        assert condition(patched, "StatusPatched") is not None

        Events(apps.list_namespaced_replica_set, listed.metadata.resource_version, ns,
               label_selector=selector).until(lambda _t, rs: ours(rs) and condition(rs, "StatusPatched") is not None,
                                              message="the patched status")


# ---- [sig-api-machinery] Garbage collector -------------------------------------------------------------

def test_gc_should_delete_pods_created_by_rs_when_not_orphaning(sim_cluster):
    """[sig-api-machinery] Garbage collector should delete pods created by rc when not orphaning [Conformance]

    A ReplicaSet stands in for upstream's ReplicationController. Deleted (Background) as soon as
    it has some pods, before it settles: it and all its pods go."""
    ns = create_namespace(sim_cluster, "gc-")
    labels = uniq_label("gctest", "delete_pods")
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        rs = apps.create_namespaced_replica_set(ns, owner_rs("simpletest.rs", 2, labels))
        # Deliberately not waiting for both pods: the collector and the ReplicaSet controller
        # must get it right before the ReplicaSet settles.
        wait_until(lambda: core.list_namespaced_pod(ns).items, TIMEOUT, message="some pods")
        apps.delete_namespaced_replica_set("simpletest.rs", ns, body=background(rs.metadata.uid))
        want = {"Deployments": 0, "ReplicaSets": 0, "Pods": 0}
        wait_until(lambda: remaining(api, ns) == want, TIMEOUT, message=f"all pods garbage collected ({want})")


def test_gc_should_orphan_pods_created_by_rs_if_delete_options_say_so(sim_cluster):
    """[sig-api-machinery] Garbage collector should orphan pods created by rc if delete options say so [Conformance]

    A ReplicaSet stands in for upstream's ReplicationController: 10 to 100 replicas, deleted with
    propagationPolicy Orphan once all exist; its pods stay, without the reference."""
    ns = create_namespace(sim_cluster, "gc-")
    labels = uniq_label("gctest", "orphan_pods")
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        replicas = estimate_maximum_pods(core, 10, 100)
        rs = apps.create_namespaced_replica_set(ns, owner_rs("simpletest.rs", replicas, labels))
        wait_for_replicas(apps, ns, "simpletest.rs")
        apps.delete_namespaced_replica_set("simpletest.rs", ns, body=orphan(rs.metadata.uid))
        wait_until(lambda: not apps.list_namespaced_replica_set(ns).items, TIMEOUT, message="the ReplicaSet deleted")
        # Upstream sleeps 30 s "to see if the garbage collector mistakenly deletes the pods".
        gc_caught_up(core, ns)
        pods = core.list_namespaced_pod(ns).items
        assert len(pods) == replicas, f"expect {replicas} pods, got {len(pods)} pods"
        assert [p.metadata.name for p in pods if p.metadata.deletion_timestamp] == []
        assert [p.metadata.name for p in pods if p.metadata.owner_references] == []


def test_gc_should_delete_rs_created_by_deployment_when_not_orphaning(sim_cluster):
    """[sig-api-machinery] Garbage collector should delete RS created by deployment when not orphaning [Conformance]

    Deleted (Background) once it has a ReplicaSet: the Deployment, the ReplicaSet and the pods go."""
    ns = create_namespace(sim_cluster, "gc-")
    labels = uniq_label("gctest", "delete_rs")
    with sim_cluster.client() as api:
        apps = client.AppsV1Api(api)
        d = apps.create_namespaced_deployment(ns, deployment_body("simpletest.deployment", 2, labels,
                                                                  strategy={"type": "RollingUpdate"}))
        wait_until(lambda: apps.list_namespaced_replica_set(ns).items, TIMEOUT, message="a ReplicaSet")
        apps.delete_namespaced_deployment("simpletest.deployment", ns, body=background(d.metadata.uid))
        want = {"Deployments": 0, "ReplicaSets": 0, "Pods": 0}
        wait_until(lambda: remaining(api, ns) == want, TIMEOUT, message=f"all rs garbage collected ({want})")


def test_gc_should_orphan_rs_created_by_deployment_when_propagation_policy_is_orphan(sim_cluster):
    """[sig-api-machinery] Garbage collector should orphan RS created by deployment when deleteOptions.PropagationPolicy is Orphan [Conformance]

    Deleted with propagationPolicy Orphan once its ReplicaSet has its pods: the ReplicaSet and
    its two pods stay; the ReplicaSet without a controller."""
    ns = create_namespace(sim_cluster, "gc-")
    labels = uniq_label("gctest", "orphan_rs")
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        d = apps.create_namespaced_deployment(ns, deployment_body("simpletest.deployment", 2, labels,
                                                                  strategy={"type": "RollingUpdate"}))
        rs = wait_until(lambda: (apps.list_namespaced_replica_set(ns).items or [None])[0], TIMEOUT,
                        message="a ReplicaSet")

        def settled():
            cur = apps.read_namespaced_replica_set(rs.metadata.name, ns)
            return ((cur.status.observed_generation or 0) >= rs.metadata.generation
                    and (cur.status.replicas or 0) == rs.spec.replicas)
        wait_until(settled, TIMEOUT, message="ReplicaSet .status.replicas == .spec.replicas")

        apps.delete_namespaced_deployment("simpletest.deployment", ns, body=orphan(d.metadata.uid))
        wait_until(lambda: not apps.list_namespaced_deployment(ns).items, TIMEOUT, message="the Deployment deleted")
        # Once the Deployment is gone the collector has done its part (upstream looks at once).
        assert remaining(api, ns) == {"Deployments": 0, "ReplicaSets": 1, "Pods": 2}
        for r in apps.list_namespaced_replica_set(ns).items:
            assert not any(o.controller for o in r.metadata.owner_references or []), \
                f"Found ReplicaSet with non nil ownerRef {r.metadata.owner_references}"
        # The pods are the ReplicaSet's still, and not being deleted.
        for p in core.list_namespaced_pod(ns).items:
            assert p.metadata.deletion_timestamp is None
            assert [o.uid for o in p.metadata.owner_references] == [rs.metadata.uid]


def test_gc_should_keep_the_rs_around_until_all_its_pods_are_deleted_if_the_delete_options_say_so(sim_cluster):
    """[sig-api-machinery] Garbage collector should keep the rc around until all its pods are deleted if the deleteOptions says so [Conformance]

    A ReplicaSet stands in for upstream's ReplicationController: 10 to 100 replicas, deleted with
    propagationPolicy Foreground; it must not go before its pods. To make "before" observable, one
    pod is held by a finalizer of ours: while it is there, the ReplicaSet must stay, with a
    deletionTimestamp and the foregroundDeletion finalizer, all other pods gone."""
    ns = create_namespace(sim_cluster, "gc-")
    labels = uniq_label("gctest", "delete_pods_foreground")
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        replicas = estimate_maximum_pods(core, 10, 100)
        rs = apps.create_namespaced_replica_set(ns, owner_rs("simpletest.rs", replicas, labels))
        wait_for_replicas(apps, ns, "simpletest.rs")
        pods = core.list_namespaced_pod(ns).items
        # What makes the owner wait: the controller's references block its deletion.
        for p in pods:
            (ref,) = p.metadata.owner_references
            assert ref.uid == rs.metadata.uid and ref.controller and ref.block_owner_deletion, ref
        held = pods[0].metadata.name
        core.patch_namespaced_pod(held, ns, {"metadata": {"finalizers": [HOLD]}})

        apps.delete_namespaced_replica_set("simpletest.rs", ns, body=foreground(rs.metadata.uid))

        def only_the_held_pod_left():
            left = core.list_namespaced_pod(ns).items
            return [p.metadata.name for p in left] == [held] and left[0].metadata.deletion_timestamp
        wait_until(only_the_held_pod_left, TIMEOUT, message="every pod but the held one deleted")
        gc_caught_up(core, ns)
        cur = apps.read_namespaced_replica_set("simpletest.rs", ns)
        assert cur.metadata.deletion_timestamp is not None
        assert "foregroundDeletion" in cur.metadata.finalizers

        core.patch_namespaced_pod(held, ns, {"metadata": {"finalizers": None}})
        wait_until(lambda: gone(lambda: apps.read_namespaced_replica_set("simpletest.rs", ns)), TIMEOUT,
                   message="the ReplicaSet deleted")
        assert core.list_namespaced_pod(ns).items == [], "expected no pods"


def test_gc_should_not_delete_dependents_that_have_both_valid_owner_and_owner_waiting_for_dependents(sim_cluster):
    """[sig-api-machinery] Garbage collector should not delete dependents that have both valid owner and owner that's waiting for dependents to be deleted [Conformance]

    ReplicaSets stand in for upstream's ReplicationControllers. RS1's pods (whose controller
    references block its deletion) get half of them a second owner, RS2; RS1 is deleted in the
    foreground. RS1 goes; the half that RS2 also owns stays, not being deleted, with RS2 as its
    only owner."""
    ns = create_namespace(sim_cluster, "gc-")
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        replicas = estimate_maximum_pods(core, 10, 100)
        half = replicas // 2
        rs1 = apps.create_namespaced_replica_set(ns, owner_rs(
            "simpletest-rs-to-be-deleted", replicas, uniq_label("gctest_d", "valid_and_pending_owners_d")))
        rs2 = apps.create_namespaced_replica_set(ns, owner_rs(
            "simpletest-rs-to-stay", 0, uniq_label("gctest_s", "valid_and_pending_owners_s")))
        wait_for_replicas(apps, ns, rs1.metadata.name)

        pods = core.list_namespaced_pod(ns).items
        assert all(o.block_owner_deletion for p in pods for o in p.metadata.owner_references
                   if o.uid == rs1.metadata.uid)
        also_rs2 = {"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                      "name": rs2.metadata.name, "uid": rs2.metadata.uid}]}}
        for pod in pods[:half]:
            patched = core.patch_namespaced_pod(pod.metadata.name, ns, also_rs2)
            assert {o.uid for o in patched.metadata.owner_references} == {rs1.metadata.uid, rs2.metadata.uid}

        apps.delete_namespaced_replica_set(rs1.metadata.name, ns, body=foreground(rs1.metadata.uid))
        wait_until(lambda: gone(lambda: apps.read_namespaced_replica_set(rs1.metadata.name, ns)), TIMEOUT,
                   message=f"rc {rs1.metadata.name} deleted")

        kept = sorted(p.metadata.name for p in pods[:half])
        pods = core.list_namespaced_pod(ns).items
        assert len(pods) == half, f"expected {half} pods, got {len(pods)}"
        assert sorted(p.metadata.name for p in pods) == kept, "the pods left are not those RS2 also owns"
        for pod in pods:
            assert pod.metadata.deletion_timestamp is None, pod.metadata
            assert [o.uid for o in pod.metadata.owner_references] == [rs2.metadata.uid], \
                f"expected pod to only have 1 owner, got {pod.metadata.owner_references}"


def test_gc_should_not_be_blocked_by_dependency_circle(sim_cluster):
    """[sig-api-machinery] Garbage collector should not be blocked by dependency circle [Conformance]

    pod1 is owned by pod3, pod2 by pod1, pod3 by pod2 (each reference a blocking controller one);
    deleting pod1 in the foreground deletes all three."""
    ns = create_namespace(sim_cluster, "gc-")
    with sim_cluster.client() as api:
        core = client.CoreV1Api(api)
        pods = {}
        for name in ("pod1", "pod2", "pod3"):
            pods[name] = core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
                "terminationGracePeriodSeconds": 0, "containers": [{"name": "nginx", "image": NGINX_IMAGE}]}})

        def owned_by(owner: str) -> dict:
            return {"metadata": {"ownerReferences": [{
                "apiVersion": "v1", "kind": "Pod", "name": owner, "uid": pods[owner].metadata.uid,
                "controller": True, "blockOwnerDeletion": True}]}}
        for name, owner in (("pod1", "pod3"), ("pod2", "pod1"), ("pod3", "pod2")):
            pods[name] = core.patch_namespaced_pod(name, ns, owned_by(owner))
            assert [o.name for o in pods[name].metadata.owner_references] == [owner]

        core.delete_namespaced_pod("pod1", ns, body=foreground(pods["pod1"].metadata.uid))
        wait_until(lambda: not core.list_namespaced_pod(ns).items, TIMEOUT, message="all pods deleted")


# ---- [sig-api-machinery] Namespaces ------------------------------------------------------------------

def new_namespace(core: client.CoreV1Api, base: str):
    """f.CreateNamespace: a name made of `base` and a random suffix."""
    return core.create_namespace({"metadata": {"name": f"{base}-{uuid.uuid4().hex[:5]}"}})


def wait_default_service_account(core: client.CoreV1Api, ns: str) -> None:
    wait_until(lambda: not gone(lambda: core.read_namespaced_service_account("default", ns)), TIMEOUT,
               message=f"the default service account in {ns}")


def delete_and_recreate_namespace(core: client.CoreV1Api, ns: str) -> None:
    """Delete the namespace, wait until it is gone, create one of the same name again."""
    core.delete_namespace(ns)
    wait_until(lambda: gone(lambda: core.read_namespace(ns)), TIMEOUT, message=f"namespace {ns} removed")
    # Upstream recreates under a new random name; the same name says more: nothing comes back.
    core.create_namespace({"metadata": {"name": ns}})


def namespace_deletion_removes(c, create, read, running=None) -> None:
    """ensure{Pods,Services}AreRemovedWhenNamespaceIsDeleted: what `create` made in a new
    namespace is gone once the namespace is deleted (and recreated under the same name)."""
    with c.client() as api:
        core = client.CoreV1Api(api)
        ns = new_namespace(core, "nsdeletetest").metadata.name
        wait_default_service_account(core, ns)
        create(core, ns)
        if running:
            wait_until(lambda: running(core, ns), TIMEOUT, message="the pod Running")
        delete_and_recreate_namespace(core, ns)
        assert gone(lambda: read(core, ns)), "it outlived its namespace"
        core.delete_namespace(ns)


def test_namespace_should_ensure_that_all_pods_are_removed_when_a_namespace_is_deleted(sim_cluster):
    """[sig-api-machinery] Namespaces [Serial] should ensure that all pods are removed when a namespace is deleted [Conformance]"""
    namespace_deletion_removes(
        sim_cluster,
        lambda core, ns: core.create_namespaced_pod(ns, {"metadata": {"name": "test-pod"}, "spec": {
            "containers": [{"name": "nginx", "image": PAUSE_IMAGE}]}}),
        lambda core, ns: core.read_namespaced_pod("test-pod", ns),
        running=lambda core, ns: core.read_namespaced_pod("test-pod", ns).status.phase == "Running")


def test_namespace_should_ensure_that_all_services_are_removed_when_a_namespace_is_deleted(sim_cluster):
    """[sig-api-machinery] Namespaces [Serial] should ensure that all services are removed when a namespace is deleted [Conformance]"""
    namespace_deletion_removes(
        sim_cluster,
        lambda core, ns: core.create_namespaced_service(ns, {"metadata": {"name": "test-service"}, "spec": {
            "selector": {"foo": "bar", "baz": "blah"}, "ports": [{"port": 80, "targetPort": 80}]}}),
        lambda core, ns: core.read_namespaced_service("test-service", ns))


def test_namespace_should_patch_a_namespace(sim_cluster):
    """[sig-api-machinery] Namespaces [Serial] should patch a Namespace [Conformance]"""
    with sim_cluster.client() as api:
        core = client.CoreV1Api(api)
        created = new_namespace(core, "nspatchtest-" + str(uuid.uuid4()))
        name = created.metadata.name
        assert created.metadata.resource_version.isdigit() and int(created.metadata.resource_version) > 0
        patched = core.patch_namespace(name, {"metadata": {"labels": {"testLabel": "testValue"}}})
        assert int(patched.metadata.resource_version) > int(created.metadata.resource_version), \
            "patched object should have a larger resource version"
        assert core.read_namespace(name).metadata.labels.get("testLabel") == "testValue", "namespace not patched"
        core.delete_namespace(name)


def test_namespace_should_apply_changes_to_a_namespace_status(sim_cluster):
    """[sig-api-machinery] Namespaces [Serial] should apply changes to a namespace status [Conformance]

    Read /status (phase Active), patch it with a condition (and an annotation), update it with
    another."""
    ns = create_namespace(sim_cluster, "namespaces-")
    with sim_cluster.client() as api:
        core = client.CoreV1Api(api)
        ns_resource = dynamic.DynamicClient(api).resources.get(api_version="v1", kind="Namespace")
        status = ns_resource.status.get(name=ns)
        assert status.status.phase == "Active", f"The phase returned was {status.status.phase}"

        patched = core.patch_namespace_status(ns, {
            "metadata": {"annotations": {"e2e-patched-ns-status": ns}},
            "status": {"conditions": [{"type": "StatusPatch", "status": "True", "reason": "E2E",
                                       "message": "Patched by an e2e test"}]}},
            _content_type="application/merge-patch+json")
        assert (patched.metadata.annotations or {}).get("e2e-patched-ns-status") == ns
        last = patched.status.conditions[-1]
        assert (last.reason, last.message) == ("E2E", "Patched by an e2e test")

        def update_status():
            cur = core.read_namespace_status(ns)
            cur.status.conditions = (cur.status.conditions or []) + [client.V1NamespaceCondition(
                type="StatusUpdate", status="True", reason="E2E", message="Updated by an e2e test")]
            try:
                return core.replace_namespace_status(ns, cur)
            except ApiException as e:
                if e.status == 409:
                    return None
                raise
        updated = wait_until(update_status, TIMEOUT, message="namespace status updated")
        last = updated.status.conditions[-1]
        assert (last.type, last.message) == ("StatusUpdate", "Updated by an e2e test")
        assert core.read_namespace(ns).metadata.annotations.get("e2e-patched-ns-status") == ns


def test_namespace_should_apply_an_update_to_a_namespace(sim_cluster):
    """[sig-api-machinery] Namespaces [Serial] should apply an update to a Namespace [Conformance]"""
    ns = create_namespace(sim_cluster, "namespaces-")
    with sim_cluster.client() as api:
        core = client.CoreV1Api(api)

        def update():
            cur = core.read_namespace(ns)
            # Upstream writes into the labels map as read: the API labels every namespace with
            # its name (kubernetes.io/metadata.name), so there is always one.
            assert cur.metadata.labels is not None, "namespace has no labels"
            cur.metadata.labels[ns] = "updated"
            try:
                return core.replace_namespace(ns, cur)
            except ApiException as e:
                if e.status == 409:
                    return None
                raise
        updated = wait_until(update, TIMEOUT, message="namespace updated")
        assert updated.metadata.labels.get(ns) == "updated", f"Current Labels: {updated.metadata.labels}"


def test_namespace_should_apply_a_finalizer_to_a_namespace(sim_cluster):
    """[sig-api-machinery] Namespaces [Serial] should apply a finalizer to a Namespace [Conformance]

    Add a fake finalizer to spec.finalizers through the finalize subresource, then remove it."""
    fake = "e2e.example.com/fakeFinalizer"
    with sim_cluster.client() as api:
        core = client.CoreV1Api(api)
        created = new_namespace(core, "e2e-ns")
        ns = created.metadata.name
        assert created.spec.finalizers == ["kubernetes"]

        def finalize(change):
            cur = core.read_namespace(ns)
            cur.spec.finalizers = change(cur.spec.finalizers or [])
            try:
                return core.replace_namespace_finalize(ns, cur)
            except ApiException as e:
                if e.status == 409:
                    return None
                raise
        updated = wait_until(lambda: finalize(lambda f: f + [fake]), TIMEOUT, message="finalizer added")
        assert fake in updated.spec.finalizers, f"Finalizer {fake!r} was not found: {updated.spec.finalizers}"
        assert fake in core.read_namespace(ns).spec.finalizers

        updated = wait_until(lambda: finalize(lambda f: [x for x in f if x != fake]), TIMEOUT,
                             message="finalizer removed")
        assert fake not in (updated.spec.finalizers or []), f"Finalizer {fake!r} was found: {updated.spec.finalizers}"
        assert updated.spec.finalizers == ["kubernetes"]
        core.delete_namespace(ns)
