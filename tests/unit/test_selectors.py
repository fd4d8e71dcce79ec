"""Label and field selectors: grammar, matching, canonical strings and upstream messages."""

import pytest

from pocketkube.api.errors import ApiError
from pocketkube.api.selectors import (
    FieldSelector,
    LabelSelector,
    Requirement,
    SelectorError,
    escape_field_value,
    format_label_selector,
    label_selector_has_invalid_label_value,
    parse_field_selector,
    parse_fields,
    parse_label_selector,
    parse_labels,
    selector_from_dict,
    selector_string,
    unescape_field_value,
    validate_label_selector,
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
OPERATORS = "in, notin, =, ==, !=, gt, lt"


def parse_error(text: str) -> str:
    with pytest.raises(ApiError) as info:
        parse_label_selector(text)
    assert info.value.code == 400
    assert info.value.reason == "BadRequest"
    return info.value.message


# --- label selector strings ------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5",
    "x==a", "a,b", "!a,!b",
])
def test_good_strings_restring_without_spaces(text):
    assert str(parse_label_selector(text)) == text.replace(" ", "")


@pytest.mark.parametrize("text,canonical", [
    ("x=a,a=x", "a=x,x=a"),  # sorted by key, deterministic
    ("a=x,x=a", "a=x,x=a"),
    (" app = nginx , tier in ( a , b ) ", "app=nginx,tier in (a,b)"),
    ("tier in (b,a,a)", "tier in (a,b)"),  # values de-duplicated and sorted
    ("x notin (c, b)", "x notin (b,c)"),
    ("x in ()", "x in ()"),  # "()" is the single empty value, not an error
    ("x in (,a)", "x in (,a)"),
    ("x in (a,)", "x in (,a)"),
    ("x in (a,,b)", "x in (,a,b)"),
    ("x in (,)", "x in ()"),
    ("in in (in)", "in in (in)"),  # keywords are identifiers where a key or value is expected
    ("notin=in", "notin=in"),
    ("x in (notin,in)", "x in (in,notin)"),
    ("example.com/app=web", "example.com/app=web"),
    ("a\tb", None),
    ("\n app\r\n=\tx ", "app=x"),
    ("x!=", "x!="),
    ("x==", "x=="),
    ("x<", None),
    ("k=v,k=w", "k=v,k=w"),  # same key twice is kept (and never matches)
    ("  ", ""),
])
def test_canonical_form(text, canonical):
    if canonical is None:
        with pytest.raises(ApiError):
            parse_label_selector(text)
    else:
        assert str(parse_label_selector(text)) == canonical


def test_empty_selector_matches_everything():
    sel = parse_label_selector("")
    assert sel.empty()
    assert sel.matches({"x": "y"})
    assert sel.matches({})
    assert sel.matches(None)
    assert not parse_label_selector("x").empty()


@pytest.mark.parametrize("text,labels", [
    ("", {"x": "y"}),
    ("x=y", {"x": "y"}),
    ("x==y", {"x": "y"}),
    ("x=y,z=w", {"x": "y", "z": "w"}),
    ("x!=y,z!=w", {"x": "z", "z": "a"}),
    ("notin=in", {"notin": "in"}),
    ("x", {"x": "z"}),
    ("x", {"x": ""}),
    ("!x", {"y": "z"}),
    ("x>1", {"x": "2"}),
    ("x<1", {"x": "0"}),
    ("x<1", {"x": "-5"}),
    ("x>1", {"x": "+2"}),
    ("x!=y", {}),  # != also matches when the key is missing
    ("x notin (a)", {}),
    ("x notin (a,b)", {"x": "c"}),
    ("x in (a,b)", {"x": "b"}),
    ("x in ()", {"x": ""}),
    ("x in (,a)", {"x": ""}),
    ("x=", {"x": ""}),
    ("!x,y", {"y": "1"}),
    ("foo=bar,baz=blah", {"foo": "bar", "baz": "blah"}),
    ("x>9223372036854775806", {"x": "9223372036854775807"}),
])
def test_matches(text, labels):
    assert parse_label_selector(text).matches(labels)


@pytest.mark.parametrize("text,labels", [
    ("x=z", {}),
    ("x=y", {"x": "z"}),
    ("x=", {}),  # an empty value still requires the key
    ("x=y,z=w", {"x": "w", "z": "w"}),
    ("x!=y,z!=w", {"x": "z", "z": "w"}),
    ("x", {"y": "z"}),
    ("!x", {"x": "z"}),
    ("!x", {"x": ""}),
    ("x>1", {"x": "0"}),
    ("x>1", {"x": "1"}),
    ("x<1", {"x": "2"}),
    ("x>1", {}),  # Gt/Lt need the key
    ("x>1", {"x": "two"}),  # and an integer value
    ("x>1", {"x": "1.5"}),
    ("x>1", {"x": " 2"}),
    ("x>1", {"x": "2_0"}),
    ("x>1", {"x": "9223372036854775808"}),  # beyond int64
    ("x in (a,b)", {"x": "c"}),
    ("x in (a,b)", {}),
    ("x notin (a,b)", {"x": "a"}),
    ("x in ()", {}),
    ("x in ()", {"x": "a"}),
    ("k=v,k=w", {"k": "v"}),
    ("x", None),
])
def test_does_not_match(text, labels):
    assert not parse_label_selector(text).matches(labels)


@pytest.mark.parametrize("text,message", [
    ("x==a==b", "found '==', expected: ',' or 'end of string'"),
    ("!x=a", "found '=', expected: ',' or 'end of string'"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("x in (a) y", "found 'y', expected: ',' or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    ("a,,b", "found ',', expected: identifier after ','"),
    ("a,=b", "found '=', expected: identifier after ','"),
    (",", "found ',', expected: !, identifier, or 'end of string'"),
    ("(", "found '(', expected: !, identifier, or 'end of string'"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("!!x", "unable to parse requirement: found '!', expected: identifier"),
    ("!=a", "found '!=', expected: !, identifier, or 'end of string'"),
    ("x y", f"unable to parse requirement: found 'y', expected: {OPERATORS}"),
    ("x (a)", f"unable to parse requirement: found '(', expected: {OPERATORS}"),
    ("x in", "unable to parse requirement: found '' expected: '('"),
    ("x in a", "unable to parse requirement: found 'a' expected: '('"),
    ("x in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
    ("x in ((a)", "unable to parse requirement: found '(', expected: ',', ')' or identifier"),
    ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
    ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("x in (a,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
    ("x=(a)", "unable to parse requirement: found '(', expected: identifier"),
    ("x=!", "unable to parse requirement: found '!', expected: identifier"),
])
def test_syntax_errors(text, message):
    assert parse_error(text) == message


def test_invalid_key_message_has_nil_path():
    # The parser carries no field path; Go prints it as "<nil>".
    assert parse_error("Foo_=bar") == (
        'unable to parse requirement: <nil>: Invalid value: "Foo_": ' + NAME_PART_MSG)
    assert parse_error("/x") == (
        'unable to parse requirement: <nil>: Invalid value: "/x": prefix part must be non-empty')
    assert parse_error("a" * 64) == (
        'unable to parse requirement: <nil>: Invalid value: "' + "a" * 64
        + '": name part must be no more than 63 bytes')


def test_invalid_key_messages_are_joined_with_semicolons():
    assert parse_error("x/") == (
        'unable to parse requirement: <nil>: Invalid value: "x/": name part must be non-empty; '
        + NAME_PART_MSG)


def test_invalid_value_messages():
    assert parse_error("x=a_") == (
        'unable to parse requirement: values[0][x]: Invalid value: "a_": ' + LABEL_VALUE_MSG)
    # `|` is no operator, so it ends up inside a value.
    assert parse_error("x=a||y=b") == (
        'unable to parse requirement: values[0][x]: Invalid value: "a||y": ' + LABEL_VALUE_MSG)
    # Values are sorted before being checked, so the index follows the sorted order.
    assert parse_error("x in (z,-a)") == (
        'unable to parse requirement: values[0][x]: Invalid value: "-a": ' + LABEL_VALUE_MSG)
    assert parse_error("x=" + "a" * 64) == (
        'unable to parse requirement: values[0][x]: Invalid value: "' + "a" * 64
        + '": must be no more than 63 bytes')


def test_gt_lt_value_errors():
    assert parse_error("x<a") == (
        "unable to parse requirement: values[0]: Invalid value: \"a\": "
        "for 'Gt', 'Lt' operators, the value must be an integer")
    assert parse_error("x>") == (
        "unable to parse requirement: values[0]: Invalid value: \"\": "
        "for 'Gt', 'Lt' operators, the value must be an integer")
    # A negative bound is an integer but not a valid label value.
    assert parse_error("x>-1") == (
        'unable to parse requirement: values[0][x]: Invalid value: "-1": ' + LABEL_VALUE_MSG)
    # Several problems are aggregated as "[a, b]".
    assert parse_error("x>a_") == (
        "unable to parse requirement: [values[0]: Invalid value: \"a_\": for 'Gt', 'Lt' "
        "operators, the value must be an integer, values[0][x]: Invalid value: \"a_\": "
        + LABEL_VALUE_MSG + "]")


def test_nul_behaves_like_go_lexer():
    # Go's lexer reads NUL as end of input where a token starts...
    assert str(parse_label_selector("a=b \0c=d")) == "a=b"
    assert parse_error("a=b, \0c=d") == "found '', expected: identifier after ','"
    # ...but swallows it when it ends an identifier or operator.
    assert str(parse_label_selector("x=\0y")) == "x=y"


def test_parse_labels_raises_selector_error():
    with pytest.raises(SelectorError) as info:
        parse_labels("x in (")
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("unable to parse requirement")


def test_requirements_and_exact_match():
    sel = parse_label_selector("tier in (fe),app=web,!x,env notin (a,b),y")
    assert sel.requirements == [
        Requirement("app", "=", ("web",)),
        Requirement("env", "notin", ("a", "b")),
        Requirement("tier", "in", ("fe",)),
        Requirement("x", "!", ()),
        Requirement("y", "exists", ()),
    ]
    assert sel.requires_exact_match("app") == "web"
    assert sel.requires_exact_match("tier") == "fe"
    assert sel.requires_exact_match("env") is None
    assert sel.requires_exact_match("y") is None
    assert sel.requires_exact_match("nope") is None
    assert parse_label_selector("a==b").requirements == [Requirement("a", "==", ("b",))]
    assert parse_label_selector("a>3").requirements == [Requirement("a", "gt", ("3",))]
    assert parse_label_selector("a<3").requirements == [Requirement("a", "lt", ("3",))]
    assert parse_label_selector("a!=b").requires_exact_match("a") is None


def test_requirement_matches_directly():
    assert Requirement("a", "in", ("x", "y")).matches({"a": "y"})
    assert not Requirement("a", "exists").matches({})


def test_selector_equality():
    assert parse_label_selector("b=1,a=2") == parse_label_selector("a=2, b=1")
    assert parse_label_selector("a") != parse_label_selector("!a")
    assert LabelSelector.nothing() != LabelSelector.everything()


# --- metav1.LabelSelector --------------------------------------------------------------------


def test_nil_selector_matches_nothing():
    sel = selector_from_dict(None)
    assert not sel.matches({})
    assert not sel.matches({"a": "b"})
    assert not sel.empty()
    assert sel.matches_nothing()
    assert str(sel) == ""


@pytest.mark.parametrize("d", [{}, {"matchLabels": {}}, {"matchExpressions": []},
                               {"matchLabels": None, "matchExpressions": None}])
def test_empty_selector_dict_matches_everything(d):
    sel = selector_from_dict(d)
    assert sel.empty()
    assert sel.matches({"anything": "x"})
    assert sel.matches(None)


def test_selector_from_dict_all_operators():
    sel = selector_from_dict({
        "matchLabels": {"tier": "fe", "app": "nginx"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "track", "operator": "NotIn", "values": ["canary"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    })
    assert str(sel) == "app=nginx,env in (dev,prod),!legacy,team,tier=fe,track notin (canary)"
    base = {"app": "nginx", "tier": "fe", "env": "dev", "team": ""}
    assert sel.matches(base)
    assert sel.matches({**base, "track": "stable"})
    assert not sel.matches({**base, "track": "canary"})
    assert not sel.matches({**base, "legacy": "1"})
    assert not sel.matches({**base, "env": "qa"})
    assert not sel.matches({k: v for k, v in base.items() if k != "team"})
    assert not sel.matches({**base, "app": "other"})


def test_selector_from_dict_keeps_duplicate_values():
    sel = selector_from_dict({"matchExpressions": [
        {"key": "a", "operator": "In", "values": ["y", "x", "x"]}]})
    assert sel.requirements == [Requirement("a", "in", ("y", "x", "x"))]
    assert str(sel) == "a in (x,x,y)"


def test_selector_from_dict_errors():
    with pytest.raises(SelectorError) as info:
        selector_from_dict({"matchExpressions": [{"key": "a", "operator": "In"}]})
    assert str(info.value) == (
        "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty")
    with pytest.raises(SelectorError) as info:
        selector_from_dict({"matchExpressions": [
            {"key": "a", "operator": "Exists", "values": ["x"]}]})
    assert str(info.value) == (
        'values: Invalid value: ["x"]: values set must be empty for exists and does not exist')
    with pytest.raises(SelectorError) as info:
        selector_from_dict({"matchExpressions": [{"key": "a", "operator": "Gt",
                                                  "values": ["1"]}]})
    assert str(info.value) == '"Gt" is not a valid label selector operator'
    with pytest.raises(SelectorError) as info:
        selector_from_dict({"matchLabels": {"-a": "b"}})
    assert str(info.value) == 'key: Invalid value: "-a": ' + NAME_PART_MSG
    with pytest.raises(SelectorError) as info:
        selector_from_dict({"matchLabels": {"-a": "b_"}})
    assert str(info.value) == ('[key: Invalid value: "-a": ' + NAME_PART_MSG
                               + ', values[0][-a]: Invalid value: "b_": ' + LABEL_VALUE_MSG + "]")


def test_selector_string_and_format():
    assert selector_string({"matchLabels": {"app": "nginx"}}) == "app=nginx"
    assert selector_string({"matchLabels": {"b": "2", "a": "1"}}) == "a=1,b=2"
    assert selector_string({}) == ""
    assert selector_string(None) == ""
    assert selector_string({"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["b", "a"]}]}) == "tier in (a,b)"
    with pytest.raises(SelectorError):
        selector_string({"matchExpressions": [{"key": "a", "operator": "Bad"}]})
    assert format_label_selector({"matchLabels": {"app": "nginx"}}) == "app=nginx"
    assert format_label_selector({}) == "<none>"
    assert format_label_selector(None) == "<none>"
    assert format_label_selector({"matchExpressions": [{"key": "a", "operator": "Bad"}]}) \
        == "<error>"


def test_selector_string_round_trips_through_parser():
    d = {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "env", "operator": "NotIn", "values": ["a", "b"]},
        {"key": "x", "operator": "DoesNotExist"}]}
    assert parse_label_selector(selector_string(d)) == selector_from_dict(d)


# --- ValidateLabelSelector -------------------------------------------------------------------


def strs(errs):
    return [str(e) for e in errs]


def test_validate_label_selector_ok():
    assert validate_label_selector(None, "spec.selector") == []
    assert validate_label_selector({}, "spec.selector") == []
    assert validate_label_selector({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "a", "operator": "In", "values": ["x", ""]},
            {"key": "b", "operator": "NotIn", "values": ["y"]},
            {"key": "c", "operator": "Exists"},
            {"key": "d", "operator": "DoesNotExist", "values": []},
        ]}, "spec.selector") == []


def test_validate_label_selector_operator_rules():
    errs = validate_label_selector({"matchExpressions": [
        {"key": "a", "operator": "In", "values": []},
        {"key": "a", "operator": "NotIn"},
        {"key": "a", "operator": "Exists", "values": ["x"]},
        {"key": "a", "operator": "DoesNotExist", "values": ["x"]},
        {"key": "a", "operator": "in", "values": ["x"]},
    ]}, "spec.selector")
    assert strs(errs) == [
        "spec.selector.matchExpressions[0].values: Required value: must be specified when "
        "`operator` is 'In' or 'NotIn'",
        "spec.selector.matchExpressions[1].values: Required value: must be specified when "
        "`operator` is 'In' or 'NotIn'",
        "spec.selector.matchExpressions[2].values: Forbidden: may not be specified when "
        "`operator` is 'Exists' or 'DoesNotExist'",
        "spec.selector.matchExpressions[3].values: Forbidden: may not be specified when "
        "`operator` is 'Exists' or 'DoesNotExist'",
        'spec.selector.matchExpressions[4].operator: Invalid value: "in": '
        "not a valid selector operator",
    ]
    assert errs[0].type == "FieldValueRequired"
    assert errs[2].type == "FieldValueForbidden"
    assert errs[4].type == "FieldValueInvalid"


def test_validate_label_selector_keys_and_values():
    errs = validate_label_selector({
        "matchLabels": {"bad key": "v", "k": "bad value"},
        "matchExpressions": [{"key": "-k", "operator": "In", "values": ["ok", "x_"]}],
    }, "spec.selector")
    assert strs(errs) == [
        'spec.selector.matchLabels: Invalid value: "bad key": ' + NAME_PART_MSG,
        'spec.selector.matchLabels: Invalid value: "bad value": ' + LABEL_VALUE_MSG,
        'spec.selector.matchExpressions[0].key: Invalid value: "-k": ' + NAME_PART_MSG,
        'spec.selector.matchExpressions[0].values[1]: Invalid value: "x_": ' + LABEL_VALUE_MSG,
    ]


def test_validate_label_selector_missing_key_and_operator():
    errs = validate_label_selector({"matchExpressions": [{}]}, "selector")
    assert strs(errs) == [
        'selector.matchExpressions[0].operator: Invalid value: "": not a valid selector operator',
        'selector.matchExpressions[0].key: Invalid value: "": name part must be non-empty',
        'selector.matchExpressions[0].key: Invalid value: "": ' + NAME_PART_MSG,
    ]


def test_validate_label_selector_options():
    sel = {"matchExpressions": [{"key": "a", "operator": "Weird", "values": ["x_"]}]}
    assert validate_label_selector(sel, "s", allow_unknown_operator=True,
                                   allow_invalid_label_value=True) == []
    assert label_selector_has_invalid_label_value(sel)
    assert not label_selector_has_invalid_label_value({"matchExpressions": [
        {"key": "a", "operator": "In", "values": ["x"]}]})
    assert not label_selector_has_invalid_label_value(None)


def test_validate_label_selector_empty_path():
    [e] = validate_label_selector({"matchLabels": {"a": "b_"}}, "")
    assert e.field == "matchLabels"


# --- field selectors -------------------------------------------------------------------------


def field_error(text: str) -> str:
    with pytest.raises(ApiError) as info:
        parse_field_selector(text)
    assert info.value.code == 400
    return info.value.message


def pod_fields(**values):
    return lambda path: values.get(path.replace(".", "_"))


def test_field_selector_empty():
    sel = parse_field_selector("")
    assert sel.empty()
    assert sel.requirements == []
    assert sel.matches(lambda f: None)
    assert str(sel) == ""


@pytest.mark.parametrize("text,reqs", [
    ("metadata.name=foo", [("metadata.name", "=", "foo")]),
    ("metadata.name==foo", [("metadata.name", "=", "foo")]),
    ("status.phase!=Running", [("status.phase", "!=", "Running")]),
    ("spec.nodeName=", [("spec.nodeName", "=", "")]),
    ("b=1,a=2", [("a", "=", "2"), ("b", "=", "1")]),  # terms are sorted
    ("a=b\\,c", [("a", "=", "b,c")]),  # escaped comma is data
    ("a=b\\=c", [("a", "=", "b=c")]),
    ("a=b\\\\c", [("a", "=", "b\\c")]),
    ("a=b\\\\,c=d", [("a", "=", "b\\"), ("c", "=", "d")]),  # escaped backslash, real comma
    ("a!b=c", [("a!b", "=", "c")]),  # first operator wins; the field is not escaped
    ("a==", [("a", "=", "")]),
    ("=b", [("", "=", "b")]),
    ("=", []),  # neither field nor value: dropped
    ("!=", []),
    ("a=1,,b=2", [("a", "=", "1"), ("b", "=", "2")]),  # empty terms skipped
    (",", []),
    ("metadata.name = foo", [("metadata.name ", "=", " foo")]),  # no trimming
    ("a=é", [("a", "=", "é")]),
])
def test_field_selector_parse(text, reqs):
    assert parse_field_selector(text).requirements == reqs


@pytest.mark.parametrize("text,message", [
    ("a", "invalid selector: 'a'; can't understand 'a'"),
    ("a=1,b", "invalid selector: 'a=1,b'; can't understand 'b'"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
    ("a=b,c\\,d=e=f", "invalid field selector: unescaped character in value: 61"),
    ("a==b==c", "invalid field selector: unescaped character in value: 61"),
    ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
    ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
])
def test_field_selector_errors(text, message):
    assert field_error(text) == message


def test_field_selector_escaped_comma_splits_terms_later():
    # "\," keeps the comma inside the term; the field part has no escaping at all.
    assert field_error("a\\,b") == "invalid selector: 'a\\,b'; can't understand 'a\\,b'"


def test_field_selector_string_escapes():
    sel = parse_field_selector("b!=x\\,y,a=p\\=q\\\\")
    assert str(sel) == "a=p\\=q\\\\,b!=x\\,y"
    assert parse_field_selector(str(sel)) == sel


def test_field_selector_matching():
    sel = parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert sel.matches(pod_fields(spec_nodeName="n1", status_phase="Running"))
    assert not sel.matches(pod_fields(spec_nodeName="n2", status_phase="Running"))
    assert not sel.matches(pod_fields(spec_nodeName="n1", status_phase="Failed"))
    # A missing field reads as "".
    assert sel.matches(pod_fields(spec_nodeName="n1"))
    assert parse_field_selector("spec.nodeName=").matches(pod_fields())
    assert not parse_field_selector("spec.nodeName!=").matches(pod_fields())
    assert parse_field_selector("spec.nodeName!=").matches(pod_fields(spec_nodeName="n"))


def test_field_selector_value_for():
    sel = parse_field_selector("metadata.namespace!=kube-system,metadata.name=web")
    assert sel.value_for("metadata.name") == "web"
    assert sel.value_for("metadata.namespace") is None
    assert sel.value_for("spec.nodeName") is None
    assert not sel.empty()
    assert sel.fields() == ["metadata.name", "metadata.namespace"]


def test_field_selector_helpers():
    for raw in ["", "plain", "a,b", "a=b", "a\\b", "\\,=", "=,\\"]:
        assert unescape_field_value(escape_field_value(raw)) == raw
    assert escape_field_value("a\\b,c=d") == "a\\\\b\\,c\\=d"
    with pytest.raises(SelectorError):
        parse_fields("x")
    # Commas always split terms or are escaped, so only the helper can see a bare one.
    with pytest.raises(SelectorError, match="unescaped character in value: 44"):
        unescape_field_value("a,b")
    assert FieldSelector([("a", "=", "b")]) == parse_fields("a=b")


# --- speed -----------------------------------------------------------------------------------


def test_matching_many_pods_is_fast():
    import time

    pods = [{"app": "nginx" if i % 2 else "web", "pod-template-hash": str(i)}
            for i in range(10_000)]
    sel = parse_label_selector("app=nginx,pod-template-hash,!legacy")
    start = time.perf_counter()
    n = sum(1 for p in pods if sel.matches(p))
    elapsed = time.perf_counter() - start
    assert n == 5_000
    assert elapsed < 0.5
