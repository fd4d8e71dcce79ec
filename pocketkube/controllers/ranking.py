"""Pod readiness, availability, and the order in which a controller gives pods up.

When a ReplicaSet has more pods than it wants (scale down, or a Deployment draining an old
ReplicaSet), which ones go first matters: users expect the pods that serve least, or cost least to
lose, to disappear before the healthy, long-running ones. Kubernetes fixes that order in
`controller.ActivePodsWithRanks` (pkg/controller/controller_utils.go); this module is that order,
shared by every controller that deletes surplus pods, together with the pod predicates that go
with it (`podutil.IsPodReady`, `IsPodAvailable`).

The order, first deleted first:

1. not yet scheduled before scheduled;
2. Pending before Unknown before Running;
3. not ready before ready;
4. lower `controller.kubernetes.io/pod-deletion-cost` before higher;
5. more related pods on the same node before fewer ("doubled up" pods spread load worst);
6. for two ready pods, ready more recently before ready for longer;
7. more container restarts before fewer;
8. created more recently before older.

Steps 6 and 8 compare times on a logarithmic scale (LogarithmicScaleDown, on by default since
1.22): times whose age from now falls into the same power-of-two bucket of nanoseconds count as
equal and the pod UIDs decide, so that scaling down does not always pick the very newest pods.
"""

from __future__ import annotations

import collections
import functools
import heapq
import math
import re
from typing import Iterable, Mapping

from ..client.informer import ObjectMemo
from ..clock import parse_rfc3339

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}
_INT32 = (-(2 ** 31), 2 ** 31 - 1)
_INTEGER = re.compile(r"[+-]?[0-9]+")  # what strconv.ParseInt accepts in base 10


def ready_condition(pod: dict) -> dict | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c
    return None


def is_pod_ready(pod: dict) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def is_pod_active(pod: dict) -> bool:
    """Neither finished nor being deleted (controller.IsPodActive)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def is_pod_terminating(pod: dict) -> bool:
    """Being deleted but not finished (controller.FilterTerminatingPods)."""
    phase = (pod.get("status") or {}).get("phase")
    return bool(pod["metadata"].get("deletionTimestamp")) and phase not in ("Succeeded", "Failed")


def available_after(pod: dict, min_ready_seconds: int, now: float) -> float | None:
    """0 if the pod is available, the seconds until it will be if it is ready, else None.

    IsPodAvailable: ready, and ready for at least minReadySeconds (strictly: the transition plus
    minReadySeconds must lie before now).
    """
    c = ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    if not min_ready_seconds:
        return 0.0
    since = parse_rfc3339(c.get("lastTransitionTime"))
    if since is None:
        # Never available (upstream needs the transition time); look again after the wait.
        return float(min_ready_seconds)
    left = since + min_ready_seconds - now
    return 0.0 if left < 0 else max(left, 1e-3)


def is_pod_available(pod: dict, min_ready_seconds: int, now: float) -> bool:
    return available_after(pod, min_ready_seconds, now) == 0.0


def deletion_cost(pod: dict) -> int:
    """The pod-deletion-cost annotation as an int32; absent or invalid counts as 0."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST_ANNOTATION)
    if raw is None or not _INTEGER.fullmatch(raw):
        return 0
    v = int(raw)
    return v if _INT32[0] <= v <= _INT32[1] else 0


def max_restarts(pod: dict) -> int:
    return max((cs.get("restartCount") or 0 for cs in (pod.get("status") or {}).get("containerStatuses") or ()),
               default=0)


def _log_bucket(t: float, now: float) -> int:
    """floor(log2(age in nanoseconds)), -1 for no age (logarithmicRankDiff)."""
    d = int(round((now - t) * 1e9))
    return int(math.floor(math.log2(d))) if d > 0 else -1


class _Ranked:
    """What the ranking reads of one pod: the facts that come from the pod object (kept in a
    memo while the object stays the same), and the age buckets, which are set again for every
    ranking (the placement rank is its group's). A pod that only counts for placement (another
    ReplicaSet's) needs only `active` and `node`; the rest is read when the pod is ranked."""

    __slots__ = ("pod", "active", "node", "group", "ready", "ready_at", "restarts", "created", "uid",
                 "ready_bucket", "created_bucket")

    def __init__(self, pod: dict) -> None:
        self.pod = pod
        self.active = is_pod_active(pod)
        self.node = (pod.get("spec") or {}).get("nodeName") or ""
        self.group: tuple | None = None

    def read(self) -> tuple:
        """The ranking's facts; returns the pod's group: its first four criteria and its node."""
        pod = self.pod
        meta = pod["metadata"]
        c = ready_condition(pod)
        ready_at = (parse_rfc3339(c.get("lastTransitionTime")) or 0.0) \
            if c is not None and c.get("status") == "True" else None
        self.ready = ready_at is not None
        self.ready_at = ready_at or 0.0
        self.restarts = max_restarts(pod)
        self.created = parse_rfc3339(meta.get("creationTimestamp")) or 0.0
        self.uid = meta.get("uid") or ""
        phase = _PHASE_ORDINAL.get((pod.get("status") or {}).get("phase"), 0)
        self.group = ((bool(self.node), phase, self.ready, deletion_cost(pod)), self.node)
        return self.group


def _time_order(t1: float, t2: float, b1: int | None, b2: int | None, a: _Ranked, b: _Ranked) -> int:
    """Later (or unset) first; with log2 age buckets (`now` given), equal buckets are ordered by UID."""
    if b1 is None or b2 is None:
        # afterOrZero: an unset time sorts first, then the later time.
        if not t1 or not t2:
            return -1 if not t1 else 1
        return -1 if t1 > t2 else 1
    diff = b1 - b2
    if diff == 0:
        return -1 if a.uid < b.uid else (1 if a.uid > b.uid else 0)
    return -1 if diff < 0 else 1


def _compare_rest(a: _Ranked, b: _Ranked) -> int:
    """Upstream's ActivePodsWithRanks.Less after the first five criteria: ready time, restarts,
    creation time. Not a consistent order within equal log2 age buckets (UIDs decide only
    between times that differ), so it stays a comparison, not a key."""
    if a.ready and b.ready and a.ready_at != b.ready_at:
        return _time_order(a.ready_at, b.ready_at, a.ready_bucket, b.ready_bucket, a, b)
    if a.restarts != b.restarts:
        return -1 if a.restarts > b.restarts else 1
    if a.created != b.created:
        return _time_order(a.created, b.created, a.created_bucket, b.created_bucket, a, b)
    return 0


_rest_key = functools.cmp_to_key(_compare_rest)


class Placement:
    """Active pods per controller and node, kept from pod events: step 5's counts for a
    controller that ranks thousands of pods again and again, without reading every related pod
    at each ranking."""

    def __init__(self) -> None:
        self._of: dict[str, tuple[str, str]] = {}                        # key -> (controller uid, node)
        self._counts: dict[str, collections.Counter] = {}                # controller uid -> node -> pods

    def update(self, key: str, obj: dict | None, controller_uid: str | None) -> None:
        """Record a pod's current state (obj None: it is gone)."""
        now = None
        if obj is not None and controller_uid and is_pod_active(obj):
            now = (controller_uid, (obj.get("spec") or {}).get("nodeName") or "")
        old = self._of.get(key)
        if old == now:
            return   # most events: a pod's status changed, not where it counts
        if old is not None:
            del self._of[key]
            counts = self._counts[old[0]]
            counts[old[1]] -= 1
            if counts[old[1]] <= 0:
                del counts[old[1]]
                if not counts:
                    del self._counts[old[0]]
        if now is not None:
            self._of[key] = now
            counts = self._counts.get(now[0])
            if counts is None:
                counts = self._counts[now[0]] = collections.Counter()
            counts[now[1]] += 1

    def on_nodes(self, controller_uids: Iterable[str]) -> collections.Counter:
        """Active pods per node, over the pods of these controllers."""
        total: collections.Counter = collections.Counter()
        for uid in controller_uids:
            total.update(self._counts.get(uid, ()))
        return total


def rank_pods_for_deletion(pods: Iterable[dict], related_pods: Iterable[dict] | None = None,
                           now: float | None = None, limit: int | None = None,
                           memo: ObjectMemo | None = None, on_node: Mapping[str, int] | None = None) -> list[dict]:
    """`pods` in the order to delete them, first to go first.

    `related_pods` are the pods whose placement counts for step 5 (the owner's own pods and, for
    a Deployment, its other ReplicaSets' pods); by default `pods` themselves. `now` enables the
    logarithmic time comparison, as upstream's ReplicaSet controller always does. A `memo` keeps
    the facts of pods that have not changed since the last ranking (a Deployment draining an
    old ReplicaSet of thousands of pods ranks them all for every 500 it deletes). `on_node`, when
    given, is what the related pods would count per node (see Placement): they are not read.
    """
    pods = list(pods)
    known = memo.entries if memo is not None else {}
    seen: dict[int, tuple[dict, _Ranked]] = {}
    # Each pod's facts, from the memo while the object is the same; the related pods (a
    # Deployment's other ReplicaSets' too) count for step 5.
    if on_node is None:
        placed: list[str] = []
        for p in (pods if related_pods is None else related_pods):
            entry = known.get(id(p))
            r = entry[1] if entry is not None and entry[0] is p else _Ranked(p)
            seen[id(p)] = (p, r)
            if r.active:
                placed.append(r.node)
        on_node = collections.Counter(placed)
    # Pods alike in the first four criteria and placed on the same node tie in the first five:
    # the ranking sorts these groups, and compares pods one by one only where it must.
    groups: dict[tuple, list[_Ranked]] = {}
    for p in pods:
        entry = seen.get(id(p))
        if entry is None:
            entry = known.get(id(p))
            if entry is None or entry[0] is not p:
                entry = (p, _Ranked(p))
            seen[id(p)] = entry
        r = entry[1]
        g = r.group or r.read()
        members = groups.get(g)
        if members is None:
            groups[g] = [r]
        else:
            members.append(r)
    if memo is not None:
        memo.entries = seen
    by_first_five: dict[tuple, list[_Ranked]] = {}
    for (first, node), members in groups.items():
        by_first_five.setdefault(first + (-on_node.get(node, 0),), []).extend(members)
    keys_in_order = sorted(by_first_five)
    if limit is not None and limit < len(pods):
        # A scale-down deletes at most 500 of thousands: only the groups up to the one where the
        # count reaches `limit` can hold a chosen pod.
        taken = 0
        for i, f in enumerate(keys_in_order):
            taken += len(by_first_five[f])
            if taken >= limit:
                keys_in_order = keys_in_order[:i + 1]
                break
    # Times are whole seconds, shared by many pods: one bucket per distinct time.
    buckets: dict[float, int] = {}

    def bucket(t: float) -> int | None:
        if not t or now is None:
            return None
        b = buckets.get(t)
        return b if b is not None else buckets.setdefault(t, _log_bucket(t, now))

    keys: list[tuple] = []
    for f in keys_in_order:
        members = by_first_five[f]
        for r in members:
            r.ready_bucket = bucket(r.ready_at) if r.ready else None
            r.created_bucket = bucket(r.created)
        if f[2] and now is not None:
            # Ready pods whose ready times fall in different log2 buckets are ordered by
            # bucket whatever else they hold (see _compare_rest): the bucket goes first in
            # the key, so the comparison runs only within one.
            keys.extend((f, -1 if r.ready_bucket is None else r.ready_bucket, _rest_key(r)) for r in members)
        else:
            keys.extend((f, 0, _rest_key(r)) for r in members)
    if limit is not None and limit < len(keys):
        return [k[-1].obj.pod for k in heapq.nsmallest(limit, keys)]
    keys.sort()
    return [k[-1].obj.pod for k in keys]


def pods_to_delete(pods: list[dict], related_pods: Iterable[dict] | None, count: int,
                   now: float | None = None, memo: ObjectMemo | None = None,
                   on_node: Mapping[str, int] | None = None) -> list[dict]:
    """The `count` pods to delete first (getPodsToDelete: no ranking when all of them go)."""
    if count < len(pods):
        return rank_pods_for_deletion(pods, related_pods, now, limit=count, memo=memo, on_node=on_node)
    return list(pods[:count])
