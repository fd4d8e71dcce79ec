"""OpenAPI v3 documents: well-formed, self-contained, and shaped the way kubectl reads them."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from pocketkube.api import openapi
from pocketkube.api.resources import RESOURCES, group_versions

GV_PATHS = [f"apis/{g}/{v}" if g else f"api/{v}" for g, v in group_versions()]
METHODS = ("get", "put", "post", "delete", "patch")


def _doc(path: str) -> dict:
    data = openapi.openapi_group_version(path)
    assert data is not None
    return orjson.loads(data)


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _doc_path(res) -> str:
    return f"apis/{res.group}/{res.version}" if res.group else f"api/{res.version}"


def test_root_lists_every_group_version_with_content_hash():
    root = openapi.openapi_root()
    assert list(root["paths"]) == GV_PATHS
    for path, entry in root["paths"].items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{path}?hash=")
        digest = url.split("hash=", 1)[1]
        assert digest == hashlib.sha512(openapi.openapi_group_version(path)).hexdigest().upper()
        assert openapi.group_version_hash(path) == digest


def test_documents_are_cached_bytes_and_lookup_normalises():
    first = openapi.openapi_group_version("apis/apps/v1")
    assert isinstance(first, bytes)
    assert openapi.openapi_group_version("/apis/apps/v1") is first
    assert openapi.openapi_group_version("openapi/v3/apis/apps/v1?hash=x") is first
    assert openapi.openapi_group_version("apis/apps/v2") is None
    assert openapi.openapi_group_version("apis/autoscaling/v1") is None
    assert openapi.group_version_hash("nope") is None


@pytest.mark.parametrize("path", GV_PATHS)
def test_document_is_openapi_3_and_self_contained(path):
    doc = _doc(path)
    assert doc["openapi"].startswith("3.0")
    schemas = doc["components"]["schemas"]
    for node in _walk(doc):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith("#/components/schemas/"), ref
            assert ref.rsplit("/", 1)[1] in schemas, ref
            # OpenAPI 3.0 ignores $ref siblings, so anything else must sit beside an allOf.
            assert set(node) == {"$ref"}, node
        t = node.get("type")
        if t is not None and not isinstance(t, dict):
            assert isinstance(t, str), node
    assert "$defs" not in orjson.dumps(doc).decode()


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: f"{r.group_version}/{r.plural}")
def test_patch_operations_advertise_field_validation(res):
    """kubectl's query-param verifier stops at the first PATCH with the GVK it finds."""
    doc = _doc(_doc_path(res))
    gvk = {"group": res.group, "kind": res.kind, "version": res.version}
    patches = [item["patch"] for item in doc["paths"].values()
               if "patch" in item and item["patch"]["x-kubernetes-group-version-kind"] == gvk]
    assert patches, f"no PATCH for {gvk}"
    for op in patches:
        names = {(p["name"], p["in"]) for p in op["parameters"]}
        assert {("fieldValidation", "query"), ("dryRun", "query"),
                ("fieldManager", "query"), ("force", "query")} <= names
        assert set(op["requestBody"]["content"]) == set(openapi.PATCH_CONTENT_TYPES)


def test_every_patch_in_every_document_has_field_validation():
    for path in GV_PATHS:
        for item in _doc(path)["paths"].values():
            if "patch" in item:
                names = [p["name"] for p in item["patch"]["parameters"]]
                assert "fieldValidation" in names


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: f"{r.group_version}/{r.plural}")
def test_explain_can_find_the_kind(res):
    """Mirror kubectl explain's template: GVK from the resource's paths, then the schema by GVK."""
    doc = _doc(_doc_path(res))
    prefix = "/" + _doc_path(res)
    base = (f"{prefix}/namespaces/{{namespace}}/{res.plural}" if res.namespaced
            else f"{prefix}/{res.plural}")
    gvk = None
    for p in (base, base + "/{name}"):
        for method in METHODS:
            op = doc["paths"].get(p, {}).get(method)
            if op and "x-kubernetes-group-version-kind" in op:
                gvk = op["x-kubernetes-group-version-kind"]
                break
        if gvk:
            break
    assert gvk == {"group": res.group, "kind": res.kind, "version": res.version}
    matches = [name for name, s in doc["components"]["schemas"].items()
               if gvk in s.get("x-kubernetes-group-version-kind", [])]
    assert len(matches) == 1
    kind_schema = doc["components"]["schemas"][matches[0]]
    assert kind_schema["type"] == "object"
    assert "metadata" in kind_schema["properties"]


def test_operations_cover_the_verbs():
    doc = _doc("apis/apps/v1")
    p = doc["paths"]
    coll = p["/apis/apps/v1/namespaces/{namespace}/deployments"]
    item = p["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert {"get", "post", "delete"} <= set(coll)
    assert {"get", "put", "patch", "delete"} <= set(item)
    assert "get" in p["/apis/apps/v1/deployments"]
    scale = p["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]
    assert {"get", "put", "patch"} <= set(
        p["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"])
    create_params = {x["name"] for x in coll["post"]["parameters"]}
    assert {"fieldValidation", "dryRun", "fieldManager"} <= create_params
    list_params = {x["name"] for x in coll["get"]["parameters"]}
    assert {"watch", "labelSelector", "fieldSelector", "limit", "continue",
            "resourceVersion"} <= list_params

    core = _doc("api/v1")["paths"]
    assert "get" in core["/api/v1/namespaces/{namespace}/pods/{name}/log"]
    assert "post" in core["/api/v1/namespaces/{namespace}/pods/{name}/binding"]
    # Namespace has no deletecollection verb; the operation must not be advertised.
    assert "delete" not in core["/api/v1/namespaces"]
    assert "get" in core["/api/v1/nodes/{name}"]


def test_schema_conversion_keeps_kubernetes_metadata():
    schemas = _doc("apis/apps/v1")["components"]["schemas"]
    spec = schemas["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["required"] == ["selector", "template"]
    assert spec["properties"]["replicas"] == {
        "description": spec["properties"]["replicas"]["description"],
        "format": "int32", "type": "integer"}
    strategy = spec["properties"]["strategy"]
    assert strategy["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert strategy["description"]

    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["type"] == "array"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}

    ios = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert ios["format"] == "int-or-string"
    assert ios["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    qty = schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]
    assert qty["oneOf"] == [{"type": "string"}, {"type": "number"}]

    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    # The apiVersion/kind enums kubernetes-validate adds are not part of the served schema.
    assert "enum" not in deployment["properties"]["apiVersion"]
    assert "enum" not in deployment["properties"]["kind"]


def test_documents_hold_only_reachable_schemas():
    apps = _doc("apis/apps/v1")["components"]["schemas"]
    assert "io.k8s.api.batch.v1.Job" not in apps
    assert "io.k8s.api.core.v1.PodTemplateSpec" in apps
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions" in apps
    lease = _doc("apis/coordination.k8s.io/v1")["components"]["schemas"]
    assert "io.k8s.api.core.v1.PodSpec" not in lease
