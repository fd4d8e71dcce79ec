"""The agent's Node: registered from the real machine, a Lease renewed every 10 s on the clock,
Ready again after the control plane marked it Unknown, registered again if deleted."""

from __future__ import annotations

import os

from kubernetes.client.models import V1Lease, V1Node

from pocketkube.api.quantity import parse_quantity
from pocketkube.client import STRATEGIC
from tests.unit.test_agent import NODE, Env, cond, run, until


def test_node_registers_with_machine_capacity_and_system_info(tmp_path):
    async def main():
        async with Env(tmp_path, labels={"disk": "ssd"}, log_port=12345) as env:
            n = await env.c.get("nodes", None, NODE)
            V1Node.from_dict(n)   # every field the official client requires
            labels = n["metadata"]["labels"]
            assert labels["kubernetes.io/hostname"] == NODE and labels["kubernetes.io/os"] == "linux"
            assert labels["beta.kubernetes.io/os"] == "linux"
            assert labels["kubernetes.io/arch"] == labels["beta.kubernetes.io/arch"] in ("amd64", "arm64")
            assert labels["disk"] == "ssd"
            st = n["status"]
            assert st["capacity"]["cpu"] == str(os.cpu_count())
            assert st["capacity"]["pods"] == "110" and st["capacity"]["hugepages-2Mi"] == "0"
            assert st["capacity"]["memory"].endswith("Ki") and st["capacity"]["ephemeral-storage"].endswith("Ki")
            assert parse_quantity(st["allocatable"]["memory"]) < parse_quantity(st["capacity"]["memory"])
            assert [c["type"] for c in st["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
            ready = cond(n, "Ready")
            assert (ready["status"], ready["reason"], ready["message"]) == \
                ("True", "KubeletReady", "kubelet is posting ready status")
            assert all(c["status"] == "False" for c in st["conditions"][:3])
            addrs = {a["type"]: a["address"] for a in st["addresses"]}
            assert addrs == {"InternalIP": env.agent.host_ip, "Hostname": NODE}
            info = st["nodeInfo"]
            assert info["kubeletVersion"].startswith("v1.") and info["operatingSystem"] == "linux"
            assert info["containerRuntimeVersion"] == "pocketkube-process://0.1.0"
            assert info["machineID"] and info["bootID"] and info["systemUUID"] and info["kernelVersion"]
            assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 12345}}
            if env.rt.isolated:
                assert n["spec"]["podCIDR"] == env.rt.node_cidr
            await env.agent.recorder.flush()
            reasons = [e["reason"] for e in (await env.c.list("events", "default"))["items"]
                       if e["involvedObject"]["kind"] == "Node"]
            assert "Starting" in reasons and "NodeReady" in reasons
    run(main())


def test_lease_is_renewed_on_the_clock(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            node = await env.c.get("nodes", None, NODE)
            lease = await env.c.get("leases", "kube-node-lease", NODE)
            V1Lease.from_dict(lease)
            assert lease["spec"]["holderIdentity"] == NODE and lease["spec"]["leaseDurationSeconds"] == 40
            assert lease["metadata"]["ownerReferences"] == [
                {"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": node["metadata"]["uid"]}]
            first = lease["spec"]["renewTime"]
            env.clock.advance(10)

            async def renewed():
                return (await env.c.get("leases", "kube-node-lease", NODE))["spec"]["renewTime"] != first
            await until(renewed, message="lease renewed")
            # Deleted under us: the next renewal creates it again.
            await env.c.delete("leases", "kube-node-lease", NODE)
            env.clock.advance(10)

            async def back():
                try:
                    return await env.c.get("leases", "kube-node-lease", NODE)
                except Exception:
                    return None
            await until(back, message="lease recreated")
    run(main())


def test_node_marked_unknown_is_posted_ready_again(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            n = await env.c.get("nodes", None, NODE)
            beat = cond(n, "Ready")["lastHeartbeatTime"]
            unknown = dict(cond(n, "Ready"), status="Unknown", reason="NodeStatusUnknown",
                           message="Kubelet stopped posting node status.")
            await env.c.patch("nodes", None, NODE, {"status": {"conditions": [unknown]}}, STRATEGIC,
                              subresource="status")

            async def ready():
                c = cond(await env.c.get("nodes", None, NODE), "Ready")
                return c if c["status"] == "True" else None
            c = await until(ready, message="Ready again")
            assert c["reason"] == "KubeletReady"
            # Nothing changed: a heartbeat only every five minutes.
            env.clock.advance(60)
            n = await env.c.get("nodes", None, NODE)
            env.clock.advance(240)

            async def beat_moved():
                return cond(await env.c.get("nodes", None, NODE), "Ready")["lastHeartbeatTime"] != \
                    cond(n, "Ready")["lastHeartbeatTime"]
            await until(beat_moved, message="five-minute heartbeat")
            assert beat
    run(main())


def test_deleted_node_is_registered_again(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            old = await env.c.get("nodes", None, NODE)
            await env.c.delete("nodes", None, NODE)
            env.clock.advance(10)

            async def again():
                try:
                    n = await env.c.get("nodes", None, NODE)
                except Exception:
                    return None
                return n if n["metadata"]["uid"] != old["metadata"]["uid"] else None
            n = await until(again, message="node registered again")
            assert cond(n, "Ready")["status"] == "True"
    run(main())
