"""Label and field selectors: parsing, matching, validation and their canonical strings.

`?labelSelector=` and `?fieldSelector=` filter every list and watch, and `spec.selector`
ties workloads to their pods, so this module follows apimachinery closely: the string
grammar and its error messages (`pkg/labels/selector.go`, `pkg/fields/selector.go`), the
`metav1.LabelSelector` conversion (`LabelSelectorAsSelector`) and its validation
(`ValidateLabelSelector`). Selectors are parsed once into precompiled per-requirement
tests, because matching runs against every object of a list (tens of thousands of pods).
"""

from __future__ import annotations

import json
import re
from typing import Callable, Iterable, NamedTuple

from pocketkube.api.errors import (FieldError, bad_request, forbidden, go_quote, invalid,
                                   required)
from pocketkube.api.names import is_qualified_name, is_valid_label_value, validate_labels

# selection.Operator values, as upstream spells them.
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = [IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN]
_VALID_OPERATORS = _BINARY_OPERATORS + [EXISTS, DOES_NOT_EXIST]

# metav1.LabelSelectorOperator -> selection.Operator
_API_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}

_INT64_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class SelectorError(ValueError):
    """A selector that cannot be built; the message is upstream's error text."""


def _parse_int64(s: str) -> int | None:
    """strconv.ParseInt(s, 10, 64): None where Go returns an error."""
    if not _INT64_RE.fullmatch(s):
        return None
    n = int(s)
    return n if _INT64_MIN <= n <= _INT64_MAX else None


def _aggregate(msgs: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error() over already formatted messages."""
    seen: list[str] = []
    for m in msgs:
        if m not in seen:
            seen.append(m)
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


def _json_list(values: list[str] | None) -> str:
    # field.Error prints non-scalar bad values with json.Marshal; a nil slice is "null".
    if values is None:
        return "null"
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).replace(
        "<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---------------------------------------------------------------------------------------------
# Label selectors
# ---------------------------------------------------------------------------------------------


class Requirement(NamedTuple):
    """One labels.Requirement: key, selection operator and values (as given, unsorted)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op == IN:
            return f"{self.key} in ({vals})"
        if op == NOT_IN:
            return f"{self.key} notin ({vals})"
        sym = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{sym}{vals}"

    def matches(self, labels: dict) -> bool:
        return _compile(self)(labels)


def _compile(r: Requirement) -> Callable[[dict], bool]:
    """A closure testing one requirement, specialised per operator for speed."""
    key, op, values = r.key, r.operator, r.values
    if op in (EQUALS, DOUBLE_EQUALS, IN):
        if len(values) == 1:
            want = values[0]
            return lambda ls: ls.get(key) == want
        allowed = frozenset(values)
        return lambda ls: ls.get(key) in allowed
    if op in (NOT_EQUALS, NOT_IN):
        if len(values) == 1:
            unwanted = values[0]
            return lambda ls: key not in ls or ls[key] != unwanted
        excluded = frozenset(values)
        return lambda ls: key not in ls or ls[key] not in excluded
    if op == EXISTS:
        return lambda ls: key in ls
    if op == DOES_NOT_EXIST:
        return lambda ls: key not in ls
    if op in (GREATER_THAN, LESS_THAN):
        bound = _parse_int64(values[0]) if len(values) == 1 else None
        if bound is None:
            return lambda ls: False
        greater = op == GREATER_THAN

        def compare(ls: dict) -> bool:
            v = ls.get(key)
            if v is None:
                return False
            n = _parse_int64(v)
            if n is None:
                return False
            return n > bound if greater else n < bound

        return compare
    return lambda ls: False


_NO_LABELS: dict = {}


class LabelSelector:
    """A parsed label selector: the AND of its requirements, sorted by key as upstream."""

    __slots__ = ("requirements", "_tests", "_nothing")

    def __init__(self, requirements: Iterable[Requirement] = (), nothing: bool = False) -> None:
        # Stable sort by key, as internalSelector.Add does, so String() is deterministic.
        self.requirements: list[Requirement] = sorted(requirements, key=lambda r: r.key)
        self._tests = tuple(_compile(r) for r in self.requirements)
        self._nothing = nothing

    @classmethod
    def everything(cls) -> "LabelSelector":
        return cls()

    @classmethod
    def nothing(cls) -> "LabelSelector":
        """labels.Nothing(): what a nil metav1.LabelSelector converts to."""
        return cls(nothing=True)

    def matches(self, labels: dict | None) -> bool:
        if self._nothing:
            return False
        if labels is None:
            labels = _NO_LABELS
        for test in self._tests:
            if not test(labels):
                return False
        return True

    def empty(self) -> bool:
        """True when the selector does not restrict anything (Nothing() is not empty)."""
        return not self._nothing and not self.requirements

    def matches_nothing(self) -> bool:
        return self._nothing

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have (=, == or a one-value `in`), else None."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        if self._nothing:
            return "LabelSelector(<nothing>)"
        return f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return self._nothing == other._nothing and self.requirements == other.requirements

    __hash__ = None  # type: ignore[assignment]


def _new_requirement(key: str, op: str, values: list[str] | None,
                     path: str | None = None) -> tuple[Requirement, list[str]]:
    """labels.NewRequirement: the requirement and its error messages (paths as upstream)."""
    errs: list[str] = []
    base = "" if path is None else path + "."
    key_msgs = is_qualified_name(key)
    if key_msgs:
        errs.append(f"{base}key: Invalid value: {go_quote(key)}: {'; '.join(key_msgs)}")
    vals = values or []
    vpath = f"{base}values"
    if op in (IN, NOT_IN):
        if not vals:
            errs.append(f"{vpath}: Invalid value: {_json_list(values)}: "
                        "for 'in', 'notin' operators, values set can't be empty")
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(f"{vpath}: Invalid value: {_json_list(values)}: "
                        "exact-match compatibility requires one single value")
    elif op in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(f"{vpath}: Invalid value: {_json_list(values)}: "
                        "values set must be empty for exists and does not exist")
    elif op in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(f"{vpath}: Invalid value: {_json_list(values)}: "
                        "for 'Gt', 'Lt' operators, exactly one value is required")
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(f"{vpath}[{i}]: Invalid value: {go_quote(v)}: "
                            "for 'Gt', 'Lt' operators, the value must be an integer")
    else:
        supported = ", ".join(go_quote(o) for o in _VALID_OPERATORS)
        errs.append(f"{base}operator: Unsupported value: {go_quote(op)}: "
                    f"supported values: {supported}")
    for i, v in enumerate(vals):
        msgs = is_valid_label_value(v)
        if msgs:
            errs.append(f"{vpath}[{i}][{key}]: Invalid value: {go_quote(v)}: {'; '.join(msgs)}")
    return Requirement(key, op, tuple(vals)), errs


# --- the string grammar ------------------------------------------------------------------

# Lexer tokens.
_END, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _IDENT, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(13)
_SYMBOLS = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "<": _LT,
            "!=": _NEQ, "(": _OPEN}
_KEYWORDS = {"in": _IN, "notin": _NOTIN}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
# Characters that end an identifier; NUL is included because Go's lexer reads it as end of input.
_ID_STOP = _SPECIAL | _WHITESPACE | {"\0"}


def _lex(s: str) -> list[tuple[int, str]]:
    """Tokenise like labels.Lexer, including its treatment of NUL as an end-of-input marker."""
    items: list[tuple[int, str]] = []
    n = len(s)
    pos = 0
    while True:
        while pos < n and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= n or s[pos] == "\0":
            items.append((_END, ""))
            return items
        ch = s[pos]
        if ch in _SPECIAL:
            two = s[pos:pos + 2]
            lit = two if two in ("!=", "==") else ch
            pos += len(lit)
            items.append((_SYMBOLS[lit], lit))
        else:
            start = pos
            while pos < n and s[pos] not in _ID_STOP:
                pos += 1
            lit = s[start:pos]
            items.append((_KEYWORDS.get(lit, _IDENT), lit))
        # Go's read() has already consumed a NUL that stopped the scan; skip it the same way.
        if pos < n and s[pos] == "\0":
            pos += 1


class _ParseError(Exception):
    pass


class _Parser:
    """labels.Parser: recursive descent over the scanned tokens, same messages."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    # In a values context the keywords `in`/`notin` are ordinary identifiers.
    def lookahead(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        if values and tok in (_IN, _NOTIN):
            tok = _IDENT
        return tok, lit

    def consume(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.lookahead(values)
        self.pos += 1
        return tok, lit

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_IDENT, _NOT):
                try:
                    reqs.append(self.parse_requirement())
                except _ParseError as e:
                    raise _ParseError(f"unable to parse requirement: {e}") from None
                tok, lit = self.consume()
                if tok == _END:
                    return reqs
                if tok == _COMMA:
                    tok2, lit2 = self.lookahead()
                    if tok2 not in (_IDENT, _NOT):
                        raise _ParseError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise _ParseError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == _END:
                return reqs
            else:
                raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        key, op = self.parse_key_and_infer_operator()
        if op in (EXISTS, DOES_NOT_EXIST):
            return self.build(key, op, [])
        op = self.parse_operator()
        if op in (IN, NOT_IN):
            values = self.parse_values()
        else:
            values = self.parse_exact_value()
        # Upstream collects values in a string set: de-duplicated and sorted.
        return self.build(key, op, sorted(values))

    @staticmethod
    def build(key: str, op: str, values: list[str]) -> Requirement:
        req, errs = _new_requirement(key, op, values)
        if errs:
            raise _ParseError(_aggregate(errs))
        return req

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        op = ""
        tok, lit = self.consume()
        if tok == _NOT:
            op = DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok != _IDENT:
            raise _ParseError(f"found '{lit}', expected: identifier")
        msgs = is_qualified_name(lit)
        if msgs:
            # The parser has no field path, and Go prints a nil path as "<nil>".
            raise _ParseError(f"<nil>: Invalid value: {go_quote(lit)}: {'; '.join(msgs)}")
        if self.lookahead()[0] in (_END, _COMMA) and op != DOES_NOT_EXIST:
            op = EXISTS
        return lit, op

    def parse_operator(self) -> str:
        tok, lit = self.consume(values=False)
        op = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN,
              _NOTIN: NOT_IN, _NEQ: NOT_EQUALS}.get(tok)
        if op is None:
            raise _ParseError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return op

    def parse_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _OPEN:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_IDENT, _COMMA):
            s = self.parse_identifiers_list()
            self.consume()  # the ')' parse_identifiers_list stopped at
            return s
        if tok == _CLOSE:
            # "()" is one empty value, not an error.
            self.consume()
            return {""}
        raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        s: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _IDENT:
                s.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return s
                raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                # Empty entries ("(,a)", "(a,,b)", "(a,)") stand for the empty value.
                if not s:
                    s.add("")
                tok2, _ = self.lookahead()
                if tok2 == _CLOSE:
                    s.add("")
                    return s
                if tok2 == _COMMA:
                    s.add("")
                continue
            raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead()
        if tok in (_END, _COMMA):
            return {""}
        tok, lit = self.consume()
        if tok == _IDENT:
            return {lit}
        raise _ParseError(f"found '{lit}', expected: identifier")


def parse_labels(text: str) -> LabelSelector:
    """labels.Parse; raises SelectorError with upstream's message."""
    try:
        return LabelSelector(_Parser(text).parse())
    except _ParseError as e:
        raise SelectorError(str(e)) from None


def parse_label_selector(text: str) -> LabelSelector:
    """`?labelSelector=`: a parse error is a 400 carrying the parser's message, as upstream."""
    if not text:
        return LabelSelector()
    try:
        return parse_labels(text)
    except SelectorError as e:
        raise bad_request(str(e)) from None


# --- metav1.LabelSelector ------------------------------------------------------------------


def selector_from_dict(sel: dict | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, {} selects everything.

    Raises SelectorError (upstream's message) for a selector validation would have rejected.
    """
    if sel is None:
        return LabelSelector.nothing()
    match_labels = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or []
    if not match_labels and not exprs:
        return LabelSelector()
    reqs: list[Requirement] = []
    for k, v in match_labels.items():
        req, errs = _new_requirement(k, EQUALS, [v])
        if errs:
            raise SelectorError(_aggregate(errs))
        reqs.append(req)
    for expr in exprs:
        api_op = expr.get("operator") or ""
        op = _API_OPERATORS.get(api_op)
        if op is None:
            raise SelectorError(f"{go_quote(api_op)} is not a valid label selector operator")
        values = expr.get("values")
        req, errs = _new_requirement(expr.get("key") or "", op,
                                     list(values) if values else None)
        if errs:
            raise SelectorError(_aggregate(errs))
        reqs.append(req)
    return LabelSelector(reqs)


def selector_string(sel: dict | None) -> str:
    """LabelSelectorAsSelector(sel).String(): what a Scale's status.selector shows.

    Empty and nil selectors give "". Raises SelectorError for an invalid selector (the
    Scale handler turns that into an internal error).
    """
    return str(selector_from_dict(sel))


def format_label_selector(sel: dict | None) -> str:
    """metav1.FormatLabelSelector, for printed columns: "<none>" when empty, "<error>"."""
    try:
        s = str(selector_from_dict(sel))
    except SelectorError:
        return "<error>"
    return s or "<none>"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate_label_selector(sel: dict | None, path: str, *,
                            allow_invalid_label_value: bool = False,
                            allow_unknown_operator: bool = False) -> list[FieldError]:
    """ValidateLabelSelector with LabelSelectorValidationOptions as keyword flags."""
    errs: list[FieldError] = []
    if sel is None:
        return errs
    errs.extend(validate_labels(sel.get("matchLabels"), _child(path, "matchLabels")))
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        epath = f"{_child(path, 'matchExpressions')}[{i}]"
        op = expr.get("operator") or ""
        values = expr.get("values") or []
        vpath = _child(epath, "values")
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(vpath, "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(
                    vpath, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        elif not allow_unknown_operator:
            errs.append(invalid(_child(epath, "operator"), op, "not a valid selector operator"))
        key = expr.get("key") or ""
        errs.extend(invalid(_child(epath, "key"), key, m) for m in is_qualified_name(key))
        if not allow_invalid_label_value:
            for j, v in enumerate(values):
                errs.extend(invalid(f"{vpath}[{j}]", v, m) for m in is_valid_label_value(v))
    return errs


def label_selector_has_invalid_label_value(sel: dict | None) -> bool:
    """LabelSelectorHasInvalidLabelValue: decides allow_invalid_label_value on update."""
    if sel is None:
        return False
    return any(is_valid_label_value(v)
               for expr in sel.get("matchExpressions") or []
               for v in expr.get("values") or [])


# ---------------------------------------------------------------------------------------------
# Field selectors
# ---------------------------------------------------------------------------------------------

_FIELD_OPERATORS = ("!=", "==", "=")  # "==" before "=" so no "=" is left on the value


def escape_field_value(s: str) -> str:
    """fields.EscapeValue: backslash-escape \\, ',' and '='."""
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(s: str) -> str:
    """fields.UnescapeValue; raises SelectorError with upstream's message."""
    if "\\" not in s and "," not in s and "=" not in s:
        return s
    out: list[str] = []
    in_slash = False
    for c in s:
        if in_slash:
            if c not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            # Go prints the rune with %v, i.e. as its code point number.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    # Split on commas that are not backslash-escaped; escapes stay in the terms.
    if not text:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, c in enumerate(text):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    # The field name has no escaping: the first operator occurrence splits the term.
    for i in range(len(term)):
        for op in _FIELD_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


class FieldSelector:
    """A parsed field selector: the AND of `field=value` / `field!=value` terms."""

    __slots__ = ("requirements", "_eq", "_ne")

    def __init__(self, requirements: Iterable[tuple[str, str, str]] = ()) -> None:
        self.requirements: list[tuple[str, str, str]] = list(requirements)
        self._eq = tuple((f, v) for f, op, v in self.requirements if op == "=")
        self._ne = tuple((f, v) for f, op, v in self.requirements if op == "!=")

    def matches(self, get: Callable[[str], str | None]) -> bool:
        for f, v in self._eq:
            if (get(f) or "") != v:
                return False
        for f, v in self._ne:
            if (get(f) or "") == v:
                return False
        return True

    def empty(self) -> bool:
        return not self.requirements

    def value_for(self, field: str) -> str | None:
        """RequiresExactMatch: the value an exact `field=value` term demands, else None."""
        for f, v in self._eq:
            if f == field:
                return v
        return None

    def fields(self) -> list[str]:
        """The field names used, for checking them against a kind's supported fields."""
        return [f for f, _, _ in self.requirements]

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{escape_field_value(v)}" for f, op, v in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self.requirements == other.requirements

    __hash__ = None  # type: ignore[assignment]


def parse_fields(text: str) -> FieldSelector:
    """fields.ParseSelector; raises SelectorError with upstream's message."""
    reqs: list[tuple[str, str, str]] = []
    # Upstream sorts the raw terms, which fixes the order of requirements and String().
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        value = unescape_field_value(rhs)
        # A term with neither field nor value ("=") is dropped, as upstream's Transform does.
        if not lhs and not value:
            continue
        reqs.append((lhs, "!=" if op == "!=" else "=", value))
    return FieldSelector(reqs)


def parse_field_selector(text: str) -> FieldSelector:
    """`?fieldSelector=`: a parse error is a 400 with upstream's message."""
    try:
        return parse_fields(text)
    except SelectorError as e:
        raise bad_request(str(e)) from None
