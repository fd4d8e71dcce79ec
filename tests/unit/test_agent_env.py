"""Container environment: the kubelet's makeEnvironmentVariables semantics, in-process API."""

from __future__ import annotations

import asyncio
import base64

import pytest

from pocketkube.agent.env import ContainerConfigError, container_env, expand, pod_hostname
from pocketkube.agent.env import container_env as _container_env
from pocketkube.agent.services import ServiceCache
from pocketkube.api.core import Api
from pocketkube.client.inprocess import InProcessClient
from pocketkube.store.sqlite import SqliteStore
from tests.unit.harness import until

NODE = {
    "metadata": {"name": "n1"},
    "status": {
        "addresses": [{"type": "Hostname", "address": "n1"},
                      {"type": "InternalIP", "address": "10.0.0.5"},
                      {"type": "InternalIP", "address": "fd00::5"}],
        "allocatable": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"},
    },
}


def run(tmp_path, body):
    async def main():
        store = SqliteStore(str(tmp_path / "s.db"))
        api = Api(store)
        await api.bootstrap()
        try:
            await body(InProcessClient(api))
        finally:
            await store.close()
    asyncio.run(main())


async def make_pod(client, containers, name="web", **spec):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {"app": "web", "tier": "fe"},
                        "annotations": {"note": 'say "hi"'}},
           "spec": {"containers": containers, "nodeName": "n1", **spec}}
    pod = await client.create("pods", "default", pod)
    # The agent fills the pod's IPs in before it computes the environment.
    pod["status"] = {"podIP": "10.244.0.7", "podIPs": [{"ip": "10.244.0.7"}, {"ip": "fd00::7"}]}
    return pod


def ctr(env=None, env_from=None, resources=None, name="app"):
    c = {"name": name, "image": "busybox"}
    if env is not None:
        c["env"] = env
    if env_from is not None:
        c["envFrom"] = env_from
    if resources is not None:
        c["resources"] = resources
    return c


def cm(name, **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def secret(name, **data):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_expansion_follows_upstream_rules():
    values = {"A": "x", "EMPTY": ""}
    look = values.get
    assert expand("$(A)-$(A)", look) == "x-x"
    assert expand("$$(A)", look) == "$(A)"            # escaped reference is never expanded
    assert expand("$$$(A)", look) == "$x"
    assert expand("$(MISSING)", look) == "$(MISSING)"  # unknown stays as written
    assert expand("$(EMPTY)!", look) == "!"
    assert expand("$(A", look) == "$(A"                # unterminated
    assert expand("a$b $", look) == "a$b $"
    assert expand("$()", look) == "$()"


def test_env_order_expansion_and_envfrom(tmp_path):
    async def body(client):
        await client.create("configmaps", "default", cm("cfg", MODE="prod", LEVEL="3"))
        await client.create("secrets", "default", secret("creds", USER="admin", PASS="s3cr3t"))
        env = [
            {"name": "LEVEL", "value": "9"},                      # env overrides envFrom
            {"name": "GREETING", "value": "hello $(USER) in $(CFG_MODE)"},
            {"name": "LATER_REF", "value": "$(DEFINED_LATER)"},   # only earlier vars expand
            {"name": "DEFINED_LATER", "value": "late"},
            {"name": "ESCAPED", "value": "$$(USER)"},
            {"name": "EMPTY", "value": ""},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASS"}}},
            {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
        ]
        env_from = [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
                    {"secretRef": {"name": "creds"}},
                    {"configMapRef": {"name": "cfg"}},
                    {"configMapRef": {"name": "absent", "optional": True}}]
        pod = await make_pod(client, [ctr(env, env_from)])
        result = await container_env(client, pod, pod["spec"]["containers"][0], NODE)
        names = [k for k, _ in result]
        assert len(names) == len(set(names))
        got = dict(result)
        assert got["HOSTNAME"] == "web"
        assert got["CFG_MODE"] == "prod" and got["CFG_LEVEL"] == "3"
        assert got["USER"] == "admin" and got["PASS"] == "s3cr3t"
        assert got["LEVEL"] == "9"
        assert got["GREETING"] == "hello admin in prod"
        assert got["LATER_REF"] == "$(DEFINED_LATER)"
        assert got["ESCAPED"] == "$(USER)"
        assert got["EMPTY"] == ""
        assert got["PASSWORD"] == "s3cr3t" and got["FROM_CM"] == "prod"
        # envFrom first in definition order, then env; an override keeps its first position.
        assert names[:7] == ["HOSTNAME", "CFG_MODE", "CFG_LEVEL", "USER", "PASS", "MODE", "LEVEL"]
        assert names.index("GREETING") < names.index("DEFINED_LATER") < names.index("PASSWORD")
    run(tmp_path, body)


def test_field_refs_and_host_ips(tmp_path):
    async def body(client):
        def ref(path):
            return {"valueFrom": {"fieldRef": {"fieldPath": path}}}
        env = [{"name": n, **ref(p)} for n, p in [
            ("NAME", "metadata.name"), ("NS", "metadata.namespace"), ("UID", "metadata.uid"),
            ("APP", "metadata.labels['app']"), ("NOTE", "metadata.annotations['note']"),
            ("NODE", "spec.nodeName"), ("SA", "spec.serviceAccountName"),
            ("HOST_IP", "status.hostIP"), ("HOST_IPS", "status.hostIPs"),
            ("POD_IP", "status.podIP"), ("POD_IPS", "status.podIPs")]]
        pod = await make_pod(client, [ctr(env)], serviceAccountName="builder")
        got = dict(await container_env(client, pod, pod["spec"]["containers"][0], NODE))
        assert got["NAME"] == "web" and got["NS"] == "default"
        assert got["UID"] == pod["metadata"]["uid"] and got["UID"]
        assert got["APP"] == "web" and got["NOTE"] == 'say "hi"'
        assert got["NODE"] == "n1" and got["SA"] == "builder"
        assert got["HOST_IP"] == "10.0.0.5" and got["HOST_IPS"] == "10.0.0.5,fd00::5"
        assert got["POD_IP"] == "10.244.0.7" and got["POD_IPS"] == "10.244.0.7,fd00::7"
        # Without a Node object the pod's own status.hostIP is used.
        pod["status"]["hostIP"] = "192.168.1.9"
        got = dict(await container_env(client, pod, pod["spec"]["containers"][0]))
        assert got["HOST_IP"] == "192.168.1.9"
    run(tmp_path, body)


def test_resource_field_refs_round_up_and_default_to_allocatable(tmp_path):
    async def body(client):
        def ref(resource, divisor=None, container=None):
            r = {"resource": resource}
            if divisor:
                r["divisor"] = divisor
            if container:
                r["containerName"] = container
            return {"valueFrom": {"resourceFieldRef": r}}
        env = [{"name": n, **r} for n, r in [
            ("CPU_LIMIT", ref("limits.cpu")),                    # 250m -> 1 core, rounded up
            ("CPU_LIMIT_M", ref("limits.cpu", "1m")),
            ("MEM_LIMIT_MI", ref("limits.memory", "1Mi")),
            ("MEM_REQUEST", ref("requests.memory")),
            ("CPU_REQUEST_M", ref("requests.cpu", "1m")),
            ("EPH_LIMIT_GI", ref("limits.ephemeral-storage", "1Gi")),  # unset: allocatable
            ("SIDECAR_MEM", ref("limits.memory", "1Mi", "sidecar")),   # unset: allocatable
        ]]
        main = ctr(env, resources={"limits": {"cpu": "250m", "memory": "100M"},
                                   "requests": {"cpu": "100m", "memory": "64Mi"}})
        pod = await make_pod(client, [main, ctr(name="sidecar")])
        got = dict(await container_env(client, pod, pod["spec"]["containers"][0], NODE))
        assert got["CPU_LIMIT"] == "1"
        assert got["CPU_LIMIT_M"] == "250"
        assert got["MEM_LIMIT_MI"] == "96"            # ceil(100000000 / 1048576)
        assert got["MEM_REQUEST"] == str(64 * 1024 * 1024)
        assert got["CPU_REQUEST_M"] == "100"
        assert got["EPH_LIMIT_GI"] == "10"
        assert got["SIDECAR_MEM"] == "4096"
    run(tmp_path, body)


def test_missing_objects_and_keys_fail_unless_optional(tmp_path):
    async def body(client):
        await client.create("configmaps", "default", cm("cfg", A="1"))
        await client.create("secrets", "default", secret("s", A="1"))

        async def env_of(env=None, env_from=None):
            pod = await make_pod(client, [ctr(env, env_from)], name=f"p{len(seen)}")
            seen.append(pod)
            return dict(await container_env(client, pod, pod["spec"]["containers"][0], NODE))
        seen: list = []

        def key_ref(kind, name, key, optional=None):
            r = {"name": name, "key": key}
            if optional is not None:
                r["optional"] = optional
            return [{"name": "X", "valueFrom": {kind: r}}]

        cases = [
            (key_ref("configMapKeyRef", "cfg", "foo"), None,
             "couldn't find key foo in ConfigMap default/cfg"),
            (key_ref("configMapKeyRef", "nope", "A"), None, 'configmap "nope" not found'),
            (key_ref("secretKeyRef", "s", "B"), None, "couldn't find key B in Secret default/s"),
            (key_ref("secretKeyRef", "gone", "A"), None, 'secret "gone" not found'),
            (None, [{"configMapRef": {"name": "nope"}}], 'configmap "nope" not found'),
            (None, [{"secretRef": {"name": "gone"}}], 'secret "gone" not found'),
        ]
        for env, env_from, message in cases:
            with pytest.raises(ContainerConfigError) as err:
                await env_of(env, env_from)
            assert err.value.message == message
            assert err.value.reason == "CreateContainerConfigError"
        # Optional references to missing things define nothing and fail nothing.
        for env in (key_ref("configMapKeyRef", "cfg", "foo", True),
                    key_ref("configMapKeyRef", "nope", "A", True),
                    key_ref("secretKeyRef", "gone", "A", True)):
            assert "X" not in await env_of(env)
        assert "A" not in await env_of(None, [{"secretRef": {"name": "gone", "optional": True}}])
    run(tmp_path, body)


@pytest.mark.parametrize("cached", [False, True], ids=["api", "service-cache"])
def test_service_links_for_master_service_and_namespace(tmp_path, cached):
    async def body(client):
        cache = None
        if cached:     # as the agent does: from its informer-fed cache once synced
            cache = ServiceCache(client)
            cache.start()
            await until(lambda: cache.synced, message="the service cache synced")

        async def container_env(client, pod, container, node):
            return await _container_env(client, pod, container, node, service_cache=cache)

        def svc(name, ip, ports):
            return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                    "spec": {"clusterIP": ip, "ports": ports}}
        await client.create("namespaces", None, {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "shop"}})
        # No kubernetes Service yet: no KUBERNETES_* variables at all.
        pod = await make_pod(client, [ctr([{"name": "A", "value": "$(KUBERNETES_SERVICE_HOST)"}])])
        got = dict(await container_env(client, pod, pod["spec"]["containers"][0], NODE))
        assert "KUBERNETES_SERVICE_HOST" not in got and got["A"] == "$(KUBERNETES_SERVICE_HOST)"

        await client.create("services", "default", svc(
            "kubernetes", "10.96.0.1", [{"name": "https", "port": 443, "targetPort": 6443}]))
        shop_svc = svc("redis-main", "10.96.0.20", [{"port": 6379, "protocol": "TCP"}])
        await client.create("services", "shop", shop_svc)
        if cache is not None:
            await until(lambda: cache.get("shop", "redis-main") and cache.get("default", "kubernetes"),
                        message="the services in the cache")
        pod = {**pod, "metadata": {**pod["metadata"], "namespace": "shop"}}
        got = dict(await container_env(client, pod, pod["spec"]["containers"][0], NODE))
        assert got["A"] == "10.96.0.1"  # service variables are visible to $(...) expansion
        assert got["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
        assert got["KUBERNETES_SERVICE_PORT"] == "443"
        assert got["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
        assert got["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
        assert got["KUBERNETES_PORT_443_TCP"] == "tcp://10.96.0.1:443"
        assert got["KUBERNETES_PORT_443_TCP_PROTO"] == "tcp"
        assert got["KUBERNETES_PORT_443_TCP_PORT"] == "443"
        assert got["KUBERNETES_PORT_443_TCP_ADDR"] == "10.96.0.1"
        assert got["REDIS_MAIN_SERVICE_HOST"] == "10.96.0.20"
        assert got["REDIS_MAIN_PORT_6379_TCP"] == "tcp://10.96.0.20:6379"
        # enableServiceLinks: false keeps only the master service.
        pod["spec"]["enableServiceLinks"] = False
        got = dict(await container_env(client, pod, pod["spec"]["containers"][0], NODE))
        assert "REDIS_MAIN_SERVICE_HOST" not in got
        assert got["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
        # A container's own variable wins over a service variable.
        pod["spec"]["containers"][0]["env"] = [{"name": "KUBERNETES_SERVICE_HOST", "value": "me"}]
        result = await container_env(client, pod, pod["spec"]["containers"][0], NODE)
        assert [v for k, v in result if k == "KUBERNETES_SERVICE_HOST"] == ["me"]
        if cache is not None:
            await cache.stop()
    run(tmp_path, body)


def test_hostname_rules():
    pod = {"metadata": {"name": "x" * 62 + "-abc", "namespace": "ns"}, "spec": {}}
    assert pod_hostname(pod) == "x" * 62  # cut to 63, trailing '-' trimmed
    pod = {"metadata": {"name": "web-0", "namespace": "ns"},
           "spec": {"hostname": "web-0", "subdomain": "web", "setHostnameAsFQDN": True}}
    assert pod_hostname(pod) == "web-0.web.ns.svc.cluster.local"


def test_invalid_field_ref_is_a_config_error(tmp_path):
    async def body(client):
        pod = await make_pod(client, [ctr()])
        c = {"name": "app", "env": [{"name": "X", "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.generateName"}}}]}
        with pytest.raises(ContainerConfigError, match="unsupported fieldPath: "
                                                       "metadata.generateName"):
            await container_env(client, pod, c, NODE)
    run(tmp_path, body)
