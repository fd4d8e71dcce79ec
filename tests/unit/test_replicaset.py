"""ReplicaSet controller, in process: pods named and owned as upstream, adoption and release,
slow-start creates with the ReplicaFailure condition, deletion ranking, minReadySeconds on a
FakeClock, and the ReplicaSet conformance behaviours that do not need ReplicationControllers."""

from __future__ import annotations

import asyncio
import random
import re

from pocketkube.api.errors import ApiError
from pocketkube.client import MERGE, STRATEGIC, resource
from pocketkube.api.selectors import selector_from_dict
from pocketkube.client.informer import ObjectMemo
from pocketkube.client.inprocess import InProcessClient
from pocketkube.clock import FakeClock, parse_rfc3339
from pocketkube.controllers.base import OwnedIndex, controlled_elsewhere
from pocketkube.controllers import replicaset
from pocketkube.client.bounded import bounded_map
from pocketkube.controllers.podcontrol import SpamFilter, slow_start_batch
from pocketkube.controllers.ranking import (
    DELETION_COST_ANNOTATION,
    Placement,
    pods_to_delete,
    rank_pods_for_deletion,
)
from pocketkube.controllers.replicaset import CensusMemo, ReplicaSetController, take_census
from tests.unit.harness import ControllerEnv, run, until

RS = "replicasets.apps"


def rs_manifest(name, replicas, labels=None, image="nginx", **spec):
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}


class FlakyClient(InProcessClient):
    """Fails pod creates while `fail_after` is set and that many creates have succeeded."""

    def __init__(self, api):
        super().__init__(api)
        self.fail_after: int | None = None
        self.attempts = 0
        self.succeeded = 0

    async def create(self, res, namespace, obj, result=True):
        if res == "pods":
            self.attempts += 1
            if self.fail_after is not None and self.succeeded >= self.fail_after:
                raise ApiError(403, "Forbidden", 'pods "x" is forbidden: exceeded quota: q, requested: pods=1')
            out = await super().create(res, namespace, obj, result)
            self.succeeded += 1
            return out
        return await super().create(res, namespace, obj, result)


class Env(ControllerEnv):
    def __init__(self, tmp_path, nodes=0, client_class=InProcessClient):
        super().__init__(tmp_path, [ReplicaSetController], nodes=nodes, client_class=client_class)

    async def __aenter__(self):
        await super().__aenter__()
        self.rsc = self.controller(ReplicaSetController)
        return self

    async def pods(self, selector="", active=True):
        items = (await self.c.list("pods", "default", label_selector=selector))["items"]
        if active:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return items

    async def rs(self, name):
        return await self.c.get(RS, "default", name)

    async def events(self, reason):
        items = (await self.c.list("events", "default"))["items"]
        return [e for e in items if e["reason"] == reason]

    async def wait_status(self, name, timeout=10.0, **want):
        async def ok():
            st = (await self.rs(name)).get("status") or {}
            return all(st.get(k, 0) == v for k, v in want.items())
        await until(ok, timeout, f"{name} status {want}")
        return await self.rs(name)


def running(pod):
    return (pod.get("status") or {}).get("phase") == "Running"


# ---- pure pieces ----------------------------------------------------------------------------

def _pod(name, node="", phase="Running", ready=True, ready_at=None, cost=None, restarts=0,
         created="2024-01-01T00:00:00Z", uid=None):
    conds = [{"type": "Ready", "status": "True" if ready else "False",
              "lastTransitionTime": ready_at or created}]
    meta = {"name": name, "uid": uid or name, "creationTimestamp": created}
    if cost is not None:
        meta["annotations"] = {DELETION_COST_ANNOTATION: str(cost)}
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conds,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def test_pods_to_delete_takes_the_first_of_the_full_ranking():
    # A scale-down ranks only as many pods as it deletes; the choice must be the full sort's.
    import random
    rng = random.Random(7)
    nodes = ["", "n1", "n2", "n3"]
    pods = [_pod(f"p{i}", rng.choice(nodes), rng.choice(["Pending", "Running", "Unknown"]),
                 ready=rng.random() < 0.7, restarts=rng.randrange(3), cost=rng.choice([None, 0, 5, -3]),
                 ready_at=f"2024-01-0{rng.randrange(1, 9)}T00:00:00Z",
                 created=f"2024-01-0{rng.randrange(1, 9)}T00:00:0{rng.randrange(10)}Z")
            for i in range(300)]
    # Exact times (no `now`): the comparison is a consistent order, as it is whenever the pods'
    # ages fall in different log2 buckets.
    full = [p["metadata"]["name"] for p in rank_pods_for_deletion(pods, None)]
    for n in (1, 7, 50, 299):
        assert [p["metadata"]["name"] for p in pods_to_delete(pods, None, n)] == full[:n]


def test_rank_memo_ranks_as_a_fresh_ranking():
    """Rankings that reuse the facts of unchanged pods pick what a fresh ranking picks, while
    pods change between them; the memo holds only the pods of the last ranking."""
    rng = random.Random(11)
    now = parse_rfc3339("2024-01-09T00:00:00Z")

    def pod(i):
        return _pod(f"p{i}", rng.choice(["", "n1", "n2", "n3"]), rng.choice(["Pending", "Running"]),
                    ready=rng.random() < 0.7, restarts=rng.randrange(3), cost=rng.choice([None, 0, 5]),
                    ready_at=f"2024-01-0{rng.randrange(1, 9)}T00:00:00Z",
                    created=f"2024-01-0{rng.randrange(1, 9)}T00:00:0{rng.randrange(10)}Z")

    pods = [pod(i) for i in range(200)]
    memo = ObjectMemo()
    for step in range(5):
        for _ in range(15):
            pods[rng.randrange(len(pods))] = pod(rng.randrange(10**6))
        got = pods_to_delete(pods, None, 40, now, memo)
        assert [id(p) for p in got] == [id(p) for p in pods_to_delete(pods, None, 40, now)], step
        assert len(memo.entries) == len(pods) and all(memo.entries[id(p)][0] is p for p in pods)
        pods = pods[:-10]


def test_placement_counts_as_the_related_pods_do():
    """Counts kept from pod events rank as reading the related pods does, while pods move,
    finish, start being deleted, change controller and go."""
    rng = random.Random(3)
    now = parse_rfc3339("2024-01-09T00:00:00Z")
    placement, objs = Placement(), {}

    def pod(i):
        p = _pod(f"p{i}", rng.choice(["", "n1", "n2", "n3"]), rng.choice(["Pending", "Running", "Succeeded"]),
                 ready=rng.random() < 0.7, ready_at=f"2024-01-0{rng.randrange(1, 9)}T00:00:00Z")
        if rng.random() < 0.2:
            p["metadata"]["deletionTimestamp"] = "2024-01-08T00:00:00Z"
        return p, rng.choice(["rs1", "rs2", "other"])

    for step in range(300):
        i = rng.randrange(60)
        if rng.random() < 0.2:
            objs.pop(i, None)
            placement.update(f"ns/p{i}", None, None)
        else:
            objs[i] = pod(i)
            placement.update(f"ns/p{i}", objs[i][0], objs[i][1])
        ranked = [p for p, owner in objs.values() if owner == "rs1"]
        related = [p for p, owner in objs.values() if owner in ("rs1", "rs2")]
        by_reading = rank_pods_for_deletion(ranked, related, now)
        by_counts = rank_pods_for_deletion(ranked, None, now, on_node=placement.on_nodes(["rs1", "rs2"]))
        assert [id(p) for p in by_counts] == [id(p) for p in by_reading], step


def test_ranking_follows_active_pods_with_ranks():
    def order(pods, related=None, now=None):
        return [p["metadata"]["name"] for p in rank_pods_for_deletion(pods, related, now)]

    # 1. unassigned first; 2. Pending < Unknown < Running; 3. not ready first.
    assert order([_pod("a", "n1"), _pod("b", "")]) == ["b", "a"]
    assert order([_pod("r", "n1"), _pod("u", "n1", "Unknown"), _pod("p", "n1", "Pending")]) == ["p", "u", "r"]
    assert order([_pod("ready", "n1"), _pod("not", "n1", ready=False)]) == ["not", "ready"]
    # 4. lower deletion cost first (invalid counts as 0).
    assert order([_pod("hi", "n1", cost=10), _pod("lo", "n1", cost=-5), _pod("bad", "n1", cost="x")]) == \
        ["lo", "bad", "hi"]
    # 5. more related pods on the same node first.
    related = [_pod("x1", "n1"), _pod("x2", "n1"), _pod("y", "n2")]
    assert order([_pod("on2", "n2"), _pod("on1", "n1")], related) == ["on1", "on2"]
    # 6. ready more recently first; 7. more restarts first; 8. newer first.
    assert order([_pod("old", "n1", ready_at="2024-01-01T00:00:00Z"),
                  _pod("new", "n1", ready_at="2024-01-02T00:00:00Z")]) == ["new", "old"]
    assert order([_pod("calm", "n1"), _pod("crashy", "n1", restarts=5)]) == ["crashy", "calm"]
    assert order([_pod("old", "n1", created="2024-01-01T00:00:00Z"),
                  _pod("young", "n1", created="2024-01-03T00:00:00Z")]) == ["young", "old"]
    # Logarithmic comparison: ages in the same power-of-two bucket tie, and the UID decides.
    now = 1_704_067_200.0 + 10 * 86400  # 2024-01-11
    same_bucket = [_pod("b", "n1", created="2024-01-01T00:00:00Z", uid="2"),
                   _pod("a", "n1", created="2024-01-01T00:00:01Z", uid="1")]
    assert order(same_bucket, now=now) == ["a", "b"]
    assert order(list(reversed(same_bucket)), now=now) == ["a", "b"]
    far = [_pod("old", "n1", created="2023-01-01T00:00:00Z"), _pod("new", "n1", created="2024-01-10T00:00:00Z")]
    assert order(far, now=now) == ["new", "old"]


def test_census_memo_counts_as_a_fresh_census():
    """A census that classifies again only the pods that changed finds what a full pass finds,
    through pods that change, disappear, and a ReplicaSet whose selector or deletion changes."""
    rng = random.Random(7)
    rs = {"metadata": {"uid": "u1", "name": "web", "namespace": "ns", "generation": 1},
          "spec": {"replicas": 50, "minReadySeconds": 5, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}}}}
    now = parse_rfc3339("2024-01-01T00:01:00Z")

    def pod(i):
        labels = rng.choice([{"app": "web", "tier": "front"}, {"app": "web"}, {"app": "other"}])
        meta = {"name": f"p{i}", "namespace": "ns", "labels": labels}
        if rng.random() < 0.1:
            meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        ready = {"type": "Ready", "status": rng.choice(["True", "False"]),
                 "lastTransitionTime": f"2024-01-01T00:00:{rng.randrange(60):02d}Z"}
        return {"metadata": meta, "status": {"phase": rng.choice(["Pending", "Running", "Failed"]),
                                             "conditions": [ready]}}

    def summary(c):
        return (sorted(id(p) for p in c.active), sorted(id(p) for p in c.to_release), c.terminating,
                c.fully_labeled, c.ready, c.available, c.next_available)

    pods = {f"ns/k{i}": pod(i) for i in range(400)}
    memo = CensusMemo("u1")
    for step in range(8):
        touched = set()
        if step == 3:
            touched = set(list(pods)[-30:])     # gone, and nothing else changed
            for k in touched:
                del pods[k]
        else:
            for _ in range(20):
                k = f"ns/k{rng.randrange(500)}"     # changed, or new
                pods[k] = pod(rng.randrange(10**6))
                touched.add(k)
        if step == 5:
            rs["spec"]["selector"] = {"matchLabels": {"app": "other"}}
        if step == 6:
            rs["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:30Z"
        sel = selector_from_dict(rs["spec"]["selector"])
        # The first census has nothing to go on; later ones get the keys touched since.
        got = take_census(rs, sel, pods, [], now, memo, touched if step else None)
        assert summary(got) == summary(take_census(rs, sel, pods, [], now)), step
        assert got.active and got.ready and got.available and got.terminating
        assert memo.classes.keys() == pods.keys()   # holds no pod that is gone


def test_owned_index_reports_the_changes_of_tracked_owners():
    """The index tells a tracked owner which of its pods changed, joined or left it since it
    last asked, and keeps nothing for owners nobody tracks."""
    def pod(name, owner):
        refs = [{"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}] if owner else []
        return {"metadata": {"name": name, "namespace": "ns", "ownerReferences": refs}}

    index = OwnedIndex()
    index.update("ns/a", pod("a", "rs1"))
    assert index.take_changes("rs1") is None            # the first call starts tracking
    index.update("ns/b", pod("b", "rs1"))
    a2 = pod("a", "rs1")
    index.update("ns/a", a2)
    index.update("ns/c", pod("c", "rs2"))
    assert index.take_changes("rs1") == {"ns/a", "ns/b"}
    assert index.owned_by("rs1")["ns/a"] is a2
    index.update("ns/b", pod("b", ""))                  # released: an orphan now
    index.update("ns/a", None)                          # gone
    assert index.take_changes("rs1") == {"ns/a", "ns/b"}
    assert index.owned_by("rs1") == {} and [p["metadata"]["name"] for p in index.orphans("ns")] == ["b"]
    assert index.take_changes("rs1") == set()
    index.untrack("rs1")
    index.update("ns/d", pod("d", "rs1"))
    assert index._changed == {}                         # untracked owners keep no changes


def test_events_about_another_kinds_objects_are_skipped_unless_indexed():
    """A controller skips the events of objects another kind controls before and after, but not
    those of its own kind, of orphans, or of an object its index still holds (it was an orphan)."""
    def pod(kind):
        refs = [{"kind": kind, "name": "o", "uid": "u", "controller": True}] if kind else []
        return {"metadata": {"name": "p", "namespace": "ns", "ownerReferences": refs}}

    index = OwnedIndex()
    assert controlled_elsewhere("ns/p", None, pod("ReplicaSet"), "DaemonSet", index)
    assert controlled_elsewhere("ns/p", pod("Job"), pod("ReplicaSet"), "DaemonSet", index)
    assert controlled_elsewhere("ns/p", pod("Job"), None, "DaemonSet")
    assert not controlled_elsewhere("ns/p", None, pod("DaemonSet"), "DaemonSet", index)
    assert not controlled_elsewhere("ns/p", pod(None), pod("ReplicaSet"), "DaemonSet", index)
    index.update("ns/p", pod(None))
    assert not controlled_elsewhere("ns/p", pod("ReplicaSet"), None, "DaemonSet", index)


def test_slow_start_batches_and_spam_filter():
    async def main():
        sizes = []
        inflight = 0

        async def ok():
            nonlocal inflight
            inflight += 1
            sizes.append(inflight)
            await asyncio.sleep(0)
            inflight -= 1
        done, err = await slow_start_batch(10, 1, ok)
        assert (done, err) == (10, None)
        calls = 0

        async def fail_fourth():
            nonlocal calls
            calls += 1
            if calls == 4:
                raise RuntimeError("boom")
        done, err = await slow_start_batch(100, 1, fail_fourth)
        # Batches of 1, 2, then 4 (one fails): 7 calls, 6 successes, and no further batch.
        assert (calls, done, str(err)) == (7, 6, "boom")

        clock = FakeClock()
        spam = SpamFilter(clock)
        owner = {"kind": "ReplicaSet", "metadata": {"name": "x", "namespace": "d", "uid": "u"}}
        assert sum(spam.allow(owner, "Normal") for _ in range(100)) == 25
        assert spam.allow(owner, "Warning")  # counted per event type
        clock.advance(300)
        assert spam.allow(owner, "Normal") and not spam.allow(owner, "Normal")
    run(main())


def test_bounded_map_limits_calls_in_flight_and_keeps_order():
    async def main():
        inflight = peak = 0

        async def slow(i):
            nonlocal inflight, peak
            inflight += 1
            peak = max(peak, inflight)
            await asyncio.sleep(0.001 * (i % 3))   # finishing out of order
            inflight -= 1
            return i * i
        assert await bounded_map(slow, range(50), 7) == [i * i for i in range(50)]
        assert peak == 7
        assert await bounded_map(slow, [], 7) == []
        assert await bounded_map(slow, [2], 0) == [4]   # a limit below one still runs one
        peak = 0
        assert await bounded_map(slow, [3, 4], 1) == [9, 16] and peak == 1

        started = []

        async def boom(i):
            started.append(i)
            await asyncio.sleep(0)
            if i == 2:
                raise RuntimeError("boom")
        try:
            await bounded_map(boom, range(10), 3)
            raise AssertionError("no exception")
        except RuntimeError as e:
            assert str(e) == "boom"
        assert started[:3] == [0, 1, 2]
    run(main())


# ---- the controller -------------------------------------------------------------------------

def test_creates_named_owned_pods_that_run_and_reports_status(tmp_path):
    """Conformance: 'should serve a basic image on each replica' (pods Running), plus names,
    controller references, events and the status counters."""
    async def main():
        async with Env(tmp_path, nodes=3) as env:
            created = await env.c.create(RS, "default", rs_manifest("rs-nginx", 3))
            rs = await env.wait_status("rs-nginx", replicas=3, fullyLabeledReplicas=3, readyReplicas=3,
                                       availableReplicas=3, observedGeneration=1)
            assert rs["status"]["terminatingReplicas"] == 0
            pods = await env.pods("app=rs-nginx")
            assert len(pods) == 3 and all(running(p) for p in pods)
            for p in pods:
                assert re.fullmatch(r"rs-nginx-[a-z0-9]{5}", p["metadata"]["name"])
                assert p["metadata"]["generateName"] == "rs-nginx-"
                assert p["metadata"]["ownerReferences"] == [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs-nginx",
                    "uid": created["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
            await until(lambda: _count(env.events("SuccessfulCreate"), 3), message="3 SuccessfulCreate events")
            events = await env.events("SuccessfulCreate")
            assert sorted(e["message"] for e in events) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
            assert {(e["involvedObject"]["kind"], e["involvedObject"]["name"], e["source"]["component"])
                    for e in events} == {("ReplicaSet", "rs-nginx", "replicaset-controller")}
    run(main())


async def _count(coro, n):
    return len(await coro) >= n


async def _true(value):
    return value


def test_deleted_pod_is_replaced_under_a_new_name(tmp_path):
    """Seed step D4, and a terminating pod does not count as a replica."""
    async def main():
        async with Env(tmp_path, nodes=2) as env:
            await env.c.create(RS, "default", rs_manifest("web", 2))
            await env.wait_status("web", replicas=2, readyReplicas=2)
            first = {p["metadata"]["name"] for p in await env.pods("app=web")}
            victim = sorted(first)[0]
            await env.c.delete("pods", "default", victim)

            async def replaced():
                names = {p["metadata"]["name"] for p in await env.pods("app=web") if running(p)}
                return len(names) == 2 and victim not in names and names - first
            await until(replaced, message="a replacement pod")
            await env.wait_status("web", replicas=2, readyReplicas=2, availableReplicas=2)
            await until(lambda: _count(env.events("SuccessfulCreate"), 3), message="third SuccessfulCreate")
    run(main())


def test_terminating_pods_are_replaced_and_counted_apart(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            m = rs_manifest("held", 2)
            m["spec"]["template"]["metadata"]["finalizers"] = ["example.com/hold"]
            await env.c.create(RS, "default", m)
            await env.wait_status("held", replicas=2)
            victim = (await env.pods("app=held"))[0]["metadata"]["name"]
            await env.c.delete("pods", "default", victim)
            rs = await env.wait_status("held", replicas=2, terminatingReplicas=1)
            assert len(await env.pods("app=held", active=False)) == 3
            assert rs["status"]["replicas"] == 2
    run(main())


def test_scale_subresource_and_replace_and_patch(tmp_path):
    """Conformance: 'Replicaset should have a working scale subresource' and 'Replace and Patch
    tests': scale through get/update/patch of the scale subresource, then replace and patch the
    ReplicaSet itself, with the pods following."""
    async def main():
        async with Env(tmp_path, nodes=2) as env:
            await env.c.create(RS, "default", rs_manifest("scaled", 1))
            await env.wait_status("scaled", replicas=1, readyReplicas=1)
            # The client has no scale verbs of its own: GET and PUT the subresource on the Api.
            scale = await env.api.get_scale(resource(RS), "default", "scaled")
            assert scale["spec"]["replicas"] == 1 and scale["status"]["replicas"] == 1
            assert scale["status"]["selector"] == "app=scaled"
            scale["spec"]["replicas"] = 2
            await env.api.update_scale(resource(RS), "default", "scaled", scale)
            await env.wait_status("scaled", replicas=2, readyReplicas=2)
            await env.c.patch(RS, "default", "scaled", {"spec": {"replicas": 3}}, MERGE, subresource="scale")
            await env.wait_status("scaled", replicas=3, readyReplicas=3)

            # Replace: scale down to 2 with an update of the whole object.
            rs = await env.rs("scaled")
            rs["spec"]["replicas"] = 2
            await env.c.update(RS, "default", rs)
            rs = await env.wait_status("scaled", replicas=2, readyReplicas=2, observedGeneration=4)
            await until(lambda: _count(env.events("SuccessfulDelete"), 1), message="SuccessfulDelete event")
            (ev,) = await env.events("SuccessfulDelete")
            assert re.fullmatch(r"Deleted pod: scaled-[a-z0-9]{5}", ev["message"])
            # Patch: more replicas and a new image in one strategic merge patch.
            await env.c.patch(RS, "default", "scaled", {"spec": {"replicas": 3, "template": {"spec": {
                "containers": [{"name": "c", "image": "pause"}]}}}}, STRATEGIC)
            await env.wait_status("scaled", replicas=3, readyReplicas=3, availableReplicas=3)
            rs = await env.rs("scaled")
            assert rs["spec"]["template"]["spec"]["containers"][0]["image"] == "pause"
    run(main())


def test_status_endpoints_read_update_patch(tmp_path):
    """Conformance: 'should validate Replicaset Status endpoints'; the controller keeps a
    condition someone else wrote."""
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(RS, "default", rs_manifest("st", 1))
            rs = await env.wait_status("st", replicas=1)
            rs["status"]["conditions"] = [{"type": "StatusUpdate", "status": "True", "reason": "E2E",
                                           "message": "Set from e2e test"}]
            await env.c.update_status(RS, "default", rs)
            assert (await env.rs("st"))["status"]["conditions"][0]["reason"] == "E2E"
            await env.c.patch(RS, "default", "st", {"status": {"conditions": [
                {"type": "StatusPatched", "status": "True"}]}}, MERGE, subresource="status")
            got = await env.rs("st")
            assert [c["type"] for c in got["status"]["conditions"]] == ["StatusPatched"]
            # A new sync (scale up) keeps conditions the controller does not own.
            await env.c.patch(RS, "default", "st", {"spec": {"replicas": 2}})
            got = await env.wait_status("st", replicas=2, observedGeneration=2)
            assert [c["type"] for c in got["status"]["conditions"]] == ["StatusPatched"]
    run(main())


def test_adopts_matching_orphans_and_releases_pods_that_stop_matching(tmp_path):
    """Conformance: 'should adopt matching pods on creation and release no longer matching pods'."""
    async def main():
        async with Env(tmp_path, nodes=1) as env:
            labels = {"name": "pod-adoption-release"}
            await env.c.create("pods", "default", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-adoption-release", "labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
            rs = await env.c.create(RS, "default", rs_manifest("pod-adoption-release", 1, labels))

            async def adopted():
                p = await env.c.get("pods", "default", "pod-adoption-release")
                refs = p["metadata"].get("ownerReferences") or []
                return refs and refs[0]["uid"] == rs["metadata"]["uid"] and refs[0]["controller"]
            await until(adopted, message="orphan adopted")
            await env.wait_status("pod-adoption-release", replicas=1)
            assert [p["metadata"]["name"] for p in await env.pods()] == ["pod-adoption-release"]

            await env.c.patch("pods", "default", "pod-adoption-release",
                              {"metadata": {"labels": {"name": "not-matching"}}})

            async def released():
                p = await env.c.get("pods", "default", "pod-adoption-release")
                return not p["metadata"].get("ownerReferences")
            await until(released, message="pod released")
            # The status may still count the released pod for a moment: wait for the replacement.
            pods = await until(lambda: env.pods("name=pod-adoption-release"), message="replacement pod")
            await env.wait_status("pod-adoption-release", replicas=1)
            assert len(pods) == 1 and pods[0]["metadata"]["name"] != "pod-adoption-release"
    run(main())


def test_failed_creates_stop_the_batch_and_set_replica_failure(tmp_path):
    async def main():
        async with Env(tmp_path, client_class=FlakyClient) as env:
            env.c.fail_after = 3
            await env.c.create(RS, "default", rs_manifest("quota", 10))

            def failure(rs):
                return next((c for c in (rs.get("status") or {}).get("conditions") or ()
                             if c["type"] == "ReplicaFailure"), None)

            async def failing():
                return failure(await env.rs("quota"))
            cond = await until(failing, message="ReplicaFailure condition")
            assert (cond["status"], cond["reason"]) == ("True", "FailedCreate")
            assert cond["message"] == 'pods "x" is forbidden: exceeded quota: q, requested: pods=1'
            # Batches of 1 and 2 succeed, the batch of 4 fails entirely (7 attempts); syncs woken
            # by the new pods' events start again with a batch of 1, which fails too.
            assert env.c.succeeded == 3 and env.c.attempts >= 7
            # The failing sync counted the pods its informer had seen before it created any;
            # the next sync, woken by their events, counts the three.
            await env.wait_status("quota", replicas=3)
            await until(lambda: env.events("FailedCreate"), message="FailedCreate event")
            ev = (await env.events("FailedCreate"))[0]
            assert ev["type"] == "Warning" and ev["message"] == \
                'Error creating: pods "x" is forbidden: exceeded quota: q, requested: pods=1'

            env.c.fail_after = None
            env.clock.advance(1)   # the rate-limited retry
            await env.wait_status("quota", replicas=10)

            async def cleared():
                return failure(await env.rs("quota")) is None
            await until(cleared, message="ReplicaFailure removed")
            assert len(await env.pods("app=quota")) == 10
    run(main())


def test_never_creates_more_than_asked_and_scales_down_by_rank(tmp_path, monkeypatch):
    monkeypatch.setattr(replicaset, "RANK_MEMO_SECONDS", 5.0)

    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(RS, "default", rs_manifest("many", 1200))
            await env.wait_status("many", timeout=30, replicas=1200)
            await asyncio.sleep(0.2)
            assert len(await env.pods("app=many")) == 1200
            # Scale down to 1: the pod with the highest deletion cost survives.
            keep = (await env.pods("app=many"))[7]["metadata"]["name"]
            await env.c.patch("pods", "default", keep, {"metadata": {"annotations": {
                DELETION_COST_ANNOTATION: "100"}}})
            await env.c.patch(RS, "default", "many", {"spec": {"replicas": 1}})
            await env.wait_status("many", timeout=30, replicas=1)
            assert [p["metadata"]["name"] for p in await env.pods("app=many")] == [keep]
            # The ranking memo (1,200 then 700 then 200 pods) outlives the scale-down a while, then goes.
            assert "default/many" in env.rsc._ranks
            await until(lambda: _true("default/many" not in env.rsc._ranks), timeout=15,
                        message="the ranking memo dropped")
            # 25 events per kind at most, as client-go's spam filter allows.
            assert len(await env.events("SuccessfulCreate")) == 25
    run(main())


def test_min_ready_seconds_counts_available_on_the_clock(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=1) as env:
            await env.c.create(RS, "default", rs_manifest("slow", 2, minReadySeconds=30))
            rs = await env.wait_status("slow", replicas=2, readyReplicas=2)
            assert rs["status"]["availableReplicas"] == 0
            env.clock.advance(20)
            await asyncio.sleep(0.1)
            assert (await env.rs("slow"))["status"]["availableReplicas"] == 0
            env.clock.advance(11)   # the controller requeued itself for this moment
            await env.wait_status("slow", availableReplicas=2)
    run(main())


def test_replicaset_being_deleted_does_nothing(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            m = rs_manifest("going", 2)
            m["metadata"]["finalizers"] = ["example.com/keep"]
            await env.c.create(RS, "default", m)
            await env.wait_status("going", replicas=2)
            await env.c.delete(RS, "default", "going")
            victim = (await env.pods("app=going"))[0]["metadata"]["name"]
            await env.c.delete("pods", "default", victim)
            await env.wait_status("going", replicas=1)
            await asyncio.sleep(0.2)
            assert len(await env.pods("app=going")) == 1
            # An orphan matching its selector is not adopted either.
            await env.c.create("pods", "default", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "labels": {"app": "going"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
            await asyncio.sleep(0.2)
            assert not (await env.c.get("pods", "default", "stray"))["metadata"].get("ownerReferences")
    run(main())
