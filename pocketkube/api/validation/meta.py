"""ObjectMeta validation on create and update (apimachinery `api/validation/objectmeta.go`).

Every kind runs these checks first: name (with a per-kind name rule), namespace presence,
labels, annotations, owner references and finalizers, and on update the fields that can
never change. Server-managed fields (resourceVersion, generation, creationTimestamp) are
set by the caller, so only the rules a client can break are checked here.
"""

from __future__ import annotations

from typing import Callable

from pocketkube.api.errors import FieldError, forbidden, invalid, required
from pocketkube.api.names import (
    is_qualified_name,
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_annotations,
    validate_labels,
    validate_object_meta_name,
)

from .common import JSONValue, Raw, as_int, child, go_string_slice, immutable, index, nonneg

NameFunc = Callable[[str, bool], list[str]]

_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
_ORPHAN = "orphan"
_FOREGROUND = "foregroundDeletion"


def validate_finalizer_name(name: str, path: str) -> list[FieldError]:
    """ValidateFinalizerName plus core's rule that unqualified names must be standard ones."""
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    errs.extend(validate_kube_finalizer_name(name, path))
    return errs


def validate_kube_finalizer_name(name: str, path: str) -> list[FieldError]:
    if "/" not in name and name not in _STANDARD_FINALIZERS:
        return [
            invalid(
                path, name, "name is neither a standard finalizer name nor is it fully qualified"
            )
        ]
    return []


def validate_finalizers(finalizers: list, path: str) -> list[FieldError]:
    """ValidateFinalizers (errors at the list path) then core's per-index standard-name check."""
    errs: list[FieldError] = []
    if not finalizers:
        return errs
    for f in finalizers:
        if isinstance(f, str):
            errs.extend(invalid(path, f, m) for m in is_qualified_name(f))
    if _ORPHAN in finalizers and _FOREGROUND in finalizers:
        errs.append(
            invalid(
                path,
                JSONValue(finalizers),
                f"finalizer {_ORPHAN} and {_FOREGROUND} cannot be both set",
            )
        )
    for i, f in enumerate(finalizers):
        if isinstance(f, str):
            errs.extend(validate_kube_finalizer_name(f, index(path, i)))
    return errs


def validate_owner_references(refs: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    for ref in refs or []:
        if not isinstance(ref, dict):
            continue
        api_version = ref.get("apiVersion") or ""
        kind = ref.get("kind") or ""
        # schema.FromAPIVersionAndKind: the version is what follows the last "/".
        version = api_version.rsplit("/", 1)[-1] if api_version.count("/") <= 1 else ""
        if not version:
            errs.append(
                invalid(child(path, "apiVersion"), api_version, "version must not be empty")
            )
        if not kind:
            errs.append(invalid(child(path, "kind"), kind, "must not be empty"))
        if not ref.get("name"):
            errs.append(invalid(child(path, "name"), ref.get("name") or "", "must not be empty"))
        if not ref.get("uid"):
            errs.append(invalid(child(path, "uid"), ref.get("uid") or "", "must not be empty"))
        if api_version == "v1" and kind == "Event":
            errs.append(
                invalid(path, JSONValue(ref), "/v1, Kind=Event is disallowed from being an owner")
            )
        if ref.get("controller") is True:
            name = f"{kind}/{ref.get('name') or ''}"
            if first_controller:
                errs.append(
                    invalid(
                        path,
                        JSONValue(refs),
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {first_controller} and {name}",
                    )
                )
            else:
                first_controller = name
    return errs


def validate_object_meta(
    meta: dict, namespaced: bool, name_fn: NameFunc, path: str = "metadata"
) -> list[FieldError]:
    """ValidateObjectMeta (core's variant, with the finalizer-name rule)."""
    errs = validate_object_meta_name(
        meta.get("name") or "", meta.get("generateName") or "", name_fn, path
    )
    ns = meta.get("namespace") or ""
    if namespaced:
        if not ns:
            errs.append(required(child(path, "namespace"), ""))
        else:
            errs.extend(
                invalid(child(path, "namespace"), ns, m) for m in name_is_dns_label(ns, False)
            )
    elif ns:
        errs.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    errs.extend(nonneg(meta.get("generation"), child(path, "generation")))
    errs.extend(validate_labels(meta.get("labels"), child(path, "labels")))
    errs.extend(validate_annotations(meta.get("annotations"), child(path, "annotations")))
    errs.extend(
        validate_owner_references(meta.get("ownerReferences"), child(path, "ownerReferences"))
    )
    errs.extend(validate_finalizers(meta.get("finalizers"), child(path, "finalizers")))
    return errs


def validate_object_meta_update(new: dict, old: dict, path: str = "metadata") -> list[FieldError]:
    """ValidateObjectMetaUpdate, less the server-managed fields the caller owns."""
    errs: list[FieldError] = []
    new_fin = new.get("finalizers") or []
    if old.get("deletionTimestamp"):
        old_fin = set(old.get("finalizers") or [])
        extra = sorted({f for f in new_fin if f not in old_fin})
        if extra:
            errs.append(
                forbidden(
                    child(path, "finalizers"),
                    "no new finalizers can be added if the object is being deleted, found new "
                    f"finalizers {go_string_slice(extra)}",
                )
            )
    new_gen, old_gen = as_int(new.get("generation")), as_int(old.get("generation"))
    if new_gen is not None and old_gen is not None and new_gen < old_gen:
        errs.append(invalid(child(path, "generation"), new_gen, "must not be decremented"))
    errs.extend(immutable(new.get("name") or "", old.get("name") or "", child(path, "name")))
    errs.extend(
        immutable(new.get("namespace") or "", old.get("namespace") or "", child(path, "namespace"))
    )
    # An update without a uid keeps the stored one (BeforeUpdate), so only a different uid errs.
    if new.get("uid"):
        errs.extend(immutable(new.get("uid"), old.get("uid") or "", child(path, "uid")))
    # What is unchanged passed these checks when it was stored: most updates (every status
    # write) keep labels, annotations, owners and finalizers, so only changes are checked.
    if new.get("labels") != old.get("labels"):
        errs.extend(validate_labels(new.get("labels"), child(path, "labels")))
    if new.get("annotations") != old.get("annotations"):
        errs.extend(validate_annotations(new.get("annotations"), child(path, "annotations")))
    if new.get("ownerReferences") != old.get("ownerReferences"):
        errs.extend(
            validate_owner_references(new.get("ownerReferences"), child(path, "ownerReferences"))
        )
    # Core's ValidateObjectMetaUpdate re-checks finalizer names one by one.
    if new_fin != (old.get("finalizers") or []):
        for i, f in enumerate(new_fin):
            if isinstance(f, str):
                errs.extend(validate_kube_finalizer_name(f, index(child(path, "finalizers"), i)))
    return errs


def validate_template_object_meta(meta: dict, path: str) -> list[FieldError]:
    """ValidateTemplateObjectMeta (ephemeral volume claim templates): only labels/annotations."""
    errs = validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs.extend(validate_labels(meta.get("labels"), child(path, "labels")))
    for k in meta:
        if k not in ("labels", "annotations", "creationTimestamp") and meta[k] not in (
            None,
            "",
            {},
            [],
        ):
            errs.append(forbidden(child(path, k), "cannot be set"))
    return errs


def has_label(meta: dict, path: str, key: str, expected: str) -> list[FieldError]:
    """ValidateHasLabel."""
    labels = meta.get("labels") or {}
    lpath = f"{child(path, 'labels')}[{key}]"
    if key not in labels:
        return [required(lpath, f"must be '{expected}'")]
    if labels[key] != expected:
        return [invalid(lpath, JSONValue(labels), f"must be '{expected}'")]
    return []


SUBDOMAIN: NameFunc = name_is_dns_subdomain
LABEL: NameFunc = name_is_dns_label
__all__ = [
    "validate_object_meta",
    "validate_object_meta_update",
    "validate_finalizer_name",
    "validate_template_object_meta",
    "has_label",
    "SUBDOMAIN",
    "LABEL",
    "Raw",
]
