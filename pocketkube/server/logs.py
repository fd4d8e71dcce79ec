"""`pods/log`: validate PodLogOptions as the apiserver does, then stream from the pod's node.

The apiserver checks the request and the pod (is it on a node, which container), then streams
from that node's kubelet. Here a node is either an agent in this process (called directly) or
an agent on another machine (proxied to its log server over HTTPS with the cluster token).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator, Protocol

import aiohttp
from aiohttp import web

from ..api import errors
from ..api.errors import ApiError
from ..clock import parse_rfc3339


@dataclass
class LogOptions:
    container: str
    follow: bool = False
    previous: bool = False
    tail: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


class LocalAgent(Protocol):
    def logs(self, pod: dict, container: str | None, follow: bool, previous: bool, tail: int | None,
             since_seconds: int | None, since_time: str | None, timestamps: bool,
             limit_bytes: int | None) -> AsyncIterator[bytes]: ...


def parse_options(q, pod: dict, parse_bool, parse_int) -> LogOptions:
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    errs = []
    since_seconds = parse_int(q, "sinceSeconds")
    since_time = q.get("sinceTime") or None
    tail = parse_int(q, "tailLines")
    limit = parse_int(q, "limitBytes")
    if since_seconds is not None and since_seconds < 1:
        errs.append(errors.invalid("sinceSeconds", since_seconds, "must be greater than 0"))
    if since_seconds is not None and since_time:
        errs.append(errors.forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    if since_time and parse_rfc3339(since_time) is None:
        raise errors.bad_request(f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": cannot parse')
    if tail is not None and tail < 0:
        errs.append(errors.invalid("tailLines", tail, "must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        errs.append(errors.invalid("limitBytes", limit, "must be greater than 0"))
    if errs:
        raise errors.invalid_error("PodLogOptions", "", name, errs)
    containers = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    container = q.get("container") or ""
    if not container:
        if len(containers) == 1:
            container = containers[0]
        else:
            msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
            if inits:
                msg += f" or one of the init containers: [{' '.join(inits)}]"
            raise errors.bad_request(msg)
    elif container not in containers and container not in inits:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    if not spec.get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    return LogOptions(container, parse_bool(q, "follow"), parse_bool(q, "previous"), tail, since_seconds,
                      since_time, parse_bool(q, "timestamps"), limit)


class LogRouter:
    """Finds the agent serving a pod's node and streams its logs."""

    def __init__(self, api, token: str):
        self.api = api
        self.token = token
        self.local: dict[str, LocalAgent] = {}

    def register(self, node_name: str, agent: LocalAgent) -> None:
        self.local[node_name] = agent

    async def stream(self, request: web.Request, pod: dict, opts: LogOptions) -> web.StreamResponse:
        node = pod["spec"]["nodeName"]
        agent = self.local.get(node)
        if agent is not None:
            chunks = agent.logs(pod, opts.container, opts.follow, opts.previous, opts.tail, opts.since_seconds,
                                opts.since_time, opts.timestamps, opts.limit_bytes)
            return await self._write(request, chunks)
        return await self._proxy(request, pod, opts)

    async def _write(self, request: web.Request, chunks: AsyncIterator[bytes]) -> web.StreamResponse:
        # The first chunk is awaited before answering, so an error becomes a Status, not a broken stream.
        it = chunks.__aiter__()
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            first = b""
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            if first:
                await resp.write(first)
            async for chunk in it:
                await resp.write(chunk)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    async def _proxy(self, request: web.Request, pod: dict, opts: LogOptions) -> web.StreamResponse:
        node = await self.api.get(_nodes(), "", pod["spec"]["nodeName"])
        status = node.get("status") or {}
        address = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        if not address or not port:
            raise errors.bad_request(f"node {node['metadata']['name']} has no address to fetch logs from")
        meta = pod["metadata"]
        params = {"follow": str(opts.follow).lower(), "previous": str(opts.previous).lower(),
                  "timestamps": str(opts.timestamps).lower()}
        for k, v in (("tailLines", opts.tail), ("sinceSeconds", opts.since_seconds),
                     ("sinceTime", opts.since_time), ("limitBytes", opts.limit_bytes)):
            if v is not None:
                params[k] = str(v)
        host = f"[{address}]" if ":" in address else address
        url = f"https://{host}:{port}/containerLogs/{meta['namespace']}/{meta['name']}/{opts.container}"
        session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"},
                                        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        try:
            upstream = await session.get(url, params=params, ssl=False)
        except aiohttp.ClientError as e:
            await session.close()
            raise ApiError(500, "InternalError", f"Get \"{url}\": {e}") from None
        try:
            if upstream.status != 200:
                raise ApiError(upstream.status, "BadRequest" if upstream.status == 400 else "",
                               (await upstream.text())[:1000])

            async def chunks():
                async for chunk in upstream.content.iter_any():
                    yield chunk
            return await self._write(request, chunks())
        finally:
            upstream.release()
            await session.close()


def _nodes():
    from ..api.resources import lookup
    return lookup("", "v1", "nodes")
