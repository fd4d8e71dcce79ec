"""Tests for pocketkube.api.patch.

Strategic merge patch cases come in two kinds: cases translated from apimachinery's
`strategicpatch/patch_test.go` (run against a schema that mirrors its `MergeItem` test
struct), and the patches kubectl really sends, run against the real Kubernetes schemas.
"""

from __future__ import annotations

import copy

import pytest

from pocketkube.api import schema
from pocketkube.api.errors import ApiError
from pocketkube.api.patch import (
    MAX_JSON_PATCH_OPERATIONS,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)
from pocketkube.api.schema import Node

REJECTED = "the server rejected our request due to an error in our request"

# ---------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------

_S = {"type": "string"}


def _ref(name: str, **ext: str) -> dict:
    return {"$ref": "#/$defs/" + name, **ext}


def _merge_list(item: str, key: str, strategy: str = "merge") -> dict:
    return {"type": "array", "items": _ref(item), "x-kubernetes-patch-merge-key": key,
            "x-kubernetes-patch-strategy": strategy}


# The MergeItem / RetainKeysMergeItem structs of upstream's tests, as schema definitions.
_TEST_DEFS = {
    "test.mergeItem": {
        "type": "object",
        "properties": {
            "name": _S, "value": _S, "other": _S,
            "mergingList": _merge_list("test.mergeItem", "name"),
            "nonMergingList": {"type": "array", "items": _ref("test.mergeItem")},
            "mergingIntList": {"type": "array", "items": {"type": "integer"},
                               "x-kubernetes-patch-strategy": "merge"},
            "nonMergingIntList": {"type": "array", "items": {"type": "integer"}},
            "simpleMap": {"type": "object", "additionalProperties": _S},
            "replacingItem": _ref("io.k8s.apimachinery.pkg.runtime.RawExtension",
                                  **{"x-kubernetes-patch-strategy": "replace"}),
            "retainKeysMap": _ref("test.retainKeysMergeItem",
                                  **{"x-kubernetes-patch-strategy": "retainKeys"}),
            "retainKeysMergingList": _merge_list("test.mergeItem", "name", "merge,retainKeys"),
        },
    },
    "test.retainKeysMergeItem": {
        "type": "object",
        "properties": {
            "name": _S, "value": _S, "other": _S,
            "simpleMap": {"type": "object", "additionalProperties": _S},
            "mergingIntList": {"type": "array", "items": {"type": "integer"},
                               "x-kubernetes-patch-strategy": "merge"},
            "mergingList": _merge_list("test.mergeItem", "name"),
            "nonMergingList": {"type": "array", "items": _ref("test.mergeItem")},
        },
    },
}


@pytest.fixture
def item(monkeypatch: pytest.MonkeyPatch) -> Node:
    """Schema node of upstream's MergeItem test type."""
    defs = {**schema.definitions(), **_TEST_DEFS}
    monkeypatch.setattr(schema, "definitions", lambda: defs)
    return Node(_ref("test.mergeItem"))


@pytest.fixture(scope="module")
def deployment() -> Node:
    return Node.for_kind("apps", "v1", "Deployment")


@pytest.fixture(scope="module")
def daemonset() -> Node:
    return Node.for_kind("apps", "v1", "DaemonSet")


@pytest.fixture(scope="module")
def pod() -> Node:
    return Node.for_kind("", "v1", "Pod")


@pytest.fixture(scope="module")
def service() -> Node:
    return Node.for_kind("", "v1", "Service")


def smp_error(doc: dict, patch: object, node: Node | None) -> ApiError:
    with pytest.raises(ApiError) as info:
        apply_strategic_merge_patch(doc, patch, node)
    return info.value


# ---------------------------------------------------------------------------------------------
# Strategic merge patch: upstream's own cases (patch_test.go)
# ---------------------------------------------------------------------------------------------

UPSTREAM_CASES = [
    pytest.param({"mergingIntList": [1, 2]}, {"mergingIntList": [2, 3]},
                 {"mergingIntList": [1, 2, 3]}, id="unique scalars when merging lists"),
    pytest.param({"simpleMap": {"key1": "1", "key2": "1"}}, {"simpleMap": {"$patch": "delete"}},
                 {"simpleMap": {}}, id="delete map from nested map leaves an empty map"),
    pytest.param({"mergingList": [{"name": "1"}, {"name": "2"}]},
                 {"mergingList": [{"$patch": "replace"}]},
                 {"mergingList": []}, id="delete all items from merging list"),
    pytest.param({"mergingList": []}, {"mergingList": []}, {"mergingList": []},
                 id="merge empty merging lists"),
    pytest.param({"name": "1", "value": "1"}, {"$patch": "replace"}, {},
                 id="delete all keys from map"),
    pytest.param({"name": "1", "value": "1"}, {"other": "a", "$patch": "replace"},
                 {"other": "a"}, id="add key and delete all keys from map"),
    pytest.param({"mergingList": [{"name": "1"}, {"name": "1"}, {"name": "2", "value": "a"},
                                  {"name": "3"}, {"name": "3"}]},
                 {"mergingList": [{"name": "1", "$patch": "delete"},
                                  {"name": "3", "$patch": "delete"}]},
                 {"mergingList": [{"name": "2", "value": "a"}]},
                 id="delete all duplicate entries in a merging list"),
    pytest.param({"retainKeysMap": {"name": "foo"}}, {"retainKeysMap": {"value": "bar"}},
                 {"retainKeysMap": {"name": "foo", "value": "bar"}},
                 id="retainKeys map adds a field when no retainKeys directive present"),
    pytest.param({"retainKeysMap": {"name": "foo", "value": "a"}},
                 {"retainKeysMap": {"value": None}}, {"retainKeysMap": {"name": "foo"}},
                 id="retainKeys map deletes a field with null"),
    pytest.param({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]},
                 {"retainKeysMergingList": [{"name": "foo", "value": "b"}]},
                 {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "b"}]},
                 id="retainKeys list changes a field when no retainKeys directive present"),
    pytest.param({"mergingList": [{"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}]},
                 {"mergingList": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"},
                                  {"name": "2", "other": "x"}]},
                 {"mergingList": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"},
                                  {"name": "2", "value": "b", "other": "x"}]},
                 id="preserve the order from the patch in a merging list"),
    pytest.param({"mergingList": [{"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}]},
                 {"mergingList": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"}]},
                 {"mergingList": [{"name": "2", "value": "b"}, {"name": "3", "value": "c"},
                                  {"name": "1", "value": "a"}]},
                 id="server-only items keep their place relative to the live order"),
    pytest.param({"mergingIntList": [1, 2, 3]}, {"mergingIntList": [3, 1]},
                 {"mergingIntList": [2, 3, 1]},
                 id="preserve the order from the patch in a merging int list"),
    pytest.param({"mergingList": [{"name": "1"}, {"name": "3"}]},
                 {"$setElementOrder/mergingList": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
                  "mergingList": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]},
                 {"mergingList": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]},
                 id="setElementOrder names an item absent from the list"),
    pytest.param({"mergingIntList": [1, 3]}, {"$setElementOrder/mergingIntList": [3, 2, 1]},
                 {"mergingIntList": [3, 1]}, id="setElementOrder reorders a primitive list"),
    pytest.param({"mergingIntList": [1, 2]}, {"$deleteFromPrimitiveList/mergingIntList": [3]},
                 {"mergingIntList": [1, 2]}, id="deleteFromPrimitiveList of a missing item"),
    pytest.param({"mergingIntList": None}, {"$deleteFromPrimitiveList/mergingIntList": [3]},
                 {"mergingIntList": None}, id="deleteFromPrimitiveList on a null list"),
    pytest.param({"foo": ["bar"]}, {"$deleteFromPrimitiveList/mergingIntList": [3]},
                 {"foo": ["bar"]}, id="deleteFromPrimitiveList does not create the list"),
    pytest.param({"mergingIntList": [1, 2, 3]}, {"$deleteFromPrimitiveList/mergingIntList": [2]},
                 {"mergingIntList": [1, 3]}, id="deleteFromPrimitiveList on a merging list"),
    pytest.param({"nonMergingIntList": [1, 2, 3]},
                 {"$deleteFromPrimitiveList/nonMergingIntList": [2]},
                 {"nonMergingIntList": [1, 3]}, id="deleteFromPrimitiveList on a non-merging list"),
    pytest.param({"mergingList": [{"name": "1"}, {"name": "2", "other": "b"},
                                  {"name": "4", "other": "c"}]},
                 {"$setElementOrder/mergingList": [{"name": "2"}, {"name": "3"}],
                  "mergingList": [{"name": "3"}, {"name": "1", "$patch": "delete"}]},
                 {"mergingList": [{"name": "2", "other": "b"}, {"name": "4", "other": "c"},
                                  {"name": "3"}]},
                 id="add and delete in a merging list orders as upstream (slice aliasing)"),
    pytest.param({"mergingList": [{"name": "1", "other": "a"}, {"name": "4", "other": "c"}]},
                 {"$setElementOrder/mergingList": [{"name": "2"}, {"name": "3"}],
                  "mergingList": [{"name": "2"}, {"name": "3"},
                                  {"name": "1", "$patch": "delete"}]},
                 {"mergingList": [{"name": "4", "other": "c"}, {"name": "2"}, {"name": "3"}]},
                 id="add two and delete one in a merging list"),
    pytest.param({"mergingList": [{"name": "1", "mergingList": [{"name": "1"},
                                                                {"name": "2", "value": "2"}]},
                                  {"name": "2"}]},
                 {"$setElementOrder/mergingList": [{"name": "1"}, {"name": "2"}],
                  "mergingList": [{"$setElementOrder/mergingList": [{"name": "1"}, {"name": "2"}],
                                   "name": "1",
                                   "mergingList": [{"name": "1", "value": "1"}]}]},
                 {"mergingList": [{"name": "1", "mergingList": [{"name": "1", "value": "1"},
                                                                {"name": "2", "value": "2"}]},
                                  {"name": "2"}]},
                 id="nested merging lists with setElementOrder"),
    pytest.param({"nonMergingList": [{"name": "1"}, {"name": "2"}]},
                 {"nonMergingList": [{"name": "3", "value": "x"}]},
                 {"nonMergingList": [{"name": "3", "value": "x"}]},
                 id="a list without merge strategy is replaced"),
    pytest.param({"replacingItem": {"a": 1, "b": 2}}, {"replacingItem": {"c": 3}},
                 {"replacingItem": {"c": 3}}, id="a map with replace strategy is replaced"),
    pytest.param({"name": "a", "simpleMap": {"k": "v"}}, {"name": None, "simpleMap": {"k": None}},
                 {"simpleMap": {}}, id="null deletes keys"),
    pytest.param({"name": "a"}, {"other": None}, {"name": "a"},
                 id="null for an absent key is ignored"),
    pytest.param({"name": "a"}, {"simpleMap": {"k": "v", "gone": None}},
                 {"name": "a", "simpleMap": {"k": "v"}},
                 id="nulls inside a new value are discarded"),
    pytest.param({"mergingList": [{"name": "1"}]},
                 {"mergingList": [{"name": "x", "$patch": "delete"}]},
                 {"mergingList": [{"name": "1"}]}, id="deleting a missing element is a no-op"),
    pytest.param({"name": "a"}, {"simpleMap": {"$patch": "delete", "k": "v"}}, {"name": "a"},
                 id="a new map marked delete is not added"),
    pytest.param({"simpleMap": {"a": "1"}}, {"simpleMap": {"$patch": "replace", "b": "2"}},
                 {"simpleMap": {"b": "2"}}, id="replace directive on a nested map"),
]


@pytest.mark.parametrize("doc,patch,expected", UPSTREAM_CASES)
def test_smp_upstream_cases(item: Node, doc: dict, patch: dict, expected: dict) -> None:
    assert apply_strategic_merge_patch(doc, patch, item) == expected


def test_smp_retain_keys_clears_unlisted_fields(item: Node) -> None:
    doc = {"retainKeysMap": {"name": "foo", "value": "a", "other": "b"}}
    patch = {"retainKeysMap": {"$retainKeys": ["name", "other"], "other": "c"}}
    assert apply_strategic_merge_patch(doc, patch, item) == {
        "retainKeysMap": {"name": "foo", "other": "c"}}


def test_smp_retain_keys_in_merging_list_elements(item: Node) -> None:
    doc = {"retainKeysMergingList": [{"name": "foo", "value": "a", "other": "x"}]}
    patch = {"retainKeysMergingList": [{"$retainKeys": ["name", "other"], "name": "foo",
                                        "other": "y"}]}
    assert apply_strategic_merge_patch(doc, patch, item) == {
        "retainKeysMergingList": [{"name": "foo", "other": "y"}]}


def test_smp_set_element_order_mismatch_is_an_error(item: Node) -> None:
    err = smp_error({"mergingList": [{"name": "1"}, {"name": "3"}, {"name": "2"}]},
                    {"$setElementOrder/mergingList": [{"name": "1"}, {"name": "2"},
                                                      {"name": "3"}],
                     "mergingList": [{"name": "3", "value": "3"},
                                     {"name": "1", "value": "1"}]}, item)
    assert (err.code, err.reason) == (500, "")
    assert "doesn't match $setElementOrder list" in err.message


def test_smp_missing_merge_key_is_an_error(item: Node) -> None:
    err = smp_error({"mergingList": [{"name": "1", "value": "a"}]},
                    {"mergingList": [{"value": "b"}]}, item)
    assert (err.code, err.reason) == (500, "")
    assert err.message == "map: map[value:b] does not contain declared merge key: name"


# ---------------------------------------------------------------------------------------------
# Strategic merge patch: errors and their status codes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("patch,kind", [([1], "array"), ("x", "string"), (3, "number"),
                                        (True, "bool")])
def test_smp_body_must_be_an_object(patch: object, kind: str) -> None:
    err = smp_error({}, patch, None)
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == f"json: cannot unmarshal {kind} into Go value of type " \
                          "map[string]interface {}"


@pytest.mark.parametrize("patch,message", [
    ({"$setElementOrderX/mergingList": []}, "invalid patch format of setElementOrder list"),
    ({"$setElementOrder": []}, "invalid patch format of setElementOrder list"),
    ({"$deleteFromPrimitiveList": [1]}, "invalid patch format of primitive list"),
    ({"retainKeysMap": {"$retainKeys": "name"}}, "invalid patch format of retainKeys"),
    ({"retainKeysMap": {"$retainKeys": ["name"], "value": "v"}},
     "invalid patch format of retainKeys"),
])
def test_smp_bad_directive_format_is_400(item: Node, patch: dict, message: str) -> None:
    err = smp_error({"retainKeysMap": {"name": "a"}}, patch, item)
    assert (err.code, err.reason, err.message) == (400, "BadRequest", message)


def test_smp_merge_directive_on_a_map_is_refused(item: Node) -> None:
    # `merge` exists only as a struct tag; upstream refuses it in a patch.
    err = smp_error({"simpleMap": {"a": "b"}}, {"simpleMap": {"$patch": "merge"}}, item)
    assert (err.code, err.reason) == (500, "")
    assert err.message == "unknown patch type: merge in map: map[$patch:merge]"


def test_smp_merge_directive_in_a_list_is_refused(item: Node) -> None:
    err = smp_error({"mergingList": [{"name": "1"}]},
                    {"mergingList": [{"$patch": "merge"}]}, item)
    assert err.message == "merging lists cannot yet be specified in the patch"


def test_smp_unknown_directive_in_a_list_is_refused(item: Node) -> None:
    err = smp_error({"mergingList": [{"name": "1"}]},
                    {"mergingList": [{"name": "1", "$patch": "bogus"}]}, item)
    assert (err.code, err.message) == (500, "unknown patch type: bogus in map: "
                                            "map[$patch:bogus name:1]")


def test_smp_list_of_lists_is_422(item: Node) -> None:
    err = smp_error({"mergingIntList": [[1]]}, {"mergingIntList": [[2]]}, item)
    assert (err.code, err.reason, err.message) == (422, "Invalid", REJECTED)


def test_smp_mixed_element_types_are_refused(item: Node) -> None:
    err = smp_error({"mergingIntList": [1]}, {"mergingIntList": ["a"]}, item)
    assert err.code == 500
    assert err.message == "list element types are not identical: [[1] [a]]"


def test_smp_set_element_order_must_be_a_list(item: Node) -> None:
    err = smp_error({"mergingList": []}, {"$setElementOrder/mergingList": "x"}, item)
    assert err.message == "expected a []interface {}, but received a string"


def test_smp_null_body_is_a_no_op() -> None:
    assert apply_strategic_merge_patch({"a": 1}, None, None) == {"a": 1}


# ---------------------------------------------------------------------------------------------
# Strategic merge patch: what kubectl really sends
# ---------------------------------------------------------------------------------------------


def _deployment(containers: list, **spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": containers}}, **spec}}


def test_kubectl_set_image(deployment: Node) -> None:
    doc = _deployment([{"name": "app", "image": "nginx:1.24", "ports": [{"containerPort": 80}]},
                       {"name": "sidecar", "image": "busybox"}])
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "containers": [{"image": "nginx:1.25", "name": "app"}]}}}}
    out = apply_strategic_merge_patch(doc, patch, deployment)
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "busybox"}]


def test_kubectl_set_resources(deployment: Node) -> None:
    doc = _deployment([{"name": "app", "image": "nginx",
                        "resources": {"limits": {"cpu": "1"}}}])
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"name": "app", "resources": {"limits": {"memory": "512Mi"},
                                                     "requests": {"cpu": "100m"}}}]}}}}
    out = apply_strategic_merge_patch(doc, patch, deployment)
    assert out["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "100m"}}


def test_kubectl_set_env_adds_and_removes_variables(deployment: Node) -> None:
    doc = _deployment([{"name": "app", "image": "nginx",
                        "env": [{"name": "A", "value": "1"}, {"name": "X", "value": "2"}]}])
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [
        {"name": "B", "value": "3"}, {"name": "X", "$patch": "delete"}]}]}}}}
    out = apply_strategic_merge_patch(doc, patch, deployment)
    assert out["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "B", "value": "3"}, {"name": "A", "value": "1"}]


def test_kubectl_rollout_restart_adds_a_template_annotation(deployment: Node) -> None:
    doc = _deployment([{"name": "app", "image": "nginx"}])
    doc["spec"]["template"]["metadata"]["annotations"] = {"keep": "me"}
    stamp = "2024-05-01T10:00:00Z"
    patch = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": stamp}}}}}
    out = apply_strategic_merge_patch(doc, patch, deployment)
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"keep": "me", "kubectl.kubernetes.io/restartedAt": stamp}}


def test_kubectl_rollout_undo_daemonset_replaces_the_template(daemonset: Node) -> None:
    doc = {"spec": {"selector": {"matchLabels": {"app": "a"}},
                    "template": {"metadata": {"labels": {"app": "a", "v": "2"},
                                              "annotations": {"x": "y"}},
                                 "spec": {"containers": [{"name": "c", "image": "v2"},
                                                         {"name": "d", "image": "d"}]}}}}
    old = {"metadata": {"labels": {"app": "a", "v": "1"}, "creationTimestamp": None},
           "spec": {"containers": [{"name": "c", "image": "v1"}]}}
    patch = {"spec": {"template": {**old, "$patch": "replace"}}}
    out = apply_strategic_merge_patch(doc, patch, daemonset)
    assert out["spec"]["template"] == {"metadata": {"labels": {"app": "a", "v": "1"}},
                                       "spec": {"containers": [{"name": "c", "image": "v1"}]}}
    assert out["spec"]["selector"] == {"matchLabels": {"app": "a"}}


def test_finalizer_removal_with_delete_from_primitive_list(pod: Node) -> None:
    doc = {"metadata": {"name": "p", "finalizers": ["a.io/x", "b.io/y", "c.io/z"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b.io/y"]}}
    out = apply_strategic_merge_patch(doc, patch, pod)
    assert out["metadata"]["finalizers"] == ["a.io/x", "c.io/z"]


def test_finalizers_merge_as_a_set_in_upstream_order(pod: Node) -> None:
    doc = {"metadata": {"finalizers": ["a", "b", "c"]}}
    out = apply_strategic_merge_patch(doc, {"metadata": {"finalizers": ["d", "b"]}}, pod)
    assert out["metadata"]["finalizers"] == ["d", "a", "b", "c"]


def test_finalizers_three_way_patch_with_order_and_deletion(pod: Node) -> None:
    doc = {"metadata": {"finalizers": ["a", "b"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["b", "c"], "finalizers": ["c"],
                          "$deleteFromPrimitiveList/finalizers": ["a"]}}
    out = apply_strategic_merge_patch(doc, patch, pod)
    assert out["metadata"]["finalizers"] == ["b", "c"]


def test_deployment_strategy_retain_keys(deployment: Node) -> None:
    doc = _deployment([], strategy={"type": "RollingUpdate",
                                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}})
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None,
                                   "type": "Recreate"}}}
    out = apply_strategic_merge_patch(doc, patch, deployment)
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_deployment_strategy_retain_keys_must_cover_the_patch(deployment: Node) -> None:
    doc = _deployment([], strategy={"type": "RollingUpdate"})
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate",
                                   "rollingUpdate": {"maxSurge": 1}}}}
    err = smp_error(doc, patch, deployment)
    assert (err.code, err.message) == (400, "invalid patch format of retainKeys")


def test_volume_source_switch_with_retain_keys(pod: Node) -> None:
    doc = {"spec": {"containers": [], "volumes": [
        {"name": "data", "emptyDir": {}}, {"name": "cfg", "secret": {"secretName": "s"}}]}}
    patch = {"spec": {"volumes": [{"$retainKeys": ["configMap", "name"], "name": "data",
                                   "configMap": {"name": "cm"}}]}}
    out = apply_strategic_merge_patch(doc, patch, pod)
    assert out["spec"]["volumes"] == [{"name": "data", "configMap": {"name": "cm"}},
                                      {"name": "cfg", "secret": {"secretName": "s"}}]


def test_client_side_apply_three_way_patch(deployment: Node) -> None:
    live = _deployment([{"name": "app", "image": "nginx",
                         "ports": [{"containerPort": 80, "protocol": "TCP"}],
                         "terminationMessagePath": "/dev/termination-log"}])
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{..}"}},
        "spec": {"replicas": 3, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "log"}],
            "containers": [
                {"$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
                 "name": "app", "ports": [{"containerPort": 443}]},
                {"image": "busybox", "name": "log",
                 "$setElementOrder/env": [{"name": "A"}], "env": [{"name": "A", "value": "1"}]},
            ]}}}}
    out = apply_strategic_merge_patch(live, patch, deployment)
    assert out["spec"]["replicas"] == 3
    assert out["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": "{..}"}
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "nginx",
         "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
         "terminationMessagePath": "/dev/termination-log"},
        {"image": "busybox", "name": "log", "env": [{"name": "A", "value": "1"}]}]


def test_service_ports_merge_by_port(service: Node) -> None:
    doc = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "name": "http"}],
                    "selector": {"app": "a"}}}
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443, "name": "https"}]}}
    out = apply_strategic_merge_patch(doc, patch, service)
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "name": "http"},
                                    {"port": 443, "name": "https"}]


def test_long_merge_list_follows_set_element_order(pod: Node) -> None:
    names = [f"V{i:02d}" for i in range(50)]
    doc = {"spec": {"containers": [{"name": "c", "env": [{"name": n} for n in names]}]}}
    order = [{"name": n} for n in reversed(names)]
    patch = {"spec": {"containers": [{"name": "c", "$setElementOrder/env": order,
                                      "env": [{"name": "V10", "value": "x"}]}]}}
    env = apply_strategic_merge_patch(doc, patch, pod)["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == list(reversed(names))
    assert env[39] == {"name": "V10", "value": "x"}


def test_tolerations_have_no_strategy_and_are_replaced(pod: Node) -> None:
    doc = {"spec": {"containers": [], "tolerations": [{"key": "a", "operator": "Exists"}]}}
    patch = {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}
    out = apply_strategic_merge_patch(doc, patch, pod)
    assert out["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_owner_references_merge_by_uid(pod: Node) -> None:
    doc = {"metadata": {"ownerReferences": [{"uid": "1", "kind": "ReplicaSet", "name": "a"}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "2", "kind": "Node", "name": "n"},
                                              {"uid": "1", "name": "b"}]}}
    out = apply_strategic_merge_patch(doc, patch, pod)
    assert out["metadata"]["ownerReferences"] == [{"uid": "2", "kind": "Node", "name": "n"},
                                                  {"uid": "1", "kind": "ReplicaSet", "name": "b"}]


def test_new_merge_list_items_go_before_server_only_items(pod: Node) -> None:
    # mergeSortedSlice only puts a live item first when it knows the patch item's live place.
    doc = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "2", "name": "n"}]}}
    out = apply_strategic_merge_patch(doc, patch, pod)
    assert [r["uid"] for r in out["metadata"]["ownerReferences"]] == ["2", "1"]


def test_labels_merge_and_null_removes_a_label(pod: Node) -> None:
    doc = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    out = apply_strategic_merge_patch(doc, {"metadata": {"labels": {"b": None, "c": "3"}}}, pod)
    assert out["metadata"]["labels"] == {"a": "1", "c": "3"}


def test_unknown_type_replaces_lists_and_merges_maps() -> None:
    doc = {"spec": {"items": [{"name": "a"}], "m": {"x": 1}}}
    patch = {"spec": {"items": [{"name": "b"}], "m": {"y": 2}}}
    assert apply_strategic_merge_patch(doc, patch, None) == {
        "spec": {"items": [{"name": "b"}], "m": {"x": 1, "y": 2}}}


def test_directive_keys_never_reach_the_result(deployment: Node) -> None:
    doc = _deployment([{"name": "app", "image": "nginx"}])
    patch = {"spec": {
        "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
        "template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "new"}],
            "containers": [{"name": "new", "image": "x",
                            "$setElementOrder/env": [{"name": "E"}],
                            "env": [{"name": "E", "value": "v"},
                                    {"name": "F", "$patch": "delete"}]}],
            "$deleteFromPrimitiveList/imagePullSecrets": [{"name": "s"}],
            "tolerations": [{"key": "t", "$patch": "delete"}],
        }}}}
    out = apply_strategic_merge_patch(doc, patch, deployment)

    def keys(value: object) -> list[str]:
        if isinstance(value, dict):
            return [k for k in value] + [x for v in value.values() for x in keys(v)]
        if isinstance(value, list):
            return [x for v in value for x in keys(v)]
        return []

    assert not [k for k in keys(out) if k.startswith("$")]
    assert out["spec"]["strategy"] == {"type": "Recreate"}


# ---------------------------------------------------------------------------------------------
# JSON patch (RFC 6902)
# ---------------------------------------------------------------------------------------------


def test_json_patch_rfc_operations() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2, 3]}}
    patch = [
        {"op": "add", "path": "/metadata/labels/b", "value": "2"},
        {"op": "remove", "path": "/metadata/labels/a"},
        {"op": "replace", "path": "/spec/list/0", "value": 10},
        {"op": "add", "path": "/spec/list/-", "value": 4},
        {"op": "add", "path": "/spec/list/1", "value": 15},
        {"op": "move", "from": "/spec/list/4", "path": "/spec/last"},
        {"op": "copy", "from": "/metadata/labels", "path": "/spec/labels"},
        {"op": "test", "path": "/spec/last", "value": 4},
    ]
    assert apply_json_patch(doc, patch) == {
        "metadata": {"labels": {"b": "2"}},
        "spec": {"list": [10, 15, 2, 3], "last": 4, "labels": {"b": "2"}}}


def test_json_patch_escaped_paths() -> None:
    doc = {"metadata": {"annotations": {}}}
    patch = [{"op": "add", "path": "/metadata/annotations/example.com~1a~0b", "value": "v"}]
    assert apply_json_patch(doc, patch) == {"metadata": {"annotations": {"example.com/a~b": "v"}}}


@pytest.mark.parametrize("patch", [
    pytest.param([{"op": "test", "path": "/a", "value": 2}], id="test failed"),
    pytest.param([{"op": "remove", "path": "/missing"}], id="remove missing path"),
    pytest.param([{"op": "replace", "path": "/missing", "value": 1}], id="replace missing path"),
    pytest.param([{"op": "add", "path": "/x/y", "value": 1}], id="add under missing parent"),
    pytest.param([{"op": "add", "path": "/list/5", "value": 1}], id="index out of range"),
    pytest.param([{"op": "remove", "path": "/list/x"}], id="bad array index"),
    pytest.param([{"op": "frob", "path": "/a"}], id="unknown op"),
    pytest.param([{"path": "/a"}], id="missing op"),
    pytest.param([{"op": "add", "path": "a", "value": 1}], id="path without slash"),
    pytest.param([{"op": "move", "from": "/missing", "path": "/b"}], id="move from missing"),
    pytest.param([None], id="null operation"),
])
def test_json_patch_failed_operation_is_422(patch: list) -> None:
    with pytest.raises(ApiError) as info:
        apply_json_patch({"a": 1, "list": [1]}, patch)
    assert (info.value.code, info.value.reason, info.value.message) == (422, "Invalid", REJECTED)
    assert info.value.details == {}


@pytest.mark.parametrize("patch,message", [
    ({"op": "add", "path": "/a", "value": 1},
     "cannot unmarshal object into Go value of type []handlers.jsonPatchOp"),
    ("[]", "cannot unmarshal string into Go value of type []handlers.jsonPatchOp"),
    ([1], "cannot unmarshal number into Go value of type handlers.jsonPatchOp"),
    ([{"op": 1, "path": "/a"}],
     "cannot unmarshal number into Go struct field jsonPatchOp.op of type string"),
    ([{"op": "add", "path": ["a"]}],
     "cannot unmarshal array into Go struct field jsonPatchOp.path of type string"),
])
def test_json_patch_undecodable_body_is_400(patch: object, message: str) -> None:
    with pytest.raises(ApiError) as info:
        apply_json_patch({"a": 1}, patch)
    assert (info.value.code, info.value.reason) == (400, "BadRequest")
    assert info.value.message == "error decoding patch: json: " + message


def test_json_patch_null_body_is_a_no_op() -> None:
    assert apply_json_patch({"a": 1}, None) == {"a": 1}


def test_json_patch_operation_limit_is_413() -> None:
    patch = [{"op": "test", "path": "/a", "value": 1}] * (MAX_JSON_PATCH_OPERATIONS + 1)
    with pytest.raises(ApiError) as info:
        apply_json_patch({"a": 1}, patch)
    assert (info.value.code, info.value.reason) == (413, "RequestEntityTooLarge")
    assert info.value.message.endswith(f"is {MAX_JSON_PATCH_OPERATIONS}, got "
                                       f"{MAX_JSON_PATCH_OPERATIONS + 1}")


def test_json_patch_replacing_the_root_with_a_non_object_is_invalid() -> None:
    with pytest.raises(ApiError) as info:
        apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": 5}])
    assert (info.value.code, info.value.reason) == (422, "Invalid")
    assert info.value.message.startswith(' "" is invalid: patch: Invalid value: "5": ')


def test_json_patch_operations_apply_in_sequence() -> None:
    patch = [{"op": "add", "path": "/b", "value": {"c": 1}},
             {"op": "test", "path": "/b/c", "value": 1},
             {"op": "remove", "path": "/a"}]
    assert apply_json_patch({"a": 1}, patch) == {"b": {"c": 1}}


def test_json_patch_does_not_leak_patch_values() -> None:
    value = {"x": [1]}
    out = apply_json_patch({}, [{"op": "add", "path": "/v", "value": value}])
    out["v"]["x"].append(2)
    assert value == {"x": [1]}


# ---------------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386)
# ---------------------------------------------------------------------------------------------

# RFC 7386 appendix A, where the target is an object.
RFC7386_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ({"a": "foo"}, {"a": None}, {}),
    ({"a": {"b": "c"}}, {"a": {"b": None}}, {"a": {}}),
]


@pytest.mark.parametrize("doc,patch,expected", RFC7386_EXAMPLES)
def test_merge_patch_rfc7386_examples(doc: dict, patch: dict, expected: dict) -> None:
    assert apply_merge_patch(doc, patch) == expected


def test_merge_patch_kubectl_label_and_annotate() -> None:
    doc = {"metadata": {"name": "p", "labels": {"app": "a", "old": "x"},
                        "annotations": {"note": "1"}}}
    patch = {"metadata": {"labels": {"tier": "web", "old": None},
                          "annotations": {"note": "2"}}}
    assert apply_merge_patch(doc, patch) == {
        "metadata": {"name": "p", "labels": {"app": "a", "tier": "web"},
                     "annotations": {"note": "2"}}}


def test_merge_patch_replaces_lists_and_keeps_their_nulls() -> None:
    doc = {"spec": {"args": ["a", "b"]}}
    assert apply_merge_patch(doc, {"spec": {"args": ["c", None]}}) == {
        "spec": {"args": ["c", None]}}


@pytest.mark.parametrize("patch,kind", [([{"a": 1}], "array"), ("x", "string"), (1.5, "number")])
def test_merge_patch_body_must_be_an_object(patch: object, kind: str) -> None:
    with pytest.raises(ApiError) as info:
        apply_merge_patch({"a": 1}, patch)
    assert (info.value.code, info.value.reason) == (400, "BadRequest")
    assert info.value.message == (f"error decoding patch: json: cannot unmarshal {kind} into "
                                  "Go value of type map[string]interface {}")


def test_merge_patch_null_body_is_an_unknown_500() -> None:
    with pytest.raises(ApiError) as info:
        apply_merge_patch({"a": 1}, None)
    assert (info.value.code, info.value.reason, info.value.message) == (
        500, "", "Invalid JSON Patch")


# ---------------------------------------------------------------------------------------------
# Inputs are never changed
# ---------------------------------------------------------------------------------------------


def test_inputs_are_not_mutated(deployment: Node) -> None:
    doc = _deployment([{"name": "app", "image": "nginx", "env": [{"name": "X", "value": "1"}]},
                       {"name": "b", "image": "b"}],
                      strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
    doc["metadata"]["finalizers"] = ["a", "b"]
    smp = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"],
                        "labels": {"app": None}},
           "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                    "template": {"spec": {
                        "$setElementOrder/containers": [{"name": "b"}, {"name": "app"}],
                        "containers": [{"name": "app", "env": [{"name": "X", "$patch": "delete"},
                                                               {"name": "Y", "value": None}]},
                                       {"name": "c", "$patch": "delete"}]}}}}
    merge = {"metadata": {"labels": {"app": None, "new": {"x": None}}}}
    jsonp = [{"op": "move", "from": "/metadata/labels", "path": "/spec/labels"},
             {"op": "add", "path": "/spec/x", "value": {"y": [1]}}]
    before = copy.deepcopy((doc, smp, merge, jsonp))

    results = [apply_strategic_merge_patch(doc, smp, deployment),
               apply_merge_patch(doc, merge), apply_json_patch(doc, jsonp)]

    assert (doc, smp, merge, jsonp) == before
    for result in results:
        assert result is not doc
        result["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert doc == before[0]


def test_smp_result_shares_nothing_with_the_patch(item: Node) -> None:
    patch = {"mergingList": [{"name": "new", "simpleMap": {"a": "b"}}], "simpleMap": {"k": "v"}}
    out = apply_strategic_merge_patch({"mergingList": []}, patch, item)
    out["mergingList"][0]["simpleMap"]["a"] = "changed"
    out["simpleMap"]["k"] = "changed"
    assert patch == {"mergingList": [{"name": "new", "simpleMap": {"a": "b"}}],
                     "simpleMap": {"k": "v"}}
