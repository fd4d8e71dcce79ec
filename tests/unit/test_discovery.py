"""Shapes of the discovery documents, checked against what client-go and the Python client need."""

from __future__ import annotations

import pytest

from pocketkube.api import discovery
from pocketkube.api.resources import RESOURCES, group_versions

KUBECTL_137_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
KUBECTL_136_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


def _aggregated_index() -> dict[tuple[str, str, str], dict]:
    out = {}
    for doc in (discovery.aggregated_core(), discovery.aggregated_groups()):
        assert doc["kind"] == "APIGroupDiscoveryList"
        assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
        for item in doc["items"]:
            for v in item["versions"]:
                assert v["freshness"] == "Current"
                for r in v["resources"]:
                    out[(item["metadata"]["name"], v["version"], r["resource"])] = r
    return out


def test_aggregated_core_is_one_unnamed_group():
    doc = discovery.aggregated_core()
    assert [i["metadata"]["name"] for i in doc["items"]] == [""]
    assert [v["version"] for v in doc["items"][0]["versions"]] == ["v1"]


def test_aggregated_groups_are_the_named_groups_in_order():
    names = [i["metadata"]["name"] for i in discovery.aggregated_groups()["items"]]
    expected = []
    for g, _ in group_versions():
        if g and g not in expected:
            expected.append(g)
    assert names == expected


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: f"{r.group_version}/{r.plural}")
def test_every_resource_in_aggregated_discovery(res):
    entry = _aggregated_index()[(res.group, res.version, res.plural)]
    # client-go drops a resource without a responseKind.
    assert entry["responseKind"]["kind"] == res.kind
    assert entry["scope"] == ("Namespaced" if res.namespaced else "Cluster")
    assert entry["singularResource"] == res.singular
    assert entry["verbs"] == list(res.verbs)
    assert entry.get("shortNames", []) == list(res.short_names)
    assert entry.get("categories", []) == list(res.categories)
    subs = {s["subresource"]: s for s in entry.get("subresources", [])}
    assert set(subs) == {s.name for s in res.subresources}
    for s in res.subresources:
        kind = subs[s.name]["responseKind"]
        assert kind["kind"] == s.kind
        if (s.group, s.version) != (res.group, res.version):
            assert (kind["group"], kind["version"]) == (s.group, s.version)
        assert subs[s.name]["verbs"] == list(s.verbs)


def test_scale_subresources_answer_autoscaling_scale():
    index = _aggregated_index()
    for plural in ("deployments", "replicasets", "statefulsets"):
        subs = {s["subresource"]: s for s in index[("apps", "v1", plural)]["subresources"]}
        assert subs["scale"]["responseKind"] == {"group": "autoscaling", "version": "v1",
                                                 "kind": "Scale"}


def test_legacy_api_versions():
    doc = discovery.api_versions("10.0.0.1:6443")
    assert doc["kind"] == "APIVersions"
    assert doc["versions"] == ["v1"]
    assert doc["serverAddressByClientCIDRs"] == [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]


def test_legacy_group_list_and_group():
    doc = discovery.api_group_list()
    assert doc["kind"] == "APIGroupList"
    apps = next(g for g in doc["groups"] if g["name"] == "apps")
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert apps["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]
    assert "" not in [g["name"] for g in doc["groups"]]
    group = discovery.api_group("batch")
    assert group["kind"] == "APIGroup" and group["name"] == "batch"
    assert discovery.api_group("nonexistent.example.com") is None
    assert discovery.api_group("") is None


def test_legacy_resource_list_contents():
    doc = discovery.api_resource_list("apps", "v1")
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "apps/v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    scale = by_name["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert "group" not in by_name["deployments/status"]
    assert by_name["deployments"]["shortNames"] == ["deploy"]
    assert by_name["deployments"]["categories"] == ["all"]
    # Same value a real apiserver reports for apps/v1 Deployment.
    assert by_name["deployments"]["storageVersionHash"] == "8aSe+NMegvE="
    names = [r["name"] for r in doc["resources"]]
    assert names == sorted(names)

    core = {r["name"]: r for r in discovery.api_resource_list("", "v1")["resources"]}
    assert core["pods/log"]["kind"] == "Pod"
    assert core["pods/binding"]["kind"] == "Binding"
    assert core["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert core["namespaces"]["namespaced"] is False
    assert discovery.api_resource_list("apps", "v1beta1") is None


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: f"{r.group_version}/{r.plural}")
def test_every_resource_in_legacy_discovery(res):
    doc = discovery.api_resource_list(res.group, res.version)
    by_name = {r["name"]: r for r in doc["resources"]}
    entry = by_name[res.plural]
    assert entry["kind"] == res.kind and entry["namespaced"] == res.namespaced
    assert entry.get("shortNames", []) == list(res.short_names)
    for s in res.subresources:
        assert by_name[f"{res.plural}/{s.name}"]["kind"] == s.kind


def test_legacy_documents_satisfy_python_client_models():
    client = pytest.importorskip("kubernetes.client")
    versions = client.V1APIVersions.from_dict(discovery.api_versions("h:1"))
    assert versions.server_address_by_client_cidrs[0].server_address == "h:1"
    groups = client.V1APIGroupList.from_dict(discovery.api_group_list())
    assert groups.groups[0].preferred_version.group_version
    client.V1APIGroup.from_dict(discovery.api_group("apps"))
    for g, v in group_versions():
        parsed = client.V1APIResourceList.from_dict(discovery.api_resource_list(g, v))
        for r in parsed.resources:
            assert r.kind and r.name and r.singular_name is not None and r.verbs


@pytest.mark.parametrize("accept,expected", [
    (KUBECTL_137_ACCEPT, True),
    (KUBECTL_136_ACCEPT, True),
    ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=nopeer,"
     + KUBECTL_137_ACCEPT, True),
    ("application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io", True),
    ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
     False),
    ("application/json", False),
    ("application/json, */*", False),
    ("*/*", False),
    ("", False),
    ("application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
     False),
    ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0,application/json",
     False),
])
def test_wants_aggregated(accept, expected):
    assert discovery.wants_aggregated(accept) is expected


def test_content_type_is_what_client_go_matches():
    # client-go's ContentTypeIsGVK: base application/json with g, v, as parameters.
    base, *params = discovery.AGGREGATED_CONTENT_TYPE.split(";")
    assert base == "application/json"
    assert dict(p.split("=") for p in params) == {
        "g": "apidiscovery.k8s.io", "v": "v2", "as": "APIGroupDiscoveryList"}
