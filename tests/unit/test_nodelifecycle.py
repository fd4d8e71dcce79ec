"""Node lifecycle controller: silent nodes go Unknown and get tainted, recovered nodes lose their
taints, and NoExecute taints evict pods after their tolerationSeconds, all on a FakeClock."""

from __future__ import annotations

import asyncio

from pocketkube.agent.simulated import SimulatedNodes
from pocketkube.api.core import Api
from pocketkube.client import STRATEGIC
from pocketkube.client.inprocess import InProcessClient
from pocketkube.clock import FakeClock, parse_rfc3339
from pocketkube.controllers.nodelifecycle import (
    NodeLifecycleController,
    eviction_time,
    tolerates,
    with_default_tolerations,
)
from pocketkube.store.sqlite import SqliteStore
from tests.unit.harness import until

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


def cond(obj, ctype):
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype), None)


def taints(node):
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


class Env:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.clock = FakeClock()

    async def __aenter__(self):
        self.store = SqliteStore(str(self.tmp_path / "s.db"))
        api = Api(self.store, self.clock)
        await api.bootstrap()
        self.c = InProcessClient(api)
        self.stoppers = []
        return self

    async def __aexit__(self, *exc):
        for s in reversed(self.stoppers):
            await s.stop()
        await self.store.close()

    async def controller(self, **kw):
        nlc = NodeLifecycleController(self.c, self.clock, **kw)
        await nlc.start()
        self.stoppers.append(nlc)
        return nlc

    async def node(self, name="n1", ready="True", lease=True):
        now = self.clock.rfc3339()
        conds = [{"type": t, "status": s, "reason": r, "message": m, "lastHeartbeatTime": now,
                  "lastTransitionTime": now}
                 for t, s, r, m in (("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
                                    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
                                    ("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
                                    ("Ready", ready, "KubeletReady", "kubelet is posting ready status"))]
        await self.c.create("nodes", None, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                                            "status": {"conditions": conds if ready else []}})
        if lease:
            await self.c.create("leases", "kube-node-lease", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                         "renewTime": self.clock.rfc3339_micro()}})

    async def running_pod(self, name, node="n1", tolerations=None):
        p = await self.c.create("pods", "default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "tolerations": tolerations or [],
                     "containers": [{"name": "c", "image": "busybox"}]}})
        now = self.clock.rfc3339()
        p["status"].update(phase="Running", conditions=[
            {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")])
        return await self.c.update_status("pods", "default", p)

    async def get(self, res, name, ns=None):
        return await self.c.get(res, ns, name)

    async def events(self, reason):
        items = (await self.c.list("events", None))["items"]
        return [e for e in items if e["reason"] == reason]


def run(coro):
    asyncio.run(coro)


# ---- pure rules -------------------------------------------------------------------------------

def test_toleration_matching_and_defaults():
    unreachable = {"key": UNREACHABLE, "effect": "NoExecute"}
    assert tolerates({"key": UNREACHABLE, "operator": "Exists"}, unreachable)
    assert tolerates({"operator": "Exists"}, unreachable)  # empty key + Exists tolerates everything
    assert not tolerates({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, unreachable)
    kv = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert tolerates(kv, kv)
    assert not tolerates({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoExecute"})

    defaults = with_default_tolerations([], 300)
    assert {(t["key"], t["tolerationSeconds"]) for t in defaults} == {(NOT_READY, 300), (UNREACHABLE, 300)}
    mine = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]
    assert [t["key"] for t in with_default_tolerations(mine, 300)] == [UNREACHABLE, NOT_READY]
    assert with_default_tolerations([{"operator": "Exists"}], 300) == [{"operator": "Exists"}]

    at = lambda taint: 100.0  # noqa: E731
    assert eviction_time([unreachable], with_default_tolerations([], 300), at) == 400.0
    assert eviction_time([unreachable], with_default_tolerations(mine, 300), at) == 110.0
    forever = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]
    assert eviction_time([unreachable], with_default_tolerations(forever, 300), at) is None
    other = {"key": "example.com/maintenance", "effect": "NoExecute"}
    assert eviction_time([unreachable, other], with_default_tolerations(forever, 300), at) == float("-inf")


# ---- the controller ---------------------------------------------------------------------------

def test_silent_node_goes_unknown_and_tainted_then_recovers_with_its_agent(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            clock = env.clock
            agent = SimulatedNodes(env.c, 1, prefix="node", clock=clock)
            await agent.start()
            await env.controller()
            await until(lambda: env.events("RegisteredNode"), message="RegisteredNode event")
            (ev,) = await env.events("RegisteredNode")
            assert ev["message"] == "Node node-0 event: Registered Node node-0 in Controller"
            assert ev["source"] == {"component": "node-controller"}

            # The agent dies: no more lease renewals. After 40 s of silence the node is Unknown.
            await agent.stop()
            clock.advance(39)
            await asyncio.sleep(0.1)
            assert cond(await env.get("nodes", "node-0"), "Ready")["status"] == "True"
            clock.advance(6)  # past the grace period and the next 5 s health check

            async def unknown():
                n = await env.get("nodes", "node-0")
                return n if cond(n, "Ready")["status"] == "Unknown" and \
                    (UNREACHABLE, "NoExecute") in taints(n) else None
            n = await until(unknown, message="node Unknown and tainted")
            for ctype in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
                c = cond(n, ctype)
                assert (c["status"], c["reason"], c["message"]) == \
                    ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
            assert taints(n) == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
            no_execute = next(t for t in n["spec"]["taints"] if t["effect"] == "NoExecute")
            no_schedule = next(t for t in n["spec"]["taints"] if t["effect"] == "NoSchedule")
            assert no_execute["timeAdded"] == clock.rfc3339() and "timeAdded" not in no_schedule
            await until(lambda: env.events("NodeNotReady"), message="NodeNotReady event")
            assert (await env.events("NodeNotReady"))[0]["message"] == "Node node-0 status is now: NodeNotReady"

            # The agent comes back: it posts Ready itself; the controller removes its taints and
            # leaves Ready alone from then on.
            back = SimulatedNodes(env.c, 1, prefix="node", clock=clock)
            await back.start()
            env.stoppers.append(back)

            async def recovered():
                n = await env.get("nodes", "node-0")
                return cond(n, "Ready")["status"] == "True" and not taints(n)
            await until(recovered, message="Ready and untainted")
            for _ in range(12):  # a minute of renewals every 10 s: no flapping
                clock.advance(5)
                await asyncio.sleep(0.02)
            await until(lambda: _lease_fresh(env), message="lease renewed recently")
            n = await env.get("nodes", "node-0")
            assert cond(n, "Ready")["status"] == "True" and not taints(n)
    run(main())


async def _lease_fresh(env):
    lease = await env.get("leases", "node-0", "kube-node-lease")
    return env.clock.now() - parse_rfc3339(lease["spec"]["renewTime"]) <= 10


def test_not_ready_and_cordoned_nodes_get_their_taints(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.node("n1", ready="False")
            await env.c.patch("nodes", None, "n1", {"spec": {"taints": [
                {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}})
            await env.controller()

            async def has(expected):
                return taints(await env.get("nodes", "n1")) == expected
            await until(lambda: has({("dedicated", "NoSchedule"), (NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}),
                        message="not-ready taints")
            # The kubelet reports Ready again; someone cordons the node.
            n = await env.get("nodes", "n1")
            ready = dict(cond(n, "Ready"), status="True", lastTransitionTime=env.clock.rfc3339())
            await env.c.patch("nodes", None, "n1", {"status": {"conditions": [ready]}}, STRATEGIC,
                              subresource="status")
            await env.c.patch("nodes", None, "n1", {"spec": {"unschedulable": True}})
            await until(lambda: has({("dedicated", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule")}),
                        message="cordoned, Ready")
            await env.c.patch("nodes", None, "n1", {"spec": {"unschedulable": None}})
            await until(lambda: has({("dedicated", "NoSchedule")}), message="only the user's taint left")
    run(main())


def test_node_that_never_posted_status_is_marked_after_startup_grace(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.node("silent", ready=None, lease=False)
            await env.controller()
            env.clock.advance(59)
            await asyncio.sleep(0.1)
            assert cond(await env.get("nodes", "silent"), "Ready") is None
            env.clock.advance(6)

            async def marked():
                return cond(await env.get("nodes", "silent"), "Ready")
            c = await until(marked, message="conditions added")
            assert (c["status"], c["reason"], c["message"]) == \
                ("Unknown", "NodeStatusNeverUpdated", "Kubelet never posted node status.")
    run(main())


def test_no_execute_evicts_after_toleration_seconds(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            clock = env.clock
            await env.node("n1")
            await env.node("n2")
            await env.running_pod("quick", tolerations=[
                {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}])
            await env.running_pod("plain")
            await env.running_pod("forever", tolerations=[
                {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}])
            await env.running_pod("elsewhere", node="n2")
            await env.controller()

            async def advance(seconds):
                """Move the clock in 20 s steps; n2 keeps renewing its lease, n1 stays silent."""
                end = clock.now() + seconds
                while clock.now() < end:
                    clock.advance(min(20, end - clock.now()))
                    lease = await env.get("leases", "n2", "kube-node-lease")
                    lease["spec"]["renewTime"] = clock.rfc3339_micro()
                    await env.c.update("leases", "kube-node-lease", lease)
                    await asyncio.sleep(0.01)
            await advance(46)

            async def tainted():
                return (UNREACHABLE, "NoExecute") in taints(await env.get("nodes", "n1"))
            await until(tainted, message="n1 tainted")
            (added,) = [t["timeAdded"] for t in (await env.get("nodes", "n1"))["spec"]["taints"]
                        if t["effect"] == "NoExecute"]
            t0 = parse_rfc3339(added)
            assert not taints(await env.get("nodes", "n2"))

            async def pod_ready(name):
                return cond(await env.get("pods", name, "default"), "Ready")["status"]
            async def pod_warnings():
                return [e for e in await env.events("NodeNotReady") if e["involvedObject"]["kind"] == "Pod"]
            await until(lambda: _is(_names(pod_warnings()), {"quick", "plain", "forever"}),
                        message="NodeNotReady warnings on the pods of n1")
            for name in ("quick", "plain", "forever"):
                assert await pod_ready(name) == "False"
            assert await pod_ready("elsewhere") == "True"
            warnings = await pod_warnings()
            assert all(e["type"] == "Warning" and e["message"] == "Node is not ready" for e in warnings)

            async def evicted(name):
                return bool((await env.get("pods", name, "default"))["metadata"].get("deletionTimestamp"))
            await advance(t0 + 9 - clock.now())
            await asyncio.sleep(0.1)
            assert not await evicted("quick")
            await advance(1)
            await until(lambda: evicted("quick"), message="quick evicted after 10 s")
            quick = await env.get("pods", "quick", "default")
            dt = cond(quick, "DisruptionTarget")
            assert (dt["status"], dt["reason"], dt["message"]) == \
                ("True", "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
            (ev,) = [e for e in await env.events("TaintManagerEviction") if e["involvedObject"]["name"] == "quick"]
            assert ev["message"] == "Marking for deletion Pod default/quick"
            assert ev["source"] == {"component": "taint-eviction-controller"}
            assert not await evicted("plain")

            await advance(t0 + 299 - clock.now())
            await asyncio.sleep(0.1)
            assert not await evicted("plain")
            await advance(1)
            await until(lambda: evicted("plain"), message="plain evicted after the default 300 s")
            await advance(600)
            await asyncio.sleep(0.1)
            assert not await evicted("forever")
            assert not await evicted("elsewhere")
    run(main())


async def _is(aw, value):
    return (await aw) == value


async def _names(aw):
    return {e["involvedObject"]["name"] for e in await aw}


def test_untolerated_no_execute_taint_evicts_at_once_and_removal_cancels(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.node("n1")
            await env.running_pod("intolerant")
            await env.running_pod("patient", tolerations=[
                {"key": "example.com/maintenance", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 60}])
            await env.controller()
            await env.c.patch("nodes", None, "n1", {"spec": {"taints": [
                {"key": "example.com/maintenance", "effect": "NoExecute"}]}})

            async def evicted(name):
                return bool((await env.get("pods", name, "default"))["metadata"].get("deletionTimestamp"))
            await until(lambda: evicted("intolerant"), message="evicted at once")
            # The taint goes away before the minute is up: the scheduled eviction is cancelled.
            env.clock.advance(30)
            await env.c.patch("nodes", None, "n1", {"spec": {"taints": None}})

            async def cancelled():
                return [e for e in await env.events("TaintManagerEviction")
                        if e["message"] == "Cancelling deletion of Pod default/patient"]
            await until(cancelled, message="cancel event")
            env.clock.advance(60)
            await asyncio.sleep(0.1)
            assert not await evicted("patient")
    run(main())
