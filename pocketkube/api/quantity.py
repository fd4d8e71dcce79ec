"""Kubernetes resource quantities ("100m", "32Mi", "1.5Gi", "2e3"): parsing and canonical form.

A quantity is written by users in many spellings but the apiserver stores and returns one
canonical spelling ("0.5" comes back as "500m", "1024Mi" as "1Gi"), and kubectl, the
scheduler and quota all compare the numbers, not the strings. This module follows
apimachinery's `api/resource/quantity.go`: the same scanner (so the same inputs fail with
the same messages), rounding up to nano precision, the 2^63-1 cap, and the canonicalisation
rules of `Quantity.String()`. Values are `Decimal`s; nothing here touches floats.
"""

from __future__ import annotations

from decimal import ROUND_UP, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import NamedTuple

# Upstream's error texts, returned to clients verbatim.
ERR_FORMAT_WRONG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

# Plenty of digits: the largest value is 2^63-1 and the finest step 10^-9.
_CTX = Context(prec=80)
_NANO = Decimal("1e-9")
_MILLI = Decimal("1e-3")
_MAX = Decimal((1 << 63) - 1)

_DEC_SUFFIXES = {
    "": 0,
    "n": -9,
    "u": -6,
    "m": -3,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BIN_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DEC_BY_EXP = {v: k for k, v in _DEC_SUFFIXES.items()}
_BIN_BY_EXP = {v: k for k, v in _BIN_SUFFIXES.items()}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")


class Quantity(NamedTuple):
    """A parsed quantity: its exact value and the suffix family it was written in."""

    value: Decimal
    format: str

    def __str__(self) -> str:
        return format_quantity(self.value, self.format)


def _scan(s: str) -> tuple[bool, str, str, str]:
    """parseQuantityString: (positive, numerator, denominator, suffix) or ValueError."""
    end = len(s)
    pos = 0
    positive = True
    if pos < end and s[0] in "+-":
        positive = s[0] == "+"
        pos = 1
    while pos < end and s[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    num = s[start:pos] or "0"
    denom = ""
    if pos < end and s[pos] == ".":
        pos += 1
        start = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[start:pos]
    suffix_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(ERR_FORMAT_WRONG)
    return positive, num, denom, s[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """quantitySuffixer.interpret: (base, exponent, format)."""
    if suffix in _DEC_SUFFIXES:
        return 10, _DEC_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BIN_SUFFIXES:
        return 2, _BIN_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        rest = suffix[1:]
        body = rest[1:] if rest[0] in "+-" else rest
        if body and all(c in _DIGITS for c in body):
            return 10, int(rest), DECIMAL_EXPONENT
    raise ValueError(ERR_SUFFIX)


@lru_cache(maxsize=4096)
def parse(s: str) -> Quantity:
    """resource.ParseQuantity; raises ValueError carrying upstream's message.

    Cached: the same few spellings ("100m", "128Mi") arrive on every write.
    """
    if not isinstance(s, str) or not s:
        raise ValueError(ERR_FORMAT_WRONG)
    positive, num, denom, suffix = _scan(s)
    base, exponent, fmt = _interpret(suffix)
    try:
        amount = Decimal(f"{num}.{denom}" if denom else num)
    except InvalidOperation:
        raise ValueError(ERR_NUMERIC) from None
    if base == 10:
        amount = amount.scaleb(exponent, _CTX)
    else:
        amount = _CTX.multiply(amount, Decimal(1 << exponent))
    # Non-zero values round up (away from zero) to the smallest representable step, so that
    # asking for a sliver of a resource still asks for some.
    if amount:
        amount = amount.quantize(_NANO, rounding=ROUND_UP, context=_CTX)
    if amount > _MAX:
        amount = _MAX
    if fmt == BINARY_SI and 0 < amount < 1:
        fmt = DECIMAL_SI
    return Quantity(amount if positive else -amount, fmt)


def int64_form(s: str) -> tuple[int, int, str, str] | None:
    """What Go's ParseQuantity keeps for `s` when it takes its fast path: (value, scale,
    format, the spelling it caches or ""); None when it stores an inf.Dec instead.

    The pod-template-hash hashes these fields as go-spew prints them (gostruct.py), so which
    spellings are cached matters: upstream caches only a canonical one ("100m", "1Gi"; not
    "32Mi", whose value is a multiple of 8).
    """
    if s == "0":
        return 0, 0, DECIMAL_SI, s
    positive, num, denom, suffix = _scan(s)
    _, exponent, fmt = _interpret(suffix)
    mantissa = 1
    if fmt == BINARY_SI:
        scale = 0
        if exponent >= 0 and not denom:
            mantissa = 1 << exponent
            precision = 15 - len(num) - exponent * 3 // 10 - 1
        else:
            precision = -1
    else:
        scale = exponent
        precision = 18 - (len(num) + len(denom))
    if precision < 0:
        return None
    scale -= len(denom)
    if scale < -9:
        return None
    shifted = num + denom
    value = int(shifted)
    result = value * mantissa
    if not -(1 << 63) < result < (1 << 63):
        return None
    if fmt == BINARY_SI:
        cached = exponent % 10 == 0 and value & 7 != 0
    else:
        cached = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
    return (result if positive else -result), scale, fmt, (s if cached else "")


def parse_quantity(s: str) -> Decimal:
    """The numeric value of a quantity string; ValueError with upstream's message if invalid."""
    return parse(s).value


def _strip_tens(n: int, e: int) -> tuple[int, int]:
    while n and n % 10 == 0:
        n //= 10
        e += 1
    return n, e


def format_quantity(value: Decimal, fmt: str = DECIMAL_SI) -> str:
    """Quantity.String(): the canonical spelling of a value in a suffix family."""
    if not value:
        return "0"
    sign = "-" if value < 0 else ""
    mag = -value if value < 0 else value
    if fmt == BINARY_SI:
        if mag < 1024 or mag != mag.to_integral_value():
            fmt = DECIMAL_SI
        else:
            n, k = int(mag), 0
            while n % 1024 == 0 and k < 6:
                n //= 1024
                k += 1
            return f"{sign}{n}{_BIN_BY_EXP.get(k * 10, '')}"
    _, digits, exp = mag.as_tuple()
    n = int("".join(map(str, digits)))
    n, e = _strip_tens(n, exp)
    # Exponents are kept at multiples of three so that a suffix exists for them.
    r = e % 3
    n *= 10**r
    e -= r
    if fmt == DECIMAL_EXPONENT:
        suffix = f"e{e}" if e else ""
    else:
        suffix = _DEC_BY_EXP.get(e)
        if suffix is None:
            suffix = f"e{e}"
    return f"{sign}{n}{suffix}"


@lru_cache(maxsize=4096)
def canonical(s: str, milli: bool = False) -> str:
    """The spelling the apiserver stores for `s`; `milli` rounds up to 1m as ResourceLists do.

    Raises ValueError (upstream's message) for an invalid quantity.
    """
    q = parse(s)
    value = q.value
    if milli and value and value != value.quantize(_MILLI, context=_CTX):
        value = value.quantize(_MILLI, rounding=ROUND_UP, context=_CTX)
    return format_quantity(value, q.format)


def milli_value(s: str) -> int:
    """Quantity.MilliValue(): the value in thousandths, rounded up."""
    v = parse(s).value * 1000
    i = int(v)
    return i + 1 if v > i else i
