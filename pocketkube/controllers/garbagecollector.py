"""Garbage collector: objects whose owners are gone go too; foreground and orphan deletion.

Why it exists: ownerReferences are how Kubernetes ties a Deployment to its ReplicaSets, a
ReplicaSet to its pods, a Job to its pods, a Node to its Lease. Deleting an owner must delete
what it owns (background), or delete it first and only then the owner (foreground), or leave it
in place without the reference (orphan). The API only records the request (a deletionTimestamp
and the `foregroundDeletion` or `orphan` finalizer); this controller does the work, as
kube-controller-manager's garbage collector (pkg/controller/garbagecollector) does:

* A graph of every object that can own or be owned, keyed by uid, built from the shared
  informers of every kind in the registry but events. An owner referenced before it has been
  observed is a *virtual* node: it is looked up once (a live read) and, if it does not exist
  or has another uid, removed, which sends its dependents to be checked.
* `attempt to delete` (the main queue, keyed by uid): an object is classified against its
  owners, each read live (a cache could be stale) through a small cache of owners known to be
  absent. No owner left: delete it (Background, or the policy its own finalizers ask for).
  Some owner still there: only remove the references to the dead ones and to owners waiting for
  foreground deletion. Only owners waiting for it: delete it in the foreground if it has
  dependents itself (making its own references non-blocking first if one of those dependents is
  deleting too, which is what breaks ownership cycles), else in the background.
* An owner being deleted in the foreground keeps its `foregroundDeletion` finalizer until no
  dependent with `blockOwnerDeletion` remains in the graph; then the finalizer is removed and
  the API finishes the deletion.
* `attempt to orphan` (a second queue): remove the owner's reference from every dependent, then
  the `orphan` finalizer.

Every write is guarded by the object's uid (and, for deletes, its resourceVersion, retried
without it if only unrelated fields changed), so a name reused by a new object is never hit.
"""

from __future__ import annotations

import collections
import logging

from ..api.errors import ApiError
from ..api.resources import RESOURCES, Resource, by_kind
from ..client import MERGE, STRATEGIC
from ..client.retry import retry_on_conflict
from ..client.workqueue import WorkQueue
from .base import Controller
from ..client.bounded import bounded_map

log = logging.getLogger("pocketkube.garbagecollector")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
# Events are never owners and their owners never wait for them (upstream ignores them too).
IGNORED = {("", "events"), ("events.k8s.io", "events")}


def watched_resources() -> list[Resource]:
    return [r for r in RESOURCES if (r.group, r.plural) not in IGNORED and "delete" in r.verbs
            and "watch" in r.verbs]


def resource_name(r: Resource) -> str:
    return f"{r.plural}.{r.group}" if r.group else r.plural


def _finalizers(obj: dict) -> list:
    return obj["metadata"].get("finalizers") or []


def _deleting_with(obj: dict, finalizer: str) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp")) and finalizer in _finalizers(obj)


class _Node:
    """One object in the ownership graph (or a virtual one: an owner not observed yet)."""

    __slots__ = ("uid", "res", "namespace", "name", "api_version", "kind", "owners", "read_from", "dependents",
                 "virtual", "being_deleted", "deleting_dependents")

    def __init__(self, uid: str, res: Resource | None, namespace: str, name: str, api_version: str, kind: str):
        self.uid = uid
        self.res = res
        self.namespace = namespace
        self.name = name
        self.api_version = api_version
        self.kind = kind
        self.owners: list[dict] = []
        # The ownerReferences list `owners` was read from: watched objects are read-only, so
        # while an update carries the very same list, nothing about the owners changed.
        self.read_from: list | None = None
        self.dependents: set[str] = set()
        self.virtual = False
        self.being_deleted = False
        self.deleting_dependents = False

    def __repr__(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name} ({self.uid})"


class _AbsentOwners:
    """Uids of owners known not to exist (upstream's absentOwnerCache): an LRU of 500."""

    def __init__(self, size: int = 500):
        self.size = size
        self._uids: collections.OrderedDict[str, None] = collections.OrderedDict()

    def add(self, uid: str) -> None:
        self._uids[uid] = None
        self._uids.move_to_end(uid)
        while len(self._uids) > self.size:
            self._uids.popitem(last=False)

    def __contains__(self, uid: str) -> bool:
        if uid in self._uids:
            self._uids.move_to_end(uid)
            return True
        return False


class _Unverifiable(Exception):
    """An owner of a kind this server does not serve: it can be neither found nor ruled out."""


class GarbageCollector(Controller):
    name = "garbagecollector"
    # Upstream's --concurrent-gc-syncs is 20. Each worker here waits for its delete's commit,
    # and with 20 of them emptying a 10,000-pod Deployment left the loop a quarter idle.
    workers = 50
    orphan_workers = 4
    virtual_recheck = 1.0      # seconds before looking again at an owner seen live but not watched yet

    def setup(self) -> None:
        self.graph: dict[str, _Node] = {}
        self.absent = _AbsentOwners()
        self.orphan_queue = WorkQueue("garbagecollector-orphan", self.clock)
        self.add_queue(self.orphan_queue, self.attempt_to_orphan, self.orphan_workers)
        for r in watched_resources():
            self.informers.get(resource_name(r)).add_handler(
                lambda t, old, new, r=r: self._on_change(r, t, old, new))

    # ---- the graph (GraphBuilder.processGraphChanges) ---------------------------------------------

    def _on_change(self, res: Resource, kind: str, old: dict | None, new: dict | None) -> None:
        obj = new if new is not None else old
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return
        node = self.graph.get(uid)
        if kind == "DELETED":
            if node is not None and not node.virtual:
                self._remove(node)
            return
        raw = meta.get("ownerReferences")
        if node is None:
            node = _Node(uid, res, meta.get("namespace") or "", meta.get("name") or "", obj.get("apiVersion") or
                         res.api_version, obj.get("kind") or res.kind)
            node.owners = [r for r in raw or () if r.get("uid")]
            node.read_from = raw
            self.graph[uid] = node
            for ref in node.owners:
                self._link(node, ref)
        else:
            if node.virtual:
                node.virtual = False
                node.res = res
                node.namespace, node.name = meta.get("namespace") or "", meta.get("name") or ""
                node.api_version, node.kind = obj.get("apiVersion") or res.api_version, obj.get("kind") or res.kind
            if raw is not node.read_from:
                refs = [r for r in raw or () if r.get("uid")]
                if refs != node.owners:
                    self._update_owners(node, refs)
                node.read_from = raw
        node.being_deleted = bool(meta.get("deletionTimestamp"))
        node.deleting_dependents = node.being_deleted and FOREGROUND in (meta.get("finalizers") or ())
        # Transitions (processTransitions): a deletion that starts with a finalizer.
        if _deleting_with(obj, ORPHAN) and not (old is not None and _deleting_with(old, ORPHAN)):
            self.orphan_queue.add(uid)
        if node.deleting_dependents and not (old is not None and _deleting_with(old, FOREGROUND)):
            for dep in node.dependents:
                self.queue.add(dep)
            self.queue.add(uid)

    def _link(self, node: _Node, ref: dict) -> None:
        owner = self.graph.get(ref["uid"])
        if owner is None:
            res = by_kind(ref.get("apiVersion") or "", ref.get("kind") or "")
            ns = node.namespace if (res is None or res.namespaced) else ""
            owner = _Node(ref["uid"], res, ns, ref.get("name") or "", ref.get("apiVersion") or "",
                          ref.get("kind") or "")
            owner.virtual = True
            self.graph[owner.uid] = owner
            # Is it there at all? A live read decides (attempt_to_delete of a virtual node).
            self.queue.add(owner.uid)
        owner.dependents.add(node.uid)

    def _update_owners(self, node: _Node, refs: list[dict]) -> None:
        old = {r["uid"]: r for r in node.owners}
        new = {r["uid"]: r for r in refs}
        for uid, ref in old.items():
            nref = new.get(uid)
            if nref is None:
                owner = self.graph.get(uid)
                if owner is not None:
                    owner.dependents.discard(node.uid)
            # An owner waiting for its blocking dependents may be free now.
            if ref.get("blockOwnerDeletion") and (nref is None or not nref.get("blockOwnerDeletion")):
                owner = self.graph.get(uid)
                if owner is not None and owner.deleting_dependents:
                    self.queue.add(uid)
        node.owners = refs
        for uid, ref in new.items():
            if uid not in old:
                self._link(node, ref)

    def _remove(self, node: _Node) -> None:
        """The object is gone: forget it, and look again at whatever depended on it."""
        self.graph.pop(node.uid, None)
        for ref in node.owners:
            owner = self.graph.get(ref["uid"])
            if owner is not None:
                owner.dependents.discard(node.uid)
                if owner.deleting_dependents:
                    self.queue.add(owner.uid)
        if node.dependents:
            self.absent.add(node.uid)
        for dep in node.dependents:
            self.queue.add(dep)

    # ---- live reads and writes ---------------------------------------------------------------------

    async def _get(self, res: Resource, namespace: str, name: str) -> dict | None:
        try:
            return await self.client.get(res, namespace if res.namespaced else None, name)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    async def _delete(self, node: _Node, rv: str, owners: list[dict], policy: str) -> None:
        ns = node.namespace if node.res.namespaced else None
        pre = {"uid": node.uid}
        if rv:
            pre["resourceVersion"] = rv
        try:
            await self.client.delete(node.res, ns, node.name, propagation_policy=policy, preconditions=pre)
        except ApiError as e:
            if e.code == 404:
                return
            if e.code == 409 and rv:
                live = await self._get(node.res, node.namespace, node.name)
                if live is None:
                    return
                if live["metadata"].get("uid") == node.uid and \
                        (live["metadata"].get("ownerReferences") or []) == owners:
                    # Changed, but not its owners: the decision still holds.
                    await self._delete(node, "", owners, policy)
                    return
            raise

    async def _patch(self, node: _Node, patch: dict) -> None:
        ns = node.namespace if node.res.namespaced else None
        try:
            await self.client.patch(node.res, ns, node.name, patch, STRATEGIC)
        except ApiError as e:
            if e.code == 404:
                return
            if e.code == 409:
                # The uid precondition failed: the name belongs to a newer object now.
                live = await self._get(node.res, node.namespace, node.name)
                if live is None or live["metadata"].get("uid") != node.uid:
                    return
            raise

    async def _remove_owner_refs(self, node: _Node, uids: list[str]) -> None:
        await self._patch(node, {"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": u} for u in uids], "uid": node.uid}})

    async def _unblock_owner_refs(self, node: _Node) -> None:
        refs = [dict(r, blockOwnerDeletion=False) for r in node.owners if r.get("blockOwnerDeletion")]
        if refs:
            await self._patch(node, {"metadata": {"ownerReferences": refs, "uid": node.uid}})

    async def _remove_finalizer(self, node: _Node, finalizer: str) -> None:
        async def read() -> dict | None:
            obj = await self._get(node.res, node.namespace, node.name)
            return obj if obj is not None and obj["metadata"].get("uid") == node.uid else None

        async def write(obj: dict) -> None:
            fins = _finalizers(obj)
            if finalizer not in fins:
                return
            rest = [f for f in fins if f != finalizer]
            patch = {"metadata": {"finalizers": rest or None, "resourceVersion": obj["metadata"]["resourceVersion"]}}
            ns = node.namespace if node.res.namespaced else None
            await self.client.patch(node.res, ns, node.name, patch, MERGE)

        await retry_on_conflict(read, write, f"removing finalizer {finalizer} from {node}")

    # ---- attempt to delete (GarbageCollector.attemptToDeleteItem) -----------------------------------

    async def sync(self, uid: str) -> None:
        node = self.graph.get(uid)
        if node is None:
            return
        if node.res is None:
            return  # a kind this server does not serve: nothing can be decided about it
        if node.virtual:
            await self._check_virtual(node)
            return
        if node.being_deleted and not node.deleting_dependents:
            return
        latest = await self._get(node.res, node.namespace, node.name)
        if latest is None or latest["metadata"].get("uid") != node.uid:
            # We missed its deletion (or the name now belongs to another object).
            if self.graph.get(uid) is node:
                self._remove(node)
            return
        if node.deleting_dependents:
            await self._process_deleting_dependents(node)
            return
        owners = latest["metadata"].get("ownerReferences") or []
        if not owners:
            return
        try:
            solid, dangling, waiting = await self._classify(node, owners)
        except _Unverifiable:
            return
        if solid:
            if dangling or waiting:
                await self._remove_owner_refs(node, [r["uid"] for r in dangling + waiting])
            return
        rv = latest["metadata"].get("resourceVersion") or ""
        if waiting and node.dependents:
            for dep_uid in node.dependents:
                dep = self.graph.get(dep_uid)
                if dep is not None and dep.deleting_dependents:
                    # A dependent that waits for us while we wait for our owner: a cycle. Let our
                    # owners go without waiting for us, then delete in the foreground.
                    await self._unblock_owner_refs(node)
                    rv = ""
                    break
            await self._delete(node, rv, owners, "Foreground")
            return
        fins = _finalizers(latest)
        policy = "Orphan" if ORPHAN in fins else ("Foreground" if FOREGROUND in fins else "Background")
        await self._delete(node, rv, owners, policy)

    async def _check_virtual(self, node: _Node) -> None:
        if node.namespace == "" and node.res.namespaced:
            live = None  # a namespaced owner named by a cluster-scoped object can never exist
        else:
            live = await self._get(node.res, node.namespace, node.name)
        if live is None or live["metadata"].get("uid") != node.uid:
            self.absent.add(node.uid)
            if self.graph.get(node.uid) is node:
                self._remove(node)
            return
        if node.virtual:
            # It exists but its informer has not shown it yet: look again until it has.
            self.queue.add_after(node.uid, self.virtual_recheck)

    async def _classify(self, node: _Node, owners: list[dict]) -> tuple[list, list, list]:
        solid: list[dict] = []
        dangling: list[dict] = []
        waiting: list[dict] = []
        for ref in owners:
            uid = ref.get("uid")
            if uid in self.absent:
                dangling.append(ref)
                continue
            res = by_kind(ref.get("apiVersion") or "", ref.get("kind") or "")
            if res is None:
                raise _Unverifiable(ref)
            if res.namespaced and not node.res.namespaced:
                dangling.append(ref)  # upstream: OwnerRefInvalidNamespace, treated as absent
                continue
            owner = await self._get(res, node.namespace if res.namespaced else "", ref.get("name") or "")
            if owner is None or owner["metadata"].get("uid") != uid:
                self.absent.add(uid)
                dangling.append(ref)
            elif _deleting_with(owner, FOREGROUND):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def _process_deleting_dependents(self, node: _Node) -> None:
        blocking = []
        for dep_uid in node.dependents:
            dep = self.graph.get(dep_uid)
            if dep is None:
                continue
            if any(r["uid"] == node.uid and r.get("blockOwnerDeletion") for r in dep.owners):
                blocking.append(dep)
        if not blocking:
            await self._remove_finalizer(node, FOREGROUND)
            return
        for dep in blocking:
            # Those already being deleted need nothing more from us; their deletion events
            # bring us back here.
            if not dep.being_deleted:
                self.queue.add(dep.uid)

    # ---- attempt to orphan ------------------------------------------------------------------------

    async def attempt_to_orphan(self, uid: str) -> None:
        node = self.graph.get(uid)
        if node is None or node.res is None:
            return
        deps = [d for d in (self.graph.get(u) for u in list(node.dependents)) if d is not None and d.res is not None]

        async def orphan(dep: _Node) -> Exception | None:
            try:
                await self._remove_owner_refs(dep, [uid])
            except ApiError as e:
                return e
            return None
        errors = [e for e in await bounded_map(orphan, deps, 32) if e is not None]
        if errors:
            raise RuntimeError(f"orphaning dependents of {node} failed: {errors[0]}")
        await self._remove_finalizer(node, ORPHAN)
