"""OpenAPI v3 documents (/openapi/v3 and /openapi/v3/<group-version>) built from our schemas.

kubectl needs them for two everyday things: `kubectl explain` renders them, and
`kubectl create/apply/replace -f` with the default `--validate=strict` downloads the
group-version document to check that the PATCH operation of the kind accepts the
`fieldValidation` query parameter; if the download fails the command fails. We build each
document from the kubernetes-validate `$defs` (descriptions, patch strategies, list types,
GVK extensions all come along), keep only the schemas the group-version needs, add the REST
paths from the resource registry, and cache the serialised bytes rather than the dicts.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from pocketkube.api import schema
from pocketkube.api.resources import Resource, Subresource, group_versions, resources_in

_REF_IN = "#/$defs/"
_REF_OUT = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_STATUS = _META + "Status"
_DELETE_OPTIONS = _META + "DeleteOptions"
_PATCH = _META + "Patch"
_RESOURCE_LIST = _META + "APIResourceList"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"

PATCH_CONTENT_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_RESPONSE_TYPES = ("application/json", "application/yaml")

# path ("api/v1", "apis/apps/v1") -> serialised document; filled on first use.
_DOCS: dict[str, bytes] = {}
_HASHES: dict[str, str] = {}


# ---------------------------------------------------------------------------------------------
# Schema conversion: JSON Schema as kubernetes-validate writes it -> OpenAPI 3.0 as the
# apiserver serves it.


def _convert(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            continue
        if key == "type":
            if isinstance(value, list):
                # JSON Schema spells "optional" as a null alternative; OpenAPI 3.0 has no list
                # form and kubectl explain's template compares `type` with a string.
                kinds = [t for t in value if t != "null"]
                if len(kinds) == 1:
                    out["type"] = kinds[0]
                elif kinds:
                    out["oneOf"] = [{"type": t} for t in kinds]
            else:
                out["type"] = value
        elif key == "properties":
            out[key] = {name: _convert_property(name, sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _convert(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [_convert(v) for v in value]
        elif key == "x-kubernetes-group-version-kind":
            # kubectl explain matches these maps for equality, so "group" must always be there.
            out[key] = [{"group": g.get("group", ""), "kind": g["kind"], "version": g["version"]}
                        for g in value]
        else:
            out[key] = value
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = _REF_OUT + ref[len(_REF_IN):] if ref.startswith(_REF_IN) else ref
        if not out:
            return {"$ref": target}
        # OpenAPI 3.0 ignores siblings of $ref; upstream wraps the ref in allOf so the field's
        # own description and patch strategy survive, and kubectl explain follows allOf.
        return {"allOf": [{"$ref": target}], **out}
    return out


def _convert_property(name: str, sub: dict) -> dict:
    converted = _convert(sub)
    if name in ("apiVersion", "kind") and "enum" in converted:
        # kubernetes-validate pins apiVersion/kind with an enum; upstream documents have none,
        # and on shared meta types the enum lists every group, which explain would print.
        converted = {k: v for k, v in converted.items() if k != "enum"}
    return converted


def _convert_definition(name: str, definition: dict) -> dict:
    converted = _convert(definition)
    if name == _INT_OR_STRING:
        # The apiserver marks it with this format (kube-openapi OpenAPIV3OneOfTypes).
        converted = {**converted, "format": "int-or-string",
                     "oneOf": [{"type": "integer"}, {"type": "string"}]}
    return converted


def _refs_of(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_IN):
            found.add(ref[len(_REF_IN):])
        for value in node.values():
            if isinstance(value, (dict, list)):
                _refs_of(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs_of(value, found)


def _closure(roots: list[str]) -> list[str]:
    defs = schema.definitions()
    seen: set[str] = set()
    todo = [r for r in roots if r in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs_of(defs[name], found)
        todo.extend(n for n in found if n not in seen and n in defs)
    return sorted(seen)


# ---------------------------------------------------------------------------------------------
# Paths and operations


def _param(name: str, where: str, typ: str, description: str, required: bool = False) -> dict:
    p = {"name": name, "in": where, "description": description,
         "schema": {"type": typ, "uniqueItems": True}}
    if required:
        p["required"] = True
    return p


_P_NAME = _param("name", "path", "string", "name of the object", required=True)
_P_NAMESPACE = _param("namespace", "path", "string",
                      "object name and auth scope, such as for teams and projects", required=True)
_P_PRETTY = _param("pretty", "query", "string", "If 'true', then the output is pretty printed.")
_P_DRY_RUN = _param("dryRun", "query", "string",
                    "When present, indicates that modifications should not be persisted. "
                    "Valid values are: - All: all dry run stages will be processed")
_P_FIELD_MANAGER = _param("fieldManager", "query", "string",
                          "fieldManager is a name associated with the actor or entity that is "
                          "making these changes. Required for apply requests.")
_P_FIELD_VALIDATION = _param(
    "fieldValidation", "query", "string",
    "fieldValidation instructs the server on how to handle objects in the request "
    "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - "
    "Warn (the default) - Strict: fail the request with a BadRequest error listing every "
    "unknown or duplicate field.")
_P_FORCE = _param("force", "query", "boolean",
                  "Force is going to \"force\" Apply requests: re-acquire fields owned by "
                  "other managers. Must be unset for non-apply patch requests.")
_WRITE_PARAMS = [_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION]
_LIST_PARAMS = [
    _param("allowWatchBookmarks", "query", "boolean",
           "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
    _param("continue", "query", "string",
           "The continue option should be set when retrieving more results from the server."),
    _param("fieldSelector", "query", "string",
           "A selector to restrict the list of returned objects by their fields."),
    _param("labelSelector", "query", "string",
           "A selector to restrict the list of returned objects by their labels."),
    _param("limit", "query", "integer", "limit is a maximum number of responses to return."),
    _param("resourceVersion", "query", "string",
           "resourceVersion sets a constraint on what resource versions a request may be "
           "served from."),
    _param("resourceVersionMatch", "query", "string",
           "resourceVersionMatch determines how resourceVersion is applied to list calls."),
    _param("sendInitialEvents", "query", "boolean",
           "With watch=true, begin the stream with synthetic events for the current objects."),
    _param("timeoutSeconds", "query", "integer", "Timeout for the list/watch call."),
    _param("watch", "query", "boolean",
           "Watch for changes to the described resources and return them as a stream."),
]
_DELETE_PARAMS = [
    _P_DRY_RUN,
    _param("gracePeriodSeconds", "query", "integer",
           "The duration in seconds before the object should be deleted."),
    _param("orphanDependents", "query", "boolean",
           "Deprecated: please use the PropagationPolicy."),
    _param("propagationPolicy", "query", "string",
           "Whether and how garbage collection will be performed: Orphan, Background or "
           "Foreground."),
]
_LOG_PARAMS = [
    _param("container", "query", "string", "The container for which to stream logs."),
    _param("follow", "query", "boolean", "Follow the log stream of the pod."),
    _param("insecureSkipTLSVerifyBackend", "query", "boolean",
           "Skip verifying the serving certificate of the backend."),
    _param("limitBytes", "query", "integer", "Number of bytes to read before terminating."),
    _param("previous", "query", "boolean", "Return previous terminated container logs."),
    _param("sinceSeconds", "query", "integer", "A relative time in seconds before now."),
    _param("stream", "query", "string", "The log stream: All, Stdout or Stderr."),
    _param("tailLines", "query", "integer", "Number of lines from the end of the logs to show."),
    _param("timestamps", "query", "boolean", "Add an RFC3339 timestamp to every line."),
]


def _schema_ref(name: str) -> dict:
    return {"$ref": _REF_OUT + name}


def _content(schema_obj: dict, types: tuple[str, ...] = _RESPONSE_TYPES) -> dict:
    return {t: {"schema": schema_obj} for t in types}


def _responses(name: str, codes: tuple[str, ...] = ("200",),
               extra_types: tuple[str, ...] = ()) -> dict:
    text = {"200": "OK", "201": "Created", "202": "Accepted"}
    out: dict[str, Any] = {}
    for code in codes:
        out[code] = {"description": text[code],
                     "content": _content(_schema_ref(name), _RESPONSE_TYPES + extra_types)}
    out["401"] = {"description": "Unauthorized"}
    return out


def _gvk(group: str, version: str, kind: str) -> dict:
    return {"group": group, "kind": kind, "version": version}


def _camel_group(group: str) -> str:
    if not group:
        return "Core"
    return "".join(p[:1].upper() + p[1:] for p in group.removesuffix(".k8s.io").split("."))


def _tag(group: str, version: str) -> str:
    return f"{(group.removesuffix('.k8s.io').replace('.', '_') or 'core')}_{version}"


class _Ops:
    """Builds the operations of one group-version document."""

    def __init__(self, group: str, version: str):
        self.group, self.version = group, version
        self.op_prefix = _camel_group(group) + version[:1].upper() + version[1:]
        self.tag = _tag(group, version)

    def op(self, verb: str, action: str, what: str, gvk: dict, description: str,
           responses: dict, params: list[dict] | None = None,
           body: dict | None = None) -> dict:
        out: dict[str, Any] = {
            "description": description,
            "operationId": f"{verb}{self.op_prefix}{what}",
            "responses": responses,
            "tags": [self.tag],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        }
        if params:
            out["parameters"] = list(params)
        if body is not None:
            out["requestBody"] = body
        return out


def _body(name: str, types: tuple[str, ...] = ("*/*",)) -> dict:
    return {"content": _content(_schema_ref(name), types), "required": True}


def _resource_paths(ops: _Ops, prefix: str, r: Resource) -> dict[str, dict]:
    kind_def = schema.definition_name(r.group, r.version, r.kind)
    list_def = schema.definition_name(r.group, r.version, r.list_kind)
    if kind_def is None:
        return {}
    gvk = _gvk(r.group, r.version, r.kind)
    ns = "Namespaced" if r.namespaced else ""
    base = (f"{prefix}/namespaces/{{namespace}}/{r.plural}" if r.namespaced
            else f"{prefix}/{r.plural}")
    scope_params = [_P_NAMESPACE] if r.namespaced else []
    verbs = set(r.verbs)
    paths: dict[str, dict] = {}

    collection: dict[str, Any] = {"parameters": scope_params + [_P_PRETTY]}
    if "list" in verbs and list_def:
        collection["get"] = ops.op(
            "list", "list", f"{ns}{r.kind}", gvk, f"list or watch objects of kind {r.kind}",
            _responses(list_def, extra_types=("application/json;stream=watch",)), _LIST_PARAMS)
    if "create" in verbs:
        collection["post"] = ops.op(
            "create", "post", f"{ns}{r.kind}", gvk, f"create a {r.kind}",
            _responses(kind_def, ("200", "201", "202")), _WRITE_PARAMS, _body(kind_def))
    if "deletecollection" in verbs:
        collection["delete"] = ops.op(
            "delete", "deletecollection", f"Collection{ns}{r.kind}", gvk,
            f"delete collection of {r.kind}", _responses(_STATUS),
            _DELETE_PARAMS + [p for p in _LIST_PARAMS if p["name"] not in
                              ("allowWatchBookmarks", "watch")],
            _body(_DELETE_OPTIONS))
    paths[base] = collection

    item_path = f"{base}/{{name}}"
    item: dict[str, Any] = {"parameters": [_P_NAME] + scope_params + [_P_PRETTY]}
    if "get" in verbs:
        item["get"] = ops.op("read", "get", f"{ns}{r.kind}", gvk,
                             f"read the specified {r.kind}", _responses(kind_def))
    if "update" in verbs:
        item["put"] = ops.op("replace", "put", f"{ns}{r.kind}", gvk,
                             f"replace the specified {r.kind}",
                             _responses(kind_def, ("200", "201")), _WRITE_PARAMS, _body(kind_def))
    if "patch" in verbs:
        item["patch"] = ops.op("patch", "patch", f"{ns}{r.kind}", gvk,
                               f"partially update the specified {r.kind}",
                               _responses(kind_def, ("200", "201")),
                               _WRITE_PARAMS + [_P_FORCE], _body(_PATCH, PATCH_CONTENT_TYPES))
    if "delete" in verbs:
        item["delete"] = ops.op("delete", "delete", f"{ns}{r.kind}", gvk,
                                f"delete a {r.kind}", _responses(_STATUS, ("200", "202")),
                                _DELETE_PARAMS, _body(_DELETE_OPTIONS))
    paths[item_path] = item

    if r.namespaced and "list" in verbs and list_def:
        paths[f"{prefix}/{r.plural}"] = {
            "get": ops.op("list", "list", f"{r.kind}ForAllNamespaces", gvk,
                          f"list or watch objects of kind {r.kind}",
                          _responses(list_def, extra_types=("application/json;stream=watch",)),
                          _LIST_PARAMS),
            "parameters": [_P_PRETTY],
        }

    for sub in r.subresources:
        sub_path = _subresource_path(ops, item_path, r, sub, ns, scope_params)
        if sub_path:
            paths[f"{item_path}/{sub.name}"] = sub_path
    return paths


def _subresource_path(ops: _Ops, item_path: str, r: Resource, sub: Subresource, ns: str,
                      scope_params: list[dict]) -> dict | None:
    gvk = _gvk(sub.group, sub.version, sub.kind)
    what = f"{ns}{r.kind}{sub.name[:1].upper()}{sub.name[1:]}"
    params = [_P_NAME] + scope_params
    out: dict[str, Any] = {}
    if sub.name == "log":
        # Logs are plain text, not a kind; upstream still tags the operation with Pod.
        text = {"type": "string"}
        out["get"] = ops.op("read", "get", what, gvk, f"read log of the specified {r.kind}",
                            {"200": {"description": "OK",
                                     "content": _content(text, ("text/plain", "application/json"))},
                             "401": {"description": "Unauthorized"}},
                            _LOG_PARAMS)
        out["parameters"] = params
        return out
    sub_def = schema.definition_name(sub.group, sub.version, sub.kind)
    if sub_def is None:
        return None
    verbs = set(sub.verbs)
    if "get" in verbs:
        out["get"] = ops.op("read", "get", what, gvk, f"read {sub.name} of the specified {r.kind}",
                            _responses(sub_def))
    if "create" in verbs:
        out["post"] = ops.op("create", "post", what, gvk, f"create {sub.name} of a {r.kind}",
                             _responses(sub_def, ("200", "201", "202")), _WRITE_PARAMS,
                             _body(sub_def))
    if "update" in verbs:
        out["put"] = ops.op("replace", "put", what, gvk,
                            f"replace {sub.name} of the specified {r.kind}",
                            _responses(sub_def, ("200", "201")), _WRITE_PARAMS, _body(sub_def))
    if "patch" in verbs:
        out["patch"] = ops.op("patch", "patch", what, gvk,
                              f"partially update {sub.name} of the specified {r.kind}",
                              _responses(sub_def, ("200", "201")), _WRITE_PARAMS + [_P_FORCE],
                              _body(_PATCH, PATCH_CONTENT_TYPES))
    out["parameters"] = params + [_P_PRETTY]
    return out


# ---------------------------------------------------------------------------------------------
# Documents


def _doc_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _url_prefix(group: str, version: str) -> str:
    return "/" + _doc_path(group, version)


def _roots(resources: list[Resource]) -> list[str]:
    names = [_STATUS, _DELETE_OPTIONS, _PATCH, _RESOURCE_LIST]
    for r in resources:
        for g, v, k in [(r.group, r.version, r.kind), (r.group, r.version, r.list_kind)] + [
                (s.group, s.version, s.kind) for s in r.subresources]:
            name = schema.definition_name(g, v, k)
            if name:
                names.append(name)
    return names


def build_document(group: str, version: str) -> dict | None:
    """The OpenAPI document of one group-version as a dict (tests use this; serving uses bytes)."""
    resources = resources_in(group, version)
    if not resources:
        return None
    prefix = _url_prefix(group, version)
    ops = _Ops(group, version)
    paths: dict[str, dict] = {
        f"{prefix}/": {"get": {
            "description": "get available resources",
            "operationId": f"get{ops.op_prefix}APIResources",
            "responses": _responses(_RESOURCE_LIST),
            "tags": [ops.tag],
        }},
    }
    for r in resources:
        paths.update(_resource_paths(ops, prefix, r))
    defs = schema.definitions()
    schemas = {name: _convert_definition(name, defs[name]) for name in _closure(_roots(resources))}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": schema.SCHEMA_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _ensure(path: str) -> bytes | None:
    cached = _DOCS.get(path)
    if cached is not None:
        return cached
    for group, version in group_versions():
        if _doc_path(group, version) == path:
            doc = build_document(group, version)
            if doc is None:
                return None
            # Sorted keys make the bytes, and so the hash kubectl caches by, reproducible.
            data = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
            _DOCS[path] = data
            # Same form as kube-openapi handler3: upper-case hex SHA-512 of the document.
            _HASHES[path] = hashlib.sha512(data).hexdigest().upper()
            return data
    return None


def _normalise(path: str) -> str:
    path = path.split("?", 1)[0].strip("/")
    return path.removeprefix("openapi/v3/")


def openapi_group_version(path: str) -> bytes | None:
    """GET /openapi/v3/<path> ("api/v1", "apis/apps/v1"): the document as JSON bytes, or None."""
    return _ensure(_normalise(path))


def group_version_hash(path: str) -> str | None:
    """The content hash of a group-version document (usable as its ETag), or None."""
    path = _normalise(path)
    if _ensure(path) is None:
        return None
    return _HASHES[path]


def openapi_root() -> dict:
    """GET /openapi/v3: every group-version document with a hash-stamped URL.

    Computing the hashes builds every document once; after that all answers come from the
    byte cache.
    """
    paths: dict[str, dict] = {}
    for group, version in group_versions():
        path = _doc_path(group, version)
        digest = group_version_hash(path)
        if digest is not None:
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
