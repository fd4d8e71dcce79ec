"""Pods on the node of a real `pocketkube up`, as a user drives them with kubectl: they run and
log, complete, crash-loop, are deleted within their grace period, and the seed Job's pod
template prints "Hello world"."""

from __future__ import annotations

import json
import os
import time

import yaml

from tests.conftest import SEED, wait_until


def phase(cluster, ns: str, name: str) -> str:
    p = cluster.kubectl("get", "pod", name, "-n", ns, "-o", "json", check=False)
    return json.loads(p.stdout).get("status", {}).get("phase", "") if p.returncode == 0 else ""


def status_column(cluster, ns: str, name: str) -> str:
    out = cluster.kubectl("get", "pod", name, "-n", ns, "--no-headers", check=False).stdout.split()
    return out[2] if len(out) > 2 else ""


def test_pod_runs_logs_and_completes(cluster, ns):
    cluster.kubectl("run", "hello", "-n", ns, "--image=busybox", "--restart=Never", "--command", "--",
                    "sh", "-c", "echo hello; sleep 1")
    wait_until(lambda: phase(cluster, ns, "hello") == "Succeeded", 30, message="pod Succeeded")
    assert cluster.kubectl("logs", "hello", "-n", ns).stdout == "hello\n"
    assert status_column(cluster, ns, "hello") == "Completed"
    pod = cluster.kubectl_json("get", "pod", "hello", "-n", ns)
    cs = pod["status"]["containerStatuses"][0]
    assert cs["state"]["terminated"]["reason"] == "Completed" and cs["containerID"].startswith("pocketkube://")
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=hello").stdout
    for reason in ("Pulled", "Created", "Started"):
        assert reason in events


def test_crash_loop_back_off_shows_in_kubectl_get_pods(cluster, ns):
    cluster.kubectl("run", "crash", "-n", ns, "--image=busybox", "--command", "--", "sh", "-c", "echo boom; exit 1")
    wait_until(lambda: status_column(cluster, ns, "crash") == "CrashLoopBackOff", 30, message="CrashLoopBackOff")
    row = cluster.kubectl("get", "pods", "-n", ns, "--no-headers").stdout.split()
    assert row[0] == "crash" and row[1] == "0/1" and int(row[3]) >= 1
    assert cluster.kubectl("logs", "crash", "-n", ns).stdout == "boom\n"
    assert cluster.kubectl("logs", "crash", "-n", ns, "--previous").stdout == "boom\n"
    described = cluster.kubectl("describe", "pod", "crash", "-n", ns).stdout
    assert "Back-off restarting failed container crash in pod crash_" in described


def test_delete_returns_within_the_grace_period(cluster, ns):
    cluster.kubectl("run", "web", "-n", ns, "--image=busybox", "--command", "--",
                    "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done")
    wait_until(lambda: phase(cluster, ns, "web") == "Running", 30, message="pod Running")
    t0 = time.monotonic()
    cluster.kubectl("delete", "pod", "web", "-n", ns, timeout=60)
    assert time.monotonic() - t0 < 30
    assert cluster.kubectl("get", "pod", "web", "-n", ns, check=False).returncode != 0


def test_seed_job_template_as_a_bare_pod_prints_hello_world(cluster, ns):
    with open(os.path.join(SEED, "job.yaml")) as f:
        job = yaml.safe_load(f)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job-template"},
           "spec": job["spec"]["template"]["spec"]}
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(pod))
    wait_until(lambda: "Hello world" in cluster.kubectl("logs", "job-template", "-n", ns, check=False).stdout,
               30, message="Hello world in the logs")
    assert phase(cluster, ns, "job-template") == "Running"    # it sleeps 50 s before saying Bye
    cluster.kubectl("delete", "pod", "job-template", "-n", ns, "--grace-period=1", timeout=60)


def apply(cluster, ns: str, pod: dict) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(pod))


def container_status(cluster, ns: str, name: str) -> dict:
    pod = cluster.kubectl_json("get", "pod", name, "-n", ns)
    return (pod.get("status", {}).get("containerStatuses") or [{}])[0]


def test_failing_container_reports_its_exit_code(cluster, ns):
    cluster.kubectl("run", "fails", "-n", ns, "--image=busybox", "--restart=Never", "--command", "--",
                    "sh", "-c", "exit 3")
    wait_until(lambda: phase(cluster, ns, "fails") == "Failed", 30, message="pod Failed")
    term = container_status(cluster, ns, "fails")["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"
    assert status_column(cluster, ns, "fails") == "Error"


def test_readiness_flips_ready_and_liveness_restarts(cluster, ns):
    # Ready while /tmp/<name>-ready exists; the liveness probe fails once /tmp/<name>-alive is gone.
    marker = f"/tmp/pk-e2e-{ns}"
    open(marker + "-ready", "w").close()
    open(marker + "-alive", "w").close()
    probe = lambda path: {"exec": {"command": ["test", "-e", path]}, "periodSeconds": 1,  # noqa: E731
                          "failureThreshold": 1}
    apply(cluster, ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probed"},
                        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                            "name": "c", "image": "busybox", "command": ["sleep", "3600"],
                            "readinessProbe": probe(marker + "-ready"),
                            "livenessProbe": probe(marker + "-alive")}]}})
    try:
        wait_until(lambda: container_status(cluster, ns, "probed").get("ready") is True, 30, message="Ready")
        os.remove(marker + "-ready")
        wait_until(lambda: container_status(cluster, ns, "probed").get("ready") is False, 30, message="not Ready")
        assert cluster.kubectl("get", "pod", "probed", "-n", ns, "--no-headers").stdout.split()[1] == "0/1"
        os.remove(marker + "-alive")
        wait_until(lambda: container_status(cluster, ns, "probed").get("restartCount", 0) >= 1, 40,
                   message="liveness restart")
        events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=probed").stdout
        assert "Unhealthy" in events
    finally:
        for suffix in ("-ready", "-alive"):
            if os.path.exists(marker + suffix):
                os.remove(marker + suffix)


def _isolated(cluster) -> bool:
    return os.geteuid() == 0 and os.uname().sysname == "Linux"


def test_memory_limit_ends_oomkilled(cluster, ns):
    apply(cluster, ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hog"}, "spec": {
        "restartPolicy": "Never", "containers": [{
            "name": "c", "image": "python", "resources": {"limits": {"memory": "32Mi"}},
            "command": ["python3", "-c", "x = bytearray(256 * 1024 * 1024); print(len(x))"]}]}})
    wait_until(lambda: phase(cluster, ns, "hog") in ("Failed", "Succeeded"), 60, message="hog finished")
    term = container_status(cluster, ns, "hog")["state"]["terminated"]
    if _isolated(cluster):
        assert term["reason"] == "OOMKilled" and term["exitCode"] == 137
        assert status_column(cluster, ns, "hog") == "OOMKilled"
    else:  # no cgroups without root: the allocation succeeds, and the pod says isolation is off
        assert term["exitCode"] == 0
        assert "IsolationDisabled" in cluster.kubectl("get", "events", "-n", ns).stdout


def test_two_pods_listen_on_port_80_each_on_its_own_ip(cluster, ns):
    import urllib.request
    for name in ("web-a", "web-b"):
        apply(cluster, ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
            "terminationGracePeriodSeconds": 1, "containers": [{
                "name": "c", "image": "python", "ports": [{"containerPort": 80}],
                "command": ["sh", "-c", f"mkdir -p /tmp/www-{name} && echo {name} > /tmp/www-{name}/index.html && "
                                        f"cd /tmp/www-{name} && exec python3 -m http.server 80"]}]}})
    if not _isolated(cluster):
        # Without network namespaces both share the host's port 80; the pods say isolation is off.
        wait_until(lambda: "IsolationDisabled" in cluster.kubectl("get", "events", "-n", ns).stdout, 30,
                   message="isolation-off event")
        return
    for name in ("web-a", "web-b"):
        wait_until(lambda: phase(cluster, ns, name) == "Running", 30, message=f"{name} Running")
    ips = {}
    for name in ("web-a", "web-b"):
        ips[name] = cluster.kubectl_json("get", "pod", name, "-n", ns)["status"]["podIP"]
    assert ips["web-a"] != ips["web-b"]

    def serves(name):
        try:
            with urllib.request.urlopen(f"http://{ips[name]}/", timeout=2) as r:
                return r.read().decode().strip() == name
        except OSError:
            return False
    for name in ("web-a", "web-b"):
        wait_until(lambda: serves(name), 30, message=f"{name} serving on its pod IP")
    cluster.kubectl("delete", "pod", "web-a", "web-b", "-n", ns)
