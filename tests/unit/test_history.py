"""ControllerRevision history helpers: upstream's hash and names, collision handling, renumbering,
listing from the informer cache, adoption and release, truncation, and a revision's data applied
as the strategic merge patch `kubectl rollout undo` sends."""

from __future__ import annotations

from pocketkube.api.selectors import selector_from_dict
from pocketkube.client import STRATEGIC
from pocketkube.controllers.base import SharedInformers
from pocketkube.controllers.history import (
    CONTROLLER_REVISIONS,
    HASH_LABEL,
    History,
    equal_revision,
    find_equal_revisions,
    fnv32,
    hash_revision,
    new_revision,
    next_revision,
    raw_data,
    revision_name,
    sort_revisions,
    template_of,
    template_patch,
)
from tests.unit.harness import ControllerEnv, run

STS = "statefulsets.apps"


def sts_manifest(name="web", image="nginx:1.14"):
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": 0, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def test_fnv32_is_fnv1_as_go_fnv_new32():
    assert fnv32(b"a") == 0x050C5D7E
    assert fnv32(b"foobar") == 0x31F0B262


def test_raw_data_is_go_json_marshal_of_a_map():
    assert raw_data({"b": 1, "a": {"d": [1, 2], "c": "<x&y>"}}) == \
        b'{"a":{"c":"\\u003cx\\u0026y\\u003e","d":[1,2]},"b":1}'


def test_hash_uses_collision_count_and_safe_alphabet():
    data = template_patch({"metadata": {"labels": {"app": "x"}}})
    h0, h1 = hash_revision(data, 0), hash_revision(data, 1)
    assert h0 != h1 and hash_revision(data, None) != h0
    assert set(h0) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert hash_revision(data, 0) == h0   # deterministic
    assert revision_name("x" * 300, h0) == "x" * 223 + "-" + h0


def test_template_patch_shape_and_template_of():
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}, "metadata": {"labels": {"a": "b"}}}
    data = template_patch(tpl)
    # As Go marshals a typed PodTemplateSpec: resources {}, keys sorted.
    rendered = {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"image": "i", "name": "c", "resources": {}}]}}
    assert data == {"spec": {"template": {**rendered, "$patch": "replace"}}}
    assert list(data["spec"]["template"]) == ["$patch", "metadata", "spec"]
    assert list(data["spec"]["template"]["spec"]["containers"][0]) == ["image", "name", "resources"]
    assert raw_data(data) == (b'{"spec":{"template":{"$patch":"replace","metadata":{"labels":{"a":"b"}},'
                              b'"spec":{"containers":[{"image":"i","name":"c","resources":{}}]}}}}')
    assert template_of({"data": data}) == rendered
    assert template_patch(template_of({"data": data})) == data   # idempotent
    assert "$patch" not in tpl and "resources" not in tpl["spec"]["containers"][0]


def test_new_revision_equal_sort_next():
    owner = {"apiVersion": "apps/v1", "kind": "StatefulSet",
             "metadata": {"name": "web", "namespace": "ns", "uid": "u1"}}
    d1, d2 = template_patch({"spec": {"x": 1}}), template_patch({"spec": {"x": 2}})
    r1 = new_revision(owner, {"app": "web"}, d1, 1, 0, {"kubernetes.io/change-cause": "one"})
    assert r1["metadata"]["name"] == "web-" + hash_revision(d1, 0)
    assert r1["metadata"]["labels"] == {"app": "web", HASH_LABEL: hash_revision(d1, 0)}
    assert r1["metadata"]["ownerReferences"][0] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                                    "uid": "u1", "controller": True, "blockOwnerDeletion": True}
    assert r1["metadata"]["annotations"] == {"kubernetes.io/change-cause": "one"}
    assert r1["revision"] == 1
    r2 = new_revision(owner, {}, d2, 2, 0)
    r1b = new_revision(owner, {}, d1, 3, 0)
    assert equal_revision(r1, r1b) and not equal_revision(r1, r2)
    assert equal_revision(None, None) and not equal_revision(r1, None)
    assert find_equal_revisions([r1, r2, r1b], r1) == [r1, r1b]
    assert sort_revisions([r1b, r2, r1]) == [r1, r2, r1b]
    assert next_revision([]) == 1 and next_revision(sort_revisions([r1, r1b])) == 4


def test_history_against_the_api(tmp_path):
    async def main():
        async with ControllerEnv(tmp_path, []) as env:
            informers = SharedInformers(env.c)
            hist = History(env.c, informers)
            await informers.start()
            try:
                sts = await env.c.create(STS, "default", sts_manifest())
                sel = selector_from_dict(sts["spec"]["selector"])
                data = template_patch(sts["spec"]["template"])
                rev = new_revision(sts, sts["spec"]["template"]["metadata"]["labels"], data, 1, 0)
                # Someone else's revision squats the name: a collision, then the next name.
                squat = dict(rev, data=template_patch({"spec": {"other": True}}))
                squat["metadata"] = {"name": rev["metadata"]["name"], "labels": {"app": "web"}}
                await env.c.create(CONTROLLER_REVISIONS, "default", squat)
                created, cc = await hist.create(sts, rev, 0)
                assert cc == 1
                assert created["metadata"]["name"] == "web-" + hash_revision(data, 1)
                assert created["metadata"]["labels"][HASH_LABEL] == hash_revision(data, 1)
                # Creating the same data again returns the existing revision, no new collision.
                again, cc2 = await hist.create(sts, rev, 1)
                assert cc2 == 1 and again["metadata"]["uid"] == created["metadata"]["uid"]

                await env.until(lambda: len(hist.list(sts, sel)) == 2, message="informer sees both")
                names = {r["metadata"]["name"] for r in hist.list(sts, sel)}
                assert names == {created["metadata"]["name"], squat["metadata"]["name"]}
                orphan = next(r for r in hist.list(sts, sel) if r["metadata"]["name"] == squat["metadata"]["name"])
                adopted = await hist.adopt(sts, orphan)
                assert adopted["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
                released = await hist.release(sts, adopted)
                assert not released["metadata"].get("ownerReferences")
                # Another owner sees only the orphan, not web's revision.
                other = await env.c.create(STS, "default", sts_manifest("web2"))
                assert [r["metadata"]["name"] for r in hist.list(other, sel)] == [squat["metadata"]["name"]]

                renumbered = await hist.update_revision(created, 7)
                assert renumbered["revision"] == 7
                assert renumbered["data"] == created["data"]

                # Truncation: keep `limit` non-live revisions, oldest deleted first, live ones kept.
                revs = [renumbered]
                for i in range(4):
                    d = template_patch({"spec": {"n": i}})
                    r, _ = await hist.create(sts, new_revision(sts, {"app": "web"}, d, 10 + i, 0), 0)
                    revs.append(r)
                revs = sort_revisions(revs)
                await hist.truncate(revs, {renumbered["metadata"]["name"]}, 2)
                left = {r["metadata"]["name"] for r in
                        (await env.c.list(CONTROLLER_REVISIONS, "default"))["items"]}
                assert renumbered["metadata"]["name"] in left
                assert revs[1]["metadata"]["name"] not in left and revs[2]["metadata"]["name"] not in left
                assert revs[3]["metadata"]["name"] in left and revs[4]["metadata"]["name"] in left

                # The data, sent back as kubectl rollout undo does, restores the template.
                await env.c.patch(STS, "default", "web",
                                  {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]},
                                                         "metadata": {"annotations": {"x": "y"}}}}}, STRATEGIC)
                undone = await env.c.patch(STS, "default", "web", created["data"], STRATEGIC)
                assert template_patch(undone["spec"]["template"]) == created["data"]
                assert undone["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.14"
                assert "annotations" not in undone["spec"]["template"]["metadata"]
            finally:
                await informers.stop()
    run(main())
