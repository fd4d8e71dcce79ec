"""Namespace controller, in process: a deleted namespace is emptied of every kind, reports its
progress in upstream's conditions, waits for finalizers, and is finalized so the API removes it.
Also the ServiceAccount controller's `default` account."""

from __future__ import annotations

import asyncio

from pocketkube.api.errors import ApiError
from pocketkube.controllers.garbagecollector import GarbageCollector
from pocketkube.controllers.namespace import NamespaceController, update_conditions
from pocketkube.controllers.replicaset import ReplicaSetController
from pocketkube.controllers.serviceaccount import ServiceAccountController
from tests.unit.harness import ControllerEnv, run, until

RS = "replicasets.apps"


class Env(ControllerEnv):
    def __init__(self, tmp_path, nodes=0, controllers=(NamespaceController,)):
        super().__init__(tmp_path, controllers, nodes=nodes)

    async def ns(self, name):
        return await self.get_or_none("namespaces", None, name)
    async def create_ns(self, name):
        return await self.c.create("namespaces", None, {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": name}})


def conditions(ns):
    return {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or ()}


def pod(name, **meta):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def test_update_conditions_sets_ok_forms_and_tracks_transitions():
    status = {}
    assert update_conditions(status, {}, "t0")
    got = {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}
    assert got == {
        "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered", "All resources successfully discovered"),
        "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions",
                                                        "All legacy kube types successfully parsed"),
        "NamespaceDeletionContentFailure": ("False", "ContentDeleted",
                                            "All content successfully deleted, may be waiting on finalization"),
        "NamespaceContentRemaining": ("False", "ContentRemoved", "All content successfully removed"),
        "NamespaceFinalizersRemaining": ("False", "ContentHasNoFinalizers",
                                         "All content-preserving finalizers finished"),
    }
    assert not update_conditions(status, {}, "t1")
    remaining = {"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
                 "message": "Some resources are remaining: pods. has 1 resource instances"}
    assert update_conditions(status, {"NamespaceContentRemaining": remaining}, "t2")
    c = next(c for c in status["conditions"] if c["type"] == "NamespaceContentRemaining")
    assert (c["status"], c["lastTransitionTime"]) == ("True", "t2")


def test_deleting_a_namespace_removes_every_kind_then_the_namespace(tmp_path):
    """Conformance: 'should ensure that all pods are removed when a namespace is deleted' and
    '... all services are removed ...', with a ReplicaSet trying to recreate its pods."""
    async def main():
        async with Env(tmp_path, nodes=2,
                       controllers=(NamespaceController, ReplicaSetController, GarbageCollector)) as env:
            await env.create_ns("doomed")
            await env.c.create("pods", "doomed", pod("lonely"))
            await env.c.create("services", "doomed", {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
                "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}})
            await env.c.create("configmaps", "doomed", {"apiVersion": "v1", "kind": "ConfigMap",
                                                          "metadata": {"name": "cm"}})
            await env.c.create(RS, "doomed", {
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "rs"}},
                         "template": {"metadata": {"labels": {"app": "rs"}},
                                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})

            async def four_running():
                items = (await env.c.list("pods", "doomed"))["items"]
                return sum((p.get("status") or {}).get("phase") == "Running" for p in items) == 4
            await until(four_running, message="pods running")

            await env.c.delete("namespaces", None, "doomed")
            ns = await env.ns("doomed")
            assert ns["status"]["phase"] == "Terminating"
            assert ns["spec"]["finalizers"] == ["kubernetes"]
            await until(lambda: _none(env.ns("doomed")), message="namespace gone")
            for res in ("pods", "services", "configmaps", RS):
                assert (await env.c.list(res, "doomed"))["items"] == []
    run(main())


async def _none(coro):
    return await coro is None


def test_finalizers_hold_the_namespace_and_show_in_its_conditions(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.create_ns("held")
            await env.c.create("configmaps", "held", {"apiVersion": "v1", "kind": "ConfigMap",
                                                        "metadata": {"name": "cm", "finalizers": ["example.com/hold"]}})
            await env.c.create("pods", "held", pod("p"))
            await env.c.delete("namespaces", None, "held")

            async def reported():
                ns = await env.ns("held")
                c = conditions(ns)
                return ns if c.get("NamespaceFinalizersRemaining", {}).get("status") == "True" else None
            ns = await until(reported, message="finalizer conditions")
            c = conditions(ns)
            assert (c["NamespaceContentRemaining"]["status"], c["NamespaceContentRemaining"]["reason"],
                    c["NamespaceContentRemaining"]["message"]) == \
                ("True", "SomeResourcesRemain", "Some resources are remaining: configmaps. has 1 resource instances")
            assert (c["NamespaceFinalizersRemaining"]["reason"], c["NamespaceFinalizersRemaining"]["message"]) == \
                ("SomeFinalizersRemain",
                 "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
            assert c["NamespaceDeletionContentFailure"]["status"] == "False"
            assert c["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
            assert (await env.c.list("pods", "held"))["items"] == []
            cm = await env.c.get("configmaps", "held", "cm")
            assert cm["metadata"]["deletionTimestamp"]

            # The finalizer goes; the controller looks again 15 s later (its estimate) and finishes.
            await env.c.patch("configmaps", "held", "cm", {"metadata": {"finalizers": None}})
            await until(lambda: _none(env.ns("held")), message="namespace gone", clock=env.clock, tick=1.0)
    run(main())


def test_graceful_pods_are_waited_for(tmp_path):
    """A pod on a node shuts down gracefully; the namespace goes once it has."""
    async def main():
        async with Env(tmp_path) as env:
            await env.create_ns("slow")
            node = await env.c.create("nodes", None, {"apiVersion": "v1", "kind": "Node",
                                                       "metadata": {"name": "n1"}})
            p = pod("graceful")
            p["spec"]["nodeName"] = node["metadata"]["name"]
            await env.c.create("pods", "slow", p)
            await env.c.delete("namespaces", None, "slow")

            async def terminating():
                items = (await env.c.list("pods", "slow"))["items"]
                return items and items[0]["metadata"].get("deletionTimestamp")
            await until(terminating, message="pod terminating")
            await asyncio.sleep(0.1)
            assert await env.ns("slow") is not None
            # The kubelet finishes the deletion: the namespace follows without waiting out the
            # controller's estimate.
            await env.c.delete("pods", "slow", "graceful", grace_period_seconds=0)
            await until(lambda: _none(env.ns("slow")), message="namespace gone", clock=env.clock, tick=0.25)
    run(main())


def test_default_service_account_in_every_active_namespace(tmp_path):
    async def main():
        async with Env(tmp_path, controllers=(ServiceAccountController,)) as env:
            async def has_default(ns):
                try:
                    return await env.c.get("serviceaccounts", ns, "default")
                except ApiError:
                    return None
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                await until(lambda: has_default(ns), message=f"default SA in {ns}")
            await env.create_ns("team")
            await until(lambda: has_default("team"), message="default SA in a new namespace")
            await env.c.delete("serviceaccounts", "team", "default")
            await until(lambda: has_default("team"), message="default SA recreated")
    run(main())
