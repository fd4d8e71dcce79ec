"""Kubernetes' own type schemas, read from the kubernetes-validate package.

The schemas carry everything the API needs to know about field shapes: which fields exist
(strict decoding), their JSON types, and the strategic-merge-patch metadata
(`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`). They also feed the OpenAPI
documents kubectl downloads. We load them once, lazily, and navigate them with `Node`.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Iterator

import orjson

SCHEMA_VERSION = "v1.37.0-local"
_REF_PREFIX = "#/$defs/"

# Definitions that accept any JSON (the schema has no properties for them).
FREE_FORM = {
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
}


def schema_dir() -> str:
    # Located without importing the package: its import pulls in jsonschema, which we do not use.
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes-validate package is not installed")
    return os.path.join(list(spec.submodule_search_locations)[0], "kubernetes-json-schema",
                        SCHEMA_VERSION)


@functools.lru_cache(maxsize=1)
def definitions() -> dict[str, dict]:
    """The `$defs` mapping: definition name -> JSON schema (loaded once)."""
    with open(os.path.join(schema_dir(), "_definitions.json"), "rb") as f:
        return orjson.loads(f.read())["$defs"]


@functools.lru_cache(maxsize=1)
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        for gvk in d.get("x-kubernetes-group-version-kind", ()):
            index.setdefault((gvk.get("group", ""), gvk["version"], gvk["kind"]), name)
    return index


def definition_name(group: str, version: str, kind: str) -> str | None:
    """The definition name of a kind, e.g. ('apps','v1','Deployment') -> io.k8s.api.apps.v1.Deployment."""
    return _gvk_index().get((group, version, kind))


def load() -> None:
    """Read the schemas now (~15 ms), not in the middle of the first request that needs them."""
    _gvk_index()


def ref_name(schema: dict) -> str | None:
    ref = schema.get("$ref")
    if ref and ref.startswith(_REF_PREFIX):
        return ref[len(_REF_PREFIX):]
    return None


def json_types(schema: dict) -> set[str]:
    """JSON types a schema admits, with 'null' dropped (every optional field may be null)."""
    if "oneOf" in schema:
        out: set[str] = set()
        for alt in schema["oneOf"]:
            out |= json_types(alt)
        return out
    t = schema.get("type")
    if t is None:
        return set()
    if isinstance(t, str):
        return {t}
    return {x for x in t if x != "null"}


class Node:
    """A position in a schema: follows $ref, and knows its patch metadata.

    `field` is the schema of the property as declared in its parent, which is where the
    patch strategy and list extensions live; `schema` is the resolved type schema.
    """

    __slots__ = ("field", "schema", "name")

    def __init__(self, field: dict, name: str | None = None):
        self.field = field
        defs = definitions()
        resolved = field
        ref = ref_name(field)
        self.name = name or ref
        if ref is not None:
            resolved = defs.get(ref, {})
        self.schema = resolved

    @classmethod
    def for_kind(cls, group: str, version: str, kind: str) -> "Node | None":
        name = definition_name(group, version, kind)
        if name is None:
            return None
        return cls({"$ref": _REF_PREFIX + name})

    @property
    def free_form(self) -> bool:
        return self.name in FREE_FORM

    @property
    def types(self) -> set[str]:
        return json_types(self.schema)

    @property
    def properties(self) -> dict[str, dict]:
        return self.schema.get("properties") or {}

    def child(self, key: str) -> "Node | None":
        """Schema of property `key` of an object, or of any value of a map."""
        props = self.schema.get("properties")
        if props is not None:
            sub = props.get(key)
            return Node(sub) if sub is not None else None
        addl = self.schema.get("additionalProperties")
        if isinstance(addl, dict):
            return Node(addl)
        return None

    def items(self) -> "Node | None":
        sub = self.schema.get("items")
        return Node(sub) if isinstance(sub, dict) else None

    @property
    def is_map(self) -> bool:
        """An object with arbitrary keys (labels, nodeSelector, resources.limits)."""
        return "properties" not in self.schema and isinstance(
            self.schema.get("additionalProperties"), dict)

    @property
    def patch_strategies(self) -> list[str]:
        s = self.field.get("x-kubernetes-patch-strategy") or ""
        return [x for x in s.split(",") if x]

    @property
    def merge_key(self) -> str | None:
        return self.field.get("x-kubernetes-patch-merge-key")

    @property
    def list_type(self) -> str | None:
        return self.field.get("x-kubernetes-list-type")

    @property
    def list_map_keys(self) -> list[str]:
        return list(self.field.get("x-kubernetes-list-map-keys") or ())

    @property
    def required(self) -> list[str]:
        return list(self.schema.get("required") or ())

    def walk_properties(self) -> Iterator[tuple[str, "Node"]]:
        for k, v in self.properties.items():
            yield k, Node(v)
