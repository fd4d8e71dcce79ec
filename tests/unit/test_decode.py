"""Strict decoding against the Kubernetes schemas: upstream's type errors, unknown and duplicate
fields, null handling, and the JSON/YAML body decoders (apimachinery, sigs.k8s.io/json+yaml)."""

from __future__ import annotations

import copy
import time

import orjson
import pytest

from pocketkube.api import decode
from pocketkube.api.decode import (
    Decoded,
    YamlDuplicate,
    check_object,
    decode_body,
    json_syntax_error,
    strict_error,
    strict_message,
    warnings,
)
from pocketkube.api.errors import ApiError
from pocketkube.api.schema import Node

DEPLOYMENT = Node.for_kind("apps", "v1", "Deployment")
POD = Node.for_kind("", "v1", "Pod")
SECRET = Node.for_kind("", "v1", "Secret")
CONFIGMAP = Node.for_kind("", "v1", "ConfigMap")
SERVICE = Node.for_kind("", "v1", "Service")
REVISION = Node.for_kind("apps", "v1", "ControllerRevision")
CRD = Node.for_kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
EVENT = Node.for_kind("events.k8s.io", "v1", "Event")

DEP_PREFIX = 'Deployment in version "v1" cannot be handled as a Deployment: '


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"},
                     "annotations": {"a.example.com/x": "{\"k\":\"v\"}"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "nodeSelector": {"disk": "ssd"},
                    "containers": [{
                        "name": "app", "image": "nginx:1.25", "args": ["--port", "8080"],
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "A", "value": "1"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                                      "requests": {"cpu": 0.1, "memory": 64}},
                    }],
                },
            },
        },
    }


def check_dep(obj: dict, raw: bytes | None = None) -> Decoded:
    return check_object(DEPLOYMENT, obj, "Deployment", "apps/v1", raw)


def dep_error(obj: dict) -> str:
    with pytest.raises(ApiError) as e:
        check_dep(obj)
    assert e.value.code == 400 and e.value.reason == "BadRequest"
    assert e.value.message.startswith(DEP_PREFIX), e.value.message
    return e.value.message[len(DEP_PREFIX):]


def container(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]["containers"][0]


# ---- unknown fields ------------------------------------------------------------------------------

def test_clean_object_has_nothing_to_report():
    obj = deployment()
    expected = copy.deepcopy(obj)
    result = check_dep(obj)
    assert result.unknown == [] and result.duplicates == []
    assert result.obj == expected


def test_unknown_fields_at_several_depths_in_document_order():
    raw = b"""{"bogusTop": 1, "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "web", "labels": {"app": "web"}},
      "spec": {"foo": {"deep": {"x": 1}}, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labelz": {}},
          "spec": {"containers": [{"name": "a", "bogus": true, "image": "i",
                                   "ports": [{"containerPort": 80, "extra": "x"}],
                                   "env": [{"name": "B", "value": "2"},
                                           {"name": "C", "valueFrom": {"fieldRef": {
                                               "fieldPath": "x", "nope": 1}}}]}]}},
        "bar": 2}}"""
    result = check_dep(decode_body(raw, "application/json"), raw)
    assert result.unknown == [
        "bogusTop",
        "spec.foo",
        "spec.template.metadata.labelz",
        "spec.template.spec.containers[0].bogus",
        "spec.template.spec.containers[0].ports[0].extra",
        "spec.template.spec.containers[0].env[1].valueFrom.fieldRef.nope",
        "spec.bar",
    ]
    assert result.duplicates == []


def test_unknown_fields_are_removed_in_place():
    obj = deployment()
    obj["spec"]["foo"] = 1
    container(obj)["bogus"] = {"a": 1}
    result = check_dep(obj)
    assert result.obj is obj
    assert "foo" not in obj["spec"] and "bogus" not in container(obj)
    assert container(obj)["image"] == "nginx:1.25"
    assert obj == deployment()


def test_unknown_fields_inside_a_map_of_objects():
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {
                         "spec": {"type": "object", "bogus": 1, "maximum": 5,
                                  "default": {"anything": ["goes", 1]},
                                  "properties": {"size": {"type": "integer", "typo": True}}}}}}}]},
    }
    result = check_object(CRD, crd, "CustomResourceDefinition", "apiextensions.k8s.io/v1")
    base = "spec.versions[0].schema.openAPIV3Schema.properties.spec"
    assert result.unknown == [f"{base}.bogus", f"{base}.properties.size.typo"]
    # `default` is a JSON value (free-form) and `maximum` a float64 that takes integers.
    assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["default"] \
        == {"anything": ["goes", 1]}


def test_maps_and_free_form_fields_accept_any_keys():
    obj = deployment()
    obj["metadata"]["labels"]["weird.example.com/any-key"] = "v"
    obj["metadata"]["managedFields"] = [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
        "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:replicas": {}, ".": {}}},
    }]
    container(obj)["resources"]["limits"]["nvidia.com/gpu"] = "1"
    assert check_dep(obj).unknown == []

    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
          "data": {"any key.conf": "x", "other": ""}, "binaryData": {"b": "AAE="}}
    assert check_object(CONFIGMAP, cm, "ConfigMap", "v1").unknown == []

    rev = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
           "revision": 3,
           "data": {"spec": {"template": {"$patch": "replace", "whatever": [1, {"x": None}]}}}}
    result = check_object(REVISION, rev, "ControllerRevision", "apps/v1")
    assert result.unknown == []
    assert rev["data"]["spec"]["template"]["whatever"] == [1, {"x": None}]


def test_status_is_known_only_for_kinds_that_have_it():
    obj = deployment()
    obj["status"] = {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    assert check_dep(obj).unknown == []
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "status": {}}
    assert check_object(CONFIGMAP, cm, "ConfigMap", "v1").unknown == ["status"]


def test_unknown_fields_are_case_sensitive():
    obj = deployment()
    obj["spec"]["Replicas"] = 3
    assert check_dep(obj).unknown == ["spec.Replicas"]


def test_unknown_fields_are_capped_at_100():
    obj = deployment()
    for i in range(150):
        obj["spec"][f"x{i}"] = i
    result = check_dep(obj)
    assert len(result.unknown) == 100
    assert not any(k.startswith("x") for k in obj["spec"])


# ---- type errors ---------------------------------------------------------------------------------

def test_string_for_int32():
    obj = deployment()
    obj["spec"]["replicas"] = "3"
    assert dep_error(obj) == ("json: cannot unmarshal string into Go struct field "
                              "DeploymentSpec.spec.replicas of type int32")


@pytest.mark.parametrize("value, text", [(3.5, "number 3.5"), (3.0, "number 3.0"),
                                         (3000000000, "number 3000000000"), (True, "bool"),
                                         ({}, "object"), ([], "array")])
def test_bad_values_for_an_int32_inside_lists(value, text):
    obj = deployment()
    container(obj)["ports"][0]["containerPort"] = value
    assert dep_error(obj) == (
        f"json: cannot unmarshal {text} into Go struct field "
        "ContainerPort.spec.template.spec.containers.ports.containerPort of type int32")


def test_int64_range():
    obj = deployment()
    obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 1 << 40
    check_dep(obj)
    obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 1 << 63
    assert dep_error(obj) == (
        "json: cannot unmarshal number 9223372036854775808 into Go struct field "
        "PodSpec.spec.template.spec.activeDeadlineSeconds of type int64")


def test_string_for_bool_and_number_for_string():
    obj = deployment()
    obj["spec"]["paused"] = "true"
    assert dep_error(obj) == ("json: cannot unmarshal string into Go struct field "
                              "DeploymentSpec.spec.paused of type bool")
    obj = deployment()
    container(obj)["env"][0]["value"] = 8080
    assert dep_error(obj) == ("json: cannot unmarshal number into Go struct field "
                              "EnvVar.spec.template.spec.containers.env.value of type string")


def test_wrong_types_in_maps_and_list_items():
    obj = deployment()
    obj["metadata"]["labels"]["n"] = 5
    assert dep_error(obj) == ("json: cannot unmarshal number into Go struct field "
                              "ObjectMeta.metadata.labels of type string")
    obj = deployment()
    container(obj)["args"] = ["--port", 8080]
    assert dep_error(obj) == ("json: cannot unmarshal number into Go struct field "
                              "Container.spec.template.spec.containers.args of type string")
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = ["nginx"]
    assert dep_error(obj) == ("json: cannot unmarshal string into Go struct field "
                              "PodSpec.spec.template.spec.containers of type v1.Container")


def test_wrong_container_types_name_the_go_type():
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = {"name": "app"}
    assert dep_error(obj) == ("json: cannot unmarshal object into Go struct field "
                              "PodSpec.spec.template.spec.containers of type []v1.Container")
    obj = deployment()
    obj["spec"] = "x"
    assert dep_error(obj) == ("json: cannot unmarshal string into Go struct field "
                              "Deployment.spec of type v1.DeploymentSpec")
    obj = deployment()
    obj["metadata"]["labels"] = ["a"]
    assert dep_error(obj) == ("json: cannot unmarshal array into Go struct field "
                              "ObjectMeta.metadata.labels of type map[string]string")
    obj = deployment()
    container(obj)["resources"]["limits"] = "1"
    assert dep_error(obj) == (
        "json: cannot unmarshal string into Go struct field "
        "ResourceRequirements.spec.template.spec.containers.resources.limits of type v1.ResourceList")


def test_int_or_string():
    obj = deployment()
    obj["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 1, "maxUnavailable": "50%"}
    check_dep(obj)
    for value, text in ((True, "bool"), (1.5, "number 1.5"), ({}, "object")):
        obj = deployment()
        obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = value
        assert dep_error(obj) == (
            f"json: cannot unmarshal {text} into Go struct field "
            "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type int32")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}}
    check_object(SERVICE, svc, "Service", "v1")


def test_quantity_accepts_strings_and_numbers():
    obj = deployment()
    container(obj)["resources"]["limits"] = {"cpu": 2, "memory": "1.5Gi", "x/y": 1e3,
                                             "ephemeral-storage": " 1G "}
    check_dep(obj)
    for bad in ("1x", "", True, ["1"]):
        obj = deployment()
        container(obj)["resources"]["limits"]["cpu"] = bad
        assert dep_error(obj) == ("quantities must match the regular expression "
                                  "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    obj = deployment()
    container(obj)["resources"]["limits"]["cpu"] = "5mi"
    assert dep_error(obj) == "unable to parse quantity's suffix"
    obj = deployment()
    container(obj)["resources"]["limits"]["cpu"] = "1Qi"  # Q is no suffix letter at all
    assert dep_error(obj).startswith("quantities must match the regular expression")


def test_time_fields():
    obj = deployment()
    obj["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00.123+02:00"
    check_dep(obj)
    cases = {
        "2024-13-01T00:00:00Z": 'parsing time "2024-13-01T00:00:00Z": month out of range',
        "2023-02-29T00:00:00Z": 'parsing time "2023-02-29T00:00:00Z": day out of range',
        "2024-05-01": ('parsing time "2024-05-01" as "2006-01-02T15:04:05Z07:00": '
                       'cannot parse "" as "T"'),
        "yesterday": ('parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": '
                      'cannot parse "yesterday" as "2006"'),
        "2024-05-01 10:00:00Z": ('parsing time "2024-05-01 10:00:00Z" as '
                                 '"2006-01-02T15:04:05Z07:00": cannot parse " 10:00:00Z" as "T"'),
        "2024-05-01T10:00:00": ('parsing time "2024-05-01T10:00:00" as '
                                '"2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00"'),
        "2024-05-01T25:00:00Z": 'parsing time "2024-05-01T25:00:00Z": hour out of range',
        "2024-05-01T10:00:00Zjunk": 'parsing time "2024-05-01T10:00:00Zjunk": extra text: "junk"',
    }
    for value, message in cases.items():
        obj = deployment()
        obj["metadata"]["creationTimestamp"] = value
        assert dep_error(obj) == message
    obj = deployment()
    obj["metadata"]["creationTimestamp"] = 1714557600
    assert dep_error(obj) == ("json: cannot unmarshal number into Go struct field "
                              "ObjectMeta.metadata.creationTimestamp of type string")


def test_micro_time_needs_six_fraction_digits():
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
          "eventTime": "2024-05-01T10:00:00.123456Z", "reportingController": "x",
          "reportingInstance": "y", "action": "A", "reason": "R", "type": "Normal"}
    check_object(EVENT, ev, "Event", "events.k8s.io/v1")
    ev["eventTime"] = "2024-05-01T10:00:00Z"
    with pytest.raises(ApiError) as e:
        check_object(EVENT, ev, "Event", "events.k8s.io/v1")
    assert e.value.message == (
        'Event in version "v1" cannot be handled as a Event: parsing time '
        '"2024-05-01T10:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"')


def test_base64_bytes():
    def secret(data: dict) -> dict:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": data}

    check_object(SECRET, secret({"a": "aGVsbG8=", "b": "", "c": "aGVs\nbG8="}), "Secret", "v1")
    for value, offset in (("abc$", 3), ("aGVsbG8", 4), ("a===", 1), ("aGVsbG8=x", 8)):
        with pytest.raises(ApiError) as e:
            check_object(SECRET, secret({"a": value}), "Secret", "v1")
        assert e.value.message == ('Secret in version "v1" cannot be handled as a Secret: '
                                   f"illegal base64 data at input byte {offset}")
    with pytest.raises(ApiError) as e:
        check_object(SECRET, secret({"a": 1}), "Secret", "v1")
    assert e.value.message.endswith(
        "json: cannot unmarshal number into Go struct field Secret.data of type []uint8")


def test_first_saved_error_wins_but_a_custom_unmarshaler_error_aborts():
    obj = deployment()
    obj["spec"]["replicas"] = "x"
    obj["spec"]["paused"] = "y"
    assert "DeploymentSpec.spec.replicas" in dep_error(obj)
    # IntOrString's UnmarshalJSON error is returned, not saved: it beats an earlier one.
    obj = deployment()
    obj["spec"]["replicas"] = "x"
    obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = True
    assert "maxSurge" in dep_error(obj)


def test_type_errors_beat_unknown_fields():
    obj = deployment()
    obj["spec"]["foo"] = 1
    obj["spec"]["replicas"] = "1"
    assert "spec.replicas" in dep_error(obj)


def test_non_string_kind_fails_like_the_serializer():
    obj = deployment()
    obj["apiVersion"] = 1
    raw = orjson.dumps(obj)
    with pytest.raises(ApiError) as e:
        check_dep(obj, raw)
    assert e.value.message == (
        "the object provided is unrecognized (must be of type Deployment): couldn't get "
        "version/kind; json parse error: json: cannot unmarshal number into Go struct field "
        f".apiVersion of type string ({raw[:30].decode()} ...)")


# ---- null ----------------------------------------------------------------------------------------

def test_null_means_unset():
    obj = deployment()
    obj["metadata"]["creationTimestamp"] = None
    obj["spec"]["replicas"] = None
    obj["status"] = None
    container(obj)["ports"][0]["containerPort"] = None  # even a required int: Go ignores null
    check_dep(obj)
    assert "creationTimestamp" not in obj["metadata"]
    assert "replicas" not in obj["spec"] and "status" not in obj
    assert container(obj)["ports"] == [{"protocol": "TCP"}]


def test_null_in_maps_and_lists_becomes_the_zero_value():
    obj = deployment()
    obj["metadata"]["labels"]["x"] = None
    container(obj)["args"] = ["a", None]
    container(obj)["resources"]["limits"]["cpu"] = None
    obj["spec"]["template"]["spec"]["containers"].append(None)
    check_dep(obj)
    assert obj["metadata"]["labels"]["x"] == ""
    assert container(obj)["args"] == ["a", ""]
    assert container(obj)["resources"]["limits"]["cpu"] == "0"
    assert obj["spec"]["template"]["spec"]["containers"][1] == {}


# ---- duplicates, strict errors and warnings -------------------------------------------------------

def test_duplicate_fields_in_raw_json():
    raw = (b'{"apiVersion":"apps/v1","kind":"Deployment",'
           b'"metadata":{"name":"a","name":"b","labels":{"x":"1","x":"2"}},'
           b'"spec":{"replicas":1,"foo":1,"foo":2,"replicas":2,'
           b'"template":{"spec":{"containers":[{"name":"c","image":"i","image":"j"}]}}}}')
    obj = decode_body(raw, "application/json")
    result = check_dep(obj, raw)
    assert result.unknown == ["spec.foo"]
    assert result.duplicates == ["metadata.name", "metadata.labels.x", "spec.replicas",
                                 "spec.template.spec.containers[0].image"]
    assert obj["spec"]["replicas"] == 2 and obj["metadata"]["name"] == "b"
    # Without the bytes duplicates cannot be seen.
    assert check_dep(decode_body(raw, "application/json")).duplicates == []


def test_duplicates_inside_free_form_values_are_not_reported():
    raw = (b'{"apiVersion":"apps/v1","kind":"ControllerRevision","metadata":{"name":"r"},'
           b'"revision":1,"data":{"a":1,"a":2}}')
    result = check_object(REVISION, decode_body(raw, "application/json"), "ControllerRevision",
                          "apps/v1", raw)
    assert result.duplicates == []


def test_whitespace_and_colons_in_strings_do_not_fool_duplicate_detection():
    obj = deployment()
    obj["metadata"]["annotations"]["note"] = 'a "b": c, {"d": 1}'
    raw = orjson.dumps(obj, option=orjson.OPT_INDENT_2)
    assert check_dep(decode_body(raw, "application/json"), raw).duplicates == []


def test_strict_error_and_warning_texts():
    unknown, dups = ["spec.foo", "spec.bar"], ["metadata.name"]
    assert strict_message(unknown, dups) == ('strict decoding error: unknown field "spec.foo", '
                                             'unknown field "spec.bar", duplicate field "metadata.name"')
    err = strict_error("Deployment", unknown, [])
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == 'strict decoding error: unknown field "spec.foo", unknown field "spec.bar"'
    full = strict_error("Deployment", ["spec.foo"], [], api_version="apps/v1")
    assert full.message == (DEP_PREFIX + 'strict decoding error: unknown field "spec.foo"')
    assert warnings(unknown, dups) == ['unknown field "spec.foo"', 'unknown field "spec.bar"',
                                       'duplicate field "metadata.name"']


def test_yaml_duplicates_use_go_yaml_wording():
    raw = (b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n  name: b\n"
           b"spec:\n  replicas: 1\n  zz: 1\n  replicas: 2\n")
    obj = decode_body(raw, "application/yaml")
    result = check_dep(obj, raw)
    assert result.unknown == ["spec.zz"]
    assert result.duplicates == ["metadata.name", "spec.replicas"]
    assert all(isinstance(d, YamlDuplicate) for d in result.duplicates)
    assert strict_message(result.unknown, result.duplicates) == (
        'strict decoding error: yaml: unmarshal errors:\n  line 5: key "name" already set in map\n'
        '  line 9: key "replicas" already set in map, unknown field "spec.zz"')
    assert warnings(result.unknown, result.duplicates) == [
        'line 5: key "name" already set in map', 'line 9: key "replicas" already set in map',
        'unknown field "spec.zz"']
    assert obj["spec"]["replicas"] == 2


# ---- body decoding -------------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    (b"", "unexpected end of JSON input"),
    (b'{"a":1', "unexpected end of JSON input"),
    (b'{"a":1,}', "invalid character '}' looking for beginning of object key string"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair"),
    (b"[1 2]", "invalid character '2' after array element"),
    (b'{"a":1} x', "invalid character 'x' after top-level value"),
    (b"{'a':1}", "invalid character '\\'' looking for beginning of object key string"),
    (b'{"a":tru}', "invalid character '}' in literal true (expecting 'e')"),
    (b'{"a":-x}', "invalid character 'x' in numeric literal"),
    (b'{"a":1.}', "invalid character '}' after decimal point in numeric literal"),
    (b'{"a":1e}', "invalid character '}' in exponent of numeric literal"),
    (b'{"a":"\\q"}', "invalid character 'q' in string escape code"),
    (b'{"a":"\\u12x4"}', "invalid character 'x' in \\u hexadecimal character escape"),
    (b'{"a":"x\ny"}', "invalid character '\\n' in string literal"),
    (b'{"a":01}', "invalid character '1' after object key:value pair"),
    (b"\xef\xbb\xbf{}", "invalid character '\u00ef' looking for beginning of value"),
    (b"nul", "invalid character ' ' in literal null (expecting 'l')"),
])
def test_json_syntax_errors(body, message):
    assert json_syntax_error(body) == message
    with pytest.raises(ApiError) as e:
        decode_body(body, "application/json")
    assert e.value.code == 400
    assert e.value.message == f"couldn't get version/kind; json parse error: {message}"


def test_json_error_wrapped_with_kind():
    with pytest.raises(ApiError) as e:
        decode_body(b'{"kind":"Deployment",', "application/json", kind="Deployment")
    assert e.value.message == (
        "the object provided is unrecognized (must be of type Deployment): couldn't get "
        'version/kind; json parse error: unexpected end of JSON input ({"kind":"Deployment",)')


def test_json_that_go_accepts_but_orjson_does_not():
    assert decode_body(b'{"a":"\xff","b":"\\ud800"}', "application/json") == \
        {"a": "\ufffd", "b": "\ufffd"}
    assert json_syntax_error(b'{"a":[1,{"b":null}]} ') is None


def test_yaml_bodies_follow_go_yaml_v2():
    body = (b"kind: Deployment\napiVersion: apps/v1\n"
            b"a: yes\nb: off\nc: 010\nd: 1_000\ne: 2024-01-01\nf: 3.0\ng: 0x1F\nh: ~\n"
            b"i: '010'\nj: 1e3\nk: .5\nl: 1.5\nm: \"true\"\nneg: -0b101\ny: key\n"
            b"list:\n  - x\n  - 1\n---\nsecond: document\n")
    out = decode_body(body, "application/yaml")
    assert out == {"kind": "Deployment", "apiVersion": "apps/v1", "a": True, "b": False, "c": 8,
                   "d": 1000, "e": "2024-01-01", "f": 3, "g": 31, "h": None, "i": "010",
                   "j": 1000, "k": 0.5, "l": 1.5, "m": "true", "neg": -5, "list": ["x", 1],
                   "true": "key"}  # a plain `y` key is a YAML 1.1 boolean to go-yaml v2
    # encoding/json writes the keys of the converted map sorted.
    assert list(out) == sorted(out)


def test_yaml_anchors_and_merge_keys():
    body = b"base: &b {p: 1, q: 2}\nuse:\n  <<: *b\n  q: 3\nref: *b\n"
    assert decode_body(body, "application/yaml") == {
        "base": {"p": 1, "q": 2}, "use": {"p": 1, "q": 3}, "ref": {"p": 1, "q": 2}}


def test_json_sent_as_yaml():
    out = decode_body(b'{"b": 3.0, "a": [1.5, 2.0]}', "application/yaml; charset=utf-8")
    assert out == {"a": [1.5, 2], "b": 3} and list(out) == ["a", "b"]


@pytest.mark.parametrize("body, message", [
    (b"a: b: c", "yaml: mapping values are not allowed in this context"),
    (b"a:\n\tb: c", "yaml: line 2: found character that cannot start any token"),
    (b"a: [1, 2", "yaml: line 1: did not find expected ',' or ']'"),
    (b"a: *nope", "yaml: unknown anchor 'nope' referenced"),
    (b"a: .inf", "json: unsupported value: +Inf"),
    (b"a: !!int abc", "yaml: cannot decode !!str `abc` as a !!int"),
])
def test_yaml_errors(body, message):
    with pytest.raises(ApiError) as e:
        decode_body(body, "application/yaml")
    assert e.value.code == 400 and e.value.message == message


def test_yaml_error_wrapped_with_kind_summarises_in_hex():
    with pytest.raises(ApiError) as e:
        decode_body(b"a: b: c", "application/yaml", kind="Pod")
    assert e.value.message == ("the object provided is unrecognized (must be of type Pod): "
                               "yaml: mapping values are not allowed in this context "
                               f"({b'a: b: c'.hex()})")


def test_decode_and_check_end_to_end_through_yaml():
    body = b"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2.0
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx
        imagePullPolice: Always
"""
    result = check_dep(decode_body(body, "application/yaml"), body)
    assert result.unknown == ["spec.template.spec.containers[0].imagePullPolice"]
    assert result.obj["spec"]["replicas"] == 2


# ---- speed ---------------------------------------------------------------------------------------

def big_pod(n: int) -> dict:
    containers = [{
        "name": f"c{i}", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", "sleep 3600"], "args": ["--port", "8080"],
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "env": [{"name": f"E{j}", "value": str(j)} for j in range(5)]
        + [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                      "requests": {"cpu": "100m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                           "initialDelaySeconds": 5, "periodSeconds": 10},
        "securityContext": {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
    } for i in range(n)]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "big", "namespace": "default", "labels": {"app": "big"},
                         "creationTimestamp": None},
            "spec": {"containers": containers, "volumes": [{"name": "data", "emptyDir": {}}],
                     "restartPolicy": "Always", "nodeSelector": {"disk": "ssd"}}}


def test_timing_of_a_50_container_pod(capsys):
    raw = orjson.dumps(big_pod(50))
    check_object(POD, orjson.loads(raw), "Pod", "v1", raw)  # compile the schema first
    rounds = 100
    bodies = [orjson.loads(raw) for _ in range(rounds)]
    start = time.perf_counter()
    for body in bodies:
        result = check_object(POD, body, "Pod", "v1", raw)
    per = (time.perf_counter() - start) / rounds
    assert result.unknown == [] and result.duplicates == []
    with capsys.disabled():
        print(f"\n[decode] 50-container pod ({len(raw)} bytes): {per * 1e6:.0f} us per "
              f"check_object with raw bytes ({1 / per:.0f}/s)")


def test_compiled_types_are_cached():
    check_dep(deployment())
    before = len(decode._compiled)
    check_dep(deployment())
    assert len(decode._compiled) == before
