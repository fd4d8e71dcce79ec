"""Deployments with the real kubectl: `rollout status|history|undo|pause|resume|restart`,
`set image|resources|env`, and the seed's steps D1-D8.

The rollout commands run against `pocketkube up --simulated-nodes 3 --no-node` (pods become
Running at once, nothing is executed). The seed steps run on the `cluster` fixture's local
process node with the seed manifests unchanged: nginx:1.14 runs the host's nginx (the image
catalog maps it). Where nginx is not installed, the container is swapped for busybox running
`python3 -m http.server 80`, which any node can run, and the test says so.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from tests.conftest import SEED, create_namespace, wait_until

REVISION = "deployment.kubernetes.io/revision"


@pytest.fixture(scope="module")
def sim(sim_cluster):
    return sim_cluster


@pytest.fixture
def sns(sim):
    return create_namespace(sim, "d-")


def deployment(name: str, replicas: int = 3, image: str = "nginx:1.14", **spec) -> str:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}
    body["spec"].update(spec)
    return json.dumps(body)


def rollout_status(c, ns: str, name: str, timeout: str = "60s"):
    p = c.kubectl("-n", ns, "rollout", "status", f"deployment/{name}", f"--timeout={timeout}", timeout=90)
    assert f'deployment "{name}" successfully rolled out' in p.stdout
    return p


def rs_of(c, ns: str, name: str) -> list[dict]:
    items = c.kubectl_json("-n", ns, "get", "rs", "-l", f"app={name}")["items"]
    return sorted(items, key=lambda r: int(r["metadata"]["annotations"].get(REVISION, "0")))


def live_pods(c, ns: str, selector: str) -> list[dict]:
    return [p for p in c.kubectl_json("-n", ns, "get", "pods", "-l", selector)["items"]
            if not p["metadata"].get("deletionTimestamp")]


def images(c, ns: str, name: str) -> set[str]:
    return {p["spec"]["containers"][0]["image"] for p in live_pods(c, ns, f"app={name}")}


# ---- kubectl rollout and set, on simulated nodes ----------------------------------------------

def test_seed_deployment_gets_the_names_kubernetes_gives_it(sim, sns):
    """The seed's dep-nginx on Kubernetes 1.37 makes ReplicaSet dep-nginx-7f99b6bd85 (the
    pod-template-hash, see tests/unit/test_pod_template_hash.py); so it does here."""
    c, ns = sim, sns
    c.kubectl("-n", ns, "apply", "-f", os.path.join(SEED, "dep-nginx.yaml"))
    rollout_status(c, ns, "dep-nginx")
    (rs,) = c.kubectl_json("-n", ns, "get", "rs", "-l", "app=nginx")["items"]
    assert rs["metadata"]["name"] == "dep-nginx-7f99b6bd85"
    pods = live_pods(c, ns, "app=nginx")
    assert len(pods) == 3 and all(p["metadata"]["name"].startswith("dep-nginx-7f99b6bd85-") for p in pods)


def test_rollout_status_history_and_undo(sim, sns):
    c, ns = sim, sns
    c.kubectl("-n", ns, "apply", "-f", "-", input=deployment("web"))
    rollout_status(c, ns, "web")
    out = c.kubectl("-n", ns, "get", "deployment", "web").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out[1].split()[:4] == ["web", "3/3", "3", "3"]

    p = c.kubectl("-n", ns, "set", "image", "deployment/web", "app=nginx:1.16")
    assert "deployment.apps/web image updated" in p.stdout
    c.kubectl("-n", ns, "annotate", "deployment/web", "kubernetes.io/change-cause=upgrade to 1.16")
    rollout_status(c, ns, "web")
    assert images(c, ns, "web") == {"nginx:1.16"}
    v1, v2 = rs_of(c, ns, "web")
    assert (v1["spec"]["replicas"], v2["spec"]["replicas"]) == (0, 3)
    assert v2["metadata"]["name"] == "web-" + v2["metadata"]["labels"]["pod-template-hash"]

    hist = c.kubectl("-n", ns, "rollout", "history", "deployment/web").stdout
    assert "deployment.apps/web" in hist
    lines = [ln.split(None, 1) for ln in hist.splitlines()[2:] if ln.strip()]
    assert [ln[0] for ln in lines] == ["1", "2"]
    assert lines[0][1].strip() == "<none>" and lines[1][1].strip() == "upgrade to 1.16"
    detail = c.kubectl("-n", ns, "rollout", "history", "deployment/web", "--revision=1").stdout
    assert "nginx:1.14" in detail and "pod-template-hash=" in detail

    p = c.kubectl("-n", ns, "rollout", "undo", "deployment/web")
    assert "deployment.apps/web rolled back" in p.stdout
    rollout_status(c, ns, "web")
    assert images(c, ns, "web") == {"nginx:1.14"}
    d = c.kubectl_json("-n", ns, "get", "deployment", "web")
    assert d["metadata"]["annotations"][REVISION] == "3"
    revs = [ln.split()[0] for ln in c.kubectl("-n", ns, "rollout", "history", "deployment/web").stdout
            .splitlines()[2:] if ln.strip()]
    assert revs == ["2", "3"]
    # The old ReplicaSet came back with a new revision; it remembers its first one.
    back = next(r for r in rs_of(c, ns, "web") if r["metadata"]["name"] == v1["metadata"]["name"])
    assert back["metadata"]["annotations"][REVISION] == "3"
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"

    p = c.kubectl("-n", ns, "rollout", "undo", "deployment/web", "--to-revision=2")
    assert "deployment.apps/web rolled back" in p.stdout
    rollout_status(c, ns, "web")
    assert images(c, ns, "web") == {"nginx:1.16"}
    p = c.kubectl("-n", ns, "rollout", "undo", "deployment/web", "--to-revision=4")
    assert "skipped rollback (current template already matches revision 4)" in p.stdout

    events = c.kubectl("-n", ns, "get", "events", "--field-selector", "involvedObject.kind=Deployment",
                       "-o", "json")
    msgs = [e["message"] for e in json.loads(events.stdout)["items"] if e["reason"] == "ScalingReplicaSet"]
    assert f"Scaled up replica set {v1['metadata']['name']} from 0 to 3" in msgs
    assert any(m.startswith(f"Scaled down replica set {v1['metadata']['name']} from ") for m in msgs)


def test_pause_resume_restart(sim, sns):
    c, ns = sim, sns
    c.kubectl("-n", ns, "apply", "-f", "-", input=deployment("web", replicas=2))
    rollout_status(c, ns, "web")
    c.kubectl("-n", ns, "set", "image", "deployment/web", "app=nginx:1.16")
    rollout_status(c, ns, "web")
    assert "deployment.apps/web paused" in c.kubectl("-n", ns, "rollout", "pause", "deployment/web").stdout
    c.kubectl("-n", ns, "set", "image", "deployment/web", "app=nginx:1.25")
    wait_until(lambda: (c.kubectl_json("-n", ns, "get", "deployment", "web")["status"]["conditions"][-1]
                        .get("reason") == "DeploymentPaused"), 20, message="DeploymentPaused")
    assert len(rs_of(c, ns, "web")) == 2, "a paused Deployment does not roll"
    p = c.kubectl("-n", ns, "rollout", "undo", "deployment/web", check=False)
    assert p.returncode != 0
    assert "you cannot rollback a paused deployment; resume it first" in p.stderr
    assert "deployment.apps/web resumed" in c.kubectl("-n", ns, "rollout", "resume", "deployment/web").stdout
    rollout_status(c, ns, "web")
    assert images(c, ns, "web") == {"nginx:1.25"}

    assert "deployment.apps/web restarted" in c.kubectl("-n", ns, "rollout", "restart", "deployment/web").stdout
    rollout_status(c, ns, "web")
    rss = rs_of(c, ns, "web")
    assert len(rss) == 4 and rss[-1]["spec"]["replicas"] == 2
    for pod in live_pods(c, ns, "app=web"):
        assert "kubectl.kubernetes.io/restartedAt" in pod["metadata"]["annotations"]
        assert pod["metadata"]["labels"]["pod-template-hash"] == rss[-1]["metadata"]["labels"]["pod-template-hash"]


def test_set_resources_and_env_roll_out_new_pods(sim, sns):
    c, ns = sim, sns
    c.kubectl("-n", ns, "apply", "-f", "-", input=deployment("web", replicas=2))
    rollout_status(c, ns, "web")
    p = c.kubectl("-n", ns, "set", "resources", "deployment/web", "--limits=cpu=100m,memory=32Mi")
    assert "deployment.apps/web resource requirements updated" in p.stdout
    rollout_status(c, ns, "web")
    for pod in live_pods(c, ns, "app=web"):
        assert pod["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "100m", "memory": "32Mi"}
    p = c.kubectl("-n", ns, "set", "env", "deployment/web", "GREETING=hello")
    assert "deployment.apps/web env updated" in p.stdout
    rollout_status(c, ns, "web")
    pods = live_pods(c, ns, "app=web")
    assert len(pods) == 2
    for pod in pods:
        assert {"name": "GREETING", "value": "hello"} in pod["spec"]["containers"][0]["env"]
    assert len(rs_of(c, ns, "web")) == 3
    desc = c.kubectl("-n", ns, "describe", "deployment", "web").stdout
    assert "NewReplicaSetAvailable" in desc and "MinimumReplicasAvailable" in desc
    assert "ScalingReplicaSet" in desc


def test_rollout_status_reports_an_exceeded_progress_deadline(sim, sns):
    c, ns = sim, sns
    body = json.loads(deployment("stuck", replicas=1, progressDeadlineSeconds=2))
    body["spec"]["template"]["spec"]["nodeSelector"] = {"pocketkube.dev/no-such-node": "true"}
    c.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(body))
    p = c.kubectl("-n", ns, "rollout", "status", "deployment/stuck", "--timeout=30s", check=False, timeout=60)
    assert p.returncode != 0
    assert 'deployment "stuck" exceeded its progress deadline' in p.stderr
    d = c.kubectl_json("-n", ns, "get", "deployment", "stuck")
    prog = next(x for x in d["status"]["conditions"] if x["type"] == "Progressing")
    assert (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")


# ---- the seed, D1-D8, on the local process node ------------------------------------------------

def seed_manifest(name: str, tmp_path) -> str:
    """The seed manifest; if the host has no nginx, one whose container any node can run."""
    path = os.path.join(SEED, name)
    if shutil.which("nginx"):
        return path
    with open(path) as f:
        obj = yaml.safe_load(f)
    c = obj["spec"]["template"]["spec"]["containers"][0]
    # nginx is not installed: serve port 80 with Python's http.server instead.
    c["image"] = "busybox"
    c["command"] = ["python3", "-m", "http.server", "80"]
    out = tmp_path / name
    out.write_text(yaml.safe_dump(obj))
    return str(out)


def test_seed_d1_to_d8(cluster, ns, tmp_path):
    c = cluster

    def k(*args, **kw):
        return c.kubectl("-n", ns, *args, **kw)

    def ready_pods(selector: str, owner_uid: str | None = None) -> list[dict]:
        out = []
        for p in live_pods(c, ns, selector):
            if owner_uid and not any(o["uid"] == owner_uid for o in p["metadata"].get("ownerReferences", [])):
                continue
            if p["status"].get("phase") == "Running" and any(
                    x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions", [])):
                out.append(p)
        return out

    def dep_rs() -> dict:
        [rs] = [r for r in c.kubectl_json("-n", ns, "get", "rs")["items"]
                if any(o["kind"] == "Deployment" and o["name"] == "dep-nginx"
                       for o in r["metadata"].get("ownerReferences", []))
                and r["spec"]["replicas"] > 0]
        return rs

    dep_file = seed_manifest("dep-nginx.yaml", tmp_path)
    rs_file = seed_manifest("rs-nginx.yaml", tmp_path)

    # D1: the Deployment makes a ReplicaSet named after its template, which makes 3 pods.
    k("create", "-f", dep_file)
    rollout_status(c, ns, "dep-nginx", "120s")
    rs = dep_rs()
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"dep-nginx-{h}"
    pods = wait_until(lambda: len(ready_pods(f"app=nginx,pod-template-hash={h}")) == 3
                      and ready_pods(f"app=nginx,pod-template-hash={h}"), 60, message="3 dep pods ready")
    for p in pods:
        name = p["metadata"]["name"]
        assert name.startswith(f"dep-nginx-{h}-") and len(name) == len(f"dep-nginx-{h}-") + 5
        assert p["metadata"]["ownerReferences"][0]["name"] == f"dep-nginx-{h}"

    # D2: a standalone ReplicaSet with the same pod labels makes 3 more pods and counts only its
    # own. It has no labels of its own, so the Deployment's selector does not match it and
    # the Deployment does not adopt it.
    k("create", "-f", rs_file)
    rsn = c.kubectl_json("-n", ns, "get", "rs", "rs-nginx")
    wait_until(lambda: len(ready_pods("app=nginx", rsn["metadata"]["uid"])) == 3, 60, message="rs-nginx pods")
    for p in ready_pods("app=nginx", rsn["metadata"]["uid"]):
        assert p["metadata"]["name"].startswith("rs-nginx-") and len(p["metadata"]["name"]) == len("rs-nginx-") + 5
    wait_until(lambda: c.kubectl_json("-n", ns, "get", "rs", "rs-nginx")["status"].get("readyReplicas") == 3,
               30, message="rs-nginx status")
    assert not c.kubectl_json("-n", ns, "get", "rs", "rs-nginx")["metadata"].get("ownerReferences")
    assert dep_rs()["status"]["replicas"] == 3

    # D3: the usual columns.
    out = k("get", "deployment").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out[1].split()[:4] == ["dep-nginx", "3/3", "3", "3"]
    out = k("get", "rs").stdout.splitlines()
    assert out[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    rows = {ln.split()[0]: ln.split()[1:4] for ln in out[1:]}
    assert rows == {f"dep-nginx-{h}": ["3", "3", "3"], "rs-nginx": ["3", "3", "3"]}
    out = k("get", "pods", "--show-labels").stdout.splitlines()
    assert out[0].split()[-1] == "LABELS"
    assert sum(f"app=nginx,pod-template-hash={h}" in ln for ln in out) == 3

    # D4: a deleted pod is replaced from the same template under a new name.
    victim = ready_pods(f"app=nginx,pod-template-hash={h}")[0]["metadata"]["name"]
    k("delete", "pods", victim)
    wait_until(lambda: len(ready_pods(f"app=nginx,pod-template-hash={h}")) == 3
               and victim not in {p["metadata"]["name"] for p in ready_pods(f"app=nginx,pod-template-hash={h}")},
               60, message="replacement pod")

    # D5: the Deployment recreates a deleted ReplicaSet (same template, same name) and its pods.
    old_uid = rs["metadata"]["uid"]
    k("delete", "rs", f"dep-nginx-{h}")
    wait_until(lambda: c.kubectl("-n", ns, "get", "rs", f"dep-nginx-{h}", "-o", "json", check=False).returncode == 0
               and json.loads(c.kubectl("-n", ns, "get", "rs", f"dep-nginx-{h}", "-o", "json").stdout)
               ["metadata"]["uid"] != old_uid, 60, message="ReplicaSet recreated")
    new_uid = c.kubectl_json("-n", ns, "get", "rs", f"dep-nginx-{h}")["metadata"]["uid"]
    wait_until(lambda: len(ready_pods("app=nginx", new_uid)) == 3, 90, message="pods back")
    rollout_status(c, ns, "dep-nginx", "120s")

    # D6: replicas 3 -> 6 in the file, applied again.
    with open(dep_file) as f:
        text = f.read()
    six = tmp_path / "dep-nginx-6.yaml"
    six.write_text(text.replace("replicas: 3", "replicas: 6"))
    k("apply", "-f", str(six))
    rollout_status(c, ns, "dep-nginx", "120s")
    wait_until(lambda: len(ready_pods("app=nginx", new_uid)) == 6, 60, message="6 pods")

    # D7: kubectl scale.
    assert "deployment.apps/dep-nginx scaled" in k("scale", "deploy", "dep-nginx", "--replicas=5").stdout
    rollout_status(c, ns, "dep-nginx", "120s")
    wait_until(lambda: len(ready_pods("app=nginx", new_uid)) == 5, 60, message="5 pods")

    # D8: new limits mean a new template: a new ReplicaSet and a rolling update.
    k("set", "resources", "deploy", "dep-nginx", "--limits=cpu=100m,memory=32Mi")
    rollout_status(c, ns, "dep-nginx", "180s")
    new_rs = dep_rs()
    h2 = new_rs["metadata"]["labels"]["pod-template-hash"]
    assert h2 != h and new_rs["metadata"]["name"] == f"dep-nginx-{h2}"
    assert new_rs["metadata"]["annotations"][REVISION] == "2"
    pods = wait_until(lambda: len(ready_pods(f"app=nginx,pod-template-hash={h2}")) == 5
                      and ready_pods(f"app=nginx,pod-template-hash={h2}"), 60, message="5 new pods ready")
    for p in pods:
        assert p["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "100m", "memory": "32Mi"}
    old = c.kubectl_json("-n", ns, "get", "rs", f"dep-nginx-{h}")
    assert old["spec"]["replicas"] == 0
    wait_until(lambda: not [p for p in live_pods(c, ns, f"app=nginx,pod-template-hash={h}")
                            if any(o["uid"] == new_uid for o in p["metadata"].get("ownerReferences", []))],
               60, message="old pods gone")
    # The standalone ReplicaSet was never touched.
    assert c.kubectl_json("-n", ns, "get", "rs", "rs-nginx")["spec"]["replicas"] == 3
