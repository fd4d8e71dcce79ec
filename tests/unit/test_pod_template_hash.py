"""The pod-template-hash is Kubernetes' own: the values below were printed by the Go program in
tools/podtemplate_hash (Kubernetes 1.37's k8s.io/api types, go-spew as ComputeHash configures it,
the template round-tripped through protobuf as kube-controller-manager receives it) for the
same templates after pocketkube's defaulting; and, for StatefulSet revisions, the hash of the
template as Go's JSON encoder writes it. A change to gostruct.py, gotypes.py or the
defaults that moves a name away from upstream's fails here."""

from __future__ import annotations

import copy

import pytest

from pocketkube.api.defaults import default_pod_template
from pocketkube.api.quantity import BINARY_SI, DECIMAL_EXPONENT, DECIMAL_SI, int64_form
from pocketkube.controllers.podtemplate.gostruct import Unsupported, render
from pocketkube.controllers.podtemplate.hash import compute_hash
from pocketkube.controllers.history import hash_revision, template_patch

CASES = {'seed': {'metadata': {'labels': {'app': 'nginx'}},
          'spec': {'containers': [{'name': 'nginx',
                                   'image': 'nginx:1.14.2',
                                   'ports': [{'containerPort': 80}]}]}},
 'resources': {'metadata': {'labels': {'app': 'x', 'b': 'y'}, 'annotations': {'a': '1'}},
               'spec': {'containers': [{'name': 'c',
                                        'image': 'nginx:1.14.2',
                                        'resources': {'limits': {'cpu': '100m', 'memory': '32Mi'},
                                                      'requests': {'cpu': '0.5',
                                                                   'memory': '1Gi',
                                                                   'ephemeral-storage': '2G'}}}]}},
 'probes': {'spec': {'containers': [{'name': 'c',
                                     'image': 'nginx:1.14.2',
                                     'livenessProbe': {'httpGet': {'port': 8080, 'path': '/'}},
                                     'readinessProbe': {'tcpSocket': {'port': 'http'}},
                                     'startupProbe': {'exec': {'command': ['true']}},
                                     'lifecycle': {'preStop': {'sleep': {'seconds': 3}}}}]}},
 'volumes': {'spec': {'volumes': [{'name': 'a', 'emptyDir': {'sizeLimit': '1Gi'}},
                                  {'name': 'b',
                                   'configMap': {'name': 'cm', 'items': [{'key': 'k', 'path': 'p'}]}},
                                  {'name': 'c', 'secret': {'secretName': 's'}},
                                  {'name': 'd', 'hostPath': {'path': '/tmp'}},
                                  {'name': 'e', 'persistentVolumeClaim': {'claimName': 'x'}},
                                  {'name': 'f',
                                   'projected': {'sources': [{'serviceAccountToken': {'path': 't'}},
                                                             {'downwardAPI': {'items': [{'path': 'l',
                                                                                         'fieldRef': {'fieldPath': 'metadata.labels'}}]}}]}},
                                  {'name': 'g', 'nfs': {'server': '10.0.0.1', 'path': '/x'}}],
                      'containers': [{'name': 'c',
                                      'image': 'nginx:1.14.2',
                                      'volumeMounts': [{'name': 'a', 'mountPath': '/a'}],
                                      'env': [{'name': 'X', 'value': '1'},
                                              {'name': 'Y',
                                               'valueFrom': {'fieldRef': {'fieldPath': 'status.podIP'}}},
                                              {'name': 'Z',
                                               'valueFrom': {'resourceFieldRef': {'resource': 'limits.cpu',
                                                                                  'divisor': '1m'}}}],
                                      'envFrom': [{'configMapRef': {'name': 'cm'}}],
                                      'command': ['sh', '-c', 'echo hi'],
                                      'args': [],
                                      'securityContext': {'runAsUser': 1000,
                                                          'capabilities': {'add': ['NET_ADMIN']}}}],
                      'initContainers': [{'name': 'init', 'image': 'busybox', 'restartPolicy': 'Always'}]}},
 'scheduling': {'spec': {'nodeSelector': {'disk': 'ssd', 'a': 'b'},
                         'tolerations': [{'key': 'k',
                                          'operator': 'Exists',
                                          'effect': 'NoSchedule',
                                          'tolerationSeconds': 5}],
                         'affinity': {'podAntiAffinity': {'preferredDuringSchedulingIgnoredDuringExecution': [{'weight': 100,
                                                                                                               'podAffinityTerm': {'labelSelector': {'matchExpressions': [{'key': 'app',
                                                                                                                                                                           'operator': 'In',
                                                                                                                                                                           'values': ['x']}]},
                                                                                                                                   'topologyKey': 'kubernetes.io/hostname'}}]}},
                         'topologySpreadConstraints': [{'maxSkew': 1,
                                                        'topologyKey': 'zone',
                                                        'whenUnsatisfiable': 'DoNotSchedule',
                                                        'labelSelector': {'matchLabels': {'a': 'b'}}}],
                         'priorityClassName': 'high',
                         'hostNetwork': True,
                         'terminationGracePeriodSeconds': 5,
                         'serviceAccountName': 'sa',
                         'imagePullSecrets': [{'name': 'r'}],
                         'hostAliases': [{'ip': '1.2.3.4', 'hostnames': ['x']}],
                         'dnsConfig': {'nameservers': ['1.1.1.1'],
                                       'options': [{'name': 'ndots', 'value': '2'}]},
                         'containers': [{'name': 'c', 'image': 'nginx'}]}},
 'unicode': {'metadata': {'labels': {'z': '1', 'A': '2', 'a': '3'},
                          'annotations': {'kubernetes.io/change-cause': 'héllo wörld'}},
             'spec': {'containers': [{'name': 'c',
                                      'image': 'nginx@sha256:abc',
                                      'ports': [{'containerPort': 53, 'protocol': 'UDP', 'name': 'dns'}]}]}}}

# Quantities the apiserver keeps as written ("1.125", "1E3"), and a default (fileKeyRef.optional).
CASES["as-written"] = {"spec": {"containers": [{
    "name": "c", "image": "nginx:1.14.2", "resources": {"limits": {"cpu": "1.125", "memory": "1E3"}},
    "env": [{"name": "F", "valueFrom": {"fileKeyRef": {"path": "a.env", "key": "K", "volumeName": "v"}}}]}]}}

# name: (hash, hash with collisionCount 2), as upstream computes them.
UPSTREAM = {
    "as-written": ("7d6685cbd9", "6c99c588c"),
    "seed": ("6c5f67b5f7", "77497cb5f9"),
    "resources": ("59bb47cb96", "5d85fcb594"),
    "probes": ("7d8598f987", "64db847649"),
    "volumes": ("695b4b994", "5c47b784bd"),
    "scheduling": ("6889bc64f4", "84dbd7fc48"),
    "unicode": ("769497f484", "5c6df5b9cd"),
}


# name: the StatefulSet revision hash of the template (HashControllerRevision of getPatch's bytes:
# the typed template as Go's JSON encoder writes it, re-marshalled as a sorted map).
UPSTREAM_REVISION = {
    "seed": "6cb54f7466", "resources": "58b9c546d5", "probes": "cf58ffbbd", "volumes": "779db6587f",
    "scheduling": "779b78bc74", "unicode": "85f64c6f59", "as-written": "749c565889",
}


@pytest.mark.parametrize("name", sorted(UPSTREAM_REVISION))
def test_revision_hash_equals_upstreams(name):
    tpl = copy.deepcopy(CASES[name])
    default_pod_template(tpl)
    assert hash_revision(template_patch(tpl)) == UPSTREAM_REVISION[name]


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_hash_equals_upstreams(name):
    tpl = copy.deepcopy(CASES[name])
    default_pod_template(tpl)
    assert (compute_hash(tpl), compute_hash(tpl, 2)) == UPSTREAM[name]


def test_render_starts_as_spew_prints_the_struct():
    tpl = copy.deepcopy(CASES["seed"])
    default_pod_template(tpl)
    out = render(tpl)
    assert out.startswith("(v1.PodTemplateSpec){ObjectMeta:(v1.ObjectMeta){Name:(string) GenerateName:(string) ")
    assert "Labels:(map[string]string)map[app:nginx] Annotations:(map[string]string)<nil> " in out
    assert "Ports:([]v1.ContainerPort)[{Name:(string) HostPort:(int32)0 ContainerPort:(int32)80 Protocol:(v1.Protocol)TCP" in out
    assert "TerminationGracePeriodSeconds:(*int64)30 ActiveDeadlineSeconds:(*int64)<nil> " in out
    # An empty list is nil after protobuf, as the controller sees it.
    tpl["spec"]["containers"][0]["args"] = []
    assert render(tpl) == out


@pytest.mark.parametrize("q, form", [
    ("100m", (100, -3, DECIMAL_SI, "100m")),
    ("32Mi", (33554432, 0, BINARY_SI, "")),
    ("1Gi", (1073741824, 0, BINARY_SI, "1Gi")),
    ("1536Mi", (1610612736, 0, BINARY_SI, "")),
    ("10Ki", (10240, 0, BINARY_SI, "10Ki")),
    ("1", (1, 0, DECIMAL_SI, "1")),
    ("0", (0, 0, DECIMAL_SI, "0")),
    ("2G", (2, 9, DECIMAL_SI, "2G")),
    ("1k", (1, 3, DECIMAL_SI, "1k")),
    ("1e3", (1, 3, DECIMAL_EXPONENT, "1e3")),
    ("5n", (5, -9, DECIMAL_SI, "5n")),
    ("128974848", (128974848, 0, DECIMAL_SI, "128974848")),
    ("123456789012345678", (123456789012345678, 0, DECIMAL_SI, "123456789012345678")),
    ("1234567890123456789", None),   # Go keeps this one as an inf.Dec
])
def test_quantities_as_go_parses_them(q, form):
    assert int64_form(q) == form


def test_unprintable_templates_still_get_a_name():
    tpl = copy.deepcopy(CASES["seed"])
    tpl["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1234567890123456789"}}
    with pytest.raises(Unsupported):
        render(tpl)
    h = compute_hash(tpl)
    assert 1 <= len(h) <= 10 and set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
