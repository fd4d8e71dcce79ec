"""Deployment controller: the conformance behaviours of apps/v1 Deployments, in process.

Each test runs an API over SQLite with the scheduler, three simulated nodes, the ReplicaSet
controller and the Deployment controller, so pods really get created, scheduled and reported
Running/Ready. Pods that must never become available are made unschedulable (a nodeSelector no
node has), the simulated equivalent of an image that never pulls. Time-dependent behaviour
(minReadySeconds, progressDeadlineSeconds) runs on a FakeClock that the test moves forward.
"""

from __future__ import annotations

import asyncio

import pytest

from pocketkube.api.errors import ApiError
from pocketkube.client import JSON_PATCH, MERGE, STRATEGIC
from pocketkube.clock import Clock, FakeClock
from pocketkube.controllers.deployment import DeploymentController, util
from pocketkube.controllers.deployment.progress import replica_failures
from pocketkube.controllers.podtemplate.hash import (
    compute_hash,
    fnv32a,
    safe_encode_string,
)
from pocketkube.controllers.replicaset import ReplicaSetController
from tests.unit.harness import ControllerEnv, run

D = "deployments.apps"
RS = "replicasets.apps"
NS = "default"
NOWHERE = {"pocketkube.dev/no-such-node": "true"}


def dep(name="nginx", replicas=3, labels=None, image="nginx:1.14", **spec):
    labels = labels or {"app": name}
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}
    body["spec"].update(spec)
    return body


def rs_body(name, replicas, labels, image="httpd:2.4", annotations=None):
    meta = {"name": name, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def cond(obj, ctype):
    return util.get_condition(obj.get("status"), ctype)


class Cluster(ControllerEnv):
    """API + scheduler + simulated nodes + ReplicaSet and Deployment controllers."""

    def __init__(self, tmp_path, clock=None, controllers=(ReplicaSetController, DeploymentController)):
        super().__init__(tmp_path, controllers, nodes=3, clock=clock or Clock())

    async def get(self, name, res=D):
        return await self.c.get(res, NS, name)

    async def rss(self, owner: str | None = None) -> list[dict]:
        items = (await self.c.list(RS, NS))["items"]
        if owner is not None:
            items = [r for r in items
                     if any(o.get("name") == owner and o.get("controller") for o in
                            r["metadata"].get("ownerReferences") or [])]
        # Oldest first: by revision (creation times only have second precision).
        return sorted(items, key=lambda r: (int((r["metadata"].get("annotations") or {}).get(util.REVISION, 0)),
                                            r["metadata"]["creationTimestamp"], r["metadata"]["name"]))

    async def pods(self, selector="") -> list[dict]:
        return (await self.c.list("pods", NS, label_selector=selector))["items"]

    async def complete(self, name):
        """What `kubectl rollout status` waits for, plus every pod Running."""
        d = await self.get(name)
        st = d.get("status") or {}
        want = d["spec"]["replicas"]
        if st.get("observedGeneration", 0) < d["metadata"]["generation"]:
            return False
        if (st.get("updatedReplicas") or 0) != want or (st.get("replicas") or 0) != want \
                or (st.get("availableReplicas") or 0) != want:
            return False
        sel = ",".join(f"{k}={v}" for k, v in d["spec"]["selector"]["matchLabels"].items())
        running = [p for p in await self.pods(sel)
                   if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
        return d if len(running) == want else False

    async def events(self, kind="Deployment", name=None):
        for r in self.mgr.controllers:
            await r.recorder.flush()
        items = (await self.c.list("events", NS))["items"]
        return [e for e in items if e["involvedObject"]["kind"] == kind
                and (name is None or e["involvedObject"]["name"] == name)]


# ---- pure functions ------------------------------------------------------------------------------

def test_fenceposts_round_surge_up_and_unavailable_down():
    assert util.resolve_fenceposts("25%", "25%", 3) == (1, 0)
    assert util.resolve_fenceposts("25%", "25%", 10) == (3, 2)
    assert util.resolve_fenceposts(0, "10%", 5) == (0, 1)        # both 0 after rounding: 1 unavailable
    assert util.resolve_fenceposts(2, 0, 5) == (2, 0)
    assert util.resolve_fenceposts("100%", "0%", 7) == (7, 0)
    d = dep(replicas=10, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}})
    assert (util.max_surge(d), util.max_unavailable(d)) == (3, 2)
    assert util.max_surge(dep(strategy={"type": "Recreate"})) == 0
    assert util.max_unavailable(dep(replicas=0, strategy={"type": "RollingUpdate", "rollingUpdate": {}})) == 0


def test_proportions_split_a_scaling_event_by_size():
    d = dep(replicas=30, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}})
    old = {"metadata": {"name": "a", "annotations": {util.MAX_REPLICAS: "13"}}, "spec": {"replicas": 8}}
    new = {"metadata": {"name": "b", "annotations": {util.MAX_REPLICAS: "13"}}, "spec": {"replicas": 5}}
    to_add = 33 - 13
    p1 = util.proportion(old, d, to_add, 0)
    p2 = util.proportion(new, d, to_add, p1)
    assert (8 + p1, 5 + p2) == (20, 13)
    assert util.go_round(2.5) == 3 and util.go_round(-2.5) == -3


def test_hash_shape_and_collision_count():
    tpl = {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    h = compute_hash(tpl)
    assert 1 <= len(h) <= 10 and set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert h == compute_hash(util.copy(tpl))
    assert compute_hash(tpl, 1) != h and compute_hash(tpl, 0) != h
    assert fnv32a(b"") == 0x811C9DC5 and fnv32a(b"a") == 0xE40C292C  # FNV-1a test vectors
    assert safe_encode_string("0123456789") == "bcdfghjklm"[0:0] + "".join(
        "bcdfghjklmnpqrstvwxz2456789"[ord(c) % 27] for c in "0123456789")


def test_revision_history_and_last_revision():
    d = {"metadata": {"annotations": {"kubernetes.io/change-cause": "undo"}}, "spec": {"replicas": 1}}
    rs = {"metadata": {"annotations": {util.REVISION: "1"}}}
    assert util.set_new_replica_set_annotations(d, rs, "3", True)
    assert rs["metadata"]["annotations"][util.REVISION] == "3"
    assert rs["metadata"]["annotations"][util.REVISION_HISTORY] == "1"
    assert rs["metadata"]["annotations"]["kubernetes.io/change-cause"] == "undo"
    util.set_new_replica_set_annotations(d, rs, "5", True)
    assert rs["metadata"]["annotations"][util.REVISION_HISTORY] == "1,3"
    assert not util.set_new_replica_set_annotations(d, rs, "4", True)   # revisions never go down
    rss = [{"metadata": {"annotations": {util.REVISION: v}}} for v in ("4", "7", "2")]
    assert util.max_revision(rss) == 7 and util.last_revision(rss) == 4


def test_equal_ignore_hash_and_replica_failures():
    a = {"metadata": {"labels": {"app": "x", "pod-template-hash": "abc"}}, "spec": {"containers": [{"name": "c"}]}}
    b = {"metadata": {"labels": {"app": "x"}, "annotations": {}}, "spec": {"containers": [{"name": "c"}]}}
    assert util.equal_ignore_hash(a, b)
    assert not util.equal_ignore_hash(a, {"metadata": {"labels": {"app": "y"}}, "spec": b["spec"]})
    failure = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota",
               "lastTransitionTime": "2024-01-01T00:00:00Z"}
    old = {"status": {"conditions": [failure]}}
    new = {"status": {}}
    got = replica_failures([old, new], new)
    assert got == [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota",
                    "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"}]


# ---- in-process cluster ----------------------------------------------------------------------------

def test_create_names_labels_annotations_status_and_events(tmp_path):
    async def main():
        async with Cluster(tmp_path) as k:
            await k.c.create(D, NS, dep())
            d = await k.until(lambda: k.complete("nginx"), message="rollout")
            [rs] = await k.rss("nginx")
            h = rs["metadata"]["labels"]["pod-template-hash"]
            assert rs["metadata"]["name"] == f"nginx-{h}"
            assert rs["spec"]["selector"]["matchLabels"] == {"app": "nginx", "pod-template-hash": h}
            assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "nginx", "pod-template-hash": h}
            assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
            assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
            ann = rs["metadata"]["annotations"]
            assert ann[util.REVISION] == "1" and ann[util.DESIRED_REPLICAS] == "3" and ann[util.MAX_REPLICAS] == "4"
            assert d["metadata"]["annotations"][util.REVISION] == "1"
            for p in await k.pods("app=nginx"):
                assert p["metadata"]["name"].startswith(f"nginx-{h}-") and len(p["metadata"]["name"]) == len(f"nginx-{h}-") + 5
                assert p["metadata"]["labels"]["pod-template-hash"] == h
            st = d["status"]
            assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
            assert st["observedGeneration"] == 1 and "unavailableReplicas" not in st
            assert cond(d, "Available")["reason"] == "MinimumReplicasAvailable"
            assert cond(d, "Available")["message"] == "Deployment has minimum availability."
            prog = cond(d, "Progressing")
            assert prog["status"] == "True" and prog["reason"] == "NewReplicaSetAvailable"
            assert prog["message"] == f'ReplicaSet "nginx-{h}" has successfully progressed.'
            assert [c["type"] for c in d["status"]["conditions"]] == ["Available", "Progressing"]
            msgs = [e["message"] for e in await k.events(name="nginx")]
            assert f"Scaled up replica set nginx-{h} from 0 to 3" in msgs
    run(main())


def test_scale_subresource(tmp_path):
    """Conformance: Deployment should have a working scale subresource."""
    async def main():
        async with Cluster(tmp_path) as k:
            await k.c.create(D, NS, dep("webserver", replicas=1))
            await k.until(lambda: k.complete("webserver"), message="one pod running")
            scale = await k.api.get_scale(_res(D), NS, "webserver")
            assert scale["spec"]["replicas"] == 1 and scale["status"]["replicas"] == 1
            assert scale["status"]["selector"] == "app=webserver"
            await k.api.update_scale(_res(D), NS, "webserver", {**scale, "spec": {"replicas": 2}})
            d = await k.until(lambda: k.complete("webserver"), message="scaled to 2")
            assert d["spec"]["replicas"] == 2
            await k.c.patch(D, NS, "webserver", {"spec": {"replicas": 4}}, MERGE, subresource="scale")
            d = await k.until(lambda: k.complete("webserver"), message="scaled to 4")
            [rs] = await k.rss("webserver")
            assert rs["spec"]["replicas"] == 4 and rs["metadata"]["annotations"][util.DESIRED_REPLICAS] == "4"
    run(main())


def _res(name):
    from pocketkube.client import resource
    return resource(name)


def test_rolling_update_adopts_replica_set_and_replaces_its_pods(tmp_path):
    """Conformance: RollingUpdateDeployment should delete old pods and create new ones."""
    async def main():
        async with Cluster(tmp_path) as k:
            labels = {"name": "sample-pod"}
            await k.c.create(RS, NS, rs_body("test-rolling-update-controller", 3, labels,
                                             annotations={util.REVISION: "3546343826724305832"}))
            await k.until(lambda: _running(k, "name=sample-pod", 3), message="RS pods running")
            body = dep("test-rolling-update-deployment", replicas=3, labels=labels, image="agnhost:2.40",
                       strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
            await k.c.create(D, NS, body)
            sizes: list[int] = []
            watcher = asyncio.create_task(_watch_total_replicas(k, sizes))
            d = await k.until(lambda: k.complete("test-rolling-update-deployment"), message="rollout")
            watcher.cancel()
            assert d["metadata"]["annotations"][util.REVISION] == "3546343826724305833"
            old, new = await k.rss("test-rolling-update-deployment")
            assert old["metadata"]["name"] == "test-rolling-update-controller"
            assert old["spec"]["replicas"] == 0
            assert new["metadata"]["annotations"][util.REVISION] == "3546343826724305833"
            pods = [p for p in await k.pods("name=sample-pod") if not p["metadata"].get("deletionTimestamp")]
            assert {p["spec"]["containers"][0]["image"] for p in pods} == {"agnhost:2.40"}
            # maxSurge 1: never more than 4 pods asked for at once.
            assert sizes and max(sizes) <= 4
    run(main())


async def _running(k, sel, n):
    pods = [p for p in await k.pods(sel) if p["status"].get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]
    return len(pods) == n


async def _watch_total_replicas(k, out: list[int]):
    seen: dict[str, int] = {}
    async for ev in k.c.watch(RS, NS):
        obj = ev["object"]
        if ev["type"] in ("ADDED", "MODIFIED"):
            seen[obj["metadata"]["name"]] = obj["spec"]["replicas"]
        elif ev["type"] == "DELETED":
            seen.pop(obj["metadata"]["name"], None)
        out.append(sum(seen.values()))


def test_recreate_deletes_old_pods_before_creating_new(tmp_path):
    """Conformance: RecreateDeployment should delete old pods and create new ones."""
    async def main():
        async with Cluster(tmp_path) as k:
            await k.c.create(D, NS, dep("test-recreate-deployment", replicas=3, strategy={"type": "Recreate"}))
            await k.until(lambda: k.complete("test-recreate-deployment"), message="first rollout")
            [old] = await k.rss()
            old_hash = old["metadata"]["labels"]["pod-template-hash"]
            overlaps = []

            async def watch_pods():
                live: dict[str, str] = {}
                async for ev in k.c.watch("pods", NS):
                    p = ev["object"]
                    h = p["metadata"]["labels"]["pod-template-hash"]
                    if ev["type"] == "DELETED":
                        live.pop(p["metadata"]["name"], None)
                        continue
                    if ev["type"] == "ADDED" and h != old_hash and old_hash in live.values():
                        overlaps.append(p["metadata"]["name"])
                    live[p["metadata"]["name"]] = h
            watcher = asyncio.create_task(watch_pods())
            await asyncio.sleep(0.05)
            await k.c.patch(D, NS, "test-recreate-deployment",
                            {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "httpd:2.4"}]}}}},
                            STRATEGIC)
            d = await k.until(lambda: k.complete("test-recreate-deployment"), message="recreated")
            watcher.cancel()
            assert not overlaps, f"new pods created while old ones existed: {overlaps}"
            old, new = await k.rss("test-recreate-deployment")
            assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 3
            assert d["metadata"]["annotations"][util.REVISION] == "2"
            msgs = [e["message"] for e in await k.events(name="test-recreate-deployment")]
            assert f"Scaled down replica set {old['metadata']['name']} from 3 to 0" in msgs
            assert f"Scaled up replica set {new['metadata']['name']} from 0 to 3" in msgs
    run(main())


def test_old_replica_sets_beyond_history_limit_are_deleted(tmp_path):
    """Conformance: deployment should delete old replica sets (revisionHistoryLimit 0)."""
    async def main():
        async with Cluster(tmp_path) as k:
            labels = {"name": "cleanup-pod"}
            await k.c.create(RS, NS, rs_body("test-cleanup-controller", 1, labels))
            await k.until(lambda: _running(k, "name=cleanup-pod", 1), message="RS pod running")
            await k.c.create(D, NS, dep("test-cleanup-deployment", replicas=1, labels=labels, image="agnhost:2.40",
                                        revisionHistoryLimit=0))
            await k.until(lambda: k.complete("test-cleanup-deployment"), message="rollout")

            async def one_left():
                rss = await k.rss()
                return len(rss) == 1 and rss[0]["metadata"]["name"] != "test-cleanup-controller"
            await k.until(one_left, message="old ReplicaSet deleted")
            # History kept to its limit over further rollouts too.
            await k.c.patch(D, NS, "test-cleanup-deployment", {"spec": {"revisionHistoryLimit": 1}}, MERGE)
            for image in ("httpd:2.4", "nginx:1.25"):
                await k.c.patch(D, NS, "test-cleanup-deployment", {"spec": {"template": {"spec": {
                    "containers": [{"name": "c", "image": image}]}}}}, STRATEGIC)
                await k.until(lambda: k.complete("test-cleanup-deployment"), message=f"rollout to {image}")
            await k.until(lambda: _count(k.rss(), 2), message="one old ReplicaSet kept")
    run(main())


async def _count(aw, n):
    return len(await aw) == n


def test_proportional_scaling_during_a_rollout(tmp_path):
    """Conformance: deployment should support proportional scaling."""
    async def main():
        async with Cluster(tmp_path) as k:
            body = dep("webserver", replicas=10, image="httpd:2.4",
                       strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}})
            await k.c.create(D, NS, body)
            await k.until(lambda: k.complete("webserver"), message="first rollout")
            # A template whose pods never become available (they cannot be scheduled).
            await k.c.patch(D, NS, "webserver", {"spec": {"template": {"spec": {"nodeSelector": NOWHERE}}}}, STRATEGIC)

            async def stuck():
                rss = await k.rss("webserver")
                return len(rss) == 2 and [r["spec"]["replicas"] for r in rss] == [8, 5] and rss
            first, second = await k.until(stuck, message="rollout stuck at 8 + 5")
            await asyncio.sleep(0.2)
            assert [r["spec"]["replicas"] for r in await k.rss("webserver")] == [8, 5]
            await k.c.patch(D, NS, "webserver", {"spec": {"replicas": 30}}, MERGE)

            async def scaled():
                rss = await k.rss("webserver")
                return [r["spec"]["replicas"] for r in rss] == [20, 13] and rss
            rss = await k.until(scaled, message="proportional scale to 20 + 13")
            for r in rss:
                assert r["metadata"]["annotations"][util.DESIRED_REPLICAS] == "30"
                assert r["metadata"]["annotations"][util.MAX_REPLICAS] == "33"
    run(main())


def test_rollover_of_a_rollout_in_progress(tmp_path):
    """Conformance: deployment should support rollover (minReadySeconds on a FakeClock)."""
    async def main():
        async with Cluster(tmp_path, FakeClock()) as k:
            labels = {"name": "rollover-pod"}
            await k.c.create(RS, NS, rs_body("test-rollover-controller", 1, labels))
            await k.until(lambda: _running(k, "name=rollover-pod", 1), message="RS pod running")
            body = dep("test-rollover-deployment", replicas=1, labels=labels, image="redis-slave:nonexistent",
                       minReadySeconds=10,
                       strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
            body["spec"]["template"]["spec"]["nodeSelector"] = NOWHERE
            await k.c.create(D, NS, body)

            async def bad_rs_up():
                rss = await k.rss("test-rollover-deployment")
                new = [r for r in rss if r["metadata"]["name"] != "test-rollover-controller"]
                return len(new) == 1 and new[0]["spec"]["replicas"] == 1 and new[0]
            bad = await k.until(bad_rs_up, message="bad ReplicaSet with one replica")
            d = await k.get("test-rollover-deployment")
            assert d["status"].get("updatedReplicas", 0) <= 1
            # Roll over to a template that works, while the first rollout is stuck.
            await k.c.patch(D, NS, "test-rollover-deployment", {"spec": {"template": {"spec": {
                "nodeSelector": None, "containers": [{"name": "c", "image": "agnhost:2.40"}]}}}}, STRATEGIC)
            d = await k.until(lambda: k.complete("test-rollover-deployment"), timeout=15, tick=1.0,
                              message="rollover completes after minReadySeconds")
            rss = {r["metadata"]["name"]: r for r in await k.rss("test-rollover-deployment")}
            assert len(rss) == 3
            assert rss["test-rollover-controller"]["spec"]["replicas"] == 0
            assert rss[bad["metadata"]["name"]]["spec"]["replicas"] == 0
            assert d["metadata"]["annotations"][util.REVISION] == "2"
    run(main())


def test_lifecycle_and_status_endpoints(tmp_path):
    """Conformance: lifecycle of a Deployment, and its status subresource."""
    async def main():
        async with Cluster(tmp_path) as k:
            await k.c.create(D, NS, dep("test-deployment", replicas=2, labels={"test-deployment-static": "true"}))
            await k.until(lambda: k.complete("test-deployment"), message="created")
            await k.c.patch(D, NS, "test-deployment", {"metadata": {"labels": {"test-deployment": "patched"}},
                                                       "spec": {"replicas": 1, "template": {"spec": {
                                                           "terminationGracePeriodSeconds": 1}}}}, STRATEGIC)
            d = await k.until(lambda: k.complete("test-deployment"), message="patched")
            assert d["metadata"]["labels"]["test-deployment"] == "patched"
            await k.c.patch(D, NS, "test-deployment", {"spec": {"replicas": 2}}, MERGE, subresource="scale")
            d = await k.until(lambda: k.complete("test-deployment"), message="scaled")
            # Status subresource: read, update, patch; each is visible to the next read.
            d = await k.get("test-deployment")
            d["status"]["conditions"].append({"type": "StatusUpdate", "status": "True", "reason": "E2E",
                                              "message": "Set from e2e test"})
            written = await k.c.update_status(D, NS, d)
            assert cond(written, "StatusUpdate")["reason"] == "E2E"
            patched = await k.c.patch(D, NS, "test-deployment", {"status": {"conditions": [
                {"type": "StatusPatched", "status": "True"}]}}, MERGE, subresource="status")
            assert cond(patched, "StatusPatched")["status"] == "True"
            assert cond(await k.get("test-deployment"), "StatusPatched") is not None
            await k.c.delete(D, NS, "test-deployment")
            with pytest.raises(ApiError) as e:
                await k.get("test-deployment")
            assert e.value.code == 404
    run(main())


def test_pause_resume_and_scaling_while_paused(tmp_path):
    async def main():
        async with Cluster(tmp_path) as k:
            await k.c.create(D, NS, dep(replicas=4))
            await k.until(lambda: k.complete("nginx"), message="created")
            await k.c.patch(D, NS, "nginx", {"spec": {"paused": True}}, STRATEGIC)

            async def paused():
                d = await k.get("nginx")
                c = cond(d, "Progressing")
                return c["reason"] == "DeploymentPaused" and d
            d = await k.until(paused, message="DeploymentPaused")
            c = cond(d, "Progressing")
            assert (c["status"], c["message"]) == ("Unknown", "Deployment is paused")
            await k.c.patch(D, NS, "nginx", {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "nginx:1.25"}]}}}}, STRATEGIC)
            await k.c.patch(D, NS, "nginx", {"spec": {"replicas": 6}}, MERGE)

            async def scaled():
                rss = await k.rss("nginx")
                return len(rss) == 1 and rss[0]["spec"]["replicas"] == 6
            await k.until(scaled, message="paused Deployment scales its only ReplicaSet")
            await asyncio.sleep(0.1)
            assert len(await k.rss("nginx")) == 1, "no rollout while paused"
            d = await k.get("nginx")
            assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
            await k.c.patch(D, NS, "nginx", {"spec": {"paused": False}}, STRATEGIC)
            d = await k.until(lambda: k.complete("nginx"), message="resumed rollout")
            assert {p["spec"]["containers"][0]["image"] for p in await k.pods("app=nginx")
                    if not p["metadata"].get("deletionTimestamp")} == {"nginx:1.25"}
            assert cond(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
            assert d["metadata"]["annotations"][util.REVISION] == "2"
    run(main())


def test_progress_deadline_exceeded_on_the_clock(tmp_path):
    async def main():
        clock = FakeClock()
        async with Cluster(tmp_path, clock) as k:
            body = dep(replicas=2, progressDeadlineSeconds=30)
            body["spec"]["template"]["spec"]["nodeSelector"] = NOWHERE
            await k.c.create(D, NS, body)

            async def created():
                d = await k.get("nginx")
                c = cond(d, "Progressing")
                return c is not None and c["status"] == "True" and cond(d, "Available") is not None \
                    and (d["status"].get("replicas") or 0) == 2 and d
            d = await k.until(created, message="Progressing and Available reported")
            [rs] = await k.rss("nginx")
            assert cond(d, "Progressing")["message"] in (f'Created new replica set "{rs["metadata"]["name"]}"',
                                                         f'ReplicaSet "{rs["metadata"]["name"]}" is progressing.')
            assert cond(d, "Available")["reason"] == "MinimumReplicasUnavailable"
            assert cond(d, "Available")["message"] == "Deployment does not have minimum availability."
            assert d["status"]["unavailableReplicas"] == 2
            clock.advance(20)
            await asyncio.sleep(0.2)
            assert cond(await k.get("nginx"), "Progressing")["reason"] != "ProgressDeadlineExceeded"
            clock.advance(12)

            async def timed_out():
                d = await k.get("nginx")
                return cond(d, "Progressing")["reason"] == "ProgressDeadlineExceeded" and d
            d = await k.until(timed_out, message="ProgressDeadlineExceeded")
            c = cond(d, "Progressing")
            assert c["status"] == "False"
            assert c["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.'
    run(main())


def test_hash_collision_bumps_collision_count(tmp_path):
    async def main():
        async with Cluster(tmp_path) as k:
            await k.c.create(D, NS, dep(replicas=1, paused=True))
            d = await k.get("nginx")
            h = compute_hash(d["spec"]["template"], None)
            # Someone else's ReplicaSet already has the name the template hashes to.
            await k.c.create(RS, NS, rs_body(f"nginx-{h}", 0, {"squatter": "yes"}))
            await k.c.patch(D, NS, "nginx", {"spec": {"paused": False}}, STRATEGIC)
            d = await k.until(lambda: k.complete("nginx"), message="rollout despite the collision")
            assert d["status"]["collisionCount"] == 1
            [rs] = await k.rss("nginx")
            assert rs["metadata"]["name"] == f"nginx-{compute_hash(d['spec']['template'], 1)}" != f"nginx-{h}"
    run(main())


def test_undo_patch_and_server_side_rollback_annotation(tmp_path):
    async def main():
        async with Cluster(tmp_path) as k:
            body = dep(replicas=2)
            body["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v1"}
            await k.c.create(D, NS, body)
            await k.until(lambda: k.complete("nginx"), message="v1")
            await k.c.patch(D, NS, "nginx", {"metadata": {"annotations": {"kubernetes.io/change-cause": "v2"}},
                                             "spec": {"template": {"spec": {"containers": [
                                                 {"name": "c", "image": "nginx:1.25"}]}}}}, STRATEGIC)
            await k.until(lambda: k.complete("nginx"), message="v2")
            v1, v2 = await k.rss("nginx")
            assert v1["metadata"]["annotations"]["kubernetes.io/change-cause"] == "v1"
            assert v2["metadata"]["annotations"]["kubernetes.io/change-cause"] == "v2"
            # kubectl rollout undo: a JSON patch of the old template and annotations.
            tpl = util.copy(v1["spec"]["template"])
            del tpl["metadata"]["labels"]["pod-template-hash"]
            d = await k.get("nginx")
            anns = {k_: v for k_, v in d["metadata"]["annotations"].items() if k_ in util.ANNOTATIONS_TO_SKIP}
            anns.update({k_: v for k_, v in v1["metadata"]["annotations"].items()
                         if k_ not in util.ANNOTATIONS_TO_SKIP})
            await k.c.patch(D, NS, "nginx", [{"op": "replace", "path": "/spec/template", "value": tpl},
                                             {"op": "replace", "path": "/metadata/annotations", "value": anns}],
                            JSON_PATCH)
            d = await k.until(lambda: k.complete("nginx"), message="undone")
            rss = {r["metadata"]["name"]: r for r in await k.rss("nginx")}
            assert len(rss) == 2, "the old ReplicaSet is reused, not recreated"
            back = rss[v1["metadata"]["name"]]
            assert back["spec"]["replicas"] == 2
            assert back["metadata"]["annotations"][util.REVISION] == "3"
            assert back["metadata"]["annotations"][util.REVISION_HISTORY] == "1"
            assert d["metadata"]["annotations"][util.REVISION] == "3"
            # The deprecated server-side rollback: back to revision 2 (the previous one).
            await k.c.patch(D, NS, "nginx", {"metadata": {"annotations": {util.ROLLBACK_TO: "0"}}}, MERGE)

            async def rolled_back():
                d = await k.get("nginx")
                return (util.ROLLBACK_TO not in d["metadata"]["annotations"]
                        and d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25" and d)
            d = await k.until(rolled_back, message="rollback annotation honoured")
            assert d["metadata"]["annotations"]["kubernetes.io/change-cause"] == "v2"
            await k.until(lambda: k.complete("nginx"), message="rolled back")
            msgs = [(e["reason"], e["message"]) for e in await k.events(name="nginx")]
            assert ("DeploymentRollback", 'Rolled back deployment "nginx" to revision 2') in msgs
    run(main())


def test_replica_set_release_and_deployment_deletion_reports_status(tmp_path):
    async def main():
        async with Cluster(tmp_path) as k:
            await k.c.create(D, NS, dep(replicas=1))
            await k.until(lambda: k.complete("nginx"), message="created")
            [rs] = await k.rss("nginx")
            # Labels that no longer match the selector: the Deployment lets the ReplicaSet go
            # and makes a new one.
            await k.c.patch(RS, NS, rs["metadata"]["name"], {"metadata": {"labels": {"app": "other"}}}, MERGE)

            async def released():
                r = await k.get(rs["metadata"]["name"], RS)
                return not any(o.get("controller") for o in r["metadata"].get("ownerReferences") or [])
            await k.until(released, message="ReplicaSet released")
            await k.until(lambda: _count(k.rss("nginx"), 1), message="replacement ReplicaSet")
    run(main())


async def _progress_reasons(k, name: str, out: list[str]):
    async for ev in k.c.watch(D, NS, field_selector=f"metadata.name={name}"):
        c = cond(ev["object"], "Progressing")
        if c is not None and (not out or out[-1] != c["reason"]):
            out.append(c["reason"])


def test_progressing_reasons_for_a_new_and_an_adopted_replica_set(tmp_path):
    async def main():
        async with Cluster(tmp_path) as k:
            seen: list[str] = []
            watcher = asyncio.create_task(_progress_reasons(k, "nginx", seen))
            await asyncio.sleep(0.05)
            await k.c.create(D, NS, dep())
            await k.until(lambda: k.complete("nginx"), message="rollout")
            await k.until(lambda: seen and seen[-1] == "NewReplicaSetAvailable", message="NewReplicaSetAvailable")
            watcher.cancel()
            assert seen[0] == "NewReplicaSetCreated" and set(seen) <= {
                "NewReplicaSetCreated", "ReplicaSetUpdated", "NewReplicaSetAvailable"}

            # A ReplicaSet with the Deployment's template already exists: it is adopted as the
            # new one, not replaced.
            labels = {"app": "adopted"}
            body = rs_body("adopted-by-hand", 2, labels, image="nginx:1.14")
            await k.c.create(RS, NS, body)
            await k.until(lambda: _running(k, "app=adopted", 2), message="hand-made ReplicaSet running")
            seen2: list[str] = []
            watcher = asyncio.create_task(_progress_reasons(k, "adopted", seen2))
            await asyncio.sleep(0.05)
            d = dep("adopted", replicas=2, labels=labels, image="nginx:1.14")
            d["spec"]["template"]["spec"]["containers"][0]["name"] = "c"
            await k.c.create(D, NS, d)
            await k.until(lambda: k.complete("adopted"), message="adopted rollout")
            await k.until(lambda: seen2 and seen2[-1] == "NewReplicaSetAvailable", message="available")
            watcher.cancel()
            assert seen2[0] == "FoundNewReplicaSet"
            [rs] = await k.rss("adopted")
            assert rs["metadata"]["name"] == "adopted-by-hand"
            assert rs["metadata"]["annotations"][util.REVISION] == "1"
            c = cond(await k.get("adopted"), "Progressing")
            assert c["message"] == 'ReplicaSet "adopted-by-hand" has successfully progressed.'
    run(main())


def test_replica_failure_is_copied_from_the_replica_set(tmp_path):
    """The ReplicaSet controller is not running here: the test plays its part."""
    async def main():
        async with Cluster(tmp_path, controllers=[DeploymentController]) as k:
            await k.c.create(D, NS, dep(replicas=2))
            [rs] = await k.until(lambda: k.rss("nginx"), message="ReplicaSet created")
            failure = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                       "message": 'pods "nginx-x" is forbidden: exceeded quota',
                       "lastTransitionTime": "2024-01-01T00:00:00Z"}
            rs["status"] = {"replicas": 0, "observedGeneration": rs["metadata"]["generation"],
                            "conditions": [failure]}
            await k.c.update_status(RS, NS, rs)

            async def copied():
                return cond(await k.get("nginx"), "ReplicaFailure")
            c = await k.until(copied, message="ReplicaFailure on the Deployment")
            assert (c["status"], c["reason"], c["message"]) == ("True", "FailedCreate", failure["message"])
            assert c["lastUpdateTime"] == c["lastTransitionTime"] == "2024-01-01T00:00:00Z"
            rs = await k.get(rs["metadata"]["name"], RS)
            rs["status"]["conditions"] = []
            await k.c.update_status(RS, NS, rs)

            async def cleared():
                return cond(await k.get("nginx"), "ReplicaFailure") is None
            await k.until(cleared, message="ReplicaFailure removed")
    run(main())
