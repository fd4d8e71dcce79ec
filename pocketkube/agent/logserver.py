"""The agent's log endpoint, for a control plane on another machine.

The API server answers `kubectl logs` for pods on its own node by calling the agent directly;
for a node elsewhere it proxies the request here, as the apiserver proxies to a kubelet's
`/containerLogs/{namespace}/{pod}/{container}` on port 10250. HTTPS with the agent's
certificate, and only for callers presenting the cluster's bearer token. The query
parameters are the kubelet's (follow, previous, tailLines, sinceSeconds, sinceTime,
timestamps, limitBytes); a refusal comes back as its status code with the message as text.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl

from aiohttp import web

from ..api.errors import ApiError

log = logging.getLogger("pocketkube.agent.logserver")

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}


def _bool(q, key: str) -> bool:
    return q.get(key, "") in _TRUE


def _int(q, key: str) -> int | None:
    v = q.get(key)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ApiError(400, "BadRequest", f'invalid value for {key}: "{v}"') from None


class LogServer:
    def __init__(self, agent, token: str, cert_file: str, key_file: str, bind: str = "0.0.0.0",
                 port: int = 10250):
        self.agent = agent
        self.token = token
        self.cert_file = cert_file
        self.key_file = key_file
        self.bind = bind
        self.port = port
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def start(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port, ssl_context=ctx)
        await site.start()
        if self.port == 0:   # an ephemeral port (tests): remember which
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not self.token:
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.Response(status=401, text="Unauthorized")
        ns, name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        pod = self.agent.get_pod(ns, name)
        if pod is None:
            return web.Response(status=404, text=f'pods "{name}" not found')
        q = request.query
        try:
            chunks = self.agent.logs(pod, container, _bool(q, "follow"), _bool(q, "previous"), _int(q, "tailLines"),
                                     _int(q, "sinceSeconds"), q.get("sinceTime") or None, _bool(q, "timestamps"),
                                     _int(q, "limitBytes")).__aiter__()
            # The first chunk decides: a refusal is still a plain status, not a broken stream.
            try:
                first = await chunks.__anext__()
            except StopAsyncIteration:
                first = b""
        except ApiError as e:
            return web.Response(status=e.code, text=e.message)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            if first:
                await resp.write(first)
            async for chunk in chunks:
                await resp.write(chunk)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp
