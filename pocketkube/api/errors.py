"""Kubernetes errors as values: field errors and the `Status` bodies clients decode.

Every failure a client can cause ends up here, so that kubectl and client-go see the same
reasons, codes and messages a real apiserver gives (apimachinery `api/errors/errors.go` and
`util/validation/field/errors.go`). Nothing in this module knows HTTP; the server turns an
`ApiError` into a response with `status.code`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Sentinel: the error carries no value to print (field.OmitValueType upstream).
OMIT = object()

_TYPE_TEXT = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
# Types whose message never shows the offending value.
_NO_VALUE = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}


def _go_repr(value: Any) -> str:
    """Print a value the way field.Error does with %v / %q."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, (list, tuple)):
        return "[]" + type(value).__name__ + "{" + ", ".join(_go_repr(v) for v in value) + "}"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_repr(v)}" for k, v in value.items()) + "]"
    return str(value)


def go_quote(s: str) -> str:
    """Go's %q for the strings we print (ASCII escapes are enough for messages)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


@dataclass
class FieldError:
    """One field.Error: a type, the field path, the bad value and a detail."""

    type: str
    field: str
    value: Any = OMIT
    detail: str = ""

    def body(self) -> str:
        text = _TYPE_TEXT.get(self.type, self.type)
        if self.type not in _NO_VALUE and self.value is not OMIT:
            text = f"{text}: {_go_repr(self.value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict:
        return {"reason": self.type, "message": self.body(), "field": self.field}


# Constructors named as upstream's field.Required(...), field.Invalid(...), ...
def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, OMIT, detail)


def invalid(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(go_quote(s) for s in supported) if supported else ""
    return FieldError("FieldValueNotSupported", path, value, detail)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, OMIT, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, value)


def not_found(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueNotFound", path, value)


def too_long(path: str, max_len: int) -> FieldError:
    return FieldError("FieldValueTooLong", path, OMIT, f"may not be more than {max_len} bytes")


def too_many(path: str, actual: int, max_items: int) -> FieldError:
    return FieldError("FieldValueTooMany", path, actual, f"must have at most {max_items} items")


def aggregate(errors: list[FieldError]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message, or [a, b] for several."""
    msgs: list[str] = []
    for e in errors:
        s = str(e)
        if s not in msgs:
            msgs.append(s)
    if len(msgs) == 1:
        return msgs[0]
    return "[" + ", ".join(msgs) + "]"


@dataclass
class ApiError(Exception):
    """A failure with the Status body that describes it."""

    code: int
    reason: str
    message: str
    details: dict | None = None
    headers: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified_resource(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def qualified_kind(kind: str, group: str) -> str:
    return f"{kind}.{group}" if group else kind


def _details(name: str, group: str, kind: str) -> dict:
    d: dict = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


def not_found_error(resource: str, group: str, name: str) -> ApiError:
    qr = qualified_resource(resource, group)
    msg = f"{qr} {go_quote(name)} not found" if name else f"{qr} not found"
    return ApiError(404, "NotFound", msg, _details(name, group, resource))


def already_exists(resource: str, group: str, name: str) -> ApiError:
    qr = qualified_resource(resource, group)
    return ApiError(409, "AlreadyExists", f"{qr} {go_quote(name)} already exists",
                    _details(name, group, resource))


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    qr = qualified_resource(resource, group)
    return ApiError(409, "Conflict", f"Operation cannot be fulfilled on {qr} {go_quote(name)}: {why}",
                    _details(name, group, resource))


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid_error(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    details = _details(name, group, kind)
    details["causes"] = [e.cause() for e in errors]
    msg = f"{qualified_kind(kind, group)} {go_quote(name)} is invalid: {aggregate(errors)}"
    return ApiError(422, "Invalid", msg, details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", message)


def not_acceptable(message: str) -> ApiError:
    return ApiError(406, "NotAcceptable", message)


def too_large(message: str = "the server has received too large of a request body") -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", message)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden_error(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def internal_error(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}",
                    {"causes": [{"message": message}]})
