"""The agent's pure parts: upstream's getPhase, conditions and container statuses from what the
worker knows, the crash-loop back-off arithmetic, image names, and event aggregation."""

from __future__ import annotations

import asyncio

from pocketkube.agent.backoff import Backoff, go_duration
from pocketkube.agent.containers import cpu_limit_millis, image_id, memory_limit, normalize_image
from pocketkube.agent.events import EventRecorder
from pocketkube.agent.podstatus import CState, PodFacts, container_status, phase, pod_status
from pocketkube.api.core import Api
from pocketkube.client.inprocess import InProcessClient
from pocketkube.clock import FakeClock
from pocketkube.store.sqlite import SqliteStore


def _st(state: dict, last: dict | None = None, name: str = "c") -> dict:
    return {"name": name, "state": state, "lastState": {"terminated": last} if last else {}}


RUNNING = {"running": {"startedAt": "x"}}
OK = {"terminated": {"exitCode": 0}}
BAD = {"terminated": {"exitCode": 1}}
WAITING = {"waiting": {"reason": "ContainerCreating"}}


def _pod(policy: str = "Always", inits: list[dict] | None = None) -> dict:
    return {"metadata": {"name": "p"}, "spec": {"restartPolicy": policy, "initContainers": inits or []}}


def test_phase_follows_upstream_get_phase():
    assert phase(_pod(), [], [_st(WAITING)], False) == "Pending"
    assert phase(_pod(), [], [_st(RUNNING)], False) == "Running"
    assert phase(_pod("Never"), [], [_st(OK), _st(RUNNING, name="d")], False) == "Running"
    assert phase(_pod("Never"), [], [_st(OK)], False) == "Succeeded"
    assert phase(_pod("Never"), [], [_st(OK), _st(BAD, name="d")], False) == "Failed"
    assert phase(_pod("OnFailure"), [], [_st(BAD)], False) == "Running"        # about to restart
    assert phase(_pod("Always"), [], [_st(OK)], False) == "Running"
    assert phase(_pod("Always"), [], [_st(BAD)], True) == "Failed"             # deleted: terminal
    crash = _st({"waiting": {"reason": "CrashLoopBackOff"}}, {"exitCode": 1})
    assert phase(_pod("Always"), [], [crash], False) == "Running"
    init = [{"name": "i"}]
    assert phase(_pod("Never", init), [_st(RUNNING, name="i")], [_st(WAITING)], False) == "Pending"
    assert phase(_pod("Never", init), [_st(BAD, name="i")], [_st(WAITING)], False) == "Failed"
    assert phase(_pod("OnFailure", init), [_st({"waiting": {"reason": "CrashLoopBackOff"}}, {"exitCode": 1},
                                                 name="i")], [_st(WAITING)], False) == "Pending"
    sidecar = [{"name": "s", "restartPolicy": "Always"}]
    assert phase(_pod("Never", sidecar), [dict(_st(RUNNING, name="s"), started=True)], [_st(OK)], False) == \
        "Succeeded"


def _facts(**kw) -> PodFacts:
    c = CState("c", {"name": "c", "image": "nginx:1.14", "volumeMounts": [{"name": "v", "mountPath": "/v",
                                                                            "readOnly": True}]})
    return PodFacts(containers=[c], init_containers=[], host_ip="10.0.0.1", **kw)


def test_status_of_a_running_unready_container_and_its_conditions():
    clock = FakeClock()
    f = _facts(pod_ip="10.42.0.7", start_time=clock.now(), sandbox_ready=True)
    c = f.containers[0]
    c.cid, c.running_since, c.probe_ready = "abc", clock.now(), False
    pod = {"metadata": {"name": "p", "generation": 1}, "spec": {"containers": [c.spec]},
           "status": {"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"}]}}
    st = pod_status(pod, f, clock)
    assert st["phase"] == "Running" and st["podIP"] == "10.42.0.7" and st["observedGeneration"] == 1
    conds = {x["type"]: x for x in st["conditions"]}
    assert conds["PodScheduled"]["lastTransitionTime"] == "t0"
    assert (conds["Ready"]["status"], conds["Ready"]["reason"], conds["Ready"]["message"]) == \
        ("False", "ContainersNotReady", "containers with unready status: [c]")
    assert conds["Initialized"]["status"] == "True" and conds["PodReadyToStartContainers"]["status"] == "True"
    (cs,) = st["containerStatuses"]
    assert cs["image"] == "docker.io/library/nginx:1.14" and cs["containerID"] == "pocketkube://abc"
    assert (cs["ready"], cs["started"]) == (False, True)
    assert cs["volumeMounts"] == [{"name": "v", "mountPath": "/v", "readOnly": True, "recursiveReadOnly": "Disabled"}]
    # A status computed again from the same facts is identical: no write is needed.
    clock.advance(30)
    again = pod_status(dict(pod, status=st), f, clock)
    assert again == st

    # Readiness gates hold Ready back even when every container is ready.
    c.probe_ready = True
    gated = dict(pod, spec=dict(pod["spec"], readinessGates=[{"conditionType": "example.com/lb"}]))
    conds = {x["type"]: x for x in pod_status(gated, f, clock)["conditions"]}
    assert conds["ContainersReady"]["status"] == "True"
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "ReadinessGatesNotReady")
    assert conds["Ready"]["message"] == 'corresponding condition of pod readiness gate "example.com/lb" does not exist.'


def test_container_status_in_back_off_shows_the_last_run():
    c = CState("c", {"name": "c", "image": "busybox"}, restart_count=2, cid="x")
    c.terminated = {"exitCode": 1, "reason": "Error", "containerID": "pocketkube://x"}
    c.waiting = ("CrashLoopBackOff", "back-off 20s restarting failed container=c pod=p_ns(u)")
    st = container_status(c, "ContainerCreating")
    assert st["state"] == {"waiting": {"reason": "CrashLoopBackOff",
                                       "message": "back-off 20s restarting failed container=c pod=p_ns(u)"}}
    assert st["lastState"]["terminated"]["exitCode"] == 1 and st["restartCount"] == 2
    fresh = container_status(CState("c", {"name": "c", "image": "busybox"}), "PodInitializing")
    assert fresh["state"] == {"waiting": {"reason": "PodInitializing"}} and "containerID" not in fresh


def test_crash_loop_back_off_doubles_to_five_minutes_and_resets_after_ten():
    b = Backoff()
    t = 1000.0
    assert not b.in_backoff_since("k", t, t)        # the first restart is immediate
    delays = []
    for _ in range(7):
        b.next("k", t)
        delays.append(b.get("k"))
        t += 1                                       # the container crashes a second later
        assert b.in_backoff_since("k", t, t + b.get("k") - 0.1)
        assert not b.in_backoff_since("k", t, t + b.get("k"))
        t += b.get("k")
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    # A container that ran for more than ten minutes starts over at 10 s.
    t += 601
    assert not b.in_backoff_since("k", t, t)
    b.next("k", t)
    assert b.get("k") == 10
    assert [go_duration(s) for s in (10, 80, 300, 0.5)] == ["10s", "1m20s", "5m0s", "0.5s"]


def test_image_names_and_limits():
    assert normalize_image("nginx:1.14") == "docker.io/library/nginx:1.14"
    assert normalize_image("busybox") == "docker.io/library/busybox:latest"
    assert normalize_image("bitnami/nginx") == "docker.io/bitnami/nginx:latest"
    assert normalize_image("registry.k8s.io/pause:3.9") == "registry.k8s.io/pause:3.9"
    assert normalize_image("localhost:5000/app") == "localhost:5000/app:latest"
    iid = image_id("nginx:1.14")
    assert iid.startswith("docker.io/library/nginx@sha256:") and len(iid.split(":")[-1]) == 64
    assert iid == image_id("nginx:1.14") != image_id("nginx:1.15")
    c = {"resources": {"limits": {"memory": "32Mi", "cpu": "100m"}}}
    assert (memory_limit(c), cpu_limit_millis(c)) == (32 * 1024 * 1024, 100)
    assert (memory_limit({}), cpu_limit_millis({"resources": {"limits": {"cpu": "1.5"}}})) == (None, 1500)


def test_identical_events_are_aggregated(tmp_path):
    async def main():
        clock = FakeClock()
        store = SqliteStore(str(tmp_path / "s.db"))
        api = Api(store, clock)
        await api.bootstrap()
        c = InProcessClient(api)
        rec = EventRecorder(c, "n1", clock)
        rec.start()
        pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
               "spec": {"containers": [{"name": "c"}], "initContainers": [{"name": "i"}]}}
        for _ in range(3):
            rec.pod_event(pod, "Warning", "BackOff", "Back-off restarting failed container c", "c")
            clock.advance(5)
        rec.pod_event(pod, "Normal", "Started", "Container started", "i")
        await rec.flush()
        items = sorted((await c.list("events", "default"))["items"], key=lambda e: e["reason"])
        assert [(e["reason"], e["count"]) for e in items] == [("BackOff", 3), ("Started", 1)]
        back = items[0]
        assert back["firstTimestamp"] != back["lastTimestamp"]
        assert back["involvedObject"]["fieldPath"] == "spec.containers{c}"
        assert items[1]["involvedObject"]["fieldPath"] == "spec.initContainers{i}"
        assert back["metadata"]["name"].startswith("p.")
        await rec.stop()
        await store.close()
    asyncio.run(main())
