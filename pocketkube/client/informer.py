"""Informers: a list+watch cache of one resource, with change handlers.

Controllers, the scheduler and agents read from these caches instead of asking the server on
every decision, and react to changes through handlers. Like client-go's reflector, an informer
lists, then watches from the list's revision; when the watch ends it resumes from the last
revision it saw, and when that revision has expired (410) it lists again and reports the
differences as adds, updates and deletes, so handlers never miss a change.

In one process, components share one informer per resource (`SharedInformers`): one watch and
one cache of pods, not one per controller. `ComponentInformers` is how a component that also
runs on its own (the scheduler, the node lifecycle controller, simulated nodes) takes the shared
ones when they exist and makes and stops its own otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from ..api.errors import ApiError
from . import Client

log = logging.getLogger("pocketkube.informer")

Handler = Callable[[str, dict | None, dict | None], Awaitable[None] | None]


def object_key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else meta.get("name", "")


class ObjectMemo:
    """What a controller derived from cached objects, remembered by object.

    An informer never changes a cached object: a change replaces it with a new dict. So while a
    cache still holds the same object, whatever was computed from it still holds, and a
    controller that looks at thousands of objects on every sync (a scale-down ranking a
    ReplicaSet's pods) need only look again at the new ones. Entries are keyed by id() and hold
    the object, which keeps the id from being reused.
    """

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[int, tuple[dict, object]] = {}


class Informer:
    def __init__(self, client: Client, res: str, namespace: str | None = None, label_selector: str = "",
                 field_selector: str = "", watch_timeout: float = 300.0):
        self.client = client
        self.res = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout = watch_timeout
        self.cache: dict[str, dict] = {}
        self.synced = asyncio.Event()
        self._handlers: list[Handler] = []
        self._task: asyncio.Task | None = None
        self._rv = ""

    def add_handler(self, handler: Handler) -> None:
        """handler(event_type, old, new): "ADDED" (old None), "MODIFIED", "DELETED" (new None).

        As client-go's shared informers do, a handler added to an informer that has already
        listed first hears of every cached object as ADDED, at once (so it must not be a
        coroutine), and then of every change after them.
        """
        if self.synced.is_set():
            for obj in list(self.cache.values()):
                r = handler("ADDED", None, obj)
                if asyncio.iscoroutine(r):
                    r.close()
                    raise TypeError("a handler added to a running informer must not be a coroutine")
        self._handlers.append(handler)

    def get(self, key: str) -> dict | None:
        return self.cache.get(key)

    def list(self) -> list[dict]:
        return list(self.cache.values())

    def start(self) -> "Informer":
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"informer-{self.res}")
        return self

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _notify(self, kind: str, old: dict | None, new: dict | None) -> None:
        for h in tuple(self._handlers):  # one added meanwhile has had this object replayed
            try:
                r = h(kind, old, new)
                if r is not None and asyncio.iscoroutine(r):   # most handlers return None
                    await r
            except Exception:
                log.exception("informer handler for %s failed", self.res)

    async def _relist(self) -> None:
        listed = await self.client.list(self.res, self.namespace, self.label_selector, self.field_selector)
        self._rv = listed["metadata"]["resourceVersion"]
        fresh = {object_key(o): o for o in listed["items"]}
        old_cache = self.cache
        self.cache = fresh
        for key, obj in fresh.items():
            prev = old_cache.get(key)
            if prev is None:
                await self._notify("ADDED", None, obj)
            elif prev["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                await self._notify("MODIFIED", prev, obj)
        for key, prev in old_cache.items():
            if key not in fresh:
                await self._notify("DELETED", prev, None)

    async def _run(self) -> None:
        backoff = 0.1
        # A restarted informer resumes its watch from where it stopped, relisting only on 410.
        need_list = not self.synced.is_set()
        while True:
            try:
                if need_list:
                    await self._relist()
                    self.synced.set()
                    need_list = False
                async for ev in self.client.watch(self.res, self.namespace, self._rv, self.label_selector,
                                                  self.field_selector, timeout=self.watch_timeout):
                    t = ev.get("type")
                    obj = ev.get("object") or {}
                    if t == "ERROR":
                        if obj.get("code") == 410:
                            need_list = True
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        self._rv = rv
                    if t == "BOOKMARK":
                        continue
                    key = object_key(obj)
                    if t == "DELETED":
                        prev = self.cache.pop(key, None)
                        await self._notify("DELETED", prev or obj, None)
                    else:
                        prev = self.cache.get(key)
                        self.cache[key] = obj
                        await self._notify("ADDED" if prev is None else "MODIFIED", prev, obj)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                if e.code == 410:
                    need_list = True
                else:
                    log.warning("watch of %s failed: %s", self.res, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as e:  # connection lost: resume from the last revision
                log.debug("watch of %s interrupted: %r", self.res, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


class SharedInformers:
    """One informer per resource for every controller in the process."""

    def __init__(self, client: Client):
        self.client = client
        self._informers: dict[str, Informer] = {}

    def get(self, res: str) -> Informer:
        inf = self._informers.get(res)
        if inf is None:
            inf = self._informers[res] = Informer(self.client, res)
        return inf

    async def start(self) -> None:
        for inf in self._informers.values():
            inf.start()
        for inf in self._informers.values():
            await inf.wait_synced()

    async def stop(self) -> None:
        for inf in self._informers.values():
            await inf.stop()


class ComponentInformers:
    """The informers of one component (scheduler, node lifecycle, simulated nodes).

    Beside the controllers, a component reads the process's shared informers, which their owner
    stops; on its own (`pocketkube agent`, tests) it makes its own, narrowed by a namespace or
    selectors so that the server sends it only what it needs. A shared informer sees everything,
    so handlers must pass over what the narrowing would have left out.
    """

    def __init__(self, client: Client, shared: SharedInformers | None):
        self.client = client
        self.shared = shared
        self._own: list[Informer] = []
        self._used: list[Informer] = []

    def get(self, res: str, **narrow: str) -> Informer:
        """`res`'s shared informer, or one of our own narrowed by `narrow` (Informer's keywords)."""
        if self.shared is None:
            return self.own(res, **narrow)
        inf = self.shared.get(res)
        self._used.append(inf)
        return inf

    def own(self, res: str, **narrow: str) -> Informer:
        """An informer of our own even beside shared ones (a narrow view nobody else needs)."""
        inf = Informer(self.client, res, **narrow)
        self._own.append(inf)
        self._used.append(inf)
        return inf

    async def start(self) -> None:
        """Start every informer used (starting a shared one twice is harmless) and wait until
        all have listed."""
        for inf in self._used:
            inf.start()
        for inf in self._used:
            await inf.wait_synced()

    async def stop(self) -> None:
        """Stop our own informers; shared ones are their owner's to stop."""
        for inf in self._own:
            await inf.stop()
