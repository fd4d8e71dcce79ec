"""Validation: the messages and field paths kube-apiserver returns, compared as exact strings."""

from __future__ import annotations

import copy

import pytest

from pocketkube.api.defaults import apply_defaults
from pocketkube.api.errors import aggregate
from pocketkube.api.resources import by_kind
from pocketkube.api.validation import validate, validate_status_update

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric character "
    "(e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
    "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
    "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def errors(
    api_version: str, kind: str, obj: dict, old: dict | None = None, *, defaults: bool = True
) -> list[str]:
    res = by_kind(api_version, kind)
    if defaults:
        apply_defaults(res, obj, create=old is None)
    return [str(e) for e in validate(res, obj, old)]


def status_errors(api_version: str, kind: str, obj: dict, old: dict) -> list[str]:
    return [str(e) for e in validate_status_update(by_kind(api_version, kind), obj, old)]


def updated(obj: dict, fn) -> dict:
    new = copy.deepcopy(obj)
    new["metadata"]["resourceVersion"] = "2"
    fn(new)
    return new


def container(**kw) -> dict:
    return {"name": "c", "image": "nginx:1.25", **kw}


def pod(**spec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [container()], **spec},
    }


def deployment(**spec) -> dict:
    base = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container()]}},
    }
    base.update(spec)
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": base}


# --- metadata --------------------------------------------------------------------------------


def test_valid_pod_has_no_errors():
    assert errors("v1", "Pod", pod()) == []


def test_a_spec_found_valid_once_still_reports_what_differs():
    # Pods from one template are validated once; any other spec is validated in full.
    assert errors("v1", "Pod", pod()) == []
    assert errors("v1", "Pod", pod()) == []
    assert errors("v1", "Pod", pod(restartPolicy="Sometimes")) == [
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']
    bad = pod()
    bad["spec"]["containers"][0]["name"] = "Bad_Name"
    assert any(e.startswith("spec.containers[0].name: Invalid value: \"Bad_Name\"") for e in errors("v1", "Pod", bad))
    # Ephemeral claims are named after the pod: such specs are checked with each pod's name.
    eph = {"name": "v", "ephemeral": {"volumeClaimTemplate": {"spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}
    ok = pod(volumes=[eph])
    assert errors("v1", "Pod", ok) == []
    long_name = pod(volumes=[eph])
    long_name["metadata"]["name"] = "p" * 252  # a valid pod name, but its claim's would be 254 long
    assert [e.split(":")[0] for e in errors("v1", "Pod", long_name)] == ["spec.volumes[0].name"]


def test_status_update_skips_only_unchanged_metadata():
    old = pod()
    old["metadata"]["resourceVersion"] = "1"
    old["metadata"]["labels"] = {"app": "web"}
    apply_defaults(by_kind("v1", "Pod"), old, create=True)
    new = updated(old, lambda o: o.update(status={"phase": "Running"}))
    assert status_errors("v1", "Pod", new, old) == []
    relabelled = updated(old, lambda o: o["metadata"]["labels"].update({"bad key!": "x"}))
    assert any(e.startswith("metadata.labels: Invalid value: \"bad key!\"")
               for e in status_errors("v1", "Pod", relabelled, old))


def test_name_required():
    p = pod()
    del p["metadata"]["name"]
    assert errors("v1", "Pod", p) == [
        "metadata.name: Required value: name or generateName is required"
    ]


def test_invalid_subdomain_name():
    p = pod()
    p["metadata"]["name"] = "Bad_Name"
    assert errors("v1", "Pod", p) == [f'metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_MSG}']


def test_namespace_required_for_namespaced_kinds():
    p = pod()
    del p["metadata"]["namespace"]
    assert errors("v1", "Pod", p) == ["metadata.namespace: Required value"]


def test_namespace_forbidden_for_cluster_kinds():
    ns = {"metadata": {"name": "team", "namespace": "default"}}
    assert errors("v1", "Namespace", ns) == [
        "metadata.namespace: Forbidden: not allowed on this type"
    ]


def test_namespace_name_is_a_dns_label():
    assert errors("v1", "Namespace", {"metadata": {"name": "a.b"}}) == [
        'metadata.name: Invalid value: "a.b": must not contain dots'
    ]


def test_service_name_is_a_dns_1035_label():
    svc = {"metadata": {"name": "1web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}
    assert errors("v1", "Service", svc) == [
        'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case '
        "alphanumeric characters or '-', start with an alphabetic character, and end with an "
        "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
        "'[a-z]([-a-z0-9]*[a-z0-9])?')"
    ]


def test_statefulset_name_is_a_dns_label():
    sts = deployment()
    sts["metadata"]["name"] = "web.v1"
    assert errors("apps/v1", "StatefulSet", sts) == [
        'metadata.name: Invalid value: "web.v1": must not contain dots'
    ]


def test_generate_name_is_checked_as_a_prefix():
    p = pod()
    p["metadata"]["generateName"] = "web-"
    assert errors("v1", "Pod", p) == []
    p["metadata"]["generateName"] = "Web-"
    assert errors("v1", "Pod", p)[0].startswith('metadata.generateName: Invalid value: "Web-": ')


def test_labels_and_annotations():
    p = pod()
    p["metadata"]["labels"] = {"app": "bad value"}
    p["metadata"]["annotations"] = {"bad key!": "x"}
    errs = errors("v1", "Pod", p)
    assert errs[0].startswith(
        'metadata.labels: Invalid value: "bad value": a valid label must be '
        "an empty string or consist of alphanumeric characters"
    )
    assert errs[1].startswith(
        'metadata.annotations: Invalid value: "bad key!": name part must '
        "consist of alphanumeric characters"
    )


def test_owner_references():
    p = pod()
    p["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "a",
            "uid": "1",
            "controller": True,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "b",
            "uid": "2",
            "controller": True,
        },
        {"apiVersion": "", "kind": "", "name": "", "uid": ""},
    ]
    errs = errors("v1", "Pod", p)
    assert errs[0].startswith("metadata.ownerReferences: Invalid value: [{")
    assert errs[0].endswith(
        ': Only one reference can have Controller set to true. Found "true" '
        "in references for ReplicaSet/a and ReplicaSet/b"
    )
    assert errs[1:] == [
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        'metadata.ownerReferences.kind: Invalid value: "": must not be empty',
        'metadata.ownerReferences.name: Invalid value: "": must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": must not be empty',
    ]


def test_event_cannot_be_an_owner():
    p = pod()
    ref = {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"}
    p["metadata"]["ownerReferences"] = [ref]
    assert errors("v1", "Pod", p) == [
        'metadata.ownerReferences: Invalid value: {"apiVersion":"v1","kind":"Event","name":"e",'
        '"uid":"1"}: /v1, Kind=Event is disallowed from being an owner'
    ]


def test_finalizers():
    p = pod()
    p["metadata"]["finalizers"] = ["orphan", "foregroundDeletion", "mine", "example.com/ok"]
    assert errors("v1", "Pod", p) == [
        'metadata.finalizers: Invalid value: ["orphan","foregroundDeletion","mine",'
        '"example.com/ok"]: finalizer orphan and foregroundDeletion cannot be both set',
        'metadata.finalizers[2]: Invalid value: "mine": name is neither a standard finalizer '
        "name nor is it fully qualified",
    ]


def test_immutable_metadata_on_update():
    old = pod()
    apply_defaults(by_kind("v1", "Pod"), old)
    old["metadata"].update({"uid": "u1", "resourceVersion": "1"})

    def change(p):
        p["metadata"]["name"] = "q"
        p["metadata"]["uid"] = "u2"

    assert errors("v1", "Pod", updated(old, change), old, defaults=False) == [
        'metadata.name: Invalid value: "q": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
    ]


def test_no_new_finalizers_while_deleting():
    old = pod()
    apply_defaults(by_kind("v1", "Pod"), old)
    old["metadata"].update(
        {
            "resourceVersion": "1",
            "deletionTimestamp": "2024-01-01T00:00:00Z",
            "finalizers": ["a.io/x"],
        }
    )
    new = updated(old, lambda p: p["metadata"].update(finalizers=["a.io/x", "b.io/y"]))
    assert errors("v1", "Pod", new, old, defaults=False) == [
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being "
        'deleted, found new finalizers []string{"b.io/y"}'
    ]


# --- pods ------------------------------------------------------------------------------------


def test_containers_required():
    assert errors("v1", "Pod", pod(containers=[])) == ["spec.containers: Required value"]


def test_container_name_and_image():
    p = pod(containers=[{"name": "Web_1"}, {"name": "", "image": "x"}])
    assert errors("v1", "Pod", p) == [
        f'spec.containers[0].name: Invalid value: "Web_1": {LABEL_MSG}',
        "spec.containers[0].image: Required value",
        "spec.containers[1].name: Required value",
    ]


def test_duplicate_container_names_across_init_containers():
    p = pod(containers=[container(), container()], initContainers=[container()])
    assert errors("v1", "Pod", p) == [
        'spec.containers[1].name: Duplicate value: "c"',
        'spec.initContainers[0].name: Duplicate value: "c"',
    ]


def test_enum_fields():
    p = pod(
        restartPolicy="Sometimes",
        dnsPolicy="Magic",
        containers=[
            container(
                imagePullPolicy="Sometimes",
                terminationMessagePolicy="Nope",
                ports=[{"containerPort": 80, "protocol": "HTTP"}],
            )
        ],
    )
    assert errors("v1", "Pod", p) == [
        'spec.containers[0].terminationMessagePolicy: Unsupported value: "Nope": supported '
        'values: "File", "FallbackToLogsOnError"',
        'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: '
        '"SCTP", "TCP", "UDP"',
        'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: '
        '"Always", "IfNotPresent", "Never"',
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"OnFailure", "Never"',
        'spec.dnsPolicy: Unsupported value: "Magic": supported values: "ClusterFirstWithHostNet", '
        '"ClusterFirst", "Default", "None"',
    ]


def test_ports():
    p = pod(
        containers=[
            container(
                ports=[
                    {"name": "http", "containerPort": 80},
                    {"name": "http", "containerPort": 81},
                    {"containerPort": 70000},
                    {"name": "Bad--", "containerPort": 1},
                    {"hostPort": 80},
                ]
            )
        ]
    )
    assert errors("v1", "Pod", p) == [
        'spec.containers[0].ports[1].name: Duplicate value: "http"',
        "spec.containers[0].ports[2].containerPort: Invalid value: 70000: must be between 1 and "
        "65535, inclusive",
        'spec.containers[0].ports[3].name: Invalid value: "Bad--": must contain only '
        "alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        'spec.containers[0].ports[3].name: Invalid value: "Bad--": must not contain consecutive '
        "hyphens",
        'spec.containers[0].ports[3].name: Invalid value: "Bad--": must not begin or end with a '
        "hyphen",
        "spec.containers[0].ports[4].containerPort: Required value",
    ]


def test_host_port_conflicts():
    p = pod(
        containers=[
            container(ports=[{"containerPort": 80, "hostPort": 8080}]),
            container(name="d", ports=[{"containerPort": 81, "hostPort": 8080}]),
        ]
    )
    assert errors("v1", "Pod", p) == [
        'spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"'
    ]


def test_volumes_and_mounts():
    p = pod(
        volumes=[
            {"name": "data", "emptyDir": {}},
            {"name": "data", "emptyDir": {}},
            {"name": "two", "emptyDir": {}, "hostPath": {"path": "/x"}},
            {"name": "cm", "configMap": {"defaultMode": 1000}},
        ],
        containers=[
            container(
                volumeMounts=[
                    {"name": "data", "mountPath": "/d"},
                    {"name": "missing", "mountPath": "/d"},
                ]
            )
        ],
    )
    assert errors("v1", "Pod", p) == [
        'spec.volumes[1].name: Duplicate value: "data"',
        "spec.volumes[2].hostPath: Forbidden: may not specify more than 1 volume type",
        "spec.volumes[3].configMap.name: Required value",
        "spec.volumes[3].configMap.defaultMode: Invalid value: 1000: must be a number between 0 "
        "and 0777 (octal), both inclusive",
        'spec.containers[0].volumeMounts[1].name: Not found: "missing"',
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/d": must be unique',
    ]


def test_volume_source_required_when_explicitly_empty():
    # Defaulting turns a bare volume into an emptyDir, so only undefaulted input hits this.
    p = pod(volumes=[{"name": "v"}])
    errs = errors("v1", "Pod", p, defaults=False)
    assert errs[0] == "spec.terminationGracePeriodSeconds: Required value"
    assert "spec.volumes[0]: Required value: must specify a volume type" in errs


def test_env():
    p = pod(
        containers=[
            container(
                env=[
                    {"name": ""},
                    {"name": "A=B"},
                    {"name": "X", "valueFrom": {}},
                    {
                        "name": "Y",
                        "value": "v",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                    },
                    {"name": "Z", "valueFrom": {"fieldRef": {"fieldPath": "spec.nope"}}},
                    {"name": "W", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}},
                    {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a b"}}},
                ]
            )
        ]
    )
    errs = errors("v1", "Pod", p)
    assert errs[:6] == [
        "spec.containers[0].env[0].name: Required value",
        'spec.containers[0].env[1].name: Invalid value: "A=B": a valid environment variable name '
        "must consist only of printable ASCII characters other than '='",
        'spec.containers[0].env[2].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
        "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        'spec.containers[0].env[3].valueFrom: Invalid value: "": may not be specified when '
        "`value` is not empty",
        'spec.containers[0].env[4].valueFrom.fieldRef.fieldPath: Invalid value: "spec.nope": '
        "error converting fieldPath: field label not supported: spec.nope",
        "spec.containers[0].env[5].valueFrom.fieldRef.fieldPath: Unsupported value: "
        '"status.phase": supported values: "metadata.name", "metadata.namespace", '
        '"metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", '
        '"status.hostIPs", "status.podIP", "status.podIPs"',
    ]
    assert errs[6].startswith(
        "spec.containers[0].env[6].valueFrom.configMapKeyRef.key: Invalid "
        'value: "a b": a valid config key must consist of alphanumeric '
        "characters, '-', '_' or '.'"
    )


def test_resources_requests_must_not_exceed_limits():
    p = pod(
        containers=[
            container(
                resources={
                    "limits": {"cpu": "100m", "memory": "1Gi"},
                    "requests": {"cpu": "0.5", "memory": "512Mi"},
                }
            )
        ]
    )
    assert errors("v1", "Pod", p) == [
        'spec.containers[0].resources.requests: Invalid value: "500m": must be less than or '
        "equal to cpu limit of 100m"
    ]


def test_resources_bad_quantities_and_names():
    p = pod(
        containers=[
            container(
                resources={
                    "limits": {"cpu": "lots", "gpu": "1", "example.com/dongle": "1.5"},
                    "requests": {"memory": "-1"},
                }
            )
        ]
    )
    assert errors("v1", "Pod", p) == [
        'spec.containers[0].resources.limits[cpu]: Invalid value: "lots": quantities must match '
        "the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard '
        "resource type or fully qualified",
        'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard '
        "resource for containers",
        'spec.containers[0].resources.limits[example.com/dongle]: Invalid value: "1500m": must be '
        "an integer",
        'spec.containers[0].resources.requests[memory]: Invalid value: "-1": must be greater '
        "than or equal to 0",
        # A Pod's missing requests are defaulted from its limits, so they are reported twice.
        'spec.containers[0].resources.requests[cpu]: Invalid value: "lots": quantities must '
        "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard '
        "resource type or fully qualified",
        'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard '
        "resource for containers",
        'spec.containers[0].resources.requests[example.com/dongle]: Invalid value: "1500m": must '
        "be an integer",
    ]


def test_extended_resources_need_equal_limits():
    p = pod(containers=[container(resources={"requests": {"example.com/gpu": "1"}})])
    assert errors("v1", "Pod", p) == [
        "spec.containers[0].resources.limits: Required value: Limit must be set for non "
        "overcommitable resources"
    ]


def test_probes():
    p = pod(
        containers=[
            container(
                livenessProbe={"successThreshold": 2, "exec": {"command": []}},
                readinessProbe={
                    "httpGet": {"port": 0, "scheme": "FTP"},
                    "terminationGracePeriodSeconds": 5,
                },
                startupProbe={"tcpSocket": {"port": "http"}, "periodSeconds": -1},
            )
        ]
    )
    assert errors("v1", "Pod", p) == [
        "spec.containers[0].livenessProbe.exec.command: Required value",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 "
        "and 65535, inclusive",
        'spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: "FTP": supported '
        'values: "HTTP", "HTTPS"',
        "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: "
        "must not be set for readinessProbes",
        "spec.containers[0].startupProbe.periodSeconds: Invalid value: -1: must be greater than "
        "or equal to 0",
    ]


def test_probe_needs_a_handler():
    p = pod(containers=[container(livenessProbe={})])
    assert errors("v1", "Pod", p) == [
        "spec.containers[0].livenessProbe: Required value: must specify a handler type"
    ]


def test_init_container_probes_need_restart_always():
    p = pod(initContainers=[container(name="i", livenessProbe={"exec": {"command": ["true"]}})])
    assert errors("v1", "Pod", p) == [
        "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers "
        "without restartPolicy=Always"
    ]
    p = pod(
        initContainers=[
            container(
                name="i", restartPolicy="Always", livenessProbe={"exec": {"command": ["true"]}}
            )
        ]
    )
    assert errors("v1", "Pod", p) == []


def test_pod_spec_misc():
    p = pod(
        activeDeadlineSeconds=0,
        hostname="Bad_Host",
        nodeName="node_1",
        tolerations=[
            {"operator": "Equal", "value": "x"},
            {"key": "k", "operator": "Exists", "value": "v"},
            {"key": "k", "tolerationSeconds": 5, "effect": "NoSchedule"},
        ],
    )
    assert errors("v1", "Pod", p) == [
        f'spec.nodeName: Invalid value: "node_1": {SUBDOMAIN_MSG}',
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
        f'spec.hostname: Invalid value: "Bad_Host": {LABEL_MSG}',
        'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when '
        '`key` is empty, which means "match all values and all keys"',
        'spec.tolerations[1].operator: Invalid value: "v": value must be empty when `operator` '
        "is 'Exists'",
        "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' "
        "when `tolerationSeconds` is set",
    ]


def test_pod_only_checks():
    p = pod(containers=[container(image=" nginx")], ephemeralContainers=[container(name="e")])
    assert errors("v1", "Pod", p) == [
        'spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing '
        "whitespace",
        "spec.ephemeralContainers: Forbidden: cannot be set on create",
    ]


def test_host_network_ports_must_match():
    p = pod(hostNetwork=True, containers=[container(ports=[{"containerPort": 80, "hostPort": 81}])])
    assert errors("v1", "Pod", p) == [
        "spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when "
        "`hostNetwork` is true"
    ]


def _stored_pod(**spec) -> dict:
    p = pod(**spec)
    apply_defaults(by_kind("v1", "Pod"), p, create=True)
    p["metadata"].update({"uid": "u", "resourceVersion": "1"})
    return p


def test_pod_update_allows_image_and_deadline_and_tolerations():
    old = _stored_pod(
        activeDeadlineSeconds=100,
        tolerations=[{"key": "a", "operator": "Exists", "effect": "NoExecute"}],
    )

    def change(p):
        p["spec"]["containers"][0]["image"] = "nginx:1.26"
        p["spec"]["activeDeadlineSeconds"] = 50
        p["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})

    assert errors("v1", "Pod", updated(old, change), old) == []


def test_pod_update_forbids_other_changes():
    old = _stored_pod()
    new = updated(old, lambda p: p["spec"].update(restartPolicy="Never"))
    errs = errors("v1", "Pod", new, old)
    assert len(errs) == 1
    assert errs[0].startswith(
        "spec: Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
        "`spec.tolerations` (only additions to existing tolerations),"
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
        "negative)\n"
    )
    assert '- \trestartPolicy: "Always",' in errs[0]
    assert '+ \trestartPolicy: "Never",' in errs[0]


def test_pod_update_container_count_and_deadline():
    old = _stored_pod(activeDeadlineSeconds=10)
    new = updated(old, lambda p: p["spec"]["containers"].append(container(name="d")))
    assert errors("v1", "Pod", new, old) == [
        "spec.containers: Forbidden: pod updates may not add or remove containers"
    ]
    new = updated(old, lambda p: p["spec"].update(activeDeadlineSeconds=20))
    assert errors("v1", "Pod", new, old) == [
        "spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous "
        "value"
    ]
    new = updated(old, lambda p: p["spec"].pop("activeDeadlineSeconds"))
    assert errors("v1", "Pod", new, old) == [
        "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer "
        "to nil value"
    ]


def test_pod_update_tolerations_cannot_be_changed():
    old = _stored_pod(tolerations=[{"key": "a", "operator": "Exists"}])
    new = updated(old, lambda p: p["spec"].update(tolerations=[]))
    assert errors("v1", "Pod", new, old) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its "
        "tolerationSeconds"
    ]


def test_pod_status_update():
    old = _stored_pod()
    old["status"] = {"phase": "Running", "qosClass": "BestEffort"}
    new = updated(old, lambda p: p["status"].update(qosClass="Guaranteed"))
    new["spec"]["nodeName"] = "n1"
    assert status_errors("v1", "Pod", new, old) == [
        "status.nodeName: Forbidden: may not be changed directly",
        'status.qosClass: Invalid value: "Guaranteed": field is immutable',
    ]


def test_terminated_container_cannot_restart_with_never():
    old = _stored_pod(restartPolicy="Never")
    old["status"] = {"containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 1}}}]}
    new = updated(
        old,
        lambda p: p["status"].update(containerStatuses=[{"name": "c", "state": {"running": {}}}]),
    )
    assert status_errors("v1", "Pod", new, old) == [
        "status.containerStatuses[0].state: Forbidden: may not be transitioned to "
        "non-terminated state"
    ]


# --- apps ------------------------------------------------------------------------------------


def test_deployment_valid():
    assert errors("apps/v1", "Deployment", deployment()) == []


def test_deployment_common_errors():
    d = deployment(replicas=-1, selector={"matchLabels": {"app": "other"}})
    d["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert errors("apps/v1", "Deployment", d) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match '
        "template `labels`",
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    ]


def test_deployment_selector_required_and_not_empty():
    d = deployment()
    del d["spec"]["selector"]
    assert errors("apps/v1", "Deployment", d) == [
        "spec.selector: Required value",
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match '
        "template `labels`",
    ]
    assert errors("apps/v1", "Deployment", deployment(selector={})) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for deployment"
    ]


def test_deployment_bad_selector_expression():
    d = deployment(selector={"matchExpressions": [{"key": "app", "operator": "In"}]})
    errs = errors("apps/v1", "Deployment", d)
    assert errs[0] == (
        "spec.selector.matchExpressions[0].values: Required value: must be "
        "specified when `operator` is 'In' or 'NotIn'"
    )


def test_deployment_strategy_rules():
    d = deployment(
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
    )
    assert errors("apps/v1", "Deployment", d) == [
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when "
        "`maxSurge` is 0"
    ]
    d = deployment(
        strategy={
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "1", "maxUnavailable": "110%"},
        }
    )
    assert errors("apps/v1", "Deployment", d) == [
        'spec.strategy.rollingUpdate.maxSurge: Invalid value: "1": a valid percent string must '
        "be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for "
        "validation is '[0-9]+%')",
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "110%": must not be greater '
        "than 100%",
    ]
    d = deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
    assert errors("apps/v1", "Deployment", d) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
        "'Recreate'"
    ]
    d = deployment(strategy={"type": "BlueGreen"})
    assert errors("apps/v1", "Deployment", d) == [
        'spec.strategy: Unsupported value: {"type":"BlueGreen"}: supported values: "Recreate", '
        '"RollingUpdate"'
    ]


def test_deployment_progress_deadline():
    d = deployment(minReadySeconds=600)
    assert errors("apps/v1", "Deployment", d) == [
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
    ]


def _stored(api_version: str, kind: str, obj: dict) -> dict:
    apply_defaults(by_kind(api_version, kind), obj, create=True)
    obj["metadata"].update({"uid": "u", "resourceVersion": "1"})
    return obj


def test_deployment_selector_is_immutable():
    old = _stored("apps/v1", "Deployment", deployment())

    def change(d):
        d["spec"]["selector"] = {"matchLabels": {"app": "web2"}}
        d["spec"]["template"]["metadata"]["labels"] = {"app": "web2"}

    assert errors("apps/v1", "Deployment", updated(old, change), old) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"web2"}}: field is immutable'
    ]


def test_deployment_update_template_allowed():
    old = _stored("apps/v1", "Deployment", deployment())
    new = updated(old, lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="x:2"))
    assert errors("apps/v1", "Deployment", new, old) == []


def test_replicaset_selector_wording_and_immutability():
    assert errors("apps/v1", "ReplicaSet", deployment(selector={})) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for deployment"
    ]
    old = _stored("apps/v1", "ReplicaSet", deployment())
    new = updated(old, lambda d: d["spec"]["selector"]["matchLabels"].update(tier="x"))
    assert (
        errors("apps/v1", "ReplicaSet", new, old)[-1]
        == 'spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"x"}}: '
        "field is immutable"
    )


def test_replicaset_template_active_deadline():
    d = deployment()
    d["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 5
    assert errors("apps/v1", "ReplicaSet", d) == [
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet "
        "is not Supported"
    ]


def statefulset(**spec) -> dict:
    s = deployment(**spec)
    s["spec"]["volumeClaimTemplates"] = [
        {
            "metadata": {"name": "www"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    ]
    s["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "www", "mountPath": "/usr/share/nginx/html"}
    ]
    return s


def test_statefulset_valid_with_claim_template_mounts():
    assert errors("apps/v1", "StatefulSet", statefulset()) == []


def test_statefulset_create_errors():
    s = statefulset(
        podManagementPolicy="Random",
        selector={},
        updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}},
    )
    assert errors("apps/v1", "StatefulSet", s) == [
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        'spec.updateStrategy.rollingUpdate: Invalid value: {"partition":1}: only allowed for '
        "updateStrategy 'RollingUpdate'",
        "spec.selector: Invalid value: {}: empty selector is invalid for statefulset",
    ]


def test_statefulset_update_rules():
    old = _stored("apps/v1", "StatefulSet", statefulset())
    ok = updated(
        old, lambda s: s["spec"].update(replicas=3, minReadySeconds=5, revisionHistoryLimit=3)
    )
    assert errors("apps/v1", "StatefulSet", ok, old) == []
    bad = updated(
        old,
        lambda s: s["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"].update(
            storage="2Gi"
        ),
    )
    assert errors("apps/v1", "StatefulSet", bad, old) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
        "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    ]


def test_statefulset_retention_policy_values():
    s = statefulset(
        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep", "whenScaled": "Delete"}
    )
    assert errors("apps/v1", "StatefulSet", s) == [
        'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": '
        'supported values: "Retain", "Delete"'
    ]


def test_daemonset_rules():
    ds = deployment(
        updateStrategy={
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1},
        }
    )
    assert errors("apps/v1", "DaemonSet", ds) == [
        "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when "
        "maxUnavailable is non-zero"
    ]
    ds = deployment(
        updateStrategy={
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0},
        }
    )
    assert errors("apps/v1", "DaemonSet", ds) == [
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when "
        "maxSurge is 0"
    ]
    assert errors("apps/v1", "DaemonSet", deployment(selector={})) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for daemonset"
    ]


def test_apps_status_updates():
    old = _stored("apps/v1", "Deployment", deployment())
    old["status"] = {"collisionCount": 2}
    new = updated(
        old, lambda d: d.update(status={"replicas": 1, "readyReplicas": 2, "collisionCount": 1})
    )
    assert status_errors("apps/v1", "Deployment", new, old) == [
        "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
        "status.collisionCount: Invalid value: 1: cannot be decremented",
    ]


def test_controller_revision():
    cr = {"metadata": {"name": "r", "namespace": "default"}, "revision": -1}
    assert errors("apps/v1", "ControllerRevision", cr) == [
        "data: Required value: data is mandatory",
        "revision: Invalid value: -1: must be greater than or equal to 0",
    ]


# --- batch -----------------------------------------------------------------------------------


def job(**spec) -> dict:
    return {
        "metadata": {"name": "pi", "namespace": "default", "uid": "1234"},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [container(name="pi")]}},
            **spec,
        },
    }


def test_job_valid():
    assert errors("batch/v1", "Job", job()) == []


def test_job_restart_policy():
    j = job()
    del j["spec"]["template"]["spec"]["restartPolicy"]
    assert errors("batch/v1", "Job", j) == [
        'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
    ]


def test_job_negative_counts_and_indexed():
    j = job(parallelism=-1, completions=-2, backoffLimit=-3, completionMode="Indexed")
    assert errors("batch/v1", "Job", j) == [
        "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
        "spec.completions: Invalid value: -2: must be greater than or equal to 0",
        "spec.backoffLimit: Invalid value: -3: must be greater than or equal to 0",
    ]
    j = job(parallelism=2, completionMode="Indexed")
    assert errors("batch/v1", "Job", j) == [
        "spec.completions: Required value: when completion mode is Indexed"
    ]


def test_job_generated_selector_must_match():
    j = job()
    apply_defaults(by_kind("batch/v1", "Job"), j, create=True)
    j["spec"]["template"]["metadata"]["labels"]["controller-uid"] = "other"
    assert errors("batch/v1", "Job", j, defaults=False) == [
        'spec.template.metadata.labels[controller-uid]: Invalid value: {"job-name":"pi",'
        '"batch.kubernetes.io/job-name":"pi","controller-uid":"other",'
        '"batch.kubernetes.io/controller-uid":"1234"}: must be \'1234\''
    ]


def test_job_without_uid_cannot_generate_a_selector():
    j = job()
    del j["metadata"]["uid"]
    assert errors("batch/v1", "Job", j) == [
        "spec.selector: Required value",
        "spec.template.metadata.labels: Invalid value: {}: `selector` does not match template "
        "`labels`",
    ]


def test_job_update_immutable_fields():
    old = _stored("batch/v1", "Job", job())
    new = updated(old, lambda j: j["spec"].update(completions=5, completionMode="Indexed"))
    assert errors("batch/v1", "Job", new, old) == [
        "spec.completions: Invalid value: 5: can only be modified in tandem with spec.parallelism",
        'spec.completionMode: Invalid value: "Indexed": field is immutable',
    ]
    new = updated(old, lambda j: j["spec"]["template"]["spec"]["containers"][0].update(image="x"))
    errs = errors("batch/v1", "Job", new, old)
    assert len(errs) == 1
    assert errs[0].startswith('spec.template: Invalid value: {"spec":')
    assert errs[0].endswith(": field is immutable")


def test_suspended_job_may_change_scheduling_directives():
    old = _stored("batch/v1", "Job", job(suspend=True))
    new = updated(old, lambda j: j["spec"]["template"]["spec"].update(nodeSelector={"a": "b"}))
    assert errors("batch/v1", "Job", new, old) == []


def test_job_pod_failure_policy():
    j = job(
        podFailurePolicy={
            "rules": [
                {"action": "Nope"},
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3, 0, 3]}},
            ]
        }
    )
    assert errors("batch/v1", "Job", j) == [
        'spec.podFailurePolicy.rules[0].action: Unsupported value: "Nope": supported values: '
        '"Count", "FailIndex", "FailJob", "Ignore"',
        "spec.podFailurePolicy.rules[0]: Invalid value: specifying one of OnExitCodes and "
        "OnPodConditions is required",
        "spec.podFailurePolicy.rules[1].onExitCodes.values[1]: Invalid value: 0: must not be 0 "
        "for the In operator",
        "spec.podFailurePolicy.rules[1].onExitCodes.values[2]: Duplicate value: 3",
        "spec.podFailurePolicy.rules[1].onExitCodes.values: Invalid value: [3,0,3]: must be "
        "ordered",
    ]


def test_job_status():
    old = _stored("batch/v1", "Job", job())
    old["status"] = {"succeeded": 2}
    new = updated(old, lambda j: j.update(status={"succeeded": 1, "active": -1}))
    assert status_errors("batch/v1", "Job", new, old) == [
        "status.active: Invalid value: -1: must be greater than or equal to 0",
        "status.succeeded: Invalid value: 1: cannot decrease the succeeded counter",
    ]


def cronjob(**spec) -> dict:
    base = {
        "schedule": "*/5 * * * *",
        "jobTemplate": {
            "spec": {
                "template": {"spec": {"restartPolicy": "OnFailure", "containers": [container()]}}
            }
        },
    }
    base.update(spec)
    return {"metadata": {"name": "cj", "namespace": "default"}, "spec": base}


def test_cronjob_valid():
    assert errors("batch/v1", "CronJob", cronjob()) == []


def test_cronjob_errors():
    cj = cronjob(schedule="*/5 * * *", concurrencyPolicy="Sometimes", timeZone="Mars/Olympus")
    cj["metadata"]["name"] = "x" * 53
    cj["spec"]["jobTemplate"]["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    assert errors("batch/v1", "CronJob", cj) == [
        'spec.schedule: Invalid value: "*/5 * * *": expected exactly 5 fields, found 4: '
        "[*/5 * * *]",
        'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
        'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", '
        '"Forbid", "Replace"',
        'spec.jobTemplate.spec.selector: Invalid value: {"matchLabels":{"a":"b"}}: `selector` '
        "will be auto-generated",
        f'metadata.name: Invalid value: "{"x" * 53}": must be no more than 52 characters',
    ]


def test_cronjob_schedule_rules():
    assert errors("batch/v1", "CronJob", cronjob(schedule="")) == ["spec.schedule: Required value"]
    assert errors("batch/v1", "CronJob", cronjob(schedule="@hourly")) == []
    assert errors("batch/v1", "CronJob", cronjob(schedule="@often")) == [
        'spec.schedule: Invalid value: "@often": unrecognized descriptor: @often'
    ]
    assert errors("batch/v1", "CronJob", cronjob(schedule="TZ=UTC 0 * * * *")) == [
        'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, '
        "use timeZone field instead"
    ]
    assert errors("batch/v1", "CronJob", cronjob(timeZone="Europe/Berlin")) == []
    assert errors("batch/v1", "CronJob", cronjob(timeZone="Local")) == [
        'spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as defined '
        "in https://www.iana.org/time-zones"
    ]


def test_cronjob_job_template_restart_policy():
    cj = cronjob()
    del cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"]
    assert errors("batch/v1", "CronJob", cj) == [
        "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "
        '"OnFailure", "Never"'
    ]


# --- core kinds ------------------------------------------------------------------------------


def service(**spec) -> dict:
    base = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    base.update(spec)
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": base}


def test_service_valid():
    assert errors("v1", "Service", service()) == []
    assert errors("v1", "Service", service(ports=[], clusterIP="None")) == []


def test_service_errors():
    s = service(
        ports=[
            {"port": 80},
            {"port": 80, "name": "http"},
            {"port": 0, "name": "b", "protocol": "ICMP"},
        ],
        type="Magic",
        sessionAffinity="Sticky",
    )
    assert errors("v1", "Service", s) == [
        "spec.ports[0].name: Required value",
        "spec.ports[2].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[2].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        "spec.ports[2].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"',
        'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
        '"LoadBalancer", "NodePort"',
        'spec.ports[1]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,'
        '"TargetPort":0,"NodePort":0}',
    ]


def test_service_ports_required_and_node_port_on_cluster_ip():
    assert errors("v1", "Service", service(ports=[])) == ["spec.ports: Required value"]
    s = service(ports=[{"port": 80, "nodePort": 30080}])
    assert errors("v1", "Service", s) == [
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    ]


def test_external_name_service():
    s = service(type="ExternalName", externalName="Not_A_Host", ports=[])
    assert errors("v1", "Service", s) == [
        f'spec.externalName: Invalid value: "Not_A_Host": {SUBDOMAIN_MSG}'
    ]


def test_service_cluster_ip_cannot_change():
    old = _stored("v1", "Service", service(clusterIP="10.0.0.5"))
    new = updated(old, lambda s: s["spec"].update(clusterIP="10.0.0.6", clusterIPs=["10.0.0.6"]))
    assert errors("v1", "Service", new, old) == [
        'spec.clusterIPs[0]: Invalid value: ["10.0.0.6"]: may not change once set'
    ]


def test_namespace_finalizer_names():
    ns = {"metadata": {"name": "team"}, "spec": {"finalizers": ["bogus"]}}
    assert errors("v1", "Namespace", ns) == [
        'spec.finalizers: Invalid value: "bogus": name is neither a standard finalizer name nor '
        "is it fully qualified"
    ]


def test_namespace_status_phase():
    old = _stored("v1", "Namespace", {"metadata": {"name": "team"}})
    new = updated(old, lambda n: n["status"].update(phase="Terminating"))
    assert status_errors("v1", "Namespace", new, old) == [
        "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` "
        "is empty"
    ]


def test_configmap_keys():
    cm = {
        "metadata": {"name": "c", "namespace": "default"},
        "data": {"a b": "x", "..": "y", "dup": "z"},
        "binaryData": {"dup": "eg=="},
    }
    errs = errors("v1", "ConfigMap", cm)
    assert errs[0].startswith(
        'data[a b]: Invalid value: "a b": a valid config key must consist of '
        "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
        "'KEY_NAME',  or 'key-name', regex used for validation is "
        "'[-._a-zA-Z0-9]+')"
    )
    assert errs[1:] == [
        "data[..]: Invalid value: \"..\": must not be '..'",
        'data[dup]: Invalid value: "dup": duplicate of key present in binaryData',
    ]


def test_immutable_configmap():
    old = _stored(
        "v1",
        "ConfigMap",
        {"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}, "immutable": True},
    )
    new = updated(old, lambda c: c.update(data={"a": "2"}, immutable=False))
    assert errors("v1", "ConfigMap", new, old) == [
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set",
    ]


def test_secret_type_rules():
    s = {
        "metadata": {"name": "s", "namespace": "default"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "eA=="},
    }
    assert errors("v1", "Secret", s) == ["data[tls.key]: Required value"]
    old = _stored("v1", "Secret", {"metadata": {"name": "s", "namespace": "default"}})
    new = updated(
        old, lambda x: x.update(type="kubernetes.io/basic-auth", data={"username": "eA=="})
    )
    assert errors("v1", "Secret", new, old) == [
        'type: Invalid value: "kubernetes.io/basic-auth": field is immutable'
    ]


def test_pvc_validation():
    pvc = {
        "metadata": {"name": "c", "namespace": "default"},
        "spec": {
            "accessModes": [],
            "resources": {"requests": {"storage": "0"}},
            "storageClassName": "Fast_SSD",
            "volumeMode": "Raw",
        },
    }
    assert errors("v1", "PersistentVolumeClaim", pvc) == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        'spec.resources[storage]: Invalid value: "0": must be greater than zero',
        f'spec.storageClassName: Invalid value: "Fast_SSD": {SUBDOMAIN_MSG}',
        'spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"',
    ]


def test_pvc_access_modes():
    pvc = {
        "metadata": {"name": "c", "namespace": "default"},
        "spec": {
            "accessModes": ["ReadWriteOncePod", "ReadWriteOnce", "RWX"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    assert errors("v1", "PersistentVolumeClaim", pvc) == [
        'spec.accessModes: Unsupported value: "RWX": supported values: "ReadOnlyMany", '
        '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
        "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
    ]


def _pvc() -> dict:
    return {
        "metadata": {"name": "c", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def test_pvc_update_rules():
    old = _stored("v1", "PersistentVolumeClaim", _pvc())
    bound = copy.deepcopy(old)
    bound["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    grow = updated(bound, lambda c: c["spec"]["resources"]["requests"].update(storage="2Gi"))
    assert errors("v1", "PersistentVolumeClaim", grow, bound) == []
    # An unbound claim cannot change its request; nobody can shrink below the capacity.
    grow_unbound = updated(old, lambda c: c["spec"]["resources"]["requests"].update(storage="2Gi"))
    errs = errors("v1", "PersistentVolumeClaim", grow_unbound, old)
    assert errs[0].startswith(
        "spec: Forbidden: spec is immutable after creation except "
        "resources.requests and volumeAttributesClassName for bound claims\n"
    )
    shrink = updated(bound, lambda c: c["spec"]["resources"]["requests"].update(storage="512Mi"))
    assert errors("v1", "PersistentVolumeClaim", shrink, bound) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
    ]
    # volumeName may be set once.
    bind = updated(old, lambda c: c["spec"].update(volumeName="pv-1"))
    assert errors("v1", "PersistentVolumeClaim", bind, old) == []


def test_pv_validation():
    pv = {"metadata": {"name": "pv"}, "spec": {"persistentVolumeReclaimPolicy": "Keep"}}
    assert errors("v1", "PersistentVolume", pv) == [
        "spec.accessModes: Required value",
        "spec.capacity: Required value",
        'spec.capacity: Unsupported value: {}: supported values: "storage"',
        'spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: '
        '"Delete", "Recycle", "Retain"',
        "spec: Required value: must specify a volume type",
    ]


def test_pv_source_is_immutable():
    old = _stored(
        "v1",
        "PersistentVolume",
        {
            "metadata": {"name": "pv"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "capacity": {"storage": "1Gi"},
                "hostPath": {"path": "/a"},
            },
        },
    )
    new = updated(old, lambda p: p["spec"]["hostPath"].update(path="/b"))
    errs = errors("v1", "PersistentVolume", new, old)
    assert len(errs) == 1
    assert errs[0].startswith(
        "spec.persistentvolumesource: Forbidden: "
        "spec.persistentvolumesource is immutable after creation\n"
    )


def test_node_validation():
    node = {
        "metadata": {"name": "n1"},
        "spec": {
            "taints": [
                {"key": "a", "effect": "NoSchedule"},
                {"key": "a", "effect": "NoSchedule"},
                {"key": "b", "effect": "Sometimes"},
            ]
        },
        "status": {"capacity": {"cpu": "x"}},
    }
    assert errors("v1", "Node", node) == [
        'metadata.taints[1]: Duplicate value: {"key":"a","effect":"NoSchedule"}: taints must be '
        "unique by key and effect pair",
        'metadata.taints[2].effect: Unsupported value: "Sometimes": supported values: '
        '"NoSchedule", "PreferNoSchedule", "NoExecute"',
        'status.capacity.cpu: Invalid value: "x": quantities must match the regular expression '
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        'status.allocatable.cpu: Invalid value: "x": quantities must match the regular '
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    ]


def test_node_pod_cidr_cannot_change():
    old = _stored("v1", "Node", {"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.0.0.0/24"]}})
    new = updated(old, lambda n: n["spec"].update(podCIDRs=["10.0.1.0/24"]))
    assert errors("v1", "Node", new, old) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid'
    ]


def test_storage_class():
    sc = {"metadata": {"name": "fast"}, "provisioner": "", "reclaimPolicy": "Recycle"}
    assert errors("storage.k8s.io/v1", "StorageClass", sc) == [
        "provisioner: Required value",
        'reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"',
    ]
    old = _stored(
        "storage.k8s.io/v1", "StorageClass", {"metadata": {"name": "fast"}, "provisioner": "a.io/b"}
    )
    new = updated(old, lambda s: s.update(parameters={"type": "ssd"}))
    assert errors("storage.k8s.io/v1", "StorageClass", new, old) == [
        "parameters: Forbidden: updates to parameters are forbidden."
    ]


def test_lease():
    lease = {
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1},
    }
    assert errors("coordination.k8s.io/v1", "Lease", lease) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
    ]


def test_core_events_are_lenient():
    ev = {
        "metadata": {"name": "Anything_Goes", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"},
    }
    assert errors("v1", "Event", ev) == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace'
    ]


def test_events_v1_are_strict():
    ev = {
        "metadata": {"name": "e", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "type": "Loud",
        "deprecatedCount": 3,
    }
    assert errors("events.k8s.io/v1", "Event", ev) == [
        "reportingController: Required value",
        'reportingController: Invalid value: "": name part must be non-empty',
        'reportingController: Invalid value: "": name part must consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        "reportingInstance: Required value",
        "action: Required value",
        "reason: Required value",
        'type: Invalid value: "": has invalid value: Loud',
        'count: Invalid value: "": needs to be unset',
    ]


def test_errors_aggregate_like_kubectl_sees_them():
    d = deployment(replicas=-1)
    res = by_kind("apps/v1", "Deployment")
    apply_defaults(res, d)
    errs = validate(res, d)
    assert aggregate(errs) == "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    assert errs[0].cause() == {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: -1: must be greater than or equal to 0",
        "field": "spec.replicas",
    }


@pytest.mark.parametrize(
    "api_version,kind",
    [
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("batch/v1", "Job"),
    ],
)
def test_validation_does_not_modify_the_object(api_version, kind):
    obj = {
        "v1": pod(),
        "apps/v1": statefulset() if kind == "StatefulSet" else deployment(),
        "batch/v1": job(),
    }[api_version]
    apply_defaults(by_kind(api_version, kind), obj, create=True)
    snapshot = copy.deepcopy(obj)
    validate(by_kind(api_version, kind), obj)
    validate(by_kind(api_version, kind), obj, snapshot)
    assert obj == snapshot
