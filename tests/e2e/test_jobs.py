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


def owned_pods(c, ns, uid):
    return [p for p in c.kubectl_json("get", "pods", "-n", ns)["items"]
            if any(r["uid"] == uid for r in p["metadata"].get("ownerReferences") or ())]


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
    from pocketkube.clock import parse_rfc3339
    assert parse_rfc3339(cond["lastTransitionTime"]) - parse_rfc3339(start) >= 5
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


# ---- simulated pods ------------------------------------------------------------------------------

@pytest.fixture
def sim_ns(sim_cluster):
    return create_namespace(sim_cluster, "job-")


def sim_job(name, completions=None, parallelism=None, exit_after="1s", exit_code=None, restart="Never", **spec):
    ann = {SIM_EXIT_AFTER: exit_after} if exit_after else {}
    if exit_code is not None:
        ann[SIM_EXIT_CODE] = str(exit_code)
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"annotations": ann},
                                  "spec": {"restartPolicy": restart, "nodeSelector": {"type": "simulated"},
                                           "containers": [{"name": "c", "image": "busybox"}]}}, **spec}}
    if completions is not None:
        body["spec"]["completions"] = completions
    if parallelism is not None:
        body["spec"]["parallelism"] = parallelism
    return json.dumps(body)


def test_job_completes_and_kubectl_wait_sees_it(sim_cluster, sim_ns):
    c, ns = sim_cluster, sim_ns
    c.kubectl("apply", "-n", ns, "-f", "-", input=sim_job("done", completions=4, parallelism=2, exit_after="500ms"))
    c.kubectl("wait", "-n", ns, "--for=condition=complete", "job/done", "--timeout=30s")
    j = c.kubectl_json("get", "job", "done", "-n", ns)
    assert j["status"]["succeeded"] == 4 and j["status"]["active"] == 0
    assert condition(j, "Complete") and condition(j, "SuccessCriteriaMet")
    out = c.kubectl("get", "job", "done", "-n", ns, "--no-headers").stdout.split()
    assert out[:3] == ["done", "Complete", "4/4"]
    pods = job_pods(c, ns, "done")
    assert len(pods) == 4 and all(not p["metadata"].get("finalizers") for p in pods)


def test_failing_job_stops_at_backoff_limit_never_and_on_failure(sim_cluster, sim_ns):
    """Never: each failure is a new pod, after the 10 s back-off; OnFailure: the same pod is
    restarted in place and its restarts count against backoffLimit (seed step J3)."""
    c, ns = sim_cluster, sim_ns
    c.kubectl("apply", "-n", ns, "-f", "-", input=sim_job("never", exit_after="300ms", exit_code=1, backoffLimit=1))
    c.kubectl("apply", "-n", ns, "-f", "-", input=sim_job("onfailure", exit_after="300ms", exit_code=1,
                                                         restart="OnFailure", backoffLimit=1))
    c.kubectl("wait", "-n", ns, "--for=condition=failed", "job/onfailure", "--timeout=30s")
    j = c.kubectl_json("get", "job", "onfailure", "-n", ns)
    assert condition(j, "Failed")["reason"] == "BackoffLimitExceeded"
    created = c.kubectl_json("get", "events", "-n", ns, "--field-selector",
                             "involvedObject.name=onfailure,reason=SuccessfulCreate")["items"]
    assert len(created) == 1   # restarted in place, never replaced
    c.kubectl("wait", "-n", ns, "--for=condition=failed", "job/never", "--timeout=40s")
    j = c.kubectl_json("get", "job", "never", "-n", ns)
    cond = condition(j, "Failed")
    assert (cond["reason"], cond["message"]) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert j["status"]["failed"] == 2 and j["status"]["active"] == 0
    pods = job_pods(c, ns, "never")
    assert len(pods) == 2 and all(p["status"]["phase"] == "Failed" for p in pods)
    events = c.kubectl_json("get", "events", "-n", ns, "--field-selector", "involvedObject.name=never")["items"]
    assert [e["reason"] for e in events].count("BackoffLimitExceeded") == 1


def test_conformance_pod_failure_policy_fails_job_early_on_exit_code(sim_cluster, sim_ns):
    c, ns = sim_cluster, sim_ns
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In",
                                                              "values": [42]}}]}
    c.kubectl("apply", "-n", ns, "-f", "-", input=sim_job("pfp", completions=4, parallelism=2, exit_after="300ms",
                                                         exit_code=42, backoffLimit=6, podFailurePolicy=policy))
    c.kubectl("wait", "-n", ns, "--for=condition=failed", "job/pfp", "--timeout=30s")
    j = c.kubectl_json("get", "job", "pfp", "-n", ns)
    cond = condition(j, "Failed")
    assert cond["reason"] == "PodFailurePolicy"
    assert re.fullmatch(rf"Container c for pod {ns}/pfp-[a-z0-9]{{5}} failed with exit code 42 matching FailJob "
                        r"rule at index 0", cond["message"])


def test_conformance_adopt_matching_orphans_and_release_non_matching_pods(sim_cluster, sim_ns):
    c, ns = sim_cluster, sim_ns
    c.kubectl("apply", "-n", ns, "-f", "-", input=sim_job("adopt", parallelism=2, exit_after=None))
    uid = c.kubectl_json("get", "job", "adopt", "-n", ns)["metadata"]["uid"]
    pods = wait_until(lambda: [p for p in job_pods(c, ns, "adopt") if p["status"].get("phase") == "Running"]
                      if len(job_pods(c, ns, "adopt")) == 2 else None, 20, message="2 pods")
    name = pods[0]["metadata"]["name"]
    c.kubectl("patch", "pod", name, "-n", ns, "--type=merge", "-p", '{"metadata":{"ownerReferences":null}}')

    def owner():
        refs = c.kubectl_json("get", "pod", name, "-n", ns)["metadata"].get("ownerReferences") or []
        return [r for r in refs if r.get("controller")]
    wait_until(lambda: owner() and owner()[0]["uid"] == uid, 20, message="orphan re-adopted")
    c.kubectl("label", "pod", name, "-n", ns, "--overwrite", "job-name-", "batch.kubernetes.io/controller-uid=x",
              "controller-uid=x")
    wait_until(lambda: not owner(), 20, message="relabelled pod released")
    released = c.kubectl_json("get", "pod", name, "-n", ns)
    assert "batch.kubernetes.io/job-tracking" not in (released["metadata"].get("finalizers") or [])
    # The Job keeps its parallelism with a new pod.
    wait_until(lambda: len(owned_pods(c, ns, uid)) == 2, 20, message="a replacement for the released pod")


def test_conformance_delete_a_job(sim_cluster, sim_ns):
    c, ns = sim_cluster, sim_ns
    c.kubectl("apply", "-n", ns, "-f", "-", input=sim_job("del", parallelism=2, completions=10, exit_after=None))
    wait_until(lambda: c.kubectl_json("get", "job", "del", "-n", ns).get("status", {}).get("active") == 2,
               20, message="active == parallelism")
    c.kubectl("delete", "job", "del", "-n", ns, "--wait=true", "--timeout=30s")
    assert c.kubectl("get", "job", "del", "-n", ns, check=False).returncode != 0
    wait_until(lambda: not job_pods(c, ns, "del"), 20, message="the Job's pods deleted")


def test_conformance_manage_the_lifecycle_of_a_job(sim_cluster, sim_ns):
    from kubernetes import client
    c, ns = sim_cluster, sim_ns
    batch = client.BatchV1Api(c.client())
    body = json.loads(sim_job("life", parallelism=2, completions=2, exit_after=None, suspend=True))
    body["metadata"]["labels"] = {"e2e-job-label": "life"}
    batch.create_namespaced_job(ns, body)
    j = batch.read_namespaced_job("life", ns)
    assert j.spec.suspend is True and not j.status.active
    batch.patch_namespaced_job("life", ns, {"metadata": {"labels": {"life": "patched"}}})
    assert batch.read_namespaced_job("life", ns).metadata.labels["life"] == "patched"
    j = batch.read_namespaced_job("life", ns)
    j.metadata.annotations = {"updated": "true"}
    batch.replace_namespaced_job("life", ns, j)
    assert batch.read_namespaced_job("life", ns).metadata.annotations["updated"] == "true"
    found = batch.list_job_for_all_namespaces(label_selector="life=patched").items
    assert [x.metadata.name for x in found] == ["life"]
    batch.delete_collection_namespaced_job(ns, label_selector="life=patched", propagation_policy="Background")
    wait_until(lambda: not batch.list_namespaced_job(ns, label_selector="life=patched").items, 20,
               message="jobs deleted by collection")


def test_conformance_apply_changes_to_a_job_status(sim_cluster, sim_ns):
    from kubernetes import client
    c, ns = sim_cluster, sim_ns
    batch = client.BatchV1Api(c.client())
    batch.create_namespaced_job(ns, json.loads(sim_job("st", parallelism=1, completions=1, exit_after=None)))
    wait_until(lambda: (batch.read_namespaced_job_status("st", ns).status.active or 0) == 1, 20,
               message="running")
    now = "2024-01-02T03:04:05Z"
    patched = batch.patch_namespaced_job_status("st", ns, {"status": {"startTime": now}})
    assert patched.status.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") == now
    for _ in range(10):
        j = batch.read_namespaced_job_status("st", ns)
        j.status.start_time = j.status.start_time.replace(year=2024, month=1, day=3)
        try:
            batch.replace_namespaced_job_status("st", ns, j)
            break
        except client.ApiException as e:
            if e.status != 409:   # the Job controller wrote meanwhile: read again
                raise
    got = batch.read_namespaced_job_status("st", ns)
    assert got.status.start_time.strftime("%Y-%m-%d") == "2024-01-03" and got.status.active == 1


def test_conformance_job_status_patch_keeps_annotation(sim_cluster, sim_ns):
    from kubernetes import client
    c, ns = sim_cluster, sim_ns
    batch = client.BatchV1Api(c.client())
    batch.create_namespaced_job(ns, json.loads(sim_job("ann", suspend=True, exit_after=None)))
    patched = batch.patch_namespaced_job_status("ann", ns, {"metadata": {"annotations": {"patchedstatus": "true"}},
                                                            "status": {}})
    assert (patched.metadata.annotations or {}).get("patchedstatus") == "true"


# ---- real processes ------------------------------------------------------------------------------

def test_indexed_job_env_hostname_and_completed_indexes(cluster):
    c = cluster
    ns = create_namespace(c, "idx-")
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "idx"},
            "spec": {"completions": 3, "parallelism": 3, "completionMode": "Indexed",
                     "template": {"spec": {"restartPolicy": "Never", "containers": [{
                         "name": "c", "image": "busybox",
                         "command": ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX host=$(hostname)"]}]}}}}
    c.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body))
    c.kubectl("wait", "-n", ns, "--for=condition=complete", "job/idx", "--timeout=30s")
    j = c.kubectl_json("get", "job", "idx", "-n", ns)
    assert j["status"]["completedIndexes"] == "0-2" and j["status"]["succeeded"] == 3
    pods = job_pods(c, ns, "idx")
    assert len(pods) == 3
    for p in pods:
        i = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == i
        assert re.fullmatch(rf"idx-{i}-[a-z0-9]{{5}}", p["metadata"]["name"])
        assert p["spec"]["hostname"] == f"idx-{i}"
        assert c.kubectl("logs", "-n", ns, p["metadata"]["name"]).stdout.strip() == f"index={i} host=idx-{i}"
    c.kubectl("delete", "namespace", ns, "--wait=false")


def test_conformance_tasks_that_fail_once_are_restarted_locally_and_complete(cluster):
    c = cluster
    ns = create_namespace(c, "rst-")
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "rst"},
            "spec": {"completions": 2, "parallelism": 2, "backoffLimit": 6,
                     "template": {"spec": {"restartPolicy": "OnFailure",
                                           "volumes": [{"name": "data", "emptyDir": {}}],
                                           "containers": [{
                                               "name": "c", "image": "busybox",
                                               "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                               "command": ["sh", "-c", ("if [ -f /data/foo ]; then exit 0; "
                                                                        "else touch /data/foo; exit 1; fi")]}]}}}}
    c.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body))
    c.kubectl("wait", "-n", ns, "--for=condition=complete", "job/rst", "--timeout=40s")
    pods = job_pods(c, ns, "rst")
    assert len(pods) == 2
    assert all(p["status"]["containerStatuses"][0]["restartCount"] == 1 for p in pods)
    c.kubectl("delete", "namespace", ns, "--wait=false")


def test_conformance_pod_failure_policy_ignores_disruption_target(cluster, tmp_path):
    """The conformance test evicts each pod once; pocketkube has no eviction subresource, so the
    test does what the eviction API does: add the DisruptionTarget condition, then delete. One
    index, because even ignored failures delay the replacement by the back-off (10 s per
    failure, doubling), as upstream."""
    c = cluster
    ns = create_namespace(c, "dis-")
    marks = tmp_path / "marks"
    marks.mkdir()
    script = ('if [ -f /marks/$JOB_COMPLETION_INDEX ]; then exit 0; fi; '
              'touch /marks/$JOB_COMPLETION_INDEX; sleep 1000')
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "dis"},
            "spec": {"completions": 1, "parallelism": 1, "completionMode": "Indexed", "backoffLimit": 0,
                     "podFailurePolicy": {"rules": [{"action": "Ignore",
                                                     "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                     "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                           "volumes": [{"name": "m", "hostPath": {"path": str(marks)}}],
                                           "containers": [{"name": "c", "image": "busybox",
                                                           "volumeMounts": [{"name": "m", "mountPath": "/marks"}],
                                                           "command": ["sh", "-c", script]}]}}}}
    c.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body))
    wait_until(lambda: len(list(marks.iterdir())) == 1, 20, message="the index marked")
    for p in job_pods(c, ns, "dis"):
        name = p["metadata"]["name"]
        c.kubectl("patch", "pod", name, "-n", ns, "--subresource=status", "--type=strategic", "-p", json.dumps(
            {"status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
                                        "reason": "EvictionByEvictionAPI",
                                        "message": "Eviction API: evicting"}]}}))
        c.kubectl("delete", "pod", name, "-n", ns, "--wait=false")
    c.kubectl("wait", "-n", ns, "--for=condition=complete", "job/dis", "--timeout=40s")
    j = c.kubectl_json("get", "job", "dis", "-n", ns)
    # The evicted pod failed but was not counted (backoffLimit 0 would have failed the Job).
    assert j["status"]["completedIndexes"] == "0" and not j["status"].get("failed")
    assert len(job_pods(c, ns, "dis")) == 1   # the evicted pod is gone, its replacement succeeded
    c.kubectl("delete", "namespace", ns, "--wait=false")


# ---- CronJob -------------------------------------------------------------------------------------

def cronjob_body(name, schedule="*/1 * * * *", **spec):
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "labels": {"cj": name}},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": {"template": {
                "metadata": {"annotations": {SIM_EXIT_AFTER: "300ms"}},
                "spec": {"restartPolicy": "OnFailure", "nodeSelector": {"type": "simulated"},
                         "containers": [{"name": "c", "image": "busybox"}]}}}}}}


def test_conformance_cronjob_api_operations(sim_cluster, sim_ns):
    from kubernetes import client, watch
    c, ns = sim_cluster, sim_ns
    batch = client.BatchV1Api(c.client())
    created = batch.create_namespaced_cron_job(ns, cronjob_body("ops", suspend=True))
    assert created.spec.concurrency_policy == "Allow" and created.spec.successful_jobs_history_limit == 3
    batch.create_namespaced_cron_job(ns, cronjob_body("ops2", suspend=True))
    assert batch.read_namespaced_cron_job("ops", ns).metadata.uid == created.metadata.uid
    items = batch.list_namespaced_cron_job(ns, label_selector="cj in (ops,ops2)").items
    assert sorted(i.metadata.name for i in items) == ["ops", "ops2"]
    assert any(i.metadata.name == "ops" for i in batch.list_cron_job_for_all_namespaces().items)
    w = watch.Watch()
    rv = batch.list_namespaced_cron_job(ns).metadata.resource_version
    patched = batch.patch_namespaced_cron_job("ops", ns, {"metadata": {"annotations": {"patched": "true"}}})
    assert patched.metadata.annotations["patched"] == "true"
    seen = None
    for ev in w.stream(batch.list_namespaced_cron_job, ns, resource_version=rv, timeout_seconds=10):
        if ev["type"] == "MODIFIED" and (ev["object"].metadata.annotations or {}).get("patched") == "true":
            seen = ev
            w.stop()
    assert seen is not None
    cj = batch.read_namespaced_cron_job("ops", ns)
    cj.spec.schedule = "*/5 * * * *"
    assert batch.replace_namespaced_cron_job("ops", ns, cj).spec.schedule == "*/5 * * * *"
    # The status subresource: get, patch, update.
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    st = batch.patch_namespaced_cron_job_status("ops", ns, {"status": {"lastScheduleTime": now}})
    assert st.status.last_schedule_time is not None
    got = batch.read_namespaced_cron_job_status("ops", ns)
    got.status.last_successful_time = got.status.last_schedule_time
    assert batch.replace_namespaced_cron_job_status("ops", ns, got).status.last_successful_time is not None
    batch.delete_namespaced_cron_job("ops2", ns)
    wait_until(lambda: [i.metadata.name for i in batch.list_namespaced_cron_job(ns).items] == ["ops"], 10,
               message="ops2 deleted")
    # A time zone belongs in spec.timeZone: TZ= / CRON_TZ= in the schedule are refused on create.
    p = c.kubectl("create", "-n", ns, "-f", "-", check=False,
                  input=json.dumps(cronjob_body("tz", "CRON_TZ=Asia/Seoul 0 9 * * *")))
    assert p.returncode != 0
    assert "cannot use TZ or CRON_TZ in schedule, use timeZone field instead" in p.stderr
    batch.delete_collection_namespaced_cron_job(ns, label_selector="cj=ops")
    wait_until(lambda: not batch.list_namespaced_cron_job(ns).items, 10, message="deletecollection")


def test_cronjob_creates_a_job_named_after_its_tick(sim_cluster, sim_ns):
    """'@every 1s' (robfig's constant delay, accepted by upstream validation) ticks at once; Job
    names are per minute, so one Job appears, then completes and is seen completed."""
    c, ns = sim_cluster, sim_ns
    c.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(cronjob_body("tick", "@every 1s")))

    def a_job():
        items = c.kubectl_json("get", "jobs", "-n", ns)["items"]
        return items[0] if items else None
    job = wait_until(a_job, 20, message="a Job from the CronJob")
    m = re.fullmatch(r"tick-(\d+)", job["metadata"]["name"])
    assert m
    stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert int(m.group(1)) == int(time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone) // 60
    (ref,) = job["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"]) == ("CronJob", "tick")
    c.kubectl("wait", "-n", ns, "--for=condition=complete", f"job/{job['metadata']['name']}", "--timeout=30s")

    def seen_done():
        cj = c.kubectl_json("get", "cronjob", "tick", "-n", ns)
        return cj["status"].get("lastSuccessfulTime") and cj
    cj = wait_until(seen_done, 20, message="lastSuccessfulTime")
    assert cj["status"]["lastScheduleTime"]
    c.kubectl("patch", "cronjob", "tick", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    events = c.kubectl_json("get", "events", "-n", ns, "--field-selector", "involvedObject.name=tick")["items"]
    reasons = {e["reason"] for e in events}
    assert "SuccessfulCreate" in reasons and "SawCompletedJob" in reasons
