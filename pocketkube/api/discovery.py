"""Discovery documents: how clients learn which kinds, names and verbs the server has.

kubectl and client-go map `deploy`, `sts`, `kubectl get all` and `kubectl scale` onto URLs
only through discovery, and they speak two dialects: the aggregated
`apidiscovery.k8s.io/v2` list (kubectl, one request each for /api and /apis) and the legacy
per-group-version `APIResourceList`s (the Python client, old clients). Both are derived here
from the one registry in `resources.py`, so the two dialects can never disagree.
"""

from __future__ import annotations

import base64
import hashlib

from pocketkube.api.resources import Resource, Subresource, group_versions, resources_in

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def _storage_version_hash(group: str, version: str, kind: str) -> str:
    # Same recipe as apiserver `discovery.StorageVersionHash`, so the values match a real cluster.
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _group_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _versions_of(group: str) -> list[str]:
    # group_versions() is in advertised order, so the first version is the preferred one.
    return [v for g, v in group_versions() if g == group]


def _gv_for_discovery(group: str, version: str) -> dict:
    return {"groupVersion": _group_version(group, version), "version": version}


# ---------------------------------------------------------------------------------------------
# Legacy discovery (metav1 APIVersions / APIGroupList / APIGroup / APIResourceList)


def api_versions(server_address: str) -> dict:
    """GET /api with a plain JSON Accept: the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": _versions_of(""),
        # The Python client's V1APIVersions refuses a document without this list.
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _api_group_body(group: str) -> dict:
    versions = [_gv_for_discovery(group, v) for v in _versions_of(group)]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def _named_groups() -> list[str]:
    seen: list[str] = []
    for g, _ in group_versions():
        if g and g not in seen:
            seen.append(g)
    return seen


def api_group_list() -> dict:
    """GET /apis with a plain JSON Accept: every named group with its preferred version."""
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_api_group_body(g) for g in _named_groups()]}


def api_group(group: str) -> dict | None:
    """GET /apis/<group>; None for an unknown group and for the core group (that is /api)."""
    if not group or group not in _named_groups():
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group_body(group)}


def _legacy_resource(r: Resource) -> dict:
    out = {
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    out["storageVersionHash"] = _storage_version_hash(r.group, r.version, r.kind)
    return out


def _legacy_subresource(r: Resource, s: Subresource) -> dict:
    out = {
        "name": f"{r.plural}/{s.name}",
        # Upstream sends "" here; the Python client needs the key present (not None).
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": s.kind,
        "verbs": list(s.verbs),
    }
    # group/version are only set when the subresource speaks another group-version, which
    # is how `kubectl scale` learns that deployments/scale returns autoscaling/v1 Scale.
    if (s.group, s.version) != (r.group, r.version):
        out["group"] = s.group
        out["version"] = s.version
    return out


def api_resource_list(group: str, version: str) -> dict | None:
    """GET /api/v1 or /apis/<g>/<v>: resources and subresources, sorted by name like upstream."""
    resources = resources_in(group, version)
    if not resources:
        return None
    entries: list[dict] = []
    for r in resources:
        entries.append(_legacy_resource(r))
        entries.extend(_legacy_subresource(r, s) for s in r.subresources)
    entries.sort(key=lambda e: e["name"])
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": _group_version(group, version), "resources": entries}


# ---------------------------------------------------------------------------------------------
# Aggregated discovery (apidiscovery.k8s.io/v2)


def _response_kind(owner: Resource, group: str, version: str, kind: str) -> dict:
    # Upstream leaves group/version empty when they equal the resource's own group-version;
    # client-go copies them verbatim into APIResource, where empty means "same as the list".
    if (group, version) == (owner.group, owner.version):
        return {"group": "", "version": "", "kind": kind}
    return {"group": group, "version": version, "kind": kind}


def _aggregated_resource(r: Resource) -> dict:
    # client-go silently drops any resource or subresource without a responseKind.
    out: dict = {
        "resource": r.plural,
        "responseKind": _response_kind(r, r.group, r.version, r.kind),
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    if r.subresources:
        out["subresources"] = [
            {"subresource": s.name,
             "responseKind": _response_kind(r, s.group, s.version, s.kind),
             "verbs": list(s.verbs)}
            for s in sorted(r.subresources, key=lambda s: s.name)
        ]
    return out


def _aggregated_group(group: str) -> dict:
    versions = []
    for v in _versions_of(group):
        resources = sorted(resources_in(group, v), key=lambda r: r.plural)
        versions.append({"version": v, "resources": [_aggregated_resource(r) for r in resources],
                         "freshness": "Current"})
    return {"metadata": {"name": group}, "versions": versions}


def _aggregated_list(groups: list[str]) -> dict:
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": [_aggregated_group(g) for g in groups]}


def aggregated_core() -> dict:
    """GET /api with the aggregated Accept: one item, the core group (metadata.name "")."""
    return _aggregated_list([""])


def aggregated_groups() -> dict:
    """GET /apis with the aggregated Accept: every named group."""
    return _aggregated_list(_named_groups())


def wants_aggregated(accept_header: str) -> bool:
    """Whether to answer /api or /apis with the aggregated v2 list.

    client-go decides which dialect it got purely from the response Content-Type, and it only
    recognises v2 (v2beta1 was dropped in 1.37), so we answer aggregated only when v2 was asked
    for, and only when it comes before any plain JSON the client would rather have.
    """
    for clause in (accept_header or "").split(","):
        parts = [p.strip() for p in clause.split(";")]
        media = parts[0].lower()
        params: dict[str, str] = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"')
        try:
            if float(params.get("q", "1")) <= 0:
                continue
        except ValueError:
            continue
        if media not in ("application/json", "application/*", "*/*"):
            continue
        if "g" in params or "as" in params or "v" in params:
            if (media == "application/json" and params.get("g") == "apidiscovery.k8s.io"
                    and params.get("v") == "v2" and params.get("as") == "APIGroupDiscoveryList"):
                return True
            continue  # another typed form (v2beta1, Table, ...): not something we answer here
        return False  # plain JSON preferred first
    return False
