"""Watches as clients see them: ADDED/MODIFIED/DELETED/BOOKMARK/ERROR events for one resource.

The store streams raw key changes under a prefix; this module turns them into Kubernetes
watch semantics: selector filtering where an object moving out of a selector is DELETED and
one moving in is ADDED, synthetic ADDED events for the current state when a watch starts
without a resourceVersion or asks for `sendInitialEvents`, bookmarks, and 410 Expired as an
ERROR event when the requested revision has been compacted.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import AsyncIterator

from ..store import DELETE, Compacted, StoreError
from . import errors, objects
from .resources import Resource

BOOKMARK_INTERVAL = 60.0
INITIAL_BATCH = 500
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass
class WatchRequest:
    resource_version: str = ""
    label_selector: str = ""
    field_selector: str = ""
    timeout: float | None = None
    allow_bookmarks: bool = False
    send_initial_events: bool | None = None
    resource_version_match: str = ""


class DecodedEvents:
    """Store events decoded once for every watcher of them.

    Every informer and watch stream of a resource sees the same store event; decoding it once
    and handing all of them the same dict saves the CPU of N decodes and, in-process, lets the
    informers' caches share one copy of each object instead of holding one each. Consumers treat
    watched objects as read-only (they copy before changing, as with client-go's caches).
    """

    def __init__(self, size: int = 1024):
        self._size = size
        # id(value) -> (value, decoded, revision); holding `value` keeps its id from being reused.
        self._objs: dict[int, tuple[bytes, dict, int | None]] = {}
        self._order: collections.deque[int] = collections.deque()

    def _put(self, value: bytes, obj: dict, revision: int | None) -> dict:
        self._objs[id(value)] = (value, obj, revision)
        self._order.append(id(value))
        if len(self._order) > self._size:
            self._objs.pop(self._order.popleft(), None)
        return obj

    def expect(self, value: bytes, obj: dict) -> None:
        """`obj` is what `value`, about to be stored, decodes to: its events need no decoding.

        For a writer that hands `obj` over (an in-process caller that asked for no result);
        nothing else may change it afterwards. Its resourceVersion is set by the first `get`.
        """
        self._put(value, obj, None)

    def get(self, value: bytes, revision: int) -> dict:
        """The object of an event at `revision` (its resourceVersion set to it)."""
        hit = self._objs.get(id(value))
        if hit is not None and hit[0] is value:
            if hit[2] == revision:
                return hit[1]
            obj = hit[1]
            if hit[2] is None:   # expected: written by this process, now stored
                obj["metadata"]["resourceVersion"] = str(revision)
                self._objs[id(value)] = (value, obj, revision)
                return obj
            # The same bytes at another revision (a deletion's event carries its own): the
            # objects are read-only, so a copy of the top and of metadata will do.
            return self._put(value, {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(revision)}},
                             revision)
        return self._put(value, objects.decode_value(value, revision), revision)

    def view(self, value: bytes) -> dict:
        """An object to match selectors against: any resourceVersion will do. An update's
        previous value is the bytes of the key's previous event, usually still here."""
        hit = self._objs.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        return self._put(value, objects.decode_value(value, 0), 0)


def _bookmark(res: Resource, revision: int, initial_end: bool = False) -> dict:
    meta: dict = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}}


def _error(err: errors.ApiError) -> dict:
    return {"type": "ERROR", "object": err.status()}


def validate_request(req: WatchRequest) -> None:
    """Refuse combinations a real apiserver refuses, before the stream starts (as a 4xx)."""
    errs = []
    if req.send_initial_events is not None:
        if req.resource_version_match != "NotOlderThan":
            errs.append(errors.forbidden("resourceVersionMatch",
                                         "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
        if not req.allow_bookmarks:
            errs.append(errors.forbidden("allowWatchBookmarks",
                                         "sendInitialEvents requires setting allowWatchBookmarks to true"))
    elif req.resource_version_match:
        errs.append(errors.forbidden("resourceVersionMatch",
                                     "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
    if errs:
        raise errors.invalid_error("ListOptions", "meta.k8s.io", "", errs)
    rv = req.resource_version
    if rv and not rv.isdigit():
        raise errors.bad_request(f"invalid resource version: {errors.go_quote(rv)}")


async def watch_events(api, res: Resource, ns: str | None, req: WatchRequest) -> AsyncIterator[dict]:
    """Yield watch events (dicts with type and object) until timeout or client goes away."""
    async for batch in watch_batches(api, res, ns, req):
        for ev in batch:
            yield ev


async def watch_batches(api, res: Resource, ns: str | None, req: WatchRequest,
                        encoded: bool = False) -> AsyncIterator[list[dict | bytes]]:
    """The same events, in lists of those that were ready together.

    A stream writer sends each list in one write: under load, one TLS record and one system
    call for many events instead of one each. The initial state comes in lists of at most
    INITIAL_BATCH objects. With `encoded`, the changes read from the store come as their JSON
    lines (objects.event_line), made from the stored bytes: a stream writer would only encode
    the decoded object again. Other events (initial state, bookmarks, errors) stay dicts.
    """
    match = api.matcher(res, req.label_selector, req.field_selector)
    store = api.store
    decoded: DecodedEvents = api.decoded_events
    prefix = res.list_prefix(ns)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + req.timeout if req.timeout else None
    rv = req.resource_version
    initial = req.send_initial_events if req.send_initial_events is not None else rv in ("", "0")

    def ok(obj: dict | None) -> bool:
        return obj is not None and (match is None or match(obj))

    if initial:
        listed = await api.list(res, ns, req.label_selector, req.field_selector)
        start = int(listed["metadata"]["resourceVersion"])
        items = listed["items"]
        for i in range(0, len(items), INITIAL_BATCH):
            yield [{"type": "ADDED", "object": obj} for obj in items[i:i + INITIAL_BATCH]]
        if req.send_initial_events:
            yield [_bookmark(res, start, initial_end=True)]
    else:
        start = int(rv)
    try:
        w = store.watch(prefix, start)
    except Compacted as e:
        yield [_error(errors.expired(f"too old resource version: {e.requested} ({e.oldest + 1})"))]
        return
    last_rev = start
    try:
        while True:
            wait = BOOKMARK_INTERVAL
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    break
            try:
                ev = await w.next(timeout=wait)
            except StoreError:
                yield [_error(errors.expired(f"too old resource version: {last_rev} ({store.revision})"))]
                return
            if ev is None:
                if w.closed:  # type: ignore[attr-defined]
                    return
                if req.allow_bookmarks and (deadline is None or loop.time() < deadline):
                    yield [_bookmark(res, max(last_rev, store.revision))]
                continue
            batch = [ev]
            drain = getattr(w, "drain", None)
            if drain is not None:
                batch.extend(drain())
            out: list[dict | bytes] = []
            for ev in batch:
                last_rev = ev.revision
                # A stream writer with nothing to match needs no decoded object at all.
                obj = None if encoded and match is None else decoded.get(ev.value, ev.revision)
                if ev.type == DELETE:
                    kind = "DELETED" if match is None or ok(obj) else None
                elif ev.prev_value is None:
                    kind = "ADDED" if match is None or ok(obj) else None
                elif match is None:
                    kind = "MODIFIED"
                else:
                    now_ok, was_ok = ok(obj), ok(decoded.view(ev.prev_value))
                    kind = ("MODIFIED" if was_ok else "ADDED") if now_ok else ("DELETED" if was_ok else None)
                if kind is not None:
                    out.append(objects.event_line(kind, ev.value, ev.revision) if encoded
                               else {"type": kind, "object": obj})
            if out:
                yield out
        if req.allow_bookmarks:
            yield [_bookmark(res, max(last_rev, store.revision))]
    finally:
        w.close()
