"""StatefulSet controller, in process: identity and claims, OrderedReady and Parallel, scale-down
order, rolling updates with partition and maxUnavailable, OnDelete, rollback to an earlier
revision, history truncation, claim retention, minReadySeconds on a FakeClock, ordinals.start,
failed pods, adoption and release.

Pods here are not scheduled: a small "kubelet" in the test writes their status, so every test
decides which pod is Running and Ready and when, and ordering can be checked step by step."""

from __future__ import annotations

import asyncio
import contextlib

from pocketkube.api.errors import ApiError
from pocketkube.client import STRATEGIC
from pocketkube.controllers.garbagecollector import GarbageCollector
from pocketkube.controllers.history import CONTROLLER_REVISIONS, HASH_LABEL
from pocketkube.controllers.statefulset import StatefulSetController, utils
from tests.unit.harness import ControllerEnv, run

STS = "statefulsets.apps"
PVC = "persistentvolumeclaims"


def sts_manifest(name="web", replicas=3, image="nginx:1.14", claims=False, **spec):
    labels = {"app": name}
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}
    if claims:
        body["spec"]["volumeClaimTemplates"] = [{
            "metadata": {"name": "www", "labels": {"tier": "data"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        body["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
            {"name": "www", "mountPath": "/usr/share/nginx/html"}]
    return body


class Env(ControllerEnv):
    """Controller env with a test "kubelet": pods become Running and Ready unless held."""

    def __init__(self, tmp_path, controllers=(StatefulSetController,), auto_ready=True):
        super().__init__(tmp_path, list(controllers))
        self.auto_ready = auto_ready
        self.hold: set[str] = set()
        self.created_order: list[str] = []
        self.violations: list[str] = []

    async def __aenter__(self):
        await super().__aenter__()
        self.ctl = self.controller(StatefulSetController)
        self._kubelet = asyncio.get_running_loop().create_task(self._watch())
        return self

    async def __aexit__(self, *exc):
        self._kubelet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._kubelet
        await super().__aexit__(*exc)

    async def _watch(self):
        state: dict[str, dict] = {}
        async for ev in self.c.watch("pods", "default"):
            obj = ev["object"]
            name = obj["metadata"]["name"]
            if ev["type"] == "DELETED":
                state.pop(name, None)
                continue
            if ev["type"] == "ADDED":
                self.created_order.append(name)
                self._check_order(obj, state)
            state[name] = obj
            if self.auto_ready and (obj.get("status") or {}).get("phase", "Pending") == "Pending" \
                    and name not in self.hold \
                    and not obj["metadata"].get("deletionTimestamp"):
                asyncio.get_running_loop().create_task(self.set_ready(name))

    def _check_order(self, pod, state):
        """OrderedReady: when a pod appears, every lower ordinal of its set is Running and Ready."""
        parent, ordinal = utils.parent_and_ordinal(pod["metadata"]["name"])
        sts = self.ctl.sets.get(f"default/{parent}")
        if sts is None or utils.allows_burst(sts):
            return
        for o in range(utils.start_ordinal(sts), ordinal):
            prev = state.get(f"{parent}-{o}")
            if prev is None or not utils.is_running_and_ready(prev) or prev["metadata"].get("deletionTimestamp"):
                self.violations.append(f"{pod['metadata']['name']} created before {parent}-{o} was ready")

    async def set_ready(self, name, ready=True, phase="Running"):
        pod = await self.get_or_none("pods", "default", name)
        if pod is None:
            return
        pod["status"] = {**(pod.get("status") or {}), "phase": phase, "conditions": [
            {"type": "Ready", "status": "True" if ready else "False",
             "lastTransitionTime": self.clock.rfc3339()}]}
        try:
            await self.c.update_status("pods", "default", pod)
        except ApiError as e:
            if e.code not in (404, 409):   # gone, or changed meanwhile: the next event retries
                raise

    async def pods(self, prefix="web"):
        items = (await self.c.list("pods", "default"))["items"]
        return sorted((p for p in items if utils.parent_and_ordinal(p["metadata"]["name"])[0] == prefix),
                      key=utils.ordinal_of)

    async def names(self, prefix="web", active=True):
        return [p["metadata"]["name"] for p in await self.pods(prefix)
                if not (active and p["metadata"].get("deletionTimestamp"))]

    async def sts(self, name="web"):
        return await self.c.get(STS, "default", name)

    async def status(self, name="web"):
        return (await self.sts(name)).get("status") or {}

    async def wait_status(self, name="web", timeout=10.0, **want):
        async def ok():
            st = await self.status(name)
            return all(st.get(k, 0) == v for k, v in want.items()) and st
        return await self.until(ok, timeout, f"{name} status {want}")

    async def events(self, reason=None):
        await self.ctl.recorder.flush()
        items = (await self.c.list("events", "default"))["items"]
        return [e for e in items if reason is None or e["reason"] == reason]

    async def revisions(self, name="web"):
        items = (await self.c.list(CONTROLLER_REVISIONS, "default"))["items"]
        return sorted((r for r in items if r["metadata"]["name"].startswith(name + "-")),
                      key=lambda r: r["revision"])


def set_image(image):
    return {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}


# ---- identity, claims and ordered creation ------------------------------------------------------

def test_pods_have_identity_claims_and_are_created_in_order(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            sts = await env.c.create(STS, "default", sts_manifest(claims=True))
            st = await env.wait_status(replicas=3, readyReplicas=3, availableReplicas=3,
                                       currentReplicas=3, updatedReplicas=3, observedGeneration=1)
            assert env.created_order == ["web-0", "web-1", "web-2"] and not env.violations
            assert st["currentRevision"] == st["updateRevision"] and st["collisionCount"] == 0
            revs = await env.revisions()
            assert [r["metadata"]["name"] for r in revs] == [st["currentRevision"]]
            assert revs[0]["revision"] == 1
            assert revs[0]["metadata"]["labels"] == {"app": "web", HASH_LABEL: st["currentRevision"][4:]}
            assert revs[0]["data"]["spec"]["template"]["$patch"] == "replace"
            for i, pod in enumerate(await env.pods()):
                meta, spec = pod["metadata"], pod["spec"]
                assert meta["name"] == f"web-{i}"
                assert meta["labels"] == {"app": "web", "statefulset.kubernetes.io/pod-name": f"web-{i}",
                                          "apps.kubernetes.io/pod-index": str(i),
                                          "controller-revision-hash": st["currentRevision"]}
                assert spec["hostname"] == f"web-{i}" and spec["subdomain"] == "web"
                assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                                    "uid": sts["metadata"]["uid"], "controller": True,
                                                    "blockOwnerDeletion": True}]
                vol = next(v for v in spec["volumes"] if v["name"] == "www")
                assert vol["persistentVolumeClaim"] == {"claimName": f"www-web-{i}"}
                claim = await env.c.get(PVC, "default", f"www-web-{i}")
                assert claim["metadata"]["labels"] == {"tier": "data", "app": "web"}
                assert not claim["metadata"].get("ownerReferences")   # Retain: no owner
                assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
            msgs = [e["message"] for e in await env.events("SuccessfulCreate")]
            assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in msgs
            assert "create Pod web-0 in StatefulSet web successful" in msgs
            ev = next(e for e in await env.events("SuccessfulCreate"))
            assert ev["involvedObject"]["kind"] == "StatefulSet" and ev["type"] == "Normal"
    run(main())


def test_ordered_ready_waits_for_each_pod_and_halts_on_an_unhealthy_one(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            env.hold.add("web-1")
            await env.c.create(STS, "default", sts_manifest(replicas=3))
            await env.until(lambda: env.names(), message="web-0")
            await env.until(lambda: "web-1" in env.created_order, message="web-1 created")
            await asyncio.sleep(0.3)
            assert await env.names() == ["web-0", "web-1"]   # web-2 waits for web-1
            await env.set_ready("web-1")
            await env.wait_status(readyReplicas=3)
            assert not env.violations
            # An unhealthy pod halts scaling up and down.
            await env.set_ready("web-0", ready=False)
            await env.c.patch(STS, "default", "web", {"spec": {"replicas": 5}}, STRATEGIC)
            await asyncio.sleep(0.3)
            assert await env.names() == ["web-0", "web-1", "web-2"]
            await env.c.patch(STS, "default", "web", {"spec": {"replicas": 1}}, STRATEGIC)
            await asyncio.sleep(0.3)
            assert await env.names() == ["web-0", "web-1", "web-2"]
            await env.set_ready("web-0")
            await env.wait_status(replicas=1, readyReplicas=1)
            assert await env.names() == ["web-0"]
            deleted = [e["message"] for e in await env.events("SuccessfulDelete")]
            assert sorted(deleted) == ["delete Pod web-1 in StatefulSet web successful",
                                       "delete Pod web-2 in StatefulSet web successful"]
    run(main())


def test_scale_down_highest_first_waiting_for_each_to_terminate(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            m = sts_manifest(replicas=3)
            m["spec"]["template"]["metadata"]["finalizers"] = ["test.pocketkube.dev/hold"]
            await env.c.create(STS, "default", m)
            await env.wait_status(readyReplicas=3)
            await env.c.patch(STS, "default", "web", {"spec": {"replicas": 0}}, STRATEGIC)

            async def terminating():
                return [p["metadata"]["name"] for p in await env.pods() if p["metadata"].get("deletionTimestamp")]
            assert await env.until(terminating, message="first deletion") == ["web-2"]
            await asyncio.sleep(0.3)
            assert await terminating() == ["web-2"]   # web-1 waits until web-2 is gone
            for name in ("web-2", "web-1", "web-0"):
                assert await env.until(terminating, message=f"{name} terminating") == [name]
                await env.c.patch("pods", "default", name, {"metadata": {"finalizers": None}}, STRATEGIC)

                async def gone(name=name):
                    return await env.get_or_none("pods", "default", name) is None
                await env.until(gone, message=f"{name} gone")
            await env.wait_status(replicas=0, readyReplicas=0)
    run(main())


def test_parallel_creates_all_at_once_and_deleted_pod_comes_back_with_its_claim(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            env.hold.update({"web-0", "web-1", "web-2"})
            await env.c.create(STS, "default", sts_manifest(replicas=3, claims=True,
                                                            podManagementPolicy="Parallel"))
            await env.until(lambda: _eq(env.names(), ["web-0", "web-1", "web-2"]), message="all three")
            for n in ("web-0", "web-1", "web-2"):
                await env.set_ready(n)
            await env.wait_status(readyReplicas=3)
            old = await env.c.get("pods", "default", "web-1")
            await env.c.delete("pods", "default", "web-1")

            async def back():
                p = await env.get_or_none("pods", "default", "web-1")
                return p is not None and p["metadata"]["uid"] != old["metadata"]["uid"] and p
            new = await env.until(back, message="web-1 back")
            assert next(v for v in new["spec"]["volumes"] if v["name"] == "www")["persistentVolumeClaim"] == \
                {"claimName": "www-web-1"}
            claims = [c["metadata"]["name"] for c in (await env.c.list(PVC, "default"))["items"]]
            assert sorted(claims) == ["www-web-0", "www-web-1", "www-web-2"]
            # Parallel scale-down removes every condemned pod at once, claims stay (Retain).
            await env.c.patch(STS, "default", "web", {"spec": {"replicas": 0}}, STRATEGIC)
            await env.until(lambda: _eq(env.names(), []), message="all gone")
            assert len((await env.c.list(PVC, "default"))["items"]) == 3
    run(main())


async def _eq(coro, want):
    return (await coro) == want


def test_ordinals_start_and_failed_pods_are_recreated(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(STS, "default", sts_manifest(replicas=2, ordinals={"start": 5}))
            await env.wait_status(readyReplicas=2)
            assert await env.names() == ["web-5", "web-6"]
            first = await env.c.get("pods", "default", "web-6")
            await env.set_ready("web-6", ready=False, phase="Failed")

            async def replaced():
                p = await env.get_or_none("pods", "default", "web-6")
                return p is not None and p["metadata"]["uid"] != first["metadata"]["uid"] and \
                    utils.is_running_and_ready(p)
            await env.until(replaced, message="failed web-6 replaced")
            assert "delete Pod web-6 in StatefulSet web successful" in \
                [e["message"] for e in await env.events("SuccessfulDelete")]
    run(main())


# ---- updates ----------------------------------------------------------------------------------

def test_rolling_update_partition_and_rollback(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(STS, "default", sts_manifest(replicas=3))
            st1 = await env.wait_status(readyReplicas=3, updatedReplicas=3)
            rev1 = st1["currentRevision"]
            # Canary: only ordinals >= partition move to the new template.
            await env.c.patch(STS, "default", "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}},
                              STRATEGIC)
            await env.c.patch(STS, "default", "web", set_image("nginx:1.15"), STRATEGIC)

            async def images():
                return {p["metadata"]["name"]: (p["spec"]["containers"][0]["image"], utils.pod_revision(p))
                        for p in await env.pods() if not p["metadata"].get("deletionTimestamp")
                        and utils.is_running_and_ready(p)}
            st = await env.wait_status(updatedReplicas=1, readyReplicas=3, currentReplicas=2)
            rev2 = st["updateRevision"]
            assert rev2 != rev1 and st["currentRevision"] == rev1
            imgs = await images()
            assert imgs["web-2"] == ("nginx:1.15", rev2)
            assert imgs["web-0"] == ("nginx:1.14", rev1) and imgs["web-1"] == ("nginx:1.14", rev1)
            # A pod below the partition that is deleted comes back at the current revision.
            old0 = await env.c.get("pods", "default", "web-0")
            await env.c.delete("pods", "default", "web-0")

            async def web0_back():
                p = await env.get_or_none("pods", "default", "web-0")
                return p and p["metadata"]["uid"] != old0["metadata"]["uid"] and utils.is_running_and_ready(p) and p
            p0 = await env.until(web0_back, message="web-0 back")
            assert utils.pod_revision(p0) == rev1 and p0["spec"]["containers"][0]["image"] == "nginx:1.14"
            # Phased roll-out: partition 0 finishes it, highest ordinal first.
            await env.c.patch(STS, "default", "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}},
                              STRATEGIC)
            st = await env.wait_status(updatedReplicas=3, readyReplicas=3, currentReplicas=3)
            assert st["currentRevision"] == st["updateRevision"] == rev2
            # Rollback: the old template again renumbers revision 1 instead of making a new one.
            await env.c.patch(STS, "default", "web", set_image("nginx:1.14"), STRATEGIC)

            async def rolled_back():
                st = await env.status()
                return st.get("currentRevision") == rev1 and st.get("updatedReplicas") == 3 and st
            await env.until(rolled_back, message="rolled back")
            revs = await env.revisions()
            assert [(r["metadata"]["name"], r["revision"]) for r in revs] == [(rev2, 2), (rev1, 3)]
            assert all(i[0] == "nginx:1.14" for i in (await images()).values())
    run(main())


def test_max_unavailable_updates_two_at_a_time(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(STS, "default", sts_manifest(
                replicas=4, podManagementPolicy="Parallel",
                updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}))
            await env.wait_status(readyReplicas=4)
            env.hold.update({"web-3", "web-2", "web-1", "web-0"})   # replacements stay unready
            await env.c.patch(STS, "default", "web", set_image("nginx:2"), STRATEGIC)

            async def replaced():
                return [p["metadata"]["name"] for p in await env.pods() if p["spec"]["containers"][0]["image"] == "nginx:2"]
            assert await env.until(lambda: _len(replaced(), 2), message="two replaced") == ["web-2", "web-3"]
            await asyncio.sleep(0.3)
            assert await replaced() == ["web-2", "web-3"]   # both unavailable: no third deletion
            await env.set_ready("web-3")
            await env.until(lambda: _len(replaced(), 3), message="third")
            for n in ("web-2", "web-1", "web-0"):
                await env.set_ready(n)
            await env.until(lambda: _len(replaced(), 4), message="all")
            for n in ("web-1", "web-0"):
                await env.set_ready(n)
            st = await env.wait_status(updatedReplicas=4, readyReplicas=4)
            assert st["currentRevision"] == st["updateRevision"]
    run(main())


async def _labelled(env, name):
    p = await env.c.get("pods", "default", name)
    return "statefulset.kubernetes.io/pod-name" in p["metadata"].get("labels", {}) and p


async def _len(coro, n):
    v = await coro
    return len(v) >= n and v


def test_on_delete_updates_only_deleted_pods_and_history_is_truncated(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(STS, "default", sts_manifest(replicas=2, revisionHistoryLimit=1,
                                                            updateStrategy={"type": "OnDelete"}))
            st1 = await env.wait_status(readyReplicas=2)
            for img in ("nginx:2", "nginx:3", "nginx:4"):
                await env.c.patch(STS, "default", "web", set_image(img), STRATEGIC)

                async def seen(img=img):
                    st = await env.status()
                    revs = {r["metadata"]["name"]: r for r in await env.revisions()}
                    upd = revs.get(st.get("updateRevision"))
                    return upd is not None and upd["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == img
                await env.until(seen, message=f"revision for {img}")
            await asyncio.sleep(0.2)
            st = await env.status()
            assert st["currentRevision"] == st1["currentRevision"] and st["updatedReplicas"] == 0
            assert all(p["spec"]["containers"][0]["image"] == "nginx:1.14" for p in await env.pods())
            # Live: current (pods' revision) and update; one more kept; the oldest extra deleted.
            names = [r["metadata"]["name"] for r in await env.revisions()]
            assert st["currentRevision"] in names and st["updateRevision"] in names and len(names) == 3
            await env.c.delete("pods", "default", "web-1")

            async def updated():
                p = await env.get_or_none("pods", "default", "web-1")
                return p and p["spec"]["containers"][0]["image"] == "nginx:4" and utils.is_running_and_ready(p)
            await env.until(updated, message="web-1 at nginx:4")
            await env.wait_status(updatedReplicas=1, currentReplicas=1, readyReplicas=2)
    run(main())


# ---- claims retention, minReadySeconds, adoption --------------------------------------------

def test_claim_retention_policies_set_owner_references(tmp_path):
    async def main():
        async with Env(tmp_path, controllers=(StatefulSetController, GarbageCollector)) as env:
            sts = await env.c.create(STS, "default", sts_manifest(
                replicas=2, claims=True,
                persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"}))
            await env.wait_status(readyReplicas=2)

            async def claim_refs(name):
                c = await env.get_or_none(PVC, "default", name)
                return c and [(r["kind"], r["name"]) for r in c["metadata"].get("ownerReferences") or ()]
            assert await env.until(lambda: _eq(claim_refs("www-web-1"), [("StatefulSet", "web")]),
                                   message="set owns claims")
            ref = (await env.c.get(PVC, "default", "www-web-0"))["metadata"]["ownerReferences"][0]
            assert ref["uid"] == sts["metadata"]["uid"] and ref["controller"] is True
            # whenScaled=Delete: the scaled-down pod's claim goes with it.
            await env.c.patch(STS, "default", "web", {"spec": {"replicas": 1}}, STRATEGIC)

            async def claim_gone():
                return await env.get_or_none(PVC, "default", "www-web-1") is None
            await env.until(claim_gone, timeout=15, message="www-web-1 deleted")
            assert await env.get_or_none(PVC, "default", "www-web-0") is not None
            # whenDeleted=Delete: deleting the set deletes the remaining claims.
            await env.c.delete(STS, "default", "web", propagation_policy="Background")

            async def all_gone():
                return not (await env.c.list(PVC, "default"))["items"]
            await env.until(all_gone, timeout=15, message="claims deleted with the set")
    run(main())


def test_retain_policy_keeps_claims_when_the_set_is_deleted(tmp_path):
    async def main():
        async with Env(tmp_path, controllers=(StatefulSetController, GarbageCollector)) as env:
            await env.c.create(STS, "default", sts_manifest(replicas=2, claims=True))
            await env.wait_status(readyReplicas=2)
            await env.c.delete(STS, "default", "web", propagation_policy="Background")
            await env.until(lambda: _eq(env.names(), []), timeout=15, message="pods gone")
            assert sorted(c["metadata"]["name"] for c in (await env.c.list(PVC, "default"))["items"]) == \
                ["www-web-0", "www-web-1"]
    run(main())


def test_min_ready_seconds_counts_available_on_the_clock(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(STS, "default", sts_manifest(replicas=2, minReadySeconds=30))
            await env.until(lambda: _eq(env.names(), ["web-0"]), message="web-0")
            await asyncio.sleep(0.3)
            # OrderedReady waits for web-0 to be available, not only ready.
            st = await env.status()
            assert await env.names() == ["web-0"] and st.get("readyReplicas") == 1 and st.get("availableReplicas") == 0
            env.clock.advance(31)
            await env.until(lambda: _eq(env.names(), ["web-0", "web-1"]), message="web-1 after 30s")
            await env.wait_status(readyReplicas=2, availableReplicas=1)
            env.clock.advance(31)
            await env.wait_status(readyReplicas=2, availableReplicas=2)
    run(main())


def test_adopts_orphans_and_releases_pods_that_stop_matching(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            # An orphan pod named like a member, and an orphan revision: both adopted.
            orphan_pod = await env.c.create("pods", "default", {"apiVersion": "v1", "kind": "Pod",
                                                   "metadata": {"name": "web-0", "labels": {"app": "web"}},
                                                   "spec": {"containers": [{"name": "c", "image": "nginx:1.14"}]}})
            await env.set_ready("web-0")
            await env.c.create(CONTROLLER_REVISIONS, "default", {
                "apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": "web-orphan", "labels": {"app": "web"}},
                "data": {"spec": {"template": {"$patch": "replace"}}}, "revision": 1})
            # OnDelete: the adopted pod, which has no revision label, is not replaced by an update.
            sts = await env.c.create(STS, "default", sts_manifest(replicas=2, updateStrategy={"type": "OnDelete"}))
            await env.wait_status(readyReplicas=2, replicas=2)
            p0 = await env.c.get("pods", "default", "web-0")
            assert p0["metadata"]["uid"] == orphan_pod["metadata"]["uid"]
            assert p0["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
            # Identity repaired in place: the pod-name label is added by an update.
            p0 = await env.until(lambda: _labelled(env, "web-0"), message="web-0 relabelled")
            assert p0["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-0"
            orphan = await env.c.get(CONTROLLER_REVISIONS, "default", "web-orphan")
            assert orphan["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
            # A pod whose labels stop matching is released and replaced.
            old1 = await env.c.get("pods", "default", "web-1")
            await env.c.patch("pods", "default", "web-1", {"metadata": {"labels": {"app": "other"}}}, STRATEGIC)

            async def released():
                p = await env.get_or_none("pods", "default", "web-1")
                return p is not None and p["metadata"]["uid"] == old1["metadata"]["uid"] and \
                    not p["metadata"].get("ownerReferences")
            await env.until(released, message="web-1 released")
    run(main())


def test_scaled_up_again_waits_for_the_stale_claim_of_the_scaled_down_pod(tmp_path):
    async def main():
        async with Env(tmp_path, controllers=(StatefulSetController, GarbageCollector)) as env:
            await env.c.create(STS, "default", sts_manifest(
                replicas=2, claims=True,
                persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Delete"}))
            await env.wait_status(readyReplicas=2)
            old_claim = await env.c.get(PVC, "default", "www-web-1")
            # A finalizer keeps the scaled-down pod's claim around (as pvc-protection would).
            await env.c.patch(PVC, "default", "www-web-1", {"metadata": {"finalizers": ["test/hold"]}}, STRATEGIC)
            await env.c.patch(STS, "default", "web", {"spec": {"replicas": 1}}, STRATEGIC)

            async def claim_deleting():
                c = await env.get_or_none(PVC, "default", "www-web-1")
                return c is not None and c["metadata"].get("deletionTimestamp") and c
            claim = await env.until(claim_deleting, timeout=15, message="claim of web-1 being deleted")
            assert [r["kind"] for r in claim["metadata"]["ownerReferences"]] == ["Pod"]
            await env.c.patch(STS, "default", "web", {"spec": {"replicas": 2}}, STRATEGIC)
            await asyncio.sleep(0.3)
            assert await env.names() == ["web-0"]   # web-1 waits: its claim still belongs to the old pod
            await env.c.patch(PVC, "default", "www-web-1", {"metadata": {"finalizers": None}}, STRATEGIC)
            await env.wait_status(readyReplicas=2, timeout=15)
            new_claim = await env.c.get(PVC, "default", "www-web-1")
            assert new_claim["metadata"]["uid"] != old_claim["metadata"]["uid"]
            assert not new_claim["metadata"].get("ownerReferences")   # in range: no owner
    run(main())
