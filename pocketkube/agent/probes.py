"""Liveness, readiness and startup probes, counted as the kubelet's prober workers count them.

One `ProbeWorker` per container and probe kind runs while the container runs: first after
initialDelaySeconds, then every periodSeconds (on the injected clock), each attempt bounded
by timeoutSeconds. A result only changes after successThreshold successes or failureThreshold
failures in a row; liveness and readiness wait until the startup probe has passed. Every
failed attempt is reported (the Unhealthy event), a changed result is handed to the pod
worker, which marks the container ready or restarts it.

The probe actions themselves: exec runs in the container through the runtime, httpGet and
tcpSocket connect to the pod IP (127.0.0.1 when pods share the host network), with the
kubelet's failure messages so `kubectl describe` reads the same.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import aiohttp

log = logging.getLogger("pocketkube.agent.probes")

SUCCESS, FAILURE, UNKNOWN = "success", "failure", "unknown"
LIVENESS, READINESS, STARTUP = "Liveness", "Readiness", "Startup"
USER_AGENT = "kube-probe/1.37"

Runner = Callable[[], Awaitable[tuple[str, str]]]


def _port(value, container: dict) -> int | None:
    """A probe port: a number or the name of one of the container's ports."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        for p in container.get("ports") or []:
            if p.get("name") == value:
                return p.get("containerPort")
    return None


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def http_probe(action: dict, container: dict, default_host: str, timeout: float) -> tuple[str, str]:
    port = _port(action.get("port"), container)
    if port is None:
        return FAILURE, f"unable to find port {action.get('port')!r} in container {container.get('name')}"
    host = action.get("host") or default_host
    scheme = (action.get("scheme") or "HTTP").lower()
    path = action.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{_hostport(host, port)}{path}"
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for h in action.get("httpHeaders") or []:
        if h.get("name"):
            headers[h["name"]] = h.get("value", "")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url, headers=headers, ssl=False, allow_redirects=True, max_redirects=10) as r:
                await r.content.read(10 * 1024)
                if 200 <= r.status < 400:
                    return SUCCESS, ""
                return FAILURE, f"HTTP probe failed with statuscode: {r.status}"
    except asyncio.TimeoutError:
        return FAILURE, (f'Get "{url}": context deadline exceeded '
                         "(Client.Timeout exceeded while awaiting headers)")
    except aiohttp.ClientConnectorError as e:
        return FAILURE, f'Get "{url}": dial tcp {_hostport(host, port)}: connect: {_reason(e.os_error)}'
    except aiohttp.ClientError as e:
        return FAILURE, f'Get "{url}": {e}'


def _reason(e: OSError | None) -> str:
    import errno
    if e is None:
        return "connection refused"
    return {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
            errno.ENETUNREACH: "network is unreachable"}.get(e.errno or 0, (e.strerror or str(e)).lower())


async def tcp_probe(action: dict, container: dict, default_host: str, timeout: float) -> tuple[str, str]:
    port = _port(action.get("port"), container)
    if port is None:
        return FAILURE, f"unable to find port {action.get('port')!r} in container {container.get('name')}"
    host = action.get("host") or default_host
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        return FAILURE, f"dial tcp {_hostport(host, port)}: i/o timeout"
    except OSError as e:
        return FAILURE, f"dial tcp {_hostport(host, port)}: connect: {_reason(e)}"
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return SUCCESS, ""


def probe_timeout(probe: dict) -> float:
    return float(probe.get("timeoutSeconds") or 1)


class ProbeWorker:
    """Runs one probe of one container instance and reports changes of its result."""

    def __init__(self, kind: str, probe: dict, clock, started_at: float, run: Runner,
                 on_result: Callable[[str, bool], None], on_failed_attempt: Callable[[str, str], None],
                 may_probe: Callable[[str], bool]):
        self.kind = kind
        self.probe = probe
        self.clock = clock
        self.started_at = started_at
        self._run = run
        self._on_result = on_result
        self._on_failed_attempt = on_failed_attempt
        self._may_probe = may_probe
        # A readiness or startup probe fails until it first passes; liveness passes until it fails.
        self.result = kind == LIVENESS
        self._last: str | None = None
        self._run_length = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"probe-{self.kind}")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _loop(self) -> None:
        period = float(self.probe.get("periodSeconds") or 10)
        due = self.started_at + float(self.probe.get("initialDelaySeconds") or 0)
        while True:
            delay = due - self.clock.now()
            if delay > 0:
                await self.clock.sleep(delay)
            due = max(due + period, self.clock.now())
            if not self._may_probe(self.kind):
                continue
            try:
                result, output = await self._run()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a prober error: the result is thrown away, as the kubelet does
                log.debug("%s probe errored: %r", self.kind, e)
                continue
            if result == UNKNOWN:
                continue
            if result == FAILURE:
                self._on_failed_attempt(self.kind, output)
            if not self._may_probe(self.kind):
                continue   # the container started stopping meanwhile
            self._count(result == SUCCESS)

    def _count(self, ok: bool) -> None:
        outcome = SUCCESS if ok else FAILURE
        if outcome == self._last:
            self._run_length += 1
        else:
            self._last, self._run_length = outcome, 1
        threshold = int(self.probe.get("successThreshold") or 1) if ok else int(self.probe.get("failureThreshold") or 3)
        if self._run_length < threshold:
            return
        changed = self.result != ok
        self.result = ok
        if not ok and self.kind in (LIVENESS, STARTUP):
            # The container will be restarted; count afresh for the next instance.
            self._run_length = 0
            self._on_result(self.kind, ok)
            self.stop()
            return
        if changed:
            self._on_result(self.kind, ok)
