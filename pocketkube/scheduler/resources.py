"""Resource arithmetic: a pod's requests as kube-scheduler counts them, and a node's allocatable.

The same functions account for the pod being placed and for the pods already on a node, so
both sides of every comparison agree: containers summed, each init container as a maximum
(sidecars, restartPolicy Always, added to everything after them), pod-level requests taking
precedence for CPU and memory, pod overhead on top. Quantities become integers once (CPU in
millicores, everything else in units, both rounded up as Quantity.MilliValue/Value do), and
the "non-zero" requests used for scoring count 100m CPU and 200Mi memory for a container that
asks for nothing, so that empty pods spread too.
"""

from __future__ import annotations

from functools import lru_cache

from ..api.quantity import parse_quantity

# Upstream's DefaultMilliCPURequest / DefaultMemoryRequest for scoring pods without requests.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
# Resources that never count against a node (storage is a PVC request; pods is the count).
_NOT_SCALAR = {CPU, MEMORY, EPHEMERAL, PODS, "storage"}


@lru_cache(maxsize=8192)
def milli_value(s: str) -> int:
    """Quantity.MilliValue(): thousandths, rounded up (0 for an unparsable value)."""
    try:
        v = parse_quantity(s) * 1000
    except (ValueError, TypeError):
        return 0
    i = int(v)
    return i + 1 if v > i else i


@lru_cache(maxsize=8192)
def int_value(s: str) -> int:
    """Quantity.Value(): whole units, rounded up (0 for an unparsable value)."""
    try:
        v = parse_quantity(s)
    except (ValueError, TypeError):
        return 0
    i = int(v)
    return i + 1 if v > i else i


def _amount(name: str, q) -> int:
    q = str(q)
    return milli_value(q) if name == CPU else int_value(q)


def resource_list(rl: dict | None) -> dict[str, int]:
    """A ResourceList as integers: CPU in millicores, everything else in units."""
    if not rl:
        return {}
    return {k: _amount(k, v) for k, v in rl.items()}


def _container_requests(c: dict) -> dict[str, int]:
    res = c.get("resources") or {}
    req = res.get("requests")
    lim = res.get("limits")
    if not lim:
        return resource_list(req)
    # The API defaults a missing request to its limit; do the same for objects that skipped it.
    out = resource_list(lim)
    out.update(resource_list(req))
    return out


def _non_zero(reqs: dict[str, int]) -> dict[str, int]:
    out = dict(reqs)
    if not out.get(CPU):
        out[CPU] = DEFAULT_MILLI_CPU
    if not out.get(MEMORY):
        out[MEMORY] = DEFAULT_MEMORY
    return out


def _add(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def _aggregate(spec: dict, non_zero: bool) -> dict[str, int]:
    """resourcehelper.PodRequests: the pod's effective requests."""
    reqs: dict[str, int] = {}
    for c in spec.get("containers") or ():
        r = _container_requests(c)
        _add(reqs, _non_zero(r) if non_zero else r)
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c in spec.get("initContainers") or ():
        r = _container_requests(c)
        if non_zero:
            r = _non_zero(r)
        if c.get("restartPolicy") == "Always":
            # A sidecar keeps running beside the app containers and the later init containers.
            _add(reqs, r)
            _add(sidecars, r)
            step = dict(sidecars)
        else:
            step = dict(r)
            _add(step, sidecars)
        _max(init_max, step)
    _max(reqs, init_max)
    pod_level = resource_list(((spec.get("resources") or {}).get("requests")))
    for k in (CPU, MEMORY):
        if pod_level.get(k):
            reqs[k] = pod_level[k]
    _add(reqs, resource_list(spec.get("overhead")))
    return reqs


def resource_fields(spec: dict) -> tuple:
    """Every part of a spec that PodRes reads, to compare cheaply with an earlier version."""
    return ([(c.get("resources"), c.get("restartPolicy")) for c in spec.get("initContainers") or ()],
            [c.get("resources") for c in spec.get("containers") or ()], spec.get("resources"), spec.get("overhead"))


class PodRes:
    """A pod's requests as the node aggregates count them."""

    __slots__ = ("cpu", "mem", "eph", "scalar", "nz_cpu", "nz_mem")

    def __init__(self, spec: dict):
        reqs = _aggregate(spec, False)
        self.cpu = reqs.get(CPU, 0)
        self.mem = reqs.get(MEMORY, 0)
        self.eph = reqs.get(EPHEMERAL, 0)
        scalar = {k: v for k, v in reqs.items() if k not in _NOT_SCALAR and v}
        self.scalar = scalar or None
        if not spec.get("initContainers") and all(
                (r := _container_requests(c)).get(CPU) and r.get(MEMORY) for c in spec.get("containers") or ()):
            # Every container asked for both: the non-zero figures are the real ones.
            self.nz_cpu, self.nz_mem = self.cpu, self.mem
        else:
            nz = _aggregate(spec, True)
            self.nz_cpu = nz.get(CPU, 0)
            self.nz_mem = nz.get(MEMORY, 0)


def host_ports(spec: dict) -> tuple[tuple[str, str, int], ...]:
    """(hostIP, protocol, hostPort) for every port that claims a port on the node."""
    out = []
    containers = list(spec.get("containers") or ())
    containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for c in containers:
        for p in c.get("ports") or ():
            hp = p.get("hostPort") or 0
            if isinstance(hp, int) and hp > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", hp))
    return tuple(out)
