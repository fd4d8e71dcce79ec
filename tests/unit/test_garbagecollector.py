"""Garbage collector, in process: background, foreground and orphan propagation across kinds,
dangling and partial ownership, dependency cycles, and the Garbage collector conformance
behaviours with ReplicaSets and Deployments standing in for ReplicationControllers."""

from __future__ import annotations

import asyncio

from pocketkube.client.informer import Informer
from pocketkube.controllers.base import ControllerManager
from pocketkube.controllers.garbagecollector import GarbageCollector
from pocketkube.controllers.replicaset import ReplicaSetController
from tests.unit.harness import ControllerEnv, run, until

RS = "replicasets.apps"
DEPLOY = "deployments.apps"


def rs_manifest(name, replicas, labels=None, owner=None):
    labels = labels or {"app": name}
    m = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
         "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                  "template": {"metadata": {"labels": dict(labels)},
                               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    if owner is not None:
        m["metadata"]["ownerReferences"] = [ref(owner, controller=True)]
    return m


def ref(obj, controller=False, block=True):
    r = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
         "uid": obj["metadata"]["uid"], "blockOwnerDeletion": block}
    if controller:
        r["controller"] = True
    return r


class Env(ControllerEnv):
    def __init__(self, tmp_path, nodes=0):
        super().__init__(tmp_path, [ReplicaSetController, GarbageCollector], nodes=nodes)

    async def __aenter__(self):
        await super().__aenter__()
        self.gc = self.controller(GarbageCollector)
        return self

    async def exists(self, res, name, ns="default"):
        return await self.get_or_none(res, ns, name)

    async def gone(self, res, name, ns="default", timeout=10.0):
        async def check():
            return await self.exists(res, name, ns) is None
        await until(check, timeout, f"{res} {name} gone")

    async def pods(self, selector):
        return (await self.c.list("pods", "default", label_selector=selector))["items"]

    async def rs_with_pods(self, name, n, owner=None, labels=None):
        rs = await self.c.create(RS, "default", rs_manifest(name, n, labels, owner))
        sel = ",".join(f"{k}={v}" for k, v in (labels or {"app": name}).items())

        async def all_there():
            return len(await self.pods(sel)) == n
        await until(all_there, message=f"{n} pods of {name}")
        return rs

    async def deployment(self, name):
        return await self.c.create(DEPLOY, "default", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"deploy": name}},
                     "template": {"metadata": {"labels": {"deploy": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})

    async def configmap(self, name, owners=()):
        meta = {"name": name}
        if owners:
            meta["ownerReferences"] = list(owners)
        return await self.c.create("configmaps", "default", {"apiVersion": "v1", "kind": "ConfigMap",
                                                               "metadata": meta})


def test_background_deletes_rs_and_pods_of_a_deployment(tmp_path):
    """Conformance: 'should delete RS created by deployment when not orphaning' (the Deployment
    owns the ReplicaSet here by hand, as its controller would)."""
    async def main():
        async with Env(tmp_path) as env:
            d = await env.deployment("web")
            await env.rs_with_pods("web-abc", 3, owner=d, labels={"deploy": "web"})
            await env.c.delete(DEPLOY, "default", "web", propagation_policy="Background")
            await env.gone(RS, "web-abc")

            async def no_pods():
                return not await env.pods("deploy=web")
            await until(no_pods, message="pods deleted")
    run(main())


def test_orphan_keeps_rs_and_pods_without_the_reference(tmp_path):
    """Conformance: 'should orphan RS created by deployment when deleteOptions.PropagationPolicy is
    Orphan' and 'should orphan pods created by rc if delete options say so'."""
    async def main():
        async with Env(tmp_path) as env:
            d = await env.deployment("keep")
            await env.rs_with_pods("keep-abc", 2, owner=d, labels={"deploy": "keep"})
            await env.c.delete(DEPLOY, "default", "keep", propagation_policy="Orphan")
            await env.gone(DEPLOY, "keep")
            rs = await env.exists(RS, "keep-abc")
            assert rs is not None and not rs["metadata"].get("ownerReferences")
            assert rs["metadata"].get("deletionTimestamp") is None

            # And one level down: the ReplicaSet deleted with Orphan leaves its pods, unowned.
            await env.c.delete(RS, "default", "keep-abc", propagation_policy="Orphan")
            await env.gone(RS, "keep-abc")
            pods = await env.pods("deploy=keep")
            assert len(pods) == 2
            assert all(not p["metadata"].get("ownerReferences") and not p["metadata"].get("deletionTimestamp")
                       for p in pods)
    run(main())


def test_foreground_keeps_the_owner_until_its_pods_are_gone(tmp_path):
    """Conformance: 'should keep the rc around until all its pods are deleted if the deleteOptions
    says so': pods on (simulated) nodes shut down gracefully before the owner goes."""
    async def main():
        async with Env(tmp_path, nodes=2) as env:
            await env.rs_with_pods("fg", 12)
            seen: list[tuple[str, str]] = []
            watcher = Informer(env.c, "pods")
            watcher.add_handler(lambda t, old, new: seen.append((t, "pod")) if t == "DELETED" else None)
            rs_watch = Informer(env.c, RS)
            rs_watch.add_handler(lambda t, old, new: seen.append((t, "rs")) if t == "DELETED" else None)
            for inf in (watcher, rs_watch):
                inf.start()
                await inf.wait_synced()
            try:
                await env.c.delete(RS, "default", "fg", propagation_policy="Foreground")
                rs = await env.c.get(RS, "default", "fg")
                assert rs["metadata"]["deletionTimestamp"] and "foregroundDeletion" in rs["metadata"]["finalizers"]
                await env.gone(RS, "fg")
                assert not await env.pods("app=fg")
                await until(lambda: ("DELETED", "rs") in seen, message="rs DELETED event")
                assert seen.index(("DELETED", "rs")) == len(seen) - 1
                assert seen.count(("DELETED", "pod")) == 12
            finally:
                await watcher.stop()
                await rs_watch.stop()
    run(main())


def test_foreground_spares_dependents_with_another_valid_owner(tmp_path):
    """Conformance: 'should not delete dependents that have both valid owner and owner that's
    waiting for dependents to be deleted'."""
    async def main():
        async with Env(tmp_path) as env:
            rs1 = await env.rs_with_pods("rs1", 10)
            rs2 = await env.c.create(RS, "default", rs_manifest("rs2", 0, {"app": "other"}))
            pods = await env.pods("app=rs1")
            shared = sorted(p["metadata"]["name"] for p in pods)[:5]
            for name in shared:
                p = await env.c.get("pods", "default", name)
                p["metadata"]["ownerReferences"].append(ref(rs2))
                await env.c.update("pods", "default", p)
            await env.c.delete(RS, "default", "rs1", propagation_policy="Foreground")
            await env.gone(RS, "rs1")
            left = await env.pods("app=rs1")
            assert sorted(p["metadata"]["name"] for p in left) == shared
            for p in left:
                assert not p["metadata"].get("deletionTimestamp")
                assert [r["uid"] for r in p["metadata"]["ownerReferences"]] == [rs2["metadata"]["uid"]]
            assert rs1["metadata"]["uid"] not in str(left)
    run(main())


def test_dependency_cycle_does_not_block_deletion(tmp_path):
    """Conformance: 'should not be blocked by dependency circle', in the background and in the
    foreground."""
    async def main():
        async with Env(tmp_path) as env:
            for policy in ("Background", "Foreground"):
                names = [f"{policy.lower()}-{i}" for i in (1, 2, 3)]
                pods = []
                for n in names:
                    pods.append(await env.c.create("pods", "default", {
                        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": n, "labels": {"cycle": policy}},
                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}))
                # pod1 owned by pod3, pod2 by pod1, pod3 by pod2.
                for i, owner in ((0, 2), (1, 0), (2, 1)):
                    await env.c.patch("pods", "default", names[i], {"metadata": {
                        "ownerReferences": [ref(pods[owner])]}})
                await env.c.delete("pods", "default", names[0], propagation_policy=policy)

                async def all_gone():
                    return not await env.pods(f"cycle={policy}")
                await until(all_gone, message=f"{policy} cycle collected")
    run(main())


def test_dangling_and_partial_ownership(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            owner = await env.configmap("owner")
            other = await env.configmap("other")
            # A reference whose uid no object has (the name exists, with another uid).
            fake = dict(ref(owner), uid="00000000-0000-0000-0000-000000000000")
            await env.configmap("dangling", [fake])
            # A reference to a name that never existed.
            await env.configmap("never", [{"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost",
                                            "uid": "11111111-1111-1111-1111-111111111111"}])
            await env.gone("configmaps", "dangling")
            await env.gone("configmaps", "never")

            # Two owners: one gone leaves the dependent, without the dead reference.
            await env.configmap("shared", [ref(owner), ref(other)])
            await env.configmap("single", [ref(owner)])
            await env.c.delete("configmaps", "default", "owner")
            await env.gone("configmaps", "single")

            async def trimmed():
                cm = await env.exists("configmaps", "shared")
                return cm is not None and [r["name"] for r in cm["metadata"]["ownerReferences"]] == ["other"]
            await until(trimmed, message="dead reference removed")
            await env.c.delete("configmaps", "default", "other")
            await env.gone("configmaps", "shared")

            # Across kinds and scopes: a Secret owned by a cluster-scoped object (a Node).
            node = await env.c.create("nodes", None, {"apiVersion": "v1", "kind": "Node",
                                                       "metadata": {"name": "n-gc"}})
            await env.c.create("secrets", "default", {"apiVersion": "v1", "kind": "Secret",
                                                      "metadata": {"name": "per-node", "ownerReferences": [ref(node)]}})
            await asyncio.sleep(0.1)
            assert await env.exists("secrets", "per-node") is not None
            await env.c.delete("nodes", None, "n-gc")
            await env.gone("secrets", "per-node")
    run(main())


def test_owner_deleted_while_collector_was_away(tmp_path):
    """Dependents whose owner vanished before the collector started are found and deleted."""
    async def main():
        async with Env(tmp_path) as env:
            owner = await env.configmap("before")
            await env.mgr.stop()
            env.stoppers.remove(env.mgr)
            await env.configmap("child", [ref(owner)])
            await env.c.delete("configmaps", "default", "before")
            mgr = ControllerManager(env.c, env.clock, [GarbageCollector])
            await mgr.start()
            env.stoppers.append(mgr)
            await env.gone("configmaps", "child")
    run(main())


def test_an_owner_reference_removed_by_an_update_no_longer_counts(tmp_path):
    """Updates that keep an object's owners leave the collector's view as it was; an update that
    drops its owner is seen, so deleting that owner spares the object (a sentinel still owned
    shows when the collector has acted on the deletion)."""
    async def main():
        async with Env(tmp_path) as env:
            owner = await env.configmap("owner")
            await env.configmap("sentinel", owners=[ref(owner)])
            dep = await env.configmap("dependent", owners=[ref(owner)])
            for data in ({"k": "1"}, {"k": "2"}):   # changes that keep the same owners
                dep = await env.c.update("configmaps", "default", dict(dep, data=data))
            del dep["metadata"]["ownerReferences"]
            await env.c.update("configmaps", "default", dep)

            def released():
                node = env.gc.graph.get(dep["metadata"]["uid"])
                return node is not None and node.owners == []
            await until(released, message="the collector sees no owner left")
            await env.c.delete("configmaps", "default", "owner")
            await env.gone("configmaps", "sentinel")
            assert await env.exists("configmaps", "dependent") is not None
    run(main())
