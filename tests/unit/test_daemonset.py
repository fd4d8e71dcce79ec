"""DaemonSet controller, in process: one pod per eligible node (node selector, required node
affinity, taints against the daemon tolerations), nodes joining and leaving, failed pods
replaced under back-off on a FakeClock, RollingUpdate with maxUnavailable and maxSurge, OnDelete,
rollback without restarts, ControllerRevisions, status with minReadySeconds, and events."""

from __future__ import annotations

import asyncio
import copy
import re

from pocketkube.agent.simulated import (
    EXIT_AFTER_ANNOTATION,
    EXIT_CODE_ANNOTATION,
    SimulatedNodes,
)
from pocketkube.api.defaults import default_pod_template
from pocketkube.client import MERGE, STRATEGIC
from pocketkube.clock import FakeClock
from pocketkube.controllers.daemonset import DaemonSetController
from pocketkube.controllers.daemonset.util import daemonset_util as util
from pocketkube.controllers.podtemplate.hash import compute_hash
from pocketkube.controllers.history import template_patch
from tests.unit.harness import ControllerEnv, run

DS = "daemonsets.apps"
CR = "controllerrevisions.apps"


def ds_manifest(name, image="nginx", strategy=None, annotations=None, template_annotations=None, **spec):
    labels = {"app": name}
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "annotations": dict(annotations or {})},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": dict(labels),
                                               "annotations": dict(template_annotations or {})},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}
    if strategy is not None:
        body["spec"]["updateStrategy"] = strategy
    pod_spec = spec.pop("pod_spec", None)
    if pod_spec:
        body["spec"]["template"]["spec"].update(pod_spec)
    body["spec"].update(spec)
    return body


class Env(ControllerEnv):
    def __init__(self, tmp_path, nodes=3, clock=None):
        super().__init__(tmp_path, [DaemonSetController], nodes=nodes, clock=clock or FakeClock())

    async def __aenter__(self):
        await super().__aenter__()
        self.dsc = self.controller(DaemonSetController)
        return self

    async def pods(self, name, live=True):
        items = (await self.c.list("pods", "default", label_selector=f"app={name}"))["items"]
        if live:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return items

    async def ds(self, name):
        return await self.c.get(DS, "default", name)

    async def revisions(self, name):
        items = (await self.c.list(CR, "default", label_selector=f"app={name}"))["items"]
        return sorted(items, key=lambda r: r["revision"])

    async def events(self, reason):
        items = (await self.c.list("events", "default"))["items"]
        return [e for e in items if e["reason"] == reason]

    async def wait_status(self, name, timeout=10.0, **want):
        async def ok():
            st = (await self.ds(name)).get("status") or {}
            return all(st.get(k, 0) == v for k, v in want.items()) and st
        return await self.until(ok, timeout, f"{name} status {want}")

    async def running_on(self, name, count, timeout=10.0):
        """`count` live pods, each Running and Ready, on distinct nodes."""
        async def ok():
            pods = await self.pods(name)
            if len(pods) != count or len({p["spec"].get("nodeName") for p in pods}) != count:
                return False
            if not all(p.get("status", {}).get("phase") == "Running" for p in pods):
                return False
            return pods
        return await self.until(ok, timeout, f"{count} running pods of {name}")

    async def label_node(self, node, labels):
        await self.c.patch("nodes", None, node, {"metadata": {"labels": labels}}, MERGE)

    async def taint_node(self, node, taints):
        await self.c.patch("nodes", None, node, {"spec": {"taints": taints}}, MERGE)


def node_of(pod):
    return pod["spec"].get("nodeName")


def hash_of(pod):
    return pod["metadata"]["labels"].get(util.CONTROLLER_REVISION_HASH)


# ---- pods, names, labels, tolerations, pinning ----------------------------------------------------

def test_one_pod_per_node_named_labelled_pinned_with_daemon_tolerations(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            body = ds_manifest("fluent", annotations={util.TEMPLATE_GENERATION_ANNOTATION: "1"},
                               pod_spec={"hostNetwork": True,
                                         "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                                          "effect": "NoExecute", "tolerationSeconds": 300}]})
            await env.c.create(DS, "default", body)
            pods = await env.running_on("fluent", 3)
            assert sorted(node_of(p) for p in pods) == ["sim-0", "sim-1", "sim-2"]
            revs = await env.revisions("fluent")
            assert len(revs) == 1 and revs[0]["revision"] == 1
            rev_hash = revs[0]["metadata"]["labels"][util.CONTROLLER_REVISION_HASH]
            assert revs[0]["metadata"]["name"] == f"fluent-{rev_hash}"
            ds = await env.ds("fluent")
            assert revs[0]["data"] == template_patch(ds["spec"]["template"])
            # Upstream's name: the pod-template-hash of the template (no collision count yet).
            assert rev_hash == compute_hash(ds["spec"]["template"]) and "collisionCount" not in ds["status"]
            assert revs[0]["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
            for p in pods:
                assert re.fullmatch(r"fluent-[bcdfghjklmnpqrstvwxz2456789]{5}", p["metadata"]["name"])
                assert hash_of(p) == rev_hash
                assert p["metadata"]["labels"][util.TEMPLATE_GENERATION_LABEL] == "1"
                ref = p["metadata"]["ownerReferences"][0]
                assert (ref["kind"], ref["name"], ref["controller"]) == ("DaemonSet", "fluent", True)
                terms = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                assert terms == {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [node_of(p)]}]}]}
                tols = {(t["key"], t["effect"]): t for t in p["spec"]["tolerations"]}
                assert set(tols) == {("node.kubernetes.io/not-ready", "NoExecute"),
                                     ("node.kubernetes.io/unreachable", "NoExecute"),
                                     ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                                     ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                                     ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                                     ("node.kubernetes.io/unschedulable", "NoSchedule"),
                                     ("node.kubernetes.io/network-unavailable", "NoSchedule")}
                # The user's 300 s toleration is replaced by one that tolerates forever.
                assert "tolerationSeconds" not in tols[("node.kubernetes.io/not-ready", "NoExecute")]
            st = await env.wait_status("fluent", desiredNumberScheduled=3, currentNumberScheduled=3, numberReady=3,
                                       numberAvailable=3, updatedNumberScheduled=3, numberMisscheduled=0,
                                       numberUnavailable=0, observedGeneration=1)
            assert st["observedGeneration"] == 1
            await env.dsc.recorder.flush()
            created = await env.events("SuccessfulCreate")
            assert len(created) == 3 and all(e["message"].startswith("Created pod: fluent-") for e in created)
            assert created[0]["source"]["component"] == "daemonset-controller"
            # The API keeps the template generation (1 on create); a pod without hostNetwork gets
            # no network toleration.
            await env.c.create(DS, "default", ds_manifest("plain"))
            pods = await env.running_on("plain", 3)
            assert all(p["metadata"]["labels"][util.TEMPLATE_GENERATION_LABEL] == "1" for p in pods)
            assert all(t["key"] != "node.kubernetes.io/network-unavailable" for t in pods[0]["spec"]["tolerations"])
    run(main())


def test_a_revision_name_taken_by_other_data_raises_the_collision_count(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=1) as env:
            body = ds_manifest("col")
            template = copy.deepcopy(body["spec"]["template"])
            default_pod_template(template)
            taken = f"col-{compute_hash(template)}"
            await env.c.create(CR, "default", {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                                               "metadata": {"name": taken}, "data": {"other": True}, "revision": 1})
            await env.c.create(DS, "default", body)
            (pod,) = await env.running_on("col", 1)
            assert hash_of(pod) == compute_hash(template, 1)
            assert (await env.ds("col"))["status"]["collisionCount"] == 1
            names = {r["metadata"]["name"] for r in (await env.c.list(CR, "default"))["items"]}
            assert names == {taken, f"col-{compute_hash(template, 1)}"}
    run(main())


def test_deleted_pod_is_replaced(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(DS, "default", ds_manifest("d"))
            pods = await env.running_on("d", 3)
            victim = pods[0]
            await env.c.delete("pods", "default", victim["metadata"]["name"])
            pods = await env.running_on("d", 3)
            assert victim["metadata"]["uid"] not in {p["metadata"]["uid"] for p in pods}
            assert node_of(victim) in {node_of(p) for p in pods}
    run(main())


# ---- eligibility --------------------------------------------------------------------------------

def test_node_selector_follows_node_labels(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(DS, "default", ds_manifest("sel", pod_spec={"nodeSelector": {"color": "blue"}}))
            await env.wait_status("sel", desiredNumberScheduled=0, observedGeneration=1)
            assert await env.pods("sel") == []
            await env.label_node("sim-1", {"color": "blue"})
            pods = await env.running_on("sel", 1)
            assert node_of(pods[0]) == "sim-1"
            await env.wait_status("sel", desiredNumberScheduled=1, numberAvailable=1)
            # Relabelled: the pod no longer belongs there and is deleted.
            await env.label_node("sim-1", {"color": "green"})
            await env.until(lambda: _empty(env.pods("sel")), message="pod removed after relabel")
            await env.dsc.recorder.flush()
            deleted = await env.events("SuccessfulDelete")
            assert [e["message"] for e in deleted] == [f"Deleted pod: {pods[0]['metadata']['name']}"]
            await env.wait_status("sel", desiredNumberScheduled=0, currentNumberScheduled=0, numberMisscheduled=0)
            # Selector changed to green: follows.
            await env.c.patch(DS, "default", "sel", {"spec": {"template": {"spec": {"nodeSelector": {"color": "green"}}}}},
                              STRATEGIC)
            pods = await env.running_on("sel", 1)
            assert node_of(pods[0]) == "sim-1"
    run(main())


async def _empty(coro):
    return not await coro


def test_required_node_affinity(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.label_node("sim-0", {"zone": "a"})
            await env.label_node("sim-2", {"zone": "b"})
            affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}
            await env.c.create(DS, "default", ds_manifest("aff", pod_spec={"affinity": affinity}))
            pods = await env.running_on("aff", 2)
            assert sorted(node_of(p) for p in pods) == ["sim-0", "sim-2"]
            # The pod's required terms are replaced by the pin to its node.
            assert pods[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                "nodeSelectorTerms"][0]["matchFields"][0]["values"] == [node_of(pods[0])]
    run(main())


def test_taints_no_schedule_keeps_pod_no_execute_evicts(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.taint_node("sim-0", [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
            await env.c.create(DS, "default", ds_manifest("t"))
            pods = await env.running_on("t", 2)
            assert "sim-0" not in {node_of(p) for p in pods}
            # A NoSchedule taint on a node that has a pod: it stays, counted as misscheduled.
            await env.taint_node("sim-1", [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
            await env.wait_status("t", desiredNumberScheduled=1, currentNumberScheduled=1, numberMisscheduled=1)
            assert len(await env.pods("t")) == 2
            # NoExecute: it goes.
            await env.taint_node("sim-1", [{"key": "dedicated", "value": "db", "effect": "NoExecute"}])
            await env.wait_status("t", desiredNumberScheduled=1, currentNumberScheduled=1, numberMisscheduled=0)
            pods = await env.pods("t")
            assert [node_of(p) for p in pods] == ["sim-2"]
            # Tolerating the taints puts pods on both tainted nodes.
            await env.c.patch(DS, "default", "t", {"spec": {"template": {"spec": {"tolerations": [
                {"key": "dedicated", "operator": "Exists"}]}}}}, STRATEGIC)
            await env.running_on("t", 3)
            # The daemon tolerations cover unschedulable and not-ready nodes.
            await env.c.patch("nodes", None, "sim-2", {"spec": {"unschedulable": True, "taints": [
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}}, MERGE)
            await env.wait_status("t", desiredNumberScheduled=3, currentNumberScheduled=3, numberMisscheduled=0,
                                  updatedNumberScheduled=3)
    run(main())


# ---- nodes joining and leaving ------------------------------------------------------------------

def test_node_joins_and_leaves(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=2) as env:
            await env.c.create(DS, "default", ds_manifest("j"))
            await env.running_on("j", 2)
            extra = SimulatedNodes(env.c, 1, prefix="late", clock=env.clock)
            await extra.start()
            try:
                pods = await env.running_on("j", 3)
                assert "late-0" in {node_of(p) for p in pods}
                await env.wait_status("j", desiredNumberScheduled=3, numberAvailable=3)
                # The node object goes: so does its pod (no graceful wait for a kubelet that left).
                await env.c.delete("nodes", None, "late-0")
                await env.until(lambda: _no_pod_on(env, "j", "late-0"), message="pod of deleted node gone")
                await env.wait_status("j", desiredNumberScheduled=2, currentNumberScheduled=2, numberAvailable=2)
            finally:
                await extra.stop()
            # A bare Node object (no kubelet) still gets its pod, bound by the scheduler.
            await env.c.create("nodes", None, BARE_NODE)
            async def bound():
                return any(node_of(p) == "bare" for p in await env.pods("j"))
            await env.until(bound, message="pod bound to the bare node")
            await env.wait_status("j", desiredNumberScheduled=3, currentNumberScheduled=3, numberReady=2)
    run(main())


async def _no_pod_on(env, name, node):
    return all(node_of(p) != node for p in await env.pods(name, live=False))


# ---- failed pods ----------------------------------------------------------------------------------

def test_failed_pod_is_deleted_and_recreated_with_backoff(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=1) as env:
            # A node without a kubelet: nothing but the test changes its pods' status.
            await env.c.create("nodes", None, BARE_NODE)
            await env.c.create(DS, "default", ds_manifest("f", pod_spec={"nodeSelector": {"role": "bare"}}))

            async def fail(pod):
                fresh = await env.c.get("pods", "default", pod["metadata"]["name"])
                fresh["status"]["phase"] = "Failed"
                await env.c.update_status("pods", "default", fresh)

            first = (await env.until(lambda: _bound(env, "f", None), message="pod bound"))
            await fail(first)
            second = await env.until(lambda: _bound(env, "f", first), message="replacement")
            await env.dsc.recorder.flush()
            failed = await env.events("FailedDaemonPod")
            assert failed[0]["type"] == "Warning"
            assert failed[0]["message"] == (f"Found failed daemon pod default/{first['metadata']['name']} on node "
                                            f"bare, will try to kill it")
            # Failing again within the back-off (1 s): the pod is left alone until the clock moves.
            await fail(second)
            await asyncio.sleep(0.3)   # real time passes, cluster time does not
            assert (await env.c.get("pods", "default", second["metadata"]["name"]))["status"]["phase"] == "Failed"
            env.clock.advance(1.5)
            third = await env.until(lambda: _bound(env, "f", second), message="replacement after back-off")
            # The back-off doubled: a third failure waits 2 s.
            await fail(third)
            await asyncio.sleep(0.3)   # observed at the time of the failure
            env.clock.advance(1.5)
            await asyncio.sleep(0.3)
            assert await env.get_or_none("pods", "default", third["metadata"]["name"]) is not None
            env.clock.advance(1.0)
            await env.until(lambda: _bound(env, "f", third), message="replacement after the doubled back-off")
    run(main())


BARE_NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "bare", "labels": {"role": "bare"}},
             "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"},
                        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "10"}}}


async def _bound(env, name, old):
    """The one live pod of `name`, bound, other than `old` (which must be gone)."""
    pods = [p for p in await env.pods(name) if node_of(p)]
    if old is not None:
        if await env.get_or_none("pods", "default", old["metadata"]["name"]) is not None:
            return False
        pods = [p for p in pods if p["metadata"]["uid"] != old["metadata"]["uid"]]
    return len(pods) == 1 and pods[0]


# ---- updates --------------------------------------------------------------------------------------

async def _all_updated(env, name, count, hash_):
    pods = await env.pods(name)
    return (len(pods) == count and all(hash_of(p) == hash_ for p in pods)
            and all(p.get("status", {}).get("phase") == "Running" for p in pods)) and pods


def test_rolling_update_max_unavailable(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=4) as env:
            await env.c.create(DS, "default", ds_manifest("r", strategy={
                "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}}))
            await env.running_on("r", 4)
            await env.wait_status("r", numberAvailable=4)
            # Watch how many pods are live at once during the update.
            seen = []
            env.dsc.pods.add_handler(lambda *a: seen.append(sum(
                1 for p in env.dsc.pods.list() if not p["metadata"].get("deletionTimestamp")
                and (p["metadata"].get("labels") or {}).get("app") == "r")))
            await env.c.patch(DS, "default", "r", {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "nginx:2"}]}}}}, STRATEGIC)
            revs = await env.until(lambda: _revisions(env, "r", 2), message="second revision")
            new_hash = revs[-1]["metadata"]["labels"][util.CONTROLLER_REVISION_HASH]
            pods = await env.until(lambda: _all_updated(env, "r", 4, new_hash), message="all updated")
            assert all(p["spec"]["containers"][0]["image"] == "nginx:2" for p in pods)
            assert min(seen) >= 2      # never more than 50% of 4 down
            await env.wait_status("r", updatedNumberScheduled=4, numberAvailable=4, observedGeneration=2)
    run(main())


async def _revisions(env, name, n):
    revs = await env.revisions(name)
    return len(revs) == n and revs


def test_rolling_update_max_surge(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=3) as env:
            await env.c.create(DS, "default", ds_manifest("s", strategy={
                "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}))
            await env.running_on("s", 3)
            seen = []
            env.dsc.pods.add_handler(lambda *a: seen.append(sum(
                1 for p in env.dsc.pods.list() if not p["metadata"].get("deletionTimestamp")
                and (p["metadata"].get("labels") or {}).get("app") == "s")))
            await env.c.patch(DS, "default", "s", {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "nginx:2"}]}}}}, STRATEGIC)
            revs = await env.until(lambda: _revisions(env, "s", 2), message="second revision")
            new_hash = revs[-1]["metadata"]["labels"][util.CONTROLLER_REVISION_HASH]
            await env.until(lambda: _all_updated(env, "s", 3, new_hash), message="all updated")
            assert max(seen) <= 4 and min(x for x in seen[len(seen) // 2:]) >= 3 and 4 in seen
            await env.wait_status("s", updatedNumberScheduled=3, numberAvailable=3, numberUnavailable=0)
    run(main())


def test_on_delete_replaces_only_deleted_pods(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=2) as env:
            await env.c.create(DS, "default", ds_manifest("o", strategy={"type": "OnDelete"}))
            pods = await env.running_on("o", 2)
            await env.c.patch(DS, "default", "o", {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "nginx:2"}]}}}}, STRATEGIC)
            await env.wait_status("o", observedGeneration=2, updatedNumberScheduled=0, desiredNumberScheduled=2)
            assert {p["metadata"]["uid"] for p in await env.pods("o")} == {p["metadata"]["uid"] for p in pods}
            await env.c.delete("pods", "default", pods[0]["metadata"]["name"])
            await env.wait_status("o", updatedNumberScheduled=1, currentNumberScheduled=2, numberAvailable=2)
            now = await env.pods("o")
            images = sorted(p["spec"]["containers"][0]["image"] for p in now)
            assert images == ["nginx", "nginx:2"]
    run(main())


def test_rollback_without_unnecessary_restarts(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=3) as env:
            await env.c.create(DS, "default", ds_manifest("rb"))
            first = await env.running_on("rb", 3)
            # The new template never becomes ready (its container keeps crashing).
            await env.c.patch(DS, "default", "rb", {"spec": {"template": {
                "metadata": {"annotations": {EXIT_AFTER_ANNOTATION: "0s", EXIT_CODE_ANNOTATION: "1"}},
                "spec": {"containers": [{"name": "c", "image": "foo:non-existent"}]}}}}, STRATEGIC)
            revs = await env.until(lambda: _revisions(env, "rb", 2), message="second revision")
            bad_hash = revs[-1]["metadata"]["labels"][util.CONTROLLER_REVISION_HASH]

            async def one_bad():
                pods = await env.pods("rb")
                bad = [p for p in pods if hash_of(p) == bad_hash]
                return len(pods) == 3 and len(bad) == 1 and pods
            await env.until(one_bad, message="one pod of the broken revision")
            # The rollout is stuck at maxUnavailable 1; undo as kubectl does, with revision 1's data.
            await env.c.patch(DS, "default", "rb", revs[0]["data"], STRATEGIC)
            good_hash = revs[0]["metadata"]["labels"][util.CONTROLLER_REVISION_HASH]
            pods = await env.until(lambda: _all_updated(env, "rb", 3, good_hash), message="rolled back")
            kept = {p["metadata"]["uid"] for p in first} & {p["metadata"]["uid"] for p in pods}
            assert len(kept) == 2       # only the broken pod was replaced
            revs = await env.revisions("rb")
            assert [(r["metadata"]["labels"][util.CONTROLLER_REVISION_HASH], r["revision"]) for r in revs] == [
                (bad_hash, 2), (good_hash, 3)]
    run(main())


def test_revision_history_limit(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=1) as env:
            await env.c.create(DS, "default", ds_manifest("h", revisionHistoryLimit=1))
            await env.running_on("h", 1)
            for i in range(2, 5):
                await env.c.patch(DS, "default", "h", {"spec": {"template": {"spec": {"containers": [
                    {"name": "c", "image": f"nginx:{i}"}]}}}}, STRATEGIC)
                await env.wait_status("h", observedGeneration=i, updatedNumberScheduled=1, numberAvailable=1)
            revs = await env.until(lambda: _revisions(env, "h", 2), message="history truncated to 1 + current")
            assert [r["revision"] for r in revs] == [3, 4]
    run(main())


def test_min_ready_seconds_on_the_fake_clock(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=2) as env:
            await env.c.create(DS, "default", ds_manifest("m", minReadySeconds=30))
            await env.running_on("m", 2)
            await env.wait_status("m", numberReady=2, numberAvailable=0, numberUnavailable=2)
            env.clock.advance(31)
            await env.wait_status("m", numberReady=2, numberAvailable=2, numberUnavailable=0)
    run(main())


def test_orphan_pod_is_adopted(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=1) as env:
            orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "labels": {"app": "a"}},
                      "spec": {"nodeName": "sim-0", "containers": [{"name": "c", "image": "nginx"}]}}
            await env.c.create("pods", "default", orphan)
            await env.until(lambda: env.dsc.pods.get("default/stray"), message="controller saw the orphan")
            # OnDelete: an adopted pod of no known revision stays (RollingUpdate would replace it).
            await env.c.create(DS, "default", ds_manifest("a", strategy={"type": "OnDelete"}))
            pods = await env.until(lambda: _owned_by(env, "a", 1), message="orphan adopted, one pod on the node")
            assert pods[0]["metadata"]["name"] == "stray"
            await env.wait_status("a", desiredNumberScheduled=1, currentNumberScheduled=1, updatedNumberScheduled=0)
    run(main())


async def _owned_by(env, name, n):
    pods = await env.pods(name)
    owned = [p for p in pods if (p["metadata"].get("ownerReferences") or [{}])[0].get("name") == name]
    return len(pods) == n and len(owned) == n and pods


# ---- helpers ----------------------------------------------------------------------------------------

def test_util_counts_pinning_and_tolerations():
    rolling = {"spec": {"updateStrategy": {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "10%"}}}}
    assert util.unavailable_count(rolling, 10) == 3      # percentages round up
    assert util.surge_count(rolling, 10) == 1
    assert util.allows_surge(rolling)
    on_delete = {"spec": {"updateStrategy": {"type": "OnDelete"}}}
    assert util.unavailable_count(on_delete, 10) == 0 and not util.allows_surge(on_delete)

    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]},
        "podAntiAffinity": {"x": 1}}
    pinned = util.replace_node_name_affinity(affinity, "n1")
    assert pinned["podAntiAffinity"] == {"x": 1}
    assert pinned["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 1, "preference": {}}]
    assert util.target_node_name({"spec": {"affinity": pinned}}) == "n1"
    assert util.target_node_name({"spec": {"nodeName": "n2", "affinity": pinned}}) == "n2"
    assert util.target_node_name({"spec": {}}) is None
    # The input is not changed.
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"]

    spec = {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 60}, {"key": "other", "operator": "Exists"}]}
    util.add_daemon_tolerations(spec)
    keys = [(t["key"], t.get("effect")) for t in spec["tolerations"]]
    assert keys[:2] == [("node.kubernetes.io/unreachable", "NoExecute"), ("other", None)]
    assert len(keys) == 7 and "tolerationSeconds" not in spec["tolerations"][0]

    pod = {"metadata": {"labels": {util.CONTROLLER_REVISION_HASH: "abc", util.TEMPLATE_GENERATION_LABEL: "2"}}}
    assert util.is_pod_updated(pod, "abc", None) and util.is_pod_updated(pod, "zzz", 2)
    assert not util.is_pod_updated(pod, "zzz", 3) and not util.is_pod_updated(pod, "", None)
