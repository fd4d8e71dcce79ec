"""Name, label and annotation validation with the apiserver's exact wording.

Clients (and people) read these messages: kubectl prints them verbatim and tests compare
them, so each check reproduces apimachinery's `util/validation`, `api/validate/content` and
`api/validation` (generic.go, objectmeta.go) word for word, including where the two
upstream packages disagree ("characters" for DNS names, "bytes" for label keys and values).
The checkers return lists of message strings, as upstream's `[]string`-returning helpers do;
the `validate_*` functions wrap them into `FieldError`s at a field path.
"""

from __future__ import annotations

import functools
import re
from typing import Callable

from pocketkube.api.errors import FieldError, invalid, required, too_long

# A ValidateNameFunc: (name, prefix) -> messages; prefix=True when checking a generateName.
NameFunc = Callable[[str, bool], list[str]]

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
LABEL_KEY_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                      "or '-', and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric "
                          "character")
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                      "start with an alphabetic character, and end with an alphanumeric character")
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                  "end with an alphanumeric character")
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")

# fullmatch, not `$`: Python's `$` also matches before a trailing newline, Go's does not.
_dns1123_label_re = re.compile(_DNS1123_LABEL_FMT)
_dns1123_subdomain_re = re.compile(_DNS1123_SUBDOMAIN_FMT)
_dns1035_label_re = re.compile(_DNS1035_LABEL_FMT)
_label_key_re = re.compile(_LABEL_KEY_FMT)
_label_value_re = re.compile(_LABEL_VALUE_FMT)


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError: the message, examples and the regex used."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    # Upstream appends "', " after each example and " or " before the next, which leaves a
    # double space ("'a',  or 'b', "); clients see that text, so it is reproduced.
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    """util/validation's MaxLenError (DNS names)."""
    return f"must be no more than {length} characters"


def _max_bytes_error(length: int) -> str:
    # api/validate/content's MaxLenError, used for label keys and values.
    return f"must be no more than {length} bytes"


EMPTY_ERROR = "must be non-empty"


def byte_len(s: str) -> int:
    """Go's len(string): UTF-8 bytes, not characters."""
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass"))


def is_dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if byte_len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _dns1123_label_re.fullmatch(value):
        if _dns1123_subdomain_re.fullmatch(value):
            # A valid subdomain that is not a label can only be failing on its dots.
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _dns1123_subdomain_re.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def _content_dns1123_subdomain(value: str) -> list[str]:
    # The api/validate/content copy, used for label-key prefixes: same rule, "bytes" wording.
    errs: list[str] = []
    if byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(_max_bytes_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _dns1123_subdomain_re.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs: list[str] = []
    if byte_len(value) > DNS1035_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1035_LABEL_MAX_LENGTH))
    if not _dns1035_label_re.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


_LABEL_KEY_REGEX_ERROR = regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")


# The two checks every label, annotation key, finalizer and condition type goes through on
# every write: the same few strings again and again (a ReplicaSet's pods all carry the same
# labels), so their answers are kept. Tuples: one cached answer is shared by all callers.
@functools.lru_cache(maxsize=4096)
def is_qualified_name(value: str) -> tuple[str, ...]:
    """A label key (also annotation keys, finalizers): `[DNS-subdomain prefix/]name`."""
    return tuple(_qualified_name_errors(value))


@functools.lru_cache(maxsize=4096)
def is_valid_label_value(value: str) -> tuple[str, ...]:
    return tuple(_label_value_errors(value))


def _qualified_name_errors(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + EMPTY_ERROR)
        else:
            errs.extend("prefix part " + m for m in _content_dns1123_subdomain(prefix))
    else:
        return ["a valid label key " + _LABEL_KEY_REGEX_ERROR
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part " + EMPTY_ERROR)
    elif byte_len(name) > LABEL_KEY_NAME_MAX_LENGTH:
        errs.append("name part " + _max_bytes_error(LABEL_KEY_NAME_MAX_LENGTH))
    if not _label_key_re.fullmatch(name):
        errs.append("name part " + _LABEL_KEY_REGEX_ERROR)
    return errs


def _label_value_errors(value: str) -> list[str]:
    errs: list[str] = []
    if byte_len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(_max_bytes_error(LABEL_VALUE_MAX_LENGTH))
    if not _label_value_re.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def validate_label_name(key: str, path: str) -> list[FieldError]:
    """ValidateLabelName: one Invalid error per problem with a label key."""
    return [invalid(path, key, m) for m in is_qualified_name(key)]


def validate_labels(labels: dict | None, path: str) -> list[FieldError]:
    """metadata.labels (and matchLabels): errors sit at `path` itself, not per key."""
    errs: list[FieldError] = []
    if not labels:
        return errs
    for k, v in labels.items():
        errs.extend(validate_label_name(k, path))
        if isinstance(v, str):
            errs.extend(invalid(path, v, m) for m in is_valid_label_value(v))
    return errs


def validate_annotations(annotations: dict | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not annotations:
        return errs
    total = 0
    for k, v in annotations.items():
        # Annotation keys follow the label-key rule, except that case does not matter.
        errs.extend(invalid(path, k, m) for m in is_qualified_name(k.lower()))
        total += byte_len(k) + (byte_len(v) if isinstance(v, str) else 0)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def _mask_trailing_dash(name: str) -> str:
    # Upstream drops the last *two* characters and appends "a"; kept as is so that the same
    # generateNames pass and fail.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    if prefix:
        name = _mask_trailing_dash(name)
    return is_dns1123_subdomain(name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    if prefix:
        name = _mask_trailing_dash(name)
    return is_dns1123_label(name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    if prefix:
        name = _mask_trailing_dash(name)
    return is_dns1035_label(name)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate_object_meta_name(name: str, generate_name: str, fn: NameFunc,
                              path: str = "metadata") -> list[FieldError]:
    """The name part of ValidateObjectMeta; runs after any generateName has been expanded."""
    errs: list[FieldError] = []
    if generate_name:
        gpath = _child(path, "generateName")
        errs.extend(invalid(gpath, generate_name, m) for m in fn(generate_name, True))
    npath = _child(path, "name")
    if not name:
        errs.append(required(npath, "name or generateName is required"))
    else:
        errs.extend(invalid(npath, name, m) for m in fn(name, False))
    return errs
