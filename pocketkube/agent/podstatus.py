"""The status a kubelet posts for a pod, computed from what the pod worker knows.

Everything users read about a running pod comes from here: the phase (upstream `getPhase`,
including how init containers and restart policies count), the conditions
PodReadyToStartContainers, Initialized, Ready, ContainersReady and PodScheduled with their
reasons and "containers with unready status: [a b]" messages, and per container the state
(waiting / running / terminated), lastState, ready, started and restartCount. Transition times
are kept from the current status while a condition's status does not change, so a status
computed twice from the same facts is identical and needs no write.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..clock import Clock
from .containers import image_id, normalize_image

# Conditions the kubelet owns, in the order it writes them.
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
_FMT = Clock()   # formatting given timestamps only


@dataclass
class CState:
    """One container of a pod, across its restarts."""

    name: str
    spec: dict
    init: bool = False
    restart_count: int = 0
    cid: str = ""                         # runtime id of the current (or latest) instance
    running_since: float | None = None
    terminated: dict | None = None        # state.terminated of the latest instance, after it exited
    last_terminated: dict | None = None   # lastState.terminated
    waiting: tuple[str, str] | None = None  # (reason, message) why it is not running now
    probe_ready: bool = True              # readiness probe result (True without a probe)
    probe_started: bool = True            # startup probe passed (True without a probe)
    stopping: bool = False                # a stop was requested for the running instance
    restart_now: bool = False             # restart without back-off (its definition changed)

    @property
    def sidecar(self) -> bool:
        return self.init and self.spec.get("restartPolicy") == "Always"

    @property
    def running(self) -> bool:
        return self.running_since is not None

    @property
    def succeeded(self) -> bool:
        return self.running_since is None and self.terminated is not None and \
            self.terminated.get("exitCode") == 0

    def ready(self) -> bool:
        return self.running and self.probe_started and self.probe_ready


@dataclass
class PodFacts:
    """What the worker knows about its pod."""

    containers: list[CState]
    init_containers: list[CState]
    host_ip: str
    pod_ip: str | None = None
    start_time: float | None = None
    sandbox_ready: bool = False
    terminal: bool = False                # no container of this pod will run again
    reason: str | None = None             # e.g. DeadlineExceeded
    message: str | None = None
    extra: dict = field(default_factory=dict)


def _volume_mounts(spec: dict) -> list[dict]:
    out = []
    for m in spec.get("volumeMounts") or []:
        vm = {"name": m.get("name"), "mountPath": m.get("mountPath")}
        if m.get("readOnly"):
            vm["readOnly"] = True
            vm["recursiveReadOnly"] = "Disabled"
        out.append(vm)
    return out


def container_status(c: CState, default_waiting: str) -> dict:
    image = c.spec.get("image") or ""
    st: dict = {"name": c.name, "image": normalize_image(image) if image else "", "imageID": "",
                "restartCount": c.restart_count, "ready": False, "started": False}
    last = c.last_terminated
    if c.running:
        st["state"] = {"running": {"startedAt": _FMT.rfc3339(c.running_since)}}
        st["ready"] = c.ready()
        st["started"] = c.probe_started
    elif c.waiting is not None:
        reason, message = c.waiting
        w = {"reason": reason}
        if message:
            w["message"] = message
        st["state"] = {"waiting": w}
        if c.terminated is not None:
            last = c.terminated
    elif c.terminated is not None:
        st["state"] = {"terminated": dict(c.terminated)}
        # A finished init container counts as ready: its part of initialization is done.
        st["ready"] = c.init and not c.sidecar and c.terminated.get("exitCode") == 0
    else:
        st["state"] = {"waiting": {"reason": default_waiting}}
    st["lastState"] = {"terminated": dict(last)} if last else {}
    if c.cid and (c.running or c.terminated is not None):
        st["containerID"] = f"pocketkube://{c.cid}"
        st["imageID"] = image_id(image)
    elif last:
        st["imageID"] = image_id(image)
    mounts = _volume_mounts(c.spec)
    if mounts:
        st["volumeMounts"] = mounts
    return st


def phase(pod: dict, init_statuses: list[dict], statuses: list[dict], terminal: bool) -> str:
    """Upstream getPhase, from the container statuses just computed."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    pending_init = failed_init = 0
    for st in init_statuses:
        if (init_specs.get(st["name"]) or {}).get("restartPolicy") == "Always":
            # A sidecar only has to have started for initialization to go on.
            if not st.get("started") and "terminated" not in st["state"]:
                pending_init += 1
            continue
        state, last = st["state"], st.get("lastState") or {}
        if "running" in state:
            pending_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode") != 0:
                failed_init += 1
        elif "waiting" in state:
            if "terminated" in last:
                if last["terminated"].get("exitCode") != 0:
                    failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = 0
    for st in statuses:
        state, last = st["state"], st.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in state:
            if "terminated" in last:
                stopped += 1
            else:
                waiting += 1
    if failed_init > 0 and policy == "Never":
        return "Failed"
    # Restarting sidecars do not send a pod whose containers already ran back to Pending.
    regular_started = any("waiting" not in st["state"] or (st.get("lastState") or {}).get("terminated")
                          for st in statuses)
    if (pending_init > 0 and not regular_started) or waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _names(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"


def _condition(ctype: str, status: str, now: str, current: dict, generation, reason: str | None = None,
               message: str | None = None) -> dict:
    old = current.get(ctype)
    transition = old.get("lastTransitionTime") if old and old.get("status") == status else None
    c: dict = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": transition or now}
    if generation is not None:
        c["observedGeneration"] = generation
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def pod_status(pod: dict, facts: PodFacts, clock: Clock) -> dict:
    """The kubelet-owned part of the pod's status."""
    spec = pod.get("spec") or {}
    meta = pod["metadata"]
    old = pod.get("status") or {}
    current = {c.get("type"): c for c in old.get("conditions") or []}
    generation = meta.get("generation")
    now = clock.rfc3339()
    has_init = bool(facts.init_containers)
    init_statuses = [container_status(c, "PodInitializing") for c in facts.init_containers]
    statuses = [container_status(c, "PodInitializing" if has_init else "ContainerCreating")
                for c in facts.containers]
    # A pod past its deadline is Failed once its containers have stopped: the kubelet never
    # reports a terminal phase while containers still run (KEP-3329).
    deadline_failed = facts.reason == "DeadlineExceeded" and facts.terminal
    ph = "Failed" if deadline_failed else phase(pod, init_statuses, statuses, facts.terminal)

    # Initialized
    incomplete = [c.name for c in facts.init_containers
                  if not (c.succeeded or (c.sidecar and c.running and c.probe_started))]
    any_started = any(c.running or c.terminated is not None or c.last_terminated for c in facts.containers)
    if ph == "Succeeded":
        initialized = ("True", "PodCompleted", None)
    elif any_started or not incomplete:
        initialized = ("True", None, None)
    else:
        initialized = ("False", "ContainersNotInitialized", f"containers with incomplete status: {_names(incomplete)}")

    # ContainersReady and Ready
    if ph in ("Succeeded", "Failed"):
        why = "PodCompleted" if ph == "Succeeded" else "PodFailed"
        containers_ready = ("False", why, None)
        ready = containers_ready
    else:
        unready = [c.name for c in facts.init_containers if c.sidecar and not c.ready()]
        unready += [c.name for c in facts.containers if not c.ready()]
        if unready:
            containers_ready = ("False", "ContainersNotReady", f"containers with unready status: {_names(unready)}")
        else:
            containers_ready = ("True", None, None)
        ready = containers_ready
        if containers_ready[0] == "True":
            gates = []
            for g in spec.get("readinessGates") or []:
                t = g.get("conditionType")
                c = current.get(t)
                if c is None:
                    gates.append(f'corresponding condition of pod readiness gate "{t}" does not exist.')
                elif c.get("status") != "True":
                    gates.append(f'the status of pod readiness gate "{t}" is not "True", but {c.get("status")}')
            if gates:
                ready = ("False", "ReadinessGatesNotReady", ", ".join(gates))

    conditions = [
        _condition("PodReadyToStartContainers", "True" if facts.sandbox_ready else "False", now, current, generation),
        _condition("Initialized", initialized[0], now, current, generation, initialized[1], initialized[2]),
        _condition("Ready", ready[0], now, current, generation, ready[1], ready[2]),
        _condition("ContainersReady", containers_ready[0], now, current, generation, containers_ready[1],
                   containers_ready[2]),
        # Kept as the scheduler wrote it; a pod created with nodeName never met a scheduler.
        current.get("PodScheduled") or _condition("PodScheduled", "True", now, current, generation),
    ]
    status: dict = {"phase": ph, "conditions": conditions, "hostIP": facts.host_ip,
                    "hostIPs": [{"ip": facts.host_ip}]}
    if facts.pod_ip:
        status["podIP"] = facts.pod_ip
        status["podIPs"] = [{"ip": facts.pod_ip}]
    if facts.start_time is not None:
        status["startTime"] = clock.rfc3339(facts.start_time)
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    if generation is not None:
        status["observedGeneration"] = generation
    if facts.reason:
        status["reason"] = facts.reason
    if facts.message:
        status["message"] = facts.message
    return status


def merge_status(old: dict, new: dict) -> dict:
    """The kubelet's status over the current one: conditions others own stay, in front."""
    merged = dict(old)
    merged.update(new)
    merged["conditions"] = [c for c in old.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS] \
        + new["conditions"]
    for k in ("reason", "message", "podIP", "podIPs", "initContainerStatuses"):
        if k not in new:
            merged.pop(k, None)
    return merged
