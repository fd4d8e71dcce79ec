"""Nodes as kubectl sees them: a second agent process joins and gets pods, dies and goes NotReady;
simulated nodes take thousands of pods."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.conftest import kill_agent, node_ready, start_agent, start_cluster, stop_cluster, wait_until


@pytest.fixture
def small_grace_cluster(tmp_path):
    c = start_cluster(str(tmp_path / "data"), ["--no-node", "--node-monitor-grace-period", "3"])
    yield c
    stop_cluster(c)


def test_second_agent_gets_pods_and_goes_notready_when_killed(small_grace_cluster, tmp_path):
    c = small_grace_cluster
    agent = start_agent(c, "joined-1", str(tmp_path / "agent"))
    try:
        wait_until(lambda: node_ready(c, "joined-1") == "True", 30, message="joined node Ready")
        c.kubectl("run", "hello", "--image=busybox", "--restart=Never", "--command", "--",
                  "sh", "-c", "echo hello from the agent; sleep 1")
        wait_until(lambda: c.kubectl_json("get", "pod", "hello").get("status", {}).get("phase") == "Succeeded",
                   60, message="pod Succeeded")
        pod = c.kubectl_json("get", "pod", "hello")
        assert pod["spec"]["nodeName"] == "joined-1"
        assert "hello from the agent" in c.kubectl("logs", "hello").stdout
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()
        wait_until(lambda: node_ready(c, "joined-1") == "Unknown", 30, message="node Unknown")
        out = c.kubectl("get", "node", "joined-1").stdout.splitlines()[1].split()
        assert out[1] == "NotReady"
        taints = {t["key"] for t in c.kubectl_json("get", "node", "joined-1")["spec"].get("taints", [])}
        assert "node.kubernetes.io/unreachable" in taints
    finally:
        kill_agent(agent)


def test_simulated_nodes_take_thousands_of_pods(tmp_path):
    c = start_cluster(str(tmp_path / "data"), ["--no-node", "--simulated-nodes", "20"])
    try:
        wait_until(lambda: len(c.kubectl("get", "nodes", "-o", "name").stdout.split()) == 20, 30,
                   message="20 simulated nodes")
        items = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"sim-pod-{i}", "labels": {"bulk": "yes"}},
                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}} for i in range(2000)]
        # Multi-document YAML (JSON documents are YAML): a v1 List would need /openapi/v2.
        c.kubectl("create", "-f", "-", input="\n---\n".join(json.dumps(i) for i in items), timeout=300)

        def all_running():
            pods = c.kubectl_json("get", "pods", "-l", "bulk=yes")["items"]
            return sum(1 for p in pods if p.get("status", {}).get("phase") == "Running") == 2000
        wait_until(all_running, 120, interval=1, message="2000 pods Running")
        pods = c.kubectl_json("get", "pods", "-l", "bulk=yes")["items"]
        per_node: dict[str, int] = {}
        for p in pods:
            per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
            assert p["status"]["podIP"]
        assert len(per_node) == 20 and max(per_node.values()) <= 110
        assert len({p["status"]["podIP"] for p in pods}) == 2000
    finally:
        stop_cluster(c)
