"""The three PATCH bodies the Kubernetes API accepts, applied as kube-apiserver applies them.

kubectl and client-go never send whole objects to change one field: `kubectl label` sends a
JSON merge patch, `kubectl apply`, `set image`, `rollout restart` and `rollout undo` send
strategic merge patches, and scripts send RFC 6902 JSON patches. Their results (list order
included) and their failures (status code, reason, message) must match the real server's, or
kubectl shows different output and controllers diverge. This module reproduces:

- JSON patch as the apiserver's `jsonPatcher` applies it (decoding checks, then evanphx
  json-patch; here the `jsonpatch` library does the operations);
- JSON merge patch as evanphx `MergePatch` does it;
- strategic merge patch as apimachinery `strategicpatch.StrategicMergeMapPatch` does it on
  the server (parallel lists merged, unmatched nulls ignored), with the patch metadata read
  from the kind's schema (`schema.Node`) instead of Go struct tags;
- the error mapping of apiserver `handlers/patch.go` (`interpretStrategicMergePatchError`,
  `applyJSPatch`), including the plain Go errors it lets through as 500s without a reason.
"""

from __future__ import annotations

import copy
import functools
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

import jsonpatch
import jsonpointer

from pocketkube.api.errors import (ApiError, bad_request, internal_error, invalid, invalid_error,
                                   too_large)

if TYPE_CHECKING:
    from pocketkube.api.schema import Node

__all__ = ["apply_json_patch", "apply_merge_patch", "apply_strategic_merge_patch"]

MAX_JSON_PATCH_OPERATIONS = 10000  # maxJSONPatchOperations in handlers/patch.go

# NewGenericServerResponse(422, ...) drops the underlying message and says only this.
_REJECTED = "the server rejected our request due to an error in our request"

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList"

# mergepatch errors that interpretStrategicMergePatchError turns into 400s.
_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_SET_ORDER = "invalid patch format of setElementOrder list"

_MAP_T = "map[string]interface {}"
_LIST_T = "[]interface {}"


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _guarded(apply: Callable[..., dict]) -> Callable[..., dict]:
    """Let only ApiError out: callers turn it into a Status; anything else would be a 500
    with a Python traceback."""

    @functools.wraps(apply)
    def wrapper(*args: Any, **kwargs: Any) -> dict:
        try:
            return apply(*args, **kwargs)
        except ApiError:
            raise
        except _SmpError as e:
            raise e.api_error() from None
        except RecursionError:
            # Go's decoder would have refused such nesting before patching.
            raise bad_request("exceeded max depth") from None
        except Exception as e:  # noqa: BLE001 - the last line of defence
            raise internal_error(f"applying patch: {e}") from e

    return wrapper


@_guarded
def apply_json_patch(doc: dict, patch: object) -> dict:
    """Apply an RFC 6902 JSON patch (application/json-patch+json) to a copy of `doc`."""
    if patch is None:
        # Go decodes `null` into an empty patch: nothing to do.
        return _copy(doc)
    _check_json_patch_shape(patch)
    if len(patch) > MAX_JSON_PATCH_OPERATIONS:
        raise too_large(f"Request entity too large: The allowed maximum operations in a JSON patch "
                        f"is {MAX_JSON_PATCH_OPERATIONS}, got {len(patch)}")
    try:
        # Copies of both: the library writes normalised `from` members back into move ops.
        result = jsonpatch.JsonPatch(_copy(patch)).apply(_copy(doc), in_place=True)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException,
            KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        # Upstream answers every failed operation with the same 422 and no detail.
        raise _rejected() from e
    if not isinstance(result, dict):
        raise _not_an_object(result)
    return result


@_guarded
def apply_merge_patch(doc: dict, patch: object) -> dict:
    """Apply an RFC 7386 JSON merge patch (application/merge-patch+json) to a copy of `doc`."""
    if patch is None:
        # Strict decoding accepts `null`, then evanphx MergePatch refuses it; the apiserver
        # passes that plain error on, so it becomes a 500 without a reason.
        raise ApiError(500, "", "Invalid JSON Patch")
    if not isinstance(patch, dict):
        raise bad_request("error decoding patch: " + _cannot_unmarshal(patch, _MAP_T))
    base = _copy(doc) if isinstance(doc, dict) else {}
    return _merge_docs(base, _copy(patch))


@_guarded
def apply_strategic_merge_patch(doc: dict, patch: object, node: "Node | None") -> dict:
    """Apply a Kubernetes strategic merge patch to a copy of `doc`.

    `node` is the schema of the patched kind; with None lists are replaced and maps merged.
    """
    if patch is None:
        # json.Unmarshal of `null` leaves the patch map empty.
        return _copy(doc)
    if not isinstance(patch, dict):
        raise bad_request(_cannot_unmarshal(patch, _MAP_T))
    original = _copy(doc) if isinstance(doc, dict) else {}
    return _merge_map(original, _copy(patch), node)


# ---------------------------------------------------------------------------------------------
# JSON patch
# ---------------------------------------------------------------------------------------------

# Fields of handlers.jsonPatchOp that strict decoding types as strings.
_OP_STRING_FIELDS = ("op", "path", "from")


def _check_json_patch_shape(patch: object) -> None:
    """The apiserver strictly decodes the body into []jsonPatchOp first; failures are 400s."""
    if not isinstance(patch, list):
        raise bad_request("error decoding patch: "
                          + _cannot_unmarshal(patch, "[]handlers.jsonPatchOp"))
    for op in patch:
        if op is None:
            continue  # decodes to an empty op, which then fails to apply (422)
        if not isinstance(op, dict):
            raise bad_request("error decoding patch: "
                              + _cannot_unmarshal(op, "handlers.jsonPatchOp"))
        for name, value in op.items():
            if name in _OP_STRING_FIELDS and value is not None and not isinstance(value, str):
                raise bad_request(f"error decoding patch: json: cannot unmarshal {_json_kind(value)}"
                                  f" into Go struct field jsonPatchOp.{name} of type string")


def _rejected() -> ApiError:
    return ApiError(422, "Invalid", _REJECTED, {})


def _not_an_object(result: Any) -> ApiError:
    """The patched document must decode as an object again (runtime.DecodeInto)."""
    text = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
    if result is None:
        detail = "Object 'Kind' is missing in 'null'"
    else:
        detail = ("couldn't get version/kind; json parse error: "
                  + _cannot_unmarshal(result, 'struct { APIVersion string "json:\\"apiVersion,'
                                              'omitempty\\""; Kind string "json:\\"kind,'
                                              'omitempty\\"" }'))
    return invalid_error("", "", "", [invalid("patch", text, detail)])


# ---------------------------------------------------------------------------------------------
# JSON merge patch (evanphx json-patch MergePatch)
# ---------------------------------------------------------------------------------------------


def _merge_docs(doc: dict, patch: dict) -> dict:
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
        elif doc.get(key) is None:
            doc[key] = _prune_nulls(value)
        else:
            doc[key] = _merge_value(doc[key], value)
    return doc


def _merge_value(current: Any, patch: Any) -> Any:
    if not isinstance(current, dict):
        return _prune_nulls(patch)
    if not isinstance(patch, dict):
        return patch  # evanphx keeps a non-object patch value as sent
    return _merge_docs(current, patch)


def _prune_nulls(value: Any) -> Any:
    """Drop null members of objects at any depth, in place; null array elements stay.

    Both evanphx (merge patch) and strategicpatch (discardNullValuesFromPatch) do this to
    values that have nothing to merge with."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for v in value.values():
            _prune_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _prune_nulls(v)
    return value


# ---------------------------------------------------------------------------------------------
# Strategic merge patch (apimachinery strategicpatch, server side)
# ---------------------------------------------------------------------------------------------


class _SmpError(Exception):
    """A strategicpatch error, with the status interpretStrategicMergePatchError gives it."""

    def __init__(self, message: str, code: int = 500):
        super().__init__(message)
        self.message = message
        self.code = code

    def api_error(self) -> ApiError:
        if self.code == 400:
            return bad_request(self.message)
        if self.code == 422:
            return _rejected()
        # Any other error is a plain Go error: ErrorToAPIStatus makes it a 500, no reason.
        return ApiError(500, "", self.message)


def _merge_map(original: dict, patch: dict, node: "Node | None") -> dict:
    """mergeMap: merge `patch` into `original` (both owned by us; `original` is changed)."""
    if _PATCH in patch:
        return _map_directive(patch)
    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, node)
    for key in list(patch):
        _merge_field(original, key, patch[key], node)
    return original


def _map_directive(patch: dict) -> dict:
    directive = patch[_PATCH]
    if directive == "replace":
        del patch[_PATCH]
        return _strip(patch)
    if directive == "delete":
        # Upstream leaves an empty map, not a missing key.
        return {}
    raise _SmpError(_bad_patch_type(directive, patch))


def _merge_field(original: dict, key: str, value: Any, node: "Node | None") -> None:
    delete_list = key.startswith(_DELETE_PRIMITIVE)
    if delete_list:
        key = _directive_target(key, _DELETE_PRIMITIVE, _BAD_PRIMITIVE_LIST)
    if value is None:
        original.pop(key, None)
        return
    if key not in original or type(original[key]) is not type(value):
        # A deletion list never adds anything; other values replace what is there.
        if not delete_list:
            _set_from_patch(original, key, value)
        return
    current = original[key]
    if isinstance(current, dict):
        child, strategy, _ = _field_meta(node, key)
        original[key] = _strip(value) if strategy == "replace" else _merge_map(current, value, child)
    elif isinstance(current, list):
        items, strategy, merge_key = _list_meta(node, key)
        original[key] = _merge_list_field(current, value, items, strategy, merge_key,
                                          delete_list)[0]
    else:
        _set_from_patch(original, key, value)


def _set_from_patch(original: dict, key: str, value: Any) -> None:
    """Take a patch value where there is nothing to merge with (discard nulls, then directives)."""
    cleaned, keep = _remove_directives(_prune_nulls(value))
    if keep:
        original[key] = cleaned
    else:
        original.pop(key, None)


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """removeDirectives: maps carrying `$patch` vanish; other directive keys are dropped too.

    Upstream leaves `$retainKeys`, `$setElementOrder/..` keys for the typed decoder to drop
    as unknown fields; we have no typed decoder, so we drop them here.
    """
    if isinstance(value, dict):
        if _PATCH in value:
            return None, False
        out = {}
        for k, v in value.items():
            if _is_directive_key(k):
                continue
            cleaned, keep = _remove_directives(v)
            if keep:
                out[k] = cleaned
        return out, True
    if isinstance(value, list):
        out_list = []
        for v in value:
            cleaned, keep = _remove_directives(v)
            if keep:
                out_list.append(cleaned)
        return out_list, True
    return value, True


def _strip(value: Any) -> Any:
    """Content taken verbatim (replaced maps and lists, new list elements), as the typed
    decoder leaves it upstream: directive keys and null members gone, but elements marked
    `$patch` kept (without the marker)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items()
                if v is not None and not _is_directive_key(k)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _is_directive_key(key: str) -> bool:
    return key in (_PATCH, _RETAIN_KEYS) or key.startswith(
        (_SET_ORDER + "/", _DELETE_PRIMITIVE + "/"))


def _directive_target(key: str, prefix: str, error: str) -> str:
    """extractKey: `$setElementOrder/containers` -> `containers`."""
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise _SmpError(error, 400)
    return rest


# -- patch metadata ---------------------------------------------------------------------------


def _field_meta(node: "Node | None", key: str) -> tuple["Node | None", str, str]:
    """Schema of field `key`, its patch strategy (retainKeys aside) and its merge key.

    Fields the schema does not know, and free-form values, are treated as untyped: upstream
    would fail there, but a stored object never has such fields.
    """
    if node is None or node.free_form:
        return None, "", ""
    child = node.child(key)
    if child is None:
        return None, "", ""
    strategies = [s for s in child.patch_strategies if s != "retainKeys"]
    return child, (strategies[0] if strategies else ""), child.merge_key or ""


def _list_meta(node: "Node | None", key: str) -> tuple["Node | None", str, str]:
    """Like _field_meta, with the schema of the list's elements."""
    child, strategy, merge_key = _field_meta(node, key)
    if child is None:
        return None, strategy, merge_key
    items = child.items()
    # A struct sent as a list: upstream's struct lookup uses the struct for the elements.
    return (items if items is not None or not child.properties else child), strategy, merge_key


# -- $retainKeys --------------------------------------------------------------------------------


def _apply_retain_keys(original: dict, patch: dict) -> None:
    """Clear the fields of `original` not named in `$retainKeys` (union types)."""
    if _RETAIN_KEYS not in patch:
        return
    retained = patch.pop(_RETAIN_KEYS)
    if not isinstance(retained, list):
        raise _SmpError(_BAD_RETAIN_KEYS, 400)
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_PRIMITIVE, _SET_ORDER)):
            continue
        if key not in retained:
            raise _SmpError(_BAD_RETAIN_KEYS, 400)
    for key in [k for k in original if k not in retained]:
        del original[key]


# -- $setElementOrder -----------------------------------------------------------------------------


def _merge_ordered_lists(original: dict, patch: dict, node: "Node | None") -> None:
    """mergePatchIntoOriginal: merge each list that has a `$setElementOrder/` and order it."""
    for key in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _SmpError(_bad_arg_type(_LIST_T, order))
        target = _directive_target(key, _SET_ORDER, _BAD_SET_ORDER)
        in_original, in_patch = target in original, target in patch
        original_list = original.get(target)
        patch_list = patch.get(target)
        if in_original and not isinstance(original_list, list):
            raise _SmpError(_bad_arg_type(_LIST_T, original_list))
        if in_patch and not isinstance(patch_list, list):
            raise _SmpError(_bad_arg_type(_LIST_T, patch_list))
        items, strategy, merge_key = _list_meta(node, target)
        _check_order(patch_list or [], order, merge_key)
        live = original_list or []
        if in_original and in_patch:
            merged, live = _merge_list_field(original_list, patch_list, items, strategy,
                                             merge_key, False)
        elif in_original:
            merged = original_list
        elif in_patch:
            merged = _remove_directives(patch_list)[0]
        else:
            continue
        original[target] = _order_by_directive(merged, order, live, patch_list or [], merge_key)
        patch.pop(target, None)


def _order_by_directive(merged: list, order: list, original_list: list, patch_list: list,
                        merge_key: str) -> list:
    if merge_key:
        in_order, server_only = _partition_maps(merged, order, merge_key)
    else:
        in_order, server_only = _partition_primitives(merged, order)
    kind = _element_type(original_list, patch_list)
    return _normalize_order(in_order, server_only, order, original_list, merge_key, kind)


def _check_order(patch_list: list, order: list, merge_key: str) -> None:
    """validatePatchWithSetOrderList: patch items must appear in the directive's order."""
    if not order or not patch_list:
        return
    items = patch_list
    if merge_key:
        items = _split_deletions(patch_list)[0]
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        if isinstance(items[pi], dict) and _PATCH in items[pi]:
            pi += 1
            continue
        if _merge_key_equal(items[pi], order[oi], merge_key):
            pi += 1
        oi += 1
    if pi < len(items) and oi >= len(order):
        raise _SmpError(f"The order in patch list:\n{_go_v(patch_list)}\n doesn't match "
                        f"{_SET_ORDER} list:\n{_go_v(order)}\n")


def _merge_key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _go_eq(left, right)
    for side in (left, right):
        if not isinstance(side, dict):
            raise _SmpError(_bad_arg_type(_MAP_T, side))
    for side in (left, right):
        if merge_key not in side:
            raise _SmpError(_no_merge_key(side, merge_key))
    return _go_eq(left[merge_key], right[merge_key])


# -- lists --------------------------------------------------------------------------------------


def _merge_list_field(original: list, patch: list, items: "Node | None", strategy: str,
                      merge_key: str, delete_list: bool) -> tuple[list, list]:
    """mergeSliceHandler: deletion lists and merge lists merge; other lists are replaced.

    Returns the new list and the live list as upstream's caller sees it afterwards (see
    _GoSlice)."""
    if strategy == "merge" or delete_list:
        return _merge_list(original, patch, items, merge_key, delete_list)
    return _strip(patch), original


def _merge_list(original: list, patch: list, items: "Node | None", merge_key: str,
                delete_list: bool) -> tuple[list, list]:
    """mergeSlice: union of primitives, or element-wise merge of maps by their merge key."""
    if not original and not patch:
        return original, original
    kind = _element_type(original, patch)
    live = original
    if kind is not dict:
        if delete_list:
            return _delete_from(original, patch), live
        merged = _dedupe(original + patch)
    else:
        if not merge_key:
            raise _SmpError("cannot merge lists without merge key for struct")
        backing = _GoSlice(original)
        original, patch = _apply_list_directives(backing, patch, merge_key)
        merged = _merge_by_key(original, patch, items, merge_key, backing)
        live = backing.array
    if merge_key:
        in_patch, server_only = _partition_maps(merged, patch, merge_key)
    else:
        in_patch, server_only = _partition_primitives(merged, patch)
    return _normalize_order(in_patch, server_only, patch, original, merge_key, kind), live


class _GoSlice:
    """The array behind a Go slice, as upstream's in-place deletes and appends leave it.

    Upstream deletes list elements with `append(s[:i], s[i+1:]...)` and then appends new
    elements to the same slice, writing through the caller's array: `$setElementOrder`
    then orders server-only elements against that rewritten live list. Its own tests
    expect the outcome, so we reproduce it.
    """

    def __init__(self, values: list):
        self.array = list(values)
        self.length = len(values)

    def values(self) -> list:
        return self.array[:self.length]

    def delete(self, i: int) -> None:
        self.array[i:self.length - 1] = self.array[i + 1:self.length]
        self.length -= 1

    def append(self, value: Any) -> None:
        # Past the caller's length, writes land where the caller does not look.
        if self.length < len(self.array):
            self.array[self.length] = value
        self.length += 1


def _apply_list_directives(backing: _GoSlice, patch: list, merge_key: str) -> tuple[list, list]:
    """mergeSliceWithSpecialElements: act on `$patch` elements; returns the list to merge
    into and the patch elements left to merge."""
    rest: list = []
    replace = False
    for element in patch:
        if _PATCH not in element:
            rest.append(element)
            continue
        directive = element[_PATCH]
        if directive == "delete":
            if merge_key not in element:
                raise _SmpError(_no_merge_key(element, merge_key))
            _delete_matching(backing, merge_key, element[merge_key])
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _SmpError("merging lists cannot yet be specified in the patch")
        else:
            raise _SmpError(_bad_patch_type(directive, element))
    if replace:
        return [_strip(e) for e in rest], []
    return backing.values(), rest


def _delete_matching(backing: _GoSlice, merge_key: str, value: Any) -> None:
    """`$patch: delete` removes every element with that merge key value."""
    while (i := _find_by_key(backing.values(), merge_key, value)) >= 0:
        backing.delete(i)


def _merge_by_key(original: list, patch: list, items: "Node | None", merge_key: str,
                  backing: _GoSlice) -> list:
    """mergeSliceWithoutSpecialElements: merge matching elements, append new ones."""
    merged = list(original)
    for element in patch:
        if merge_key not in element:
            raise _SmpError(_no_merge_key(element, merge_key))
        index = _find_by_key(merged, merge_key, element[merge_key])
        if index < 0:
            merged.append(_strip(element))
            backing.append(element)
        else:
            merged[index] = _merge_map(merged[index], element, items)
    return merged


def _find_by_key(elements: list, merge_key: str, value: Any) -> int:
    for i, element in enumerate(elements):
        if not isinstance(element, dict):
            raise _SmpError(f"value for key {i} is not a map")
        if merge_key in element and _go_eq(element[merge_key], value):
            return i
    return -1


def _delete_from(current: list, to_delete: list) -> list:
    doomed = {_hash_key(v) for v in to_delete}
    return [v for v in current if _hash_key(v) not in doomed]


def _dedupe(values: list) -> list:
    seen: set = set()
    out = []
    for v in values:
        key = _hash_key(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _partition_primitives(values: list, by: list) -> tuple[list, list]:
    wanted = {_hash_key(v) for v in by}
    inside = [v for v in values if _hash_key(v) in wanted]
    outside = [v for v in values if _hash_key(v) not in wanted]
    return inside, outside


def _partition_maps(values: list, by: list, merge_key: str) -> tuple[list, list]:
    inside, outside = [], []
    for v in values:
        if not isinstance(v, dict):
            raise _SmpError(_bad_arg_type(_MAP_T, v))
        if merge_key not in v:
            raise _SmpError(_no_merge_key(v, merge_key))
        (inside if _find_by_key(by, merge_key, v[merge_key]) >= 0 else outside).append(v)
    return inside, outside


def _element_type(*lists: list) -> type:
    """sliceElementType: the one JSON type all elements share (lists of lists refused)."""
    found: type | None = None
    for values in lists:
        for v in values:
            if found is None:
                if v is None:
                    # reflect.TypeOf(nil).Kind() panics upstream.
                    raise _SmpError("runtime error: invalid memory address or nil pointer "
                                    "dereference")
                if isinstance(v, list):
                    raise _SmpError("lists of lists are not supported", 422)
                found = type(v)
            elif type(v) is not found:
                raise _SmpError("list element types are not identical: " + _go_v(list(lists)))
    if found is None:
        raise _SmpError("no elements in any of the given slices")
    return found


# -- ordering -----------------------------------------------------------------------------------


def _normalize_order(in_patch: list, server_only: list, patch_order: list, server_order: list,
                     merge_key: str, kind: type) -> list:
    """normalizeElementOrder: patch items in patch order, server-only items in live order,
    interleaved by the live order where both are known."""
    in_patch = _sort_by(in_patch, patch_order, merge_key, kind)
    server_only = _sort_by(server_only, server_order, merge_key, kind)
    return _merge_sorted(server_only, in_patch, server_order, merge_key, kind)


def _sort_by(values: list, order: list, merge_key: str, kind: type) -> list:
    """normalizeSliceOrder: stable sort by position in `order`; deletions go last."""
    deletions: list = []
    if kind is dict:
        for v in (*values, *order):
            if not isinstance(v, dict):
                raise _SmpError(_bad_arg_type(_MAP_T, v))
            if merge_key not in v:
                raise _SmpError(_no_merge_key(v, merge_key))
        values, deletions = _split_deletions(values)

    def less(a: Any, b: Any) -> bool:
        ia = _index(order, a, merge_key, kind)
        if ia >= 0:
            ib = _index(order, b, merge_key, kind)
            if ib >= 0:
                return ia < ib
        return True  # upstream's comparator; only Go's own sort gives the same result

    return _go_stable_sort(values, less) + deletions


def _split_deletions(values: list) -> tuple[list, list]:
    keep, deletions = [], []
    for v in values:
        if not isinstance(v, dict):
            raise _SmpError(_bad_arg_type(_MAP_T, v))
        (deletions if v.get(_PATCH) == "delete" else keep).append(v)
    return keep, deletions


def _merge_sorted(left: list, right: list, server_order: list, merge_key: str,
                  kind: type) -> list:
    """mergeSortedSlice: interleave two sorted lists, `left` first only when the live order
    says so."""
    out = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key, kind)
            ri = _index(server_order, right[j], merge_key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _index(values: list, item: Any, merge_key: str, kind: type) -> int:
    def key(v: Any) -> Any:
        if kind is dict:
            return v.get(merge_key) if isinstance(v, dict) else None
        return v

    wanted = key(item)
    for i, v in enumerate(values):
        if _go_eq(key(v), wanted):
            return i
    return -1


def _go_stable_sort(values: list, less: Callable[[Any, Any], bool]) -> list:
    """Go's sort.SliceStable (insertion sort blocks + SymMerge).

    Upstream's comparator is not a strict ordering when an item is missing from the order
    list, so the result depends on the algorithm; reproducing it keeps results identical.
    """
    data = list(values)
    n = len(data)

    def swap(i: int, j: int) -> None:
        data[i], data[j] = data[j], data[i]

    def lt(i: int, j: int) -> bool:
        return less(data[i], data[j])

    def insertion_sort(a: int, b: int) -> None:
        for i in range(a + 1, b):
            j = i
            while j > a and lt(j, j - 1):
                swap(j, j - 1)
                j -= 1

    def swap_range(a: int, b: int, count: int) -> None:
        for i in range(count):
            swap(a + i, b + i)

    def rotate(a: int, m: int, b: int) -> None:
        i, j = m - a, b - m
        while i != j:
            if i > j:
                swap_range(m - i, m, j)
                i -= j
            else:
                swap_range(m - i, m + j - i, i)
                j -= i
        swap_range(m - i, m, i)

    def sym_merge(a: int, m: int, b: int) -> None:
        if m - a == 1:
            i, j = m, b
            while i < j:
                h = (i + j) // 2
                if lt(h, a):
                    i = h + 1
                else:
                    j = h
            for k in range(a, i - 1):
                swap(k, k + 1)
            return
        if b - m == 1:
            i, j = a, m
            while i < j:
                h = (i + j) // 2
                if not lt(m, h):
                    i = h + 1
                else:
                    j = h
            for k in range(m, i, -1):
                swap(k, k - 1)
            return
        mid = (a + b) // 2
        total = mid + m
        if m > mid:
            start, r = total - b, mid
        else:
            start, r = a, m
        p = total - 1
        while start < r:
            c = (start + r) // 2
            if not lt(p - c, c):
                start = c + 1
            else:
                r = c
        end = total - start
        if start < m < end:
            rotate(start, m, end)
        if a < start < mid:
            sym_merge(a, start, mid)
        if mid < end < b:
            sym_merge(mid, end, b)

    block = 20
    a, b = 0, block
    while b <= n:
        insertion_sort(a, b)
        a, b = b, b + block
    insertion_sort(a, n)
    while block < n:
        a, b = 0, 2 * block
        while b <= n:
            sym_merge(a, a + block, b)
            a, b = b, b + 2 * block
        if a + block < n:
            sym_merge(a, a + block, n)
        block *= 2
    return data


# ---------------------------------------------------------------------------------------------
# Go semantics and Go-formatted messages
# ---------------------------------------------------------------------------------------------


def _go_eq(a: Any, b: Any) -> bool:
    """`==` on two interface{} values: same dynamic type and value (1 != 1.0 != true)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (dict, list)):
        raise _SmpError(f"runtime error: comparing uncomparable type {_go_type(a)}")
    return a == b


def _hash_key(v: Any) -> tuple:
    """A key for a Go map[interface{}]: typed, and refusing maps and slices as Go panics."""
    if isinstance(v, (dict, list)):
        raise _SmpError(f"runtime error: hash of unhashable type {_go_type(v)}")
    return (type(v), v)


def _no_merge_key(m: dict, merge_key: str) -> str:
    return f"map: {_go_v(m)} does not contain declared merge key: {merge_key}"


def _bad_arg_type(expected: str, actual: Any) -> str:
    actual_type = "%!s(<nil>)" if actual is None else _go_type(actual)
    return f"expected a {expected}, but received a {actual_type}"


def _bad_patch_type(directive: Any, m: dict) -> str:
    return f"unknown patch type: {_go_s(directive)} in map: {_go_v(m)}"


def _json_kind(v: Any) -> str:
    """The JSON kind encoding/json names in an UnmarshalTypeError."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def _cannot_unmarshal(v: Any, go_type: str) -> str:
    return f"json: cannot unmarshal {_json_kind(v)} into Go value of type {go_type}"


def _go_type(v: Any) -> str:
    """reflect.TypeOf(v).String() for a decoded JSON value."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return _LIST_T
    if isinstance(v, dict):
        return _MAP_T
    return "<nil>"


def _go_s(v: Any) -> str:
    """fmt %s of an interface{} value."""
    if isinstance(v, str):
        return v
    if v is None:
        return "%!s(<nil>)"
    if isinstance(v, (dict, list)):
        return _go_v(v)
    return f"%!s({_go_type(v)}={_go_v(v)})"


def _go_v(v: Any) -> str:
    """fmt %v of a decoded JSON value: map[k:v ...] with sorted keys, [a b], <nil>."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_v(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go_v(x) for x in v) + "]"
    return str(v)


def _go_float(f: float) -> str:
    """%v of a float64 (%g, shortest digits): exponent form below 1e-4 and from 1e6."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign, digits, exponent = Decimal(repr(f)).normalize().as_tuple()
    text = "".join(map(str, digits))
    exp10 = len(text) + int(exponent) - 1
    prefix = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'+' if exp10 >= 0 else '-'}{abs(exp10):02d}"
    return prefix + format(Decimal(repr(abs(f))).normalize(), "f")


def _copy(value: Any) -> Any:
    """Deep copy of decoded JSON (much faster than copy.deepcopy for dicts and lists)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return copy.deepcopy(value)
