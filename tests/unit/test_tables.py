"""Server-side Table printing: headers and cell strings as Kubernetes prints them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pocketkube.api import resources
from pocketkube.api.resources import Resource
from pocketkube.api.tables import human_duration, to_table, translate_timestamp_since

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0) -> str:
    t = NOW - timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def res(group: str, plural: str) -> Resource:
    r = resources.lookup(group, "v1", plural)
    assert r is not None
    return r


def table(group: str, plural: str, *objs: dict, **kw) -> dict:
    return to_table(res(group, plural), list(objs), now=NOW, **kw)


def headers(t: dict, wide: bool = False) -> list[str]:
    return [c["name"] for c in t["columnDefinitions"] if wide or c["priority"] == 0]


def cells(t: dict, wide: bool = False) -> list[list]:
    """Cells as kubectl would show them (priority-0 columns only unless wide)."""
    keep = [wide or c["priority"] == 0 for c in t["columnDefinitions"]]
    return [[v for v, k in zip(r["cells"], keep) if k] for r in t["rows"]]


def meta(name: str, age: str | None = None, **extra) -> dict:
    m = {"name": name, "namespace": "default", "uid": "u-" + name,
         "creationTimestamp": age or ago(minutes=5)}
    m.update(extra)
    return m


# ------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize("seconds,expected", [
    (0, "0s"), (5, "5s"), (59, "59s"), (119, "119s"), (120, "2m"),
    (123, "2m3s"), (599, "9m59s"), (600, "10m"), (10 * 60 + 59, "10m"), (179 * 60 + 59, "179m"),
    (3 * 3600, "3h"), (3 * 3600 + 4 * 60, "3h4m"), (7 * 3600 + 59 * 60 + 59, "7h59m"),
    (8 * 3600, "8h"), (47 * 3600 + 59 * 60, "47h"), (48 * 3600, "2d"),
    (2 * 86400 + 3 * 3600, "2d3h"), (7 * 86400 + 23 * 3600, "7d23h"), (8 * 86400, "8d"),
    (45 * 86400, "45d"), (729 * 86400, "729d"), (730 * 86400, "2y"),
    (3 * 365 * 86400 + 12 * 86400, "3y12d"),
    (8 * 365 * 86400, "8y"), (20 * 365 * 86400 + 100 * 86400, "20y"),
    (-1, "0s"), (-1.5, "0s"), (-2, "<invalid>"), (0.9, "0s"), (1.999, "1s"),
])
def test_human_duration(seconds, expected):
    assert human_duration(timedelta(seconds=seconds)) == expected


def test_translate_timestamp_since():
    assert translate_timestamp_since(ago(seconds=5), NOW) == "5s"
    assert translate_timestamp_since(ago(days=45), NOW) == "45d"
    assert translate_timestamp_since("2024-06-01T11:59:58.123456Z", NOW) == "1s"
    assert translate_timestamp_since("2024-06-01T11:56:57+00:00", NOW) == "3m3s"
    for unset in (None, "", "0001-01-01T00:00:00Z", "garbage"):
        assert translate_timestamp_since(unset, NOW) == "<unknown>"


# ------------------------------------------------------------------------------------------
# Table shape


def test_table_envelope_and_included_object():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta("p"), "spec": {"containers": []},
           "status": {"phase": "Pending"}}
    t = table("", "pods", pod)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1" and t["metadata"] == {}
    assert t["rows"][0]["object"] == {"kind": "PartialObjectMetadata",
                                      "apiVersion": "meta.k8s.io/v1", "metadata": pod["metadata"]}
    assert table("", "pods", pod, include_object="Object")["rows"][0]["object"] is pod
    assert "object" not in table("", "pods", pod, include_object="None")["rows"][0]
    name = t["columnDefinitions"][0]
    assert name["name"] == "Name" and name["format"] == "name" and name["type"] == "string"
    assert name["description"].startswith("Name must be unique within a namespace.")
    assert all(set(c) == {"name", "type", "format", "description", "priority"}
               for c in t["columnDefinitions"])


def test_default_now_is_wall_clock():
    ns = {"metadata": {"name": "x", "creationTimestamp": datetime.now(timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")}, "status": {"phase": "Active"}}
    t = to_table(res("", "namespaces"), [ns])
    assert t["rows"][0]["cells"][2] in ("0s", "1s", "2s")


def test_default_table_for_kinds_without_printer():
    role = Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", True)
    t = to_table(role, [{"metadata": {"name": "r", "creationTimestamp": "2024-05-01T10:00:00Z"}},
                        {"metadata": {"name": "s"}}], now=NOW)
    assert [(c["name"], c["type"], c["format"]) for c in t["columnDefinitions"]] == [
        ("Name", "string", "name"), ("Created At", "date", "")]
    assert cells(t) == [["r", "2024-05-01T10:00:00Z"], ["s", "0001-01-01T00:00:00Z"]]


def test_column_definitions_are_not_shared_between_tables():
    t1 = table("", "configmaps")
    t1["columnDefinitions"][0]["name"] = "mutated"
    assert table("", "configmaps")["columnDefinitions"][0]["name"] == "Name"


# ------------------------------------------------------------------------------------------
# Pods

POD_HEADERS = ["Name", "Ready", "Status", "Restarts", "Age"]
POD_WIDE = POD_HEADERS + ["IP", "Node", "Nominated Node", "Readiness Gates"]


def pod(name="web", containers=("app",), init=(), statuses=(), init_statuses=(), phase="Running",
        conditions=(), spec_extra=None, status_extra=None, meta_extra=None, age=None) -> dict:
    spec = {"containers": [{"name": c, "image": f"img/{c}:1"} for c in containers]}
    if init:
        spec["initContainers"] = [c if isinstance(c, dict) else {"name": c, "image": "busybox"}
                                  for c in init]
    spec.update(spec_extra or {})
    status = {"phase": phase, "conditions": list(conditions)}
    if statuses:
        status["containerStatuses"] = list(statuses)
    if init_statuses:
        status["initContainerStatuses"] = list(init_statuses)
    status.update(status_extra or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, age, **(meta_extra or {})),
            "spec": spec, "status": status}


def running(name, ready=True, restarts=0, **extra):
    cs = {"name": name, "ready": ready, "restartCount": restarts,
          "state": {"running": {"startedAt": ago(minutes=4)}}, "image": "img", "imageID": ""}
    cs.update(extra)
    return cs


def waiting(name, reason, restarts=0, last_finished=None, **extra):
    cs = {"name": name, "ready": False, "restartCount": restarts,
          "state": {"waiting": {"reason": reason, "message": "..."}}}
    if last_finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error",
                                          "finishedAt": last_finished}}
    cs.update(extra)
    return cs


def terminated(name, exit_code=0, reason=None, signal=None, **extra):
    term = {"exitCode": exit_code, "finishedAt": ago(minutes=1)}
    if reason:
        term["reason"] = reason
    if signal:
        term["signal"] = signal
    cs = {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": term}}
    cs.update(extra)
    return cs


READY = {"type": "Ready", "status": "True"}
NOT_READY = {"type": "Ready", "status": "False"}
INITIALIZED = {"type": "Initialized", "status": "True"}
NOT_INITIALIZED = {"type": "Initialized", "status": "False"}


def pod_row(p: dict, wide: bool = False) -> list:
    t = table("", "pods", p)
    assert headers(t, wide=True) == POD_WIDE
    assert headers(t) == POD_HEADERS
    return cells(t, wide)[0]


def test_pod_running_wide():
    p = pod("web-7d4b9c-x2x", containers=("app", "proxy"),
            statuses=[running("app"), running("proxy")], conditions=[INITIALIZED, READY],
            spec_extra={"nodeName": "node-1"},
            status_extra={"podIP": "10.244.1.5",
                          "podIPs": [{"ip": "10.244.1.5"}, {"ip": "fd00::5"}]})
    assert pod_row(p, wide=True) == ["web-7d4b9c-x2x", "2/2", "Running", "0", "5m",
                                     "10.244.1.5", "node-1", "<none>", "<none>"]


def test_pod_one_of_two_ready_and_pod_ip_without_pod_ips():
    p = pod(containers=("app", "sidecar"),
            statuses=[running("app"), running("sidecar", ready=False)],
            status_extra={"podIP": "10.0.0.9", "nominatedNodeName": "node-9"})
    assert pod_row(p, wide=True) == ["web", "1/2", "Running", "0", "5m", "10.0.0.9", "<none>",
                                     "node-9", "<none>"]


def test_pod_pending_unscheduled():
    assert pod_row(pod(phase="Pending"), wide=True) == [
        "web", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "<none>"]


def test_pod_scheduling_gated():
    p = pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                          "reason": "SchedulingGated"}])
    assert pod_row(p)[2] == "SchedulingGated"


def test_pod_crashloop_with_last_restart_age():
    p = pod(statuses=[waiting("app", "CrashLoopBackOff", restarts=5,
                              last_finished=ago(seconds=30))],
            conditions=[INITIALIZED, NOT_READY])
    assert pod_row(p) == ["web", "0/1", "CrashLoopBackOff", "5 (30s ago)", "5m"]


def test_pod_restarts_use_latest_termination_of_all_containers():
    p = pod(containers=("a", "b"), conditions=[READY],
            statuses=[running("a", restarts=2, lastState={"terminated": {
                "exitCode": 137, "finishedAt": ago(hours=3, minutes=4)}}),
                running("b", restarts=1, lastState={"terminated": {
                    "exitCode": 1, "finishedAt": ago(minutes=12)}})])
    assert pod_row(p)[1:4] == ["2/2", "Running", "3 (12m ago)"]


def test_pod_restarts_without_termination_record():
    p = pod(statuses=[running("app", restarts=4)])
    assert pod_row(p)[3] == "4"


def test_pod_image_pull_backoff_and_err_image_pull():
    assert pod_row(pod(phase="Pending", statuses=[waiting("app", "ImagePullBackOff")]))[2] == \
        "ImagePullBackOff"
    assert pod_row(pod(phase="Pending", statuses=[waiting("app", "ErrImagePull")]))[2] == \
        "ErrImagePull"


def test_pod_first_container_status_wins():
    p = pod(containers=("a", "b"), statuses=[waiting("a", "CreateContainerConfigError"),
                                               waiting("b", "ContainerCreating")], phase="Pending")
    assert pod_row(p)[2] == "CreateContainerConfigError"


def test_pod_init_running():
    p = pod(init=("init-db", "init-cache"), phase="Pending",
            init_statuses=[running("init-db", ready=False),
                           waiting("init-cache", "PodInitializing")],
            statuses=[waiting("app", "PodInitializing")], conditions=[NOT_INITIALIZED])
    assert pod_row(p) == ["web", "0/1", "Init:0/2", "0", "5m"]


def test_pod_init_second_of_two():
    p = pod(init=("init-db", "init-cache"), phase="Pending",
            init_statuses=[terminated("init-db", 0, "Completed"),
                           running("init-cache", ready=False)],
            statuses=[waiting("app", "PodInitializing")], conditions=[NOT_INITIALIZED])
    assert pod_row(p)[2] == "Init:1/2"


def test_pod_init_waiting_pod_initializing_counts_as_progress():
    p = pod(init=("a", "b"), phase="Pending",
            init_statuses=[terminated("a", 0), waiting("b", "PodInitializing")])
    assert pod_row(p)[2] == "Init:1/2"


def test_pod_init_failures():
    def status_of(init_status):
        return pod_row(pod(init=("init",), phase="Pending", init_statuses=[init_status],
                           conditions=[NOT_INITIALIZED]))[2]
    assert status_of(terminated("init", 1, "Error")) == "Init:Error"
    assert status_of(terminated("init", 2)) == "Init:ExitCode:2"
    assert status_of(terminated("init", 137, signal=9)) == "Init:Signal:9"
    assert status_of(waiting("init", "CrashLoopBackOff", restarts=3)) == "Init:CrashLoopBackOff"


def test_pod_init_crashloop_restarts_count_init_containers():
    p = pod(init=("init",), phase="Pending", conditions=[NOT_INITIALIZED],
            init_statuses=[waiting("init", "CrashLoopBackOff", restarts=3,
                                   last_finished=ago(minutes=2, seconds=3))],
            statuses=[waiting("app", "PodInitializing")])
    assert pod_row(p) == ["web", "0/1", "Init:CrashLoopBackOff", "3 (2m3s ago)", "5m"]


def test_pod_initializing_after_init_containers_finish():
    p = pod(init=("init",), phase="Pending", conditions=[INITIALIZED],
            init_statuses=[terminated("init", 0, "Completed")],
            statuses=[waiting("app", "PodInitializing")])
    assert pod_row(p)[2] == "PodInitializing"


def test_pod_container_creating():
    p = pod(phase="Pending", statuses=[waiting("app", "ContainerCreating")])
    assert pod_row(p)[2] == "ContainerCreating"


def test_pod_sidecar_counts_as_container():
    sidecar = {"name": "istio", "image": "proxy", "restartPolicy": "Always"}
    p = pod(init=(sidecar,), conditions=[INITIALIZED, READY],
            init_statuses=[running("istio", restarts=2, started=True, lastState={"terminated": {
                "exitCode": 1, "finishedAt": ago(hours=2)}})],
            statuses=[running("app")])
    assert pod_row(p) == ["web", "2/2", "Running", "2 (120m ago)", "5m"]


def test_pod_sidecar_not_started_blocks_init():
    sidecar = {"name": "istio", "image": "proxy", "restartPolicy": "Always"}
    p = pod(init=(sidecar, "migrate"), phase="Pending", conditions=[NOT_INITIALIZED],
            init_statuses=[running("istio", ready=False, started=False),
                           waiting("migrate", "PodInitializing")])
    assert pod_row(p)[1:3] == ["0/2", "Init:0/2"]


def test_pod_completed():
    p = pod("job-x", phase="Succeeded", statuses=[terminated("app", 0, "Completed")],
            conditions=[{"type": "Ready", "status": "False", "reason": "PodCompleted"}])
    t = table("", "pods", p)
    assert cells(t) == [["job-x", "0/1", "Completed", "0", "5m"]]
    assert t["rows"][0]["conditions"] == [{"type": "Completed", "status": "True",
                                           "reason": "Succeeded",
                                           "message": "The pod has completed successfully."}]


def test_pod_failed_row_condition_and_error_status():
    p = pod(phase="Failed", statuses=[terminated("app", 1, "Error")])
    t = table("", "pods", p)
    assert cells(t)[0][2] == "Error"
    assert t["rows"][0]["conditions"][0]["reason"] == "Failed"
    assert "conditions" not in table("", "pods", pod(statuses=[running("app")]))["rows"][0]


def test_pod_terminated_without_reason():
    assert pod_row(pod(phase="Failed", statuses=[terminated("app", 3)]))[2] == "ExitCode:3"
    assert pod_row(pod(phase="Failed", statuses=[terminated("app", 143, signal=15)]))[2] == \
        "Signal:15"


def test_pod_completed_container_beside_running_one():
    statuses = [terminated("job", 0, "Completed"), running("server")]
    p = pod(containers=("job", "server"), statuses=statuses, conditions=[READY])
    assert pod_row(p)[1:3] == ["1/2", "Running"]
    p = pod(containers=("job", "server"), statuses=statuses, conditions=[NOT_READY])
    assert pod_row(p)[1:3] == ["1/2", "NotReady"]


def test_pod_evicted():
    p = pod(phase="Failed", status_extra={"reason": "Evicted", "message": "low on memory"})
    assert pod_row(p)[2] == "Evicted"


def test_pod_terminating():
    p = pod(statuses=[running("app")], conditions=[READY],
            meta_extra={"deletionTimestamp": ago(seconds=10), "deletionGracePeriodSeconds": 30})
    assert pod_row(p) == ["web", "1/1", "Terminating", "0", "5m"]


def test_pod_terminating_after_success_keeps_completed():
    p = pod(phase="Succeeded", statuses=[terminated("app", 0, "Completed")],
            meta_extra={"deletionTimestamp": ago(seconds=10)})
    assert pod_row(p)[2] == "Completed"


def test_pod_node_lost():
    # A running container leaves the pod-level reason in place.
    p = pod(statuses=[running("app")], status_extra={"reason": "NodeLost"})
    assert pod_row(p)[2] == "NodeLost"
    p["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert pod_row(p)[2] == "Unknown"


def test_pod_readiness_gates():
    p = pod(statuses=[running("app")],
            spec_extra={"readinessGates": [{"conditionType": "example.com/lb"},
                                           {"conditionType": "example.com/dns"}]},
            conditions=[READY, {"type": "example.com/lb", "status": "True"},
                        {"type": "example.com/dns", "status": "False"}])
    assert pod_row(p, wide=True)[8] == "1/2"


def test_pod_minimal_object_does_not_crash():
    t = table("", "pods", {"metadata": {"name": "bare"}})
    assert t["rows"][0]["cells"] == ["bare", "0/0", "Pending", "0", "<unknown>", "<none>",
                                     "<none>", "<none>", "<none>"]


# ------------------------------------------------------------------------------------------
# Nodes and namespaces

NODE_HEADERS = ["Name", "Status", "Roles", "Age", "Version"]
NODE_WIDE = NODE_HEADERS + ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version",
                            "Container-Runtime"]


def node(name, ready="True", unschedulable=False, labels=None, conditions=None):
    n = {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": name, "creationTimestamp": ago(days=45), "labels": labels or {}},
         "spec": {},
         "status": {
             "conditions": conditions if conditions is not None else [
                 {"type": "MemoryPressure", "status": "False"},
                 {"type": "Ready", "status": ready}],
             "addresses": [{"type": "Hostname", "address": name},
                           {"type": "InternalIP", "address": "172.18.0.2"}],
             "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)",
                          "kernelVersion": "6.8.0-45-generic",
                          "containerRuntimeVersion": "containerd://2.0.3"}}}
    if unschedulable:
        n["spec"]["unschedulable"] = True
    return n


def test_node_ready_control_plane_wide():
    t = table("", "nodes", node("cp-1", labels={"node-role.kubernetes.io/control-plane": "",
                                                "node-role.kubernetes.io/": "",
                                                "kubernetes.io/role": "master",
                                                "kubernetes.io/hostname": "cp-1"}))
    assert headers(t) == NODE_HEADERS and headers(t, wide=True) == NODE_WIDE
    assert cells(t, wide=True) == [["cp-1", "Ready", "control-plane,master", "45d", "v1.33.1",
                                    "172.18.0.2", "<none>", "Debian GNU/Linux 12 (bookworm)",
                                    "6.8.0-45-generic", "containerd://2.0.3"]]


def test_node_not_ready_and_cordoned():
    t = table("", "nodes", node("w-1", ready="False", unschedulable=True),
              node("w-2", ready="Unknown"), node("w-3", unschedulable=True),
              node("w-4", conditions=[]))
    assert [r[:3] for r in cells(t)] == [
        ["w-1", "NotReady,SchedulingDisabled", "<none>"],
        ["w-2", "NotReady", "<none>"],
        ["w-3", "Ready,SchedulingDisabled", "<none>"],
        ["w-4", "Unknown", "<none>"],
    ]


def test_node_without_info():
    t = table("", "nodes", {"metadata": {"name": "n", "creationTimestamp": ago(hours=3)}})
    assert cells(t, wide=True) == [["n", "Unknown", "<none>", "3h", "", "<none>", "<none>",
                                    "<unknown>", "<unknown>", "<unknown>"]]


def test_namespace():
    t = table("", "namespaces",
              {"metadata": {"name": "default", "creationTimestamp": ago(days=2, hours=3)},
               "status": {"phase": "Active"}},
              {"metadata": {"name": "old", "creationTimestamp": ago(days=400),
                            "deletionTimestamp": ago(seconds=3)},
               "status": {"phase": "Terminating"}})
    assert headers(t, wide=True) == ["Name", "Status", "Age"]
    assert cells(t) == [["default", "Active", "2d3h"], ["old", "Terminating", "400d"]]


# ------------------------------------------------------------------------------------------
# Events

EVENT_HEADERS = ["Last Seen", "Type", "Reason", "Object", "Message"]
EVENT_WIDE = ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message",
              "First Seen", "Count", "Name"]


def test_core_event():
    ev = {"apiVersion": "v1", "kind": "Event",
          "metadata": meta("web.17d8a1f0c3e4b2a1"),
          "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web",
                             "fieldPath": "spec.containers{app}"},
          "reason": "BackOff", "message": "Back-off restarting failed container\n",
          "type": "Warning",
          "source": {"component": "kubelet", "host": "node-1"},
          "firstTimestamp": ago(minutes=10), "lastTimestamp": ago(seconds=42), "count": 7}
    t = table("", "events", ev)
    assert headers(t) == EVENT_HEADERS and headers(t, wide=True) == EVENT_WIDE
    name_col = t["columnDefinitions"][-1]
    assert name_col["format"] == "name" and name_col["priority"] == 1
    assert cells(t, wide=True) == [["42s", "Warning", "BackOff", "pod/web", "spec.containers{app}",
                                    "kubelet, node-1", "Back-off restarting failed container",
                                    "10m", 7, "web.17d8a1f0c3e4b2a1"]]


def test_core_event_new_style_fields():
    ev = {"metadata": meta("e1"), "involvedObject": {"kind": "Node"}, "type": "Normal",
          "reason": "Starting", "message": "m", "eventTime": "2024-06-01T11:59:00.000000Z",
          "reportingComponent": "kube-proxy", "reportingInstance": "kube-proxy-node-1"}
    assert cells(table("", "events", ev), wide=True) == [
        ["60s", "Normal", "Starting", "node", "", "kube-proxy, kube-proxy-node-1", "m", "60s",
         1, "e1"]]


def test_core_event_with_series_and_no_timestamps():
    ev = {"metadata": meta("e2"), "involvedObject": {"kind": "Deployment", "name": "web"},
          "type": "Normal", "reason": "ScalingReplicaSet", "message": "Scaled up",
          "source": {"component": "deployment-controller"}, "count": 1,
          "series": {"count": 4, "lastObservedTime": "2024-06-01T11:58:00.000000Z"}}
    assert cells(table("", "events", ev), wide=True) == [
        ["2m", "Normal", "ScalingReplicaSet", "deployment/web", "", "deployment-controller",
         "Scaled up", "<unknown>", 4, "e2"]]


def test_events_k8s_io_event():
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("e3"),
          "eventTime": "2024-06-01T11:55:00.000000Z", "reportingController": "kubelet",
          "reportingInstance": "node-2", "action": "Pulling", "reason": "Pulling",
          "regarding": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
          "note": "Pulling image \"nginx\"", "type": "Normal"}
    t = to_table(resources.lookup("events.k8s.io", "v1", "events"), [ev], now=NOW)
    assert headers(t, wide=True) == EVENT_WIDE
    assert cells(t, wide=True) == [["5m", "Normal", "Pulling", "pod/web-0", "spec.containers{app}",
                                    "kubelet, node-2", "Pulling image \"nginx\"", "5m", 1, "e3"]]
    ev.update({"deprecatedFirstTimestamp": ago(hours=1), "deprecatedLastTimestamp": ago(minutes=1),
               "deprecatedCount": 9, "deprecatedSource": {"component": "old"}})
    t = to_table(resources.lookup("events.k8s.io", "v1", "events"), [ev], now=NOW)
    row = cells(t, wide=True)[0]
    assert row[0] == "60s"
    assert row[5:9] == ["old, node-2", "Pulling image \"nginx\"", "60m", 9]


# ------------------------------------------------------------------------------------------
# Storage


def test_persistent_volume():
    pv = {"metadata": {"name": "pv-1", "creationTimestamp": ago(days=3)},
          "spec": {"capacity": {"storage": "10Gi"},
                   "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                   "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                   "claimRef": {"namespace": "default", "name": "data-web-0"},
                   "hostPath": {"path": "/tmp"}},
          "status": {"phase": "Bound"}}
    released = {"metadata": {"name": "pv-2", "creationTimestamp": ago(days=3),
                             "annotations": {"volume.beta.kubernetes.io/storage-class": "slow"},
                             "deletionTimestamp": ago(seconds=1)},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOncePod"],
                         "volumeMode": "Block", "volumeAttributesClassName": "gold"},
                "status": {"phase": "Released", "reason": "Recycling"}}
    t = table("", "persistentvolumes", pv, released)
    assert headers(t) == ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim",
                          "StorageClass", "VolumeAttributesClass", "Reason", "Age"]
    assert headers(t, wide=True)[-1] == "VolumeMode"
    assert cells(t, wide=True) == [
        ["pv-1", "10Gi", "RWO,RWX", "Delete", "Bound", "default/data-web-0", "standard", "<unset>",
         "", "3d", "Filesystem"],
        ["pv-2", "1Gi", "RWOP", "Retain", "Terminating", "", "slow", "gold", "Recycling", "3d",
         "Block"],
    ]


def test_persistent_volume_claim():
    bound = {"metadata": meta("data-web-0"),
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}},
                      "storageClassName": "standard", "volumeName": "pvc-0b1c",
                      "volumeMode": "Filesystem"},
             "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                        "capacity": {"storage": "2Gi"}}}
    pending = {"metadata": meta("data-web-1"),
               "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}},
               "status": {"phase": "Pending"}}
    t = table("", "persistentvolumeclaims", bound, pending)
    assert headers(t, wide=True) == ["Name", "Status", "Volume", "Capacity", "Access Modes",
                                     "StorageClass", "VolumeAttributesClass", "Age", "VolumeMode"]
    assert cells(t, wide=True) == [
        ["data-web-0", "Bound", "pvc-0b1c", "2Gi", "RWO", "standard", "<unset>", "5m",
         "Filesystem"],
        ["data-web-1", "Pending", "", "", "", "", "<unset>", "5m", "Filesystem"],
    ]


def test_storage_class():
    default = {"metadata": {"name": "standard", "creationTimestamp": ago(days=10), "annotations": {
        "storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer"}
    other = {"metadata": {"name": "fast", "creationTimestamp": ago(days=10)},
             "provisioner": "ebs.csi.aws.com", "allowVolumeExpansion": True,
             "reclaimPolicy": "Retain"}
    beta = {"metadata": {"name": "old", "creationTimestamp": ago(days=10), "annotations": {
        "storageclass.beta.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"}
    t = to_table(resources.lookup("storage.k8s.io", "v1", "storageclasses"), [default, other, beta],
                 now=NOW)
    assert headers(t, wide=True) == ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode",
                                     "AllowVolumeExpansion", "Age"]
    assert cells(t) == [
        ["standard (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", False,
         "10d"],
        ["fast", "ebs.csi.aws.com", "Retain", "Immediate", True, "10d"],
        ["old (default)", "x", "Delete", "Immediate", False, "10d"],
    ]


# ------------------------------------------------------------------------------------------
# Config and identity


def test_configmap_secret_serviceaccount():
    cm = {"metadata": meta("kube-root-ca.crt"), "data": {"ca.crt": "..."},
          "binaryData": {"blob": "AAE="}}
    t = table("", "configmaps", cm, {"metadata": meta("empty")})
    assert headers(t, wide=True) == ["Name", "Data", "Age"]
    assert cells(t) == [["kube-root-ca.crt", 2, "5m"], ["empty", 0, "5m"]]

    tls = {"metadata": meta("tls"), "type": "kubernetes.io/tls",
           "data": {"tls.crt": "eA==", "tls.key": "eA=="}}
    t = table("", "secrets", tls, {"metadata": meta("plain"), "stringData": {"a": "b"}})
    assert headers(t, wide=True) == ["Name", "Type", "Data", "Age"]
    assert cells(t) == [["tls", "kubernetes.io/tls", 2, "5m"], ["plain", "Opaque", 0, "5m"]]

    sa = {"metadata": meta("default"), "secrets": [{"name": "default-token"}]}
    t = table("", "serviceaccounts", sa, {"metadata": meta("builder")})
    assert headers(t, wide=True) == ["Name", "Secrets", "Age"]
    assert cells(t) == [["default", 1, "5m"], ["builder", 0, "5m"]]


def test_lease():
    lease = {"metadata": meta("kube-scheduler", ago(hours=5)),
             "spec": {"holderIdentity": "cp-1_0a1b", "leaseDurationSeconds": 15}}
    t = to_table(resources.lookup("coordination.k8s.io", "v1", "leases"),
                 [lease, {"metadata": meta("free"), "spec": {}}], now=NOW)
    assert headers(t, wide=True) == ["Name", "Holder", "Age"]
    assert cells(t) == [["kube-scheduler", "cp-1_0a1b", "5h"], ["free", "", "5m"]]


# ------------------------------------------------------------------------------------------
# Services


def svc(name, **spec):
    return {"metadata": meta(name, ago(days=2)), "spec": spec, "status": spec.pop("status", {})}


def test_services():
    t = table("", "services",
              svc("kubernetes", type="ClusterIP", clusterIP="10.96.0.1", clusterIPs=["10.96.0.1"],
                  ports=[{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]),
              svc("web", type="NodePort", clusterIP="10.96.12.7",
                  ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080},
                         {"port": 53, "protocol": "UDP", "nodePort": 30053}],
                  selector={"app": "web", "app.kubernetes.io/name": "web"}),
              svc("headless", clusterIP="None", clusterIPs=["None"], selector={"app": "db"},
                  ports=[{"port": 5432}]),
              svc("lb-pending", type="LoadBalancer", clusterIP="10.96.3.3",
                  ports=[{"port": 443, "protocol": "TCP", "nodePort": 31443}]),
              svc("lb", type="LoadBalancer", clusterIPs=["10.96.4.4"], externalIPs=["1.2.3.4"],
                  ports=[{"port": 80, "protocol": "TCP", "nodePort": 31080}],
                  status={"loadBalancer": {"ingress": [{"ip": "203.0.113.10"},
                                                       {"hostname": "a.elb.example.com"},
                                                       {"ip": "198.51.100.1"}]}}),
              svc("ext", type="ExternalName", externalName="db.example.com"),
              svc("withexternal", type="ClusterIP", clusterIP="10.96.5.5",
                  externalIPs=["192.0.2.1", "192.0.2.2"], ports=[]))
    assert headers(t) == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]
    assert headers(t, wide=True) == headers(t) + ["Selector"]
    assert cells(t, wide=True) == [
        ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP", "2d", "<none>"],
        ["web", "NodePort", "10.96.12.7", "<none>", "80:30080/TCP,53:30053/UDP", "2d",
         "app.kubernetes.io/name=web,app=web"],
        ["headless", "ClusterIP", "None", "<none>", "5432/TCP", "2d", "app=db"],
        ["lb-pending", "LoadBalancer", "10.96.3.3", "<pending>", "443:31443/TCP", "2d", "<none>"],
        ["lb", "LoadBalancer", "10.96.4.4", "198.51.100.1,203.0.113.10,a.elb.example.com,1.2.3.4",
         "80:31080/TCP", "2d", "<none>"],
        ["ext", "ExternalName", "<none>", "db.example.com", "<none>", "2d", "<none>"],
        ["withexternal", "ClusterIP", "10.96.5.5", "192.0.2.1,192.0.2.2", "<none>", "2d", "<none>"],
    ]


# ------------------------------------------------------------------------------------------
# Workloads

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                    {"name": "exporter", "image": "nginx/exporter:1.1"}]}}


def test_deployment():
    d = {"metadata": meta("web", ago(hours=2, minutes=5)),
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "fe"},
                                              "matchExpressions": [
                                                  {"key": "env", "operator": "In",
                                                   "values": ["prod", "canary"]},
                                                  {"key": "legacy", "operator": "DoesNotExist"}]},
                  "template": TEMPLATE},
         "status": {"replicas": 3, "updatedReplicas": 2, "readyReplicas": 2,
                    "availableReplicas": 1}}
    fresh = {"metadata": meta("new"), "spec": {"template": TEMPLATE, "selector": {}}}
    t = to_table(resources.lookup("apps", "v1", "deployments"), [d, fresh], now=NOW)
    assert headers(t) == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert headers(t, wide=True) == headers(t) + ["Containers", "Images", "Selector"]
    assert cells(t, wide=True) == [
        ["web", "2/3", 2, 1, "125m", "nginx,exporter", "nginx:1.27,nginx/exporter:1.1",
         "app=web,env in (canary,prod),!legacy,tier=fe"],
        ["new", "0/1", 0, 0, "5m", "nginx,exporter", "nginx:1.27,nginx/exporter:1.1", ""],
    ]


def test_replicaset():
    rs = {"metadata": meta("web-7d4b9c", ago(days=1)),
          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web",
                                                                "pod-template-hash": "7d4b9c"}},
                   "template": TEMPLATE},
          "status": {"replicas": 3, "readyReplicas": 2}}
    old = {"metadata": meta("web-old"), "spec": {"replicas": 0, "template": TEMPLATE},
           "status": {"replicas": 0}}
    t = to_table(resources.lookup("apps", "v1", "replicasets"), [rs, old], now=NOW)
    assert headers(t) == ["Name", "Desired", "Current", "Ready", "Age"]
    assert headers(t, wide=True) == headers(t) + ["Containers", "Images", "Selector"]
    assert cells(t, wide=True) == [
        ["web-7d4b9c", 3, 3, 2, "24h", "nginx,exporter", "nginx:1.27,nginx/exporter:1.1",
         "app=web,pod-template-hash=7d4b9c"],
        ["web-old", 0, 0, 0, "5m", "nginx,exporter", "nginx:1.27,nginx/exporter:1.1", "<none>"],
    ]


def test_statefulset():
    sts = {"metadata": meta("db"), "spec": {"replicas": 3, "serviceName": "db",
                                            "selector": {"matchLabels": {"app": "db"}},
                                            "template": TEMPLATE},
           "status": {"replicas": 2, "readyReplicas": 1}}
    t = to_table(resources.lookup("apps", "v1", "statefulsets"), [sts], now=NOW)
    assert headers(t) == ["Name", "Ready", "Age"]
    assert headers(t, wide=True) == ["Name", "Ready", "Age", "Containers", "Images"]
    assert cells(t, wide=True) == [["db", "1/3", "5m", "nginx,exporter",
                                    "nginx:1.27,nginx/exporter:1.1"]]


def test_daemonset():
    ds = {"metadata": meta("kube-proxy", ago(days=45)),
          "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                   "template": {"spec": {"containers": [
                       {"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.33.1"}],
                                         "nodeSelector": {"kubernetes.io/os": "linux"}}}},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                     "updatedNumberScheduled": 3, "numberAvailable": 2}}
    t = to_table(resources.lookup("apps", "v1", "daemonsets"), [ds], now=NOW)
    assert headers(t) == ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available",
                          "Node Selector", "Age"]
    assert headers(t, wide=True) == headers(t) + ["Containers", "Images", "Selector"]
    assert cells(t, wide=True) == [["kube-proxy", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "45d",
                                    "kube-proxy", "registry.k8s.io/kube-proxy:v1.33.1",
                                    "k8s-app=kube-proxy"]]
    ds["spec"]["template"]["spec"].pop("nodeSelector")
    assert cells(to_table(resources.lookup("apps", "v1", "daemonsets"), [ds], now=NOW))[0][6] == \
        "<none>"


def test_controller_revision():
    cr = {"metadata": meta("web-5c8f", ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "1",
         "controller": True}]), "revision": 3, "data": {}}
    orphan = {"metadata": meta("lost"), "revision": 1}
    core_owner = {"metadata": meta("x", ownerReferences=[
        {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "2", "controller": True}]),
        "revision": 2}
    t = to_table(resources.lookup("apps", "v1", "controllerrevisions"), [cr, orphan, core_owner],
                 now=NOW)
    assert headers(t, wide=True) == ["Name", "Controller", "Revision", "Age"]
    assert cells(t) == [["web-5c8f", "statefulset.apps/web", 3, "5m"], ["lost", "<none>", 1, "5m"],
                        ["x", "pod/p", 2, "5m"]]


def job(name, conditions=(), completions=1, parallelism=1, succeeded=0, start=None, end=None,
        deleting=False, **spec_extra):
    spec = {"parallelism": parallelism, "template": TEMPLATE,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}}}
    if completions is not None:
        spec["completions"] = completions
    spec.update(spec_extra)
    status = {"conditions": list(conditions)}
    if succeeded:
        status["succeeded"] = succeeded
    if start:
        status["startTime"] = start
    if end:
        status["completionTime"] = end
    m = meta(name, ago(minutes=20))
    if deleting:
        m["deletionTimestamp"] = ago(seconds=1)
    return {"metadata": m, "spec": spec, "status": status}


def cond(type_, status="True"):
    return {"type": type_, "status": status}


def test_jobs():
    jobs = [
        job("pi", [cond("SuccessCriteriaMet"), cond("Complete")], completions=5, parallelism=2,
            succeeded=5, start=ago(minutes=19), end=ago(minutes=16, seconds=57)),
        job("broken", [cond("FailureTarget"), cond("Failed")], start=ago(minutes=19),
            end=ago(minutes=18)),
        job("running", completions=5, succeeded=3, start=ago(minutes=2, seconds=3)),
        job("suspended", [cond("Suspended")], start=None),
        job("dying", [cond("FailureTarget")], start=ago(minutes=10), deleting=True),
        job("failing", [cond("FailureTarget")], start=ago(minutes=10)),
        job("workqueue", completions=None, parallelism=3, succeeded=1, start=ago(seconds=30)),
        job("single", [cond("Complete", "False")], completions=None, parallelism=1),
    ]
    t = to_table(resources.lookup("batch", "v1", "jobs"), jobs, now=NOW)
    assert headers(t) == ["Name", "Status", "Completions", "Duration", "Age"]
    assert headers(t, wide=True) == headers(t) + ["Containers", "Images", "Selector"]
    assert cells(t) == [
        ["pi", "Complete", "5/5", "2m3s", "20m"],
        ["broken", "Failed", "0/1", "60s", "20m"],
        ["running", "Running", "3/5", "2m3s", "20m"],
        ["suspended", "Suspended", "0/1", "", "20m"],
        ["dying", "Terminating", "0/1", "10m", "20m"],
        ["failing", "FailureTarget", "0/1", "10m", "20m"],
        ["workqueue", "Running", "1/1 of 3", "30s", "20m"],
        ["single", "Running", "0/1", "", "20m"],
    ]
    assert cells(t, wide=True)[0][5:] == ["nginx,exporter", "nginx:1.27,nginx/exporter:1.1",
                                          "batch.kubernetes.io/controller-uid=abc"]


def test_cronjob():
    cj = {"metadata": meta("backup", ago(days=10)),
          "spec": {"schedule": "*/5 * * * *", "suspend": False,
                   "jobTemplate": {"spec": {"template": TEMPLATE}}},
          "status": {"active": [{"name": "backup-1"}],
                     "lastScheduleTime": ago(minutes=4, seconds=2)}}
    tz = {"metadata": meta("report", ago(hours=1)),
          "spec": {"schedule": "0 9 * * 1", "timeZone": "Europe/Paris", "suspend": True,
                   "jobTemplate": {"spec": {"template": TEMPLATE,
                                            "selector": {"matchLabels": {"x": "y"}}}}},
          "status": {}}
    t = to_table(resources.lookup("batch", "v1", "cronjobs"), [cj, tz], now=NOW)
    assert headers(t) == ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule",
                          "Age"]
    assert headers(t, wide=True) == headers(t) + ["Containers", "Images", "Selector"]
    assert cells(t, wide=True) == [
        ["backup", "*/5 * * * *", "<none>", "False", 1, "4m2s", "10d", "nginx,exporter",
         "nginx:1.27,nginx/exporter:1.1", "<none>"],
        ["report", "0 9 * * 1", "Europe/Paris", "True", 0, "<none>", "60m", "nginx,exporter",
         "nginx:1.27,nginx/exporter:1.1", "x=y"],
    ]


# ------------------------------------------------------------------------------------------
# Every registered kind renders, and fast


@pytest.mark.parametrize("r", resources.RESOURCES, ids=lambda r: f"{r.group or 'core'}/{r.kind}")
def test_every_resource_renders_an_empty_object(r):
    t = to_table(r, [{"metadata": {"name": "x"}}], now=NOW)
    cols = t["columnDefinitions"]
    assert len(t["rows"][0]["cells"]) == len(cols)
    assert sum(1 for c in cols if c["format"] == "name") == 1


def test_ten_thousand_pods_quickly():
    import time

    p = pod(containers=("app", "proxy"), statuses=[running("app"), running("proxy", restarts=1,
            lastState={"terminated": {"exitCode": 1, "finishedAt": ago(hours=1)}})],
            conditions=[INITIALIZED, READY], spec_extra={"nodeName": "n"},
            status_extra={"podIPs": [{"ip": "10.0.0.1"}]})
    pods = [p] * 10_000
    start = time.perf_counter()
    t = table("", "pods", *pods)
    elapsed = time.perf_counter() - start
    assert len(t["rows"]) == 10_000 and t["rows"][0]["cells"][3] == "1 (60m ago)"
    assert elapsed < 2.0, elapsed
