"""The DaemonSet controller: one pod of a template on every node that should run it.

Why it exists: node agents, log shippers and network plugins must run once per machine, on
machines that join later too, and leave with them. This is kube-controller-manager's daemon set
controller (`pkg/controller/daemon/daemon_controller.go`), step for step:

* Eligibility (NodeShouldRunDaemonPod) is judged on the pod the DaemonSet would create, with the
  scheduler's own predicates (`scheduler/nodeselector.py`, `filters.py`, `podinfo.py`): the
  template's nodeName, its nodeSelector and required node affinity, and the node's NoSchedule and
  NoExecute taints against the template's tolerations plus those every daemon pod gets. A node
  whose only untolerated taints are NoSchedule keeps a pod it already has ("should continue
  running") but gets no new one.
* `sync(key)` builds the revision history first (`update.py`), so every new pod is labelled with
  the current revision's hash; then, once the expectations of the last round are met, `manage`
  creates a pod for each eligible node without one and deletes pods on nodes that should not run
  them (numberMisscheduled) and surplus pods on a node; a failed pod is deleted with the
  FailedDaemonPod event, under a per-node back-off (1 s doubling to 15 min on the injected clock)
  so a kubelet that keeps rejecting it is not fought in a hot loop. Then the update strategy
  (`update.py`: RollingUpdate with maxUnavailable or maxSurge; OnDelete does nothing), the
  history clean-up, and the status.
* New pods are not bound by the controller: each carries a required node affinity term on
  `metadata.name` for its node and the default scheduler binds it, as upstream since 1.12.
* Pods bound to a node that no longer exists are deleted here at once, after a fresh read proves
  the node gone. Upstream leaves that to the pod garbage collector (PodGC), which this project does
  not run; without it a DaemonSet would keep counting the pods of a node that left.

Expectations stop a sync from creating the same pods again before the informer has seen the
ones it just created; creates go out in slow-start batches of at most 250 (BurstReplicas).
"""

from __future__ import annotations

import logging

from ...agent.backoff import Backoff
from ...api.errors import ApiError
from ...api.selectors import LabelSelector
from ...client.informer import object_key
from ...scheduler.cache import NodeInfo
from ...scheduler.filters import node_matches_affinity
from ...scheduler.podinfo import PodInfo, pod_info, tolerates
from ..base import (
    Controller,
    Expectations,
    OwnedIndex,
    controlled_elsewhere,
    Owners,
    adopt,
    controller_ref,
    pod_from_template,
    release,
)
from ...client.bounded import bounded_map
from ..history import History
from ..podcontrol import (
    NAMESPACE_TERMINATING_CAUSE,
    PodControl,
    has_status_cause,
    slow_start_batch,
)
from ..ranking import available_after, is_pod_ready
from . import update
from .util import daemonset_util as util

log = logging.getLogger("pocketkube.controllers.daemonset")

DAEMONSETS = "daemonsets.apps"
REVISIONS = "controllerrevisions.apps"
PODS = "pods"
NODES = "nodes"

BURST_REPLICAS = 250
STATUS_UPDATE_RETRIES = 1

SELECTING_ALL = "SelectingAll"
FAILED_DAEMON_POD = "FailedDaemonPod"
SUCCEEDED_DAEMON_POD = "SucceededDaemonPod"

# DaemonSetStatus fields tagged omitempty (the other counts are always serialised).
_OMIT_EMPTY = ("updatedNumberScheduled", "numberAvailable", "numberUnavailable")


class FailedPodsBackoff(Backoff):
    """flowcontrol.Backoff as the daemon set controller asks it: in back-off since the last raise."""

    def in_backoff_since_update(self, key: str, now: float) -> bool:
        e = self._entries.get(key)
        if e is None or self._expired(now, e):
            return False
        return now - e.last_update < e.backoff


def pod_order(pod: dict) -> tuple:
    """podByCreationTimestampAndPhase: bound pods first, then the oldest, then by name."""
    meta = pod["metadata"]
    return (0 if (pod.get("spec") or {}).get("nodeName") else 1, meta.get("creationTimestamp") or "",
            meta.get("name") or "")


def is_terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class DaemonPodView:
    """The pod a DaemonSet would create (upstream NewPod), compiled once per generation."""

    __slots__ = ("info", "node_name", "stamp")

    def __init__(self, ds: dict):
        meta = ds["metadata"]
        self.stamp = (meta.get("uid"), meta.get("generation"))
        template = (ds.get("spec") or {}).get("template") or {}
        spec = dict(template.get("spec") or {})
        util.add_daemon_tolerations(spec)
        tmeta = template.get("metadata") or {}
        pod = {"metadata": {"namespace": meta.get("namespace"), "labels": tmeta.get("labels") or {}},
               "spec": spec}
        self.info: PodInfo = pod_info(object_key(ds), pod)
        self.node_name = spec.get("nodeName") or ""


class DaemonSetController(Controller):
    name = "daemonset"
    workers = 2                 # --concurrent-daemonset-syncs
    burst_replicas = BURST_REPLICAS
    create_concurrency = 100

    def setup(self) -> None:
        self.expectations = Expectations(self.clock)
        self.pod_control = PodControl(self.client, self.recorder, self.clock)
        # kube-controller-manager: flowcontrol.NewBackOff(1s, 15min).
        self.failed_pods_backoff = FailedPodsBackoff(1.0, 900.0)
        self.daemonsets = self.informers.get(DAEMONSETS)
        self.revisions = self.informers.get(REVISIONS)
        self.history = History(self.client, self.informers)
        self.pods = self.informers.get(PODS)
        self.nodes = self.informers.get(NODES)
        self.owners = Owners(self.daemonsets, "DaemonSet")
        self.pod_index = OwnedIndex()      # pods by the uid of their controller, orphans by namespace
        self._views: dict[str, DaemonPodView] = {}
        self._node_infos: dict[str, tuple[str, NodeInfo]] = {}
        self.daemonsets.add_handler(self._on_daemonset)
        self.revisions.add_handler(self._on_revision)
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)

    # ---- small helpers ------------------------------------------------------------------------

    def event(self, ds: dict, type_: str, reason: str, message: str) -> None:
        self.pod_control.event(ds, type_, reason, reason, message)

    def selector(self, ds: dict) -> LabelSelector | None:
        return self.owners.selector(ds)

    def view(self, ds: dict) -> DaemonPodView:
        key = object_key(ds)
        v = self._views.get(key)
        meta = ds["metadata"]
        if v is None or v.stamp != (meta.get("uid"), meta.get("generation")):
            v = self._views[key] = DaemonPodView(ds)
        return v

    def node_info(self, node: dict) -> NodeInfo:
        meta = node["metadata"]
        name, rv = meta["name"], meta.get("resourceVersion") or ""
        cached = self._node_infos.get(name)
        if cached is not None and cached[0] == rv:
            return cached[1]
        ni = NodeInfo(name)
        ni.set_node(node)
        self._node_infos[name] = (rv, ni)
        return ni

    def node_should_run(self, node: dict, ds: dict) -> tuple[bool, bool]:
        """NodeShouldRunDaemonPod: (should run a new pod, should keep a running one)."""
        v = self.view(ds)
        name = node["metadata"]["name"]
        if v.node_name and v.node_name != name:
            return False, False
        ni = self.node_info(node)
        pi = v.info
        if (pi.node_selector is not None or pi.required is not None) and not node_matches_affinity(pi, ni):
            return False, False
        untolerated = [eff for key, value, eff in ni.hard_taints if not tolerates(pi.tolerations, key, value, eff)]
        if untolerated:
            # Pods already there stay unless a NoExecute taint would evict them anyway.
            return False, "NoExecute" not in untolerated
        return True, True

    # ---- event handlers -----------------------------------------------------------------------

    def _on_daemonset(self, kind: str, old: dict | None, new: dict | None) -> None:
        if kind == "DELETED":
            key = object_key(old)
            self.expectations.forget(key)
            self._views.pop(key, None)
            self.failed_pods_backoff.forget_prefix(f"{old['metadata'].get('uid')}/")
            self.queue.add(key)
            return
        key = object_key(new)
        if old is not None and old["metadata"].get("uid") != new["metadata"].get("uid"):
            # Deleted and created again under the same name: start clean.
            self.expectations.forget(key)
        self.queue.add(key)

    def _resolve(self, namespace: str, ref: dict | None) -> dict | None:
        return self.owners.resolve(namespace, ref)

    def _matching(self, obj: dict) -> list[dict]:
        """DaemonSets in the object's namespace whose selector matches its labels (GetPodDaemonSets)."""
        return self.owners.matching(obj)

    def _on_revision(self, kind: str, old: dict | None, new: dict | None) -> None:
        obj = new if new is not None else old
        ns = obj["metadata"].get("namespace") or ""
        if kind == "DELETED":
            ds = self._resolve(ns, controller_ref(old))
            if ds is not None:
                self.enqueue(ds)
            return
        if old is not None and old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        cur_ref = controller_ref(new)
        if old is None:
            # A new revision we control needs nothing (upstream only logs it); an orphan may be adopted.
            if new["metadata"].get("deletionTimestamp"):
                ds = self._resolve(ns, cur_ref)
                if ds is not None:
                    self.enqueue(ds)
            elif cur_ref is None:
                for ds in self._matching(new):
                    self.enqueue(ds)
            return
        old_ref = controller_ref(old)
        if cur_ref != old_ref and old_ref is not None:
            ds = self._resolve(ns, old_ref)
            if ds is not None:
                self.enqueue(ds)
        if cur_ref is not None:
            ds = self._resolve(ns, cur_ref)
            if ds is not None:
                self.enqueue(ds)
            return
        if cur_ref != old_ref or old["metadata"].get("labels") != new["metadata"].get("labels"):
            for ds in self._matching(new):
                self.enqueue(ds)

    def _on_pod(self, kind: str, old: dict | None, new: dict | None) -> None:
        key = object_key(new or old)
        if controlled_elsewhere(key, old, new, "DaemonSet", self.pod_index):
            return
        self.pod_index.update(key, new)
        if kind == "DELETED":
            self._pod_deleted(old)
            return
        if kind == "ADDED" or old is None:
            self._pod_added(new)
        else:
            self._pod_updated(old, new)

    def _pod_added(self, pod: dict) -> None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            ds = self._resolve(meta.get("namespace") or "", ref)
            if ds is not None:
                self.expectations.creation_observed(object_key(ds))
                self.enqueue(ds)
            return
        for ds in self._matching(pod):
            self.enqueue(ds)

    def _pod_updated(self, old: dict, cur: dict) -> None:
        ometa, cmeta = old["metadata"], cur["metadata"]
        if ometa.get("resourceVersion") == cmeta.get("resourceVersion"):
            return
        if cmeta.get("deletionTimestamp"):
            # A graceful delete: replace the pod now, not when the kubelet has finished it.
            self._pod_deleted(cur)
            return
        ns = cmeta.get("namespace") or ""
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            ds = self._resolve(ns, old_ref)
            if ds is not None:
                self.enqueue(ds)
        if cur_ref is not None:
            ds = self._resolve(ns, cur_ref)
            if ds is None:
                return
            self.enqueue(ds)
            min_ready = (ds.get("spec") or {}).get("minReadySeconds") or 0
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                # One second more, as upstream, so the pod has surely become available.
                self.queue.add_after(object_key(ds), min_ready + 1.0)
            return
        if ref_changed or ometa.get("labels") != cmeta.get("labels"):
            for ds in self._matching(cur):
                self.enqueue(ds)

    def _pod_deleted(self, pod: dict) -> None:
        meta = pod["metadata"]
        ds = self._resolve(meta.get("namespace") or "", controller_ref(pod))
        if ds is None:
            return
        key = object_key(ds)
        self.expectations.deletion_observed(key, object_key(pod))
        self.queue.add(key)

    def _on_node(self, kind: str, old: dict | None, new: dict | None) -> None:
        if kind == "DELETED":
            self._node_infos.pop(old["metadata"]["name"], None)
            # Its pods must go (see the module docstring): wake the DaemonSets that have one there.
            name = old["metadata"]["name"]
            for ds in self.daemonsets.list():
                if any(util.target_node_name(p) == name for p in self._pods_of(ds)):
                    self.enqueue(ds)
            return
        if kind == "ADDED" or old is None:
            for ds in self.daemonsets.list():
                if self.node_should_run(new, ds)[0]:
                    self.enqueue(ds)
            return
        if _ignore_node_update(old, new):
            return
        for ds in self.daemonsets.list():
            if self.node_should_run(old, ds) != self.node_should_run(new, ds):
                self.enqueue(ds)

    # ---- pods of a DaemonSet ------------------------------------------------------------------

    def _pods_of(self, ds: dict) -> list[dict]:
        return self.pod_index.owned(ds["metadata"]["uid"])

    async def daemon_pods(self, ds: dict) -> list[dict]:
        """getDaemonPods: the pods the DaemonSet controls after adopting and releasing (ClaimPods)."""
        sel = self.selector(ds)
        if sel is None:
            return []
        meta = ds["metadata"]
        deleting = bool(meta.get("deletionTimestamp"))
        claimed, to_release = [], []
        for pod in self._pods_of(ds):
            if sel.matches(pod["metadata"].get("labels") or {}):
                claimed.append(pod)
            elif not deleting:
                to_release.append(pod)
        to_adopt = []
        if not deleting:
            for pod in self.pod_index.orphans(ds["metadata"].get("namespace") or ""):
                if pod["metadata"].get("deletionTimestamp"):
                    continue
                if sel.matches(pod["metadata"].get("labels") or {}):
                    to_adopt.append(pod)
        for pod in to_release:
            try:
                await release(self.client, PODS, pod, ds)
            except ApiError as e:
                if e.code not in (404, 409, 422):
                    raise
        if to_adopt:
            await self.recheck_deletion(ds)
            for pod in to_adopt:
                try:
                    claimed.append(await adopt(self.client, PODS, pod, ds))
                except ApiError as e:
                    if e.code not in (404, 409, 422):
                        raise
        return claimed

    async def recheck_deletion(self, ds: dict) -> None:
        """RecheckDeletionTimestamp: a fresh read, so a DaemonSet being deleted adopts nothing."""
        meta = ds["metadata"]
        fresh = await self.client.get(DAEMONSETS, meta.get("namespace"), meta["name"])
        if fresh["metadata"].get("uid") != meta["uid"]:
            raise RuntimeError(f"original DaemonSet {meta.get('namespace')}/{meta['name']} is gone: "
                               f"got uid {fresh['metadata'].get('uid')}, wanted {meta['uid']}")
        if fresh["metadata"].get("deletionTimestamp"):
            raise RuntimeError(f"{meta.get('namespace')}/{meta['name']} has just been deleted at "
                               f"{fresh['metadata']['deletionTimestamp']}")

    async def nodes_to_daemon_pods(self, ds: dict, include_deleted_terminal: bool = False
                                   ) -> dict[str, list[dict]]:
        """getNodesToDaemonPods: claimed pods grouped by the node they run on or are meant for."""
        out: dict[str, list[dict]] = {}
        for pod in await self.daemon_pods(ds):
            if not include_deleted_terminal and is_terminal(pod) and pod["metadata"].get("deletionTimestamp"):
                continue  # only its finalizers or the kubelet keep it: nothing left for us to do
            node = util.target_node_name(pod)
            if node is None:
                continue
            out.setdefault(node, []).append(pod)
        return out

    # ---- sync ---------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.daemonsets.get(key)
        if cached is None:
            self.expectations.forget(key)
            return
        # A private copy: a hash collision raises status.collisionCount on it during the sync.
        ds = dict(cached, metadata=dict(cached["metadata"]), status=dict(cached.get("status") or {}))
        sel = (ds.get("spec") or {}).get("selector")
        if sel is not None and not sel.get("matchLabels") and not sel.get("matchExpressions"):
            self.event(ds, "Warning", SELECTING_ALL,
                       "This daemon set is selecting all pods. A non-empty selector is required.")
            return
        if ds["metadata"].get("deletionTimestamp"):
            # Its history may already be gone or orphaned: no status can be trusted now.
            return
        nodes = self.nodes.list()
        cur, old = await update.construct_history(self, ds)
        hash_ = (cur["metadata"].get("labels") or {}).get(util.CONTROLLER_REVISION_HASH, "")
        if not self.expectations.satisfied(key):
            await self.update_status(ds, nodes, hash_, False)
            return
        err: Exception | None = None
        try:
            await self.update_daemonset(ds, nodes, hash_, key, old)
        except Exception as e:  # noqa: BLE001 - the status is written before the error is returned
            err = e
        try:
            await self.update_status(ds, nodes, hash_, True)
        except Exception as e:
            if err is None:
                raise
            log.warning("daemon set %s: updating status failed: %s", key, e)
        if err is not None:
            raise err

    async def update_daemonset(self, ds: dict, nodes: list[dict], hash_: str, key: str, old: list[dict]) -> None:
        await self.manage(ds, nodes, hash_)
        strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type")
        if self.expectations.satisfied(key) and strategy == "RollingUpdate":  # OnDelete: nothing to do
            await update.rolling_update(self, ds, nodes, hash_)
        await update.cleanup_history(self, ds, old)

    def pods_should_be_on_node(self, node: dict, node_to_pods: dict[str, list[dict]], ds: dict, hash_: str
                               ) -> tuple[list[str], list[dict]]:
        """podsShouldBeOnNode: whether the node needs a pod, and which of its pods must go."""
        should_run, should_continue = self.node_should_run(node, ds)
        name = node["metadata"]["name"]
        pods = node_to_pods.get(name)
        needs: list[str] = []
        delete: list[dict] = []
        if should_run and not pods:
            needs.append(name)
        elif should_continue:
            running = []
            for pod in pods or ():
                if pod["metadata"].get("deletionTimestamp"):
                    continue
                phase = (pod.get("status") or {}).get("phase")
                if phase == "Failed":
                    # A kubelet that keeps rejecting the pod must not be fought in a hot loop.
                    bkey = failed_pods_backoff_key(ds, name)
                    now = self.clock.now()
                    if self.failed_pods_backoff.in_backoff_since_update(bkey, now):
                        self.queue.add_after(object_key(ds), self.failed_pods_backoff.get(bkey))
                        continue
                    self.failed_pods_backoff.next(bkey, now)
                    pmeta = pod["metadata"]
                    self.event(ds, "Warning", FAILED_DAEMON_POD,
                               f"Found failed daemon pod {pmeta.get('namespace')}/{pmeta['name']} on node "
                               f"{name}, will try to kill it")
                    delete.append(pod)
                elif phase == "Succeeded":
                    pmeta = pod["metadata"]
                    self.event(ds, "Normal", SUCCEEDED_DAEMON_POD,
                               f"Found succeeded daemon pod {pmeta.get('namespace')}/{pmeta['name']} on node "
                               f"{name}, will try to delete it")
                    delete.append(pod)
                else:
                    running.append(pod)
            if not util.allows_surge(ds):
                if len(running) > 1:
                    # More than one: keep the oldest. (A node left with only a failed pod gets its
                    # replacement in the next sync, once the deletion has been observed.)
                    running.sort(key=pod_order)
                    delete.extend(running[1:])
            else:
                delete.extend(self._surge_excess(ds, running, should_run, name, needs, hash_))
        elif pods:
            delete.extend(p for p in pods if not p["metadata"].get("deletionTimestamp"))
        return needs, delete

    def _surge_excess(self, ds: dict, running: list[dict], should_run: bool, name: str, needs: list[str],
                      hash_: str) -> list[dict]:
        """With surge, a node may hold one old and one new pod; everything else goes."""
        if len(running) <= 1:
            if not running and should_run:
                needs.append(name)
            return []
        delete = []
        oldest_new = oldest_old = None
        for pod in sorted(running, key=pod_order):
            if (pod["metadata"].get("labels") or {}).get(util.CONTROLLER_REVISION_HASH) == hash_:
                if oldest_new is None:
                    oldest_new = pod
                    continue
            elif oldest_old is None:
                oldest_old = pod
                continue
            delete.append(pod)
        if oldest_new is not None and oldest_old is not None:
            min_ready = (ds.get("spec") or {}).get("minReadySeconds") or 0
            if not is_pod_ready(oldest_old) or available_after(oldest_new, min_ready, self.clock.now()) == 0.0:
                delete.append(oldest_old)
        return delete

    async def manage(self, ds: dict, nodes: list[dict], hash_: str) -> None:
        """Create the missing daemon pods and delete the ones that must go."""
        node_to_pods = await self.nodes_to_daemon_pods(ds)
        needs: list[str] = []
        delete: list[dict] = []
        for node in nodes:
            n, d = self.pods_should_be_on_node(node, node_to_pods, ds, hash_)
            needs.extend(n)
            delete.extend(d)
        existing = {n["metadata"]["name"] for n in nodes}
        gone: list[dict] = []
        for node_name, pods in node_to_pods.items():
            if node_name in existing:
                continue
            for pod in pods:
                if not (pod.get("spec") or {}).get("nodeName"):
                    delete.append(pod)          # getUnscheduledPodsWithoutNode
                elif not pod["metadata"].get("deletionTimestamp"):
                    gone.append(pod)
        if gone:
            delete.extend(await self._pods_of_vanished_nodes(gone))
        await self.sync_nodes(ds, delete, needs, hash_)

    async def _pods_of_vanished_nodes(self, pods: list[dict]) -> list[dict]:
        """Pods whose node a fresh read shows gone (PodGC's orphan check, for our own pods)."""
        out, checked = [], {}
        for pod in pods:
            name = pod["spec"]["nodeName"]
            if name not in checked:
                try:
                    await self.client.get(NODES, None, name)
                    checked[name] = False
                except ApiError as e:
                    if e.code != 404:
                        raise
                    checked[name] = True
            if checked[name]:
                out.append(pod)
        return out

    async def sync_nodes(self, ds: dict, delete: list[dict], needs: list[str], hash_: str) -> None:
        """syncNodes: delete and create, with expectations set first; raises the first failure."""
        key = object_key(ds)
        ns = ds["metadata"].get("namespace") or ""
        needs = needs[:self.burst_replicas]
        delete = delete[:self.burst_replicas]
        self.expectations.forget(key)
        if needs:
            self.expectations.expect_creations(key, len(needs))
        if delete:
            self.expectations.expect_deletions(key, [object_key(p) for p in delete])
        errors: list[Exception] = []
        if needs:
            template = util.create_pod_template((ds.get("spec") or {}).get("template") or {},
                                                util.template_generation(ds), hash_)
            body = pod_from_template(template, ds, f"{ds['metadata']['name']}-")
            targets = iter(needs)

            async def create() -> None:
                pod = dict(body, spec=dict(body["spec"]))
                pod["spec"]["affinity"] = util.replace_node_name_affinity(pod["spec"].get("affinity"), next(targets))
                try:
                    await self.pod_control.create_pod(ns, pod, ds)
                except ApiError as e:
                    # A terminating namespace refuses every create: nothing to retry.
                    if not has_status_cause(e, NAMESPACE_TERMINATING_CAUSE):
                        raise
            done, err = await slow_start_batch(len(needs), 1, create, self.create_concurrency)
            if done < len(needs):
                self.expectations.lower_creations(key, len(needs) - done)
            if err is not None:
                errors.append(err)
        if delete:

            async def remove(pod: dict) -> Exception | None:
                try:
                    await self._delete_pod(ns, pod, ds)
                    return None
                except ApiError as e:
                    self.expectations.deletion_observed(key, object_key(pod))
                    return None if e.code == 404 else e
            errors.extend(e for e in await bounded_map(remove, delete, self.create_concurrency) if e is not None)
        if errors:
            raise errors[0]

    async def _delete_pod(self, ns: str, pod: dict, ds: dict) -> None:
        name = pod["metadata"]["name"]
        node = (pod.get("spec") or {}).get("nodeName")
        if node and self.nodes.get(node) is None:
            # No kubelet will ever finish a graceful delete on a node that is gone.
            await self.client.delete(PODS, ns, name, grace_period_seconds=0)
            self.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
            return
        await self.pod_control.delete_pod(ns, name, ds)

    # ---- status -------------------------------------------------------------------------------

    async def update_status(self, ds: dict, nodes: list[dict], hash_: str, update_observed_gen: bool) -> None:
        """updateDaemonSetStatus: count scheduled, ready, available, updated and misscheduled pods."""
        node_to_pods = await self.nodes_to_daemon_pods(ds)
        spec = ds.get("spec") or {}
        min_ready = spec.get("minReadySeconds") or 0
        generation = util.template_generation(ds)
        now = self.clock.now()
        desired = current = misscheduled = ready = updated = available = 0
        next_available: float | None = None
        for node in nodes:
            should_run, _ = self.node_should_run(node, ds)
            pods = node_to_pods.get(node["metadata"]["name"])
            if not should_run:
                if pods:
                    misscheduled += 1
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = min(pods, key=pod_order)
            if is_pod_ready(pod):
                ready += 1
                wait = available_after(pod, min_ready, now) if min_ready else 0.0
                if wait == 0.0:
                    available += 1
                elif wait is not None and (next_available is None or wait < next_available):
                    next_available = wait
            if util.is_pod_updated(pod, hash_, generation):
                updated += 1
        counts = {"desiredNumberScheduled": desired, "currentNumberScheduled": current,
                  "numberMisscheduled": misscheduled, "numberReady": ready, "updatedNumberScheduled": updated,
                  "numberAvailable": available, "numberUnavailable": desired - available}
        await self._store_status(ds, counts, update_observed_gen)
        if min_ready > 0 and ready != available:
            # Look again when the next ready pod has been ready for minReadySeconds.
            self.queue.add_after(object_key(ds), next_available if next_available is not None else min_ready)

    async def _store_status(self, ds: dict, counts: dict, update_observed_gen: bool) -> None:
        status = ds.get("status") or {}
        generation = ds["metadata"].get("generation") or 0
        if all((status.get(k) or 0) == v for k, v in counts.items()) \
                and (status.get("observedGeneration") or 0) >= generation:
            return
        meta = ds["metadata"]
        current = ds
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            new_status = dict(current.get("status") or {})
            if update_observed_gen:
                new_status["observedGeneration"] = generation
            new_status.update(counts)
            for k in _OMIT_EMPTY:
                if not new_status.get(k):
                    new_status.pop(k, None)   # Go leaves these out when 0, as clients expect
            try:
                await self.client.update_status(DAEMONSETS, meta.get("namespace"), dict(current, status=new_status))
                return
            except ApiError as e:
                if e.code == 404 or attempt >= STATUS_UPDATE_RETRIES:
                    if e.code == 404:
                        return
                    raise
            current = await self.client.get(DAEMONSETS, meta.get("namespace"), meta["name"])


def failed_pods_backoff_key(ds: dict, node_name: str) -> str:
    return f"{ds['metadata'].get('uid')}/{(ds.get('status') or {}).get('observedGeneration') or 0}/{node_name}"


def _true_conditions(node: dict) -> set:
    return {c.get("type") for c in (node.get("status") or {}).get("conditions") or () if c.get("status") == "True"}


def _ignore_node_update(old: dict, cur: dict) -> bool:
    """shouldIgnoreNodeUpdate, for what eligibility reads: labels, taints, and the True conditions.

    Heartbeats rewrite every condition's timestamps; only a change in which conditions hold (or in
    the node's labels and spec) can change where daemon pods belong.
    """
    if _true_conditions(old) != _true_conditions(cur):
        return False
    return (old["metadata"].get("labels") == cur["metadata"].get("labels")
            and old.get("spec") == cur.get("spec"))
