"""Defaulting: each kind's defaulted fields, compared one by one with kube-apiserver's output."""

from __future__ import annotations

import base64
import copy
from decimal import Decimal

import pytest

from pocketkube.api.defaults import apply_defaults, default_pull_policy, image_tag
from pocketkube.api.quantity import (
    ERR_FORMAT_WRONG,
    ERR_SUFFIX,
    canonical,
    milli_value,
    parse,
    parse_quantity,
)
from pocketkube.api.resources import by_kind


def defaulted(api_version: str, kind: str, obj: dict, **kw) -> dict:
    apply_defaults(by_kind(api_version, kind), obj, **kw)
    return obj


def pod_template(**spec) -> dict:
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}], **spec},
    }


# --- quantities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,value",
    [
        ("100m", "0.1"),
        ("32Mi", "33554432"),
        ("1.5Gi", "1610612736"),
        ("2e3", "2000"),
        ("1k", "1000"),
        ("1Ki", "1024"),
        ("0", "0"),
        ("-1", "-1"),
        ("+5", "5"),
        (".5", "0.5"),
        ("1e-3", "0.001"),
        ("12n", "0.000000012"),
        ("1E", "1000000000000000000"),
    ],
)
def test_parse_quantity_values(text, value):
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize(
    "text,err",
    [
        ("", ERR_FORMAT_WRONG),
        ("abc", ERR_FORMAT_WRONG),
        (" 1", ERR_FORMAT_WRONG),
        ("1Mix", ERR_FORMAT_WRONG),
        ("1K", ERR_SUFFIX),
        ("1ee3", ERR_SUFFIX),
        ("1e", ERR_SUFFIX),
    ],
)
def test_parse_quantity_errors(text, err):
    with pytest.raises(ValueError) as e:
        parse_quantity(text)
    assert str(e.value) == err


def test_format_wrong_message_is_upstreams():
    assert ERR_FORMAT_WRONG == (
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


@pytest.mark.parametrize(
    "text,canon",
    [
        ("100m", "100m"),
        ("0.5", "500m"),
        ("1000m", "1"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("1500", "1500"),
        ("2000", "2k"),
        ("1.5k", "1500"),
        ("2e3", "2e3"),
        ("1E3", "1e3"),
        ("8Ki", "8Ki"),
        ("1025Ki", "1025Ki"),
        ("512", "512"),
        ("0.0001", "100u"),
        ("00", "0"),
        ("+1", "1"),
        ("1.", "1"),
        ("12E", "9223372036854775807"),
    ],
)
def test_canonical_quantity(text, canon):
    assert canonical(text) == canon


def test_resource_lists_round_up_to_milli():
    assert canonical("0.0001", milli=True) == "1m"
    assert canonical("1.0001", milli=True) == "1001m"
    assert canonical("100m", milli=True) == "100m"


def test_small_binary_quantity_is_printed_decimal():
    assert parse("0.5Ki").format == "BinarySI"
    assert canonical("0.5Ki") == "512"


@pytest.mark.parametrize(
    "text,stored,stored_in_list",
    [
        # ParseQuantity keeps the text it judges canonical and String() returns it as is.
        ("1.125", "1.125", "1.125"),
        ("1.500", "1.500", "1.500"),
        ("1.024k", "1.024k", "1.024k"),
        ("1E3", "1E3", "1E3"),
        ("2.5e-2", "2.5e-2", "2.5e-2"),
        ("+1", "+1", "+1"),
        ("1e0", "1e0", "1e0"),
        ("12E", "12E", "12E"),
        # Otherwise the canonical spelling; a ResourceList's RoundUp to milli units also drops
        # the kept text when it has to round.
        ("0.5", "500m", "500m"),
        ("0.125", "125m", "125m"),
        ("2.000", "2", "2"),
        ("1024Mi", "1Gi", "1Gi"),
        ("1.5Gi", "1536Mi", "1536Mi"),
        ("12.957489", "12.957489", "12958m"),
        ("500.034u", "500.034u", "1m"),
        (" 1Gi ", "1Gi", "1Gi"),
    ],
)
def test_stored_quantity_spelling(text, stored, stored_in_list):
    pod = defaulted(
        "v1",
        "Pod",
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "i",
                        "resources": {"requests": {"cpu": text}},
                        "env": [
                            {
                                "name": "E",
                                "valueFrom": {
                                    "resourceFieldRef": {"resource": "limits.cpu", "divisor": text}
                                },
                            }
                        ],
                    }
                ]
            },
        },
    )
    c = pod["spec"]["containers"][0]
    assert c["resources"]["requests"]["cpu"] == stored_in_list
    assert c["env"][0]["valueFrom"]["resourceFieldRef"]["divisor"] == stored


def test_milli_value():
    assert milli_value("1") == 1000
    assert milli_value("0.0001") == 1


# --- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image,tag,policy",
    [
        ("nginx", "latest", "Always"),
        ("nginx:latest", "latest", "Always"),
        ("nginx:1.25", "1.25", "IfNotPresent"),
        ("registry.example.com:5000/team/app", "latest", "Always"),
        ("registry.example.com:5000/team/app:v2", "v2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "", "IfNotPresent"),
        ("nginx:1.2@sha256:" + "a" * 64, "1.2", "IfNotPresent"),
        ("NGINX", "", "IfNotPresent"),
        ("", "", "IfNotPresent"),
        # What reference.ParseNormalizedNamed rejects though the grammar allows it: a bare
        # image ID, a repository path over 255 characters (counting "library/"), a digest
        # go-digest cannot validate. ParseImageName then fails and the policy is IfNotPresent.
        ("a" * 64, "", "IfNotPresent"),
        ("a" * 63, "latest", "Always"),
        ("a" * 247, "latest", "Always"),
        ("a" * 248, "", "IfNotPresent"),
        ("ex.com/" + "a" * 255, "latest", "Always"),
        ("ex.com/" + "a" * 256 + ":latest", "", "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 63, "", "IfNotPresent"),
        ("nginx:latest@sha256:" + "A" * 64, "", "IfNotPresent"),
        ("nginx:latest@md5:" + "a" * 32, "", "IfNotPresent"),
        ("nginx:latest@sha512:" + "a" * 128, "latest", "Always"),
    ],
)
def test_image_pull_policy(image, tag, policy):
    assert image_tag(image) == tag
    assert default_pull_policy(image) == policy


# --- Pod -------------------------------------------------------------------------------------


def test_pod_defaults():
    pod = defaulted(
        "v1",
        "Pod",
        {
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "nginx",
                        "ports": [{"containerPort": 80}],
                        "env": [
                            {
                                "name": "N",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                            },
                            {
                                "name": "L",
                                "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}},
                            },
                        ],
                        "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}},
                        "readinessProbe": {"httpGet": {"port": 80}},
                        "livenessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
                        "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}},
                    }
                ]
            },
        },
    )
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["env"][0]["valueFrom"]["fieldRef"] == {
        "fieldPath": "metadata.name",
        "apiVersion": "v1",
    }
    assert c["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"
    assert c["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    # Pods (not templates) get requests copied from limits.
    assert c["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert c["readinessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert c["livenessProbe"]["grpc"] == {"port": 9000, "service": ""}
    assert c["livenessProbe"]["periodSeconds"] == 5
    assert c["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/stop", "scheme": "HTTP"}


def test_pod_keeps_given_values():
    pod = defaulted(
        "v1",
        "Pod",
        {
            "metadata": {"name": "p"},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 0,
                "dnsPolicy": "Default",
                "enableServiceLinks": False,
                "schedulerName": "mine",
                "containers": [
                    {
                        "name": "c",
                        "image": "nginx",
                        "imagePullPolicy": "Never",
                        "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "200m"}},
                    }
                ],
            },
        },
    )
    spec = pod["spec"]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"], spec["dnsPolicy"]) == (
        "Never",
        0,
        "Default",
    )
    assert spec["enableServiceLinks"] is False
    assert spec["schedulerName"] == "mine"
    assert spec["containers"][0]["imagePullPolicy"] == "Never"
    assert spec["containers"][0]["resources"]["requests"] == {"cpu": "200m"}


def test_pod_volume_defaults():
    pod = defaulted(
        "v1",
        "Pod",
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "c", "image": "i"}],
                "volumes": [
                    {"name": "scratch"},
                    {"name": "cm", "configMap": {"name": "cfg"}},
                    {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
                    {"name": "host", "hostPath": {"path": "/data"}},
                    {
                        "name": "down",
                        "downwardAPI": {
                            "items": [
                                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}
                            ]
                        },
                    },
                    {
                        "name": "proj",
                        "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
                    },
                    {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1024Mi"}},
                    {
                        "name": "eph",
                        "ephemeral": {
                            "volumeClaimTemplate": {
                                "spec": {
                                    "accessModes": ["ReadWriteOnce"],
                                    "resources": {"requests": {"storage": "1Gi"}},
                                }
                            }
                        },
                    },
                ],
            },
        },
    )
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["scratch"] == {"name": "scratch", "emptyDir": {}}
    assert vols["cm"]["configMap"] == {"name": "cfg", "defaultMode": 420}
    assert vols["sec"]["secret"] == {"secretName": "s", "defaultMode": 256}
    assert vols["host"]["hostPath"] == {"path": "/data", "type": ""}
    assert vols["down"]["downwardAPI"]["defaultMode"] == 420
    assert vols["down"]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"] == "v1"
    assert vols["proj"]["projected"]["defaultMode"] == 420
    assert (
        vols["proj"]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600
    )
    assert vols["mem"]["emptyDir"]["sizeLimit"] == "1Gi"
    assert vols["eph"]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"] == "Filesystem"


def test_template_defaults_match_upstream():
    """A template gets what SetObjectDefaults_Deployment gives .spec.template: SetDefaults_PodSpec,
    the per-element functions and the `+default` markers of k8s.io/api, nothing of SetDefaults_Pod."""
    d = defaulted(
        "apps/v1",
        "Deployment",
        {
            "metadata": {"name": "d"},
            "spec": {
                "template": pod_template(
                    hostNetwork=True,
                    containers=[
                        {
                            "name": "c",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 8080}],
                            "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}},
                            "env": [
                                {
                                    "name": "F",
                                    "valueFrom": {
                                        "fileKeyRef": {"volumeName": "v", "path": "p", "key": "K"}
                                    },
                                },
                                {
                                    "name": "G",
                                    "valueFrom": {
                                        "fileKeyRef": {
                                            "volumeName": "v",
                                            "path": "p",
                                            "key": "K",
                                            "optional": True,
                                        }
                                    },
                                },
                            ],
                        }
                    ],
                    volumes=[
                        {"name": "sio", "scaleIO": {"gateway": "g", "system": "s",
                                                    "secretRef": {"name": "x"}}},
                        {"name": "sio2", "scaleIO": {"gateway": "g", "system": "s",
                                                     "secretRef": {"name": "x"},
                                                     "storageMode": "ThickProvisioned",
                                                     "fsType": "ext4"}},
                    ],
                )
            },
        },
    )
    tspec = d["spec"]["template"]["spec"]
    c = tspec["containers"][0]
    # FileKeySelector.Optional is `+default=false`.
    assert c["env"][0]["valueFrom"]["fileKeyRef"]["optional"] is False
    assert c["env"][1]["valueFrom"]["fileKeyRef"]["optional"] is True
    # ScaleIOVolumeSource: `+default="ThinProvisioned"` and `+default="xfs"`.
    vols = {v["name"]: v for v in tspec["volumes"]}
    assert vols["sio"]["scaleIO"]["storageMode"] == "ThinProvisioned"
    assert vols["sio"]["scaleIO"]["fsType"] == "xfs"
    assert vols["sio2"]["scaleIO"]["storageMode"] == "ThickProvisioned"
    assert vols["sio2"]["scaleIO"]["fsType"] == "ext4"
    # Quantities are rounded and respelled, but requests are not copied from limits, host
    # ports are not filled in and enableServiceLinks is not set: those are SetDefaults_Pod's.
    assert c["resources"] == {"limits": {"cpu": "500m", "memory": "1Gi"}}
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert "enableServiceLinks" not in tspec


def test_pod_host_network_ports_and_service_account_alias():
    pod = defaulted(
        "v1",
        "Pod",
        {
            "metadata": {"name": "p"},
            "spec": {
                "hostNetwork": True,
                "serviceAccount": "builder",
                "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 8080}]}],
            },
        },
    )
    assert pod["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080
    assert pod["spec"]["serviceAccountName"] == "builder"
    assert pod["spec"]["serviceAccount"] == "builder"


def test_pod_priority_only_on_create():
    pod = defaulted(
        "v1",
        "Pod",
        {
            "metadata": {"name": "p", "resourceVersion": "7"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        },
    )
    assert "priority" not in pod["spec"]
    pod = defaulted(
        "v1",
        "Pod",
        {
            "metadata": {"name": "p"},
            "spec": {
                "priorityClassName": "system-node-critical",
                "containers": [{"name": "c", "image": "i"}],
            },
        },
    )
    assert pod["spec"]["priority"] == 2000001000


def test_defaulting_is_idempotent():
    obj = {
        "metadata": {"name": "d", "namespace": "x"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template()},
    }
    once = defaulted("apps/v1", "Deployment", obj)
    twice = defaulted("apps/v1", "Deployment", copy.deepcopy(once))
    assert once == twice


# --- apps ------------------------------------------------------------------------------------


def test_deployment_defaults():
    d = defaulted(
        "apps/v1",
        "Deployment",
        {
            "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template()},
        },
    )
    spec = d["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "Always"
    assert tspec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    # Pod-only defaults stay off templates.
    assert "enableServiceLinks" not in tspec
    assert "priority" not in tspec


def test_deployment_recreate_gets_no_rolling_update():
    d = defaulted(
        "apps/v1",
        "Deployment",
        {
            "metadata": {"name": "d"},
            "spec": {"strategy": {"type": "Recreate"}, "template": pod_template()},
        },
    )
    assert d["spec"]["strategy"] == {"type": "Recreate"}


def test_replicaset_defaults():
    rs = defaulted(
        "apps/v1", "ReplicaSet", {"metadata": {"name": "r"}, "spec": {"template": pod_template()}}
    )
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["template"]["spec"]["schedulerName"] == "default-scheduler"


def test_statefulset_defaults():
    sts = defaulted(
        "apps/v1",
        "StatefulSet",
        {
            "metadata": {"name": "s"},
            "spec": {
                "template": pod_template(),
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "www"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1024Mi"}},
                        },
                    }
                ],
            },
        },
    )
    spec = sts["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    claim = spec["volumeClaimTemplates"][0]
    assert claim["apiVersion"] == "v1"
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim["status"] == {"phase": "Pending"}


def test_statefulset_on_delete_has_no_partition():
    sts = defaulted(
        "apps/v1",
        "StatefulSet",
        {
            "metadata": {"name": "s"},
            "spec": {"updateStrategy": {"type": "OnDelete"}, "template": pod_template()},
        },
    )
    assert sts["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_daemonset_defaults():
    ds = defaulted(
        "apps/v1", "DaemonSet", {"metadata": {"name": "d"}, "spec": {"template": pod_template()}}
    )
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["spec"]["revisionHistoryLimit"] == 10


# --- batch -----------------------------------------------------------------------------------


def job(**spec) -> dict:
    return {
        "metadata": {"name": "pi", "namespace": "default", "uid": "1234-abcd"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}
            },
            **spec,
        },
    }


def test_job_defaults_and_generated_selector():
    j = defaulted("batch/v1", "Job", job())
    spec = j["spec"]
    assert spec["completions"] == 1
    assert spec["parallelism"] == 1
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["manualSelector"] is False
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "1234-abcd"}}
    expected = {
        "batch.kubernetes.io/controller-uid": "1234-abcd",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "1234-abcd",
        "job-name": "pi",
    }
    assert spec["template"]["metadata"]["labels"] == expected
    assert j["metadata"]["labels"] == expected


def test_job_parallelism_only_leaves_completions_unset():
    spec = defaulted("batch/v1", "Job", job(parallelism=3))["spec"]
    assert spec["parallelism"] == 3
    assert "completions" not in spec


def test_job_backoff_limit_per_index():
    spec = defaulted(
        "batch/v1", "Job", job(completionMode="Indexed", completions=3, backoffLimitPerIndex=1)
    )["spec"]
    assert spec["backoffLimit"] == 2147483647


def test_job_pod_failure_policy_defaults():
    spec = defaulted(
        "batch/v1",
        "Job",
        job(
            podFailurePolicy={
                "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
            }
        ),
    )["spec"]
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_job_manual_selector_is_not_generated():
    j = job(manualSelector=True, selector={"matchLabels": {"a": "b"}})
    j["spec"]["template"]["metadata"] = {"labels": {"a": "b"}}
    spec = defaulted("batch/v1", "Job", j)["spec"]
    assert spec["selector"] == {"matchLabels": {"a": "b"}}
    assert spec["template"]["metadata"]["labels"] == {"a": "b"}


def test_job_keeps_its_own_labels_and_no_selector_on_update():
    j = job()
    j["metadata"]["labels"] = {"team": "x"}
    j["metadata"]["resourceVersion"] = "3"
    out = defaulted("batch/v1", "Job", j)
    assert out["metadata"]["labels"] == {"team": "x"}
    assert "selector" not in out["spec"]


def test_cronjob_defaults():
    cj = defaulted(
        "batch/v1",
        "CronJob",
        {
            "metadata": {"name": "c"},
            "spec": {
                "schedule": "*/1 * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "OnFailure",
                                "containers": [{"name": "c", "image": "i"}],
                            }
                        }
                    }
                },
            },
        },
    )
    spec = cj["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    jspec = spec["jobTemplate"]["spec"]
    # SetDefaults_Job does not apply to a CronJob's job template, pod defaults do.
    assert "backoffLimit" not in jspec
    assert jspec["template"]["spec"]["terminationGracePeriodSeconds"] == 30


# --- core ------------------------------------------------------------------------------------


def test_service_defaults():
    svc = defaulted(
        "v1",
        "Service",
        {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}],
            },
        },
    )
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert spec["ports"][1]["targetPort"] == "https"
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec


def test_service_node_port_and_load_balancer_defaults():
    np_ = defaulted(
        "v1",
        "Service",
        {"metadata": {"name": "a"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}},
    )
    assert np_["spec"]["externalTrafficPolicy"] == "Cluster"
    lb = defaulted(
        "v1",
        "Service",
        {"metadata": {"name": "b"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
    )
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True


def test_service_client_ip_affinity_and_cluster_ip_sync():
    svc = defaulted(
        "v1",
        "Service",
        {
            "metadata": {"name": "a"},
            "spec": {
                "sessionAffinity": "ClientIP",
                "clusterIP": "10.0.0.10",
                "ports": [{"port": 80}],
            },
        },
    )
    assert svc["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    assert svc["spec"]["clusterIPs"] == ["10.0.0.10"]


def test_headless_service_without_selector_requires_dual_stack():
    svc = defaulted("v1", "Service", {"metadata": {"name": "a"}, "spec": {"clusterIP": "None"}})
    assert svc["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    assert svc["spec"]["clusterIPs"] == ["None"]


def test_external_name_service_gets_no_ip_fields():
    svc = defaulted(
        "v1",
        "Service",
        {
            "metadata": {"name": "a"},
            "spec": {"type": "ExternalName", "externalName": "example.com"},
        },
    )
    assert "ipFamilyPolicy" not in svc["spec"]
    assert "internalTrafficPolicy" not in svc["spec"]


def test_namespace_defaults_create_and_update():
    ns = defaulted("v1", "Namespace", {"metadata": {"name": "team"}})
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    # A finalize update removing "kubernetes" must not bring it back.
    upd = defaulted(
        "v1",
        "Namespace",
        {
            "metadata": {"name": "team", "resourceVersion": "9"},
            "spec": {},
            "status": {"phase": "Terminating"},
        },
    )
    assert upd["spec"] == {}
    assert upd["status"] == {"phase": "Terminating"}


def test_secret_defaults_and_string_data():
    s = defaulted(
        "v1",
        "Secret",
        {"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "hello", "a": "y"}},
    )
    assert s["type"] == "Opaque"
    assert "stringData" not in s
    assert s["data"] == {
        "a": base64.b64encode(b"y").decode(),
        "b": base64.b64encode(b"hello").decode(),
    }


def test_pv_and_pvc_defaults():
    pv = defaulted(
        "v1",
        "PersistentVolume",
        {
            "metadata": {"name": "pv"},
            "spec": {"capacity": {"storage": "1024Mi"}, "hostPath": {"path": "/tmp/x"}},
        },
    )
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["volumeMode"] == "Filesystem"
    assert pv["spec"]["capacity"] == {"storage": "1Gi"}
    assert pv["spec"]["hostPath"]["type"] == ""
    assert pv["status"] == {"phase": "Pending"}
    pvc = defaulted(
        "v1",
        "PersistentVolumeClaim",
        {
            "metadata": {"name": "c"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "0.5Gi"}},
            },
        },
    )
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "512Mi"
    assert pvc["status"] == {"phase": "Pending"}


def test_node_allocatable_defaults_to_capacity():
    node = defaulted(
        "v1",
        "Node",
        {
            "metadata": {"name": "n"},
            "status": {"capacity": {"cpu": "4", "memory": "8192Mi", "pods": "110"}},
        },
    )
    assert node["status"]["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert node["status"]["allocatable"] == node["status"]["capacity"]
    assert node["status"]["allocatable"] is not node["status"]["capacity"]


def test_storage_class_defaults():
    sc = defaulted(
        "storage.k8s.io/v1",
        "StorageClass",
        {"metadata": {"name": "standard"}, "provisioner": "example.com/x"},
    )
    assert sc["reclaimPolicy"] == "Delete"
    assert sc["volumeBindingMode"] == "Immediate"


@pytest.mark.parametrize(
    "api_version,kind",
    [
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        ("v1", "Event"),
        ("coordination.k8s.io/v1", "Lease"),
        ("apps/v1", "ControllerRevision"),
        ("events.k8s.io/v1", "Event"),
    ],
)
def test_kinds_without_defaults_are_untouched(api_version, kind):
    obj = {"metadata": {"name": "x"}, "data": {"k": "v"}}
    assert defaulted(api_version, kind, copy.deepcopy(obj)) == obj


def test_invalid_quantities_are_left_for_validation():
    pod = defaulted(
        "v1",
        "Pod",
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "c", "image": "i", "resources": {"limits": {"cpu": "lots"}}}
                ]
            },
        },
    )
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "lots"}
