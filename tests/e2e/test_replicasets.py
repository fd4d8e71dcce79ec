"""ReplicaSets, cascading deletion and namespace deletion through the real kubectl, against a
`pocketkube up` with three simulated nodes (seed steps D2 and D4)."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.conftest import SEED, create_namespace, wait_until


@pytest.fixture
def ns(sim_cluster):
    return create_namespace(sim_cluster, "rs-")


def pods(c, ns, selector="app=nginx"):
    return c.kubectl_json("get", "pods", "-n", ns, "-l", selector)["items"]


def running(items):
    return [p for p in items if p.get("status", {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def test_seed_d2_and_d4_replicaset_pods_and_replacement(sim_cluster, ns):
    c = sim_cluster
    c.kubectl("create", "-f", os.path.join(SEED, "rs-nginx.yaml"), "-n", ns)
    wait_until(lambda: len(running(pods(c, ns))) == 3, 30, message="3 rs-nginx pods Running")
    rs = c.kubectl_json("get", "rs", "rs-nginx", "-n", ns)
    items = running(pods(c, ns))
    for p in items:
        assert re.fullmatch(r"rs-nginx-[a-z0-9]{5}", p["metadata"]["name"])
        (ref,) = p["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == \
            ("ReplicaSet", "rs-nginx", rs["metadata"]["uid"], True)
    wait_until(lambda: c.kubectl("get", "rs", "rs-nginx", "-n", ns, "--no-headers").stdout.split()[1:4]
               == ["3", "3", "3"], 30, message="kubectl get rs shows 3 3 3")

    # D4: delete one pod, a replacement with a new name appears.
    before = {p["metadata"]["name"] for p in items}
    victim = sorted(before)[0]
    c.kubectl("delete", "pod", victim, "-n", ns)

    def replaced():
        names = {p["metadata"]["name"] for p in running(pods(c, ns))}
        return len(names) == 3 and victim not in names and names - before
    wait_until(replaced, 30, message="replacement pod")
    events = c.kubectl_json("get", "events", "-n", ns, "--field-selector", "reason=SuccessfulCreate")["items"]
    assert len(events) == 4 and all(e["message"].startswith("Created pod: rs-nginx-") for e in events)

    # kubectl scale works through the scale subresource.
    c.kubectl("scale", "rs", "rs-nginx", "-n", ns, "--replicas=5")
    wait_until(lambda: len(running(pods(c, ns))) == 5, 30, message="5 pods after scale")
    c.kubectl("scale", "rs", "rs-nginx", "-n", ns, "--replicas=2")
    wait_until(lambda: len(pods(c, ns)) == 2, 30, message="2 pods after scale down")


def test_delete_rs_orphan_leaves_pods_and_default_cascade_removes_them(sim_cluster, ns):
    c = sim_cluster
    c.kubectl("create", "-f", os.path.join(SEED, "rs-nginx.yaml"), "-n", ns)
    wait_until(lambda: len(running(pods(c, ns))) == 3, 30, message="3 pods Running")
    c.kubectl("delete", "rs", "rs-nginx", "-n", ns, "--cascade=orphan")
    assert c.kubectl("get", "rs", "-n", ns, "-o", "name").stdout.strip() == ""
    left = pods(c, ns)
    assert len(left) == 3
    assert all(not p["metadata"].get("ownerReferences") and not p["metadata"].get("deletionTimestamp")
               for p in left)

    # A new ReplicaSet adopts the orphans instead of creating pods; deleting it (background,
    # kubectl's default) takes them along.
    c.kubectl("create", "-f", os.path.join(SEED, "rs-nginx.yaml"), "-n", ns)
    new_uid = c.kubectl_json("get", "rs", "rs-nginx", "-n", ns)["metadata"]["uid"]
    wait_until(lambda: all((p["metadata"].get("ownerReferences") or [{}])[0].get("uid") == new_uid
                           for p in pods(c, ns)), 30, message="orphans adopted")
    assert {p["metadata"]["name"] for p in pods(c, ns)} == {p["metadata"]["name"] for p in left}
    c.kubectl("delete", "rs", "rs-nginx", "-n", ns)
    wait_until(lambda: not pods(c, ns), 30, message="pods deleted with their ReplicaSet")


def test_delete_namespace_shows_terminating_then_is_gone_with_its_contents(sim_cluster):
    c = sim_cluster
    name = create_namespace(c, "doomed-")
    c.kubectl("create", "-f", os.path.join(SEED, "rs-nginx.yaml"), "-n", name)
    c.kubectl("create", "-f", "-", "-n", name, input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}))
    wait_until(lambda: len(running(pods(c, name))) == 3, 30, message="pods Running")
    c.kubectl("delete", "namespace", name, "--wait=false")

    def terminating():
        out = c.kubectl("get", "namespace", name, "--no-headers").stdout.split()
        return out[1] == "Terminating" and not pods(c, name)
    wait_until(terminating, 30, message="namespace Terminating and emptied of pods")
    conds = {x["type"]: x for x in c.kubectl_json("get", "namespace", name)["status"]["conditions"]}
    assert conds["NamespaceFinalizersRemaining"]["message"] == \
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    assert c.kubectl("get", "rs", "-n", name, "-o", "name").stdout.strip() == ""

    c.kubectl("patch", "configmap", "held", "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    c.kubectl("wait", "--for=delete", f"namespace/{name}", "--timeout=60s")
    p = c.kubectl("get", "namespace", name, check=False)
    assert p.returncode != 0 and "NotFound" in p.stderr
