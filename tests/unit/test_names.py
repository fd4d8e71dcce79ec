"""Name, label and annotation validation: exact upstream messages (apimachinery v0.37)."""

import pytest

from pocketkube.api import names
from pocketkube.api.names import (
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_annotations,
    validate_label_name,
    validate_labels,
    validate_object_meta_name,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


# --- DNS names -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "0-1", "1a",
    "a.b", "a.b.c", "1.a", "a0.b1", "example.com", "a" * 253,
    ".".join(["a" * 63] * 3) + "." + "a" * 61,
])
def test_dns1123_subdomain_valid(value):
    assert is_dns1123_subdomain(value) == []


@pytest.mark.parametrize("value", [
    "", "A", "ABC", "aBc", "A1", "a_1", "a&1", "-", "a-", "-a", "1-", "-1",
    "_", "a_", "_a", "a.", ".a", "a..b", "a.-b", "a-.b", "1.", ".1", "a\n", "é",
    "a b", "a/b",
])
def test_dns1123_subdomain_invalid(value):
    assert is_dns1123_subdomain(value) == [SUBDOMAIN_MSG]


def test_dns1123_subdomain_too_long():
    assert is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert is_dns1123_subdomain("A" * 254) == ["must be no more than 253 characters",
                                               SUBDOMAIN_MSG]


def test_trailing_newline_is_not_accepted():
    # Python's `$` would accept "abc\n"; Go's regexp does not.
    assert is_dns1123_label("abc\n") == [LABEL_MSG]
    assert list(is_valid_label_value("abc\n")) == [LABEL_VALUE_MSG]
    assert list(is_qualified_name("abc\n")) == [NAME_PART_MSG]


@pytest.mark.parametrize("value", ["a", "ab", "a-b", "a1", "1", "0-0", "a" * 63])
def test_dns1123_label_valid(value):
    assert is_dns1123_label(value) == []


@pytest.mark.parametrize("value", ["", "A", "a_b", "-a", "a-", "a b", "é"])
def test_dns1123_label_invalid(value):
    assert is_dns1123_label(value) == [LABEL_MSG]


def test_dns1123_label_dots_get_their_own_message():
    assert is_dns1123_label("a.b") == ["must not contain dots"]
    assert is_dns1123_label("a..b") == [LABEL_MSG]


def test_dns1123_label_too_long():
    assert is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]
    # Length counts bytes, as Go's len() does.
    assert is_dns1123_label("é" * 32) == ["must be no more than 63 characters", LABEL_MSG]


@pytest.mark.parametrize("value", ["a", "ab", "a-1", "abc-123", "a" * 63])
def test_dns1035_label_valid(value):
    assert is_dns1035_label(value) == []


@pytest.mark.parametrize("value", ["", "1", "1a", "-a", "a-", "A", "a.b", "a_b"])
def test_dns1035_label_invalid(value):
    assert is_dns1035_label(value) == [DNS1035_MSG]


def test_dns1035_label_too_long():
    assert is_dns1035_label("a" * 64) == ["must be no more than 63 characters"]


# --- label keys and values -------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "simple", "now-with-dashes", "1-starts-with-num", "1234", "simple/simple",
    "now-with-dashes/simple", "now-with-dashes/now-with-dashes", "now.with.dots/simple",
    "now-with.dashes-and.dots/simple", "1-num.2-num/3-num", "1234/5678", "1.2.3.4/5678",
    "Uppercase_Is_OK_123", "example.com/Uppercase_Is_OK_123", "requests.storage-foo",
    "a" * 63, "a" * 253 + "/" + "b" * 63, "kubernetes.io/hostname", "A.B", "a_b",
])
def test_qualified_name_valid(value):
    assert list(is_qualified_name(value)) == []


@pytest.mark.parametrize("value", [
    "nospecialchars%^=@", "cantendwithadash-", "-cantstartwithadash-", "only/one/slash",
    "Example.com/abc", "example_com/abc", "example.com/", "/simple", "a" * 64,
    "a" * 254 + "/abc",
])
def test_qualified_name_invalid(value):
    assert list(is_qualified_name(value)) != []


def test_qualified_name_messages():
    assert list(is_qualified_name("-a")) == [NAME_PART_MSG]
    assert list(is_qualified_name("")) == ["name part must be non-empty", NAME_PART_MSG]
    assert list(is_qualified_name("a" * 64)) == ["name part must be no more than 63 bytes"]
    assert list(is_qualified_name("/a")) == ["prefix part must be non-empty"]
    assert list(is_qualified_name("a/")) == ["name part must be non-empty", NAME_PART_MSG]
    assert list(is_qualified_name("Example.com/a")) == ["prefix part " + SUBDOMAIN_MSG]
    # Label-key prefixes use the api/validate/content copy, which counts "bytes".
    assert list(is_qualified_name("a" * 254 + "/a")) == ["prefix part must be no more than 253 bytes"]
    assert list(is_qualified_name("a/b/c")) == [
        "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must "
        "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
        "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    ]


@pytest.mark.parametrize("value", [
    "", "simple", "now-with-dashes", "1-starts-with-num", "end-with-num-1", "1234",
    "a" * 63, "UpperCase", "a_b.c-d", "1",
])
def test_label_value_valid(value):
    assert list(is_valid_label_value(value)) == []


@pytest.mark.parametrize("value", [
    "nospecialchars%^=@", "Tama-nui-te-rā.is.Māori.sun", "\\backslashes\\are\\bad",
    "-starts-with-dash", "ends-with-dash-", ".starts.with.dot", "ends.with.dot.", "a b",
    "a/b", "_a", "a_",
])
def test_label_value_invalid(value):
    assert list(is_valid_label_value(value)) == [LABEL_VALUE_MSG]


def test_label_value_too_long():
    assert list(is_valid_label_value("a" * 64)) == ["must be no more than 63 bytes"]
    assert list(is_valid_label_value("-" * 64)) == ["must be no more than 63 bytes", LABEL_VALUE_MSG]


# --- labels and annotations ------------------------------------------------------------------


def test_validate_labels_ok():
    assert validate_labels({"app": "nginx", "example.com/tier": "", "A_b": "1"},
                           "metadata.labels") == []
    assert validate_labels({}, "metadata.labels") == []
    assert validate_labels(None, "metadata.labels") == []


def test_validate_labels_errors_at_the_labels_path():
    errs = validate_labels({"bad key": "ok", "ok": "bad value"}, "metadata.labels")
    assert [str(e) for e in errs] == [
        'metadata.labels: Invalid value: "bad key": ' + NAME_PART_MSG,
        'metadata.labels: Invalid value: "bad value": ' + LABEL_VALUE_MSG,
    ]
    assert all(e.type == "FieldValueInvalid" for e in errs)


def test_validate_labels_key_and_value_both_wrong():
    errs = validate_labels({"a/b/c": "x" * 64}, "spec.template.metadata.labels")
    assert [e.field for e in errs] == ["spec.template.metadata.labels"] * 2
    assert errs[1].detail == "must be no more than 63 bytes"


def test_validate_label_name():
    assert validate_label_name("ok", "key") == []
    [e] = validate_label_name("-x", "spec.key")
    assert str(e) == 'spec.key: Invalid value: "-x": ' + NAME_PART_MSG


def test_validate_annotations_case_insensitive_keys():
    assert validate_annotations({"Example.COM/Key": "anything at all: ,=/!"},
                                "metadata.annotations") == []


def test_validate_annotations_bad_key_reports_original_key():
    [e] = validate_annotations({"Bad Key": "v"}, "metadata.annotations")
    # The check lower-cases the key, the error shows it as written.
    assert str(e) == 'metadata.annotations: Invalid value: "Bad Key": ' + NAME_PART_MSG


def test_validate_annotations_total_size():
    limit = 256 * 1024
    ok = {"a": "x" * (limit - 1)}
    assert validate_annotations(ok, "metadata.annotations") == []
    too_big = {"a": "x" * limit}
    [e] = validate_annotations(too_big, "metadata.annotations")
    assert e.type == "FieldValueTooLong"
    assert str(e) == "metadata.annotations: Too long: may not be more than 262144 bytes"
    # Bytes, not characters.
    [e] = validate_annotations({"a": "é" * (limit // 2)}, "metadata.annotations")
    assert e.type == "FieldValueTooLong"
    # Sizes add up over all keys and values.
    split = {"k1": "x" * (limit // 2), "k2": "x" * (limit // 2)}
    assert len(validate_annotations(split, "metadata.annotations")) == 1


# --- object names ----------------------------------------------------------------------------


def test_name_funcs():
    assert name_is_dns_subdomain("a.b-c", False) == []
    assert name_is_dns_subdomain("Foo", False) == [SUBDOMAIN_MSG]
    assert name_is_dns_label("a.b", False) == ["must not contain dots"]
    assert name_is_dns_label("abc", False) == []
    assert name_is_dns1035_label("1abc", False) == [DNS1035_MSG]


@pytest.mark.parametrize("fn", [name_is_dns_subdomain, name_is_dns_label, name_is_dns1035_label])
def test_generate_name_may_end_with_dash(fn):
    assert fn("web-", True) == []
    assert fn("web-", False) != []
    # A lone "-" is not masked.
    assert fn("-", True) != []


def test_mask_trailing_dash_quirk():
    # Upstream replaces the last two characters by "a", so "a.-" becomes "aa" (valid) and
    # "ab.-" becomes "aba"; "a-" becomes "a".
    assert names._mask_trailing_dash("a.-") == "aa"
    assert names._mask_trailing_dash("a-") == "a"
    assert names._mask_trailing_dash("abc") == "abc"
    assert name_is_dns_label("a.-", True) == []


def test_validate_object_meta_name_required():
    [e] = validate_object_meta_name("", "", name_is_dns_subdomain)
    assert str(e) == "metadata.name: Required value: name or generateName is required"
    assert e.type == "FieldValueRequired"


def test_validate_object_meta_name_invalid():
    [e] = validate_object_meta_name("Foo", "", name_is_dns_subdomain)
    assert str(e) == 'metadata.name: Invalid value: "Foo": ' + SUBDOMAIN_MSG


def test_validate_object_meta_name_ok():
    assert validate_object_meta_name("foo", "", name_is_dns_subdomain) == []
    assert validate_object_meta_name("foo-x7k2p", "foo-", name_is_dns_label) == []


def test_validate_object_meta_name_generate_name():
    errs = validate_object_meta_name("Foo-abcde", "Foo-", name_is_dns_subdomain)
    assert [str(e) for e in errs] == [
        'metadata.generateName: Invalid value: "Foo-": ' + SUBDOMAIN_MSG,
        'metadata.name: Invalid value: "Foo-abcde": ' + SUBDOMAIN_MSG,
    ]


def test_validate_object_meta_name_namespace_label_and_custom_path():
    [e] = validate_object_meta_name("a.b", "", name_is_dns_label, "spec.template.metadata")
    assert str(e) == 'spec.template.metadata.name: Invalid value: "a.b": must not contain dots'
    [e] = validate_object_meta_name("", "", name_is_dns_label, "")
    assert e.field == "name"


def test_validate_object_meta_name_too_long():
    [e] = validate_object_meta_name("a" * 64, "", name_is_dns_label)
    assert str(e) == 'metadata.name: Invalid value: "' + "a" * 64 + \
        '": must be no more than 63 characters'
