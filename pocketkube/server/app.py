"""The HTTP face of the API: routing, authentication, content negotiation, limits, TLS.

Kubernetes URLs are regular enough that one handler parses them (`/api/v1/namespaces/NS/pods/X/log`,
`/apis/GROUP/VERSION/...`) faster and more predictably than a route table. Business rules stay in
`pocketkube.api`; this module only turns requests into `Api` calls and results into JSON, Tables
or watch streams, and every failure into a `Status` body, never a traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import platform
import ssl
import sys
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from ..api import discovery, errors, openapi
from ..api.core import MAX_BODY, PATCH_TYPES, Api, WriteOptions
from ..api.decode import decode_body
from ..api.errors import ApiError
from ..api.resources import Resource, lookup
from ..api.tables import to_table
from ..api.watching import WatchRequest, validate_request, watch_batches
from .logs import LogRouter, parse_options

log = logging.getLogger("pocketkube.server")

KUBE_VERSION = (1, 37, 0)
JSON = "application/json"
UNAUTHENTICATED_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/healthz/", "/livez/", "/readyz/",
                         "/version/"}

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def parse_bool(q, name: str, default: bool = False) -> bool:
    v = q.get(name)
    if v is None or v == "":
        return default
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise errors.bad_request(f'invalid boolean value for {name}: strconv.ParseBool: parsing "{v}": invalid syntax')


def parse_int(q, name: str) -> int | None:
    v = q.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: strconv.ParseInt: parsing "{v}": invalid syntax') from None


def version_info() -> dict:
    major, minor, patch = KUBE_VERSION
    from .. import __version__
    return {"major": str(major), "minor": str(minor), "gitVersion": f"v{major}.{minor}.{patch}",
            "gitCommit": f"pocketkube-{__version__}", "gitTreeState": "clean",
            "buildDate": "2026-11-01T00:00:00Z",
            "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
            "compiler": "cpython", "platform": f"{sys.platform}/{platform.machine().lower()}"}


def _json(body: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def _status_response(err: ApiError) -> web.Response:
    headers = dict(err.headers) if err.headers else None
    return _json(err.status(), err.code, headers)


def _wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def _check_accept(accept: str) -> None:
    if not accept:
        return
    for part in accept.split(","):
        mt = part.split(";")[0].strip()
        if mt in ("", "*/*", "application/*", JSON, "application/yaml") or mt.startswith("application/json"):
            return
    raise errors.not_acceptable(
        "only the following media types are accepted: application/json, application/yaml")


def _table_include(q) -> str:
    v = q.get("includeObject") or "Metadata"
    if v not in ("None", "Metadata", "Object"):
        raise errors.bad_request(f"includeObject: Unsupported value: \"{v}\"")
    return v


class Server:
    """Owns the aiohttp application for one `Api`."""

    def __init__(self, api: Api, token: str | None, server_address: str = "127.0.0.1:6443"):
        self.api = api
        self.token = token
        self.server_address = server_address
        self.logs = LogRouter(api, token or "")
        self.ready = asyncio.Event()
        self.app = web.Application(client_max_size=MAX_BODY + 1)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    # ---- entry ---------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            path = request.path
            if path not in UNAUTHENTICATED_PATHS:
                self._authenticate(request)
            return await self._dispatch(request, path)
        except ApiError as e:
            return _status_response(e)
        except web.HTTPRequestEntityTooLarge:
            return _status_response(errors.too_large(
                f"the server has received too large of a request body (limit {MAX_BODY} bytes)"))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # a bug: answer with a Status, keep the details in our log
            log.exception("internal error handling %s %s", request.method, request.path_qs)
            return _status_response(errors.internal_error(f"{type(e).__name__}: {e}"))

    def _authenticate(self, request: web.Request) -> None:
        if self.token is None:
            return
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return
        raise errors.unauthorized()

    async def _dispatch(self, request: web.Request, path: str) -> web.StreamResponse:
        segs = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        if not segs:
            return _json({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v3",
                                    "/readyz", "/version"]})
        head = segs[0]
        if head in ("healthz", "livez", "readyz") and len(segs) == 1:
            if head == "readyz" and not self.ready.is_set():
                return web.Response(text="[-]ready failed: not ready yet", status=500)
            return web.Response(text="ok", content_type="text/plain")
        if head == "version" and len(segs) == 1:
            return _json(version_info())
        if head == "openapi":
            return await self._openapi(request, segs)
        if head == "api":
            if len(segs) == 1:
                return self._discovery_root(request, core=True)
            return await self._group_version(request, "", segs[1], segs[2:])
        if head == "apis":
            if len(segs) == 1:
                return self._discovery_root(request, core=False)
            if len(segs) == 2:
                g = discovery.api_group(segs[1])
                if g is None:
                    raise errors.not_found_error("", "", "")
                return _json(g)
            return await self._group_version(request, segs[1], segs[2], segs[3:])
        raise ApiError(404, "NotFound", "the server could not find the requested resource",
                       {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})

    # ---- discovery and openapi -----------------------------------------------------------------

    def _discovery_root(self, request: web.Request, core: bool) -> web.Response:
        accept = request.headers.get("Accept", "")
        if discovery.wants_aggregated(accept):
            body = discovery.aggregated_core() if core else discovery.aggregated_groups()
            return web.Response(body=orjson.dumps(body), headers={
                "Content-Type": discovery.AGGREGATED_CONTENT_TYPE, "Vary": "Accept"})
        body = discovery.api_versions(self.server_address) if core else discovery.api_group_list()
        return web.Response(body=orjson.dumps(body), content_type=JSON, headers={"Vary": "Accept"})

    async def _openapi(self, request: web.Request, segs: list[str]) -> web.Response:
        if len(segs) >= 2 and segs[1] == "v3":
            if len(segs) == 2:
                return _json(await asyncio.get_running_loop().run_in_executor(None, openapi.openapi_root))
            gv = "/".join(segs[2:])
            doc = await asyncio.get_running_loop().run_in_executor(None, openapi.openapi_group_version, gv)
            if doc is not None:
                headers = {"Cache-Control": "public, immutable"} if request.query.get("hash") else None
                return web.Response(body=doc, content_type=JSON, headers=headers)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    # ---- resources -----------------------------------------------------------------------------

    async def _group_version(self, request: web.Request, group: str, version: str,
                             rest: list[str]) -> web.StreamResponse:
        if not rest:
            doc = discovery.api_resource_list(group, version)
            if doc is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(doc)
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and lookup(group, version, rest[2]) is not None \
                and lookup(group, version, rest[2]).namespaced:
            ns, rest = rest[1], rest[2:]
        res = lookup(group, version, rest[0])
        if res is None or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if ns is not None and not ns:
            raise errors.bad_request("namespace is required")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if name == "":
            raise errors.bad_request("name is required")
        if sub is not None and res.subresource(sub) is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.namespaced and ns is None and name is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return await self._resource(request, res, ns, name, sub)

    async def _read_body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise errors.too_large(f"the server has received too large of a request body (limit {MAX_BODY} bytes)")
        body = await request.read()
        if len(body) > MAX_BODY:
            raise errors.too_large(f"the server has received too large of a request body (limit {MAX_BODY} bytes)")
        return body

    async def _decode(self, request: web.Request, raw: bytes) -> Any:
        ctype = (request.headers.get("Content-Type") or JSON).split(";")[0].strip().lower()
        if ctype in ("application/vnd.kubernetes.protobuf", "application/cbor"):
            raise errors.unsupported_media_type(
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json, application/yaml (pocketkube does not read {ctype}; for kubectl's "
                f"\"create <kind>\" generators use: kubectl create ... --dry-run=client -o yaml | kubectl apply -f -)")
        if ctype not in (JSON, "application/yaml", "text/plain", "*/*", ""):
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json, application/yaml")
        if not raw.strip():
            raise errors.bad_request("the body of the request was empty")
        return decode_body(raw, ctype if ctype == "application/yaml" else JSON)

    def _write_options(self, q) -> WriteOptions:
        dry = q.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise errors.invalid_error("CreateOptions", "meta.k8s.io", "", [errors.not_supported(
                    "dryRun", d, ["All"])])
        return WriteOptions(dry_run=bool(dry), field_validation=q.get("fieldValidation", ""),
                            field_manager=q.get("fieldManager", ""), force=parse_bool(q, "force"))

    async def _resource(self, request: web.Request, res: Resource, ns: str | None, name: str | None,
                        sub: str | None) -> web.StreamResponse:
        method = request.method
        q = request.query
        api = self.api
        accept = request.headers.get("Accept", "")
        if method == "GET":
            _check_accept(accept)
        if sub == "log":
            if method != "GET":
                raise errors.method_not_allowed("the server does not allow this method on the requested resource")
            return await self._logs(request, ns or "", name or "")
        if name is None:
            if method == "GET":
                if parse_bool(q, "watch"):
                    return await self._watch(request, res, ns)
                label = q.get("labelSelector", "")
                field = q.get("fieldSelector", "")
                limit = parse_int(q, "limit") or 0
                result = await api.list(res, ns, label, field, max(0, limit), q.get("continue", ""))
                return self._respond_list(res, result, accept, q)
            if method == "POST":
                if res.namespaced and ns is None:
                    raise errors.method_not_allowed("the server does not allow this method on the requested resource")
                raw = await self._read_body(request)
                body = await self._decode(request, raw)
                r = await api.create(res, ns or "", body, self._write_options(q), raw)
                return self._respond_obj(res, r.obj, accept, q, r.code, r.warnings)
            if method == "DELETE":
                opts = await self._delete_options(request)
                result = await api.delete_collection(res, ns, opts, q.get("labelSelector", ""),
                                                     q.get("fieldSelector", ""))
                return _json(result)
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        if sub == "scale":
            if method == "GET":
                return _json(await api.get_scale(res, ns or "", name))
            raw = await self._read_body(request)
            if method == "PUT":
                return _json(await api.update_scale(res, ns or "", name, await self._decode(request, raw),
                                                    self._write_options(q)))
            if method == "PATCH":
                ptype = self._patch_type(request)
                return _json(await api.patch_scale(res, ns or "", name, ptype, raw, self._write_options(q)))
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        if sub == "binding":
            if method != "POST":
                raise errors.method_not_allowed("the server does not allow this method on the requested resource")
            raw = await self._read_body(request)
            return _json(await api.bind(ns or "", name, await self._decode(request, raw), self._write_options(q)),
                         201)
        if method == "GET":
            obj = await api.get(res, ns or "", name)
            return self._respond_obj(res, obj, accept, q)
        if method == "PUT":
            raw = await self._read_body(request)
            body = await self._decode(request, raw)
            r = await api.update(res, ns or "", name, body, self._write_options(q), raw, subresource=sub)
            return self._respond_obj(res, r.obj, accept, q, r.code, r.warnings)
        if method == "PATCH" and sub != "finalize":
            raw = await self._read_body(request)
            ptype = self._patch_type(request)
            if not raw.strip():
                raise errors.bad_request("the body of the request was empty")
            r = await api.patch(res, ns or "", name, ptype, raw, self._write_options(q), subresource=sub)
            return self._respond_obj(res, r.obj, accept, q, r.code, r.warnings)
        if method == "DELETE" and sub is None:
            opts = await self._delete_options(request)
            r = await api.delete(res, ns or "", name, opts)
            return self._respond_obj(res, r.obj, accept, q, r.code)
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    def _patch_type(self, request: web.Request) -> str:
        ctype = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in PATCH_TYPES:
            raise errors.unsupported_media_type(
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(PATCH_TYPES)}")
        return ctype

    async def _delete_options(self, request: web.Request) -> dict:
        q = request.query
        opts: dict = {}
        raw = await self._read_body(request)
        if raw.strip():
            body = await self._decode(request, raw)
            if not isinstance(body, dict):
                raise errors.bad_request("DeleteOptions must be an object")
            opts.update({k: v for k, v in body.items() if k not in ("kind", "apiVersion")})
        grace = parse_int(q, "gracePeriodSeconds")
        if grace is not None:
            opts["gracePeriodSeconds"] = grace
        if q.get("propagationPolicy"):
            opts["propagationPolicy"] = q["propagationPolicy"]
        if q.get("orphanDependents"):
            opts["orphanDependents"] = parse_bool(q, "orphanDependents")
        if q.getall("dryRun", []):
            opts["dryRun"] = q.getall("dryRun")
        return opts

    # ---- responses -----------------------------------------------------------------------------

    @staticmethod
    def _warning_headers(warnings: list[str] | None) -> dict | None:
        if not warnings:
            return None
        return {"Warning": ", ".join(f'299 - {orjson.dumps(w).decode()}' for w in warnings)}

    def _respond_obj(self, res: Resource, obj: dict, accept: str, q, code: int = 200,
                     warnings: list[str] | None = None) -> web.Response:
        headers = self._warning_headers(warnings)
        if _wants_table(accept) and obj.get("kind") == res.kind:
            table = to_table(res, [obj], _table_include(q))
            table["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return _json(table, code, headers)
        return _json(obj, code, headers)

    def _respond_list(self, res: Resource, result: dict, accept: str, q) -> web.Response:
        if _wants_table(accept):
            table = to_table(res, result["items"], _table_include(q))
            table["metadata"] = result["metadata"]
            return _json(table)
        return _json(result)

    # ---- watch ---------------------------------------------------------------------------------

    async def _watch(self, request: web.Request, res: Resource, ns: str | None) -> web.StreamResponse:
        q = request.query
        timeout = parse_int(q, "timeoutSeconds")
        sie = q.get("sendInitialEvents")
        req = WatchRequest(
            resource_version=q.get("resourceVersion", ""),
            label_selector=q.get("labelSelector", ""),
            field_selector=q.get("fieldSelector", ""),
            timeout=float(timeout) if timeout else 1800.0,
            allow_bookmarks=parse_bool(q, "allowWatchBookmarks"),
            send_initial_events=None if sie in (None, "") else parse_bool(q, "sendInitialEvents"),
            resource_version_match=q.get("resourceVersionMatch", ""),
        )
        validate_request(req)
        self.api.matcher(res, req.label_selector, req.field_selector)  # selector errors before streaming
        table = _wants_table(request.headers.get("Accept", ""))
        include = _table_include(q) if table else "Metadata"
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON,
                                                       "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        first = True
        try:
            async for batch in watch_batches(self.api, res, ns, req, encoded=not table):
                lines = []
                for ev in batch:
                    if isinstance(ev, bytes):   # a change, already its JSON line
                        lines.append(ev)
                        continue
                    if table and ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        t = to_table(res, [ev["object"]], include)
                        if not first:
                            t["columnDefinitions"] = []
                        t["metadata"] = {"resourceVersion": ev["object"]["metadata"].get("resourceVersion", "")}
                        first = False
                        ev = {"type": ev["type"], "object": t}
                    lines.append(orjson.dumps(ev, option=orjson.OPT_APPEND_NEWLINE))
                # Events that were ready together go out in one write (one TLS record).
                await resp.write(b"".join(lines))
        except (ConnectionResetError, asyncio.CancelledError):
            return resp
        except ApiError as e:
            try:
                await resp.write(orjson.dumps({"type": "ERROR", "object": e.status()}) + b"\n")
            except ConnectionResetError:
                return resp
        try:
            await resp.write_eof()
        except ConnectionResetError:
            pass
        return resp

    # ---- logs ----------------------------------------------------------------------------------

    async def _logs(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        pod = await self.api.get(lookup("", "v1", "pods"), ns, name)
        opts = parse_options(request.query, pod, parse_bool, parse_int)
        return await self.logs.stream(request, pod, opts)


def ssl_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
