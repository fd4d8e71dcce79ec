"""Simulated nodes: registration, leases, pods Running with kubelet-shaped status, exits and
restarts on the injected clock, graceful deletion, recovery after being marked Unknown."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes.client.models import V1Lease, V1Node, V1Pod

from pocketkube.agent.simulated import (
    EXIT_AFTER_ANNOTATION,
    EXIT_CODE_ANNOTATION,
    SimulatedNodes,
    go_duration,
    parse_duration,
)
from pocketkube.api.core import Api
from pocketkube.client import STRATEGIC
from pocketkube.client.inprocess import InProcessClient
from pocketkube.clock import FakeClock
from pocketkube.store.sqlite import SqliteStore
from tests.unit.harness import until


class Env:
    def __init__(self, tmp_path, clock):
        self.tmp_path = tmp_path
        self.clock = clock

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

    async def nodes(self, count, **kw) -> SimulatedNodes:
        sim = SimulatedNodes(self.c, count, clock=self.clock, **kw)
        await sim.start()
        self.stoppers.append(sim)
        return sim

    async def pod(self, name, node, annotations=None, restart="Always", **spec):
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "annotations": annotations or {}},
                "spec": {"nodeName": node, "restartPolicy": restart,
                         "containers": [{"name": "c", "image": "busybox:1.36"}], **spec}}
        return await self.c.create("pods", "default", body)

    async def get_pod(self, name):
        return await self.c.get("pods", "default", name)

    async def phase(self, name):
        return (await self.get_pod(name)).get("status", {}).get("phase")

    async def container(self, name, index=0):
        st = (await self.get_pod(name)).get("status", {})
        cs = st.get("containerStatuses") or []
        return cs[index] if len(cs) > index else {}


def run(coro):
    asyncio.run(coro)


def cond(obj, ctype):
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == ctype), None)


def test_durations():
    assert parse_duration("5s") == 5
    assert parse_duration("1m30s") == 90
    assert parse_duration("250ms") == 0.25
    assert parse_duration("2h") == 7200
    assert parse_duration("7") == 7
    assert parse_duration("soon") is None and parse_duration("") is None
    assert [go_duration(s) for s in (10, 80, 300, 3725)] == ["10s", "1m20s", "5m0s", "1h2m5s"]


def test_nodes_register_ready_with_leases_renewed_on_the_clock(tmp_path):
    async def main():
        clock = FakeClock()
        async with Env(tmp_path, clock) as env:
            await env.nodes(3)
            nodes = (await env.c.list("nodes"))["items"]
            assert sorted(n["metadata"]["name"] for n in nodes) == ["sim-0", "sim-1", "sim-2"]
            n = await env.c.get("nodes", None, "sim-1")
            V1Node.from_dict(n)  # the official client accepts it (every required nodeInfo field)
            meta, status = n["metadata"], n["status"]
            assert meta["labels"]["type"] == "simulated"
            assert meta["labels"]["kubernetes.io/hostname"] == "sim-1"
            assert meta["labels"]["kubernetes.io/os"] == "linux" and meta["labels"]["kubernetes.io/arch"] == "amd64"
            assert meta["annotations"]["pocketkube.dev/simulated"] == "true"
            assert status["capacity"]["pods"] == "110" and status["allocatable"]["cpu"] == "32"
            assert [c["type"] for c in status["conditions"]] == \
                ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
            ready = cond(n, "Ready")
            assert (ready["status"], ready["reason"], ready["message"]) == \
                ("True", "KubeletReady", "kubelet is posting ready status")
            addrs = {a["type"]: a["address"] for a in status["addresses"]}
            assert addrs["Hostname"] == "sim-1" and addrs["InternalIP"].startswith("10.244.")
            assert len({(await env.c.get("nodes", None, f"sim-{i}"))["spec"]["podCIDR"] for i in range(3)}) == 3

            lease = await env.c.get("leases", "kube-node-lease", "sim-1")
            V1Lease.from_dict(lease)
            assert lease["spec"]["holderIdentity"] == "sim-1" and lease["spec"]["leaseDurationSeconds"] == 40
            assert lease["metadata"]["ownerReferences"][0] == {"apiVersion": "v1", "kind": "Node", "name": "sim-1",
                                                               "uid": meta["uid"]}
            first = lease["spec"]["renewTime"]
            clock.advance(10)
            for i in range(3):
                await until(lambda i=i: env.c.get("leases", "kube-node-lease", f"sim-{i}"), message="lease")

            async def renewed(i):
                return (await env.c.get("leases", "kube-node-lease", f"sim-{i}"))["spec"]["renewTime"] != first
            for i in range(3):
                await until(lambda i=i: renewed(i), message=f"lease of sim-{i} renewed")
    run(main())


def test_pods_run_ready_with_unique_ips_and_kubelet_shaped_status(tmp_path):
    async def main():
        async with Env(tmp_path, FakeClock()) as env:
            await env.nodes(2)
            for i in range(20):
                await env.pod(f"p{i}", f"sim-{i % 2}")

            async def all_running():
                pods = (await env.c.list("pods", "default"))["items"]
                return len(pods) == 20 and all(p["status"].get("phase") == "Running" for p in pods)
            await until(all_running, message="pods Running")
            pods = (await env.c.list("pods", "default"))["items"]
            assert len({p["status"]["podIP"] for p in pods}) == 20
            for p in pods:
                V1Pod.from_dict(p)
                node = await env.c.get("nodes", None, p["spec"]["nodeName"])
                st = p["status"]
                assert st["podIP"].startswith(node["spec"]["podCIDR"].rsplit(".", 1)[0] + ".")
                assert st["podIPs"] == [{"ip": st["podIP"]}]
                assert st["hostIP"] == node["status"]["addresses"][0]["address"]
                assert st["startTime"] and st["qosClass"] == "BestEffort"
                assert [c["type"] for c in st["conditions"]] == \
                    ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
                assert all(c["status"] == "True" for c in st["conditions"])
                (cs,) = st["containerStatuses"]
                assert cs["name"] == "c" and cs["ready"] is True and cs["started"] is True
                assert cs["restartCount"] == 0 and cs["image"] == "busybox:1.36"
                assert cs["imageID"].startswith("simulated://") and cs["containerID"].startswith("simulated://")
                assert "startedAt" in cs["state"]["running"] and cs["lastState"] == {}
    run(main())


def test_our_own_status_write_is_not_synced_again_but_anyone_elses_change_is(tmp_path):
    async def main():
        async with Env(tmp_path, FakeClock()) as env:
            sim = await env.nodes(1)
            for i in range(5):
                await env.pod(f"p{i}", "sim-0")
            await until(lambda: sim.stats["echoes"] == 5, message="each pod's status write seen back once")
            assert sim.stats["status_writes"] == 5
            # The status given up to the API is the watchers' object as it is: the same values,
            # of the same types, as a fresh decode of what was stored.
            for i in range(5):
                assert sim._pod_informer.get(f"default/p{i}") == await env.get_pod(f"p{i}")
            # Another writer marks a pod not ready (as the node lifecycle controller does): that
            # update is not ours, so the pod is synced and its kubelet status posted again.
            pod = await env.get_pod("p0")
            pod["status"]["conditions"] = [dict(c, status="False") if c["type"] == "Ready" else c
                                           for c in pod["status"]["conditions"]]
            await env.c.update_status("pods", "default", pod)

            async def ready_again():
                return cond(await env.get_pod("p0"), "Ready")["status"] == "True"
            await until(ready_again, message="p0 Ready again")
            await until(lambda: sim.stats["echoes"] == 6, message="that write seen back in turn")
            assert sim.stats["status_writes"] == 6
    run(main())


def test_exit_after_finishes_pods_per_restart_policy(tmp_path):
    async def main():
        clock = FakeClock()
        async with Env(tmp_path, clock) as env:
            await env.nodes(1)
            await env.pod("ok", "sim-0", {EXIT_AFTER_ANNOTATION: "5s"}, restart="Never")
            await env.pod("bad", "sim-0", {EXIT_AFTER_ANNOTATION: "5s", EXIT_CODE_ANNOTATION: "3"}, restart="Never")
            await env.pod("job", "sim-0", {EXIT_AFTER_ANNOTATION: "5s"}, restart="OnFailure")
            await env.pod("deadline", "sim-0", restart="Never", activeDeadlineSeconds=7)
            for name in ("ok", "bad", "job", "deadline"):
                await until(lambda name=name: _is(env.phase(name), "Running"), message=f"{name} started")
            clock.advance(4.9)
            await asyncio.sleep(0.1)
            assert await env.phase("ok") == "Running"
            clock.advance(0.1)
            await until(lambda: _is(env.phase("ok"), "Succeeded"), message="ok Succeeded")
            await until(lambda: _is(env.phase("bad"), "Failed"), message="bad Failed")
            await until(lambda: _is(env.phase("job"), "Succeeded"), message="job Succeeded")
            ok, bad = await env.get_pod("ok"), await env.get_pod("bad")
            V1Pod.from_dict(bad)
            term = ok["status"]["containerStatuses"][0]["state"]["terminated"]
            assert (term["exitCode"], term["reason"]) == (0, "Completed")
            assert ok["status"]["containerStatuses"][0]["ready"] is False
            assert (cond(ok, "Ready")["status"], cond(ok, "Ready")["reason"]) == ("False", "PodCompleted")
            assert (cond(ok, "Initialized")["status"], cond(ok, "Initialized")["reason"]) == ("True", "PodCompleted")
            assert cond(ok, "PodReadyToStartContainers")["status"] == "False"
            term = bad["status"]["containerStatuses"][0]["state"]["terminated"]
            assert (term["exitCode"], term["reason"]) == (3, "Error")
            assert cond(bad, "ContainersReady")["reason"] == "PodFailed"
            clock.advance(2)
            await until(lambda: _is(env.phase("deadline"), "Failed"), message="deadline exceeded")
            d = await env.get_pod("deadline")
            assert d["status"]["reason"] == "DeadlineExceeded"
            assert d["status"]["message"] == "Pod was active on the node longer than the specified deadline"
            assert d["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    run(main())


async def _is(aw, value):
    return (await aw) == value


def test_restarts_follow_restart_policy_with_crash_loop_back_off(tmp_path):
    async def main():
        clock = FakeClock()
        async with Env(tmp_path, clock) as env:
            await env.nodes(1)
            crash = await env.pod("crash", "sim-0", {EXIT_AFTER_ANNOTATION: "5s", EXIT_CODE_ANNOTATION: "1"},
                                  restart="OnFailure")
            await env.pod("loop", "sim-0", {EXIT_AFTER_ANNOTATION: "5s"}, restart="Always")
            for name in ("crash", "loop"):
                await until(lambda name=name: _is(env.phase(name), "Running"), message=f"{name} Running")

            async def restarts(name):
                return (await env.container(name)).get("restartCount")
            clock.advance(5)  # first exit: restarted at once
            await until(lambda: _is(restarts("crash"), 1), message="first restart")
            await until(lambda: _is(restarts("loop"), 1), message="Always restarts a clean exit too")
            cs = await env.container("crash")
            assert "running" in cs["state"] and cs["ready"] is True
            assert cs["lastState"]["terminated"]["exitCode"] == 1 and cs["lastState"]["terminated"]["reason"] == "Error"
            assert (await env.container("loop"))["lastState"]["terminated"]["reason"] == "Completed"

            clock.advance(5)  # second exit: 10 s of back-off
            await until(lambda: _has_waiting(env, "crash"), message="CrashLoopBackOff")
            cs = await env.container("crash")
            uid = crash["metadata"]["uid"]
            assert cs["state"]["waiting"] == {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 10s restarting failed container=c pod=crash_default({uid})"}
            assert cs["restartCount"] == 1 and cs["ready"] is False
            assert cs["lastState"]["terminated"]["finishedAt"] == clock.rfc3339()  # the exit just now
            pod = await env.get_pod("crash")
            assert pod["status"]["phase"] == "Running"
            assert (cond(pod, "Ready")["status"], cond(pod, "Ready")["reason"]) == ("False", "ContainersNotReady")
            assert cond(pod, "Ready")["message"] == "containers with unready status: [c]"
            clock.advance(10)
            await until(lambda: _is(restarts("crash"), 2), message="restart after back-off")
            assert "running" in (await env.container("crash"))["state"]
    run(main())


async def _has_waiting(env, name):
    return "waiting" in (await env.container(name)).get("state", {})


def test_graceful_deletion_finishes_promptly(tmp_path):
    async def main():
        async with Env(tmp_path, FakeClock()) as env:
            await env.nodes(1)
            await env.pod("gone", "sim-0")
            await until(lambda: _is(env.phase("gone"), "Running"), message="Running")
            deleted = await env.c.delete("pods", "default", "gone")
            assert deleted["metadata"]["deletionTimestamp"]  # graceful: 30 s by default

            async def absent():
                try:
                    await env.get_pod("gone")
                    return False
                except Exception:
                    return True
            await until(absent, message="pod removed")  # well before 30 s of any clock
    run(main())


def test_deleted_pod_held_by_a_finalizer_ends_in_a_terminal_phase(tmp_path):
    """As the kubelet: a deleted pod that finalizers keep around shows how it ended."""
    async def main():
        async with Env(tmp_path, FakeClock()) as env:
            await env.nodes(1)
            await env.pod("held", "sim-0")
            await env.c.patch("pods", "default", "held", {"metadata": {"finalizers": ["example.com/hold"]}})
            await until(lambda: _is(env.phase("held"), "Running"), message="Running")
            await env.c.delete("pods", "default", "held")
            await until(lambda: _is(env.phase("held"), "Failed"), message="Failed")
            term = (await env.container("held"))["state"]["terminated"]
            assert term["exitCode"] == 143 and term["reason"] == "Error"
            await env.c.patch("pods", "default", "held", {"metadata": {"finalizers": None}})

            async def absent():
                try:
                    await env.get_pod("held")
                    return False
                except Exception:
                    return True
            await until(absent, message="pod removed once its finalizer is")
    run(main())


def test_node_marked_unknown_is_posted_ready_again(tmp_path):
    async def main():
        async with Env(tmp_path, FakeClock()) as env:
            await env.nodes(1)
            n = await env.c.get("nodes", None, "sim-0")
            unknown = dict(cond(n, "Ready"), status="Unknown", reason="NodeStatusUnknown",
                           message="Kubelet stopped posting node status.")
            await env.c.patch("nodes", None, "sim-0", {"status": {"conditions": [unknown]}}, STRATEGIC,
                              subresource="status")

            async def ready():
                return cond(await env.c.get("nodes", None, "sim-0"), "Ready")["status"] == "True"
            await until(ready, message="Ready again")
            assert cond(await env.c.get("nodes", None, "sim-0"), "Ready")["reason"] == "KubeletReady"
    run(main())


def test_restart_adopts_running_pods(tmp_path):
    async def main():
        clock = FakeClock()
        async with Env(tmp_path, clock) as env:
            first = SimulatedNodes(env.c, 1, clock=clock)
            await first.start()
            await env.pod("a", "sim-0", {EXIT_AFTER_ANNOTATION: "20s"}, restart="Never")
            await until(lambda: _is(env.phase("a"), "Running"), message="Running")
            before = await env.get_pod("a")
            await first.stop()
            clock.advance(10)
            await env.nodes(1)  # a new agent for the same node
            await env.pod("b", "sim-0")
            await until(lambda: _is(env.phase("b"), "Running"), message="b Running")
            after = await env.get_pod("a")
            assert after["status"]["podIP"] == before["status"]["podIP"]
            assert after["status"]["containerStatuses"] == before["status"]["containerStatuses"]
            assert (await env.get_pod("b"))["status"]["podIP"] != before["status"]["podIP"]
            clock.advance(10)  # the exit keeps its schedule across the restart
            await until(lambda: _is(env.phase("a"), "Succeeded"), message="a Succeeded")
    run(main())


def test_restart_keeps_crash_loop_and_finished_containers(tmp_path):
    async def main():
        clock = FakeClock()
        async with Env(tmp_path, clock) as env:
            first = SimulatedNodes(env.c, 1, clock=clock)
            await first.start()
            await env.pod("crash", "sim-0", {EXIT_AFTER_ANNOTATION: "5s", EXIT_CODE_ANNOTATION: "2"},
                          restart="OnFailure")
            await until(lambda: _is(env.phase("crash"), "Running"), message="Running")
            clock.advance(5)
            clock.advance(5)  # second exit: in back-off until +20
            await until(lambda: _has_waiting(env, "crash"), message="CrashLoopBackOff")
            await first.stop()
            await env.nodes(1)
            clock.advance(5)
            await asyncio.sleep(0.1)
            assert "waiting" in (await env.container("crash"))["state"]  # still backing off
            clock.advance(5)
            await until(lambda: _is(_restart_count(env, "crash"), 2), message="restarted after back-off")
    run(main())


async def _restart_count(env, name):
    return (await env.container(name)).get("restartCount")


def test_hundreds_of_nodes_and_pods(tmp_path):
    async def main():
        async with Env(tmp_path, FakeClock()) as env:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await env.nodes(500)
            assert loop.time() - t0 < 10
            nodes = (await env.c.list("nodes"))["items"]
            assert len(nodes) == 500 and all(cond(n, "Ready")["status"] == "True" for n in nodes)
            sem = asyncio.Semaphore(32)

            async def mk(i):
                async with sem:
                    await env.pod(f"bulk-{i}", f"sim-{i % 50}")
            await asyncio.gather(*(mk(i) for i in range(1000)))

            async def all_running():
                pods = (await env.c.list("pods", "default"))["items"]
                return sum(p["status"].get("phase") == "Running" for p in pods) == 1000
            await until(all_running, timeout=30, message="1000 pods Running")
            pods = (await env.c.list("pods", "default"))["items"]
            assert len({p["status"]["podIP"] for p in pods}) == 1000
    run(main())


@pytest.mark.parametrize("count,start", [(3, 7)])
def test_names_follow_prefix_and_start_index(tmp_path, count, start):
    async def main():
        async with Env(tmp_path, FakeClock()) as env:
            sim = await env.nodes(count, prefix="kwok", start_index=start)
            assert sim.names == ["kwok-7", "kwok-8", "kwok-9"]
            got = sorted(n["metadata"]["name"] for n in (await env.c.list("nodes"))["items"])
            assert got == sim.names
    run(main())
