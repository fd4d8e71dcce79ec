"""Strict decoding of request bodies against the Kubernetes type schemas.

kube-apiserver decodes every written object into a Go struct, and that decode is part of the
API: it rejects values of the wrong JSON type (400 `... cannot be handled as a Deployment:
json: cannot unmarshal ...`), reports unknown and duplicate fields for `fieldValidation=Strict`
(400) or `Warn` (`Warning` headers), and silently loses unknown fields, because the struct has
nowhere to keep them. We keep objects as plain dicts, so this module replays that decode: one
walk of the object against Kubernetes' own schemas (compiled once per definition), with the
error texts of `sigs.k8s.io/json`, `encoding/json`, `sigs.k8s.io/yaml` and the custom
unmarshalers (Quantity, IntOrString, Time, []byte) that the structs use.

`check_object` prunes the object IN PLACE (unknown fields and `null` members are removed, as
the Go decode would lose them) and returns that same dict: copying every write would cost more
than the whole check, and the callers own the freshly decoded body anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

import orjson
import yaml

from .errors import ApiError, bad_request, go_quote
from .quantity import parse as _parse_quantity
from .schema import FREE_FORM, Node, definitions, json_types, ref_name

__all__ = ["Decoded", "YamlDuplicate", "decode_body", "check_object", "strict_error",
           "strict_message", "warnings", "json_syntax_error"]


@dataclass
class Decoded:
    """The outcome of a successful decode.

    `obj` is the checked object itself, pruned in place. `unknown` and `duplicates` are field
    paths ("spec.foo", "spec.containers[0].bogus") in document order, at most 100 in all as
    upstream keeps. Duplicates found in a YAML body are `YamlDuplicate`s, because upstream
    words those differently (go-yaml's `line N: key "x" already set in map`).
    """

    obj: dict
    unknown: list[str]
    duplicates: list[str]


class YamlDuplicate(str):
    """A duplicate key of a YAML body: the path as text, plus go-yaml's own wording."""

    line: int
    key: object

    def __new__(cls, path: str, line: int, key: object) -> "YamlDuplicate":
        self = super().__new__(cls, path)
        self.line = line
        self.key = key
        return self

    @property
    def yaml_text(self) -> str:
        return f"line {self.line}: key {_go_sharp_v(self.key)} already set in map"


_MAX_STRICT_ERRORS = 100  # sigs.k8s.io/json stops collecting after this many


# ---- compiled schema -----------------------------------------------------------------------------

# Kinds of compiled types. The order matters: the walk accepts kinds below _CHECKED as soon as
# the Python type matches, checks the values of _CHECKED.._ANY, and descends into the rest.
_STR, _BOOL, _NUM, _INTSTR = 0, 1, 2, 3
_CHECKED = 4
_INT, _BYTES, _TIME, _QUANTITY = 4, 5, 6, 7
_ANY = 8
_STRUCT, _LIST, _MAP = 9, 10, 11


class _Never:
    """A Python type no JSON value has: forces free-form fields onto the slow path."""


class _T:
    """One compiled schema type: what the Go decoder would do with a value of it."""

    __slots__ = ("kind", "py", "go", "struct", "fields", "elem", "lo", "hi", "micro")

    def __init__(self) -> None:
        self.kind = _ANY
        self.py: type = _Never
        self.go = "interface {}"   # reflect.Type.String() of the Go type, for messages
        self.struct = ""           # reflect.Type.Name() of a struct
        self.fields: dict[str, _T] = {}
        self.elem: _T | None = None
        self.lo = 0
        self.hi = 0
        self.micro = False


_INT_RANGES = {"int32": (-(1 << 31), (1 << 31) - 1), "int64": (-(1 << 63), (1 << 63) - 1)}
# Definitions whose Go types have their own UnmarshalJSON.
_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INTSTR_DEF = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_TIME_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
_MICROTIME_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
_OBJECT_META_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

_compiled: dict[str, _T] = {}
_roots: dict[str, _T] = {}
_inline: dict[int, _T] = {}


def _scalar(kind: int, py: type, go: str) -> _T:
    t = _T()
    t.kind, t.py, t.go = kind, py, go
    return t


def _compile_ref(name: str) -> _T:
    t = _compiled.get(name)
    if t is not None:
        return t
    t = _T()
    # Registered before filling: definitions are recursive (JSONSchemaProps).
    _compiled[name] = t
    schema = definitions().get(name) or {}
    if name == _QUANTITY_DEF:
        t.kind, t.py, t.go = _QUANTITY, str, "resource.Quantity"
    elif name == _INTSTR_DEF:
        t.kind, t.py, t.go = _INTSTR, str, "intstr.IntOrString"
    elif name in (_TIME_DEF, _MICROTIME_DEF):
        t.kind, t.py, t.go = _TIME, str, "v1." + name.rsplit(".", 1)[1]
        t.micro = name == _MICROTIME_DEF
    elif name in FREE_FORM or not (schema.get("type") or schema.get("oneOf")
                                   or schema.get("properties")):
        pass  # stays _ANY: RawExtension, FieldsV1, JSON, JSONSchemaPropsOr*
    else:
        _fill(t, schema, name)
    return t


def _compile_field(schema: dict, owner: str) -> _T:
    ref = ref_name(schema)
    if ref is not None:
        return _compile_ref(ref)
    t = _T()
    _fill(t, schema, None, owner)
    return t


def _fill(t: _T, schema: dict, name: str | None, owner: str = "") -> None:
    types = json_types(schema)
    props = schema.get("properties")
    addl = schema.get("additionalProperties")
    if props is not None or (name is not None and "object" in types and not isinstance(addl, dict)):
        # A struct (possibly with no fields at all: every key of it is then unknown).
        parts = (name or "").split(".")
        t.kind, t.py = _STRUCT, dict
        t.struct = parts[-1]
        t.go = f"{parts[-2]}.{parts[-1]}" if len(parts) > 1 else parts[-1]
        t.fields = {k: _compile_field(v, name or owner) for k, v in (props or {}).items()}
    elif "object" in types and isinstance(addl, dict):
        t.kind, t.py = _MAP, dict
        t.elem = _compile_field(addl, owner)
        if t.elem.kind == _QUANTITY:
            # Named map types the schema cannot tell us about; these two cover every map of
            # quantities in the built-in APIs.
            if owner.startswith("io.k8s.api.resource."):
                t.go = f"map[{owner.split('.')[-2]}.QualifiedName]resource.Quantity"
            else:
                t.go = "v1.ResourceList"
        else:
            t.go = "map[string]" + t.elem.go
    elif "object" in types:
        pass  # inline free-form object
    elif "array" in types:
        items = schema.get("items")
        t.kind, t.py = _LIST, list
        t.elem = _compile_field(items, owner) if isinstance(items, dict) else _T()
        t.go = "[]" + t.elem.go
    elif "string" in types:
        fmt = schema.get("format")
        if fmt == "byte":
            t.kind, t.py, t.go = _BYTES, str, "[]uint8"
        elif fmt == "date-time":
            t.kind, t.py, t.go = _TIME, str, "v1.Time"
        else:
            t.kind, t.py, t.go = _STR, str, "string"
    elif "integer" in types:
        fmt = schema.get("format") or "int"
        t.kind, t.py, t.go = _INT, int, fmt
        t.lo, t.hi = _INT_RANGES.get(fmt, _INT_RANGES["int64"])
    elif "number" in types:
        t.kind, t.py, t.go = _NUM, float, "float32" if schema.get("format") == "float" else "float64"
    elif "boolean" in types:
        t.kind, t.py, t.go = _BOOL, bool, "bool"


def _root_type(node: Node) -> _T:
    """The compiled type of a kind, with the fields every kind's decode knows."""
    name = node.name
    if name is None:
        key = id(node.schema)
        t = _inline.get(key)
        if t is None:
            t = _T()
            _fill(t, node.schema, None)
            _inline[key] = t
        return t
    t = _roots.get(name)
    if t is not None:
        return t
    t = _compile_ref(name)
    if t.kind == _STRUCT and not all(k in t.fields for k in ("apiVersion", "kind", "metadata")):
        # TypeMeta is inlined into every kind; ObjectMeta (or ListMeta) nearly so.
        patched = _T()
        for slot in _T.__slots__:
            setattr(patched, slot, getattr(t, slot))
        patched.fields = dict(t.fields)
        patched.fields.setdefault("apiVersion", _scalar(_STR, str, "string"))
        patched.fields.setdefault("kind", _scalar(_STR, str, "string"))
        patched.fields.setdefault("metadata", _compile_ref(_OBJECT_META_DEF))
        t = patched
    _roots[name] = t
    return t


# ---- the walk ------------------------------------------------------------------------------------

class _Fatal(Exception):
    """An error a custom UnmarshalJSON returned: Go's decoder stops right there."""


_ZERO_VALUES = {_STR: "", _BOOL: False, _NUM: 0, _INT: 0, _INTSTR: 0, _QUANTITY: "0"}


def _zero(t: _T) -> object:
    """What a Go decoder leaves in a map value or list item that was `null`."""
    if t.kind == _STRUCT:
        return {}
    return _ZERO_VALUES.get(t.kind)


def _json_type_name(v: object, numeric_literal: bool) -> str:
    """The `Value` of Go's UnmarshalTypeError for a decoded JSON value."""
    tv = type(v)
    if tv is str:
        return "string"
    if tv is bool:
        return "bool"
    if tv is int or tv is float:
        return f"number {_number_literal(v)}" if numeric_literal else "number"
    if tv is dict:
        return "object"
    if tv is list:
        return "array"
    return "null"


def _number_literal(v: object) -> str:
    # The JSON text is gone by now; Python's spelling matches it for the usual literals.
    return repr(v) if type(v) is float else str(v)


class _Walker:
    """One decode: walks an object against a compiled type, pruning it as Go would."""

    __slots__ = ("stack", "unknown", "seen", "error")

    def __init__(self) -> None:
        # Frames (key or list index, the struct _T when the key is a struct field else None).
        self.stack: list[tuple[object, _T | None]] = []
        self.unknown: list[str] = []
        self.seen: set[str] = set()
        self.error: str | None = None  # the first error Go's decoder saved

    # Paths and error contexts are built only when something is wrong.

    def path(self, key: str | None) -> str:
        """The strict-decoding path: JSON names joined by '.', list indexes as [i]."""
        out: list[str] = []
        for seg, _ in self.stack:
            if type(seg) is int:
                out.append(f"[{seg}]")
            else:
                out.append(f".{seg}" if out else seg)
        if key is not None:
            out.append(f".{key}" if out else key)
        return "".join(out)

    def go_field(self, key: str | None, t: _T | None) -> str:
        """`<Struct>.<field path>` as encoding/json's errorContext prints it.

        Only struct fields count (not list indexes or map keys), and the struct is the
        innermost one whose field led here.
        """
        names = [seg for seg, st in self.stack if st is not None]
        struct = ""
        if key is not None and t is not None:
            names.append(key)
            struct = t.struct
        else:
            for _, st in reversed(self.stack):
                if st is not None:
                    struct = st.struct
                    break
        return f"{struct}.{'.'.join(names)}"

    def type_error(self, v: object, go: str, key: str | None, t: _T | None, numeric: bool) -> str:
        what = _json_type_name(v, numeric)
        return (f"json: cannot unmarshal {what} into Go struct field "
                f"{self.go_field(key, t)} of type {go}")

    def save(self, message: str) -> None:
        if self.error is None:
            self.error = message

    def add_unknown(self, key: str) -> None:
        if len(self.unknown) >= _MAX_STRICT_ERRORS:
            return
        p = self.path(key)
        if p not in self.seen:
            self.seen.add(p)
            self.unknown.append(p)

    # The hot loops. Each accepts the common case with one dict lookup and one type test.

    def struct(self, obj: dict, t: _T) -> None:
        fields = t.fields
        stack = self.stack
        drop = None
        for k, v in obj.items():
            ft = fields.get(k)
            if ft is None:
                self.add_unknown(k)
                if drop is None:
                    drop = [k]
                else:
                    drop.append(k)
            elif type(v) is ft.py:
                kind = ft.kind
                if kind < _CHECKED:
                    continue
                if kind >= _STRUCT:
                    stack.append((k, t))
                    if kind == _STRUCT:
                        self.struct(v, ft)
                    elif kind == _LIST:
                        self.list(v, ft.elem)
                    else:
                        self.map(v, ft.elem)
                    stack.pop()
                else:
                    self.value(v, ft, k, t)
            elif v is None:
                # null into a pointer (or a zero value Go would omit): the field is unset.
                if drop is None:
                    drop = [k]
                else:
                    drop.append(k)
            else:
                self.other(v, ft, k, t)
        if drop is not None:
            for k in drop:
                del obj[k]

    def list(self, lst: list, et: _T) -> None:
        kind, py = et.kind, et.py
        if kind < _CHECKED:
            for i, v in enumerate(lst):
                if type(v) is not py:
                    self.item(lst, i, v, et)
            return
        stack = self.stack
        for i, v in enumerate(lst):
            if type(v) is py:
                if kind >= _STRUCT:
                    stack.append((i, None))
                    if kind == _STRUCT:
                        self.struct(v, et)
                    elif kind == _LIST:
                        self.list(v, et.elem)
                    else:
                        self.map(v, et.elem)
                    stack.pop()
                else:
                    stack.append((i, None))
                    self.value(v, et, None, None)
                    stack.pop()
            else:
                self.item(lst, i, v, et)

    def map(self, m: dict, et: _T) -> None:
        kind, py = et.kind, et.py
        if kind < _CHECKED:
            for k, v in m.items():
                if type(v) is not py:
                    self.item(m, k, v, et)
            return
        stack = self.stack
        for k, v in m.items():
            if type(v) is py:
                stack.append((k, None))
                if kind == _STRUCT:
                    self.struct(v, et)
                elif kind == _LIST:
                    self.list(v, et.elem)
                elif kind == _MAP:
                    self.map(v, et.elem)
                else:
                    self.value(v, et, None, None)
                stack.pop()
            else:
                self.item(m, k, v, et)

    # The slow paths.

    def item(self, container: list | dict, key: int | str, v: object, et: _T) -> None:
        """A list item or map value that is not of the expected Python type."""
        if v is None:
            if et.kind != _ANY:
                container[key] = _zero(et)  # type: ignore[index]
            return
        self.stack.append((key, None))
        try:
            self.other(v, et, None, None)
        finally:
            self.stack.pop()

    def value(self, v: object, ft: _T, key: str | None, t: _T | None) -> None:
        """Values whose Python type is right but whose content the Go type also checks."""
        kind = ft.kind
        if kind == _INT:
            if not ft.lo <= v <= ft.hi:  # type: ignore[operator]
                self.save(self.type_error(v, ft.go, key, t, True))
        elif kind == _QUANTITY:
            _check_quantity(v.strip())  # type: ignore[union-attr]
        elif kind == _TIME:
            err = _time_error(v, ft.micro)  # type: ignore[arg-type]
            if err is not None:
                raise _Fatal(err)
        elif kind == _BYTES:
            if _B64.fullmatch(v) is None:  # type: ignore[arg-type]
                off = _base64_error_offset(v)  # type: ignore[arg-type]
                if off is not None:
                    self.save(f"illegal base64 data at input byte {off}")

    def other(self, v: object, ft: _T, key: str | None, t: _T | None) -> None:
        """A value whose Python type is not the expected one (never None here)."""
        kind = ft.kind
        tv = type(v)
        if kind == _ANY:
            return
        if kind == _NUM:
            if tv is int:
                return
        elif kind == _INTSTR:
            # IntOrString.UnmarshalJSON: anything but a string goes to json.Unmarshal into
            # an int32, whose error comes back with this field's context.
            if tv is int and -(1 << 31) <= v < (1 << 31):  # type: ignore[operator]
                return
            raise _Fatal(self.type_error(v, "int32", key, t, tv is int or tv is float))
        elif kind == _QUANTITY:
            if tv is int or tv is float:
                _check_quantity(_number_literal(v))
                return
            # true, false, {...} and [...] all fail the quantity scanner the same way.
            _check_quantity("x")
        elif kind == _TIME:
            # Time.UnmarshalJSON unmarshals into a string first.
            raise _Fatal(self.type_error(v, "string", key, t, False))
        self.save(self.type_error(v, ft.go, key, t, kind == _INT or kind == _NUM))


def _check_quantity(s: str) -> None:
    try:
        _parse_quantity(s)
    except ValueError as e:
        raise _Fatal(str(e)) from None


# ---- []byte: encoding/base64 ----------------------------------------------------------------------

_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _base64_error_offset(s: str) -> int | None:
    """base64.StdEncoding.Decode's CorruptInputError offset, or None if `s` decodes.

    Go skips CR and LF anywhere, so the fast regex can fail on input Go accepts.
    """
    src = s.encode("utf-8")
    n = len(src)
    si = 0
    while si < n:
        j = 0
        while j < 4:
            if si == n:
                return si - j if j else None
            c = src[si]
            si += 1
            if c in _B64_ALPHABET:
                j += 1
                continue
            if c in (10, 13):
                continue
            if c != 61:  # '='
                return si - 1
            if j < 2:
                return si - 1
            if j == 2:
                while si < n and src[si] in (10, 13):
                    si += 1
                if si == n:
                    return n
                if src[si] != 61:
                    return si - 1
                si += 1
            while si < n and src[si] in (10, 13):
                si += 1
            return si if si < n else None
    return None


# ---- metav1.Time / MicroTime: time.Parse ----------------------------------------------------------

_RFC3339 = "2006-01-02T15:04:05Z07:00"
_RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"
_TIME_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:[.,]\d+)?(?:Z|[+-]\d\d:\d\d)")
_MICRO_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)[.,]\d{6}(?:Z|[+-]\d\d:\d\d)")
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in(month: int, year: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS[month - 1]


def _time_error(value: str, micro: bool) -> str | None:
    """time.Parse(RFC3339[Micro], value)'s error text, or None when it parses."""
    m = (_MICRO_RE if micro else _TIME_RE).fullmatch(value)
    if m is not None:
        y, mo, d, h, mi, s = (int(x) for x in m.groups())
        if 1 <= mo <= 12 and 1 <= d <= _days_in(mo, y) and h < 24 and mi < 60 and s < 60 \
                and (value[-1] == "Z" or (int(value[-5:-3]) <= 24 and int(value[-2:]) <= 60)):
            return None
    return _go_time_parse(value, micro)


def _time_quote(s: str) -> str:
    """The time package's quote(): ASCII kept, anything else as \\x bytes."""
    out = ['"']
    for ch in s:
        if ord(ch) >= 0x80 or ch < " ":
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
        else:
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
    out.append('"')
    return "".join(out)


def _isdigit(s: str, i: int) -> bool:
    return len(s) > i and "0" <= s[i] <= "9"


def _getnum(s: str, fixed: bool) -> tuple[int, str, bool]:
    if not _isdigit(s, 0):
        return 0, s, False
    if not _isdigit(s, 1):
        if fixed:
            return 0, s, False
        return int(s[0]), s[1:], True
    return int(s[:2]), s[2:], True


def _atoi(s: str) -> int | None:
    neg = s[:1] == "-"
    if s[:1] in ("-", "+"):
        s = s[1:]
    if not s or not all("0" <= c <= "9" for c in s):
        return None
    return -int(s) if neg else int(s)


def _go_time_parse(avalue: str, micro: bool) -> str | None:
    """A port of the time package's parse() for the two layouts metav1 uses."""
    layout = _RFC3339_MICRO if micro else _RFC3339
    chunks = [("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05")]
    if micro:
        chunks.append(("", ".000000"))
    chunks += [("", "Z07:00"), ("", "")]

    def cannot(value_elem: str, layout_elem: str) -> str:
        return (f"parsing time {_time_quote(avalue)} as {_time_quote(layout)}: cannot parse "
                f"{_time_quote(value_elem)} as {_time_quote(layout_elem)}")

    value = avalue
    year = month = day = 0
    for prefix, std in chunks:
        for ch in prefix:
            if not value or value[0] != ch:
                return cannot(value, prefix)
            value = value[1:]
        if not std:
            if value:
                return f"parsing time {_time_quote(avalue)}: extra text: {_time_quote(value)}"
            break
        hold = value
        ok = True
        rng = ""
        if std == "2006":
            if len(value) < 4 or not _isdigit(value, 0):
                ok = False
            else:
                y = _atoi(value[:4])
                value = value[4:]
                ok = y is not None
                year = y or 0
        elif std in ("01", "02", "04"):
            n, value, ok = _getnum(value, True)
            if std == "01":
                month = n
                if ok and not 1 <= n <= 12:
                    rng = "month"
            elif std == "02":
                day = n
            elif ok and n >= 60:
                rng = "minute"
        elif std == "15":
            n, value, ok = _getnum(value, False)
            if n >= 24:
                rng = "hour"
        elif std == "05":
            n, value, ok = _getnum(value, True)
            if ok:
                if n >= 60:
                    rng = "second"
                elif not micro and len(value) >= 2 and value[0] in ".," and _isdigit(value, 1):
                    # A fraction the layout does not mention is still accepted after seconds.
                    i = 2
                    while _isdigit(value, i):
                        i += 1
                    value = value[i:]
        elif std == ".000000":
            if len(value) < 7 or value[0] not in ".,":
                ok = False
            else:
                ns = _atoi(value[1:7])
                if ns is None:
                    ok = False
                elif ns < 0:
                    rng = "fractional second"
                value = value[7:]
        elif std == "Z07:00":
            if value[:1] == "Z":
                value = value[1:]
            elif len(value) < 6 or value[3] != ":":
                ok = False
            else:
                sign, hh, mm, value = value[0], value[1:3], value[4:6], value[6:]
                hr, _, ok = _getnum(hh, True)
                mn = 0
                if ok:
                    mn, _, ok = _getnum(mm, True)
                if hr > 24:
                    rng = "time zone offset hour"
                if mn > 60:
                    rng = "time zone offset minute"
                if sign not in "+-":
                    ok = False
        if rng:
            return f"parsing time {_time_quote(avalue)}: {rng} out of range"
        if not ok:
            return cannot(hold, std)
    if day < 1 or day > _days_in(month, year):
        return f"parsing time {_time_quote(avalue)}: day out of range"
    return None


# ---- JSON syntax errors: encoding/json's scanner --------------------------------------------------

(_S_BEGIN_VALUE, _S_BEGIN_VALUE_OR_EMPTY, _S_BEGIN_STRING_OR_EMPTY, _S_BEGIN_STRING, _S_END_VALUE,
 _S_END_TOP, _S_IN_STRING, _S_ESC, _S_U, _S_U1, _S_U12, _S_U123, _S_NEG, _S_1, _S_0, _S_DOT,
 _S_DOT0, _S_E, _S_ESIGN, _S_E0, _S_LIT, _S_ERROR) = range(22)
_P_KEY, _P_VALUE, _P_ARRAY = 0, 1, 2
_SPACE = frozenset(b" \t\r\n")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGIT = frozenset(b"0123456789")
_WS_STATES = frozenset((_S_BEGIN_VALUE, _S_BEGIN_VALUE_OR_EMPTY, _S_BEGIN_STRING_OR_EMPTY,
                        _S_BEGIN_STRING, _S_END_VALUE, _S_END_TOP))
_WS_RUN = re.compile(rb"[ \t\r\n]+")
_STR_RUN = re.compile(rb'[^"\\\x00-\x1f]+')
_MAX_DEPTH = 10000
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}
_GO_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v",
               0x5c: "\\\\"}


def _quote_char(c: int) -> str:
    """encoding/json's quoteChar: a byte as Go prints it in syntax errors."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    if c in _GO_ESCAPES:
        return f"'{_GO_ESCAPES[c]}'"
    ch = chr(c)  # string(byte) in Go is the rune with that value
    if c < 0x20 or c == 0x7f:
        return f"'\\x{c:02x}'"
    if not ch.isprintable():
        return f"'\\u{c:04x}'"
    return f"'{ch}'"


class _GoScanner:
    """encoding/json's scanner, step for step, to name the same byte Go would."""

    def __init__(self) -> None:
        self.state = _S_BEGIN_VALUE
        self.stack: list[int] = []
        self.end_top = False
        self.err: str | None = None
        self.lit = b""
        self.lit_pos = 0

    def fail(self, c: int, context: str) -> None:
        self.state = _S_ERROR
        self.err = f"invalid character {_quote_char(c)} {context}"

    def push(self, c: int, ps: int, state: int) -> None:
        self.stack.append(ps)
        if len(self.stack) > _MAX_DEPTH:
            self.fail(c, "exceeded max depth")
        else:
            self.state = state

    def pop(self) -> None:
        self.stack.pop()
        if not self.stack:
            self.state = _S_END_TOP
            self.end_top = True
        else:
            self.state = _S_END_VALUE

    def begin_value(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == 0x7b:  # {
            self.push(c, _P_KEY, _S_BEGIN_STRING_OR_EMPTY)
        elif c == 0x5b:  # [
            self.push(c, _P_ARRAY, _S_BEGIN_VALUE_OR_EMPTY)
        elif c == 0x22:
            self.state = _S_IN_STRING
        elif c == 0x2d:  # -
            self.state = _S_NEG
        elif c == 0x30:
            self.state = _S_0
        elif 0x31 <= c <= 0x39:
            self.state = _S_1
        elif c in _LITERALS:
            self.state = _S_LIT
            self.lit = _LITERALS[c]
            self.lit_pos = 1
        else:
            self.fail(c, "looking for beginning of value")

    def end_value(self, c: int) -> None:
        if not self.stack:
            self.state = _S_END_TOP
            self.end_top = True
            self.end_top_step(c)
            return
        if c in _SPACE:
            self.state = _S_END_VALUE
            return
        ps = self.stack[-1]
        if ps == _P_KEY:
            if c == 0x3a:  # :
                self.stack[-1] = _P_VALUE
                self.state = _S_BEGIN_VALUE
            else:
                self.fail(c, "after object key")
        elif ps == _P_VALUE:
            if c == 0x2c:  # ,
                self.stack[-1] = _P_KEY
                self.state = _S_BEGIN_STRING
            elif c == 0x7d:  # }
                self.pop()
            else:
                self.fail(c, "after object key:value pair")
        else:
            if c == 0x2c:
                self.state = _S_BEGIN_VALUE
            elif c == 0x5d:  # ]
                self.pop()
            else:
                self.fail(c, "after array element")

    def end_top_step(self, c: int) -> None:
        if c not in _SPACE:
            self.fail(c, "after top-level value")

    def step(self, c: int) -> None:
        st = self.state
        if st == _S_BEGIN_VALUE:
            self.begin_value(c)
        elif st == _S_END_VALUE:
            self.end_value(c)
        elif st == _S_IN_STRING:
            if c == 0x22:
                self.state = _S_END_VALUE
            elif c == 0x5c:
                self.state = _S_ESC
            elif c < 0x20:
                self.fail(c, "in string literal")
        elif st == _S_BEGIN_STRING_OR_EMPTY or st == _S_BEGIN_STRING:
            if c in _SPACE:
                return
            if c == 0x7d and st == _S_BEGIN_STRING_OR_EMPTY:
                self.stack[-1] = _P_VALUE
                self.end_value(c)
            elif c == 0x22:
                self.state = _S_IN_STRING
            else:
                self.fail(c, "looking for beginning of object key string")
        elif st == _S_BEGIN_VALUE_OR_EMPTY:
            if c in _SPACE:
                return
            if c == 0x5d:
                self.end_value(c)
            else:
                self.begin_value(c)
        elif st == _S_END_TOP:
            self.end_top_step(c)
        elif st == _S_ESC:
            if c in b'bfnrt\\/"':
                self.state = _S_IN_STRING
            elif c == 0x75:  # u
                self.state = _S_U
            else:
                self.fail(c, "in string escape code")
        elif _S_U <= st <= _S_U123:
            if c in _HEX:
                self.state = _S_IN_STRING if st == _S_U123 else st + 1
            else:
                self.fail(c, "in \\u hexadecimal character escape")
        elif st == _S_NEG:
            if c == 0x30:
                self.state = _S_0
            elif 0x31 <= c <= 0x39:
                self.state = _S_1
            else:
                self.fail(c, "in numeric literal")
        elif st == _S_1 or st == _S_0:
            if st == _S_1 and c in _DIGIT:
                return
            if c == 0x2e:
                self.state = _S_DOT
            elif c in b"eE":
                self.state = _S_E
            else:
                self.end_value(c)
        elif st == _S_DOT:
            if c in _DIGIT:
                self.state = _S_DOT0
            else:
                self.fail(c, "after decimal point in numeric literal")
        elif st == _S_DOT0:
            if c in _DIGIT:
                return
            if c in b"eE":
                self.state = _S_E
            else:
                self.end_value(c)
        elif st == _S_E or st == _S_ESIGN:
            if st == _S_E and c in b"+-":
                self.state = _S_ESIGN
            elif c in _DIGIT:
                self.state = _S_E0
            else:
                self.fail(c, "in exponent of numeric literal")
        elif st == _S_E0:
            if c not in _DIGIT:
                self.end_value(c)
        elif st == _S_LIT:
            want = self.lit[self.lit_pos]
            if c != want:
                self.fail(c, f"in literal {self.lit.decode()} (expecting {_quote_char(want)})")
            else:
                self.lit_pos += 1
                if self.lit_pos == len(self.lit):
                    self.state = _S_END_VALUE

    def eof(self) -> str | None:
        if self.err is not None:
            return self.err
        if self.end_top:
            return None
        self.step(0x20)
        if self.end_top and self.err is None:
            return None
        return self.err or "unexpected end of JSON input"


def json_syntax_error(data: bytes) -> str | None:
    """The message encoding/json gives for invalid JSON (None if Go would accept it)."""
    sc = _GoScanner()
    i, n = 0, len(data)
    while i < n:
        st = sc.state
        # Skip runs the scanner would step through without changing state.
        if st == _S_IN_STRING:
            m = _STR_RUN.match(data, i)
            if m is not None:
                i = m.end()
        elif st in _WS_STATES:
            m = _WS_RUN.match(data, i)
            if m is not None:
                i = m.end()
        if i >= n:
            break
        sc.step(data[i])
        if sc.err is not None:
            return sc.err
        i += 1
    return sc.eof()


def _fix_surrogates(v: object) -> object:
    """Lone surrogate escapes become U+FFFD, as Go decodes them."""
    tv = type(v)
    if tv is str:
        try:
            v.encode("utf-8")  # type: ignore[union-attr]
            return v
        except UnicodeEncodeError:
            return v.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # type: ignore
    if tv is list:
        return [_fix_surrogates(x) for x in v]  # type: ignore[union-attr]
    if tv is dict:
        return {_fix_surrogates(k): _fix_surrogates(x) for k, x in v.items()}  # type: ignore
    return v


def _load_json(raw: bytes) -> object:
    """orjson, with Go's syntax errors; input Go accepts but orjson refuses (bad UTF-8, lone
    surrogates, deep nesting) goes through the standard library instead."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    err = json_syntax_error(raw)
    if err is not None:
        raise _BodyError(err)
    try:
        return _fix_surrogates(json.loads(raw.decode("utf-8", "replace")))
    except (ValueError, RecursionError) as e:
        raise _BodyError(str(e)) from None


# ---- YAML: sigs.k8s.io/yaml (go-yaml v2, then encoding/json) -------------------------------------

class _BodyError(Exception):
    """The body could not be turned into JSON; the text is upstream's."""


_PLAIN_TAG = "!pocketkube/plain"
_YAML_TAG = "tag:yaml.org,2002:"
_YAML_CONSTANTS: dict[str, object] = {}
for _words, _value in ((("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
                         "on", "On", "ON"), True),
                       (("n", "N", "no", "No", "NO", "false", "False", "FALSE",
                         "off", "Off", "OFF"), False),
                       (("", "~", "null", "Null", "NULL"), None),
                       ((".nan", ".NaN", ".NAN"), float("nan")),
                       ((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), float("inf")),
                       (("-.inf", "-.Inf", "-.INF"), float("-inf"))):
    for _w in _words:
        _YAML_CONSTANTS[_w] = _value
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_INT_DIGITS = {16: re.compile(r"[0-9a-fA-F]+"), 8: re.compile(r"[0-7]+"),
                  2: re.compile(r"[01]+"), 10: re.compile(r"[0-9]+")}
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
_MAX_YAML_NODES = 10_000_000  # alias expansion bound ("billion laughs")

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Composes nodes only; plain scalars are resolved later with go-yaml's rules."""

    def resolve(self, kind, value, implicit):  # noqa: ANN001, ANN201
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN_TAG
        return super().resolve(kind, value, implicit)


def _go_parse_int(s: str) -> int | None:
    """strconv.ParseInt(s, 0, 64), falling back to ParseUint as go-yaml does."""
    neg = s[:1] == "-"
    if s[:1] in ("-", "+"):
        s = s[1:]
    base = 10
    if len(s) > 1 and s[0] == "0":
        p = s[1].lower()
        if p in "xob":
            base = {"x": 16, "o": 8, "b": 2}[p]
            s = s[2:]
        else:
            base = 8
            s = s[1:]
    if not s or _GO_INT_DIGITS[base].fullmatch(s) is None:
        return None
    v = int(s, base)
    if neg:
        v = -v
        return v if v >= -(1 << 63) else None
    return v if v <= _UINT64_MAX else None


def _yaml_plain(s: str) -> object:
    """go-yaml v2's resolve() for an untagged plain scalar."""
    if s in _YAML_CONSTANTS:
        return _YAML_CONSTANTS[s]
    c = s[0]
    if c == ".":
        if _YAML_FLOAT.fullmatch(s):
            return float(s)
    elif c in "+-0123456789":
        plain = s.replace("_", "")
        v = _go_parse_int(plain)
        if v is not None:
            return v
        if _YAML_FLOAT.fullmatch(plain):
            return float(plain)
    # Timestamps stay strings too: go-yaml keeps their text when decoding into interface{}.
    return s


def _yaml_scalar(node: yaml.ScalarNode) -> object:
    tag, value = node.tag, node.value
    if tag == _PLAIN_TAG:
        return _yaml_plain(value)
    if tag == _YAML_TAG + "str" or not tag.startswith(_YAML_TAG):
        return value  # quoted, or a tag go-yaml does not resolve
    short = tag[len(_YAML_TAG):]
    if short == "binary":
        try:
            return base64.b64decode(value, validate=False).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            raise _BodyError("yaml: !!binary value contains invalid base64 data") from None
    resolved = _yaml_plain(value) if value else None
    actual = {bool: "bool", int: "int", float: "float", type(None): "null", str: "str"}[type(resolved)]
    if short in ("bool", "int", "float", "null") and actual != short \
            and not (short == "float" and actual == "int"):
        raise _BodyError(f"yaml: cannot decode !!{actual} `{value}` as a !!{short}")
    if short == "float" and type(resolved) is int:
        return float(resolved)
    return resolved if short in ("bool", "int", "float", "null") else value


def _go_sharp_v(key: object) -> str:
    """fmt's %#v for a YAML map key."""
    if isinstance(key, str):
        return go_quote(key)
    if key is None:
        return "<nil>"
    if isinstance(key, bool):
        return "true" if key else "false"
    return _number_literal(key)


def _key_text(key: object) -> str:
    """sigs.k8s.io/yaml's conversion of a map key to a JSON object key."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        if key != key:
            return ".nan"
        if key in (float("inf"), float("-inf")):
            return ".inf" if key > 0 else "-.inf"
        return f"{key:g}"
    raise _BodyError(f"unsupported map key of type: {type(key).__name__}, key: {key!r}")


class _YamlConverter:
    """Turns composed YAML nodes into the JSON values YAMLToJSON would produce."""

    def __init__(self, dups: list[YamlDuplicate] | None) -> None:
        self.dups = dups
        self.budget = _MAX_YAML_NODES

    def convert(self, node: yaml.Node, path: str) -> object:
        self.budget -= 1
        if self.budget < 0:
            raise _BodyError("yaml: document contains excessive aliasing")
        if isinstance(node, yaml.ScalarNode):
            v = _yaml_scalar(node)
            if type(v) is float:
                if v != v or v in (float("inf"), float("-inf")):
                    text = "NaN" if v != v else ("+Inf" if v > 0 else "-Inf")
                    raise _BodyError(f"json: unsupported value: {text}")
                # encoding/json writes integral floats without a fraction, and the decoder
                # then reads them back as integers.
                if v == int(v) and abs(v) < 1e21 and -(1 << 63) <= int(v) <= _INT64_MAX:
                    return int(v)
            elif type(v) is int and v > _INT64_MAX:
                return float(v)
            return v
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(c, f"{path}[{i}]") for i, c in enumerate(node.value)]
        out: dict[object, tuple[str, object]] = {}
        self.mapping(node, path, out)
        # encoding/json writes map keys sorted.
        return {k: v for k, v in sorted(out.values(), key=lambda kv: kv[0])}

    def mapping(self, node: yaml.MappingNode, path: str, out: dict) -> None:
        for knode, vnode in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.tag == _PLAIN_TAG and knode.value == "<<":
                self.merge(vnode, path, out)
                continue
            if not isinstance(knode, yaml.ScalarNode):
                raise _BodyError("yaml: invalid map key: " + str(getattr(knode, "value", "")))
            key = _yaml_scalar(knode)
            text = _key_text(key)
            p = f"{path}.{text}" if path else text
            ident = (type(key), key)
            if ident in out and self.dups is not None:
                if len(self.dups) < _MAX_STRICT_ERRORS:
                    self.dups.append(YamlDuplicate(p, vnode.start_mark.line + 1, key))
            out[ident] = (text, self.convert(vnode, p))

    def merge(self, vnode: yaml.Node, path: str, out: dict) -> None:
        # go-yaml v2 merges earlier sources last, so that they win.
        sources = list(reversed(vnode.value)) if isinstance(vnode, yaml.SequenceNode) else [vnode]
        for src in sources:
            if not isinstance(src, yaml.MappingNode):
                raise _BodyError("yaml: map merge requires map or sequence of maps as the value")
            self.mapping(src, path, out)


_ALIAS_NAME = re.compile(r"\*([^\s,\[\]{}]+)")


def _yaml_error(e: yaml.YAMLError, raw: bytes) -> str:
    """go-yaml's wording of a parse error: `yaml: line N: <problem>`."""
    mark = getattr(e, "problem_mark", None)
    if isinstance(e, yaml.composer.ComposerError) and e.problem == "found undefined alias" \
            and mark is not None:
        lines = raw.decode("utf-8", "replace").split("\n")
        m = _ALIAS_NAME.match(lines[mark.line][mark.column:]) if mark.line < len(lines) else None
        if m is not None:
            return f"yaml: unknown anchor '{m.group(1)}' referenced"
    if isinstance(e, yaml.MarkedYAMLError) and e.problem:
        line = 0
        if e.problem_mark is not None and e.problem_mark.line:
            line = e.problem_mark.line
            if isinstance(e, yaml.scanner.ScannerError):
                line += 1  # go-yaml counts scanner lines from 1, parser lines from 0
        elif e.context_mark is not None and e.context_mark.line:
            line = e.context_mark.line
        where = f"line {line}: " if line else ""
        return f"yaml: {where}{e.problem}"
    return f"yaml: {e}"


def _load_yaml(raw: bytes, dups: list[YamlDuplicate] | None = None) -> object:
    loader = _Loader(raw)
    try:
        node = loader.get_node() if loader.check_node() else None  # the first document only
    except yaml.YAMLError as e:
        raise _BodyError(_yaml_error(e, raw)) from None
    finally:
        loader.dispose()
    if node is None:
        return None
    return _YamlConverter(dups).convert(node, "")


# ---- public API ----------------------------------------------------------------------------------

def _summary(data: bytes, max_len: int = 30) -> str:
    """The apiserver's summarizeData: a JSON-looking prefix as text, anything else in hex."""
    if not data:
        return "<empty>"
    if data[:1] == b"{":
        return data[:max_len].decode("utf-8", "replace") + (" ..." if len(data) > max_len else "")
    return data[:max_len].hex() + (" ..." if len(data) > max_len else "")


def _unrecognized(kind: str, err: str, raw: bytes) -> ApiError:
    if not kind:
        return bad_request(err)
    return bad_request(f"the object provided is unrecognized (must be of type {kind}): {err} "
                       f"({_summary(raw)})")


def decode_body(raw: bytes, content_type: str, *, kind: str = "") -> object:
    """Decode a request body: JSON, or YAML for `application/yaml` (and other `...yaml` types).

    Bad input raises 400 BadRequest with upstream's text: for JSON `couldn't get version/kind;
    json parse error: invalid character ...`, for YAML `yaml: line 3: ...`. Given `kind`, the
    message is wrapped the way create/update wrap it (`the object provided is unrecognized
    (must be of type Deployment): ... (<summary of the body>)`). What the body decodes to (an
    object or not) is the caller's business.
    """
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype.endswith("yaml"):
        if raw.lstrip()[:1] == b"{":
            # JSON is YAML; orjson reads it far faster. Only the float and key-order quirks of
            # YAMLToJSON need replaying.
            try:
                return _yamlish(orjson.loads(raw))
            except orjson.JSONDecodeError:
                pass
        try:
            return _load_yaml(raw)
        except _BodyError as e:
            raise _unrecognized(kind, str(e), raw) from None
    try:
        return _load_json(raw)
    except _BodyError as e:
        raise _unrecognized(kind, f"couldn't get version/kind; json parse error: {e}", raw) from None


def _yamlish(v: object) -> object:
    """What YAMLToJSON makes of JSON input: integral floats become integers, keys sorted."""
    tv = type(v)
    if tv is dict:
        return {k: _yamlish(v[k]) for k in sorted(v)}  # type: ignore[index]
    if tv is list:
        return [_yamlish(x) for x in v]  # type: ignore[union-attr]
    if tv is float and v == v and abs(v) < 1e21 and v == int(v):  # type: ignore[arg-type]
        return int(v)  # type: ignore[arg-type]
    return v


def _json_duplicates(raw: bytes, root: _T) -> list[str] | None:
    """Duplicate fields of a JSON body where Go's decoder would see them (None: not JSON)."""

    class Pairs(list):
        pass

    try:
        doc = json.loads(raw.decode("utf-8", "replace"), object_pairs_hook=Pairs)
    except (ValueError, RecursionError):
        return None
    out: list[str] = []
    seen_paths: set[str] = set()

    def walk(v: object, t: _T, path: str) -> None:
        kind = t.kind
        if kind == _LIST:
            if type(v) is list:
                for i, x in enumerate(v):  # type: ignore[arg-type]
                    walk(x, t.elem, f"{path}[{i}]")  # type: ignore[arg-type]
            return
        if (kind != _STRUCT and kind != _MAP) or type(v) is not Pairs:
            return  # free-form values go to a custom UnmarshalJSON that does not check
        seen: set[str] = set()
        for k, x in v:  # type: ignore[union-attr]
            ft = t.fields.get(k) if kind == _STRUCT else t.elem
            if ft is None:
                continue  # unknown fields are skipped, not decoded
            p = f"{path}.{k}" if path else k
            if k in seen:
                if p not in seen_paths and len(out) < _MAX_STRICT_ERRORS:
                    seen_paths.add(p)
                    out.append(p)
            else:
                seen.add(k)
            walk(x, ft, p)

    walk(doc, root, "")
    return out


def _yaml_duplicates(raw: bytes) -> list[str]:
    dups: list[YamlDuplicate] = []
    try:
        _load_yaml(raw, dups)
    except _BodyError:
        return []
    return list(dups)


def check_object(node: Node, obj: dict, kind: str, api_version: str,
                 raw: bytes | None = None) -> Decoded:
    """Decode `obj` as the Go struct of `node` would: type errors raise, the rest is reported.

    Raises 400 BadRequest with upstream's message for a value of the wrong type, e.g.
    `Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal
    string into Go struct field DeploymentSpec.spec.replicas of type int32`. Otherwise prunes
    `obj` in place (unknown fields and nulls removed) and returns it with the unknown fields
    and, when the request body `raw` is given, the duplicate fields. `obj` must be what `raw`
    decoded to (extra keys set by the caller could hide a duplicate).
    """
    root = _root_type(node)
    version = api_version.rsplit("/", 1)[-1]
    for key in ("apiVersion", "kind"):
        v = obj.get(key)
        if v is not None and type(v) is not str:
            # The serializer reads these two first, into an anonymous struct.
            body = raw if raw is not None else orjson.dumps(obj)
            raise _unrecognized(kind, "couldn't get version/kind; json parse error: json: cannot "
                                f"unmarshal {_json_type_name(v, False)} into Go struct field "
                                f".{key} of type string", body)
    is_json = raw is not None and raw.lstrip()[:1] == b"{"
    suspect = False
    if is_json:
        # A duplicate key is the only way the body can hold more keys (one colon each) than
        # the decoded object; counting colons is far cheaper than a second parse.
        try:
            suspect = raw.count(b":") > orjson.dumps(obj).count(b":")  # type: ignore[union-attr]
        except TypeError:
            suspect = True
    w = _Walker()
    try:
        w.struct(obj, root)
    except _Fatal as e:
        w.error = str(e)
    if w.error is not None:
        raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {w.error}')
    duplicates: list[str] = []
    if raw is not None:
        found = _json_duplicates(raw, root) if suspect else ([] if is_json else None)
        duplicates = found if found is not None else _yaml_duplicates(raw)
        duplicates = duplicates[:max(0, _MAX_STRICT_ERRORS - len(w.unknown))]
    return Decoded(obj, w.unknown, duplicates)


def _strict_errors(unknown: list[str], duplicates: list[str]) -> list[str]:
    """The individual strict errors, in the order the serializer collects them."""
    errs: list[str] = []
    yaml_lines = [d.yaml_text for d in duplicates if isinstance(d, YamlDuplicate)]
    if yaml_lines:
        errs.append("yaml: unmarshal errors:\n  " + "\n  ".join(yaml_lines))
    errs.extend(f"unknown field {go_quote(p)}" for p in unknown)
    errs.extend(f"duplicate field {go_quote(p)}" for p in duplicates
                if not isinstance(p, YamlDuplicate))
    return errs


def strict_message(unknown: list[str], duplicates: list[str]) -> str:
    """runtime.NewStrictDecodingError(...).Error(): `strict decoding error: unknown field "x", ...`.

    Patch requests embed this text in a 422 (`field.Invalid(patch, ...)`) instead.
    """
    return "strict decoding error: " + ", ".join(_strict_errors(unknown, duplicates))


def strict_error(kind: str, unknown: list[str], duplicates: list[str], *,
                 api_version: str = "") -> ApiError:
    """400 BadRequest for fieldValidation=Strict on create/update.

    With `api_version` the message is upstream's in full: `Deployment in version "v1" cannot
    be handled as a Deployment: strict decoding error: unknown field "spec.foo"`. Without it
    only the part from `strict decoding error:` on can be given.
    """
    message = strict_message(unknown, duplicates)
    if api_version:
        version = api_version.rsplit("/", 1)[-1]
        message = f'{kind} in version "{version}" cannot be handled as a {kind}: {message}'
    return bad_request(message)


def warnings(unknown: list[str], duplicates: list[str]) -> list[str]:
    """Warning texts for fieldValidation=Warn, one per problem: `unknown field "spec.foo"`.

    A YAML body's duplicate keys come one per line as well (`line 3: key "a" already set in
    map`), as the apiserver splits go-yaml's message. These are the header texts only;
    formatting them as `299 - "..."` is the server's job.
    """
    out: list[str] = []
    for err in _strict_errors(unknown, duplicates):
        if err.startswith("yaml: unmarshal errors:\n"):
            out.extend(line.strip() for line in err[len("yaml: unmarshal errors:\n"):].split("\n"))
        else:
            out.append(err)
    return out
