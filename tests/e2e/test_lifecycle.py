"""`pocketkube up` as a process: fast start, clean stop, restart with the same state, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import start_cluster, stop_cluster, wait_until


def test_sigterm_stops_cleanly_and_restart_keeps_state_and_credentials(tmp_path):
    data = str(tmp_path / "data")
    c = start_cluster(data)
    c.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep", "namespace": "default"},
         "data": {"a": "1"}}))
    token = c.token
    with open(os.path.join(data, "ca.crt")) as f:
        ca = f.read()
    t = time.monotonic()
    c.proc.send_signal(signal.SIGTERM)
    assert c.proc.wait(10) == 0
    assert time.monotonic() - t < 5
    c2 = start_cluster(data)
    try:
        assert c2.token == token
        with open(os.path.join(data, "ca.crt")) as f:
            assert f.read() == ca
        assert c2.kubectl_json("get", "cm", "keep", "-n", "default")["data"] == {"a": "1"}
    finally:
        stop_cluster(c2)


def test_first_start_makes_certificates_outside_the_server_process(tmp_path):
    """The certificates are made by a child process: the server never loads cryptography (its
    idle memory), and the keys are the owner's only, in a directory that is too."""
    data = str(tmp_path / "data")
    c = start_cluster(data)
    try:
        with open(f"/proc/{c.proc.pid}/maps") as f:
            maps = f.read()
        assert "/cryptography/" not in maps
        for name in ("ca.key", "server.key"):
            assert os.stat(os.path.join(data, name)).st_mode & 0o777 == 0o600
        assert os.stat(data).st_mode & 0o077 == 0
        assert c.kubectl_json("get", "ns", "default")["metadata"]["name"] == "default"
    finally:
        stop_cluster(c)


def test_acknowledged_write_survives_kill_9(tmp_path):
    data = str(tmp_path / "data")
    c = start_cluster(data)
    out = c.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "durable", "namespace": "default"}}))
    assert "created" in out.stdout
    os.killpg(c.proc.pid, signal.SIGKILL)
    c.proc.wait()
    c2 = start_cluster(data)
    try:
        assert c2.kubectl_json("get", "cm", "durable", "-n", "default")["metadata"]["name"] == "durable"
    finally:
        stop_cluster(c2)


def test_pocketkube_kubectl_subcommand(cluster):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.run([sys.executable, "-m", "pocketkube", "--data-dir", cluster.data_dir, "kubectl",
                        "get", "ns", "kube-system", "-o", "name"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "namespace/kube-system"


def test_protobuf_generators_get_a_clear_415(cluster):
    p = cluster.kubectl("create", "namespace", "proto-ns", check=False)
    assert p.returncode != 0
    assert "UnsupportedMediaType" in p.stderr and "--dry-run=client -o yaml | kubectl apply -f -" in p.stderr
    # The documented alternative works.
    gen = cluster.kubectl("create", "namespace", "proto-ns", "--dry-run=client", "-o", "yaml").stdout
    cluster.kubectl("apply", "-f", "-", input=gen)
    assert cluster.kubectl("get", "ns", "proto-ns", "-o", "name").stdout.strip() == "namespace/proto-ns"


def test_deletecollection(cluster, ns):
    from kubernetes import client
    with cluster.client() as api_client:
        core = client.CoreV1Api(api_client)
        for i in range(3):
            core.create_namespaced_config_map(ns, {"metadata": {"name": f"d{i}", "labels": {"grp": "x" if i < 2 else "y"}}})
        core.delete_collection_namespaced_config_map(ns, label_selector="grp=x")
        assert [c.metadata.name for c in core.list_namespaced_config_map(ns).items] == ["d2"]


def test_controllers_as_their_own_process(tmp_path):
    """`pocketkube controllers --kubeconfig F` runs the scheduler and controllers against a server
    that runs none (`up --no-controllers`): a Deployment rolls out, a restarted controllers
    process picks up what changed while it was away, and SIGTERM stops it cleanly."""
    c = start_cluster(str(tmp_path / "data"), ["--no-node", "--no-controllers", "--simulated-nodes", "2"])

    def start_controllers() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "pocketkube", "controllers", "--kubeconfig", c.kubeconfig],
                                stdout=subprocess.DEVNULL, stderr=open(str(tmp_path / "controllers.log"), "a"),
                                start_new_session=True)

    def active(selector: str) -> list[dict]:
        pods = c.kubectl_json("get", "pods", "-n", "default", "-l", selector)["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    ctl = start_controllers()
    try:
        c.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}))
        out = c.kubectl("rollout", "status", "deployment/web", "-n", "default", "--timeout=30s").stdout
        assert 'deployment "web" successfully rolled out' in out
        pods = active("app=web")
        assert len(pods) == 3 and all(p["status"]["phase"] == "Running" and p["spec"]["nodeName"] for p in pods)
        (rs,) = c.kubectl_json("get", "rs", "-n", "default", "-l", "app=web")["items"]
        assert all(p["metadata"]["name"].startswith(rs["metadata"]["name"] + "-") for p in pods)
        events = c.kubectl_json("get", "events", "-n", "default")["items"]
        assert any(e["reason"] == "ScalingReplicaSet" and e["source"]["component"] == "deployment-controller"
                   for e in events)

        ctl.send_signal(signal.SIGTERM)
        assert ctl.wait(10) == 0
        c.kubectl("scale", "deployment/web", "-n", "default", "--replicas=1")
        ctl = start_controllers()
        wait_until(lambda: len(active("app=web")) == 1, 30, message="the restarted controllers scaling down to 1")
        assert c.kubectl_json("get", "rs", rs["metadata"]["name"], "-n", "default")["spec"]["replicas"] == 1
    finally:
        if ctl.poll() is None:
            os.killpg(ctl.pid, signal.SIGKILL)
            ctl.wait()
        stop_cluster(c)
