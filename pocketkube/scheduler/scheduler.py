"""The scheduler: give every pending pod a node, the way kube-scheduler does.

One loop takes the next pod from the scheduling queue and decides synchronously, without
awaiting anything, against the cache of per-node totals: PreFilter (node-name pins, volume
claims), Filter (node by node, in upstream's plugin order), Score, then *assume* the pod on the
chosen node so the very next decision sees the capacity it takes. The writes happen
afterwards and concurrently, as upstream's binding cycle: volume pre-binding if needed, the
pods/binding call, and a "Scheduled" event. A pod no node can take gets upstream's
"0/N nodes are available: ..." message, as a FailedScheduling event and as the PodScheduled=False
condition, and waits in the queue for a cluster change that could help it.

Because the decision never awaits, the cache cannot change under it, and informer handlers
(which update the cache and requeue parked pods) run between decisions, never during one.
Waiting pods are decided back to back for a few milliseconds before the loop serves others.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from ..api.errors import ApiError
from ..client import STRATEGIC, Client
from ..client.informer import ComponentInformers
from ..clock import Clock
from . import messages, podaffinity, topologyspread
from .cache import Cache, NodeInfo
from ..client.events import EventRecorder
from .filters import UNSCHEDULABLE, FilterMemo, Status, run_filters
from .podinfo import PodInfo, pod_info
from .schedqueue import SchedulingQueue
from .scoring import ReplicaScan, ScoreMemo, score, select_host
from .volumes import VolumeBinder, VolumeError

log = logging.getLogger("pocketkube.scheduler")

DEFAULT_SCHEDULER = "default-scheduler"
MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
ERR_AFFINITY_CONFLICT = "pod affinity terms conflict"
DECISION_SLICE = 0.005   # seconds of decisions before the loop serves others

# Which parked pods a kind of cluster change can help (upstream's EventsToRegister, coarsely).
_POD_PLUGINS = frozenset({"InterPodAffinity", "PodTopologySpread"})
_CAPACITY_PLUGINS = frozenset({"NodeResourcesFit", "NodePorts"}) | _POD_PLUGINS
_VOLUME_PLUGINS = frozenset({"VolumeBinding"})
# Filters that look beyond the node itself (their verdict is not re-run in the preemption dry run).
_CLUSTER_WIDE = frozenset({"VolumeBinding"}) | _POD_PLUGINS


def num_feasible_nodes_to_find(num_all: int) -> int:
    """Large clusters stop filtering once enough feasible nodes are found (adaptive percentage)."""
    if num_all < MIN_FEASIBLE_NODES:
        return num_all
    percentage = max(MIN_FEASIBLE_PERCENTAGE, 50 - num_all // 125)
    return max(MIN_FEASIBLE_NODES, num_all * percentage // 100)


def _node_relevant(old: dict | None, new: dict) -> bool:
    """Could this node change make a parked pod schedulable?"""
    if old is None:
        return True
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    os_, ns = old.get("spec") or {}, new.get("spec") or {}
    return (om.get("labels") != nm.get("labels") or os_.get("taints") != ns.get("taints")
            or bool(os_.get("unschedulable")) != bool(ns.get("unschedulable"))
            or (old.get("status") or {}).get("allocatable") != (new.get("status") or {}).get("allocatable"))


def _pod_changed(old: dict | None, new: dict) -> bool:
    """Did anything the scheduler reads change (not just status)?"""
    if old is None:
        return True
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (old.get("spec") != new.get("spec") or om.get("labels") != nm.get("labels")
            or om.get("annotations") != nm.get("annotations"))


class _Checks:
    """PreFilter results the per-node filters read (None: the plugin has nothing to check)."""

    __slots__ = ("volumes", "spread", "affinity")

    def __init__(self, volumes, spread, affinity):
        self.volumes = volumes
        self.spread = spread
        self.affinity = affinity


class _Failure:
    """A scheduling attempt that found no node."""

    def __init__(self, message: str, plugins: frozenset, reason: str = "Unschedulable"):
        self.message = message
        self.plugins = plugins
        self.reason = reason


class Scheduler:
    """Binds pending pods whose spec.schedulerName is `name` to nodes.

    `bind_workers` bindings are written concurrently (the store commits them in groups);
    a failed pod is retried after `initial_backoff` doubling to `max_backoff` seconds once a
    relevant change happens, and after `flush_after` seconds parked in any case; a pod whose
    claims are being provisioned waits up to `bind_timeout`. `seed` fixes the tie-breaking.
    """

    def __init__(self, client: Client, clock: Clock | None = None, name: str = DEFAULT_SCHEDULER, *,
                 bind_workers: int = 64, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 flush_after: float = 30.0, bind_timeout: float = 600.0, seed: int | None = None,
                 informers=None):
        self.client = client
        self.clock = clock or Clock()
        self.name = name
        self.bind_workers = bind_workers
        self.cache = Cache()
        self.queue = SchedulingQueue(self.clock, initial_backoff, max_backoff, flush_after)
        # `informers` (SharedInformers): the controller manager's, which it starts and stops.
        self._informers = ComponentInformers(client, informers)
        get = self._informers.get
        self.pods = get("pods")
        self.nodes = get("nodes")
        self.pvcs = get("persistentvolumeclaims")
        self.pvs = get("persistentvolumes")
        self.classes = get("storageclasses.storage.k8s.io")
        self.namespaces = get("namespaces")   # for affinity namespaceSelectors
        self.volumes = VolumeBinder(client, self.clock, self.pvcs, self.pvs, self.classes, bind_timeout)
        # kube-scheduler's event client: 50 requests a second, bursts of 100.
        self.recorder = EventRecorder(client, self.clock, name, qps=50, burst=100)
        self.rng = random.Random(seed)
        self._infos: dict[str, PodInfo] = {}
        self._next_start = 0
        self._scores = ScoreMemo()
        self._verdicts = FilterMemo()
        self._scan = ReplicaScan()
        self._binds: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        self.scheduled = 0          # successful bindings, for tests and benchmarks

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.nodes.add_handler(self._on_node)
        self.pods.add_handler(self._on_pod)
        for inf, res in ((self.pvcs, "pvc"), (self.pvs, "pv"), (self.classes, "sc")):
            inf.add_handler(lambda t, old, new, res=res: self._on_volume(res, old, new))
        await self._informers.start()
        self.recorder.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._schedule_loop(), name="scheduler-loop"),
                       loop.create_task(self._flush_loop(), name="scheduler-flush")]
        self._tasks += [loop.create_task(self._bind_worker(), name=f"scheduler-bind-{i}")
                        for i in range(self.bind_workers)]

    async def stop(self) -> None:
        self.queue.close()
        for t in list(self._tasks) + list(self._background):
            t.cancel()
        for t in list(self._tasks) + list(self._background):
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        try:  # events already decided on are worth a moment (upstream's broadcaster flushes too)
            await asyncio.wait_for(self.recorder.flush(), 2.0)
        except asyncio.TimeoutError:
            pass
        await self.recorder.stop()
        await self._informers.stop()

    # ---- informer handlers (synchronous: they run between decisions) -------------------------

    def _on_node(self, kind: str, old: dict | None, new: dict | None) -> None:
        if kind == "DELETED":
            self.cache.remove_node((old or {}).get("metadata", {}).get("name", ""))
            self.queue.move(_POD_PLUGINS)  # one domain fewer can lower a spread's skew
            return
        self.cache.set_node(new)
        if _node_relevant(old if kind == "MODIFIED" else None, new):
            self.queue.move()

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        obj = new if new is not None else old
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if kind == "DELETED":
            self._infos.pop(key, None)
            self.queue.delete(key)
            if self.cache.remove_pod(key):
                self.queue.move(_CAPACITY_PLUGINS)
            return
        spec = obj.get("spec") or {}
        if spec.get("nodeName"):
            self.queue.delete(key)
            self._infos.pop(key, None)
            freed, appeared = self.cache.update_pod(key, obj)
            if freed:
                self.queue.move(_CAPACITY_PLUGINS)
            elif appeared:
                self.queue.move(_POD_PLUGINS)
            return
        uid = meta.get("uid") or ""
        entry = self.cache.pods.get(key)
        if entry is not None:
            if entry.assumed and entry.uid == uid:
                return  # placed by us, binding in progress
            self.cache.remove_pod(key)  # a new pod under an old name
        phase = (obj.get("status") or {}).get("phase")
        if (spec.get("schedulerName") or DEFAULT_SCHEDULER) != self.name or meta.get("deletionTimestamp") \
                or phase in ("Succeeded", "Failed") or spec.get("schedulingGates"):
            self.queue.delete(key)
            return
        prio = spec.get("priority")
        self.queue.add(key, prio if isinstance(prio, int) else 0, changed=_pod_changed(old, obj))

    def _on_volume(self, res: str, old: dict | None, new: dict | None) -> None:
        self.volumes.on_change(res, new if new is not None else old)
        if new is not None:
            self.queue.move(_VOLUME_PLUGINS)

    # ---- the scheduling loop ----------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self.clock.sleep(1.0)
            self.queue.flush()

    async def _schedule_loop(self) -> None:
        while True:
            key = await self.queue.pop()
            if key is None:
                return
            # Decide for waiting pods back to back for a slice of time, then let watches,
            # bindings and events run: one decision per loop turn would pace a burst of pods
            # by everything else the loop does in a turn.
            until = time.perf_counter() + DECISION_SLICE
            while key is not None:
                try:
                    self.schedule_one(key)
                except Exception:
                    log.exception("scheduling %s failed", key)
                    self.queue.retry(key)
                key = self.queue.pop_ready() if time.perf_counter() < until else None
            await asyncio.sleep(0)

    def _ns_labels(self, ns: str) -> dict:
        obj = self.namespaces.get(ns)
        return ((obj or {}).get("metadata") or {}).get("labels") or {}

    def _pod_info(self, key: str, pod: dict) -> PodInfo:
        info = self._infos.get(key)
        meta = pod["metadata"]
        if info is None or info.uid != meta.get("uid") or info.rv != meta.get("resourceVersion"):
            info = self._infos[key] = pod_info(key, pod)
        return info

    def schedule_one(self, key: str) -> None:
        """One scheduling cycle for the pod `key` (synchronous)."""
        pod = self.pods.get(key)
        if pod is None or (pod.get("spec") or {}).get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            self.queue.done(key)
            return
        info = self._pod_info(key, pod)
        if self.cache.is_assumed(key, info.uid):
            self.queue.done(key)
            return
        result = self._find_host(info)
        if isinstance(result, _Failure):
            self.queue.unschedulable(key, result.plugins)
            self._report_failure(info, result.reason, result.message)
            return
        node, vol_state = result
        vols = self.volumes.assume(info, vol_state, node)
        self.cache.assume(key, info.uid, node.name, info)
        self.queue.done(key)
        self._infos.pop(key, None)
        if vols is None:
            self._binds.put_nowait((info, node.name, None))
        else:
            # Waiting for volumes can take minutes: not on a bind worker.
            self._spawn(self._bind(info, node.name, vols))

    def _find_host(self, info: PodInfo):
        """schedulePod: (node, volume state) or a _Failure."""
        num_all = len(self.cache.nodes)
        if num_all == 0:
            return _Failure(messages.NO_NODES, frozenset())
        pre = self._prefilter(info)
        if isinstance(pre, _Failure):
            return pre
        nodes, absent, checks = pre
        if nodes is self.cache.nodes and self._replica_scan_applies(info, checks):
            n = len(nodes)
            start = self._next_start % n
            scanned = self._scan.totals(info, self.cache, start)
            if scanned is not None:
                self._next_start = start   # the full pass would visit all n nodes: the same start
                return select_host(scanned[0], scanned[1], self.rng), None
        feasible, failed = self._filter(info, nodes, checks)
        if not feasible:
            return self._filter_failure(info, num_all, failed, absent)
        if len(feasible) == 1:
            return feasible[0], checks.volumes
        return select_host(feasible, score(info, feasible, self.cache, self._scores), self.rng), checks.volumes

    def _replica_scan_applies(self, info: PodInfo, checks: "_Checks") -> bool:
        """Whether ReplicaScan gives this pod what _filter and score would: no cluster-wide
        check, a pod of its kind (ReplicaScan.applies), and a full pass that would visit every
        node."""
        n = len(self.cache.nodes)
        return (checks.volumes is None and checks.spread is None and checks.affinity is None
                and n >= 2 and num_feasible_nodes_to_find(n) >= n and ReplicaScan.applies(info, self.cache))

    def _prefilter(self, info: PodInfo):
        """PreFilter: (candidate nodes, status of the others, per-attempt state) or a _Failure."""
        restrict: set[str] | None = None
        restricting: list[str] = []
        if info.node_names is False:
            return self._prefilter_failure(info, ERR_AFFINITY_CONFLICT, "NodeAffinity")
        if info.node_names:
            restrict = set(info.node_names)
            restricting.append("NodeAffinity")
        vol_msg, vol_state = self.volumes.prefilter(info)
        if vol_msg:
            return self._prefilter_failure(info, vol_msg, "VolumeBinding")
        if vol_state is not None and vol_state.eligible is not None:
            restrict = vol_state.eligible if restrict is None else restrict & vol_state.eligible
            restricting.append("VolumeBinding")
            if not restrict:
                if len(restricting) == 1:
                    msg = f"node(s) didn't satisfy plugin {restricting[0]}"
                else:
                    msg = f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(restricting))}] simultaneously"
                return self._prefilter_failure(info, msg, restricting[-1])
        checks = _Checks(vol_state, topologyspread.prefilter(info, self.cache),
                         podaffinity.prefilter(info, self.cache, self._ns_labels))
        if restrict is None:
            return self.cache.nodes, (), checks
        # Nodes a PreFilter ruled out count as UnschedulableAndUnresolvable for this reason.
        nodes = [ni for ni in (self.cache.infos.get(n) for n in sorted(restrict)) if ni is not None and ni.node]
        return nodes, (f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(restricting))}]",), checks

    def _filter(self, info: PodInfo, nodes: list[NodeInfo], checks: "_Checks"):
        """Filter, starting where the last pod stopped so that every node gets its turn."""
        feasible: list[NodeInfo] = []
        failed: list[tuple[NodeInfo, Status]] = []
        n = len(nodes)
        want = num_feasible_nodes_to_find(n)
        start = self._next_start % n if n else 0
        order = nodes[start:] + nodes[:start] if start else nodes
        vol_state, spread_counts, aff_state = checks.volumes, checks.spread, checks.affinity
        # The cluster-wide checks depend on more than the node: their verdicts are not kept.
        verdicts = self._verdicts.verdicts(info) if vol_state is None and spread_counts is None \
            and aff_state is None else None
        processed = 0
        for ni in order:
            processed += 1
            if verdicts is not None:
                kept = verdicts.get(ni.name)
                if kept is not None and kept[0] == ni.version:
                    st = kept[1]
                else:
                    st = run_filters(info, ni)
                    verdicts[ni.name] = (ni.version, st)
            else:
                st = run_filters(info, ni)
            if st is None and vol_state is not None:
                st = self.volumes.filter(vol_state, ni)
            if st is None and spread_counts is not None:
                st = topologyspread.filter_node(info, spread_counts, ni)
            if st is None and aff_state is not None:
                st = podaffinity.filter_node(info, aff_state, ni)
            if st is None:
                feasible.append(ni)
                if len(feasible) >= want:
                    break
            else:
                failed.append((ni, st))
        if self.cache.nodes:
            self._next_start = (self._next_start + processed) % len(self.cache.nodes)
        return feasible, failed

    # ---- failures --------------------------------------------------------------------------------

    def _prefilter_failure(self, info: PodInfo, msg: str, plugin: str) -> _Failure:
        num_all = len(self.cache.nodes)
        # A PreFilter rejection is UnschedulableAndUnresolvable on every node: preemption cannot help.
        post = "preemption: " + messages.NOT_ELIGIBLE_NEVER if info.preempt_never else \
            messages.preemption(num_all, (), num_all)
        return _Failure(messages.fit_error(num_all, prefilter_msg=msg, postfilter_msg=post), frozenset({plugin}))

    def _filter_failure(self, info: PodInfo, num_all: int, failed: list[tuple[NodeInfo, Status]],
                        absent: tuple[str, ...]) -> _Failure:
        hist = messages.histogram(num_all, (st.reasons for _, st in failed), absent, num_all - len(failed))
        post = self._postfilter(info, failed, num_all)
        plugins = frozenset(st.plugin for _, st in failed)
        if absent:
            plugins |= {"NodeAffinity", "VolumeBinding"}
        return _Failure(messages.fit_error(num_all, reasons=hist, postfilter_msg=post), plugins)

    def _postfilter(self, info: PodInfo, failed: list[tuple[NodeInfo, Status]], num_all: int) -> str:
        """DefaultPreemption's verdict: could evicting lower-priority pods make room?

        Only nodes rejected as Unschedulable (not UnschedulableAndUnresolvable) are candidates.
        Preemption itself is not implemented; the message reports what the dry run finds.
        """
        if info.preempt_never:
            return "preemption: " + messages.NOT_ELIGIBLE_NEVER
        explicit: list[tuple[str, ...]] = []
        for ni, st in failed:
            if st.code != UNSCHEDULABLE:
                continue
            victims = [e for e in ni.pods.values() if e.priority < info.priority]
            if not victims:
                explicit.append((messages.NO_VICTIMS,))
                continue
            if st.plugin in _CLUSTER_WIDE:
                explicit.append(st.reasons)
                continue
            for e in victims:
                ni.add(e, -1)
            try:
                again = run_filters(info, ni)
            finally:
                for e in victims:
                    ni.add(e, 1)
            explicit.append(again.reasons if again is not None else (messages.NO_VICTIMS,))
        return messages.preemption(num_all, explicit, num_all - len(explicit))

    def _report_failure(self, info: PodInfo, reason: str, message: str) -> None:
        """FailedScheduling event and PodScheduled=False, written in the background."""
        pod = self.pods.get(info.key) or info.obj
        self.recorder.event(pod, "Warning", "FailedScheduling", "Scheduling", messages.truncate(message))
        self._spawn(self._set_condition(pod, reason, message))

    async def _set_condition(self, pod: dict, reason: str, message: str) -> None:
        meta = pod["metadata"]
        conds = (pod.get("status") or {}).get("conditions") or []
        current = next((c for c in conds if c.get("type") == "PodScheduled"), None)
        gen = meta.get("generation")
        if current is not None and current.get("status") == "False" and current.get("reason") == reason \
                and current.get("message") == message and (gen is None or current.get("observedGeneration") == gen):
            return  # podutil.UpdatePodCondition: nothing changed
        cond = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": current.get("lastTransitionTime")
                if current is not None and current.get("status") == "False" else self.clock.rfc3339()}
        if gen is not None:
            cond["observedGeneration"] = gen
        try:
            await self.client.patch("pods", meta["namespace"], meta["name"],
                                    {"metadata": {"uid": meta.get("uid")}, "status": {"conditions": [cond]}},
                                    STRATEGIC, subresource="status")
        except ApiError as e:
            if e.code not in (404, 409):
                log.warning("updating the PodScheduled condition of %s/%s failed: %s",
                            meta["namespace"], meta["name"], e)

    # ---- binding ---------------------------------------------------------------------------------

    async def _bind_worker(self) -> None:
        while True:
            info, node, vols = await self._binds.get()
            try:
                await self._bind(info, node, vols)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("binding %s failed", info.key)

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    def _exists(self, info: PodInfo) -> bool:
        p = self.pods.get(info.key)
        return p is not None and p["metadata"].get("uid") == info.uid

    async def _bind(self, info: PodInfo, node: str, vols) -> None:
        """The binding cycle: PreBind (volumes), Bind, then the Scheduled event."""
        try:
            if vols is not None:
                await self.volumes.bind(info, vols, node, lambda: self._exists(info))
            await self.client.bind(info.namespace, info.name, node, info.uid)
        except VolumeError as e:
            error = f'running PreBind plugin "VolumeBinding": {e}'
        except ApiError as e:
            error = f'running Bind plugin "DefaultBinder": {e.message}'
        else:
            self.scheduled += 1
            self.recorder.event(self.pods.get(info.key) or info.obj, "Normal", "Scheduled", "Binding",
                                f"Successfully assigned {info.namespace}/{info.name} to {node}")
            return
        log.info("binding %s to %s failed: %s", info.key, node, error)
        self.volumes.revert(vols)
        if self.cache.forget(info.key, info.uid):
            self.queue.move(_CAPACITY_PLUGINS)
        live = self.pods.get(info.key)
        if live is None or live["metadata"].get("uid") != info.uid or (live.get("spec") or {}).get("nodeName"):
            return  # gone or bound by someone else: nothing to retry
        self.queue.retry(info.key, info.priority)
        self._report_failure(info, "SchedulerError", error)
