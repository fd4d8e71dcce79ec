"""Scheduler: filters, scores, messages, retries and volumes against the in-process API.

Nodes are plain Node objects with allocatable resources (nothing runs on them); a FakeClock
drives back-offs so retries are tested without sleeping.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

from pocketkube.api.core import Api
from pocketkube.client.inprocess import InProcessClient
from pocketkube.clock import FakeClock
from pocketkube.scheduler import Scheduler, messages
from pocketkube.scheduler.podinfo import pod_info
from pocketkube.scheduler.resources import PodRes
from pocketkube.store.sqlite import SqliteStore
from tests.unit.harness import until

NS = "default"


def node(name, cpu="4", memory="8Gi", pods="110", labels=None, taints=None, unschedulable=False):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods,
                                       "ephemeral-storage": "100Gi"},
                       "capacity": {"cpu": cpu, "memory": memory, "pods": pods}}}


def pod(name, cpu=None, memory=None, **spec):
    res = {}
    if cpu or memory:
        res = {"requests": {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}}
    owner = spec.pop("owner", None)
    meta = {"name": name}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                    "uid": owner, "controller": True}]
    containers = [{"name": "c", "image": "busybox", "resources": res}]
    if "ports" in spec:
        containers[0]["ports"] = spec.pop("ports")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": containers, **spec}}


class Env:
    def __init__(self, client, sched, clock):
        self.c = client
        self.sched = sched
        self.clock = clock

    async def nodes(self, *objs):
        for o in objs:
            await self.c.create("nodes", None, o)

    async def pods(self, *objs):
        return [await self.c.create("pods", NS, o) for o in objs]

    async def get(self, name):
        return await self.c.get("pods", NS, name)

    async def bound(self, name, timeout=10.0):
        async def check():
            return (await self.get(name))["spec"].get("nodeName")
        return await until(check, timeout, f"pod {name} bound")

    async def condition(self, name, status="False"):
        async def check():
            p = await self.get(name)
            for c in (p.get("status") or {}).get("conditions") or []:
                if c["type"] == "PodScheduled" and c["status"] == status:
                    return c
            return None
        return await until(check, message=f"PodScheduled={status} on {name}")

    async def events(self, name, reason):
        evs = (await self.c.list("events", NS))["items"]
        return [e for e in evs if e["involvedObject"]["name"] == name and e["reason"] == reason]

    async def event(self, name, reason, message=None):
        async def check():
            evs = await self.events(name, reason)
            if message is not None:
                evs = [e for e in evs if e["message"] == message]
            return evs[-1] if evs else None
        return await until(check, message=f"{reason} event on {name}")

    async def tick(self, seconds=1.0, steps=1):
        """Move the fake clock so back-offs and the flush loop run."""
        for _ in range(steps):
            self.clock.advance(seconds)
            for _ in range(5):
                await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def cluster(tmp_path, **kw):
    clock = FakeClock()
    store = SqliteStore(str(tmp_path / "s.db"))
    api = Api(store, clock)
    await api.bootstrap()
    client = InProcessClient(api)
    sched = Scheduler(client, clock, seed=7, **kw)
    await sched.start()
    try:
        yield Env(client, sched, clock)
    finally:
        await sched.stop()
        await store.close()


def run(coro):
    asyncio.run(coro)


# ---- requests arithmetic ------------------------------------------------------------------------

def test_pod_requests_sum_containers_max_init_containers_and_add_overhead():
    spec = {"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                           {"name": "b", "resources": {"limits": {"cpu": "200m"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "32Mi"}}},
                               {"name": "s", "restartPolicy": "Always",
                                "resources": {"requests": {"cpu": "50m"}}}],
            "overhead": {"cpu": "10m"}}
    r = PodRes(spec)
    # containers 300m + sidecar 50m = 350m; the init container alone needs 1 (no sidecar before it).
    assert r.cpu == 1000 + 10
    assert r.mem == 64 * 2**20
    # Non-zero: container b and the sidecar count 200Mi memory each for scoring.
    assert r.nz_mem == 64 * 2**20 + 200 * 2**20 + 200 * 2**20


# ---- filters and messages -----------------------------------------------------------------------

def test_pod_info_of_replicas_shares_the_spec_part_and_keeps_each_pods_identity():
    def replica(name, labels, cpu="100m", owner="rs-1"):
        return {"metadata": {"name": name, "namespace": "d", "uid": f"uid-{name}", "resourceVersion": "7",
                             "labels": labels, "ownerReferences": [{"kind": "ReplicaSet", "name": "rs",
                                                                    "uid": owner, "controller": True}]},
                "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu}}}],
                         "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                         "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
                                     {"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}]}}
    a, b = pod_info("d/a", replica("a", {"app": "x"})), pod_info("d/b", replica("b", {"app": "x"}))
    assert (a.key, a.name, a.uid, b.key, b.name, b.uid) == ("d/a", "a", "uid-a", "d/b", "b", "uid-b")
    assert a.res.cpu == b.res.cpu == 100 and a.tolerations == b.tolerations and a.owner == b.owner == "rs-1"
    # Ephemeral claims are named after their pod; others are the same claim.
    assert a.claims == [("scratch", "a-scratch", True), ("data", "shared", False)]
    assert b.claims == [("scratch", "b-scratch", True), ("data", "shared", False)]
    # Any difference in what the spec part reads makes another shape.
    assert pod_info("d/c", replica("c", {"app": "x"}, cpu="200m")).res.cpu == 200
    assert pod_info("d/e", replica("e", {"app": "x"}, owner="rs-2")).owner == "rs-2"
    assert pod_info("d/f", replica("f", {"app": "y"})).labels == {"app": "y"}


def test_binds_pod_and_records_scheduled_event(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("n1"))
            await env.pods(pod("p", cpu="100m"))
            assert await env.bound("p") == "n1"
            ev = await env.event("p", "Scheduled")
            assert ev["message"] == "Successfully assigned default/p to n1"
            assert ev["type"] == "Normal"
            assert ev["source"]["component"] == "default-scheduler"
            assert ev["reportingComponent"] == "default-scheduler"
            assert ev["involvedObject"]["uid"] == (await env.get("p"))["metadata"]["uid"]
            await env.condition("p", "True")
    run(main())


def test_insufficient_cpu_and_selector_message_event_and_condition(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("a", cpu="1", labels={"disk": "ssd"}), node("b"), node("c"))
            created, = await env.pods(pod("p", cpu="2", nodeSelector={"disk": "ssd"}))
            want = ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node "
                    "affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found "
                    "for incoming pod, 2 Preemption is not helpful for scheduling.")
            ev = await env.event("p", "FailedScheduling")
            assert ev["message"] == want
            assert ev["type"] == "Warning"
            assert ev["source"] == {"component": "default-scheduler"}
            assert ev["reportingComponent"] == "default-scheduler"
            assert ev["action"] == "Scheduling"
            inv = ev["involvedObject"]
            assert (inv["kind"], inv["namespace"], inv["name"], inv["uid"]) == \
                ("Pod", NS, "p", created["metadata"]["uid"])
            assert inv["resourceVersion"]
            cond = await env.condition("p")
            assert cond["reason"] == "Unschedulable" and cond["message"] == want
            # Another condition on the pod survives the scheduler's status writes.
            live = await env.get("p")
            live["status"]["conditions"].append({"type": "example.com/Gate", "status": "True"})
            await env.c.update_status("pods", NS, live)
            await env.nodes(node("d", cpu="1", labels={"disk": "ssd"}))
            await env.tick(2.0)
            want2 = want.replace("0/3", "0/4").replace("1 Insufficient cpu", "2 Insufficient cpu") \
                .replace("1 No preemption", "2 No preemption")

            async def updated():
                p = await env.get("p")
                conds = {c["type"]: c for c in p["status"]["conditions"]}
                return conds["PodScheduled"]["message"] == want2 and "example.com/Gate" in conds
            await until(updated, message="condition updated, other condition kept")
    run(main())


def test_resources_count_assumed_pods_memory_and_pod_count(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("n", cpu="2", memory="1Gi", pods="6"))
            # Created at once: the scheduler must count its own fresh placements.
            await env.pods(*(pod(f"p{i}", cpu="500m") for i in range(5)))
            await until(lambda: env.sched.scheduled == 4, message="4 bound")
            unbound = [p for p in (await env.c.list("pods", NS))["items"] if not p["spec"].get("nodeName")]
            assert len(unbound) == 1
            ev = await env.event(unbound[0]["metadata"]["name"], "FailedScheduling")
            assert ev["message"] == ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                                     "available: 1 No preemption victims found for incoming pod.")
            await env.pods(pod("big", memory="2Gi", preemptionPolicy="Never"))
            ev = await env.event("big", "FailedScheduling")
            assert ev["message"] == ("0/1 nodes are available: 1 Insufficient memory. "
                                     "preemption: not eligible due to preemptionPolicy=Never.")
            # Pods that request nothing still count against the node's pod capacity.
            await env.pods(pod("e1"), pod("e2"), pod("e3"))
            await until(lambda: env.sched.scheduled == 6, message="6 bound")
            pending = [p["metadata"]["name"] for p in (await env.c.list("pods", NS))["items"]
                       if not p["spec"].get("nodeName") and p["metadata"]["name"].startswith("e")]
            ev = await env.event(pending[0], "FailedScheduling")
            assert ev["message"].startswith("0/1 nodes are available: 1 Too many pods.")
    run(main())


def test_node_affinity_operators_and_match_fields(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("small", labels={"size": "2", "zone": "a"}),
                            node("large", labels={"size": "8", "zone": "b", "gpu": "yes"}))

            def affinity(*exprs, fields=None):
                term = {"matchExpressions": list(exprs)}
                if fields:
                    term["matchFields"] = fields
                return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [term]}}}
            cases = {
                "in": (affinity({"key": "zone", "operator": "In", "values": ["b"]}), "large"),
                "notin": (affinity({"key": "zone", "operator": "NotIn", "values": ["b"]}), "small"),
                "exists": (affinity({"key": "gpu", "operator": "Exists"}), "large"),
                "absent": (affinity({"key": "gpu", "operator": "DoesNotExist"}), "small"),
                "gt": (affinity({"key": "size", "operator": "Gt", "values": ["4"]}), "large"),
                "lt": (affinity({"key": "size", "operator": "Lt", "values": ["4"]}), "small"),
                "field": (affinity(fields=[{"key": "metadata.name", "operator": "In", "values": ["small"]}]),
                          "small"),
            }
            for name, (aff, _) in cases.items():
                await env.pods(pod(name, affinity=aff))
            await env.pods(pod("sel", nodeSelector={"zone": "a"}))
            for name, (_, want) in cases.items():
                assert await env.bound(name) == want, name
            assert await env.bound("sel") == "small"
            # Pinned by metadata.name to a node that cannot take it: the other node was never examined.
            await env.pods(pod("pinned", cpu="6", affinity=affinity(
                fields=[{"key": "metadata.name", "operator": "In", "values": ["small"]}])))
            ev = await env.event("pinned", "FailedScheduling")
            assert ev["message"] == (
                "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't satisfy plugin(s) [NodeAffinity]. "
                "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
                "1 Preemption is not helpful for scheduling.")
    run(main())


def test_preferred_node_affinity_wins_the_score(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(*(node(f"n{i}", labels={"fast": "yes"} if i == 2 else {}) for i in range(4)))
            pref = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "preference": {"matchExpressions": [
                    {"key": "fast", "operator": "In", "values": ["yes"]}]}}]}}
            await env.pods(*(pod(f"p{i}", cpu="100m", affinity=pref) for i in range(3)))
            for i in range(3):
                assert await env.bound(f"p{i}") == "n2"
    run(main())


def test_taints_and_tolerations(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("ns", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
                            node("ne", taints=[{"key": "maint", "effect": "NoExecute"}]))
            await env.pods(pod("plain"))
            ev = await env.event("plain", "FailedScheduling")
            assert ev["message"] == ("0/2 nodes are available: 2 node(s) had untolerated taint(s). preemption: "
                                     "0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
            await env.pods(
                pod("equal", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db",
                                           "effect": "NoSchedule"}]),
                pod("exists-key", tolerations=[{"key": "maint", "operator": "Exists", "effect": "NoExecute"}]),
                pod("wrong-effect", tolerations=[{"key": "maint", "operator": "Exists", "effect": "NoSchedule"}]),
                pod("wrong-value", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "web"}]),
            )
            assert await env.bound("equal") == "ns"
            assert await env.bound("exists-key") == "ne"
            await env.event("wrong-effect", "FailedScheduling")
            await env.event("wrong-value", "FailedScheduling")
            # An empty key with Exists tolerates everything.
            await env.pods(*(pod(f"all{i}", cpu="1", tolerations=[{"operator": "Exists"}]) for i in range(4)))
            placed = {await env.bound(f"all{i}") for i in range(4)}
            assert placed == {"ns", "ne"}
        async with cluster(tmp_path / "prefer") as env:
            await env.nodes(node("soft", taints=[{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}]),
                            node("clean"))
            await env.pods(*(pod(f"p{i}", cpu="100m") for i in range(3)))
            assert {await env.bound(f"p{i}") for i in range(3)} == {"clean"}
    (tmp_path / "prefer").mkdir()
    run(main())


def test_unschedulable_node_and_its_toleration(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("cordoned", unschedulable=True))
            await env.pods(pod("p"))
            ev = await env.event("p", "FailedScheduling")
            assert ev["message"] == ("0/1 nodes are available: 1 node(s) were unschedulable. preemption: "
                                     "0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
            await env.pods(pod("t", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                                  "effect": "NoSchedule"}]))
            assert await env.bound("t") == "cordoned"
            # Uncordoning is a node change: the parked pod is retried after its back-off.
            n = await env.c.get("nodes", None, "cordoned")
            n["spec"]["unschedulable"] = False
            await env.c.update("nodes", None, n)
            await env.tick(1.0, steps=3)
            assert await env.bound("p") == "cordoned"
    run(main())


def test_host_port_conflict(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("n1"), node("n2"))
            ports = [{"containerPort": 80, "hostPort": 8080}]
            await env.pods(*(pod(f"w{i}", ports=ports) for i in range(3)))
            await until(lambda: env.sched.scheduled == 2)
            placed = [p["spec"].get("nodeName") for p in (await env.c.list("pods", NS))["items"]]
            assert sorted(filter(None, placed)) == ["n1", "n2"]
            pending = next(p["metadata"]["name"] for p in (await env.c.list("pods", NS))["items"]
                           if not p["spec"].get("nodeName"))
            ev = await env.event(pending, "FailedScheduling")
            assert ev["message"] == (
                "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports. "
                "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.")
            # Another protocol or port does not conflict.
            await env.pods(pod("udp", ports=[{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]))
            assert await env.bound("udp")
    run(main())


def test_replicas_of_one_owner_spread_over_nodes(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("a"), node("b"), node("c"))
            await env.pods(*(pod(f"r{i}", owner="rs-1") for i in range(9)))
            await until(lambda: env.sched.scheduled == 9)
            counts = collections.Counter(p["spec"]["nodeName"] for p in (await env.c.list("pods", NS))["items"])
            assert counts == {"a": 3, "b": 3, "c": 3}
    run(main())


def test_no_nodes_then_retry_when_a_node_is_added(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.pods(pod("p", cpu="100m"))
            ev = await env.event("p", "FailedScheduling")
            assert ev["message"] == "no nodes available to schedule pods"
            cond = await env.condition("p")
            assert cond["reason"] == "Unschedulable"
            await env.nodes(node("late"))
            await env.tick(1.0, steps=2)   # the node arrived within the pod's 1 s back-off
            assert await env.bound("p") == "late"
    run(main())


def test_retry_when_capacity_is_freed_and_periodic_flush(tmp_path):
    async def main():
        async with cluster(tmp_path, flush_after=30.0) as env:
            await env.nodes(node("n", cpu="1"))
            await env.pods(pod("first", cpu="800m"))
            await env.bound("first")
            await env.pods(pod("second", cpu="800m"))
            await env.event("second", "FailedScheduling")
            # Nothing changed: a second left alone does not retry the pod (no busy loop).
            await env.tick(5.0)
            assert len(await env.events("second", "FailedScheduling")) == 1
            ev = (await env.events("second", "FailedScheduling"))[0]
            assert ev["count"] == 1
            await env.c.delete("pods", NS, "first", grace_period_seconds=0)
            await env.tick(1.0, steps=2)
            assert await env.bound("second") == "n"
            # A pod that stays unschedulable is retried by the periodic flush; events fold.
            await env.pods(pod("third", cpu="800m"))
            await env.event("third", "FailedScheduling")
            await env.tick(31.0)

            async def folded():
                evs = await env.events("third", "FailedScheduling")
                return len(evs) == 1 and evs[0]["count"] == 2
            await until(folded, message="repeated event folded into count=2")
    run(main())


def test_pods_of_other_schedulers_gated_or_deleting_are_left_alone(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("n"))
            await env.pods(pod("other", schedulerName="my-scheduler"),
                           pod("gated", schedulingGates=[{"name": "example.com/wait"}]),
                           pod("mine"))
            await env.bound("mine")
            await asyncio.sleep(0.1)
            assert not (await env.get("other"))["spec"].get("nodeName")
            assert not (await env.get("gated"))["spec"].get("nodeName")
            g = await env.get("gated")
            g["spec"]["schedulingGates"] = []
            await env.c.update("pods", NS, g)
            assert await env.bound("gated") == "n"
    run(main())


def _pod_term(labels, key="kubernetes.io/hostname"):
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key}


def test_required_pod_anti_affinity_and_affinity(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(*(node(f"n{i}", labels={"topology.kubernetes.io/zone": "za" if i < 2 else "zb"})
                              for i in range(3)))
            anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_pod_term({"app": "db"})]}}
            dbs = []
            for i in range(4):
                p = pod(f"db{i}", affinity=anti)
                p["metadata"]["labels"] = {"app": "db"}
                dbs.append(p)
            await env.pods(*dbs)
            await until(lambda: env.sched.scheduled == 3)
            placed = [p["spec"].get("nodeName") for p in (await env.c.list("pods", NS))["items"]]
            assert sorted(filter(None, placed)) == ["n0", "n1", "n2"]
            pending = next(p["metadata"]["name"] for p in (await env.c.list("pods", NS))["items"]
                           if not p["spec"].get("nodeName"))
            ev = await env.event(pending, "FailedScheduling")
            assert ev["message"] == ("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
                                     "preemption: 0/3 nodes are available: 3 No preemption victims found for "
                                     "incoming pod.")
            # A plain pod the databases' anti-affinity selects cannot join them either.
            intruder = pod("intruder")
            intruder["metadata"]["labels"] = {"app": "db"}
            await env.pods(intruder)
            ev = await env.event("intruder", "FailedScheduling")
            assert ev["message"].startswith(
                "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules.")
            # Affinity to a zone: the first pod of a self-affine group may go anywhere, later ones follow it.
            aff = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                _pod_term({"app": "cache"}, "topology.kubernetes.io/zone")]}}
            first = pod("cache0", affinity=aff)
            first["metadata"]["labels"] = {"app": "cache"}
            await env.pods(first)
            zone = {"n0": "za", "n1": "za", "n2": "zb"}[await env.bound("cache0")]
            await env.pods(*(pod(f"user{i}", affinity=aff) for i in range(3)))
            for i in range(3):
                assert zone == {"n0": "za", "n1": "za", "n2": "zb"}[await env.bound(f"user{i}")]
            lonely = pod("lonely", affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                _pod_term({"app": "nothing"})]}})
            await env.pods(lonely)
            ev = await env.event("lonely", "FailedScheduling")
            assert ev["message"] == ("0/3 nodes are available: 3 node(s) didn't match pod affinity rules. "
                                     "preemption: 0/3 nodes are available: 3 Preemption is not helpful for "
                                     "scheduling.")
    run(main())


def test_topology_spread_constraints(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("a1", labels={"zone": "a"}), node("b1", labels={"zone": "b"}),
                            node("b2", labels={"zone": "b"}), node("nozone"))
            spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                       "labelSelector": {"matchLabels": {"app": "web"}}}]
            pods = []
            for i in range(4):
                p = pod(f"web{i}", topologySpreadConstraints=spread,
                        affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In",
                                                                         "values": ["a", "b"]}]}]}}})
                p["metadata"]["labels"] = {"app": "web"}
                pods.append(p)
            for p in pods:   # one at a time, so each decision sees the previous placements
                await env.pods(p)
                await env.bound(p["metadata"]["name"])
            zones = collections.Counter([(await env.bound(f"web{i}"))[0] for i in range(4)])
            assert zones == {"a": 2, "b": 2}
            # A node without the topology label can never take such a pod.
            await env.c.patch("nodes", None, "a1", {"spec": {"unschedulable": True}})
            for n in ("b1", "b2"):
                await env.c.patch("nodes", None, n, {"spec": {"unschedulable": True}})
            extra = pod("web-x", topologySpreadConstraints=spread)
            extra["metadata"]["labels"] = {"app": "web"}
            await env.pods(extra)
            ev = await env.event("web-x", "FailedScheduling")
            assert ev["message"].startswith(
                "0/4 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required "
                "label), 3 node(s) were unschedulable.")
    run(main())


# ---- volumes ------------------------------------------------------------------------------------

def pvc(name, cls=None, volume=None, bound=False, size="1Gi"):
    obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}
    if cls:
        obj["spec"]["storageClassName"] = cls
    if volume:
        obj["spec"]["volumeName"] = volume
    if bound:
        obj["metadata"]["annotations"] = {"pv.kubernetes.io/bind-completed": "yes"}
    return obj


def pv(name, claim=None, affinity=None, size="1Gi"):
    obj = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
           "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                    "hostPath": {"path": f"/tmp/{name}"}}}
    if claim:
        obj["spec"]["claimRef"] = {"namespace": NS, "name": claim, "kind": "PersistentVolumeClaim"}
    if affinity:
        obj["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [affinity]}]}}
    return obj


def with_claim(p, claim):
    p["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    return p


def test_pv_node_affinity_restricts_nodes(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(*(node(f"n-{z}", labels={"topology.kubernetes.io/zone": z}) for z in "abc"))
            await env.c.create("persistentvolumes", None, pv("vol-b", "data-b", {
                "key": "topology.kubernetes.io/zone", "operator": "In", "values": ["b"]}))
            await env.c.create("persistentvolumeclaims", NS, pvc("data-b", volume="vol-b", bound=True))
            await env.pods(*(with_claim(pod(f"p{i}"), "data-b") for i in range(3)))
            for i in range(3):
                assert await env.bound(f"p{i}") == "n-b"
            await env.c.create("persistentvolumes", None, pv("vol-z", "data-z", {
                "key": "topology.kubernetes.io/zone", "operator": "In", "values": ["z"]}))
            await env.c.create("persistentvolumeclaims", NS, pvc("data-z", volume="vol-z", bound=True))
            await env.pods(with_claim(pod("nowhere"), "data-z"))
            ev = await env.event("nowhere", "FailedScheduling")
            assert ev["message"] == ("0/3 nodes are available: 3 node(s) had volume node affinity conflict. "
                                     "preemption: 0/3 nodes are available: 3 Preemption is not helpful for "
                                     "scheduling.")
            # A local volume pinned by hostname narrows the nodes before filtering.
            await env.c.create("persistentvolumes", None, pv("vol-h", "data-h", {
                "key": "kubernetes.io/hostname", "operator": "In", "values": ["n-c"]}))
            await env.c.create("persistentvolumeclaims", NS, pvc("data-h", volume="vol-h", bound=True))
            await env.pods(with_claim(pod("local"), "data-h"))
            assert await env.bound("local") == "n-c"
    run(main())


def test_missing_and_unbound_immediate_claims(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("n1"), node("n2"))
            await env.pods(with_claim(pod("p"), "missing"))
            ev = await env.event("p", "FailedScheduling")
            assert ev["message"] == ('0/2 nodes are available: persistentvolumeclaim "missing" not found. '
                                     "preemption: 0/2 nodes are available: 2 Preemption is not helpful for "
                                     "scheduling.")
            await env.c.create("persistentvolumeclaims", NS, pvc("missing"))
            await env.tick(1.0, steps=2)
            await env.event("p", "FailedScheduling", messages.fit_error(
                2, prefilter_msg="pod has unbound immediate PersistentVolumeClaims",
                postfilter_msg=messages.preemption(2, (), 2)))
    run(main())


def test_wait_for_first_consumer_claim_gets_selected_node(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("n1", labels={"disk": "ssd"}), node("n2"))
            await env.c.create("storageclasses.storage.k8s.io", None, {
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "wffc"},
                "provisioner": "example.com/fake", "volumeBindingMode": "WaitForFirstConsumer"})
            await env.c.create("persistentvolumeclaims", NS, pvc("data", cls="wffc"))
            await env.pods(with_claim(pod("db", nodeSelector={"disk": "ssd"}), "data"))

            async def annotated():
                c = await env.c.get("persistentvolumeclaims", NS, "data")
                return ((c["metadata"].get("annotations") or {}).get("volume.kubernetes.io/selected-node"))
            assert await until(annotated, message="selected-node annotation") == "n1"
            # The pod waits for the provisioner before it is bound.
            await asyncio.sleep(0.1)
            assert not (await env.get("db"))["spec"].get("nodeName")
            # Play the provisioner and the PV controller.
            await env.c.create("persistentvolumes", None, pv("pvc-data", "data", {
                "key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}))
            c = await env.c.get("persistentvolumeclaims", NS, "data")
            c["spec"]["volumeName"] = "pvc-data"
            c["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = "yes"
            await env.c.update("persistentvolumeclaims", NS, c)
            assert await env.bound("db") == "n1"
    run(main())


def test_wait_for_first_consumer_claim_binds_a_matching_local_volume(tmp_path):
    async def main():
        async with cluster(tmp_path) as env:
            await env.nodes(node("n1"), node("n2"))
            await env.c.create("storageclasses.storage.k8s.io", None, {
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local"},
                "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"})
            await env.c.create("persistentvolumeclaims", NS, pvc("data", cls="local", size="5Gi"))
            await env.pods(with_claim(pod("db"), "data"))
            ev = await env.event("db", "FailedScheduling")
            assert ev["message"] == ("0/2 nodes are available: 2 node(s) didn't find available persistent volumes "
                                     "to bind. preemption: 0/2 nodes are available: 2 Preemption is not helpful "
                                     "for scheduling.")
            # A local volume on n2, large enough, becomes available (as the PV controller reports it).
            vol = pv("local-n2", affinity={"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]},
                     size="10Gi")
            vol["spec"]["storageClassName"] = "local"
            created = await env.c.create("persistentvolumes", None, vol)
            created["status"] = {"phase": "Available"}
            await env.c.update_status("persistentvolumes", None, created)
            await env.tick(1.0, steps=2)

            async def prebound():
                v = await env.c.get("persistentvolumes", None, "local-n2")
                return (v["spec"].get("claimRef") or {}).get("name") == "data"
            await until(prebound, message="PV pre-bound to the claim")
            assert not (await env.get("db"))["spec"].get("nodeName")
            c = await env.c.get("persistentvolumeclaims", NS, "data")
            c["spec"]["volumeName"] = "local-n2"
            c["metadata"]["annotations"] = {"pv.kubernetes.io/bind-completed": "yes"}
            await env.c.update("persistentvolumeclaims", NS, c)
            assert await env.bound("db") == "n2"
    run(main())


# ---- throughput ---------------------------------------------------------------------------------

def test_binds_2000_pending_pods_over_100_nodes(tmp_path):
    async def main():
        store = SqliteStore(str(tmp_path / "s.db"))
        api = Api(store)
        await api.bootstrap()
        c = InProcessClient(api)
        for i in range(100):
            await c.create("nodes", None, node(f"n{i:03}", cpu="32", memory="128Gi"))
        sem = asyncio.Semaphore(64)

        async def mk(i):
            async with sem:
                await c.create("pods", NS, pod(f"p{i}", cpu="100m", memory="64Mi", owner=f"rs-{i % 10}"))
        await asyncio.gather(*(mk(i) for i in range(2000)))
        # Timed from start(): listing the backlog, deciding, binding, recording events.
        sched = Scheduler(c)
        t0 = time.perf_counter()
        await sched.start()
        try:
            await until(lambda: sched.scheduled == 2000, timeout=60)
            rate = 2000 / (time.perf_counter() - t0)
            print(f"\nscheduler: {rate:.0f} pods/s (2000 pending pods, 100 nodes, in-process)")
            counts = collections.Counter(e.node for e in sched.cache.pods.values())
            assert len(counts) == 100 and max(counts.values()) - min(counts.values()) <= 2
            bound = sum(1 for p in (await c.list("pods", NS))["items"] if p["spec"].get("nodeName"))
            assert bound == 2000
            assert rate > 200
        finally:
            await sched.stop()
            await store.close()
    run(main())


def mixed_replica(k):
    """The k-th of a stream of replicas of two ReplicaSets, every other one requesting nothing."""
    owner = "rs-a" if k % 3 else "rs-b"
    requests = {"cpu": "100m", "memory": "64Mi"} if k % 2 else {}
    return pod_info(f"d/p{k}", {
        "metadata": {"name": f"p{k}", "namespace": "d", "uid": f"u{k}",
                     "ownerReferences": [{"kind": "ReplicaSet", "controller": True, "uid": owner}]},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": requests}}]}})


def test_score_memo_changes_no_decision():
    # Scores of nodes unchanged since the last replica are reused; every pick stays the same.
    import random

    from pocketkube.scheduler.cache import Cache
    from pocketkube.scheduler.filters import run_filters
    from pocketkube.scheduler.scoring import ScoreMemo, score, select_host

    def picks(memo):
        cache = Cache()
        for i in range(20):
            cache.set_node({"metadata": {"name": f"n{i}", "labels": {"kubernetes.io/hostname": f"n{i}"}},
                            "spec": {}, "status": {"allocatable": {"cpu": str(2 + i % 3), "memory": "4Gi",
                                                                   "pods": "110"}}})
        rng = random.Random(3)
        out = []
        for k in range(600):
            info = mixed_replica(k)
            feasible = [ni for ni in cache.nodes if run_filters(info, ni) is None]
            node = select_host(feasible, score(info, feasible, cache, memo), rng)
            out.append(node.name)
            cache.assume(info.key, info.uid, node.name, info)
            if k % 50 == 49:  # a node changes under the memo (its labels and capacity)
                n = cache.nodes[k % 20].node
                cache.set_node(dict(n, status={"allocatable": {"cpu": "8", "memory": "4Gi", "pods": "110"}}))
        return out

    assert picks(ScoreMemo()) == picks(None)


def test_replica_scan_picks_what_the_full_pass_picks():
    # The incremental pass over replicas gives the full pass's nodes, in the same order, with
    # the same totals: every pick and every use of the random tie-breaker stays the same,
    # through nodes that change, fill up (the others are scored among themselves) and appear.
    import random

    from pocketkube.scheduler.cache import Cache
    from pocketkube.scheduler.filters import run_filters
    from pocketkube.scheduler.scoring import ReplicaScan, score, select_host

    def node_obj(i, cpu, pods="110"):
        return {"metadata": {"name": f"n{i}", "labels": {"kubernetes.io/hostname": f"n{i}"}},
                "spec": {}, "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": pods}}}

    def picks(scan):
        cache = Cache()
        for i in range(12):
            cache.set_node(node_obj(i, str(2 + i % 3), pods="30" if i == 5 else "110"))
        rng = random.Random(11)
        out, scanned, partial = [], 0, 0
        for k in range(700):
            info = mixed_replica(k)
            got = scan.totals(info, cache, 0) if scan is not None else None
            if got is not None:
                scanned += 1
                partial += len(got[0]) < len(cache.nodes)
                node = select_host(got[0], got[1], rng)
            else:
                feasible = [ni for ni in cache.nodes if run_filters(info, ni) is None]
                node = select_host(feasible, score(info, feasible, cache), rng)
            out.append(node.name)
            cache.assume(info.key, info.uid, node.name, info)
            if k % 40 == 39:   # a pod goes away
                gone = f"d/p{k - 17}"
                if gone in cache.pods:
                    cache.remove_pod(gone)
            if k % 90 == 89:   # a node changes its capacity
                cache.set_node(node_obj((k // 90) % 5, "8"))
            if k == 400:       # a node joins: another node list
                cache.set_node(node_obj(12, "4"))
        return out, scanned, partial

    full, _, _ = picks(None)
    incremental, scanned, partial = picks(ReplicaScan())
    assert incremental == full
    # It answered for every pod, also while n5 was full (30 pods) and left out.
    assert scanned == 700 and partial > 100, (scanned, partial)
    # With no node left that fits, the full pass runs (it explains the failure).
    cache = Cache()
    for i in range(2):
        cache.set_node(node_obj(i, "2", pods="1"))
    scan = ReplicaScan()
    for k in range(2):
        info = mixed_replica(0)
        info.key, info.uid = f"d/full{k}", f"full{k}"
        got = scan.totals(info, cache, 0)
        assert got is not None and len(got[0]) == 2 - k
        cache.assume(info.key, info.uid, got[0][0].name, info)
    assert scan.totals(mixed_replica(0), cache, 0) is None


def test_filter_verdicts_are_judged_again_for_a_changed_or_recreated_node(tmp_path):
    """Replicas of one shape reuse the filters' verdicts on nodes that have not changed since;
    a node deleted and created again under its name is a new node, whatever it was before."""
    async def main():
        async with cluster(tmp_path) as env:
            infos = env.sched.cache.infos
            await env.nodes(node("a", cpu="8"), node("b", cpu="2"))
            await env.pods(pod("p0", cpu="100m", owner="rs1"))
            assert await env.bound("p0") == "a"   # more room: b was judged fit, not chosen
            await env.c.delete("nodes", None, "b")
            await until(lambda: "b" not in infos, message="b gone from the cache")
            await env.nodes(node("b", cpu="2", taints=[{"key": "k", "effect": "NoSchedule"}]))
            await until(lambda: "b" in infos and infos["b"].hard_taints, message="tainted b in the cache")
            await env.c.delete("nodes", None, "a")
            await until(lambda: all(ni.name != "a" for ni in env.sched.cache.nodes), message="a gone from the cache")
            await env.pods(pod("p1", cpu="100m", owner="rs1"))
            ev = await env.event("p1", "FailedScheduling")
            assert ev["message"].startswith("0/1 nodes are available: 1 node(s) had untolerated taint(s).")
            b = await env.c.get("nodes", None, "b")
            b["spec"]["taints"] = []
            await env.c.update("nodes", None, b)
            await env.tick(1.0, steps=3)
            assert await env.bound("p1") == "b"
    run(main())


def test_cache_counts_nodes_with_prefer_no_schedule_taints():
    """Scoring skips the taint pass when no node prefers pods away; the count must follow
    taints added, removed, and nodes going away and coming back."""
    from pocketkube.scheduler.cache import Cache

    def n(tainted):
        taints = [{"key": "k", "effect": "PreferNoSchedule"}] if tainted else []
        return {"metadata": {"name": "a"}, "spec": {"taints": taints}, "status": {}}

    c = Cache()
    counts = []
    for step in (lambda: c.set_node(n(True)), lambda: c.set_node(n(True)), lambda: c.set_node(n(False)),
                 lambda: c.set_node(n(True)), lambda: c.remove_node("a"), lambda: c.set_node(n(False))):
        step()
        counts.append(c.prefer_tainted)
    assert counts == [1, 1, 0, 1, 0, 0]
