"""The shape every controller shares: shared informers, a keyed queue, workers, `sync(key)`.

As in kube-controller-manager, controllers in one process share one informer per resource
(one list+watch for pods, however many controllers look at pods), only enqueue keys from
their handlers, and do all work in `sync(key)`, which reads from the informer caches and
writes through the client. A key is never synced by two workers at once, and a failed sync is
retried with back-off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from ..api.selectors import SelectorError, selector_from_dict
from ..client import Client
from ..client.events import EventRecorder
from ..client.informer import Informer, SharedInformers, object_key
from ..client.workqueue import WorkQueue, run_workers
from ..clock import Clock

log = logging.getLogger("pocketkube.controllers")


class Controller:
    """Subclasses set `name`, register handlers in `setup()`, and implement `sync(key)`."""

    name = "controller"
    workers = 4

    def __init__(self, client: Client, clock: Clock, informers: SharedInformers,
                 recorder: EventRecorder | None = None):
        self.client = client
        self.clock = clock
        self.informers = informers
        self.queue = WorkQueue(self.name, clock)
        self.recorder = recorder or EventRecorder(client, clock, f"{self.name}-controller")
        # (queue, sync, workers): the main queue, and any a controller adds (orphan handling).
        self._queues: list[tuple[WorkQueue, Callable[[str], Awaitable[None]], int]] = []
        self._tasks: list[asyncio.Task] = []
        self.add_queue(self.queue, self._safe_sync, self.workers)
        self.setup()

    def add_queue(self, queue: WorkQueue, sync: Callable[[str], Awaitable[None]], workers: int) -> None:
        """Another keyed queue with its own workers, started and stopped with the controller."""
        self._queues.append((queue, sync, workers))

    def setup(self) -> None:
        """Subscribe to informers (self.informers.get(...).add_handler(...))."""

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    def enqueue(self, obj: dict) -> None:
        self.queue.add(object_key(obj))

    async def start(self) -> None:
        self.recorder.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(run_workers(q, sync, workers), name=f"{q.name}-workers")
                       for q, sync, workers in self._queues]

    async def _safe_sync(self, key: str) -> None:
        await self.sync(key)

    async def stop(self) -> None:
        for q, _, _ in self._queues:
            q.shutdown()
        for task in self._tasks:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        await self.recorder.stop()


def split_key(key: str) -> tuple[str, str]:
    ns, _, name = key.rpartition("/")
    return ns, name


class Expectations:
    """How many creates/deletes a controller still expects to see, per owner key.

    A controller that created 5 pods must not create 5 more because its informer has not yet
    seen the first ones; it waits until the watch has observed them (or 5 minutes pass, as
    upstream's ControllerExpectations TTL).
    """

    TTL = 300.0

    def __init__(self, clock: Clock):
        self.clock = clock
        self._adds: dict[str, int] = {}
        self._dels: dict[str, set[str]] = {}
        self._stamp: dict[str, float] = {}

    def expect_creations(self, key: str, n: int) -> None:
        self._adds[key] = self._adds.get(key, 0) + n
        self._stamp[key] = self.clock.now()

    def expect_deletions(self, key: str, uids: list[str]) -> None:
        self._dels.setdefault(key, set()).update(uids)
        self._stamp[key] = self.clock.now()

    def creation_observed(self, key: str) -> None:
        if self._adds.get(key, 0) > 0:
            self._adds[key] -= 1

    def deletion_observed(self, key: str, uid: str) -> None:
        s = self._dels.get(key)
        if s:
            s.discard(uid)

    def lower_creations(self, key: str, n: int) -> None:
        """Creates that failed will never be observed."""
        self._adds[key] = max(0, self._adds.get(key, 0) - n)

    def satisfied(self, key: str) -> bool:
        if self._adds.get(key, 0) <= 0 and not self._dels.get(key):
            return True
        return self.clock.now() - self._stamp.get(key, 0) > self.TTL

    def forget(self, key: str) -> None:
        self._adds.pop(key, None)
        self._dels.pop(key, None)
        self._stamp.pop(key, None)


# ---- ownership --------------------------------------------------------------------------------

def controller_ref(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def controlled_elsewhere(key: str, old: dict | None, new: dict | None, kind: str,
                         index: "OwnedIndex | None" = None) -> bool:
    """Whether an informer event is about an object that a controller of another kind controls,
    before and after it, and that `index` (if any) does not hold: a controller of `kind` has nothing to do
    (upstream's handlers resolve the reference, find no owner of their kind, and return). Every
    workload controller sees every pod event; this spares each the work for the others' pods."""
    for obj in (old, new):
        if obj is not None:
            ref = controller_ref(obj)
            if ref is None or ref.get("kind") == kind:
                return False
    return index is None or key not in index


def new_controller_ref(owner: dict) -> dict:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def is_controlled_by(obj: dict, owner: dict) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == owner["metadata"]["uid"]


async def adopt(client: Client, res: str, obj: dict, owner: dict) -> dict:
    """Add a controller reference to an orphan, guarded by its uid (ControllerRefManager)."""
    from ..client import STRATEGIC
    meta = obj["metadata"]
    patch = {"metadata": {"ownerReferences": [new_controller_ref(owner)], "uid": meta["uid"]}}
    return await client.patch(res, meta.get("namespace"), meta["name"], patch, STRATEGIC)


async def release(client: Client, res: str, obj: dict, owner: dict) -> dict:
    """Remove the owner's reference from an object that no longer matches its selector."""
    from ..client import STRATEGIC
    meta = obj["metadata"]
    patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner["metadata"]["uid"]}],
                          "uid": meta["uid"]}}
    return await client.patch(res, meta.get("namespace"), meta["name"], patch, STRATEGIC)


class Owners:
    """The objects of one owning kind as its controller looks them up.

    Every workload controller needs the same three things of its own objects: their compiled
    selector (cached per uid and generation: compiling on every pod event would cost more than
    the event), the live owner a controller reference names (same name *and* uid, or it is a
    stale reference), and the owners of a namespace whose selector matches an orphan's labels
    (upstream's GetPodReplicaSets, GetPodDaemonSets, getStatefulSetsForPod, getPodJobs).
    """

    def __init__(self, informer: Informer, kind: str):
        self.informer = informer
        self.kind = kind
        self._selectors: dict[str, tuple[tuple, object]] = {}
        self._in_ns: dict[str, set[str]] = {}
        informer.add_handler(self._on_change)

    def _on_change(self, kind: str, old: dict | None, new: dict | None) -> None:
        if new is None:
            key = object_key(old)  # type: ignore[arg-type]
            self._in_ns.get((old or {}).get("metadata", {}).get("namespace") or "", set()).discard(key)
            self._selectors.pop(key, None)
        else:
            self._in_ns.setdefault(new["metadata"].get("namespace") or "", set()).add(object_key(new))

    def selector(self, owner: dict):
        """The owner's compiled spec.selector, or None when it is invalid."""
        meta = owner["metadata"]
        stamp = (meta.get("uid"), meta.get("generation"))
        key = object_key(owner)
        cached = self._selectors.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            sel = selector_from_dict((owner.get("spec") or {}).get("selector"))
        except SelectorError as e:
            log.warning("%s %s has an invalid selector: %s", self.kind, key, e)
            sel = None
        self._selectors[key] = (stamp, sel)
        return sel

    def resolve(self, namespace: str, ref: dict | None) -> dict | None:
        """The owner a controller reference points at, if it is still the same object."""
        if not ref or ref.get("kind") != self.kind:
            return None
        owner = self.informer.get(f"{namespace}/{ref.get('name')}")
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return owner

    def in_namespace(self, namespace: str) -> list[dict]:
        get = self.informer.get
        return [o for o in map(get, list(self._in_ns.get(namespace, ()))) if o is not None]

    def matching(self, obj: dict) -> list[dict]:
        """Owners in the object's namespace whose (non-empty) selector matches its labels."""
        meta = obj["metadata"]
        labels = meta.get("labels") or {}
        out = []
        for owner in self.in_namespace(meta.get("namespace") or ""):
            sel = self.selector(owner)
            if sel is not None and not sel.empty() and sel.matches(labels):
                out.append(owner)
        return out


class OwnedIndex:
    """Which objects (pods, revisions) each owner controls, and the orphans of each namespace,
    kept from informer events, so a sync reads its candidates without scanning every object.

    It holds the objects the events brought (the informer cache's own), by key. An owner whose
    sync keeps counts of its objects can also ask which of them changed since it last looked
    (`take_changes`), so it recounts only those.
    """

    def __init__(self) -> None:
        self._owner_of: dict[str, str] = {}                 # key -> controlling owner uid ("" for orphans)
        self._owned: dict[str, dict[str, dict]] = {}        # owner uid -> key -> object
        self._orphans: dict[str, dict[str, dict]] = {}      # namespace -> key -> object
        self._changed: dict[str, set[str]] = {}             # owner uid -> keys changed (tracked owners)

    def update(self, key: str, obj: dict | None) -> str | None:
        """Record an object's current state and controller (obj None: it is gone); returns the
        controller's uid as recorded ("" for an orphan, None once gone)."""
        owner = None
        if obj is not None:
            ref = controller_ref(obj)
            owner = (ref or {}).get("uid") or ""
        prev = self._owner_of.get(key)
        if prev is not None and prev != owner:
            buckets, bucket_key = (self._orphans, key.partition("/")[0]) if prev == "" else (self._owned, prev)
            bucket = buckets.get(bucket_key)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del buckets[bucket_key]
            changed = self._changed.get(prev)
            if changed is not None:
                changed.add(key)
        if owner is None:
            self._owner_of.pop(key, None)
            return None
        self._owner_of[key] = owner
        if owner:
            bucket = self._owned.get(owner)
            if bucket is None:
                bucket = self._owned[owner] = {}
            bucket[key] = obj   # type: ignore[assignment]
            changed = self._changed.get(owner)
            if changed is not None:
                changed.add(key)
        else:
            self._orphans.setdefault(key.partition("/")[0], {})[key] = obj   # type: ignore[assignment]
        return owner

    def __contains__(self, key: str) -> bool:
        return key in self._owner_of

    def count(self, uid: str) -> int:
        return len(self._owned.get(uid, ()))

    def owned_by(self, uid: str) -> dict[str, dict]:
        """The objects an owner controls, by key: the index's own mapping, to read, not to keep."""
        return self._owned.get(uid) or {}

    def owned(self, uid: str) -> list[dict]:
        return list(self.owned_by(uid).values())

    def orphans(self, namespace: str) -> list[dict]:
        return list(self._orphans.get(namespace, {}).values())

    def of(self, owner: dict) -> tuple[list[dict], list[dict]]:
        """(objects the owner controls, orphans of its namespace)."""
        meta = owner["metadata"]
        return self.owned(meta["uid"]), self.orphans(meta.get("namespace") or "")

    def take_changes(self, uid: str) -> set[str] | None:
        """Keys of the owner's objects that changed (or left it) since the last call; None on the
        first call, which starts keeping them. `untrack` stops it."""
        prev = self._changed.get(uid)
        self._changed[uid] = set()
        return prev

    def untrack(self, uid: str) -> None:
        self._changed.pop(uid, None)


def pod_from_template(template: dict, owner: dict, generate_name: str) -> dict:
    """A pod for `owner` from its pod template (controller.GetPodFromTemplate)."""
    tmeta = template.get("metadata") or {}
    meta: dict = {"generateName": generate_name, "namespace": owner["metadata"].get("namespace"),
                  "ownerReferences": [new_controller_ref(owner)]}
    for k in ("labels", "annotations", "finalizers"):
        if tmeta.get(k):
            meta[k] = dict(tmeta[k]) if isinstance(tmeta[k], dict) else list(tmeta[k])
    import orjson
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": orjson.loads(orjson.dumps(template.get("spec") or {}))}


def is_pod_active(pod: dict) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


class ControllerManager:
    """Runs a set of controllers over one set of shared informers (kube-controller-manager)."""

    def __init__(self, client: Client, clock: Clock, controller_classes: list[type[Controller]],
                 informers: SharedInformers | None = None):
        # Also the scheduler's and the node side's in `pocketkube up`: one watch per resource.
        self.informers = informers or SharedInformers(client)
        self.controllers = [cls(client, clock, self.informers) for cls in controller_classes]

    async def start(self) -> None:
        await self.informers.start()
        for c in self.controllers:
            await c.start()

    async def stop(self) -> None:
        for c in self.controllers:
            await c.stop()
        await self.informers.stop()
