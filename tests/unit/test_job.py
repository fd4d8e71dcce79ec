"""Job controller in process on a FakeClock: completions and parallelism, pod names, labels and
the tracking finalizer, failure back-off, backoffLimit (Never and OnFailure), deadlines,
Indexed Jobs, podFailurePolicy, successPolicy, backoffLimitPerIndex, suspend, and the
TTL-after-finished controller. Simulated pods finish through the simulate-exit annotations,
and time moves only when the test advances the clock."""

from __future__ import annotations

import re

from pocketkube.clock import FakeClock
from pocketkube.controllers.job import JobController
from pocketkube.controllers.job import indexed_job_utils as ix
from pocketkube.controllers.job.backoff_utils import BackoffRecord
from pocketkube.controllers.job.pod_failure_policy import match_pod_failure_policy
from pocketkube.controllers.job.success_policy import match_success_policy
from pocketkube.controllers.ttlafterfinished import TTLAfterFinishedController
from tests.unit.harness import ControllerEnv, run

JOBS = "jobs.batch"
EXIT_AFTER = "pocketkube.dev/simulate-exit-after"
EXIT_CODE = "pocketkube.dev/simulate-exit-code"


def job_manifest(name, exit_after=None, exit_code=None, restart="Never", **spec):
    ann = {}
    if exit_after is not None:
        ann[EXIT_AFTER] = exit_after
    if exit_code is not None:
        ann[EXIT_CODE] = str(exit_code)
    tpl = {"metadata": {"annotations": ann} if ann else {},
           "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {"template": tpl, **spec}}


class Env(ControllerEnv):
    def __init__(self, tmp_path, nodes=2, controllers=(JobController,)):
        super().__init__(tmp_path, list(controllers), nodes=nodes, clock=FakeClock())

    async def job(self, name):
        return await self.c.get(JOBS, "default", name)

    async def pods(self, name):
        return (await self.c.list("pods", "default", label_selector=f"batch.kubernetes.io/job-name={name}"))["items"]

    async def events(self, reason=None):
        items = [e for e in (await self.c.list("events", "default"))["items"]
                 if e["involvedObject"].get("kind") == "Job"]
        return [e for e in items if reason is None or e["reason"] == reason]

    async def wait_condition(self, name, ctype, timeout=15.0, tick=0.0):
        async def ok():
            j = await self.job(name)
            for c in (j.get("status") or {}).get("conditions") or ():
                if c["type"] == ctype and c["status"] == "True":
                    return j
            return None
        return await self.until(ok, timeout, f"{name} {ctype}", tick=tick)

    async def flush_events(self):
        for c in self.mgr.controllers:
            await c.recorder.flush()


def cond(job, ctype):
    return next((c for c in job["status"].get("conditions") or () if c["type"] == ctype), None)


def test_nonindexed_job_completes_with_parallelism_names_labels_and_finalizers(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(JOBS, "default", job_manifest("work", exit_after="10s", completions=5, parallelism=2))
            job = await env.job("work")
            uid = job["metadata"]["uid"]
            pods = await env.until(lambda: _running(env, "work", 2), 5, "2 running pods")
            for p in pods:
                m = p["metadata"]
                assert re.fullmatch(r"work-[a-z0-9]{5}", m["name"])
                assert m["labels"]["batch.kubernetes.io/controller-uid"] == uid
                assert m["labels"]["controller-uid"] == uid
                assert m["labels"]["batch.kubernetes.io/job-name"] == "work"
                assert m["labels"]["job-name"] == "work"
                assert m["finalizers"] == ["batch.kubernetes.io/job-tracking"]
                (ref,) = m["ownerReferences"]
                assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("Job", "work", uid, True)
            await env.until(lambda: _status(env, "work", active=2, ready=2), 5, "active 2 ready 2")
            max_active = 0

            async def done():
                nonlocal max_active
                running = [p for p in await env.pods("work") if p["status"].get("phase") == "Running"]
                max_active = max(max_active, len(running))
                j = await env.job("work")
                return cond(j, "Complete") and j
            job = await env.until(done, 20, "Complete", tick=1.0)
            assert max_active <= 2
            st = job["status"]
            assert st["succeeded"] == 5 and st["active"] == 0 and not st.get("failed")
            assert st["completionTime"] and st["startTime"]
            assert cond(job, "SuccessCriteriaMet")["reason"] == "CompletionsReached"
            assert cond(job, "Complete")["message"] == "Reached expected number of succeeded pods"
            assert not st["uncountedTerminatedPods"].get("succeeded")
            pods = await env.pods("work")
            assert len(pods) == 5
            assert all(p["status"]["phase"] == "Succeeded" and not p["metadata"].get("finalizers") for p in pods)
            await env.flush_events()
            assert len(await env.events("SuccessfulCreate")) == 5
            (ev,) = await env.until(lambda: env.events("Completed"), 5, "Completed event")
            assert ev["message"] == "Job completed" and ev["source"]["component"] == "job-controller"
    run(main())


async def _running(env, name, n):
    pods = [p for p in await env.pods(name) if p["status"].get("phase") == "Running"]
    return pods if len(pods) == n else None


async def _status(env, name, **want):
    st = (await env.job(name)).get("status") or {}
    return all(st.get(k, 0) == v for k, v in want.items())


def test_failed_pods_are_replaced_with_exponential_backoff_until_backoff_limit(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(JOBS, "default", job_manifest("flaky", exit_after="1s", exit_code=1, backoffLimit=2))
            clock = env.clock
            for n, wait in ((1, 10), (2, 20)):
                await env.until(lambda: _running(env, "flaky", 1), 5, f"pod {n} running")
                await _settle(env)   # let the simulated node arm the pod's exit timer
                clock.advance(1)     # pod n fails
                await env.until(lambda n=n: _status(env, "flaky", failed=n), 5, f"failed {n}")
                # The replacement waits 10 s after the first failure, 20 s after the second.
                clock.advance(wait - 1)
                await _settle(env)
                assert len(await env.pods("flaky")) == n
                clock.advance(1.5)
                await env.until(lambda n=n: _pod_count(env, "flaky", n + 1), 5, f"pod {n + 1} after {wait} s")
            await env.until(lambda: _running(env, "flaky", 1), 5, "third pod running")
            await _settle(env)
            clock.advance(1)   # third failure: 3 > backoffLimit 2
            job = await env.wait_condition("flaky", "Failed")
            c = cond(job, "Failed")
            assert (c["reason"], c["message"]) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            assert cond(job, "FailureTarget")["reason"] == "BackoffLimitExceeded"
            assert job["status"]["failed"] == 3 and job["status"]["active"] == 0
            assert "completionTime" not in job["status"]
            clock.advance(400)
            await _settle(env)
            assert len(await env.pods("flaky")) == 3   # no more pods once failed
            await env.flush_events()
            (ev,) = await env.until(lambda: env.events("BackoffLimitExceeded"), 5, "event")
            assert ev["type"] == "Warning" and ev["message"] == "Job has reached the specified backoff limit"
    run(main())


async def _pod_count(env, name, n):
    return len(await env.pods(name)) == n


async def _settle(env):
    import asyncio
    for _ in range(30):
        await asyncio.sleep(0.01)


def test_backoff_record_doubles_and_is_capped():
    clock = FakeClock()
    now = clock.now()
    assert BackoffRecord("k", 1, now).remaining(clock) == 10
    assert BackoffRecord("k", 3, now).remaining(clock) == 40
    assert BackoffRecord("k", 20, now).remaining(clock) == 360
    clock.advance(15)
    assert BackoffRecord("k", 2, now).remaining(clock) == 5
    assert BackoffRecord("k", 0, None).remaining(clock) == 0


def test_on_failure_restarts_in_place_count_toward_backoff_limit(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(JOBS, "default", job_manifest("onfail", exit_after="1s", exit_code=3,
                                                             restart="OnFailure", backoffLimit=2))
            await env.until(lambda: _pod_count(env, "onfail", 1), 5, "the pod")
            job = await env.wait_condition("onfail", "Failed", 20, tick=2.0)
            assert cond(job, "Failed")["reason"] == "BackoffLimitExceeded"
            await env.flush_events()
            # Restarted in place, never replaced; the pod counts as failed once the Job deletes it.
            assert len(await env.events("SuccessfulCreate")) == 1
            assert job["status"]["failed"] == 1
    run(main())


def test_active_deadline_deletes_running_pods_and_fails_the_job(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(JOBS, "default", job_manifest("slow", completions=5, parallelism=2,
                                                             activeDeadlineSeconds=5))
            await env.until(lambda: _running(env, "slow", 2), 5, "2 running")
            env.clock.advance(4)
            await _settle(env)
            assert cond(await env.job("slow"), "Failed") is None
            env.clock.advance(1)
            job = await env.wait_condition("slow", "Failed")
            c = cond(job, "Failed")
            assert (c["reason"], c["message"]) == ("DeadlineExceeded", "Job was active longer than specified deadline")
            assert job["status"]["active"] == 0 and job["status"]["failed"] == 2
            await env.until(lambda: _pod_count(env, "slow", 0), 5, "pods gone")
            await env.flush_events()
            assert len(await env.events("SuccessfulDelete")) == 2
            assert len(await env.until(lambda: env.events("DeadlineExceeded"), 5, "event")) == 1
    run(main())


def test_indexed_job_pod_identity_and_completed_indexes(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(JOBS, "default", job_manifest("idx", exit_after="2s", completions=4, parallelism=2,
                                                             completionMode="Indexed"))
            pods = await env.until(lambda: _running(env, "idx", 2), 5, "2 running")
            seen = {}
            for p in pods:
                m = p["metadata"]
                i = m["annotations"]["batch.kubernetes.io/job-completion-index"]
                assert m["labels"]["batch.kubernetes.io/job-completion-index"] == i
                assert re.fullmatch(rf"idx-{i}-[a-z0-9]{{5}}", m["name"])
                assert p["spec"]["hostname"] == f"idx-{i}"
                (env_var,) = [e for e in p["spec"]["containers"][0]["env"] if e["name"] == "JOB_COMPLETION_INDEX"]
                assert env_var["valueFrom"]["fieldRef"]["fieldPath"] == \
                    "metadata.labels['batch.kubernetes.io/job-completion-index']"
                seen[int(i)] = m["name"]
            assert sorted(seen) == [0, 1]
            job = await env.wait_condition("idx", "Complete", 20, tick=1.0)
            assert job["status"]["completedIndexes"] == "0-3" and job["status"]["succeeded"] == 4
            idxs = sorted(int(p["metadata"]["annotations"][ix.COMPLETION_INDEX]) for p in await env.pods("idx"))
            assert idxs == [0, 1, 2, 3]
    run(main())


def test_interval_helpers_match_upstream_format():
    assert ix.format_intervals([(0, 0), (2, 3), (5, 9)]) == "0,2,3,5-9"
    assert ix.parse_intervals("0,2,3,5-9,12", 8) == [(0, 0), (2, 3), (5, 7)]
    assert ix.with_indexes([(0, 1)], [2, 4]) == [(0, 2), (4, 4)]
    assert ix.first_pending_indexes([(0, 1), (3, 3)], 3, 10) == [2, 4, 5]
    assert ix.has([(2, 4)], 3) and not ix.has([(2, 4)], 5)
    assert ix.generate_name_with_index("a" * 60, 12).endswith("-12-") and \
        len(ix.generate_name_with_index("a" * 60, 12)) == 58
    assert match_success_policy({"rules": [{"succeededIndexes": "0,2"}]}, 5, [(0, 0)]) is None
    assert match_success_policy({"rules": [{"succeededCount": 1}, {"succeededIndexes": "0,2"}]}, 5,
                                [(0, 0), (2, 2)]) == "Matched rules at index 0"
    assert match_success_policy({"rules": [{"succeededIndexes": "0-3", "succeededCount": 2}]}, 5,
                                [(1, 2)]) == "Matched rules at index 0"


def _failed_pod(code=0, conditions=(), name="p"):
    return {"metadata": {"name": name, "namespace": "ns"},
            "status": {"phase": "Failed", "conditions": list(conditions),
                       "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}}


def test_pod_failure_policy_rules_match_in_order():
    policy = {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        {"action": "Count", "onExitCodes": {"containerName": "other", "operator": "NotIn", "values": [1]}},
    ]}
    m = match_pod_failure_policy(policy, _failed_pod(42))
    assert m.fail_job_message == "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
    assert match_pod_failure_policy(policy, _failed_pod(137, [{"type": "DisruptionTarget", "status": "True"}])) \
        == (None, False, "Ignore")
    assert match_pod_failure_policy(policy, _failed_pod(3)) == (None, True, None)
    cond_policy = {"rules": [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    m = match_pod_failure_policy(cond_policy, _failed_pod(1, [{"type": "DisruptionTarget", "status": "True"}]))
    assert m.fail_job_message == "Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0"


def test_pod_failure_policy_fail_job_on_exit_code(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
            await env.c.create(JOBS, "default", job_manifest("pfp", exit_after="1s", exit_code=42, completions=3,
                                                             parallelism=1, podFailurePolicy=policy))
            await env.until(lambda: _running(env, "pfp", 1), 5, "the pod")
            await _settle(env)
            env.clock.advance(1)
            job = await env.wait_condition("pfp", "Failed")
            (pod,) = await env.pods("pfp")
            c = cond(job, "Failed")
            assert c["reason"] == "PodFailurePolicy"
            assert c["message"] == (f"Container c for pod default/{pod['metadata']['name']} failed with exit code 42 "
                                    f"matching FailJob rule at index 0")
            assert cond(job, "FailureTarget")["message"] == c["message"]
    run(main())


def test_pod_failure_policy_ignores_disruption_target(tmp_path):
    """No node runs these pods: the test plays the kubelet after an eviction (condition
    DisruptionTarget, phase Failed); backoffLimit 0 would fail the Job if it counted."""
    async def main():
        async with Env(tmp_path, nodes=0) as env:
            policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
            await env.c.create(JOBS, "default", job_manifest("evict", backoffLimit=0, podFailurePolicy=policy))
            await env.until(lambda: _pod_count(env, "evict", 1), 5, "the pod")
            (pod,) = await env.pods("evict")
            pod["status"].update({"phase": "Failed", "conditions": [
                {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}],
                "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": False,
                                       "restartCount": 0, "state": {"terminated": {"exitCode": 137}}}]})
            await env.c.update_status("pods", "default", pod)
            await env.until(lambda: _status(env, "evict", active=0), 5, "the pod seen failed")
            env.clock.advance(11)   # even ignored failures are replaced after the back-off
            await env.until(lambda: _pod_count(env, "evict", 2), 5, "a replacement pod")
            job = await env.job("evict")
            assert cond(job, "Failed") is None and not job["status"].get("failed")
            # A failure that does not match is counted and fails the Job.
            new = next(p for p in await env.pods("evict") if p["metadata"]["uid"] != pod["metadata"]["uid"])
            new["status"].update({"phase": "Failed", "containerStatuses": [
                {"name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 1}}}]})
            await env.c.update_status("pods", "default", new)
            job = await env.wait_condition("evict", "Failed")
            assert cond(job, "Failed")["reason"] == "BackoffLimitExceeded" and job["status"]["failed"] == 1
    run(main())


def test_success_policy_completes_indexed_job_early(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=0) as env:
            job = job_manifest("leader", completions=3, parallelism=3, completionMode="Indexed",
                               successPolicy={"rules": [{"succeededIndexes": "0"}]})
            await env.c.create(JOBS, "default", job)
            await env.until(lambda: _pod_count(env, "leader", 3), 5, "3 pods")
            pods = await env.pods("leader")
            (leader,) = [p for p in pods if p["metadata"]["annotations"][ix.COMPLETION_INDEX] == "0"]
            leader["status"]["phase"] = "Succeeded"
            await env.c.update_status("pods", "default", leader)
            job = await env.wait_condition("leader", "Complete")
            assert cond(job, "SuccessCriteriaMet")["reason"] == "SuccessPolicy"
            assert cond(job, "Complete")["message"] == "Matched rules at index 0"
            assert job["status"]["completedIndexes"] == "0"
            await env.until(lambda: _pod_count(env, "leader", 1), 5, "the other indexes' pods deleted")
    run(main())


def test_backoff_limit_per_index_and_max_failed_indexes(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=0) as env:
            await env.c.create(JOBS, "default", job_manifest(
                "perindex", completions=3, parallelism=3, completionMode="Indexed", backoffLimitPerIndex=1))
            await env.until(lambda: _pod_count(env, "perindex", 3), 5, "3 pods")

            async def fail_index(i, phase="Failed"):
                pods = [p for p in await env.pods("perindex") if p["metadata"]["annotations"][ix.COMPLETION_INDEX]
                        == str(i) and p["status"].get("phase") not in ("Failed", "Succeeded")]
                p = pods[0]
                p["status"]["phase"] = phase
                await env.c.update_status("pods", "default", p)
                return p
            first = await fail_index(1)
            env.clock.advance(11)   # the index's own back-off: 10 s
            await env.until(lambda: _pod_count(env, "perindex", 4), 5, "index 1 retried")
            retry = next(p for p in await env.pods("perindex") if p["metadata"]["uid"] != first["metadata"]["uid"]
                         and p["metadata"]["annotations"][ix.COMPLETION_INDEX] == "1")
            assert retry["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"
            await fail_index(1)
            await env.until(lambda: _status(env, "perindex", failedIndexes="1"), 5, "index 1 failed")
            await fail_index(0, "Succeeded")
            await fail_index(2, "Succeeded")
            job = await env.wait_condition("perindex", "Failed")
            c = cond(job, "Failed")
            assert (c["reason"], c["message"]) == ("FailedIndexes", "Job has failed indexes")
            assert job["status"]["completedIndexes"] == "0,2" and job["status"]["failedIndexes"] == "1"
    run(main())


def test_suspend_deletes_active_pods_and_resume_recreates_them(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(JOBS, "default", job_manifest("sus", completions=4, parallelism=2, suspend=True))
            job = await env.wait_condition("sus", "Suspended")
            c = cond(job, "Suspended")
            assert (c["reason"], c["message"]) == ("JobSuspended", "Job suspended")
            assert not await env.pods("sus") and "startTime" not in job["status"]
            await env.c.patch(JOBS, "default", "sus", {"spec": {"suspend": False}})
            await env.until(lambda: _running(env, "sus", 2), 5, "2 running after resume")
            job = await env.job("sus")
            assert cond(job, "Suspended")["status"] == "False" and cond(job, "Suspended")["reason"] == "JobResumed"
            await env.c.patch(JOBS, "default", "sus", {"spec": {"suspend": True}})
            await env.until(lambda: _pod_count(env, "sus", 0), 5, "pods deleted on suspend")
            job = await env.wait_condition("sus", "Suspended")
            assert job["status"]["active"] == 0 and not job["status"].get("failed")
            await env.flush_events()
            assert [e["message"] for e in await env.events("Suspended")] and await env.events("Resumed")
    run(main())


def test_ttl_after_finished_deletes_the_job(tmp_path):
    async def main():
        async with Env(tmp_path, controllers=(JobController, TTLAfterFinishedController)) as env:
            await env.c.create(JOBS, "default", job_manifest("ttl", exit_after="1s", ttlSecondsAfterFinished=30))
            await env.wait_condition("ttl", "Complete", tick=1.0)
            env.clock.advance(20)
            await _settle(env)
            assert await env.get_or_none(JOBS, "default", "ttl") is not None
            env.clock.advance(15)
            await env.until(lambda: _gone(env, "ttl"), 5, "the Job deleted after its TTL")
    run(main())


async def _gone(env, name):
    return await env.get_or_none(JOBS, "default", name) is None


def test_orphan_adopted_and_relabelled_pod_released(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(JOBS, "default", job_manifest("adopt", completions=4, parallelism=2))
            pods = await env.until(lambda: _running(env, "adopt", 2), 5, "2 running")
            uid = (await env.job("adopt"))["metadata"]["uid"]
            victim = pods[0]["metadata"]["name"]
            await env.c.patch("pods", "default", victim, {"metadata": {"ownerReferences": None}})

            async def adopted():
                p = await env.c.get("pods", "default", victim)
                refs = p["metadata"].get("ownerReferences") or []
                return any(r["uid"] == uid and r.get("controller") for r in refs)
            await env.until(adopted, 5, "orphan re-adopted")
            await env.c.patch("pods", "default", victim, {"metadata": {"labels": {
                "batch.kubernetes.io/controller-uid": "x", "controller-uid": "x"}}})

            async def released():
                p = await env.c.get("pods", "default", victim)
                return not p["metadata"].get("ownerReferences") and not p["metadata"].get("finalizers")
            await env.until(released, 5, "relabelled pod released, its finalizer removed")
    run(main())


def test_work_queue_job_without_completions_ends_when_one_succeeded_and_none_is_active(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=0) as env:
            await env.c.create(JOBS, "default", job_manifest("queue", parallelism=3))
            await env.until(lambda: _pod_count(env, "queue", 3), 5, "3 pods")
            pods = await env.pods("queue")
            for i, p in enumerate(pods):
                p["status"]["phase"] = "Succeeded"
                await env.c.update_status("pods", "default", p)
                if i == 0:
                    await _settle(env)
                    # One succeeded: nothing new starts, the others are left to finish.
                    assert len(await env.pods("queue")) == 3
                    assert cond(await env.job("queue"), "Complete") is None
            job = await env.wait_condition("queue", "Complete")
            assert job["status"]["succeeded"] == 3 and job["spec"].get("completions") is None
    run(main())


def test_foreground_and_background_deletion_release_the_tracking_finalizers(tmp_path):
    from pocketkube.controllers.garbagecollector import GarbageCollector

    async def main():
        async with Env(tmp_path, controllers=(JobController, GarbageCollector)) as env:
            for name, policy in (("fg", "Foreground"), ("bg", "Background")):
                await env.c.create(JOBS, "default", job_manifest(name, completions=4, parallelism=2))
                await env.until(lambda name=name: _running(env, name, 2), 5, f"{name}: 2 running")
                await env.c.delete(JOBS, "default", name, propagation_policy=policy)
                await env.until(lambda name=name: _gone(env, name), 10, f"{name}: Job deleted")
                await env.until(lambda name=name: _pod_count(env, name, 0), 10, f"{name}: pods deleted")
    run(main())
