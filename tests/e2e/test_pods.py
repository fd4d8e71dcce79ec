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
