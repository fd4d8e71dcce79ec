"""Probes as the kubelet runs them: readiness flips Ready both ways, a failing liveness probe
restarts the container, a startup probe holds the others back, httpGet and tcpSocket reach
the pod. Probe periods pass on the FakeClock."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.test_agent import Env, _is, cond, run, until


def sleeper(name: str = "c", **probes) -> dict:
    # SIGTERM ends it at once (a shell as PID 1 would ignore it), so restarts are quick.
    return {"name": name, "image": "busybox",
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"], **probes}


def exec_probe(path, period: int = 5, failure: int = 3, **extra) -> dict:
    return {"exec": {"command": ["test", "-e", str(path)]}, "periodSeconds": period, "failureThreshold": failure,
            **extra}


async def ready(env, name) -> str:
    return cond(await env.get(name), "Ready").get("status", "")


def test_readiness_probe_flips_ready(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            flag = tmp_path / "ready"
            await env.pod("web", containers=[sleeper(readinessProbe=exec_probe(flag, period=5, failure=2))],
                          restart="Always")
            pod = await env.wait_phase("web", "Running")
            await until(lambda: _unhealthy(env, "web"), message="first failed readiness probe")
            pod = await env.get("web")
            assert (cond(pod, "Ready")["status"], cond(pod, "Ready")["reason"]) == ("False", "ContainersNotReady")
            cs = pod["status"]["containerStatuses"][0]
            assert (cs["ready"], cs["started"]) == (False, True)
            flag.write_text("")
            env.clock.advance(5)
            await until(lambda: _is(ready(env, "web"), "True"), message="Ready")
            assert (await env.container("web"))["ready"] is True
            flag.unlink()
            env.clock.advance(5)     # one failure: below the threshold of 2
            await until(lambda: _count(env, "web", "Unhealthy", 2), message="second failure")
            assert await ready(env, "web") == "True"
            env.clock.advance(5)
            await until(lambda: _is(ready(env, "web"), "False"), message="not Ready again")
            events = [e for e in await env.event_objects("web") if e["reason"] == "Unhealthy"]
            assert events[0]["type"] == "Warning" and events[0]["message"] == "Readiness probe failed: "
            assert events[0]["involvedObject"]["fieldPath"] == "spec.containers{c}"
            assert (await env.container("web"))["restartCount"] == 0
    run(main())


async def _unhealthy(env, name):
    return any(e[1] == "Unhealthy" for e in await env.events(name))


async def _count(env, name, reason, n):
    return sum(e["count"] for e in await env.event_objects(name) if e["reason"] == reason) >= n


def test_liveness_failure_restarts_the_container(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            alive = tmp_path / "alive"
            alive.write_text("")
            await env.pod("live", containers=[sleeper(livenessProbe=exec_probe(alive, period=3, failure=2))],
                          restart="Always", terminationGracePeriodSeconds=5)
            await env.wait_phase("live", "Running")
            env.clock.advance(3)
            await asyncio.sleep(0.2)
            assert (await env.container("live"))["restartCount"] == 0
            alive.unlink()
            env.clock.advance(3)
            await until(lambda: _count(env, "live", "Unhealthy", 1), message="first liveness failure")
            env.clock.advance(3)

            async def restarted():
                cs = await env.container("live")
                return cs.get("restartCount") == 1 and "running" in cs.get("state", {})
            await until(restarted, message="restarted after the liveness failure")
            cs = await env.container("live")
            assert cs["lastState"]["terminated"]["exitCode"] == 0    # it obeyed the SIGTERM
            events = await env.events("live")
            assert ("Normal", "Killing", "Container c failed liveness probe, will be restarted",
                    "spec.containers{c}") in events
            assert ("Warning", "Unhealthy", "Liveness probe failed: ", "spec.containers{c}") in events
    run(main())


def test_startup_probe_holds_back_liveness_and_readiness(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            started, alive = tmp_path / "started", tmp_path / "alive"
            await env.pod("slow", containers=[sleeper(
                startupProbe=exec_probe(started, period=2, failure=30),
                livenessProbe=exec_probe(alive, period=2, failure=1))], restart="Always")
            await env.wait_phase("slow", "Running")
            for _ in range(3):   # liveness would fail at once, but it does not run before startup passes
                env.clock.advance(2)
                await asyncio.sleep(0.05)
            cs = await env.container("slow")
            assert (cs["started"], cs["ready"], cs["restartCount"]) == (False, False, 0)
            alive.write_text("")
            started.write_text("")
            env.clock.advance(2)
            await until(lambda: _started(env, "slow"), message="started")
            await until(lambda: _is(ready(env, "slow"), "True"), message="Ready (no readiness probe)")
            events = await env.events("slow")
            assert all("Liveness" not in e[2] for e in events)
            assert any(e[2] == "Startup probe failed: " for e in events)
    run(main())


async def _started(env, name):
    return (await env.container(name)).get("started") is True


def test_http_and_tcp_probes_reach_the_pod(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            if not env.rt.isolated:
                pytest.skip("needs pod network namespaces (a port of its own per pod)")
            probe = {"periodSeconds": 5, "failureThreshold": 1}
            web = {"name": "web", "image": "python",
                   "command": ["python3", "-m", "http.server", "8080", "--directory", str(tmp_path)],
                   "ports": [{"name": "http", "containerPort": 8080}],
                   "readinessProbe": {"httpGet": {"path": "/ok.txt", "port": "http"}, **probe},
                   "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 30, **probe}}
            await env.pod("web", containers=[web], restart="Always")
            await env.wait_phase("web", "Running")
            pod_ip = (await env.get("web"))["status"]["podIP"]
            # The server may need a moment: probe again until it answers, and 404 means not ready.
            for _ in range(50):
                env.clock.advance(5)
                await asyncio.sleep(0.1)
                if any("statuscode: 404" in e[2] for e in await env.events("web")):
                    break
            events = await env.events("web")
            print(events)
            assert ("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404",
                    "spec.containers{web}") in events
            assert await ready(env, "web") == "False"
            (tmp_path / "ok.txt").write_text("ok")
            env.clock.advance(5)
            await until(lambda: _is(ready(env, "web"), "True"), message="Ready over HTTP")
            assert (await env.container("web"))["restartCount"] == 0   # tcpSocket liveness passes
            assert all("Liveness" not in e[2] for e in await env.events("web"))
            assert pod_ip.startswith(env.rt.node_cidr.rsplit(".", 1)[0])
    run(main())
