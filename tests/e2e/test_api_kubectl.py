"""The API as the real kubectl uses it: CRUD, tables, patches, scale, errors, explain, seed manifests."""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest

from tests.conftest import SEED
from tests.e2e.manifests import cluster_objects, objects_of_every_kind


@pytest.fixture(scope="module")
def cluster(api_cluster):
    """These tests check what the API itself stores and answers, so no controller writes."""
    return api_cluster


def test_version_and_discovery(cluster):
    out = cluster.kubectl("version", "-o", "json").stdout
    server = json.loads(out)["serverVersion"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", server["gitVersion"])
    res = cluster.kubectl("api-resources", "-o", "wide").stdout
    for short in ("po", "no", "ns", "ev", "pv", "pvc", "cm", "svc", "sa", "deploy", "rs", "sts", "ds", "cj"):
        assert re.search(rf"\s{short}(,|\s)", res), short
    assert "deployments" in cluster.kubectl("api-resources", "--categories=all").stdout


def test_default_namespaces_exist(cluster):
    out = cluster.kubectl("get", "namespaces", "-o", "name").stdout.split()
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{ns}" in out


def test_crud_every_namespaced_kind(cluster, ns):
    for obj in objects_of_every_kind("crud"):
        kind = obj["kind"]
        for ref in ("involvedObject", "regarding"):
            if kind == "Event" and ref in obj:
                obj[ref]["namespace"] = ns  # must match the event's own namespace
        cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(obj))
        ref = f"{kind.lower()}.{obj['apiVersion'].split('/')[0]}" if "/" in obj["apiVersion"] else kind.lower()
        name = obj["metadata"]["name"]
        got = cluster.kubectl_json("get", "-n", ns, ref, name)
        assert got["metadata"]["name"] == name and got["metadata"]["uid"]
        assert int(got["metadata"]["resourceVersion"]) > 0
        cluster.kubectl("label", "-n", ns, ref, name, "touched=yes")
        got2 = cluster.kubectl_json("get", "-n", ns, ref, name)
        assert got2["metadata"]["labels"]["touched"] == "yes"
        assert int(got2["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])
        listed = cluster.kubectl("get", "-n", ns, ref).stdout
        assert name in listed and "AGE" in listed.splitlines()[0] or "LAST SEEN" in listed
        cluster.kubectl("delete", "-n", ns, ref, name, "--wait=false")
        if kind != "Pod":
            p = cluster.kubectl("get", "-n", ns, ref, name, check=False)
            assert p.returncode != 0 and "NotFound" in p.stderr


def test_crud_cluster_scoped_kinds(cluster):
    suffix = uuid.uuid4().hex[:6]
    for obj in cluster_objects(suffix):
        cluster.kubectl("create", "-f", "-", input=json.dumps(obj))
        name = obj["metadata"]["name"]
        kind = obj["kind"].lower() + ("." + obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else "")
        got = cluster.kubectl_json("get", kind, name)
        assert "namespace" not in got["metadata"]
        cluster.kubectl("annotate", kind, name, "a=b")
        assert cluster.kubectl_json("get", kind, name)["metadata"]["annotations"]["a"] == "b"
        if obj["kind"] != "Namespace":
            cluster.kubectl("delete", kind, name)
            assert cluster.kubectl("get", kind, name, check=False).returncode != 0


def test_get_table_columns(cluster, ns):
    for obj in objects_of_every_kind("cols"):
        if obj["kind"] == "Pod":
            obj["metadata"]["labels"] = {"app": "web"}
        if obj["kind"] in ("Deployment", "Pod"):
            cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(obj))
    header = cluster.kubectl("get", "-n", ns, "deployments").stdout.splitlines()[0].split()
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    wide = cluster.kubectl("get", "-n", ns, "pods", "-o", "wide", "--show-labels").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                               "NOMINATED", "NODE", "READINESS", "GATES", "LABELS"]
    assert wide[1].split()[0] == "cols" and re.fullmatch(r"[01]/1", wide[1].split()[1])
    assert "app=web" in wide[1]


def test_seed_manifests_create_apply_scale_set_resources_delete(cluster, ns):
    dep = os.path.join(SEED, "dep-nginx.yaml")
    rs = os.path.join(SEED, "rs-nginx.yaml")
    cluster.kubectl("create", "-n", ns, "-f", dep)
    cluster.kubectl("create", "-n", ns, "-f", rs)
    d = cluster.kubectl_json("get", "-n", ns, "deployment", "dep-nginx")
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["strategy"] == {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert d["spec"]["revisionHistoryLimit"] == 10 and d["spec"]["progressDeadlineSeconds"] == 600
    assert d["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert d["metadata"]["generation"] == 1
    out = cluster.kubectl("get", "-n", ns, "rs", "--show-labels").stdout.splitlines()
    # The seed's ReplicaSet labels only its template, so the object itself shows <none>.
    assert out[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "LABELS"]
    assert out[1].split()[:2] == ["rs-nginx", "3"] and out[1].split()[-1] == "<none>"
    # apply the same file with replicas changed: a 3-way strategic merge patch.
    with open(dep) as f:
        text = f.read().replace("replicas: 3", "replicas: 6")
    p = cluster.kubectl("apply", "-n", ns, "-f", "-", input=text)
    assert "configured" in p.stdout
    assert cluster.kubectl_json("get", "-n", ns, "deploy", "dep-nginx")["spec"]["replicas"] == 6
    assert "unchanged" in cluster.kubectl("apply", "-n", ns, "-f", "-", input=text).stdout
    cluster.kubectl("scale", "-n", ns, "deploy", "dep-nginx", "--replicas=5")
    d = cluster.kubectl_json("get", "-n", ns, "deploy", "dep-nginx")
    assert d["spec"]["replicas"] == 5 and d["metadata"]["generation"] == 3
    cluster.kubectl("set", "resources", "-n", ns, "deploy", "dep-nginx", "--limits=cpu=100m,memory=32Mi")
    c = cluster.kubectl_json("get", "-n", ns, "deploy", "dep-nginx")["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {"limits": {"cpu": "100m", "memory": "32Mi"}}
    assert c["name"] == "nginx" and c["image"] == "nginx:1.14"
    cluster.kubectl("set", "image", "-n", ns, "deploy/dep-nginx", "nginx=nginx:1.25")
    c = cluster.kubectl_json("get", "-n", ns, "deploy", "dep-nginx")["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:1.25" and c["resources"]["limits"]["cpu"] == "100m"
    cluster.kubectl("set", "env", "-n", ns, "deploy/dep-nginx", "GREETING=hi")
    c = cluster.kubectl_json("get", "-n", ns, "deploy", "dep-nginx")["spec"]["template"]["spec"]["containers"][0]
    assert c["env"] == [{"name": "GREETING", "value": "hi"}]
    cluster.kubectl("set", "env", "-n", ns, "deploy/dep-nginx", "GREETING-")
    c = cluster.kubectl_json("get", "-n", ns, "deploy", "dep-nginx")["spec"]["template"]["spec"]["containers"][0]
    assert "env" not in c
    cluster.kubectl("delete", "-n", ns, "deployment,rs", "--all")
    assert cluster.kubectl("get", "-n", ns, "deploy,rs", "-o", "name").stdout.strip() == ""


def test_seed_statefulset_and_job_manifests(cluster, ns):
    st = os.path.join(SEED, "st-nginx.yaml")
    out = cluster.kubectl("create", "-n", ns, "-f", st).stdout
    assert "persistentvolume/nfs-pv created" in out and "statefulset.apps/st-nginx created" in out
    sts = cluster.kubectl_json("get", "-n", ns, "sts", "st-nginx")
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    cluster.kubectl("scale", "-n", ns, "statefulset", "st-nginx", "--replicas=5")
    assert cluster.kubectl_json("get", "-n", ns, "sts", "st-nginx")["spec"]["replicas"] == 5
    job = os.path.join(SEED, "job.yaml")
    cluster.kubectl("apply", "-n", ns, "-f", job)
    j = cluster.kubectl_json("get", "-n", ns, "job", "job-example")
    assert j["spec"]["completions"] == 5 and j["spec"]["parallelism"] == 2 and j["spec"]["backoffLimit"] == 6
    labels = j["spec"]["template"]["metadata"]["labels"]
    assert labels["job-name"] == "job-example" and labels["batch.kubernetes.io/controller-uid"] == j["metadata"]["uid"]
    cluster.kubectl("delete", "-n", ns, "statefulset", "--all")
    assert cluster.kubectl("get", "-n", ns, "pvc", "nfs-pvc", "-o", "name").stdout.strip() == \
        "persistentvolumeclaim/nfs-pvc"
    cluster.kubectl("delete", "pv", "nfs-pv")


def test_patch_types(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", os.path.join(SEED, "dep-nginx.yaml"))
    cluster.kubectl("patch", "-n", ns, "deploy", "dep-nginx", "--type=json",
                    "-p", '[{"op":"replace","path":"/spec/replicas","value":2}]')
    cluster.kubectl("patch", "-n", ns, "deploy", "dep-nginx", "--type=merge",
                    "-p", '{"metadata":{"labels":{"tier":"front"}}}')
    cluster.kubectl("patch", "-n", ns, "deploy", "dep-nginx", "--type=strategic",
                    "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox"}]}}}}')
    d = cluster.kubectl_json("get", "-n", ns, "deploy", "dep-nginx")
    assert d["spec"]["replicas"] == 2 and d["metadata"]["labels"]["tier"] == "front"
    # Upstream orders new merge-list items before the ones only the server had.
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["side", "nginx"]
    p = cluster.kubectl("patch", "-n", ns, "deploy", "dep-nginx", "--type=json",
                        "-p", '[{"op":"test","path":"/spec/replicas","value":9}]', check=False)
    assert p.returncode != 0
    # Strategic directive: delete one container by merge key.
    cluster.kubectl("patch", "-n", ns, "deploy", "dep-nginx", "--type=strategic",
                    "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"side","$patch":"delete"}]}}}}')
    d = cluster.kubectl_json("get", "-n", ns, "deploy", "dep-nginx")
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["nginx"]
    cluster.kubectl("rollout", "restart", "-n", ns, "deploy/dep-nginx")
    d = cluster.kubectl_json("get", "-n", ns, "deploy", "dep-nginx")
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
    cluster.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}}))
    assert cluster.kubectl_json("get", "-n", ns, "cm", "ssa")["data"] == {"a": "1"}


def test_errors_as_kubectl_prints_them(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", os.path.join(SEED, "dep-nginx.yaml"))
    p = cluster.kubectl("create", "-n", ns, "-f", os.path.join(SEED, "dep-nginx.yaml"), check=False)
    assert 'Error from server (AlreadyExists): error when creating' in p.stderr
    assert 'deployments.apps "dep-nginx" already exists' in p.stderr
    p = cluster.kubectl("get", "-n", ns, "deploy", "nope", check=False)
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in p.stderr
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"},
           "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "c"}},
                                 "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    p = cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(bad), check=False)
    assert 'The Deployment "bad" is invalid' in p.stderr
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in p.stderr
    assert "spec.template.metadata.labels" in p.stderr and "`selector` does not match template `labels`" in p.stderr
    unknown = json.loads(json.dumps(bad))
    unknown["spec"]["replicas"] = 1
    unknown["spec"]["template"]["metadata"]["labels"] = {"a": "b"}
    unknown["spec"]["bogus"] = 1
    p = cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(unknown), check=False)
    assert 'strict decoding error: unknown field "spec.bogus"' in p.stderr
    p = cluster.kubectl("scale", "-n", ns, "deploy", "dep-nginx", "--replicas=-2", check=False)
    assert p.returncode != 0
    p = cluster.kubectl("create", "-n", "no-such-ns", "-f", os.path.join(SEED, "rs-nginx.yaml"), check=False)
    assert 'namespaces "no-such-ns" not found' in p.stderr
    # Stale update: replace with an old resourceVersion.
    d = cluster.kubectl_json("get", "-n", ns, "deploy", "dep-nginx")
    cluster.kubectl("label", "-n", ns, "deploy", "dep-nginx", "x=1")
    p = cluster.kubectl("replace", "-n", ns, "-f", "-", input=json.dumps(d), check=False)
    assert "Conflict" in p.stderr and "the object has been modified" in p.stderr


def test_explain(cluster):
    out = cluster.kubectl("explain", "deployment.spec.strategy").stdout
    assert "KIND:" in out and "Deployment" in out and "rollingUpdate" in out
    out = cluster.kubectl("explain", "statefulset.spec.volumeClaimTemplates").stdout
    assert "PersistentVolumeClaim" in out


def test_get_watch_prints_changes(cluster, ns):
    import subprocess
    from tests.conftest import kubectl_binary
    proc = subprocess.Popen([kubectl_binary(), "--kubeconfig", cluster.kubeconfig, "--cache-dir",
                             cluster.cache_dir, "get", "cm", "-n", ns, "-w"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}, "data": {"a": "b"}}))
        line = ""
        while "watched" not in line:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
        assert line.split()[:2] == ["watched", "1"]
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("path", ["/version", "/healthz", "/readyz", "/livez"])
def test_unauthenticated_endpoints_and_401(cluster, path):
    import ssl
    import urllib.error
    import urllib.request
    ctx = ssl.create_default_context(cafile=os.path.join(cluster.data_dir, "ca.crt"))
    with urllib.request.urlopen(cluster.url + path, context=ctx) as r:
        assert r.status == 200
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(cluster.url + "/api/v1/namespaces", context=ctx)
    assert e.value.code == 401
    body = json.loads(e.value.read())
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized"


def test_kubeconfig_and_keys_private(cluster):
    for f in ("kubeconfig", "ca.key", "server.key", "token"):
        mode = os.stat(os.path.join(cluster.data_dir, f)).st_mode & 0o777
        assert mode == 0o600, (f, oct(mode))
    assert os.stat(cluster.data_dir).st_mode & 0o077 == 0
