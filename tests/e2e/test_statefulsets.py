"""StatefulSets with the real kubectl and the official Python client: the StatefulSet conformance
behaviours, `kubectl rollout status|history|undo` and `kubectl scale`, and the seed's steps S1-S5.

Most tests run against `pocketkube up --simulated-nodes 3 --no-node` (pods become Running and
Ready at once). Two need pods that really run: ordered scaling that halts on an unhealthy pod
(an exec readiness probe the test breaks and restores by removing and creating a file on a
hostPath volume) and the seed steps, on the `cluster` fixture's local process node.

Seed S1-S5 use `st-nginx.yaml` with one change: the PersistentVolume's `nfs:` source (a server on
the author's lab network, never contacted) is swapped for `hostPath:` on a temporary directory.
So that other tests sharing the cluster cannot bind the claim, the volume's name and the class
both claim and volume use get a per-test suffix. nginx:1.14 runs the host's nginx from the
image catalog; where nginx is missing, the container runs `python3 -m http.server 80` in the
mounted directory instead, and the test says so.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
import urllib.request

import pytest
import yaml

from tests.conftest import SEED, create_namespace, wait_until

REVISION_LABEL = "controller-revision-hash"


@pytest.fixture(scope="module")
def sim(sim_cluster):
    return sim_cluster


@pytest.fixture
def sns(sim):
    return create_namespace(sim, "sts-")


def statefulset(name: str, replicas: int = 3, image: str = "nginx:1.14", labels: dict | None = None,
                pod_spec: dict | None = None, **spec) -> dict:
    labels = labels or {"app": name}
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "web", "image": image}], **(pod_spec or {})}}}}
    body["spec"].update(spec)
    return body


def apply(c, ns: str, obj: dict) -> None:
    c.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(obj))


def pods(c, ns: str, name: str) -> list[dict]:
    items = c.kubectl_json("-n", ns, "get", "pods", "-l", f"app={name}")["items"]
    return sorted((p for p in items if not p["metadata"].get("deletionTimestamp")),
                  key=lambda p: int(p["metadata"]["name"].rsplit("-", 1)[1]))


def names(c, ns: str, name: str) -> list[str]:
    return [p["metadata"]["name"] for p in pods(c, ns, name)]


def is_ready(p: dict) -> bool:
    return p.get("status", {}).get("phase") == "Running" and any(
        x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions", []))


def sts_status(c, ns: str, name: str) -> dict:
    return c.kubectl_json("-n", ns, "get", "statefulset", name).get("status") or {}


def rollout_status(c, ns: str, name: str, timeout: str = "60s") -> str:
    return c.kubectl("-n", ns, "rollout", "status", f"statefulset/{name}", f"--timeout={timeout}",
                     timeout=90).stdout


def images(c, ns: str, name: str) -> dict[str, str]:
    return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in pods(c, ns, name)}


# ---- conformance, on simulated nodes ---------------------------------------------------------

def one_ready_pod(c, ns: str) -> None:
    apply(c, ns, statefulset("ss", replicas=1))
    wait_until(lambda: sts_status(c, ns, "ss").get("readyReplicas") == 1, 30, message="ss-0 ready")


def test_scale_subresource(sim, sns):
    from kubernetes import client
    c, ns = sim, sns
    one_ready_pod(c, ns)
    with c.client() as api_client:
        apps = client.AppsV1Api(api_client)
        scale = apps.read_namespaced_stateful_set_scale("ss", ns)
        assert scale.spec.replicas == 1 and scale.status.replicas == 1
        scale.spec.replicas = 2
        updated = apps.replace_namespaced_stateful_set_scale("ss", ns, scale)
        assert updated.spec.replicas == 2
        assert apps.read_namespaced_stateful_set("ss", ns).spec.replicas == 2
        apps.patch_namespaced_stateful_set_scale("ss", ns, {"spec": {"replicas": 4}})
        assert apps.read_namespaced_stateful_set("ss", ns).spec.replicas == 4
    wait_until(lambda: names(c, ns, "ss") == ["ss-0", "ss-1", "ss-2", "ss-3"], 30, message="4 pods")
    # kubectl scale goes through the same subresource.
    assert "statefulset.apps/ss scaled" in c.kubectl("-n", ns, "scale", "statefulset", "ss", "--replicas=2").stdout
    wait_until(lambda: names(c, ns, "ss") == ["ss-0", "ss-1"], 30, message="scaled down to 2")
    row = c.kubectl("-n", ns, "get", "sts", "ss", "--no-headers").stdout.split()
    wait_until(lambda: c.kubectl("-n", ns, "get", "sts", "ss", "--no-headers").stdout.split()[1] == "2/2",
               30, message=f"READY 2/2 (got {row})")


def test_list_patch_and_delete_collection(sim, sns):
    from kubernetes import client
    c, ns = sim, sns
    with c.client() as api_client:
        apps = client.AppsV1Api(api_client)
        body = statefulset("ss", replicas=1, labels={"app": "ss", "e2e": "list"})
        apps.create_namespaced_stateful_set(ns, body)
        found = apps.list_namespaced_stateful_set(ns, label_selector="e2e=list").items
        assert [s.metadata.name for s in found] == ["ss"]
        apps.patch_namespaced_stateful_set("ss", ns, {"metadata": {"labels": {"patched": "yes"}},
                                                     "spec": {"replicas": 2}})
        got = apps.read_namespaced_stateful_set("ss", ns)
        assert got.metadata.labels["patched"] == "yes" and got.spec.replicas == 2
        wait_until(lambda: len(names(c, ns, "ss")) == 2, 30, message="2 pods after patch")
        apps.delete_collection_namespaced_stateful_set(ns, label_selector="e2e=list")
        wait_until(lambda: not apps.list_namespaced_stateful_set(ns, label_selector="e2e=list").items, 30,
                   message="collection deleted")
        wait_until(lambda: not names(c, ns, "ss"), 30, message="pods garbage collected")


def test_status_endpoints(sim, sns):
    from kubernetes import client
    c, ns = sim, sns
    one_ready_pod(c, ns)
    with c.client() as api_client:
        apps = client.AppsV1Api(api_client)
        st = apps.read_namespaced_stateful_set_status("ss", ns)
        assert st.status.replicas == 1 and st.status.observed_generation == 1
        st.status.conditions = [client.V1StatefulSetCondition(type="StatusUpdate", status="True",
                                                              reason="E2E", message="Set from e2e test")]
        apps.replace_namespaced_stateful_set_status("ss", ns, st)
        got = apps.read_namespaced_stateful_set_status("ss", ns).status.conditions
        assert [(x.type, x.reason) for x in got] == [("StatusUpdate", "E2E")]
        apps.patch_namespaced_stateful_set_status("ss", ns, {"status": {"conditions": [
            {"type": "StatusPatched", "status": "True"}]}})
        got = apps.read_namespaced_stateful_set_status("ss", ns).status.conditions
        assert {x.type for x in got} == {"StatusUpdate", "StatusPatched"}


def test_rolling_update_rollout_history_and_undo(sim, sns):
    c, ns = sim, sns
    apply(c, ns, statefulset("web"))
    assert "partitioned roll out complete: 3 new pods have been updated..." in rollout_status(c, ns, "web")
    st1 = sts_status(c, ns, "web")
    assert st1["currentRevision"] == st1["updateRevision"]
    out = c.kubectl("-n", ns, "get", "sts", "web").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "AGE"] and out[1].split()[:2] == ["web", "3/3"]

    assert "statefulset.apps/web image updated" in \
        c.kubectl("-n", ns, "set", "image", "statefulset/web", "web=nginx:1.16").stdout
    rollout_status(c, ns, "web")
    wait_until(lambda: set(images(c, ns, "web").values()) == {"nginx:1.16"}
               and sts_status(c, ns, "web").get("currentRevision") == sts_status(c, ns, "web").get("updateRevision"),
               30, message="all pods at nginx:1.16")
    st2 = sts_status(c, ns, "web")
    assert st2["updateRevision"] != st1["updateRevision"]
    assert {p["metadata"]["labels"][REVISION_LABEL] for p in pods(c, ns, "web")} == {st2["updateRevision"]}
    assert st2["updatedReplicas"] == 3 and st2["currentReplicas"] == 3

    hist = c.kubectl("-n", ns, "rollout", "history", "statefulset/web").stdout
    assert "statefulset.apps/web" in hist
    assert [ln.split()[0] for ln in hist.splitlines()[2:] if ln.strip()] == ["1", "2"]
    assert "nginx:1.14" in c.kubectl("-n", ns, "rollout", "history", "statefulset/web", "--revision=1").stdout

    assert "statefulset.apps/web rolled back" in c.kubectl("-n", ns, "rollout", "undo", "statefulset/web").stdout
    rollout_status(c, ns, "web")
    wait_until(lambda: set(images(c, ns, "web").values()) == {"nginx:1.14"}
               and sts_status(c, ns, "web").get("currentRevision") == st1["currentRevision"], 30,
               message="rolled back to the first revision")
    # A rollback reuses the earlier revision (renumbered), it does not make a new one.
    revs = c.kubectl_json("-n", ns, "get", "controllerrevisions")["items"]
    assert sorted((r["metadata"]["name"], r["revision"]) for r in revs) == \
        sorted([(st2["updateRevision"], 2), (st1["currentRevision"], 3)])
    hist = c.kubectl("-n", ns, "rollout", "history", "statefulset/web").stdout
    assert [ln.split()[0] for ln in hist.splitlines()[2:] if ln.strip()] == ["2", "3"]
    # The revision's data is byte for byte what kubectl computes from the live template.
    assert "skipped rollback (current template already matches revision 3)" in \
        c.kubectl("-n", ns, "rollout", "undo", "statefulset/web", "--to-revision=3").stdout
    events = c.kubectl_json("-n", ns, "get", "events", "--field-selector", "involvedObject.kind=StatefulSet")["items"]
    msgs = {e["message"] for e in events}
    assert "create Pod web-0 in StatefulSet web successful" in msgs
    assert "delete Pod web-2 in StatefulSet web successful" in msgs


def test_canary_and_phased_rolling_updates_with_partition(sim, sns):
    c, ns = sim, sns
    apply(c, ns, statefulset("ss", updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}))
    wait_until(lambda: sts_status(c, ns, "ss").get("readyReplicas") == 3, 30, message="3 ready")
    rev1 = sts_status(c, ns, "ss")["currentRevision"]
    # Partition above the replicas: a template change updates no pod.
    c.kubectl("-n", ns, "set", "image", "statefulset/ss", "web=nginx:1.16")
    wait_until(lambda: sts_status(c, ns, "ss").get("updateRevision", rev1) != rev1, 30, message="new revision")
    rev2 = sts_status(c, ns, "ss")["updateRevision"]
    time.sleep(0.5)
    assert set(images(c, ns, "ss").values()) == {"nginx:1.14"}
    # Canary: partition 2 updates only ss-2.
    c.kubectl("-n", ns, "patch", "statefulset", "ss", "-p",
              json.dumps({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}}))
    wait_until(lambda: images(c, ns, "ss") == {"ss-0": "nginx:1.14", "ss-1": "nginx:1.14", "ss-2": "nginx:1.16"}
               and all(is_ready(p) for p in pods(c, ns, "ss")), 30, message="canary ss-2")
    assert "partitioned roll out complete: 1 new pods have been updated..." in rollout_status(c, ns, "ss")
    # A pod below the partition that is deleted comes back at the current revision.
    c.kubectl("-n", ns, "delete", "pod", "ss-0")
    wait_until(lambda: [p["metadata"]["labels"][REVISION_LABEL] for p in pods(c, ns, "ss")] == [rev1, rev1, rev2]
               and all(is_ready(p) for p in pods(c, ns, "ss")), 30, message="ss-0 restored at the old revision")
    assert images(c, ns, "ss")["ss-0"] == "nginx:1.14"
    # Phased: lower the partition step by step.
    for partition, want in ((1, ["nginx:1.14", "nginx:1.16", "nginx:1.16"]),
                            (0, ["nginx:1.16", "nginx:1.16", "nginx:1.16"])):
        c.kubectl("-n", ns, "patch", "statefulset", "ss", "-p",
                  json.dumps({"spec": {"updateStrategy": {"rollingUpdate": {"partition": partition}}}}))
        wait_until(lambda want=want: [images(c, ns, "ss").get(f"ss-{i}") for i in range(3)] == want, 30,
                   message=f"partition {partition}")
    wait_until(lambda: sts_status(c, ns, "ss").get("currentRevision") == rev2, 30, message="update complete")


def test_burst_scaling_runs_to_completion_with_unhealthy_pods(sim, sns):
    c, ns = sim, sns
    # Pods that no node accepts stay Pending (not ready); Parallel creates and deletes anyway.
    apply(c, ns, statefulset("ss", podManagementPolicy="Parallel",
                             pod_spec={"nodeSelector": {"pocketkube.test/nowhere": "true"}}))
    wait_until(lambda: names(c, ns, "ss") == ["ss-0", "ss-1", "ss-2"], 30, message="3 pods at once")
    assert not any(is_ready(p) for p in pods(c, ns, "ss"))
    c.kubectl("-n", ns, "scale", "statefulset", "ss", "--replicas=5")
    wait_until(lambda: names(c, ns, "ss") == [f"ss-{i}" for i in range(5)], 30, message="5 pods")
    c.kubectl("-n", ns, "scale", "statefulset", "ss", "--replicas=0")
    wait_until(lambda: not names(c, ns, "ss"), 30, message="all deleted")


def test_recreates_a_failed_pod(sim, sns):
    c, ns = sim, sns
    # Unscheduled pods: nothing but the test writes their status, as a kubelet evicting one would.
    apply(c, ns, statefulset("ss", replicas=1, pod_spec={"nodeSelector": {"pocketkube.test/nowhere": "true"}}))
    wait_until(lambda: names(c, ns, "ss") == ["ss-0"], 30, message="ss-0")
    first = pods(c, ns, "ss")[0]["metadata"]["uid"]
    c.kubectl("-n", ns, "patch", "pod", "ss-0", "--subresource=status", "--type=merge", "-p",
              json.dumps({"status": {"phase": "Failed", "reason": "Evicted"}}))
    wait_until(lambda: [p["metadata"]["uid"] for p in pods(c, ns, "ss")] not in ([], [first]), 30,
               message="ss-0 made again")
    assert pods(c, ns, "ss")[0]["metadata"]["name"] == "ss-0"


# ---- with real processes --------------------------------------------------------------------

def settle(c, ns: str, name: str) -> None:
    """The controller has seen the latest spec (observedGeneration), plus a moment to act on it."""
    def observed():
        s = c.kubectl_json("-n", ns, "get", "statefulset", name)
        return (s.get("status") or {}).get("observedGeneration") == s["metadata"]["generation"]
    wait_until(observed, 30, message=f"{name} spec observed")
    time.sleep(0.5)


def _touch(d: str, name: str) -> None:
    open(os.path.join(d, name), "w").close()


def test_ordered_scaling_halts_on_an_unhealthy_pod(cluster, tmp_path):
    """Scale up and down happen in ordinal order, and stop while a pod is not ready."""
    c = cluster
    ns = create_namespace(c, "sts-")
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    d = str(probe_dir)
    pod_spec = {
        "terminationGracePeriodSeconds": 1,
        "volumes": [{"name": "probe", "hostPath": {"path": d}}],
        "containers": [{
            "name": "web", "image": "busybox", "command": ["sleep", "3600"],
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "volumeMounts": [{"name": "probe", "mountPath": "/probe"}],
            "readinessProbe": {"exec": {"command": ["sh", "-c", "test -e /probe/$POD_NAME"]},
                               "periodSeconds": 1, "failureThreshold": 1}}]}
    apply(c, ns, statefulset("ss", replicas=1, pod_spec=pod_spec))
    _touch(d, "ss-0")
    wait_until(lambda: sts_status(c, ns, "ss").get("readyReplicas") == 1, 30, message="ss-0 ready")
    # Scale up halts while ss-0 is unhealthy.
    os.remove(os.path.join(d, "ss-0"))
    wait_until(lambda: sts_status(c, ns, "ss").get("readyReplicas") == 0, 30, message="ss-0 unready")
    c.kubectl("-n", ns, "scale", "statefulset", "ss", "--replicas=3")
    settle(c, ns, "ss")
    assert names(c, ns, "ss") == ["ss-0"]
    _touch(d, "ss-0")
    wait_until(lambda: names(c, ns, "ss") == ["ss-0", "ss-1"], 30, message="ss-1 once ss-0 is ready")
    time.sleep(1)
    assert names(c, ns, "ss") == ["ss-0", "ss-1"], "ss-2 waits for ss-1 to be ready"
    _touch(d, "ss-1")
    _touch(d, "ss-2")
    wait_until(lambda: sts_status(c, ns, "ss").get("readyReplicas") == 3, 30, message="3 ready")
    # Scale down halts while pods are unhealthy, then goes in reverse ordinal order.
    for n in ("ss-0", "ss-1", "ss-2"):
        os.remove(os.path.join(d, n))
    wait_until(lambda: sts_status(c, ns, "ss").get("readyReplicas") == 0, 30, message="all unready")
    c.kubectl("-n", ns, "scale", "statefulset", "ss", "--replicas=0")
    settle(c, ns, "ss")
    assert names(c, ns, "ss") == ["ss-0", "ss-1", "ss-2"]
    for n in ("ss-0", "ss-1", "ss-2"):
        _touch(d, n)
    wait_until(lambda: not names(c, ns, "ss"), 60, message="scaled to 0")
    deletes = [e for e in c.kubectl_json("-n", ns, "get", "events", "--field-selector",
                                         "reason=SuccessfulDelete")["items"]]
    assert [e["message"] for e in sorted(deletes, key=lambda e: e["metadata"]["name"])] == \
        [f"delete Pod ss-{i} in StatefulSet ss successful" for i in (2, 1, 0)]
    c.kubectl("delete", "namespace", ns, "--wait=false")


def _seed_manifests(tmp_path, suffix: str) -> tuple[str, str]:
    """st-nginx.yaml with the NFS source swapped for hostPath (and names made per test)."""
    with open(os.path.join(SEED, "st-nginx.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    html = tmp_path / "html"
    html.mkdir()
    os.chmod(html, 0o755)
    pv, pvc, sts = docs
    pv["metadata"]["name"] = f"nfs-pv-{suffix}"
    pv["spec"].pop("nfs")
    pv["spec"]["hostPath"] = {"path": str(html)}
    pv["spec"]["storageClassName"] = pvc["spec"]["storageClassName"] = f"manual-{suffix}"
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        # No nginx on this machine: serve the mounted directory with Python instead.
        sts["spec"]["template"]["spec"]["containers"][0]["command"] = [
            "sh", "-c", "cd /usr/share/nginx/html && exec python3 -m http.server 80"]
    path = tmp_path / "st-nginx.yaml"
    path.write_text(yaml.safe_dump_all([pv, pvc, sts]))
    return str(path), str(html)


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def test_seed_s1_to_s5(cluster, tmp_path):
    c = cluster
    ns = create_namespace(c, "st-")
    suffix = ns.rsplit("-", 1)[1]
    manifest, html = _seed_manifests(tmp_path, suffix)

    def k(*args, **kw):
        return c.kubectl("-n", ns, *args, **kw)

    def ready() -> list[dict]:
        return [p for p in pods_nginx() if is_ready(p)]

    def pods_nginx() -> list[dict]:
        return pods(c, ns, "nginx")

    # S1: the claim binds the volume; st-nginx-0, -1, -2 start one after the other.
    k("create", "-f", manifest)
    wait_until(lambda: k("get", "pvc", "nfs-pvc", "-o", "jsonpath={.status.phase}").stdout == "Bound", 30,
               message="nfs-pvc Bound")
    assert k("get", "pvc", "nfs-pvc", "-o", "jsonpath={.spec.volumeName}").stdout == f"nfs-pv-{suffix}"
    wait_until(lambda: len(ready()) == 3, 90, message="3 st-nginx pods ready")
    ps = pods_nginx()
    assert [p["metadata"]["name"] for p in ps] == ["st-nginx-0", "st-nginx-1", "st-nginx-2"]
    for prev, nxt in itertools.pairwise(ps):
        ready_at = next(x["lastTransitionTime"] for x in prev["status"]["conditions"] if x["type"] == "Ready")
        assert nxt["metadata"]["creationTimestamp"] >= ready_at, "created only after the previous one was ready"
    events = json.loads(k("get", "events", "-o", "json", "--field-selector",
                          "involvedObject.kind=StatefulSet").stdout)["items"]
    creates = [e["message"] for e in sorted(events, key=lambda e: e["metadata"]["name"])
               if e["reason"] == "SuccessfulCreate"]
    assert creates == [f"create Pod st-nginx-{i} in StatefulSet st-nginx successful" for i in range(3)]
    out = k("get", "sts", "st-nginx", "--no-headers").stdout.split()
    assert out[:2] == ["st-nginx", "3/3"]

    # S2: a deleted pod comes back with the same name, node and volume.
    old = next(p for p in ps if p["metadata"]["name"] == "st-nginx-2")
    k("delete", "pod", "st-nginx-2")
    wait_until(lambda: any(p["metadata"]["name"] == "st-nginx-2" and p["metadata"]["uid"] != old["metadata"]["uid"]
                           for p in ready()), 60, message="st-nginx-2 back")
    new = next(p for p in ready() if p["metadata"]["name"] == "st-nginx-2")
    assert new["spec"]["nodeName"] == old["spec"]["nodeName"]
    assert new["spec"]["volumes"] == old["spec"]["volumes"]
    assert new["spec"]["hostname"] == "st-nginx-2" and new["spec"]["subdomain"] == "st-nginx"

    # S3: every pod serves index.html from the shared volume on its own IP.
    with open(os.path.join(html, "index.html"), "w") as f:
        f.write("Hello SeSAC\n")
    # Pods have their own IPs on the pk0 bridge when isolated (root on Linux); otherwise they
    # share the host's port 80 and only the files can be checked.
    isolated = os.geteuid() == 0 and os.uname().sysname == "Linux"
    if isolated:
        ips = [p["status"]["podIP"] for p in ready()]
        assert len(set(ips)) == 3 and all(ip.startswith("10.42.") for ip in ips)

    def all_serve() -> bool:
        served = [_get(f"http://{p['status']['podIP']}/") for p in ready()]
        return served and all(s == "Hello SeSAC\n" for s in served) and len(served)
    if isolated:
        assert wait_until(all_serve, 30, message="Hello SeSAC from every pod") == 3

    # S4: scaling to 5 adds st-nginx-3 and -4 in order, serving the same content.
    assert "statefulset.apps/st-nginx scaled" in k("scale", "statefulset", "st-nginx", "--replicas=5").stdout
    wait_until(lambda: len(ready()) == 5, 90, message="5 pods ready")
    ps = pods_nginx()
    assert [p["metadata"]["name"] for p in ps] == [f"st-nginx-{i}" for i in range(5)]
    ready_at = next(x["lastTransitionTime"] for x in ps[3]["status"]["conditions"] if x["type"] == "Ready")
    assert ps[4]["metadata"]["creationTimestamp"] >= ready_at
    if isolated:
        assert wait_until(all_serve, 30, message="Hello SeSAC from all 5 pods") == 5

    # S5: deleting every StatefulSet removes its pods; the claim stays.
    assert 'statefulset.apps "st-nginx" deleted' in k("delete", "statefulset", "--all").stdout
    wait_until(lambda: not pods_nginx(), 60, message="pods gone")
    assert k("get", "pvc", "nfs-pvc", "-o", "jsonpath={.status.phase}").stdout == "Bound"
    k("delete", "pvc", "nfs-pvc", "--wait=false")
    c.kubectl("delete", "pv", f"nfs-pv-{suffix}", "--wait=false")
    c.kubectl("delete", "namespace", ns, "--wait=false")
