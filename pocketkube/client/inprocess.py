"""The client for components living in the control plane's own process: direct `Api` calls.

Same validation, defaulting and versioning as an HTTP request (so a controller's write looks to
kubectl exactly like anyone else's), minus serialisation and TLS. Created objects are copied so
that the API's in-place defaulting never changes a caller's dict (updates copy in the API).
"""

from __future__ import annotations

from typing import AsyncIterator

import orjson

from ..api.core import Api, WriteOptions
from ..api.watching import WatchRequest, validate_request, watch_events
from . import MERGE, Client, resource

_TRUSTED = WriteOptions(trusted=True, field_validation="Ignore")
# For callers that want no result: the object written becomes the watchers' decoded copy.
_TRUSTED_SHARED = WriteOptions(trusted=True, field_validation="Ignore", share=True)


def _copy(obj):
    return orjson.loads(orjson.dumps(obj))


class InProcessClient(Client):
    def __init__(self, api: Api):
        self.api = api

    async def get(self, res, namespace, name):
        return await self.api.get(resource(res), namespace or "", name)

    async def list(self, res, namespace=None, label_selector="", field_selector="", limit=0, continue_token=""):
        return await self.api.list(resource(res), namespace, label_selector, field_selector, limit, continue_token)

    async def create(self, res, namespace, obj, result=True):
        # Without a result the created object is the watchers' too: returned read-only.
        return (await self.api.create(resource(res), namespace or "", _copy(obj),
                                      _TRUSTED if result else _TRUSTED_SHARED)).obj

    async def update(self, res, namespace, obj, subresource=None, result=True):
        name = obj["metadata"]["name"]
        # Api.update works on its own copy of the body (one per attempt): no copy needed here.
        r = await self.api.update(resource(res), namespace or "", name, obj, _TRUSTED if result else _TRUSTED_SHARED,
                                  subresource=subresource)
        return r.obj if result else None

    async def patch(self, res, namespace, name, patch, patch_type=MERGE, subresource=None):
        r = resource(res)
        if subresource == "scale":
            return await self.api.patch_scale(r, namespace or "", name, patch_type, orjson.dumps(patch))
        return (await self.api.patch(r, namespace or "", name, patch_type, orjson.dumps(patch), _TRUSTED,
                                     subresource=subresource)).obj

    async def delete(self, res, namespace, name, grace_period_seconds=None, propagation_policy=None,
                     preconditions=None, result=True, current=None):
        opts: dict = {}
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        if preconditions:
            opts["preconditions"] = preconditions
        r = await self.api.delete(resource(res), namespace or "", name, opts, share=not result, current=current)
        return r.obj if result else None

    async def watch(self, res, namespace=None, resource_version="", label_selector="", field_selector="",
                    timeout=None, allow_bookmarks=True) -> AsyncIterator[dict]:
        req = WatchRequest(resource_version, label_selector, field_selector, timeout, allow_bookmarks)
        validate_request(req)
        async for ev in watch_events(self.api, resource(res), namespace, req):
            yield ev

    async def bind(self, namespace, name, node, uid=None):
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        if uid:
            body["metadata"]["uid"] = uid
        await self.api.bind(namespace, name, body)
