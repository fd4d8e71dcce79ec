"""The Api layer in-process (no HTTP): strategies, deletion, namespaces, binding, watch semantics."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from pocketkube.api.core import Api, WriteOptions
from pocketkube.api.errors import ApiError
from pocketkube.api.resources import lookup
from pocketkube.api.objects import decode_value, encode, event_line
from pocketkube.api.watching import WatchRequest, watch_batches, watch_events
from pocketkube.clock import FakeClock
from pocketkube.store.sqlite import SqliteStore

PODS = lookup("", "v1", "pods")
DEPLOY = lookup("apps", "v1", "deployments")
JOBS = lookup("batch", "v1", "jobs")
NS = lookup("", "v1", "namespaces")
CM = lookup("", "v1", "configmaps")

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1"}},
       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
DEP = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
       "spec": {"selector": {"matchLabels": {"a": "1"}},
                "template": {"metadata": {"labels": {"a": "1"}}, "spec": POD["spec"]}}}


def run(tmp_path, body):
    async def main():
        store = SqliteStore(str(tmp_path / "s.db"))
        api = Api(store, FakeClock())
        await api.bootstrap()
        try:
            await body(api)
        finally:
            await store.close()
    asyncio.run(main())


def copy(o):
    import json
    return json.loads(json.dumps(o))


def test_create_resets_status_sets_generation_and_defaults(tmp_path):
    async def body(api):
        d = copy(DEP)
        d["status"] = {"replicas": 9}
        r = await api.create(DEPLOY, "default", d)
        obj = r.obj
        assert obj["status"] == {} and obj["metadata"]["generation"] == 1
        assert obj["spec"]["replicas"] == 1 and obj["metadata"]["creationTimestamp"].endswith("Z")
        p = (await api.create(PODS, "default", copy(POD))).obj
        assert p["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
        # Spec change bumps generation; a label change does not.
        r = await api.patch(DEPLOY, "default", "d", "application/merge-patch+json", b'{"metadata":{"labels":{"x":"y"}}}')
        assert r.obj["metadata"]["generation"] == 1
        r = await api.patch(DEPLOY, "default", "d", "application/merge-patch+json", b'{"spec":{"replicas":3}}')
        assert r.obj["metadata"]["generation"] == 2
        # A no-op patch does not write (same resourceVersion).
        again = await api.patch(DEPLOY, "default", "d", "application/merge-patch+json", b'{"spec":{"replicas":3}}')
        assert again.obj["metadata"]["resourceVersion"] == r.obj["metadata"]["resourceVersion"]
    run(tmp_path, body)


def test_pod_graceful_deletion_and_force(tmp_path):
    async def body(api):
        await api.create(PODS, "default", copy(POD))
        await api.bind("default", "p", {"target": {"kind": "Node", "name": "n1"}})
        with pytest.raises(ApiError) as e:
            await api.bind("default", "p", {"target": {"kind": "Node", "name": "n2"}})
        assert e.value.code == 409
        r = await api.delete(PODS, "default", "p", {})
        meta = r.obj["metadata"]
        assert meta["deletionGracePeriodSeconds"] == 30 and meta["deletionTimestamp"]
        # Still there while terminating; a shorter grace period may follow; zero removes it.
        assert (await api.get(PODS, "default", "p"))["metadata"]["deletionTimestamp"]
        r = await api.delete(PODS, "default", "p", {"gracePeriodSeconds": 5})
        assert r.obj["metadata"]["deletionGracePeriodSeconds"] == 5
        await api.delete(PODS, "default", "p", {"gracePeriodSeconds": 0})
        with pytest.raises(ApiError) as e:
            await api.get(PODS, "default", "p")
        assert e.value.code == 404
        # An unscheduled pod goes at once.
        await api.create(PODS, "default", copy(POD))
        await api.delete(PODS, "default", "p", {})
        with pytest.raises(ApiError):
            await api.get(PODS, "default", "p")
    run(tmp_path, body)


def test_propagation_finalizers_and_job_orphan_default(tmp_path):
    async def body(api):
        await api.create(DEPLOY, "default", copy(DEP))
        r = await api.delete(DEPLOY, "default", "d", {"propagationPolicy": "Orphan"})
        assert r.obj["metadata"]["finalizers"] == ["orphan"]
        # Removing the finalizer completes the deletion.
        await api.patch(DEPLOY, "default", "d", "application/merge-patch+json", b'{"metadata":{"finalizers":null}}')
        with pytest.raises(ApiError):
            await api.get(DEPLOY, "default", "d")
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
               "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": POD["spec"]["containers"]}}}}
        await api.create(JOBS, "default", job)
        r = await api.delete(JOBS, "default", "j", {})
        assert r.obj["metadata"]["finalizers"] == ["orphan"]
        with pytest.raises(ApiError) as e:
            await api.delete(DEPLOY, "default", "x", {"propagationPolicy": "Sideways"})
        assert e.value.code == 422
    run(tmp_path, body)


def test_namespace_termination_and_finalize(tmp_path):
    async def body(api):
        await api.create(NS, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}})
        ns = (await api.delete(NS, "", "gone", {})).obj
        assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
        with pytest.raises(ApiError) as e:
            await api.create(CM, "gone", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
        assert e.value.code == 403 and "being terminated" in e.value.message
        ns["spec"]["finalizers"] = []
        await api.update(NS, "", "gone", ns, subresource="finalize")
        with pytest.raises(ApiError) as e:
            await api.get(NS, "", "gone")
        assert e.value.code == 404
    run(tmp_path, body)


def test_watch_selector_transitions_and_initial_events(tmp_path):
    async def body(api):
        rv = api.store.revision
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"k": "a"}}}
        await api.create(CM, "default", copy(cm))
        await api.patch(CM, "default", "c", "application/merge-patch+json", b'{"metadata":{"labels":{"k":"b"}}}')
        await api.patch(CM, "default", "c", "application/merge-patch+json", b'{"metadata":{"labels":{"k":"a"}}}')
        await api.delete(CM, "default", "c", {})
        types = []
        async for ev in watch_events(api, CM, "default", WatchRequest(str(rv), "k=a", timeout=0.3)):
            types.append(ev["type"])
        assert types == ["ADDED", "DELETED", "ADDED", "DELETED"]
        await api.create(CM, "default", copy(cm))
        evs = []
        req = WatchRequest("", allow_bookmarks=True, send_initial_events=True,
                           resource_version_match="NotOlderThan", timeout=0.2)
        async for ev in watch_events(api, CM, "default", req):
            evs.append(ev)
        assert evs[0]["type"] == "ADDED" and evs[0]["object"]["metadata"]["name"] == "c"
        assert evs[1]["type"] == "BOOKMARK"
        assert evs[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    run(tmp_path, body)


def test_encoded_watch_lines_say_what_the_decoded_events_say(tmp_path):
    """A stream writer's watch gives each change as its JSON line, made from the stored bytes:
    the same events, objects and resourceVersions as the decoded path, with and without a
    selector (whose transitions still decide the types)."""
    async def body(api):
        rv = api.store.revision
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"k": "a"}},
              "data": {"x": 'quote " and \\ "metadata":{'}}
        await api.create(CM, "default", copy(cm))
        await api.patch(CM, "default", "c", "application/merge-patch+json", b'{"metadata":{"labels":{"k":"b"}}}')
        await api.patch(CM, "default", "c", "application/merge-patch+json", b'{"metadata":{"labels":{"k":"a"}}}')
        await api.delete(CM, "default", "c", {})
        for selector in ("", "k=a"):
            decoded, lines = [], []
            async for batch in watch_batches(api, CM, "default", WatchRequest(str(rv), selector, timeout=0.3)):
                decoded.extend(batch)
            async for batch in watch_batches(api, CM, "default", WatchRequest(str(rv), selector, timeout=0.3),
                                             encoded=True):
                assert all(isinstance(line, bytes) and line.endswith(b"}\n") for line in batch)
                lines.extend(orjson.loads(line) for line in batch)
            assert lines == decoded
            assert [ev["type"] for ev in lines] == (["ADDED", "MODIFIED", "MODIFIED", "DELETED"] if not selector
                                                    else ["ADDED", "DELETED", "ADDED", "DELETED"])
            assert [ev["object"]["metadata"]["resourceVersion"] for ev in lines] == [
                str(r) for r in range(rv + 1, rv + 5)]
    run(tmp_path, body)


@pytest.mark.parametrize("obj", [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {"x": 1}},
    # Another key order, and metadata under spec first: the line is encoded from the object.
    {"spec": {"template": {"metadata": {"name": "inner"}}}, "apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "d"}},
    {"apiVersion": 'v"1', "kind": "Pod", "metadata": {"name": "q"}},
])
def test_event_line_is_the_event_of_the_decoded_object(obj):
    value = encode(copy(obj))
    for kind in ("ADDED", "MODIFIED", "DELETED"):
        line = event_line(kind, value, 42)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert orjson.loads(line) == {"type": kind, "object": decode_value(value, 42)}


def test_dry_run_writes_nothing(tmp_path):
    async def body(api):
        r = await api.create(DEPLOY, "default", copy(DEP), WriteOptions(dry_run=True))
        assert r.obj["metadata"]["uid"]
        with pytest.raises(ApiError):
            await api.get(DEPLOY, "default", "d")
    run(tmp_path, body)


def test_daemonset_template_generation_annotation(tmp_path):
    """apps/v1 shows the internal spec.templateGeneration as an annotation: 1 on create (whatever
    the client sent), +1 when the template changes, kept through other changes."""
    ds_res = lookup("apps", "v1", "daemonsets")
    key = "deprecated.daemonset.template.generation"

    async def body(api):
        ds = {"apiVersion": "apps/v1", "kind": "DaemonSet",
              "metadata": {"name": "ds", "annotations": {key: "7"}},
              "spec": {"selector": {"matchLabels": {"a": "1"}},
                       "template": {"metadata": {"labels": {"a": "1"}}, "spec": POD["spec"]}}}
        obj = (await api.create(ds_res, "default", ds)).obj
        assert obj["metadata"]["annotations"][key] == "1"
        patch = b'{"spec":{"minReadySeconds":5}}'
        obj = (await api.patch(ds_res, "default", "ds", "application/merge-patch+json", patch)).obj
        assert obj["metadata"]["annotations"][key] == "1" and obj["metadata"]["generation"] == 2
        patch = b'{"spec":{"template":{"metadata":{"labels":{"b":"2"}}}}}'
        obj = (await api.patch(ds_res, "default", "ds", "application/merge-patch+json", patch)).obj
        assert obj["metadata"]["annotations"][key] == "2" and obj["metadata"]["generation"] == 3
    run(tmp_path, body)


def test_claims_without_a_class_get_the_newest_default_one(tmp_path):
    """DefaultStorageClass admission: only a claim that names no class; "" stays "" (no class)."""
    sc_res, pvc_res = lookup("storage.k8s.io", "v1", "storageclasses"), lookup("", "v1", "persistentvolumeclaims")

    def pvc(name, **spec):
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}}

    async def body(api):
        assert "storageClassName" not in (await api.create(pvc_res, "default", pvc("before"))).obj["spec"]
        for name, default in (("slow", "false"), ("fast", "true")):
            await api.create(sc_res, "", {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                          "metadata": {"name": name, "annotations": {
                                              "storageclass.kubernetes.io/is-default-class": default}},
                                          "provisioner": "example.com/p"})
        assert (await api.create(pvc_res, "default", pvc("a"))).obj["spec"]["storageClassName"] == "fast"
        assert (await api.create(pvc_res, "default", pvc("b", storageClassName=""))).obj["spec"]["storageClassName"] == ""
        assert (await api.create(pvc_res, "default", pvc("c", storageClassName="slow"))).obj["spec"]["storageClassName"] == "slow"
    run(tmp_path, body)


def test_empty_metadata_lists_and_maps_are_omitted_as_go_does(tmp_path):
    async def body(api):
        cm = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "c", "finalizers": ["example.com/x"], "labels": {}}}
        obj = (await api.create(CM, "default", cm)).obj
        assert "labels" not in obj["metadata"] and obj["metadata"]["finalizers"] == ["example.com/x"]
        obj = (await api.patch(CM, "default", "c", "application/json-patch+json",
                               b'[{"op":"remove","path":"/metadata/finalizers/0"}]')).obj
        assert "finalizers" not in obj["metadata"]
        assert "finalizers" not in (await api.get(CM, "default", "c"))["metadata"]
    run(tmp_path, body)


def test_new_uids_are_the_version_4_uuids_of_their_random_bits():
    """Formatted by hand for speed: the same string uuid.UUID(int=bits, version=4) gives."""
    import random
    import uuid

    from pocketkube.api import objects

    for seed in range(200):
        random.seed(seed)
        got = objects.new_uid()
        random.seed(seed)
        assert got == str(uuid.UUID(int=random.getrandbits(128), version=4))
        assert uuid.UUID(got).version == 4 and uuid.UUID(got).variant == uuid.RFC_4122


def test_status_writes_keep_or_reset_metadata_as_each_kind_does(tmp_path):
    """Through /status, core kinds change metadata freely (only spec is reset); Deployments keep
    their labels but take annotations; pods keep their owner references."""
    nodes = lookup("", "v1", "nodes")
    merge = "application/merge-patch+json"

    async def body(api):
        await api.create(nodes, "", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
        r = await api.patch(nodes, "", "n1", merge, b'{"metadata":{"annotations":{"a":"1"},"labels":{"l":"1"}},'
                            b'"spec":{"unschedulable":true},"status":{"phase":"Running"}}', subresource="status")
        assert r.obj["metadata"]["annotations"] == {"a": "1"} and r.obj["metadata"]["labels"]["l"] == "1"
        assert "unschedulable" not in r.obj.get("spec", {}) and r.obj["status"]["phase"] == "Running"
        r = await api.patch(NS, "", "default", merge, b'{"metadata":{"annotations":{"a":"1"}}}', subresource="status")
        assert r.obj["metadata"]["annotations"] == {"a": "1"}

        await api.create(DEPLOY, "default", copy(DEP))
        r = await api.patch(DEPLOY, "default", "d", merge, b'{"metadata":{"annotations":{"a":"1"},"labels":{"l":"1"}}}',
                            subresource="status")
        assert r.obj["metadata"]["annotations"] == {"a": "1"} and "labels" not in r.obj["metadata"]

        await api.create(PODS, "default", copy(POD))
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u1"}
        r = await api.patch(PODS, "default", "p", merge, orjson.dumps(
            {"metadata": {"ownerReferences": [ref], "annotations": {"a": "1"}}}), subresource="status")
        assert "ownerReferences" not in r.obj["metadata"] and r.obj["metadata"]["annotations"] == {"a": "1"}
    run(tmp_path, body)
