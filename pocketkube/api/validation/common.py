"""Small building blocks shared by every validator: field paths, value printing, common checks.

Upstream's validators are written against `field.Path` and `field.ErrorList`; here paths are
plain strings built with the same spelling (`a.b[0][key]`), and the bad values are printed
the way apimachinery 1.34+ prints them: scalars with %v / %q, anything composite as compact
JSON (`{"app":"web"}`). Keeping these rules in one place keeps hundreds of messages exact.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from pocketkube.api.errors import FieldError, go_quote, invalid

NEGATIVE = "must be greater than or equal to 0"
IMMUTABLE = "field is immutable"
MAX_INT32 = (1 << 31) - 1


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


def go_json(value: Any) -> str:
    """json.Marshal as Go does it: compact, and <, > and & escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if "<" in text or ">" in text or "&" in text:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


class JSONValue:
    """A composite bad value; FieldError prints it through str(), i.e. as Go's JSON."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return go_json(self.value)

    def __repr__(self) -> str:
        return f"JSONValue({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JSONValue) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]


class Raw:
    """A bad value printed verbatim (Go's %#v of a typed value, e.g. `[]string{"a"}`)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def bad(value: Any) -> Any:
    """The value to store in a FieldError: scalars as they are, composites wrapped as JSON."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return JSONValue(value)


def go_string_slice(values: Iterable[str]) -> str:
    """%#v of a []string."""
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def as_int(v: Any) -> int | None:
    """An int field's value, or None when absent or not an integer (the decoder's business)."""
    if isinstance(v, bool) or not isinstance(v, int):
        return None
    return v


def nonneg(value: Any, path: str) -> list[FieldError]:
    """ValidateNonnegativeField."""
    v = as_int(value)
    if v is not None and v < 0:
        return [invalid(path, v, NEGATIVE)]
    return []


def immutable(new: Any, old: Any, path: str) -> list[FieldError]:
    """ValidateImmutableField: Semantic.DeepEqual, with absent and null treated alike."""
    if deep_equal(new, old):
        return []
    return [invalid(path, bad(new), IMMUTABLE)]


def _empty(v: Any) -> bool:
    # Go cannot tell an empty map, list or string from a missing one once decoded.
    return v is None or v == {} or v == [] or v == ""


def strip_empty(v: Any) -> Any:
    """A copy without null / empty members, so that omitted and empty compare equal.

    Only used on the rare paths (updates of immutable specs) where a deep compare decides.
    """
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            x = strip_empty(x)
            if not _empty(x):
                out[k] = x
        return out
    if isinstance(v, list):
        return [strip_empty(x) for x in v]
    return v


def deep_equal(a: Any, b: Any) -> bool:
    """apiequality.Semantic.DeepEqual over JSON: unset, null and empty are the same."""
    if a == b:
        return True
    return strip_empty(a) == strip_empty(b)


def dict_of(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def list_of(v: Any) -> list:
    return v if isinstance(v, list) else []


def str_of(v: Any) -> str:
    return v if isinstance(v, str) else ""
