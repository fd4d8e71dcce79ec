"""Namespace controller: empty a namespace that is being deleted, then let the API remove it.

Why it exists: `kubectl delete namespace x` only marks the namespace (deletionTimestamp, phase
Terminating); its `kubernetes` finalizer (spec.finalizers) keeps it until everything in it is
gone. This controller does that emptying, as kube-controller-manager's namespace controller
(pkg/controller/namespace/deletion) does:

* delete every object of every namespaced kind in the namespace (propagationPolicy Background,
  so no orphan finalizer is added behind its back; objects already being deleted are left to
  finish);
* look again: pods shutting down gracefully give an estimate (their grace period, counted from
  the namespace's deletion) after which to look again; objects held by finalizers give 15 s;
  anything else still there is an error, retried with back-off;
* report progress in the namespace's conditions with upstream's types, reasons and messages
  (NamespaceDeletionDiscoveryFailure, NamespaceDeletionGroupVersionParsingFailure,
  NamespaceDeletionContentFailure, NamespaceContentRemaining, NamespaceFinalizersRemaining);
* once nothing is left, remove `kubernetes` through the `finalize` subresource; the API then
  deletes the namespace.

Upstream waits 5 s before acting on a deleted namespace so that every apiserver of an HA
control plane refuses new content first; here one API does that at once, so there is no wait.
Besides the estimate, a pod disappearing from a terminating namespace makes the controller look
again (shortly, to gather many at once), so a namespace whose pods stop fast goes fast.
"""

from __future__ import annotations

import asyncio
import logging

from ..api.errors import ApiError
from ..api.resources import RESOURCES, Resource
from ..client.retry import get_or_none, retry_on_conflict
from ..clock import parse_rfc3339
from .base import Controller
from ..client.bounded import bounded_map

log = logging.getLogger("pocketkube.namespace")

FINALIZER = "kubernetes"
FINALIZER_ESTIMATE_SECONDS = 15     # assumed wait for objects held by finalizers
POKE_DELAY = 0.25                   # gathers a burst of pod deletions into one look

CONDITION_TYPES = ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
                   "NamespaceDeletionContentFailure", "NamespaceContentRemaining", "NamespaceFinalizersRemaining")
OK_REASONS = {
    "NamespaceDeletionDiscoveryFailure": "ResourcesDiscovered",
    "NamespaceDeletionGroupVersionParsingFailure": "ParsedGroupVersions",
    "NamespaceDeletionContentFailure": "ContentDeleted",
    "NamespaceContentRemaining": "ContentRemoved",
    "NamespaceFinalizersRemaining": "ContentHasNoFinalizers",
}
OK_MESSAGES = {
    "NamespaceDeletionDiscoveryFailure": "All resources successfully discovered",
    "NamespaceDeletionGroupVersionParsingFailure": "All legacy kube types successfully parsed",
    "NamespaceDeletionContentFailure": "All content successfully deleted, may be waiting on finalization",
    "NamespaceContentRemaining": "All content successfully removed",
    "NamespaceFinalizersRemaining": "All content-preserving finalizers finished",
}


def namespaced_resources() -> list[Resource]:
    return [r for r in RESOURCES if r.namespaced and "delete" in r.verbs and "list" in r.verbs]


def gvr_string(r: Resource) -> str:
    """schema.GroupVersionResource.String(), as upstream's messages print it."""
    return f"{r.group}/{r.version}, Resource={r.plural}"


class ContentError(Exception):
    """Deleting one kind's content failed; carries what was learnt about it anyway."""

    def __init__(self, message: str, estimate: int = 0, remaining: int = 0):
        super().__init__(message)
        self.estimate = estimate
        self.remaining = remaining


def update_conditions(status: dict, new_conditions: dict[str, dict], now: str) -> bool:
    """Set every deletion condition: the failing ones given, the rest to their OK form."""
    conditions = status.setdefault("conditions", [])
    changed = False
    for ctype in CONDITION_TYPES:
        want = new_conditions.get(ctype) or {"type": ctype, "status": "False", "reason": OK_REASONS[ctype],
                                             "message": OK_MESSAGES[ctype]}
        old = next((c for c in conditions if c.get("type") == ctype), None)
        if old is None:
            conditions.append(dict(want, lastTransitionTime=now))
            changed = True
        elif (old.get("status"), old.get("message"), old.get("reason")) != \
                (want["status"], want["message"], want["reason"]):
            if old.get("status") != want["status"]:
                old["lastTransitionTime"] = now
            old.update(status=want["status"], reason=want["reason"], message=want["message"])
            changed = True
    return changed


class NamespaceController(Controller):
    name = "namespace"
    workers = 10                 # --concurrent-namespace-syncs
    delete_concurrency = 32

    def setup(self) -> None:
        # nsControllerRateLimiter: retry a failing namespace at least once a minute.
        self.queue.max_delay = 60.0
        self.ns_informer = self.informers.get("namespaces")
        self.ns_informer.add_handler(self._on_namespace)
        self.informers.get("pods").add_handler(self._on_pod)
        self._poked: set[str] = set()

    def _on_namespace(self, kind: str, old: dict | None, new: dict | None) -> None:
        if new is not None and new["metadata"].get("deletionTimestamp"):
            self.queue.add(new["metadata"]["name"])

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        if kind != "DELETED":
            return
        ns_name = old["metadata"].get("namespace") or ""
        ns = self.ns_informer.get(ns_name)
        if ns is None or not ns["metadata"].get("deletionTimestamp") or ns_name in self._poked:
            return
        self._poked.add(ns_name)
        self.queue.add_after(ns_name, POKE_DELAY)

    # ---- sync (namespacedResourcesDeleter.Delete) -------------------------------------------------

    async def sync(self, name: str) -> None:
        self._poked.discard(name)
        cached = self.ns_informer.get(name)
        if cached is None or not cached["metadata"].get("deletionTimestamp"):
            return
        # Several parties edit a terminating namespace: act on its latest state.
        try:
            ns = await self.client.get("namespaces", None, name)
        except ApiError as e:
            if e.code == 404:
                return
            raise
        if not ns["metadata"].get("deletionTimestamp"):
            return
        ns = await self._ensure_terminating(ns)
        if ns is None or not (ns.get("spec") or {}).get("finalizers"):
            return
        estimate = await self.delete_all_content(ns)
        if estimate > 0:
            self.queue.add_after(name, estimate // 2 + 1)
            return
        await self._finalize(ns)

    async def _ensure_terminating(self, ns: dict) -> dict | None:
        latest: dict | None = ns

        async def read() -> dict | None:
            nonlocal latest
            if latest is None:
                latest = await get_or_none(self.client, "namespaces", None, ns["metadata"]["name"])
            out, latest = latest, None
            return out

        async def write(cur: dict) -> dict:
            if (cur.get("status") or {}).get("phase") == "Terminating":
                return cur
            body = dict(cur, status=dict(cur.get("status") or {}, phase="Terminating"))
            return await self.client.update_status("namespaces", None, body)

        return await retry_on_conflict(read, write, f"namespace {ns['metadata']['name']} status")

    async def _finalize(self, ns: dict) -> None:
        uid = ns["metadata"]["uid"]
        latest: dict | None = ns

        async def read() -> dict | None:
            nonlocal latest
            if latest is None:
                latest = await get_or_none(self.client, "namespaces", None, ns["metadata"]["name"])
                if latest is not None and latest["metadata"].get("uid") != uid:
                    return None  # a namespace of the same name, created since: not ours to finalize
            out, latest = latest, None
            return out

        async def write(cur: dict) -> None:
            spec = cur.get("spec") or {}
            rest = sorted({f for f in spec.get("finalizers") or () if f != FINALIZER})
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": cur["metadata"],
                    "spec": dict(spec, finalizers=rest)}
            await self.client.update("namespaces", None, body, subresource="finalize")

        await retry_on_conflict(read, write, f"finalizing namespace {ns['metadata']['name']}")

    async def delete_all_content(self, ns: dict) -> int:
        """Delete everything in the namespace; seconds to wait before looking again (0: empty)."""
        name = ns["metadata"]["name"]
        deleted_at = parse_rfc3339(ns["metadata"].get("deletionTimestamp")) or self.clock.now()
        resources = namespaced_resources()
        results = await asyncio.gather(*(self._delete_kind(r, name, deleted_at) for r in resources),
                                       return_exceptions=True)
        estimate = 0
        errors: list[Exception] = []
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for r, res in zip(resources, results):
            if isinstance(res, BaseException):
                if isinstance(res, asyncio.CancelledError):
                    raise res
                errors.append(res)
                est = getattr(res, "estimate", 0)
                left, fins = getattr(res, "remaining", 0), {}
            else:
                est, left, fins = res
            estimate = max(estimate, est)
            if left:
                remaining[f"{r.plural}.{r.group}"] = remaining.get(f"{r.plural}.{r.group}", 0) + left
                for f, n in fins.items():
                    finalizers[f] = finalizers.get(f, 0) + n
        failing: dict[str, dict] = {}
        if remaining:
            listed = sorted(f"{k} has {n} resource instances" for k, n in remaining.items())
            failing["NamespaceContentRemaining"] = {
                "type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
                "message": f"Some resources are remaining: {', '.join(listed)}"}
        if finalizers:
            listed = sorted(f"{f} in {n} resource instances" for f, n in finalizers.items())
            failing["NamespaceFinalizersRemaining"] = {
                "type": "NamespaceFinalizersRemaining", "status": "True", "reason": "SomeFinalizersRemain",
                "message": f"Some content in the namespace has finalizers remaining: {', '.join(listed)}"}
        if errors:
            msgs = sorted(str(e) for e in errors)
            failing["NamespaceDeletionContentFailure"] = {
                "type": "NamespaceDeletionContentFailure", "status": "True", "reason": "ContentDeletionFailed",
                "message": f"Failed to delete all resource types, {len(errors)} remaining: {', '.join(msgs)}"}
        status = dict(ns.get("status") or {})
        status["conditions"] = [dict(c) for c in status.get("conditions") or ()]
        if update_conditions(status, failing, self.clock.rfc3339()):
            try:
                await self.client.update_status("namespaces", None, dict(ns, status=status))
            except ApiError as e:
                log.warning("couldn't update status condition for namespace %r: %s", name, e)
        if errors:
            raise errors[0] if len(errors) == 1 else RuntimeError("; ".join(str(e) for e in errors))
        return estimate

    async def _delete_kind(self, res: Resource, ns: str, deleted_at: float) -> tuple[int, int, dict[str, int]]:
        """Delete one kind's objects: (estimate seconds, how many remain, their finalizers)."""
        items = (await self.client.list(res, ns))["items"]
        estimate = 0
        if res.group == "" and res.plural == "pods":
            for pod in items:
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
                if grace is not None and grace > estimate:
                    estimate = grace
            if self.clock.now() - deleted_at >= estimate:
                estimate = 0

        async def delete(obj: dict) -> None:
            try:
                await self.client.delete(res, ns, obj["metadata"]["name"], propagation_policy="Background")
            except ApiError as e:
                if e.code not in (404, 405):
                    raise
        # Objects already being deleted finish on their own (kubelet, finalizers).
        await bounded_map(delete, [o for o in items if not o["metadata"].get("deletionTimestamp")],
                          self.delete_concurrency)
        left = (await self.client.list(res, ns))["items"]
        if not left:
            return 0, 0, {}
        finalizers: dict[str, int] = {}
        for o in left:
            for f in o["metadata"].get("finalizers") or ():
                finalizers[f] = finalizers.get(f, 0) + 1
        if estimate:
            return estimate, len(left), finalizers
        if finalizers:
            return FINALIZER_ESTIMATE_SECONDS, len(left), finalizers
        raise ContentError(f"unexpected items still remain in namespace: {ns} for gvr: {gvr_string(res)}",
                           estimate, len(left))
