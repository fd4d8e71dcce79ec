"""ControllerRevision history: the shared memory of StatefulSets and DaemonSets.

Why it exists: a StatefulSet or DaemonSet keeps every pod template it has had as an immutable
ControllerRevision, so pods can be labelled with the revision they were made from, a rolling
update knows which pods are old, and `kubectl rollout history|undo` can list and restore earlier
templates. Both controllers need exactly the same bookkeeping, so it lives once, here, as
upstream's `pkg/controller/history` (controller_history.go):

* names are `<owner>-<hash>` (the owner's name cut to 223 characters), and the hash is also the
  revision's `controller.kubernetes.io/hash` label;
* the hash is upstream's: FNV-32 (FNV-1, as Go's `fnv.New32`, not FNV-1a) over the raw bytes of
  `data`, then the decimal collision count when there is one, spelled with
  `rand.SafeEncodeString`. The raw bytes are `data` as Go's `json.Marshal` writes a map: compact,
  keys sorted, `<`, `>` and `&` escaped;
* `data` is what `kubectl rollout undo` sends back as a strategic merge patch:
  `{"spec":{"template":{...,"$patch":"replace"}}}` (`template_patch`), rendered as Go renders the
  typed template (keys sorted, containers' `resources: {}`), byte for byte what kubectl 1.37
  computes from the live object when it checks whether a rollback would change anything;
* revisions are numbered from 1; going back to an earlier template does not create a new
  revision but renumbers the old one to the next number (`History.update_revision`);
* a name collision with different data raises the owner's `status.collisionCount` and retries
  (`History.create` returns the count to store);
* history is truncated to `revisionHistoryLimit`, oldest first, never touching live revisions.

API, in the order a controller uses it (all objects are plain dicts):

    hist = History(client, informers)                  # in Controller.setup()
    revs = sort_revisions(hist.list(owner, selector))  # owned by owner, or orphans that match
    rev = new_revision(owner, template_labels, template_patch(template), next_revision(revs), cc)
    same = find_equal_revisions(revs, rev)
    rev, cc = await hist.create(owner, rev, cc)        # or await hist.update_revision(old, n)
    await hist.adopt(owner, orphan) / hist.release(owner, rev)
    await hist.truncate(revs, live_names, limit)
    template_of(rev)                                   # the pod template a revision holds
"""

from __future__ import annotations

import copy
import logging
from typing import Callable, NamedTuple

import orjson

from ..api.errors import ApiError
from ..api.selectors import LabelSelector
from ..client import Client
from ..client.informer import object_key
from .base import SharedInformers, adopt, controller_ref, new_controller_ref, release
from .podtemplate.gostruct import drop_empty_collections
from .podtemplate.hash import safe_encode_string

log = logging.getLogger("pocketkube.controllers.history")

CONTROLLER_REVISIONS = "controllerrevisions.apps"
HASH_LABEL = "controller.kubernetes.io/hash"
MAX_PREFIX = 223   # so that "<prefix>-<hash>" stays within 253 characters

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv32(data: bytes, h: int = _FNV32_OFFSET) -> int:
    """FNV-1 32-bit (multiply, then xor), Go's `hash/fnv.New32`."""
    for b in data:
        h = ((h * _FNV32_PRIME) & 0xFFFFFFFF) ^ b
    return h


def raw_data(data: dict) -> bytes:
    """`data` as Go's json.Marshal writes a map: compact, sorted keys, HTML characters escaped."""
    raw = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    # These bytes only occur inside JSON strings, so a plain replace is exact.
    return (raw.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
            .replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029"))


def hash_revision(data: dict, collision_count: int | None = None) -> str:
    """HashControllerRevision: FNV-32 of the raw data, then of the collision count in decimal."""
    h = fnv32(raw_data(data))
    if collision_count is not None:
        h = fnv32(str(int(collision_count)).encode(), h)
    return safe_encode_string(str(h))


def revision_name(prefix: str, hash_: str) -> str:
    """ControllerRevisionName: `<prefix>-<hash>`, the prefix cut to 223 characters."""
    return f"{prefix[:MAX_PREFIX]}-{hash_}"


def _sorted(value):
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _as_go_renders(template: dict) -> dict:
    """The template as Go's json.Marshal writes a typed PodTemplateSpec (Kubernetes >= 1.35):
    struct fields that omitempty cannot drop are always there, i.e. `metadata` and every
    container's `resources` ({}); the empty creationTimestamp is left out (omitzero), and so
    are empty lists and maps (nil after protobuf, then omitempty)."""
    tpl = drop_empty_collections(copy.deepcopy(template or {}))
    tpl.setdefault("metadata", {})
    spec = tpl.get("spec")
    if isinstance(spec, dict):
        for field in ("initContainers", "containers", "ephemeralContainers"):
            for c in spec.get(field) or ():
                if isinstance(c, dict):
                    c.setdefault("resources", {})
    return tpl


def template_patch(template: dict) -> dict:
    """The data of a revision of `template`: a strategic merge patch replacing spec.template.

    Rendered as upstream's controllers and kubectl render it (getPatch / getStatefulSetPatch /
    getDaemonSetPatch: the typed object marshalled by Go, then its template as a sorted map), so
    that `kubectl rollout undo --to-revision=N` recognises a revision equal to the live template
    ("skipped rollback") and the same template hashes to the same revision name as upstream's.
    """
    return _sorted({"spec": {"template": {**_as_go_renders(template), "$patch": "replace"}}})


def template_of(revision: dict) -> dict:
    """The pod template a revision restores (its patch applied to any owner), as rendered."""
    tpl = dict((((revision.get("data") or {}).get("spec") or {}).get("template")) or {})
    tpl.pop("$patch", None)
    return copy.deepcopy(tpl)


class Naming(NamedTuple):
    """How an owner names its revisions: `<owner>-<hash>`, the hash also in label `label`."""

    label: str
    hash: Callable[[dict, int | None], str]   # (revision, collision count) -> hash


# StatefulSets (HashControllerRevision of the data); DaemonSets name theirs by the
# pod-template-hash instead (daemonset/update.py).
BY_DATA = Naming(HASH_LABEL, lambda rev, cc: hash_revision(rev["data"], cc))


def _name(owner: dict, revision: dict, naming: Naming, collision_count: int | None) -> None:
    hash_ = naming.hash(revision, collision_count)
    revision["metadata"]["name"] = revision_name(owner["metadata"]["name"], hash_)
    revision["metadata"].setdefault("labels", {})[naming.label] = hash_


def new_revision(owner: dict, template_labels: dict | None, data: dict, revision: int,
                 collision_count: int | None, annotations: dict | None = None,
                 naming: Naming = BY_DATA) -> dict:
    """NewControllerRevision: labelled like the template, controlled by `owner`, named by hash."""
    meta = owner["metadata"]
    rmeta: dict = {"namespace": meta.get("namespace"), "labels": dict(template_labels or {}),
                   "ownerReferences": [new_controller_ref(owner)]}
    if annotations:
        rmeta["annotations"] = dict(annotations)
    rev = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": rmeta,
           "data": data, "revision": int(revision)}
    _name(owner, rev, naming, collision_count)
    return rev


def equal_revision(a: dict | None, b: dict | None) -> bool:
    """EqualRevision: same hash label (when both have one) and the same data."""
    if a is None or b is None:
        return a is b
    ha = ((a.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL)
    hb = ((b.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL)
    # Upstream parses the labels as decimal numbers, which safe-encoded hashes rarely are; a
    # difference only counts when both parse.
    if ha is not None and hb is not None and ha.isdigit() and hb.isdigit() and ha != hb:
        return False
    return a.get("data") == b.get("data")


def find_equal_revisions(revisions: list[dict], needle: dict) -> list[dict]:
    """The revisions holding the same data as `needle`, in their given order."""
    return [r for r in revisions if equal_revision(r, needle)]


def sort_revisions(revisions: list[dict]) -> list[dict]:
    """By revision number, then creation time, then name (SortControllerRevisions)."""
    return sorted(revisions, key=lambda r: (int(r.get("revision") or 0),
                                            r["metadata"].get("creationTimestamp") or "",
                                            r["metadata"].get("name") or ""))


def next_revision(revisions: list[dict]) -> int:
    """One more than the highest revision number (of a sorted list), 1 for none."""
    return int(revisions[-1].get("revision") or 0) + 1 if revisions else 1


class History:
    """Reads revisions from the shared ControllerRevision informer, writes through the client."""

    def __init__(self, client: Client, informers: SharedInformers):
        self.client = client
        self.informer = informers.get(CONTROLLER_REVISIONS)
        self._by_ns: dict[str, set[str]] = {}
        self.informer.add_handler(self._index)

    def _index(self, kind: str, old: dict | None, new: dict | None) -> None:
        obj = new if new is not None else old
        ns = obj["metadata"].get("namespace") or ""
        if new is None:
            s = self._by_ns.get(ns)
            if s is not None:
                s.discard(object_key(old))
        else:
            self._by_ns.setdefault(ns, set()).add(object_key(new))

    def list(self, owner: dict, selector: LabelSelector) -> list[dict]:
        """ListControllerRevisions: revisions in the owner's namespace matching `selector` that
        the owner controls or nobody controls (orphans the caller may adopt)."""
        meta = owner["metadata"]
        uid = meta.get("uid")
        out = []
        for key in self._by_ns.get(meta.get("namespace") or "", ()):
            rev = self.informer.get(key)
            if rev is None or not selector.matches((rev["metadata"].get("labels")) or {}):
                continue
            ref = controller_ref(rev)
            if ref is None or ref.get("uid") == uid:
                out.append(rev)
        return out

    async def create(self, owner: dict, revision: dict, collision_count: int | None,
                     naming: Naming = BY_DATA) -> tuple[dict, int | None]:
        """CreateControllerRevision: create under the hash name; on a name taken by other data,
        raise the collision count and try the next name. Returns (revision, collision count)."""
        ns = owner["metadata"].get("namespace")
        clone = copy.deepcopy(revision)
        while True:
            _name(owner, clone, naming, collision_count)
            try:
                return await self.client.create(CONTROLLER_REVISIONS, ns, clone), collision_count
            except ApiError as e:
                if e.code != 409 or e.reason != "AlreadyExists":
                    raise
            existing = await self.client.get(CONTROLLER_REVISIONS, ns, clone["metadata"]["name"])
            if existing.get("data") == clone["data"]:
                return existing, collision_count
            collision_count = int(collision_count or 0) + 1

    async def update_revision(self, revision: dict, new_revision: int) -> dict:
        """UpdateControllerRevision: renumber a revision (a rollback to it), retrying conflicts."""
        clone = copy.deepcopy(revision)
        for _ in range(16):
            if int(clone.get("revision") or 0) == new_revision:
                return clone
            clone["revision"] = int(new_revision)
            try:
                return await self.client.update(CONTROLLER_REVISIONS, clone["metadata"].get("namespace"), clone)
            except ApiError as e:
                if e.code != 409:
                    raise
            clone = copy.deepcopy(await self.client.get(CONTROLLER_REVISIONS, clone["metadata"].get("namespace"),
                                                        clone["metadata"]["name"]))
        raise RuntimeError(f"updating revision {clone['metadata']['name']}: kept conflicting")

    async def delete(self, revision: dict) -> None:
        try:
            await self.client.delete(CONTROLLER_REVISIONS, revision["metadata"].get("namespace"),
                                     revision["metadata"]["name"])
        except ApiError as e:
            if e.code != 404:
                raise

    async def adopt(self, owner: dict, revision: dict) -> dict:
        """AdoptControllerRevision: take an orphan (refused if someone else controls it)."""
        ref = controller_ref(revision)
        if ref is not None:
            raise RuntimeError(f"attempt to adopt revision owned by {ref}")
        return await adopt(self.client, CONTROLLER_REVISIONS, revision, owner)

    async def release(self, owner: dict, revision: dict) -> dict | None:
        """ReleaseControllerRevision: drop the owner's reference; None if gone or not ours."""
        try:
            return await release(self.client, CONTROLLER_REVISIONS, revision, owner)
        except ApiError as e:
            if e.code in (404, 422):
                return None
            raise

    async def truncate(self, revisions: list[dict], live: set[str], limit: int | None) -> None:
        """Delete the oldest revisions that are not live until at most `limit` non-live ones
        remain. `revisions` must be sorted; `live` holds revision names (current, update, and
        those pods still run). A negative or absent limit keeps everything."""
        if limit is None or limit < 0:
            return
        old = [r for r in revisions if r["metadata"]["name"] not in live]
        for rev in old[:max(0, len(old) - limit)]:
            await self.delete(rev)
