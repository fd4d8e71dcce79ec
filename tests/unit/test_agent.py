"""The node agent with real processes: pods run to completion or failure, restart in a crash
loop on the injected clock, run init containers in order, hit their deadline, are deleted
gracefully with no process left behind, and get their env and volumes from ConfigMaps.

Each test runs the API in-process (SqliteStore + Api + InProcessClient), one Agent with the
real ProcessRuntime (isolated when this machine allows it, on a bridge and pod range of its
own), and pods created already bound through spec.nodeName.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import psutil
import pytest
from kubernetes.client.models import V1Pod

from pocketkube.agent.kubelet import Agent
from pocketkube.api.core import Api
from pocketkube.client.inprocess import InProcessClient
from pocketkube.clock import FakeClock
from pocketkube.runtime.process import ProcessRuntime
from pocketkube.store.sqlite import SqliteStore
from tests.unit.harness import until

NODE = "node-a"


def run(coro, timeout: float = 60.0):
    """Run a test's main(); on a hang, fail with the stack of every task instead of blocking."""
    async def guarded():
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait([task], timeout=timeout)
        if not done:
            import io
            out = io.StringIO()
            for t in asyncio.all_tasks():
                if t is not asyncio.current_task():
                    t.print_stack(file=out)
            task.cancel()
            raise AssertionError(f"test hung for {timeout}s; tasks:\n{out.getvalue()}")
        return task.result()
    asyncio.run(guarded())


class Env:
    """API + one agent on a fresh runtime; `pod()` creates bound pods, helpers read them."""

    def __init__(self, tmp_path, clock: FakeClock | None = None, **agent_kw):
        self.tmp_path = tmp_path
        self.clock = clock or FakeClock(time.time())
        self.agent_kw = agent_kw

    async def __aenter__(self) -> "Env":
        self.store = SqliteStore(str(self.tmp_path / "store.db"))
        self.api = Api(self.store, self.clock)
        await self.api.bootstrap()
        self.c = InProcessClient(self.api)
        self.agent = await self.start_agent()
        return self

    def runtime(self) -> ProcessRuntime:
        # A bridge and pod range of this test's own, so concurrent test runs never meet.
        tag = secrets.token_hex(3)
        net = int(tag[:2], 16)
        # POCKETKUBE_TEST_ISOLATION=off runs the same tests with plain host processes.
        isolate = False if os.environ.get("POCKETKUBE_TEST_ISOLATION") == "off" else None
        return ProcessRuntime(str(self.tmp_path / f"runtime-{tag}"), node_cidr=f"10.{200 + net % 50}.{net}.0/24",
                              bridge=f"pkt{tag}", isolate=isolate)

    async def start_agent(self) -> Agent:
        self.rt = self.runtime()
        agent = Agent(self.c, NODE, self.rt, str(self.tmp_path / "node"), self.clock, **self.agent_kw)
        await agent.start()
        return agent

    async def stop_agent(self) -> None:
        await self.agent.stop()     # closes the runtime too
        if self.rt.isolated:
            await self.rt.remove_bridge()

    async def __aexit__(self, *exc) -> None:
        await self.stop_agent()
        await self.store.close()

    async def pod(self, name: str, command: list[str] | None = None, restart: str = "Never", image: str = "busybox",
                  namespace: str = "default", containers: list[dict] | None = None, **spec) -> dict:
        if containers is None:
            c: dict = {"name": "c", "image": image}
            if command is not None:
                c["command"] = command
            containers = [c]
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": NODE, "restartPolicy": restart, "containers": containers, **spec}}
        return await self.c.create("pods", namespace, body)

    async def get(self, name: str, namespace: str = "default") -> dict:
        return await self.c.get("pods", namespace, name)

    async def phase(self, name: str) -> str | None:
        return (await self.get(name)).get("status", {}).get("phase")

    async def wait_phase(self, name: str, phase: str, timeout: float = 10.0) -> dict:
        async def check():
            p = await self.get(name)
            return p if p.get("status", {}).get("phase") == phase else None
        return await until(check, timeout, f"{name} {phase}")

    async def container(self, name: str, index: int = 0, init: bool = False) -> dict:
        key = "initContainerStatuses" if init else "containerStatuses"
        cs = (await self.get(name)).get("status", {}).get(key) or []
        return cs[index] if len(cs) > index else {}

    async def logs(self, name: str, container: str | None = None, **kw) -> bytes:
        opts = dict(follow=False, previous=False, tail=None, since_seconds=None, since_time=None,
                    timestamps=False, limit_bytes=None)
        opts.update(kw)
        out = b""
        async for chunk in self.agent.logs(await self.get(name), container, **opts):
            out += chunk
        return out

    async def events(self, name: str) -> list[tuple[str, str, str, str | None]]:
        await self.agent.recorder.flush()
        items = (await self.c.list("events", "default"))["items"]
        return [(e["type"], e["reason"], e["message"], e["involvedObject"].get("fieldPath"))
                for e in sorted(items, key=lambda e: e["metadata"]["name"])
                if e["involvedObject"].get("name") == name]

    async def event_objects(self, name: str) -> list[dict]:
        await self.agent.recorder.flush()
        return [e for e in (await self.c.list("events", "default"))["items"]
                if e["involvedObject"].get("name") == name]

    async def gone(self, name: str) -> bool:
        try:
            await self.get(name)
            return False
        except Exception:
            return True


def cond(pod: dict, ctype: str) -> dict:
    return next((c for c in pod.get("status", {}).get("conditions", []) if c["type"] == ctype), {})


def state_of(cs: dict) -> str:
    return next(iter(cs.get("state") or {}), "")


# ---- running to completion --------------------------------------------------------------------

def test_pod_runs_to_completion_with_kubelet_status_events_and_logs(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.pod("hello", ["sh", "-c", "echo hello; sleep 1"])
            running = await env.wait_phase("hello", "Running")
            assert running["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
            assert cond(running, "Ready")["status"] == "True"
            await env.wait_phase("hello", "Succeeded")

            async def sandbox_gone():
                p = await env.get("hello")
                return p if cond(p, "PodReadyToStartContainers")["status"] == "False" else None
            pod = await until(sandbox_gone, message="sandbox removed")
            V1Pod.from_dict(pod)   # the official client accepts what we wrote
            st = pod["status"]
            assert st["hostIP"] == env.agent.host_ip and st["hostIPs"] == [{"ip": st["hostIP"]}]
            assert st["podIP"] and st["podIPs"] == [{"ip": st["podIP"]}] and st["startTime"]
            assert st["qosClass"] == "BestEffort"
            if env.rt.isolated:
                assert st["podIP"].startswith(env.rt.node_cidr.rsplit(".", 1)[0] + ".")
            assert [c["type"] for c in st["conditions"]] == \
                ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
            assert (cond(pod, "Ready")["status"], cond(pod, "Ready")["reason"]) == ("False", "PodCompleted")
            assert (cond(pod, "Initialized")["status"], cond(pod, "Initialized")["reason"]) == ("True", "PodCompleted")
            (cs,) = st["containerStatuses"]
            term = cs["state"]["terminated"]
            assert (term["exitCode"], term["reason"]) == (0, "Completed")
            assert term["containerID"] == cs["containerID"] and cs["containerID"].startswith("pocketkube://")
            assert cs["image"] == "docker.io/library/busybox:latest"
            assert cs["imageID"].startswith("docker.io/library/busybox@sha256:")
            assert (cs["ready"], cs["started"], cs["restartCount"], cs["lastState"]) == (False, False, 0, {})
            assert await env.logs("hello") == b"hello\n"
            log_dir = tmp_path / "node" / "pods" / f"default_hello_{pod['metadata']['uid']}" / "c"
            assert (log_dir / "0.log").exists()
            events = await env.events("hello")
            if not env.rt.isolated:   # said once per pod, before anything else
                assert events.pop(0) == ("Warning", "IsolationDisabled", env.rt.isolation_note, None)
            assert events[:3] == [
                ("Normal", "Pulled", 'Container image "busybox" already present on machine and can be accessed by '
                                     'the pod', "spec.containers{c}"),
                ("Normal", "Created", "Container created", "spec.containers{c}"),
                ("Normal", "Started", "Container started", "spec.containers{c}")]
            ev = (await env.event_objects("hello"))[0]
            assert ev["source"] == {"component": "kubelet", "host": NODE}
            assert ev["reportingComponent"] == "kubelet" and ev["reportingInstance"] == NODE
            assert ev["metadata"]["name"].startswith("hello.") and ev["count"] == 1
            assert ev["involvedObject"]["uid"] == pod["metadata"]["uid"]
    run(main())


def test_non_zero_exit_fails_the_pod(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.pod("bad", ["sh", "-c", "echo oops >&2; exit 3"])
            pod = await env.wait_phase("bad", "Failed")
            term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
            assert (term["exitCode"], term["reason"]) == (3, "Error")
            assert (cond(pod, "Ready")["reason"], cond(pod, "ContainersReady")["reason"]) == ("PodFailed", "PodFailed")
            assert await env.logs("bad") == b"oops\n"
    run(main())


def test_missing_program_and_unknown_image(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.pod("noimage", image="example.com/no-such-image:1")
            cs = await until(lambda: _waiting(env, "noimage"), message="waiting reason")
            assert cs["state"]["waiting"]["reason"] == "ErrImagePull" and cs["state"]["waiting"]["message"]
            events = await env.events("noimage")
            assert ("Warning", "Failed", "Error: ErrImagePull", "spec.containers{c}") in events
            assert any(e[2].startswith('Failed to pull image "example.com/no-such-image:1": ') for e in events)
            with pytest.raises(Exception) as err:
                await env.logs("noimage")
            assert err.value.code == 400
            assert err.value.message == 'container "c" in pod "noimage" is waiting to start: image can\'t be pulled'
            env.clock.advance(1)   # the next sync falls in the back-off window
            await until(lambda: _waiting_reason(env, "noimage", "ImagePullBackOff"), message="ImagePullBackOff")
            msg = (await env.container("noimage"))["state"]["waiting"]["message"]
            assert msg.startswith('Back-off pulling image "example.com/no-such-image:1": ErrImagePull: ')
            env.clock.advance(9)   # the window is over: another pull attempt
            await until(lambda: _waiting_reason(env, "noimage", "ErrImagePull"), message="pulled again")
            assert ("Normal", "BackOff", 'Back-off pulling image "example.com/no-such-image:1"',
                    "spec.containers{c}") in await env.events("noimage")
    run(main())


async def _waiting(env, name):
    cs = await env.container(name)
    return cs if "waiting" in cs.get("state", {}) and cs["state"]["waiting"].get("reason") not in \
        (None, "ContainerCreating") else None


async def _waiting_reason(env, name, reason):
    cs = await env.container(name)
    return (cs.get("state", {}).get("waiting") or {}).get("reason") == reason


# ---- restarts ---------------------------------------------------------------------------------

def test_crash_loop_back_off_on_the_clock(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            pod = await env.pod("crash", ["sh", "-c", "echo run; exit 1"], restart="Always")
            uid = pod["metadata"]["uid"]

            async def restarts():
                return (await env.container("crash")).get("restartCount")
            # The first exit restarts at once; the second waits 10 s.
            cs = await until(lambda: _waiting_reason(env, "crash", "CrashLoopBackOff"), message="CrashLoopBackOff")
            cs = await env.container("crash")
            assert cs["restartCount"] == 1
            assert cs["state"]["waiting"]["message"] == \
                f"back-off 10s restarting failed container=c pod=crash_default({uid})"
            assert cs["lastState"]["terminated"]["exitCode"] == 1 and cs["lastState"]["terminated"]["reason"] == "Error"
            pod = await env.get("crash")
            assert pod["status"]["phase"] == "Running"
            assert (cond(pod, "Ready")["status"], cond(pod, "Ready")["message"]) == \
                ("False", "containers with unready status: [c]")
            # kubectl logs shows the crashed run, and --previous the same one during the back-off.
            assert await env.logs("crash") == b"run\n"
            assert await env.logs("crash", previous=True) == b"run\n"
            env.clock.advance(9)
            await asyncio.sleep(0.2)
            assert await restarts() == 1
            env.clock.advance(1)
            await until(lambda: _is(restarts(), 2), message="restart after 10 s")
            await until(lambda: _waiting_reason(env, "crash", "CrashLoopBackOff"), message="back in back-off")
            assert "back-off 20s" in (await env.container("crash"))["state"]["waiting"]["message"]
            env.clock.advance(20)
            await until(lambda: _is(restarts(), 3), message="restart after 20 s")
            backoff = [e for e in await env.event_objects("crash") if e["reason"] == "BackOff"]
            assert len(backoff) == 1 and backoff[0]["type"] == "Warning" and backoff[0]["count"] >= 2
            assert backoff[0]["message"] == f"Back-off restarting failed container c in pod crash_default({uid})"
            assert backoff[0]["involvedObject"]["fieldPath"] == "spec.containers{c}"
            started = [e for e in await env.event_objects("crash") if e["reason"] == "Started"]
            assert len(started) == 1 and started[0]["count"] >= 3    # identical events aggregated
    run(main())


async def _is(aw, value):
    return (await aw) == value


def test_on_failure_restarts_until_success(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            marker = tmp_path / "ran-once"
            await env.pod("retry", ["sh", "-c", f"if [ -e {marker} ]; then echo done; exit 0; fi; touch {marker}; "
                                                "exit 2"], restart="OnFailure")
            pod = await env.wait_phase("retry", "Succeeded")
            cs = pod["status"]["containerStatuses"][0]
            assert cs["restartCount"] == 1 and cs["lastState"]["terminated"]["exitCode"] == 2
            assert await env.logs("retry") == b"done\n"
            assert await env.logs("retry", previous=True) == b""
    run(main())


# ---- init containers and deadlines ----------------------------------------------------------

def test_init_containers_run_in_order_before_containers(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            out = tmp_path / "order"
            inits = [{"name": "one", "image": "busybox", "command": ["sh", "-c", f"sleep 0.3; echo one >> {out}"]},
                     {"name": "two", "image": "busybox", "command": ["sh", "-c", f"echo two >> {out}"]}]
            await env.pod("init", containers=[{"name": "main", "image": "busybox",
                                                "command": ["sh", "-c", f"echo main >> {out}; cat {out}"]}],
                          initContainers=inits)
            first = await until(lambda: _init_running(env, "init"), message="first init container running")
            assert first["status"]["phase"] == "Pending"
            assert cond(first, "Initialized")["message"] == "containers with incomplete status: [one two]"
            assert first["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
            pod = await env.wait_phase("init", "Succeeded")
            assert out.read_text() == "one\ntwo\nmain\n"
            for st in pod["status"]["initContainerStatuses"]:
                assert st["state"]["terminated"]["reason"] == "Completed" and st["ready"] is True
            assert await env.logs("init", "main") == b"one\ntwo\nmain\n"
    run(main())


async def _init_running(env, name):
    p = await env.get(name)
    ics = p.get("status", {}).get("initContainerStatuses") or []
    return p if ics and "running" in ics[0].get("state", {}) else None


def test_failed_init_container_fails_a_never_pod(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.pod("initfail", containers=[{"name": "main", "image": "busybox", "command": ["true"]}],
                          initContainers=[{"name": "setup", "image": "busybox", "command": ["sh", "-c", "exit 7"]}])
            pod = await env.wait_phase("initfail", "Failed")
            st = pod["status"]["initContainerStatuses"][0]["state"]["terminated"]
            assert st["exitCode"] == 7
            assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
            with pytest.raises(Exception) as err:
                await env.logs("initfail", "main")
            assert err.value.message == 'container "main" in pod "initfail" is waiting to start: PodInitializing'
    run(main())


def test_sidecar_starts_first_runs_beside_and_stops_after_the_containers(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            out = tmp_path / "seen"
            sidecar = {"name": "side", "image": "busybox", "restartPolicy": "Always",
                       "command": ["sh", "-c", f"echo side >> {out}; trap 'exit 0' TERM; "
                                               "while true; do sleep 0.1; done"]}
            await env.pod("withside", containers=[{"name": "main", "image": "busybox",
                                                    "command": ["sh", "-c", f"sleep 0.3; echo main >> {out}"]}],
                          initContainers=[sidecar])
            running = await env.wait_phase("withside", "Running")
            side = running["status"]["initContainerStatuses"][0]
            assert "running" in side["state"] and side["started"] is True
            pod = await env.wait_phase("withside", "Succeeded")
            assert out.read_text() == "side\nmain\n"
            side = pod["status"]["initContainerStatuses"][0]
            await until(lambda: _has_state(env, "withside", "terminated"), message="main done")
            assert ("Normal", "Killing", "Stopping container side", "spec.initContainers{side}") in \
                await env.events("withside")
    run(main())


def test_active_deadline_kills_the_pod(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.pod("deadline", ["sleep", "60"], activeDeadlineSeconds=5, terminationGracePeriodSeconds=2)
            pod = await env.wait_phase("deadline", "Running")
            pid = env.agent.workers[pod["metadata"]["uid"]].instances["c"].pid
            env.clock.advance(5)
            pod = await env.wait_phase("deadline", "Failed")
            assert pod["status"]["reason"] == "DeadlineExceeded"
            assert pod["status"]["message"] == "Pod was active on the node longer than the specified deadline"
            assert "terminated" in pod["status"]["containerStatuses"][0]["state"]
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            events = await env.events("deadline")
            assert ("Normal", "DeadlineExceeded", "Pod was active on the node longer than the specified deadline",
                    None) in events
            assert ("Normal", "Killing", "Stopping container c", "spec.containers{c}") in events
    run(main())


# ---- deletion ---------------------------------------------------------------------------------

def _gone_or_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_graceful_deletion_sends_sigterm_then_removes_the_pod(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            marker = tmp_path / "got-term"
            await env.pod("web", ["sh", "-c", f"trap 'echo term > {marker}; exit 0' TERM; "
                                              "echo up; while true; do sleep 0.1; done"], restart="Always")
            pod = await env.wait_phase("web", "Running")
            inst = env.agent.workers[pod["metadata"]["uid"]].instances["c"]
            pod_dir = tmp_path / "node" / "pods" / f"default_web_{pod['metadata']['uid']}"
            await until(pod_dir.exists, message="the log under the pod's directory")   # at the first output
            t0 = time.monotonic()
            deleted = await env.c.delete("pods", "default", "web")
            assert deleted["metadata"]["deletionGracePeriodSeconds"] == 30
            await until(lambda: env.gone("web"), message="pod object removed")
            assert time.monotonic() - t0 < 10      # well within the 30 s grace: the process obeyed SIGTERM
            assert marker.read_text() == "term\n"
            await until(lambda: _gone_or_zombie(inst.pid), message="no process left")
            events = await env.events("web")
            assert ("Normal", "Killing", "Stopping container c", "spec.containers{c}") in events
            await until(lambda: not pod_dir.exists(), message="pod directory removed")
    run(main())


def test_pod_removed_from_the_api_has_its_processes_stopped(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            pod = await env.pod("forced", ["sleep", "60"], restart="Always", terminationGracePeriodSeconds=1)
            await env.wait_phase("forced", "Running")
            w = env.agent.workers[pod["metadata"]["uid"]]
            pid = w.instances["c"].pid
            await env.c.delete("pods", "default", "forced", grace_period_seconds=0)
            await until(lambda: _gone_or_zombie(pid), message="process stopped")
            await until(lambda: pod["metadata"]["uid"] not in env.agent.workers, message="worker forgotten")
    run(main())


def test_agent_stop_leaves_no_process_and_a_new_agent_takes_over(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            pod = await env.pod("keep", ["sh", "-c", "echo up; sleep 60"], restart="Always")
            await env.wait_phase("keep", "Running")
            pid = env.agent.workers[pod["metadata"]["uid"]].instances["c"].pid
            await env.stop_agent()
            assert _gone_or_zombie(pid)
            assert (await env.c.get("nodes", None, NODE))["metadata"]["name"] == NODE   # the Node stays
            env.agent = await env.start_agent()
            # The new agent finds the container gone and restarts it, as a kubelet after a reboot.
            await until(lambda: _is(_restart_count(env, "keep"), 1), message="restarted by the new agent")
            cs = await env.container("keep")
            assert cs["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
            await until(lambda: _has_state(env, "keep", "running"), message="running again")
            assert await env.logs("keep") == b"up\n"
    run(main())


async def _restart_count(env, name):
    return (await env.container(name)).get("restartCount")


async def _has_state(env, name, state):
    return state in (await env.container(name)).get("state", {})


# ---- env and volumes --------------------------------------------------------------------------

def test_configmap_env_and_volume_and_config_errors(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            container = {"name": "c", "image": "busybox",
                         "command": ["sh", "-c", "echo env=$GREETING; cat /etc/cfg/greeting; echo; echo $(GREETING)"],
                         "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg",
                                                                                         "key": "greeting"}}}],
                         "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}
            await env.pod("cfg", containers=[container], volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}])
            await until(lambda: _any_event(env, "cfg", "FailedMount"), message="FailedMount")
            await env.c.create("configmaps", "default", {"apiVersion": "v1", "kind": "ConfigMap",
                                                         "metadata": {"name": "cfg"}, "data": {"greeting": "hi"}})
            env.clock.advance(10)
            await env.wait_phase("cfg", "Succeeded")
            out = await env.logs("cfg")
            if env.rt.isolated:
                assert out == b"env=hi\nhi\nhi\n"
            else:   # without isolation, volume mounts are not applied (and cat complains on stderr)
                assert out.startswith(b"env=hi\n") and b"hi" in out.splitlines()[1:]

            # A missing key (the volume is fine): CreateContainerConfigError, then a retry.
            bad = dict(container, name="c", volumeMounts=[],
                       env=[{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope"}}}],
                       command=["sh", "-c", "echo x=$X"])
            await env.pod("cfg2", containers=[bad])
            cs = await until(lambda: _waiting(env, "cfg2"), message="config error")
            assert cs["state"]["waiting"] == {"reason": "CreateContainerConfigError",
                                              "message": "couldn't find key nope in ConfigMap default/cfg"}
            assert ("Warning", "Failed", "Error: couldn't find key nope in ConfigMap default/cfg",
                    "spec.containers{c}") in await env.events("cfg2")
            await env.c.patch("configmaps", "default", "cfg", {"data": {"nope": "found"}})
            env.clock.advance(10)
            await env.wait_phase("cfg2", "Succeeded")
            assert await env.logs("cfg2") == b"x=found\n"
    run(main())


async def _any_event(env, name, reason):
    return any(e[1] == reason for e in await env.events(name))


# ---- lifecycle hooks and termination messages ---------------------------------------------------

def test_pre_stop_runs_before_sigterm_and_post_start_failure_kills(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            log = tmp_path / "order"
            c = {"name": "c", "image": "busybox",
                 "command": ["sh", "-c", f"trap 'echo term >> {log}; exit 0' TERM; while true; do sleep 0.1; done"],
                 "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", f"echo prestop >> {log}"]}}}}
            await env.pod("hooked", containers=[c], restart="Always")
            await env.wait_phase("hooked", "Running")
            await env.c.delete("pods", "default", "hooked")
            await until(lambda: env.gone("hooked"), message="deleted")
            assert log.read_text() == "prestop\nterm\n"

            bad = {"name": "c", "image": "busybox", "command": ["sleep", "60"],
                   "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo nope; exit 3"]}}}}
            await env.pod("badhook", containers=[bad], restart="Never", terminationGracePeriodSeconds=2)
            pod = await env.wait_phase("badhook", "Failed")
            assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143   # SIGTERM
            events = await env.events("badhook")
            assert ("Normal", "Killing", "FailedPostStartHook", "spec.containers{c}") in events
            failed = [e for e in events if e[1] == "FailedPostStartHook"]
            assert failed and failed[0][0] == "Warning" and failed[0][2].startswith(
                'Exec lifecycle hook ([sh -c echo nope; exit 3]) for Container "c" in Pod "badhook_default(')
    run(main())


def test_fallback_to_logs_on_error_is_the_termination_message(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            c = {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo starting; echo it broke >&2; exit 4"],
                 "terminationMessagePolicy": "FallbackToLogsOnError"}
            await env.pod("msg", containers=[c])
            pod = await env.wait_phase("msg", "Failed")
            term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
            assert (term["exitCode"], term["message"]) == (4, "starting\nit broke\n")
    run(main())
