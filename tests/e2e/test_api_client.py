"""The API as the official Python client uses it: typed CRUD, watch/resume, scale, status, errors."""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.conftest import start_cluster, stop_cluster, wait_until
from tests.e2e.manifests import POD_TEMPLATE


@pytest.fixture(scope="module")
def cluster(api_cluster):
    """These tests check what the API itself stores and answers, so no controller writes."""
    return api_cluster


def deployment(name: str, replicas: int = 1) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": POD_TEMPLATE}}


def raw_request(cluster, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json", headers: dict | None = None):
    ctx = ssl.create_default_context(cafile=os.path.join(cluster.data_dir, "ca.crt"))
    req = urllib.request.Request(cluster.url + path, data=body, method=method, headers={
        "Authorization": f"Bearer {cluster.token}", "Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(req, context=ctx) as r:
            # A watch answers with newline-separated events: the first one is enough here.
            return r.status, json.loads(r.read().split(b"\n")[0] or b"null"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def test_typed_crud_and_conflict(cluster, ns):
    with cluster.client() as api_client:
        apps = client.AppsV1Api(api_client)
        created = apps.create_namespaced_deployment(ns, deployment("web", 2))
        assert created.spec.replicas == 2 and created.metadata.generation == 1
        assert created.spec.strategy.type == "RollingUpdate"
        got = apps.read_namespaced_deployment("web", ns)
        got.spec.replicas = 4
        updated = apps.replace_namespaced_deployment("web", ns, got)
        assert updated.spec.replicas == 4 and updated.metadata.generation == 2
        got.spec.replicas = 5  # stale resourceVersion
        with pytest.raises(ApiException) as e:
            apps.replace_namespaced_deployment("web", ns, got)
        assert e.value.status == 409
        assert json.loads(e.value.body)["reason"] == "Conflict"
        lst = apps.list_namespaced_deployment(ns, label_selector="app in (web,other)")
        assert [d.metadata.name for d in lst.items] == ["web"]
        assert apps.list_namespaced_deployment(ns, label_selector="app!=web").items == []
        assert apps.list_namespaced_deployment(ns, field_selector="metadata.name=web").items[0].metadata.name == "web"
        apps.delete_namespaced_deployment("web", ns)
        with pytest.raises(ApiException) as e:
            apps.read_namespaced_deployment("web", ns)
        assert e.value.status == 404


def test_scale_and_status_subresources(cluster, ns):
    with cluster.client() as api_client:
        apps = client.AppsV1Api(api_client)
        apps.create_namespaced_replica_set(ns, {**deployment("rs"), "kind": "ReplicaSet"})
        scale = apps.read_namespaced_replica_set_scale("rs", ns)
        assert scale.spec.replicas == 1 and scale.status.selector == "app=web"
        apps.patch_namespaced_replica_set_scale("rs", ns, {"spec": {"replicas": 3}})
        assert apps.read_namespaced_replica_set("rs", ns).spec.replicas == 3
        with pytest.raises(ApiException) as e:
            apps.patch_namespaced_replica_set_scale("rs", ns, {"spec": {"replicas": -1}})
        assert e.value.status == 422
        # Status writes go only through /status, and do not bump generation.
        rs = apps.read_namespaced_replica_set("rs", ns)
        gen = rs.metadata.generation
        rs.status.replicas = 3
        rs.status.ready_replicas = 2
        rs.spec.replicas = 7  # ignored by the status subresource
        out = apps.replace_namespaced_replica_set_status("rs", ns, rs)
        assert out.status.ready_replicas == 2 and out.spec.replicas == 3 and out.metadata.generation == gen
        apps.patch_namespaced_replica_set_status("rs", ns, {"status": {"readyReplicas": 3}})
        assert apps.read_namespaced_replica_set_status("rs", ns).status.ready_replicas == 3
        # A main-resource update cannot change status.
        rs = apps.read_namespaced_replica_set("rs", ns)
        rs.status.ready_replicas = 0
        assert apps.replace_namespaced_replica_set("rs", ns, rs).status.ready_replicas == 3


def test_watch_events_and_resume(cluster, ns):
    with cluster.client() as api_client:
        core = client.CoreV1Api(api_client)
        start_rv = core.list_namespaced_config_map(ns).metadata.resource_version
        core.create_namespaced_config_map(ns, {"metadata": {"name": "a", "labels": {"w": "1"}}, "data": {"x": "1"}})
        core.patch_namespaced_config_map("a", ns, {"data": {"x": "2"}})
        core.patch_namespaced_config_map("a", ns, {"metadata": {"labels": {"w": "2"}}})
        core.delete_namespaced_config_map("a", ns)
        w = watch.Watch()
        seen = []
        for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=start_rv, timeout_seconds=2):
            seen.append((ev["type"], ev["object"].data.get("x") if ev["object"].data else None))
            if len(seen) == 4:
                w.stop()
        assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("MODIFIED", "2"), ("DELETED", "2")]
        # With a label selector, leaving the selector is a DELETED event.
        seen = []
        for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=start_rv,
                           label_selector="w=1", timeout_seconds=2):
            seen.append(ev["type"])
            if len(seen) == 3:
                w.stop()
        assert seen == ["ADDED", "MODIFIED", "DELETED"]


def test_live_watch_latency_and_bookmarks(cluster, ns):
    with cluster.client() as api_client:
        core = client.CoreV1Api(api_client)
        rv = core.list_namespaced_config_map(ns).metadata.resource_version
        got = []

        def consume():
            w = watch.Watch()
            for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv,
                               allow_watch_bookmarks=True, timeout_seconds=5):
                got.append(ev["type"])
                if ev["type"] == "ADDED":
                    w.stop()
        t = threading.Thread(target=consume)
        t.start()
        time.sleep(0.2)
        core.create_namespaced_config_map(ns, {"metadata": {"name": "live"}})
        t.join(10)
        assert "ADDED" in got


def test_watch_from_compacted_revision_is_410(tmp_path):
    c = start_cluster(str(tmp_path / "data"), ["--compaction-window", "1"])
    try:
        with c.client() as api_client:
            core = client.CoreV1Api(api_client)
            old = core.create_namespaced_config_map("default", {"metadata": {"name": "old"}}).metadata.resource_version

            def compacted():
                core.patch_namespaced_config_map("old", "default", {"data": {"t": str(time.time())}})
                status, body, _ = raw_request(c, "GET", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={old}&timeoutSeconds=1")
                return body if body and body.get("type") == "ERROR" else None
            body = wait_until(compacted, timeout=30, interval=0.5, message="compaction")
            assert body["object"]["code"] == 410 and body["object"]["reason"] == "Expired"
            assert body["object"]["message"].startswith(f"too old resource version: {old} (")
            # The Python client's Watch turns it into an ApiException 410.
            w = watch.Watch()
            with pytest.raises(ApiException) as e:
                for _ in w.stream(core.list_namespaced_config_map, "default", resource_version=old,
                                  timeout_seconds=2):
                    pass
            assert e.value.status == 410
    finally:
        stop_cluster(c)


def test_list_pagination(cluster, ns):
    with cluster.client() as api_client:
        core = client.CoreV1Api(api_client)
        for i in range(7):
            core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm-{i}"}})
        names = []
        token = None
        pages = 0
        while True:
            page = core.list_namespaced_config_map(ns, limit=3, _continue=token)
            names += [i.metadata.name for i in page.items]
            pages += 1
            token = page.metadata._continue
            if not token:
                break
        assert names == [f"cm-{i}" for i in range(7)] and pages == 3


def test_generate_name_dry_run_and_delete_options(cluster, ns):
    with cluster.client() as api_client:
        core = client.CoreV1Api(api_client)
        a = core.create_namespaced_config_map(ns, {"metadata": {"generateName": "gen-"}})
        assert a.metadata.name.startswith("gen-") and len(a.metadata.name) == 9
        dry = core.create_namespaced_config_map(ns, {"metadata": {"name": "dry"}}, dry_run="All")
        assert dry.metadata.name == "dry"
        with pytest.raises(ApiException):
            core.read_namespaced_config_map("dry", ns)
        # Delete with a wrong UID precondition is a conflict.
        with pytest.raises(ApiException) as e:
            core.delete_namespaced_config_map(a.metadata.name, ns, body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000")))
        assert e.value.status == 409
        # Finalizers keep an object (with deletionTimestamp) until they are removed.
        core.create_namespaced_config_map(ns, {"metadata": {"name": "fin", "finalizers": ["example.com/keep"]}})
        core.delete_namespaced_config_map("fin", ns)
        held = core.read_namespaced_config_map("fin", ns)
        assert held.metadata.deletion_timestamp is not None
        core.patch_namespaced_config_map("fin", ns, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/keep"]}})
        with pytest.raises(ApiException) as e:
            core.read_namespaced_config_map("fin", ns)
        assert e.value.status == 404
        # Orphan and Foreground propagation are finalizers on the owner.
        apps = client.AppsV1Api(api_client)
        apps.create_namespaced_deployment(ns, deployment("orph"))
        apps.delete_namespaced_deployment("orph", ns, propagation_policy="Foreground")
        d = apps.read_namespaced_deployment("orph", ns)
        assert d.metadata.finalizers == ["foregroundDeletion"] and d.metadata.deletion_timestamp


def test_error_statuses(cluster, ns):
    # 400: malformed JSON
    status, body, _ = raw_request(cluster, "POST", f"/api/v1/namespaces/{ns}/configmaps", b"{not json")
    assert status == 400 and body["kind"] == "Status" and body["reason"] == "BadRequest"
    # 413: body over 3 MiB
    big = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                      "data": {"x": "a" * (3 * 1024 * 1024 + 10)}}).encode()
    status, body, _ = raw_request(cluster, "POST", f"/api/v1/namespaces/{ns}/configmaps", big)
    assert status == 413 and body["reason"] == "RequestEntityTooLarge"
    # 415: protobuf, with advice
    status, body, _ = raw_request(cluster, "POST", f"/api/v1/namespaces/{ns}/configmaps", b"k8s\x00...",
                                  "application/vnd.kubernetes.protobuf")
    assert status == 415 and body["reason"] == "UnsupportedMediaType" and "application/json" in body["message"]
    # 415: unknown patch type
    status, body, _ = raw_request(cluster, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/x", b"{}", "text/html")
    assert status == 415
    # 405: PUT on a collection
    status, body, _ = raw_request(cluster, "PUT", f"/api/v1/namespaces/{ns}/configmaps", b"{}")
    assert status == 405 and body["reason"] == "MethodNotAllowed"
    # 404 for unknown resources and objects
    status, body, _ = raw_request(cluster, "GET", "/apis/apps/v1/namespaces/default/widgets")
    assert status == 404 and body["kind"] == "Status"
    # 422 with field causes
    status, body, _ = raw_request(cluster, "POST", f"/api/v1/namespaces/{ns}/configmaps", json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}).encode())
    assert status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    # 400 strict decoding
    status, body, _ = raw_request(cluster, "POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict",
                                  json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"},
                                              "bogus": 1}).encode())
    assert status == 400 and 'unknown field "bogus"' in body["message"]
    # Warn: stored, with a Warning header, unknown field dropped
    status, body, headers = raw_request(cluster, "POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Warn",
                                        json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                                    "metadata": {"name": "w"}, "bogus": 1}).encode())
    assert status == 201 and "bogus" not in body and 'unknown field \\"bogus\\"' in headers.get("Warning", "")
    # sendInitialEvents without resourceVersionMatch: 422
    status, body, _ = raw_request(cluster, "GET", f"/api/v1/namespaces/{ns}/configmaps?watch=1&sendInitialEvents=true")
    assert status == 422
    # Nothing stored was harmed by any of the above.
    status, body, _ = raw_request(cluster, "GET", f"/api/v1/namespaces/{ns}/configmaps")
    assert status == 200 and [i["metadata"]["name"] for i in body["items"]] == ["w"]
