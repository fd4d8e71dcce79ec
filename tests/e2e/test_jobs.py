"""Jobs and CronJobs through the real kubectl and the official Python client.

The seed Job J1 runs real bash processes on the `cluster` fixture's local node; the other
Job behaviours use `sim_cluster` (simulated pods that finish through the
`pocketkube.dev/simulate-exit-*` annotations) so they take seconds. CronJob schedules are
tested in process on a FakeClock (tests/unit/test_cronjob.py); here only what a real
minute-long schedule does not need: the API operations and the Jobs a CronJob makes.
"""

from __future__ import annotations

import json
import os
import re
import time

import psutil
import pytest

from tests.conftest import SEED, create_namespace, wait_until

SIM_EXIT_AFTER = "pocketkube.dev/simulate-exit-after"
SIM_EXIT_CODE = "pocketkube.dev/simulate-exit-code"


def condition(job: dict, ctype: str) -> dict | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c["type"] == ctype and c["status"] == "True":
            return c
    return None


def job_pods(c, ns, name):
    return c.kubectl_json("get", "pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={name}")["items"]


def sleep_50_processes() -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if (p.info.get("cmdline") or [])[:2] == ["sleep", "50"]:
            found.append(p)
    return found


def test_seed_j1_deadline_exceeded_stops_real_processes(cluster):
    c = cluster
    ns = create_namespace(c, "j1-")
    c.kubectl("create", "-f", os.path.join(SEED, "job.yaml"), "-n", ns)
    job = c.kubectl_json("get", "job", "job-example", "-n", ns)
    assert job["spec"]["completions"] == 5 and job["spec"]["parallelism"] == 2

    def two_running():
        pods = [p for p in job_pods(c, ns, "job-example") if p["status"].get("phase") == "Running"]
        return pods if len(pods) == 2 else None
    running = wait_until(two_running, 5, message="two job-example pods Running")
    for p in running:
        assert re.fullmatch(r"job-example-[a-z0-9]{5}", p["metadata"]["name"])
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "job-example"
        assert p["metadata"]["labels"]["job-name"] == "job-example"
        assert p["metadata"]["labels"]["controller-uid"] == job["metadata"]["uid"]
        assert "batch.kubernetes.io/job-tracking" in p["metadata"]["finalizers"]
    wait_until(lambda: "Hello world" in c.kubectl("logs", "-n", ns, running[0]["metadata"]["name"]).stdout,
               5, message="Hello world in the pod's log")
    assert "Hello world" in c.kubectl("logs", "-n", ns, "job/job-example").stdout
    # Never more than parallelism pods at once.
    assert len([p for p in job_pods(c, ns, "job-example") if p["status"].get("phase") == "Running"]) <= 2

    def failed():
        j = c.kubectl_json("get", "job", "job-example", "-n", ns)
        return condition(j, "Failed") and j
    j = wait_until(failed, 20, message="Job Failed")
    cond = condition(j, "Failed")
    assert cond["reason"] == "DeadlineExceeded"
    assert cond["message"] == "Job was active longer than specified deadline"
    assert condition(j, "FailureTarget")["reason"] == "DeadlineExceeded"
    start = j["status"]["startTime"]
    assert j["status"]["active"] == 0 and j["status"].get("failed", 0) >= 2
    assert "completionTime" not in j["status"]
    # The deadline counts from startTime: the condition is not earlier than 5 s after it.
    from datetime import datetime
    t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()  # noqa: E731
    assert t(cond["lastTransitionTime"]) - t(start) >= 5
    wait_until(lambda: not [p for p in job_pods(c, ns, "job-example")
                            if p["status"].get("phase") not in ("Failed", "Succeeded")],
               10, message="no job-example pod still running")
    wait_until(lambda: not sleep_50_processes(), 10, message="no `sleep 50` process left")
    events = c.kubectl_json("get", "events", "-n", ns, "--field-selector", "involvedObject.name=job-example")["items"]
    reasons = {e["reason"] for e in events}
    assert {"SuccessfulCreate", "SuccessfulDelete", "DeadlineExceeded"} <= reasons
    (dl,) = [e for e in events if e["reason"] == "DeadlineExceeded"]
    assert dl["type"] == "Warning" and dl["message"] == "Job was active longer than specified deadline"
    c.kubectl("delete", "namespace", ns, "--wait=false")
