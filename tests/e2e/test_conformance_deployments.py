"""The eight Deployment conformance behaviours, one test each, against a real server.

Each test takes the steps of upstream's test/e2e/apps/deployment.go (testRecreateDeployment,
testRollingUpdateDeployment, testDeploymentCleanUpPolicy, testRolloverDeployment,
testDeploymentSubresources, testProportionalScalingDeployment and the lifecycle and
status-endpoint bodies) through the official Python client, and asserts what upstream asserts.
They run on the shared server with three simulated nodes, where a pod is Running and Ready as
soon as it is scheduled; "an image that never pulls" is modelled by a nodeSelector no node has
(NOWHERE), so such pods stay Pending and never become available.

Where upstream watches (Recreate's "no new pod beside an old one", the cleanup test's "exactly
one pod created", the lifecycle's ADDED/MODIFIED/DELETED steps), these tests watch too: a watch
started at a resourceVersion taken before the change replays every event in order, so no
transient state can slip between two polls. The in-process tests of the same behaviours, step
by step on a FakeClock, are in tests/unit/test_deployment.py; kubectl's rollout commands are
covered by tests/e2e/test_deployments.py.
"""

from __future__ import annotations

import copy
import time
import uuid

from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from tests.conftest import create_namespace, wait_until
from tests.e2e.conformance import (HOLD, NOWHERE, PAUSE_IMAGE, REVISION, TIMEOUT, WEBSERVER_IMAGE, WEBSERVER_NAME,
                                   Events, active_pods, rs_body)

HASH = "pod-template-hash"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX = "deployment.kubernetes.io/max-replicas"
AGNHOST_NAME, AGNHOST_IMAGE = "agnhost", "registry.k8s.io/e2e-test-images/agnhost:2.53"


# ---- what upstream's framework does (test/e2e/framework/deployment, test/utils/deployment.go) ----

def new_deployment(name: str, replicas: int, labels: dict, container: str, image: str,
                   strategy: str = "RollingUpdate") -> dict:
    """e2edeployment.NewDeployment: the pod labels also label the Deployment and select its pods;
    pods get no termination grace period."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "strategy": {"type": strategy},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": container, "image": image}]}}}}


def plain(api: client.ApiClient, obj) -> dict:
    """A client model as the JSON the server sent (camelCase keys, unset fields left out)."""
    return api.sanitize_for_serialization(obj)


def _template_without_hash(api: client.ApiClient, template) -> dict:
    t = plain(api, template)
    labels = (t.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH, None)
    return t


def replica_sets(api: client.ApiClient, d) -> tuple[object | None, list]:
    """(new, old) ReplicaSets of `d` as deploymentutil sorts them: those it controls, the new one
    being the oldest whose template is the Deployment's, ignoring the pod-template-hash label."""
    apps = client.AppsV1Api(api)
    selector = ",".join(f"{k}={v}" for k, v in (d.spec.selector.match_labels or {}).items())
    owned = [r for r in apps.list_namespaced_replica_set(d.metadata.namespace, label_selector=selector).items
             if any(o.controller and o.uid == d.metadata.uid for o in r.metadata.owner_references or [])]
    owned.sort(key=lambda r: (r.metadata.creation_timestamp, r.metadata.name))
    want = _template_without_hash(api, d.spec.template)
    new = next((r for r in owned if _template_without_hash(api, r.spec.template) == want), None)
    return new, [r for r in owned if r is not new]


def revision_and_image_problem(api: client.ApiClient, d, revision: str, image: str) -> str:
    """checkRevisionAndImage: "" when the Deployment and its new ReplicaSet both carry
    `revision` and `image` and the new one selects by pod-template-hash; else what is wrong."""
    new, _ = replica_sets(api, d)
    if new is None:
        return "no new ReplicaSet yet"
    if HASH not in (new.spec.selector.match_labels or {}):
        return f"{new.metadata.name} does not select by {HASH}"
    if (d.metadata.annotations or {}).get(REVISION) != revision:
        return f"Deployment revision {(d.metadata.annotations or {}).get(REVISION)!r}"
    if (new.metadata.annotations or {}).get(REVISION) != revision:
        return f"{new.metadata.name} revision {(new.metadata.annotations or {}).get(REVISION)!r}"
    if image not in [c.image for c in d.spec.template.spec.containers]:
        return "Deployment image"
    if image not in [c.image for c in new.spec.template.spec.containers]:
        return f"{new.metadata.name} image"
    return ""


def wait_revision_and_image(api: client.ApiClient, ns: str, name: str, revision: str, image: str) -> None:
    apps = client.AppsV1Api(api)
    problem = ["not looked yet"]

    def ok():
        problem[0] = revision_and_image_problem(api, apps.read_namespaced_deployment(name, ns), revision, image)
        return not problem[0]
    wait_until(ok, TIMEOUT, message=f"{name} at revision {revision} with {image} (last problem: {problem})")


def complete(d) -> bool:
    """deploymentutil.DeploymentComplete, against the generation the object itself has."""
    s, want = d.status, d.spec.replicas
    return ((s.updated_replicas or 0) == want and (s.replicas or 0) == want
            and (s.available_replicas or 0) == want
            and (s.observed_generation or 0) >= d.metadata.generation)


def _scaled(value, replicas: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * replicas
        return -(-share // 100) if round_up else share // 100
    return int(value)


def fenceposts(d) -> tuple[int, int]:
    """deploymentutil.ResolveFenceposts: (maxSurge rounded up, maxUnavailable rounded down),
    never both 0."""
    ru = d.spec.strategy.rolling_update
    surge = _scaled(ru.max_surge, d.spec.replicas, True)
    unavailable = _scaled(ru.max_unavailable, d.spec.replicas, False)
    return surge, (1 if surge == 0 and unavailable == 0 else unavailable)


def max_surge(d) -> int:
    return fenceposts(d)[0]


def max_unavailable(d) -> int:
    return fenceposts(d)[1]


def wait_complete(api: client.ApiClient, ns: str, name: str, rolling: bool = False):
    """WaitForDeploymentComplete; with `rolling`, also checkRollingUpdateStatus at every look:
    never more than replicas + maxSurge pods asked for, never fewer than replicas -
    maxUnavailable available."""
    apps = client.AppsV1Api(api)

    def done():
        d = apps.read_namespaced_deployment(name, ns)
        if rolling:
            new, old = replica_sets(api, d)
            if new is not None:
                asked = sum(r.spec.replicas or 0 for r in old + [new])
                assert asked <= d.spec.replicas + max_surge(d), \
                    f"{asked} pods asked for, more than {d.spec.replicas} + maxSurge {max_surge(d)}"
                floor = d.spec.replicas - max_unavailable(d)
                assert (d.status.available_replicas or 0) >= floor, \
                    f"{d.status.available_replicas} available, fewer than the minimum {floor}"
        return d if complete(d) else None
    return wait_until(done, TIMEOUT, message=f"Deployment {name} complete")


def update_with_retries(api: client.ApiClient, ns: str, name: str, change):
    """UpdateDeploymentWithRetries: read, change, write back; again on a conflict."""
    apps = client.AppsV1Api(api)
    deadline = time.monotonic() + TIMEOUT
    while True:
        d = apps.read_namespaced_deployment(name, ns)
        change(d)
        try:
            return apps.replace_namespaced_deployment(name, ns, d)
        except ApiException as e:
            if e.status != 409 or time.monotonic() > deadline:
                raise


def wait_pods_running(core: client.CoreV1Api, ns: str, selector: str, n: int) -> list:
    """e2epod.VerifyPodsRunning: `n` live pods match, all Running."""
    def running():
        pods = active_pods(core, ns, selector)
        return pods if len(pods) == n and all(p.status.phase == "Running" for p in pods) else None
    return wait_until(running, TIMEOUT, message=f"{n} pods {selector} Running")


def check_rolling_history(apps: client.AppsV1Api, ns: str, selector: str, since, d) -> None:
    """checkRollingUpdateStatus at every step instead of at every poll: replays the events of
    the ReplicaSets `selector` matches from the list `since` up to their current state, and
    fails if at any point they asked for more than replicas + maxSurge pods in all or had
    fewer than replicas - maxUnavailable available."""
    most, least = d.spec.replicas + max_surge(d), d.spec.replicas - max_unavailable(d)
    asked = {r.metadata.name: r.spec.replicas or 0 for r in since.items}
    available = {r.metadata.name: r.status.available_replicas or 0 for r in since.items}
    final = apps.list_namespaced_replica_set(ns, label_selector=selector).items
    pending = {(r.metadata.name, r.metadata.resource_version) for r in final}

    def step(type_, rs) -> bool:
        n = rs.metadata.name
        if type_ == "DELETED":
            asked.pop(n, None)
            available.pop(n, None)
        else:
            asked[n], available[n] = rs.spec.replicas or 0, rs.status.available_replicas or 0
        assert sum(asked.values()) <= most, f"{asked} asks for more than {most} pods"
        assert sum(available.values()) >= least, f"{available}: fewer than {least} available"
        pending.discard((n, rs.metadata.resource_version))
        return not pending
    if pending:
        Events(apps.list_namespaced_replica_set, since.metadata.resource_version, ns,
               label_selector=selector).until(step, message="the ReplicaSets' history")


def has_condition(d, ctype: str, **fields) -> bool:
    return any(c.type == ctype and all(getattr(c, k) == v for k, v in fields.items())
               for c in (d.status.conditions or []))


# ---- the conformance tests ------------------------------------------------------------------------

def test_deployment_should_have_a_working_scale_subresource(sim_cluster):
    """[sig-apps] Deployment Deployment should have a working scale subresource [Conformance]

    upstream testDeploymentSubresources: get, update and patch /scale of a one-pod Deployment.
    """
    ns = create_namespace(sim_cluster, "conf-")
    name = "test-new-deployment"
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_deployment(ns, new_deployment(name, 1, {"name": WEBSERVER_NAME},
                                                             WEBSERVER_NAME, WEBSERVER_IMAGE))
        wait_revision_and_image(api, ns, name, "1", WEBSERVER_IMAGE)
        wait_complete(api, ns, name)
        wait_pods_running(core, ns, f"name={WEBSERVER_NAME}", 1)

        scale = apps.read_namespaced_deployment_scale(name, ns)
        assert (scale.spec.replicas, scale.status.replicas) == (1, 1)
        assert scale.status.selector == f"name={WEBSERVER_NAME}"

        scale.metadata.resource_version = None   # an unconditional update
        scale.spec.replicas = 2
        assert apps.replace_namespaced_deployment_scale(name, ns, scale).spec.replicas == 2
        assert apps.read_namespaced_deployment(name, ns).spec.replicas == 2

        apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 4}},
                                               _content_type="application/strategic-merge-patch+json")
        assert apps.read_namespaced_deployment(name, ns).spec.replicas == 4
        # Beyond upstream: the controller acts on it, and /scale reports what it did.
        wait_complete(api, ns, name)
        wait_until(lambda: apps.read_namespaced_deployment_scale(name, ns).status.replicas == 4,
                   TIMEOUT, message="scale status at 4")


def roll_and_watch(api: client.ApiClient, ns: str, name: str, pods, old_hash: str, replicas: int):
    """testRecreateDeployment's second half: change the template, then watch that no new pod
    runs beside an old one, in the Deployment's status and in the pods themselves."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)

    def change(u):
        u.spec.template.spec.containers[0].name = WEBSERVER_NAME
        u.spec.template.spec.containers[0].image = WEBSERVER_IMAGE
    d = update_with_retries(api, ns, name, change)

    # watchRecreateDeployment: no status may count new pods while other pods exist.
    def status_ok(_type, dep):
        s = dep.status
        assert not ((s.updated_replicas or 0) > 0 and (s.replicas or 0) != (s.updated_replicas or 0)), \
            f"new pods running alongside old ones: {plain(api, s)}"
        return (dep.spec.replicas == (s.replicas or 0) == (s.updated_replicas or 0)
                and dep.metadata.generation <= (s.observed_generation or 0))
    Events(apps.list_namespaced_deployment, d.metadata.resource_version, ns,
           field_selector=f"metadata.name={name}").until(status_ok, message="Recreate rollout")

    # And in the pods themselves: the first new pod is created after the last old one is
    # gone (deleted, or finished, which upstream's controller also counts as gone).
    old_live = {p.metadata.name for p in pods.items}
    created: list[str] = []

    def pod_ok(type_, pod):
        h = pod.metadata.labels.get(HASH)
        if h == old_hash:
            if type_ == "DELETED" or pod.status.phase in ("Succeeded", "Failed"):
                old_live.discard(pod.metadata.name)
            return False
        if type_ == "ADDED":
            assert not old_live, f"new pod {pod.metadata.name} created while {sorted(old_live)} exist"
            created.append(pod.metadata.name)
        return len(created) == replicas
    Events(core.list_namespaced_pod, pods.metadata.resource_version, ns).until(pod_ok, message="new pods")
    return d


def test_recreate_deployment_should_delete_old_pods_and_create_new_ones(sim_cluster):
    """[sig-apps] Deployment RecreateDeployment should delete old pods and create new ones [Conformance]

    upstream testRecreateDeployment and watchRecreateDeployment. Three replicas instead of
    upstream's one, so that "all old pods are gone" is more than one deletion.
    """
    ns = create_namespace(sim_cluster, "conf-")
    name, replicas = "test-recreate-deployment", 3
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_deployment(ns, new_deployment(name, replicas, {"name": "sample-pod-3"},
                                                             AGNHOST_NAME, AGNHOST_IMAGE, "Recreate"))
        wait_revision_and_image(api, ns, name, "1", AGNHOST_IMAGE)
        d = wait_complete(api, ns, name)
        old_rs, _ = replica_sets(api, d)
        old_hash = old_rs.metadata.labels[HASH]
        # Pods on simulated nodes vanish the moment they are deleted. A finalizer keeps the old
        # ones visible, terminating and then finished (Failed), so the watch below sees them
        # end; and as upstream's oldPodsRunning, finished pods must not hold the rollout up.
        for p in core.list_namespaced_pod(ns, label_selector="name=sample-pod-3").items:
            core.patch_namespaced_pod(p.metadata.name, ns, {"metadata": {"finalizers": [HOLD]}})
        pods = core.list_namespaced_pod(ns, label_selector="name=sample-pod-3")
        assert len(pods.items) == replicas

        try:
            roll_and_watch(api, ns, name, pods, old_hash, replicas)
        finally:
            for p in pods.items:
                core.patch_namespaced_pod(p.metadata.name, ns, {"metadata": {"finalizers": None}})
        wait_until(lambda: not core.list_namespaced_pod(ns, label_selector=f"{HASH}={old_hash}").items,
                   TIMEOUT, message="old pods deleted once released")
        d = apps.read_namespaced_deployment(name, ns)
        new_rs, olds = replica_sets(api, d)
        assert [r.metadata.name for r in olds] == [old_rs.metadata.name]
        assert olds[0].spec.replicas == 0 and new_rs.spec.replicas == replicas
        assert (d.metadata.annotations or {}).get(REVISION) == "2"
        assert {p.spec.containers[0].image for p in active_pods(core, ns, "name=sample-pod-3")} == {WEBSERVER_IMAGE}


def test_rolling_update_deployment_should_delete_old_pods_and_create_new_ones(sim_cluster):
    """[sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new ones [Conformance]

    upstream testRollingUpdateDeployment: a Deployment adopts a ReplicaSet that has a revision,
    carries that revision on (+1) and replaces its pods.
    """
    ns = create_namespace(sim_cluster, "conf-")
    name = "test-rolling-update-deployment"
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_replica_set(ns, rs_body(
            "test-rolling-update-controller", 1, {"name": "sample-pod", "pod": WEBSERVER_NAME},
            {REVISION: "3546343826724305832"}, image=WEBSERVER_IMAGE))
        wait_pods_running(core, ns, "name=sample-pod", 1)
        wait_until(lambda: (apps.read_namespaced_replica_set("test-rolling-update-controller", ns)
                            .status.available_replicas or 0) == 1, TIMEOUT, message="adoptee available")
        before = apps.list_namespaced_replica_set(ns, label_selector="name=sample-pod")

        apps.create_namespaced_deployment(ns, new_deployment(name, 1, {"name": "sample-pod"},
                                                             AGNHOST_NAME, AGNHOST_IMAGE))
        wait_revision_and_image(api, ns, name, "3546343826724305833", AGNHOST_IMAGE)
        d = wait_complete(api, ns, name)
        # Beyond upstream: the default strategy (25% surge, 25% unavailable of 1 replica: 1 and
        # 0) held at every step of the replacement.
        check_rolling_history(apps, ns, "name=sample-pod", before, d)

        new, old = replica_sets(api, d)
        assert [r.metadata.name for r in old] == ["test-rolling-update-controller"], "one old (adopted) ReplicaSet"
        assert old[0].spec.replicas == 0
        assert new.metadata.name == f"{name}-{new.metadata.labels[HASH]}"
        # The codename's promise: the old pods are deleted, the new ones run.
        wait_until(lambda: not active_pods(core, ns, f"pod={WEBSERVER_NAME}"), TIMEOUT, message="old pod deleted")
        pods = wait_pods_running(core, ns, "name=sample-pod", 1)
        assert pods[0].spec.containers[0].image == AGNHOST_IMAGE


def test_deployment_should_delete_old_replica_sets(sim_cluster):
    """[sig-apps] Deployment deployment should delete old replica sets [Conformance]

    upstream testDeploymentCleanUpPolicy: with revisionHistoryLimit 0, the adopted ReplicaSet is
    deleted once empty, and the only pod created is the Deployment's one.
    """
    ns = create_namespace(sim_cluster, "conf-")
    name = "test-cleanup-deployment"
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_replica_set(ns, rs_body("test-cleanup-controller", 1,
                                                       {"name": "cleanup-pod", "pod": WEBSERVER_NAME},
                                                       image=WEBSERVER_IMAGE))
        wait_pods_running(core, ns, "name=cleanup-pod", 1)
        before = core.list_namespaced_pod(ns)

        body = new_deployment(name, 1, {"name": "cleanup-pod"}, AGNHOST_NAME, AGNHOST_IMAGE)
        body["spec"]["revisionHistoryLimit"] = 0
        apps.create_namespaced_deployment(ns, body)

        def old_rss_cleaned():
            d = apps.read_namespaced_deployment(name, ns)
            new, old = replica_sets(api, d)
            return new is not None and not old
        wait_until(old_rss_cleaned, TIMEOUT, message="old ReplicaSets cleaned up")
        wait_until(lambda: not apps.list_namespaced_replica_set(
            ns, field_selector="metadata.name=test-cleanup-controller").items, TIMEOUT,
            message="the adopted ReplicaSet deleted")

        # Exactly one pod creation, the Deployment's (the old ReplicaSet creates none while it
        # is adopted and scaled down), seen in the order things happened.
        (old_pod,) = before.items
        gone, created = [], []

        def pod_ok(type_, pod):
            if type_ == "ADDED":
                created.append(pod.metadata.name)
                assert len(created) == 1, f"a second pod created: {created}"
                assert pod.spec.containers[0].name == AGNHOST_NAME, f"created {pod.metadata.name}: not agnhost"
            if type_ == "DELETED" and pod.metadata.name == old_pod.metadata.name:
                gone.append(pod.metadata.name)
            return created and gone
        Events(core.list_namespaced_pod, before.metadata.resource_version, ns).until(
            pod_ok, message="the new pod created and the old one deleted")
        pods = wait_pods_running(core, ns, "name=cleanup-pod", 1)
        assert [p.metadata.name for p in core.list_namespaced_pod(ns).items] == created == [pods[0].metadata.name]


def test_deployment_should_support_proportional_scaling(sim_cluster):
    """[sig-apps] Deployment deployment should support proportional scaling [Conformance]

    upstream testProportionalScalingDeployment: 10 replicas, maxSurge 3, maxUnavailable 2; a
    rollout stuck on pods that never become available; scaled to 30 in the middle of it.
    """
    ns = create_namespace(sim_cluster, "conf-")
    name = "webserver-deployment"
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        body = new_deployment(name, 10, {"name": WEBSERVER_NAME}, WEBSERVER_NAME, WEBSERVER_IMAGE)
        body["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 3, "maxUnavailable": 2}
        d = apps.create_namespaced_deployment(ns, body)
        wait_until(lambda: (apps.read_namespaced_deployment(name, ns).status.observed_generation or 0)
                   >= d.metadata.generation, TIMEOUT, message="generation observed")
        wait_pods_running(core, ns, f"name={WEBSERVER_NAME}", 10)
        d = wait_complete(api, ns, name)
        first, _ = replica_sets(api, d)

        # "webserver:404" never pulls; here its pods are never scheduled, to the same effect.
        def break_it(u):
            u.spec.template.spec.containers[0].image = "webserver:404"
            u.spec.template.spec.node_selector = NOWHERE
        d = update_with_retries(api, ns, name, break_it)
        wait_until(lambda: (apps.read_namespaced_deployment(name, ns).status.observed_generation or 0)
                   >= d.metadata.generation, TIMEOUT, message="generation observed")

        def rs_reaches(rs, *, available: int | None = None, spec: int | None = None, desired: bool = False):
            """waitForReplicaSetTarget{Available,Spec}Replicas / waitForReplicaSetDesiredReplicas."""
            def ok():
                r = apps.read_namespaced_replica_set(rs.metadata.name, ns)
                s = r.status
                return ((s.observed_generation or 0) >= rs.metadata.generation
                        and (available is None or (s.available_replicas or 0) == available)
                        and (spec is None or r.spec.replicas == spec)
                        and (not desired or (s.replicas or 0) == r.spec.replicas)) and r
            return wait_until(ok, TIMEOUT, message=f"{rs.metadata.name}: available={available} spec={spec}")

        # maxUnavailable 2: the first ReplicaSet goes down to 8, all available.
        rs_reaches(first, available=8)
        rs_reaches(first, spec=8)
        first = rs_reaches(first, desired=True)
        # maxSurge 3: the second one may have 10 + 3 - 8 = 5 pods, none available.
        second, _ = replica_sets(api, apps.read_namespaced_deployment(name, ns))
        assert second.metadata.name != first.metadata.name
        assert (second.status.available_replicas or 0) == 0
        rs_reaches(second, spec=5)
        second = rs_reaches(second, desired=True)
        assert (apps.read_namespaced_deployment(name, ns).status.available_replicas or 0) >= 8

        def scale_up(u):
            u.spec.replicas = 30
        update_with_retries(api, ns, name, scale_up)
        # 33 allowed, 13 there: the 20 more split 8:5, rounded -> 8 + 12 = 20 and 5 + 8 = 13.
        rs_reaches(first, spec=20)
        rs_reaches(second, spec=13)
        for rs in (first, second):
            ann = apps.read_namespaced_replica_set(rs.metadata.name, ns).metadata.annotations
            assert (ann[DESIRED], ann[MAX]) == ("30", "33"), ann


def test_deployment_should_support_rollover(sim_cluster):
    """[sig-apps] Deployment deployment should support rollover [Conformance]

    upstream testRolloverDeployment: a Deployment adopts a ReplicaSet, starts a rollout that
    cannot finish, and is changed again before it does: the third template takes over and both
    earlier ReplicaSets end at zero.
    """
    ns = create_namespace(sim_cluster, "conf-")
    name, rs_name = "test-rollover-deployment", "test-rollover-controller"
    with sim_cluster.client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_replica_set(ns, rs_body(rs_name, 1, {"name": "rollover-pod", "pod": WEBSERVER_NAME},
                                                       image=WEBSERVER_IMAGE))
        wait_pods_running(core, ns, "name=rollover-pod", 1)
        wait_until(lambda: (apps.read_namespaced_replica_set(rs_name, ns).status.ready_replicas or 0) == 1,
                   TIMEOUT, message="adoptee ready")
        wait_until(lambda: (apps.read_namespaced_replica_set(rs_name, ns).status.available_replicas or 0) == 1,
                   TIMEOUT, message="adoptee available")
        before = apps.list_namespaced_replica_set(ns, label_selector="name=rollover-pod")

        # A nonexistent image upstream; pods that are never scheduled here.
        stuck_image = "gcr.io/google_samples/gb-redisslave:nonexistent"
        body = new_deployment(name, 1, {"name": "rollover-pod"}, "redis-slave", stuck_image)
        body["spec"]["strategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 1}
        # Upstream waits 10s; 2s keeps the test short and still makes "ready" differ from
        # "available" during the rollover.
        body["spec"]["minReadySeconds"] = 2
        body["spec"]["template"]["spec"]["nodeSelector"] = NOWHERE
        d = apps.create_namespaced_deployment(ns, body)

        def updated_at_least_one():
            cur = apps.read_namespaced_deployment(name, ns)
            return ((cur.status.observed_generation or 0) >= d.metadata.generation
                    and (cur.status.updated_replicas or 0) >= 1)
        wait_until(updated_at_least_one, TIMEOUT, message="one updated replica")
        d = apps.read_namespaced_deployment(name, ns)
        assert revision_and_image_problem(api, d, "1", stuck_image) == ""

        def ensure_replicas(rs, n: int) -> None:
            assert (rs.spec.replicas, rs.status.replicas or 0) == (n, n), \
                f"{rs.metadata.name}: spec {rs.spec.replicas}, status {rs.status.replicas}, want {n}"
        ensure_replicas(apps.read_namespaced_replica_set(rs_name, ns), 1)
        stuck_rs, _ = replica_sets(api, d)
        ensure_replicas(stuck_rs, 1)

        def rollover(u):
            c = u.spec.template.spec.containers[0]
            c.name, c.image = AGNHOST_NAME, AGNHOST_IMAGE
            u.spec.template.spec.node_selector = None
        d = update_with_retries(api, ns, name, rollover)
        wait_until(lambda: (apps.read_namespaced_deployment(name, ns).status.observed_generation or 0)
                   >= d.metadata.generation, TIMEOUT, message="rollover observed")
        wait_revision_and_image(api, ns, name, "2", AGNHOST_IMAGE)
        d = wait_complete(api, ns, name, rolling=True)
        check_rolling_history(apps, ns, "name=rollover-pod", before, d)

        ensure_replicas(apps.read_namespaced_replica_set(rs_name, ns), 0)
        ensure_replicas(apps.read_namespaced_replica_set(stuck_rs.metadata.name, ns), 0)


def test_should_run_the_lifecycle_of_a_deployment(sim_cluster):
    """[sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]

    upstream's ConformanceIt body: create, watch until ready, patch (labels, replicas, image),
    list, update through the dynamic client, read and patch /status, delete the collection;
    each step seen through a watch on the Deployment's label.
    """
    ns = create_namespace(sim_cluster, "conf-")
    name, static = "test-deployment", "test-deployment-static=true"
    with sim_cluster.client() as api:
        apps = client.AppsV1Api(api)
        dyn = dynamic.DynamicClient(api)
        deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
        listed = apps.list_deployment_for_all_namespaces(label_selector=static)
        events = Events(apps.list_namespaced_deployment, listed.metadata.resource_version, ns, label_selector=static)

        def ours(d) -> bool:
            return d.metadata.name == name and (d.metadata.labels or {}).get("test-deployment-static") == "true"

        def at(d, replicas: int, image: str | None = None) -> bool:
            s = d.status
            return (ours(d) and (s.ready_replicas or 0) == replicas and (s.updated_replicas or 0) == replicas
                    and (s.unavailable_replicas or 0) == 0
                    and (image is None or d.spec.template.spec.containers[0].image == image))

        def modified(written, message: str) -> None:
            """The watch shows the MODIFIED event of exactly this write."""
            rv = written.metadata.resourceVersion
            events.until(lambda t, d: t == "MODIFIED" and ours(d) and d.metadata.resource_version == rv,
                         message=message)

        body = new_deployment(name, 2, {"test-deployment-static": "true"}, name, AGNHOST_IMAGE)
        body["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
        created = apps.create_namespaced_deployment(ns, body)
        events.until(lambda t, d: t == "ADDED" and ours(d), message="ADDED")
        events.until(lambda t, d: ours(d) and (d.status.ready_replicas or 0) == 2, message="2 ready replicas")

        patched = apps.patch_namespaced_deployment(name, ns, {
            "metadata": {"labels": {"test-deployment": "patched"}},
            "spec": {"replicas": 1, "template": {"spec": {
                "terminationGracePeriodSeconds": 2, "containers": [{"name": name, "image": PAUSE_IMAGE}]}}}})
        assert patched.metadata.labels == {"test-deployment-static": "true", "test-deployment": "patched"}
        rv = patched.metadata.resource_version
        events.until(lambda t, d: t == "MODIFIED" and ours(d) and d.metadata.resource_version == rv,
                     message="the patch MODIFIED")
        events.until(lambda t, d: at(d, 1, PAUSE_IMAGE) and d.spec.template.spec.termination_grace_period_seconds == 2,
                     message="scaled to 1 replica of the patched template")

        found = [d for d in apps.list_deployment_for_all_namespaces(label_selector=static).items
                 if d.metadata.namespace == ns and ours(d)]
        assert len(found) == 1, "the Deployment is listed"

        # An update of the object as first sent (no resourceVersion: unconditional), through the
        # dynamic client: new label value, image and replicas; the patched fields go back.
        update = copy.deepcopy(body)
        update["metadata"]["labels"]["test-deployment"] = "updated"
        update["spec"]["replicas"] = 2
        update["spec"]["template"]["spec"]["containers"][0]["image"] = WEBSERVER_IMAGE
        replaced = dyn.replace(deployments, body=update, namespace=ns)
        assert replaced.metadata.uid == created.metadata.uid
        modified(replaced, "the update MODIFIED")

        status = dyn.get(deployments.status, name=name, namespace=ns)
        assert status.spec.template.spec.containers[0].image == WEBSERVER_IMAGE
        assert status.metadata.labels["test-deployment"] == "updated"
        events.until(lambda t, d: at(d, 2, WEBSERVER_IMAGE), message="2 ready replicas of the updated template")

        # /status takes the status and ignores the labels.
        patched = dyn.patch(deployments.status, name=name, namespace=ns, body={
            "metadata": {"labels": {"test-deployment": "patched-status"}},
            "status": {"readyReplicas": 0, "availableReplicas": 0}})
        assert (patched.status.readyReplicas or 0, patched.status.availableReplicas or 0) == (0, 0)
        assert patched.metadata.labels["test-deployment"] == "updated"
        modified(patched, "the status patch MODIFIED")
        status = dyn.get(deployments.status, name=name, namespace=ns)
        assert status.spec.template.spec.containers[0].image == WEBSERVER_IMAGE
        assert status.metadata.labels["test-deployment"] == "updated"
        # The controller puts the status it computes back.
        events.until(lambda t, d: at(d, 2, WEBSERVER_IMAGE), message="status recomputed by the controller")

        apps.delete_collection_namespaced_deployment(ns, label_selector=static, grace_period_seconds=1)
        events.until(lambda t, d: t == "DELETED" and ours(d), message="DELETED")
        assert not apps.list_namespaced_deployment(ns, label_selector=static).items


def test_should_validate_deployment_status_endpoints(sim_cluster):
    """[sig-apps] Deployment should validate Deployment Status endpoints [Conformance]

    upstream's ConformanceIt body: read /status, update it with a new condition, merge-patch
    it with another; each write is visible to watches and reads, and the controller's later
    status writes keep the patched condition.
    """
    ns = create_namespace(sim_cluster, "conf-")
    name, selector = "test-deployment-" + uuid.uuid4().hex[:5], "e2e=testing"
    with sim_cluster.client() as api:
        apps = client.AppsV1Api(api)
        dyn = dynamic.DynamicClient(api)
        listed = apps.list_deployment_for_all_namespaces(label_selector=selector)
        events = Events(apps.list_namespaced_deployment, listed.metadata.resource_version, ns,
                        label_selector=selector)

        apps.create_namespaced_deployment(ns, new_deployment(name, 1, {"name": WEBSERVER_NAME, "e2e": "testing"},
                                                             WEBSERVER_NAME, WEBSERVER_IMAGE))
        wait_revision_and_image(api, ns, name, "1", WEBSERVER_IMAGE)
        wait_complete(api, ns, name)

        deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
        got = dyn.get(deployments.status, name=name, namespace=ns)
        assert (got.kind, got.metadata.name) == ("Deployment", name)
        assert {c.type for c in got.status.conditions} >= {"Available", "Progressing"}

        # RetryOnConflict: the controller may write status between our read and our write.
        for _ in range(10):
            d = apps.read_namespaced_deployment(name, ns)
            d.status.conditions.append(client.V1DeploymentCondition(
                type="StatusUpdate", status="True", reason="E2E", message="Set from e2e test"))
            try:
                updated = apps.replace_namespaced_deployment_status(name, ns, d)
                break
            except ApiException as e:
                if e.status != 409:
                    raise
        else:
            raise AssertionError("status update kept conflicting")
        assert has_condition(updated, "StatusUpdate", reason="E2E", message="Set from e2e test")
        events.until(lambda t, d: d.metadata.name == name and has_condition(
            d, "StatusUpdate", reason="E2E", message="Set from e2e test"), message="StatusUpdate condition")
        assert has_condition(apps.read_namespaced_deployment_status(name, ns), "StatusUpdate", reason="E2E")

        patched = apps.patch_namespaced_deployment_status(
            name, ns, {"status": {"conditions": [{"type": "StatusPatched", "status": "True"}]}},
            _content_type="application/merge-patch+json")
        # A JSON merge patch replaces the list as a whole.
        assert [(c.type, c.status) for c in patched.status.conditions] == [("StatusPatched", "True")]
        events.until(lambda t, d: d.metadata.name == name and has_condition(d, "StatusPatched"),
                     message="StatusPatched condition")

        # The controller restores the conditions it owns; no write after the patch drops the
        # patched one.
        def restored(_type, d) -> bool:
            assert has_condition(d, "StatusPatched"), f"StatusPatched lost: {plain(api, d.status)}"
            return has_condition(d, "Available") and has_condition(d, "Progressing")
        events.until(restored, message="Available and Progressing back beside StatusPatched")
        final = apps.read_namespaced_deployment_status(name, ns)
        assert has_condition(final, "StatusPatched", status="True")
        assert has_condition(final, "Available", status="True")
