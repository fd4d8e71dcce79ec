"""DaemonSets with the real kubectl and the official Python client: the DaemonSet conformance
behaviours (simple and complex daemons, failed pods retried, RollingUpdate, rollback without
unnecessary restarts, status endpoints, list and deletecollection), the ControllerRevision
lifecycle, `kubectl rollout status|history|undo daemonset/x`, and a DaemonSet following a real
`pocketkube agent` as it joins and leaves.

The conformance tests run against their own `pocketkube up --no-node --simulated-nodes 3` (they
relabel nodes, which the shared `sim_cluster` must not see). Simulated nodes run every image, so
a "broken" template is one whose container keeps crashing (pocketkube.dev/simulate-exit-*).
"""

from __future__ import annotations

import json
import os
import re
import signal

import pytest

from tests.conftest import (create_namespace, kill_agent, node_ready, start_agent, start_cluster, stop_cluster,
                            wait_until)

HASH = "controller-revision-hash"
NODES = ["sim-0", "sim-1", "sim-2"]


@pytest.fixture(scope="module")
def dsc(tmp_path_factory):
    c = start_cluster(str(tmp_path_factory.mktemp("pk-ds") / "data"), ["--no-node", "--simulated-nodes", "3"])
    wait_until(lambda: len(c.kubectl("get", "nodes", "-o", "name").stdout.split()) == 3, 30, message="3 nodes")
    yield c
    stop_cluster(c)


@pytest.fixture
def ns(dsc):
    return create_namespace(dsc, "ds-")


def daemonset(name: str, image: str = "nginx:1.14", labels: dict | None = None, node_selector: dict | None = None,
              strategy: dict | None = None, annotations: dict | None = None) -> str:
    sel = {"daemonset-name": name}
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "labels": dict(labels or sel)},
            "spec": {"selector": {"matchLabels": sel},
                     "template": {"metadata": {"labels": dict(sel), "annotations": dict(annotations or {})},
                                  "spec": {"containers": [{"name": "app", "image": image,
                                                           "ports": [{"containerPort": 9376}]}]}}}}
    if node_selector:
        body["spec"]["template"]["spec"]["nodeSelector"] = node_selector
    if strategy:
        body["spec"]["updateStrategy"] = strategy
    return json.dumps(body)


def live_pods(c, ns: str, name: str) -> list[dict]:
    return [p for p in c.kubectl_json("-n", ns, "get", "pods", "-l", f"daemonset-name={name}")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def running_on(c, ns: str, name: str, nodes: list[str]):
    """Exactly one Running pod on each of `nodes`, none elsewhere (checkRunningOnAllNodes)."""
    def check():
        pods = live_pods(c, ns, name)
        on = sorted(p["spec"].get("nodeName") or "" for p in pods
                    if p.get("status", {}).get("phase") == "Running")
        return on == sorted(nodes) and len(pods) == len(nodes) and pods
    return wait_until(check, 30, message=f"{name} running on {nodes}")


def status(c, ns: str, name: str) -> dict:
    return c.kubectl_json("-n", ns, "get", "ds", name).get("status", {})


def set_node_labels(c, node: str, **labels):
    args = [f"{k}={v}" if v is not None else f"{k}-" for k, v in labels.items()]
    c.kubectl("label", "node", node, "--overwrite", *args)


# ---- conformance ----------------------------------------------------------------------------------

def test_run_and_stop_simple_daemon(dsc, ns):
    c = dsc
    c.kubectl("-n", ns, "apply", "-f", "-", input=daemonset("daemon-set"))
    pods = running_on(c, ns, "daemon-set", NODES)
    for p in pods:
        assert re.fullmatch(r"daemon-set-[a-z0-9]{5}", p["metadata"]["name"])
        assert p["metadata"]["labels"][HASH]
        assert p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    wait_until(lambda: status(c, ns, "daemon-set").get("numberAvailable") == 3, 30, message="3 available")
    st = status(c, ns, "daemon-set")
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["numberReady"],
            st["updatedNumberScheduled"], st["numberMisscheduled"], st["observedGeneration"]) == (3, 3, 3, 3, 0, 1)
    row = c.kubectl("-n", ns, "get", "ds", "daemon-set", "--no-headers").stdout.split()
    assert row[:6] == ["daemon-set", "3", "3", "3", "3", "3"]
    out = c.kubectl("-n", ns, "rollout", "status", "ds/daemon-set", "--timeout=30s", timeout=60).stdout
    assert 'daemon set "daemon-set" successfully rolled out' in out

    # Stop a daemon pod: it is revived.
    victim = pods[0]
    c.kubectl("-n", ns, "delete", "pod", victim["metadata"]["name"], "--wait=false")
    revived = running_on(c, ns, "daemon-set", NODES)
    assert victim["metadata"]["uid"] not in {p["metadata"]["uid"] for p in revived}
    events = c.kubectl_json("-n", ns, "get", "events", "--field-selector",
                            "involvedObject.kind=DaemonSet,reason=SuccessfulCreate")["items"]
    assert len(events) == 4 and all(e["message"].startswith("Created pod: daemon-set-") for e in events)

    # Stop the daemon: its pods go with it.
    c.kubectl("-n", ns, "delete", "ds", "daemon-set")
    wait_until(lambda: not live_pods(c, ns, "daemon-set"), 30, message="daemon pods deleted")


def test_run_and_stop_complex_daemon(dsc, ns):
    c = dsc
    try:
        c.kubectl("-n", ns, "apply", "-f", "-",
                  input=daemonset("complex", node_selector={"daemonset-color": "blue"}, strategy={"type": "OnDelete"}))
        wait_until(lambda: status(c, ns, "complex").get("observedGeneration") == 1, 30, message="observed")
        assert live_pods(c, ns, "complex") == [] and status(c, ns, "complex")["desiredNumberScheduled"] == 0

        # Label a node blue: the daemon pod is launched there.
        set_node_labels(c, "sim-1", **{"daemonset-color": "blue"})
        running_on(c, ns, "complex", ["sim-1"])
        # Relabel it green: the pod is unscheduled.
        set_node_labels(c, "sim-1", **{"daemonset-color": "green"})
        wait_until(lambda: not live_pods(c, ns, "complex"), 30, message="daemon pod removed")
        # Select green and switch to RollingUpdate: the pod comes back.
        c.kubectl("-n", ns, "patch", "ds", "complex", "--type=strategic", "-p", json.dumps(
            {"spec": {"template": {"spec": {"nodeSelector": {"daemonset-color": "green"}}},
                      "updateStrategy": {"type": "RollingUpdate"}}}))
        running_on(c, ns, "complex", ["sim-1"])
        wait_until(lambda: status(c, ns, "complex").get("numberAvailable") == 1, 30, message="available")
        # A NoSchedule taint keeps the running pod (misscheduled), a NoExecute one removes it.
        c.kubectl("taint", "node", "sim-1", "dedicated=db:NoSchedule")
        wait_until(lambda: status(c, ns, "complex").get("numberMisscheduled") == 1, 30, message="misscheduled")
        assert len(live_pods(c, ns, "complex")) == 1
        c.kubectl("taint", "node", "sim-1", "dedicated=db:NoExecute")
        wait_until(lambda: not live_pods(c, ns, "complex"), 30, message="evicted by NoExecute")
    finally:
        set_node_labels(c, "sim-1", **{"daemonset-color": None})
        c.kubectl("taint", "node", "sim-1", "dedicated-", check=False)


def test_retry_creating_failed_daemon_pods(dsc, ns):
    c = dsc
    c.kubectl("-n", ns, "apply", "-f", "-", input=daemonset("daemon-set"))
    pods = running_on(c, ns, "daemon-set", NODES)
    from kubernetes import client as k8s
    core = k8s.CoreV1Api(c.client())
    victim = core.read_namespaced_pod(pods[0]["metadata"]["name"], ns)
    victim.status.phase = "Failed"
    core.replace_namespaced_pod_status(victim.metadata.name, ns, victim)

    def gone():
        return core.list_namespaced_pod(ns, field_selector=f"metadata.name={victim.metadata.name}").items == []
    wait_until(gone, 30, message="failed daemon pod deleted")
    running_on(c, ns, "daemon-set", NODES)
    events = c.kubectl_json("-n", ns, "get", "events", "--field-selector", "reason=FailedDaemonPod")["items"]
    assert events and events[0]["type"] == "Warning"
    assert events[0]["message"] == (f"Found failed daemon pod {ns}/{victim.metadata.name} on node "
                                    f"{victim.spec.node_name}, will try to kill it")


def test_rolling_update_and_rollout_commands(dsc, ns):
    c = dsc
    c.kubectl("-n", ns, "apply", "-f", "-", input=daemonset("rolling", strategy={"type": "RollingUpdate"}))
    first = running_on(c, ns, "rolling", NODES)
    c.kubectl("-n", ns, "rollout", "status", "ds/rolling", "--timeout=30s", timeout=60)
    c.kubectl("-n", ns, "set", "image", "ds/rolling", "app=nginx:1.25")
    out = c.kubectl("-n", ns, "rollout", "status", "ds/rolling", "--timeout=60s", timeout=90).stdout
    assert 'daemon set "rolling" successfully rolled out' in out
    pods = running_on(c, ns, "rolling", NODES)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.25"}
    assert not {p["metadata"]["uid"] for p in pods} & {p["metadata"]["uid"] for p in first}
    revs = sorted(c.kubectl_json("-n", ns, "get", "controllerrevisions", "-l", "daemonset-name=rolling")["items"],
                  key=lambda r: r["revision"])
    assert [r["revision"] for r in revs] == [1, 2]
    assert {p["metadata"]["labels"][HASH] for p in pods} == {revs[1]["metadata"]["labels"][HASH]}
    st = status(c, ns, "rolling")
    assert (st["updatedNumberScheduled"], st["numberAvailable"], st["observedGeneration"]) == (3, 3, 2)

    history = c.kubectl("-n", ns, "rollout", "history", "ds/rolling").stdout
    assert re.search(r"^1\s", history, re.MULTILINE) and re.search(r"^2\s", history, re.MULTILINE)
    detail = c.kubectl("-n", ns, "rollout", "history", "ds/rolling", "--revision=1").stdout
    assert "nginx:1.14" in detail

    c.kubectl("-n", ns, "rollout", "undo", "ds/rolling")
    c.kubectl("-n", ns, "rollout", "status", "ds/rolling", "--timeout=60s", timeout=90)
    pods = running_on(c, ns, "rolling", NODES)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.14"}
    revs = sorted(c.kubectl_json("-n", ns, "get", "controllerrevisions", "-l", "daemonset-name=rolling")["items"],
                  key=lambda r: r["revision"])
    assert [r["revision"] for r in revs] == [2, 3]
    assert "nginx:1.14" in c.kubectl("-n", ns, "rollout", "history", "ds/rolling", "--revision=3").stdout
    # Undoing to the current revision changes nothing (kubectl compares bytes of Go's encoding to
    # say "skipped rollback"; here the patch is simply a no-op).
    c.kubectl("-n", ns, "rollout", "undo", "ds/rolling", "--to-revision=3")
    assert c.kubectl_json("-n", ns, "get", "ds", "rolling")["metadata"]["generation"] == 3


def test_rollback_without_unnecessary_restarts(dsc, ns):
    c = dsc
    c.kubectl("-n", ns, "apply", "-f", "-", input=daemonset("rb", strategy={"type": "RollingUpdate"}))
    first = running_on(c, ns, "rb", NODES)
    # Update to a template whose pods never become ready: the rollout stops after one node.
    c.kubectl("-n", ns, "patch", "ds", "rb", "--type=strategic", "-p", json.dumps({"spec": {"template": {
        "metadata": {"annotations": {"pocketkube.dev/simulate-exit-after": "0s",
                                     "pocketkube.dev/simulate-exit-code": "1"}},
        "spec": {"containers": [{"name": "app", "image": "foo:non-existent"}]}}}}))

    def one_broken():
        pods = live_pods(c, ns, "rb")
        bad = [p for p in pods if p["spec"]["containers"][0]["image"] == "foo:non-existent"]
        return len(pods) == 3 and len(bad) == 1 and bad
    wait_until(one_broken, 30, message="one pod of the broken template")
    c.kubectl("-n", ns, "rollout", "undo", "ds/rb")

    def rolled_back():
        pods = live_pods(c, ns, "rb")
        ok = (len(pods) == 3 and all(p["spec"]["containers"][0]["image"] == "nginx:1.14" for p in pods)
              and all(p.get("status", {}).get("phase") == "Running" for p in pods))
        return ok and pods
    pods = wait_until(rolled_back, 30, message="rolled back")
    kept = {p["metadata"]["uid"] for p in first} & {p["metadata"]["uid"] for p in pods}
    assert len(kept) == 2, "only the pod of the broken template may be replaced"


def test_daemon_set_status_endpoints(dsc, ns):
    c = dsc
    from kubernetes import client as k8s
    apps = k8s.AppsV1Api(c.client())
    c.kubectl("-n", ns, "apply", "-f", "-", input=daemonset("status-ds"))
    running_on(c, ns, "status-ds", NODES)
    ds = apps.read_namespaced_daemon_set_status("status-ds", ns)
    assert ds.status.desired_number_scheduled == 3
    ds.status.conditions = [k8s.V1DaemonSetCondition(type="StatusUpdate", status="True", reason="E2E",
                                                     message="Set from e2e test")]
    apps.replace_namespaced_daemon_set_status("status-ds", ns, ds)
    apps.patch_namespaced_daemon_set_status("status-ds", ns, {
        "metadata": {"annotations": {"patchedstatus": "true"}},
        "status": {"conditions": [{"type": "StatusPatched", "status": "True"}]}})

    def conditions():
        st = apps.read_namespaced_daemon_set_status("status-ds", ns)
        return sorted(cond.type for cond in st.status.conditions or ())
    wait_until(lambda: conditions() == ["StatusPatched", "StatusUpdate"], 10, message="both conditions")
    # The controller keeps them while it updates its counters.
    c.kubectl("-n", ns, "delete", "pod", live_pods(c, ns, "status-ds")[0]["metadata"]["name"], "--wait=false")
    running_on(c, ns, "status-ds", NODES)
    assert conditions() == ["StatusPatched", "StatusUpdate"]


def test_list_and_delete_collection(dsc, ns):
    c = dsc
    from kubernetes import client as k8s
    apps = k8s.AppsV1Api(c.client())
    c.kubectl("-n", ns, "apply", "-f", "-", input=daemonset("listed", labels={"daemonset-name": "listed",
                                                                               "e2e": "patched"}))
    running_on(c, ns, "listed", NODES)
    found = apps.list_daemon_set_for_all_namespaces(label_selector="daemonset-name=listed,e2e=patched").items
    assert [d.metadata.name for d in found] == ["listed"]
    apps.delete_collection_namespaced_daemon_set(ns, label_selector="daemonset-name=listed")
    wait_until(lambda: not apps.list_namespaced_daemon_set(ns).items, 30, message="collection deleted")
    wait_until(lambda: not live_pods(c, ns, "listed"), 30, message="its pods deleted")


def test_controller_revision_lifecycle(dsc, ns):
    c = dsc
    from kubernetes import client as k8s
    apps = k8s.AppsV1Api(c.client())
    name = "e2e-crl-daemon-set"
    sel = f"daemonset-name={name}"
    c.kubectl("-n", ns, "apply", "-f", "-", input=daemonset(name))
    running_on(c, ns, name, NODES)
    ds = apps.read_namespaced_daemon_set(name, ns)
    wait_until(lambda: len(apps.list_controller_revision_for_all_namespaces(label_selector=sel).items) == 1, 10,
               message="one revision")
    (initial,) = apps.list_controller_revision_for_all_namespaces(label_selector=sel).items
    assert initial.metadata.owner_references[0].uid == ds.metadata.uid
    patched = apps.patch_namespaced_controller_revision(initial.metadata.name, ns,
                                                        {"metadata": {"labels": {initial.metadata.name: "patched"}}})
    assert patched.metadata.labels[initial.metadata.name] == "patched"

    new = k8s.V1ControllerRevision(
        metadata=k8s.V1ObjectMeta(name=f"{name}-manual", namespace=ns,
                                  labels={"daemonset-name": name, HASH: "manual"},
                                  owner_references=[k8s.V1OwnerReference(
                                      api_version="apps/v1", kind="DaemonSet", name=name, uid=ds.metadata.uid,
                                      controller=True, block_owner_deletion=True)]),
        data=initial.data, revision=initial.revision + 1)
    apps.create_namespaced_controller_revision(ns, new)
    count = lambda n: len(apps.list_namespaced_controller_revision(ns, label_selector=sel).items) == n
    wait_until(lambda: count(2), 10, message="two revisions")
    apps.delete_namespaced_controller_revision(initial.metadata.name, ns)
    wait_until(lambda: count(1), 10, message="one revision")
    (current,) = apps.list_namespaced_controller_revision(ns).items
    current.metadata.labels[current.metadata.name] = "updated"
    updated = apps.replace_namespaced_controller_revision(current.metadata.name, ns, current)
    assert updated.metadata.labels[current.metadata.name] == "updated"

    apps.patch_namespaced_daemon_set(name, ns, {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 1}}}})
    wait_until(lambda: count(2), 10, message="a revision for the patched template")
    apps.delete_collection_namespaced_controller_revision(ns, label_selector=f"{updated.metadata.name}=updated")
    wait_until(lambda: count(1), 10, message="one revision left")
    assert apps.list_namespaced_controller_revision(ns).items[0].revision == 3


# ---- agents joining and leaving -------------------------------------------------------------------

def test_daemonset_follows_agents_as_they_join_and_leave(tmp_path):
    c = start_cluster(str(tmp_path / "data"), ["--no-node", "--simulated-nodes", "1"])
    agent = None
    try:
        ns = create_namespace(c, "agents-")
        body = json.loads(daemonset("node-agent", image="busybox"))
        body["spec"]["template"]["spec"]["containers"][0].update(command=["sh", "-c", "sleep 3600"])
        body["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
        c.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(body))
        running_on(c, ns, "node-agent", ["sim-0"])

        agent = start_agent(c, "joined-1", str(tmp_path / "agent"))
        wait_until(lambda: node_ready(c, "joined-1") == "True", 30, message="joined node Ready")
        pods = running_on(c, ns, "node-agent", ["sim-0", "joined-1"])
        joined = next(p for p in pods if p["spec"]["nodeName"] == "joined-1")
        wait_until(lambda: status(c, ns, "node-agent").get("numberAvailable") == 2, 30, message="2 available")

        # The agent leaves: it stops, and its node object is deleted.
        os.killpg(agent.pid, signal.SIGTERM)
        agent.wait(30)
        c.kubectl("delete", "node", "joined-1")

        def gone():
            uids = {p["metadata"]["uid"] for p in c.kubectl_json("-n", ns, "get", "pods")["items"]}
            return joined["metadata"]["uid"] not in uids
        wait_until(gone, 30, message="the daemon pod of the deleted node removed")
        running_on(c, ns, "node-agent", ["sim-0"])
        wait_until(lambda: (status(c, ns, "node-agent").get("desiredNumberScheduled"),
                            status(c, ns, "node-agent").get("currentNumberScheduled")) == (1, 1), 30,
                   message="status back to one node")
    finally:
        kill_agent(agent)
        stop_cluster(c)
