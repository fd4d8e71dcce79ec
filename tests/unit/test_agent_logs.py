"""`kubectl logs` on the agent: container choice and the kubelet's refusals, --tail,
--timestamps, --limit-bytes, --since, -f until the container exits, and the HTTPS log server a
remote control plane proxies to."""

from __future__ import annotations

import re
import time

import aiohttp
import pytest

from pocketkube.agent.logserver import LogServer
from pocketkube.api.errors import ApiError
from pocketkube.server.credentials import default_sans, ensure_credentials
from tests.unit.test_agent import Env, run, until


async def refused(env, name, container=None, **kw) -> str:
    with pytest.raises(ApiError) as err:
        await env.logs(name, container, **kw)
    assert err.value.code == 400 and err.value.reason == "BadRequest"
    return err.value.message


def test_container_choice_and_refusals(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            two = [{"name": "a", "image": "busybox", "command": ["sh", "-c", "echo from a"]},
                   {"name": "b", "image": "busybox", "command": ["sh", "-c", "echo from b"]}]
            await env.pod("two", containers=two, initContainers=[{"name": "i", "image": "busybox",
                                                                  "command": ["true"]}])
            await env.wait_phase("two", "Succeeded")
            assert await refused(env, "two") == ("a container name must be specified for pod two, choose one of: "
                                                 "[a b] or one of the init containers: [i]")
            assert await refused(env, "two", "zz") == "container zz is not valid for pod two"
            assert await env.logs("two", "b") == b"from b\n"
            assert await env.logs("two", "i") == b""
            assert await refused(env, "two", "a", previous=True) == \
                'previous terminated container "a" in pod "two" not found'

            # Waiting containers have nothing to show yet.
            await env.pod("nocfg", containers=[{"name": "c", "image": "busybox", "command": ["true"],
                                                 "envFrom": [{"configMapRef": {"name": "missing"}}]}])
            await until(lambda: _reason(env, "nocfg", "CreateContainerConfigError"), message="config error")
            assert await refused(env, "nocfg") == \
                'container "c" in pod "nocfg" is waiting to start: CreateContainerConfigError'
            await env.pod("nomount", ["true"], volumes=[{"name": "v", "secret": {"secretName": "missing"}}])
            await until(lambda: _event(env, "nomount", "FailedMount"), message="FailedMount")
            assert await refused(env, "nomount") == \
                'container "c" in pod "nomount" is waiting to start: ContainerCreating'
    run(main())


async def _reason(env, name, reason):
    return ((await env.container(name)).get("state", {}).get("waiting") or {}).get("reason") == reason


async def _event(env, name, reason):
    return any(e[1] == reason for e in await env.events(name))


def test_tail_timestamps_limit_and_since(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.pod("lines", ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; echo err >&2"])
            await env.wait_phase("lines", "Succeeded")
            assert await env.logs("lines") == b"line 1\nline 2\nline 3\nline 4\nline 5\nerr\n"
            assert await env.logs("lines", tail=2) == b"line 5\nerr\n"
            assert await env.logs("lines", tail=0) == b""
            assert await env.logs("lines", limit_bytes=9) == b"line 1\nli"
            stamped = (await env.logs("lines", tail=1, timestamps=True)).decode()
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z err\n", stamped)
            assert await env.logs("lines", since_seconds=3600) == await env.logs("lines")
            future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
            assert await env.logs("lines", since_time=future) == b""
    run(main())


def test_follow_streams_until_the_container_exits(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.pod("ticker", ["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.3; done"])
            await env.wait_phase("ticker", "Running")
            t0 = time.monotonic()
            chunks = []
            async for chunk in env.agent.logs(await env.get("ticker"), None, True, False, None, None, None,
                                              False, None):
                chunks.append(chunk)
            assert b"".join(chunks) == b"tick 1\ntick 2\ntick 3\n"
            assert len(chunks) >= 2 and time.monotonic() - t0 >= 0.4   # streamed as it was written
    run(main())


def test_log_server_over_https_with_the_cluster_token(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            creds = ensure_credentials(str(tmp_path / "creds"), default_sans("127.0.0.1"))
            server = LogServer(env.agent, "s3cret", creds.server_cert, creds.server_key, "127.0.0.1", 0)
            await server.start()
            try:
                await env.pod("hello", ["sh", "-c", "echo hello; echo world"])
                await env.wait_phase("hello", "Succeeded")
                base = f"https://127.0.0.1:{server.port}/containerLogs/default"
                async with aiohttp.ClientSession() as s:
                    async with s.get(f"{base}/hello/c", ssl=False) as r:
                        assert r.status == 401
                    auth = {"Authorization": "Bearer s3cret"}
                    async with s.get(f"{base}/hello/c", ssl=False, headers={"Authorization": "Bearer nope"}) as r:
                        assert r.status == 401
                    async with s.get(f"{base}/hello/c", ssl=False, headers=auth) as r:
                        assert r.status == 200 and await r.read() == b"hello\nworld\n"
                    async with s.get(f"{base}/hello/c", params={"tailLines": "1", "follow": "true"}, ssl=False,
                                     headers=auth) as r:
                        assert r.status == 200 and await r.read() == b"world\n"
                    async with s.get(f"{base}/hello/c", params={"previous": "true"}, ssl=False, headers=auth) as r:
                        assert r.status == 400
                        assert await r.text() == 'previous terminated container "c" in pod "hello" not found'
                    async with s.get(f"{base}/absent/c", ssl=False, headers=auth) as r:
                        assert r.status == 404
            finally:
                await server.stop()
    run(main())
