"""The client over HTTPS, for agents and controllers running outside the control plane.

It sends exactly what kubectl's REST client sends (JSON bodies, the patch content types,
DeleteOptions) and turns Status bodies back into `ApiError`, so code written against the
in-process client runs unchanged against a remote server.
"""

from __future__ import annotations

import base64
import ssl
from typing import AsyncIterator
from urllib.parse import quote

import aiohttp
import orjson
import yaml

from ..api.errors import ApiError
from . import MERGE, Client, resource


def _path(res, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
    r = resource(res)
    base = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
    if r.namespaced and namespace:
        base += f"/namespaces/{quote(namespace)}"
    base += f"/{r.plural}"
    if name:
        base += f"/{quote(name)}"
    if sub:
        base += f"/{sub}"
    return base


class HttpClient(Client):
    def __init__(self, server: str, token: str | None, ca_data: bytes | None = None,
                 insecure: bool = False):
        self.server = server.rstrip("/")
        self.token = token
        if insecure:
            self._ssl: ssl.SSLContext | bool = False
        else:
            ctx = ssl.create_default_context()
            if ca_data:
                ctx.load_verify_locations(cadata=ca_data.decode())
            self._ssl = ctx
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str) -> "HttpClient":
        with open(path) as f:
            cfg = yaml.safe_load(f)
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        ca = None
        if cluster.get("certificate-authority-data"):
            ca = base64.b64decode(cluster["certificate-authority-data"])
        elif cluster.get("certificate-authority"):
            with open(cluster["certificate-authority"], "rb") as f:
                ca = f.read()
        return cls(cluster["server"], user.get("token"), ca, bool(cluster.get("insecure-skip-tls-verify")))

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._session = aiohttp.ClientSession(
                headers=headers, connector=aiohttp.TCPConnector(ssl=self._ssl, limit=100),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    async def _request(self, method: str, path: str, body=None, params: dict | None = None,
                       content_type: str = "application/json"):
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        async with self.session().request(method, self.server + path, data=data, params=params,
                                          headers=headers) as r:
            raw = await r.read()
            if r.status >= 400:
                raise _error(r.status, raw)
            return orjson.loads(raw) if raw else None

    async def get(self, res, namespace, name):
        return await self._request("GET", _path(res, namespace, name))

    async def list(self, res, namespace=None, label_selector="", field_selector="", limit=0, continue_token=""):
        params = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector),
                                    ("limit", str(limit) if limit else ""), ("continue", continue_token)) if v}
        return await self._request("GET", _path(res, namespace), params=params)

    async def create(self, res, namespace, obj, result=True):
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        return await self._request("POST", _path(res, ns), obj)

    async def update(self, res, namespace, obj, subresource=None, result=True):
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        return await self._request("PUT", _path(res, ns, obj["metadata"]["name"], subresource), obj)

    async def patch(self, res, namespace, name, patch, patch_type=MERGE, subresource=None):
        return await self._request("PATCH", _path(res, namespace, name, subresource), patch,
                                   content_type=patch_type)

    async def delete(self, res, namespace, name, grace_period_seconds=None, propagation_policy=None,
                     preconditions=None, result=True, current=None):
        body: dict = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if preconditions:
            body["preconditions"] = preconditions
        return await self._request("DELETE", _path(res, namespace, name), body)

    async def watch(self, res, namespace=None, resource_version="", label_selector="", field_selector="",
                    timeout=None, allow_bookmarks=True) -> AsyncIterator[dict]:
        params = {"watch": "true"}
        for k, v in (("resourceVersion", resource_version), ("labelSelector", label_selector),
                     ("fieldSelector", field_selector),
                     ("timeoutSeconds", str(int(timeout)) if timeout else ""),
                     ("allowWatchBookmarks", "true" if allow_bookmarks else "")):
            if v:
                params[k] = v
        async with self.session().get(self.server + _path(res, namespace), params=params) as r:
            if r.status >= 400:
                raise _error(r.status, await r.read())
            async for line in r.content:
                if line.strip():
                    yield orjson.loads(line)

    async def bind(self, namespace, name, node, uid=None):
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        if uid:
            body["metadata"]["uid"] = uid
        await self._request("POST", _path("pods", namespace, name, "binding"), body)

    async def raw_get(self, path: str, params: dict | None = None) -> aiohttp.ClientResponse:
        """A GET whose response the caller streams (pods/log)."""
        return await self.session().get(self.server + path, params=params)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _error(status: int, raw: bytes) -> ApiError:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return ApiError(body.get("code", status), body.get("reason", ""), body.get("message", ""),
                        body.get("details"))
    return ApiError(status, "", raw.decode(errors="replace")[:500])
