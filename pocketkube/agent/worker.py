"""One pod on this node, from its first status to its last process: the kubelet's pod worker.

Each pod bound to the node gets one `PodWorker`, and only one (workers are keyed by UID, so a
pod re-created under the same name gets a fresh worker while the old one winds down). The
worker is a loop that wakes when something happened (the pod changed, a container exited, a
probe result changed, a back-off or deadline timer fired) and then does what the kubelet's
syncPod would do next, in its order:

1. volumes (FailedMount until they can be set up), then the sandbox (the pod's IP);
2. init containers one at a time, each to a successful exit (a failed one is restarted per
   restartPolicy, or fails the pod under Never); sidecars (init containers with
   restartPolicy Always) only have to start, and keep running beside the containers;
3. all containers; an exited container is restarted per restartPolicy, after the crash-loop
   back-off (10 s doubling to 5 min, measured on the injected clock);
4. when no container will run again the pod is terminal: the sandbox goes, the phase becomes
   Succeeded or Failed.

Deletion (a deletionTimestamp) stops every container with SIGTERM and the pod's grace period,
posts the final status and deletes the pod object (grace 0, UID precondition), as the kubelet
does once a pod's containers are gone. A pod that vanished from the API is stopped the same
way. Container output goes to `<state_dir>/pods/<ns>_<name>_<uid>/<container>/<restartCount>.log`.

The worker never writes the API itself except for that final deletion: it updates the facts
in `PodFacts`/`CState` and asks the agent to post the status, which coalesces bursts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from functools import partial
from typing import TYPE_CHECKING

from ..api.errors import ApiError
from ..clock import parse_rfc3339
from ..runtime.base import Container, ContainerSpec, ImageError, Sandbox, SandboxSpec, StartError
from ..runtime.logs import read_log
from .backoff import go_duration
from .containers import container_spec
from .env import ContainerConfigError, container_env, pod_hostname
from .events import NORMAL, WARNING
from .hooks import hook_failure_message, run_hook
from .podstatus import CState, PodFacts
from .probes import FAILURE, LIVENESS, READINESS, STARTUP, SUCCESS, UNKNOWN, ProbeWorker, http_probe, \
    probe_timeout, tcp_probe
from .tasks import cancel_and_wait
from .volumes import VolumeError, container_mounts, prepare_volumes, refresh_volumes, remove_volumes

if TYPE_CHECKING:
    from .kubelet import Agent

log = logging.getLogger("pocketkube.agent.worker")

RETRY = 10.0           # the pod worker's back-off after a failed sync (volumes, config, sandbox)
IMAGE_RESYNC = 1.0     # after a failed pull, when the waiting reason turns to ImagePullBackOff
MIN_GRACE = 2          # minimumGracePeriodInSeconds for kills the kubelet decides on its own
FIRST_STATUS_WAIT = 0.5    # at most this long the first status waits for the first sync to end
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
LOST_MESSAGE = "The container could not be located when the pod was deleted.  The container used to be Running"


def pod_dir(state_dir: str, pod: dict) -> str:
    meta = pod["metadata"]
    return os.path.join(state_dir, "pods", f"{meta.get('namespace')}_{meta['name']}_{meta['uid']}")


def log_path(directory: str, container: str, restart_count: int) -> str:
    return os.path.join(directory, container, f"{restart_count}.log")


class PodWorker:
    def __init__(self, agent: "Agent", pod: dict):
        self.agent = agent
        self.runtime = agent.runtime
        self.clock = agent.clock
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta.get("namespace") or "default"
        self.name: str = meta["name"]
        self.key = f"{self.namespace}/{self.name}"
        self.dir = pod_dir(agent.state_dir, pod)
        spec = pod.get("spec") or {}
        inits = [CState(c["name"], c, init=True) for c in spec.get("initContainers") or []]
        regular = [CState(c["name"], c) for c in spec.get("containers") or []]
        self.facts = PodFacts(containers=regular, init_containers=inits, host_ip=agent.host_ip)
        self.by_name = {c.name: c for c in inits + regular}
        self.sandbox: Sandbox | None = None
        self.volume_paths: dict[str, str] | None = None
        self.instances: dict[str, Container] = {}          # container name -> running instance
        self.log_paths: dict[str, str] = {}                 # container id -> its log file
        self.finished_at: dict[str, float] = {}             # container name -> clock time of last exit
        self._image_failed: dict[str, float] = {}
        self._backoff_reported: dict[str, float] = {}
        self._exit_tasks: dict[str, asyncio.Task] = {}
        self._stop_tasks: set[asyncio.Task] = set()
        self._probes: dict[str, list[ProbeWorker]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.removed = False            # gone from the API
        self.finished = False           # terminal, and everything of it stopped
        self.done = asyncio.Event()     # the worker loop has ended
        self.status_lock = asyncio.Lock()
        self.last_written: dict | None = None
        self._isolation_reported = False
        # Until the first sync ends, status changes are held and posted as one write: a pod
        # whose containers start at once goes from no status to Running (the kubelet's status
        # manager likewise posts only the latest status it has).
        self._holding_status = True
        self._hold_timer: asyncio.TimerHandle | None = None
        self._adopt((pod.get("status") or {}))

    # ---- the agent's side ----

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._main(), name=f"pod-{self.key}")

    def update(self, pod: dict) -> None:
        old = self.pod
        self.pod = pod
        spec_changed = old.get("spec") != pod.get("spec")
        meta_old, meta_new = old["metadata"], pod["metadata"]
        if spec_changed:
            self._spec_changed(pod.get("spec") or {})
        if spec_changed or meta_old.get("deletionTimestamp") != meta_new.get("deletionTimestamp") or \
                meta_old.get("deletionGracePeriodSeconds") != meta_new.get("deletionGracePeriodSeconds"):
            self.wake()
        elif (old.get("status") or {}).get("conditions") != (pod.get("status") or {}).get("conditions"):
            self.agent.request_status(self)   # readiness gates read conditions others write

    def mark_removed(self) -> None:
        self.removed = True
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def request_status(self) -> None:
        if not self._holding_status:
            self.agent.request_status(self)

    def _post_held_status(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        if self._holding_status:
            self._holding_status = False
            self.agent.request_status(self)

    async def shutdown(self, grace: float) -> None:
        """The agent stops: end the loop, stop every process, free the sandbox; the API is left alone."""
        await cancel_and_wait(self._task)
        await self._stop_all(grace, events=False)
        await self._remove_sandbox()
        for t in list(self._exit_tasks.values()) + list(self._stop_tasks):
            t.cancel()

    def refresh_volumes(self) -> None:
        if self.volume_paths is not None and not self.finished and not self.removed:
            asyncio.get_running_loop().create_task(self._refresh_volumes())

    async def _refresh_volumes(self) -> None:
        try:
            await refresh_volumes(self.agent.client, self._pod_with_ips(), self.dir, node=self.agent.node())
        except VolumeError as e:
            self.agent.recorder.pod_event(self.pod, WARNING, "FailedMount", e.message)
        except Exception as e:
            log.warning("refreshing volumes of %s failed: %s", self.key, e)

    # ---- restoring what an earlier agent run reported ----

    def _adopt(self, status: dict) -> None:
        """Continue from the status an earlier run of the agent posted (its processes are gone)."""
        # The sandbox (and so the pod IP) is made anew; times and restart counts carry on.
        self.facts.start_time = parse_rfc3339(status.get("startTime"))
        for st in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            cs = self.by_name.get(st.get("name"))
            cid = str(st.get("containerID") or "")
            if cs is None or not cid.startswith("pocketkube://"):
                continue
            cs.cid = cid.split("://", 1)[1]
            cs.restart_count = int(st.get("restartCount") or 0)
            state = st.get("state") or {}
            last = (st.get("lastState") or {}).get("terminated")
            now = self.clock.now()
            if "running" in state:
                cs.last_terminated = last
                cs.terminated = {"exitCode": 137, "reason": "ContainerStatusUnknown", "message": LOST_MESSAGE,
                                 "startedAt": state["running"].get("startedAt"),
                                 "finishedAt": self.clock.rfc3339(now), "containerID": cid}
                self.finished_at[cs.name] = now
            elif "terminated" in state:
                cs.last_terminated = last
                cs.terminated = state["terminated"]
                self.finished_at[cs.name] = parse_rfc3339(state["terminated"].get("finishedAt")) or now
            elif last:
                # Waiting after a run (crash-loop back-off): that run is the latest one.
                cs.terminated = last
                self.finished_at[cs.name] = parse_rfc3339(last.get("finishedAt")) or now

    def _spec_changed(self, spec: dict) -> None:
        # Only a container's image may change in a pod spec; the kubelet restarts such a container.
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            cs = self.by_name.get(c.get("name"))
            if cs is None:
                continue
            changed = cs.spec.get("image") != c.get("image")
            cs.spec = c
            inst = self.instances.get(cs.name)
            if changed and inst is not None and not cs.stopping:
                self._kill(cs, inst, f"Container {cs.name} definition changed, will be restarted",
                           self._grace_for(cs, None))
                cs.restart_now = True

    # ---- the loop ----

    async def _main(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod worker %s failed", self.key)
        finally:
            self.done.set()

    async def _run(self) -> None:
        if self.facts.start_time is None:
            self.facts.start_time = self.clock.now()
        # a slow first sync (volumes, hooks) must not leave the pod without a status: real
        # time, not the injected clock, as this only bounds how long a write is held back
        self._hold_timer = asyncio.get_running_loop().call_later(FIRST_STATUS_WAIT, self._post_held_status)
        try:
            while True:
                self._wake.clear()
                meta = self.pod["metadata"]
                if self.removed or meta.get("deletionTimestamp"):
                    self._post_held_status()
                    await self._terminate()
                    return
                wake_at = None
                if not self.facts.terminal:
                    wake_at = await self._sync()
                self._post_held_status()
                if self.facts.terminal and not self.finished:
                    await self._finish()
                await self._sleep(wake_at)
        finally:
            if self._hold_timer is not None:
                self._hold_timer.cancel()

    async def _sleep(self, until: float | None) -> None:
        if self._wake.is_set():
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        timer = None
        if until is not None:
            timer = asyncio.ensure_future(self.clock.sleep_until(until))
        try:
            await asyncio.wait([t for t in (waiter, timer) if t is not None], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if timer is not None:
                timer.cancel()

    async def _sync(self) -> float | None:
        spec = self.pod.get("spec") or {}
        now = self.clock.now()
        wakes: list[float] = []
        deadline = spec.get("activeDeadlineSeconds")
        if isinstance(deadline, int) and self.facts.start_time is not None:
            at = self.facts.start_time + deadline
            if now >= at:
                await self._deadline_exceeded()
                return None
            wakes.append(at)

        if self.volume_paths is None:
            try:
                self.volume_paths = await prepare_volumes(self.agent.client, self._pod_with_ips(), self.dir,
                                                          node=self.agent.node())
            except VolumeError as e:
                self.agent.recorder.pod_event(self.pod, WARNING, "FailedMount", e.message)
                return _earliest(wakes + [now + RETRY])
        if self.sandbox is None:
            if not await self._create_sandbox():
                return _earliest(wakes + [now + RETRY])

        policy = spec.get("restartPolicy") or "Always"
        initialized = any(c.cid for c in self.facts.containers)   # containers ran: init is behind us
        for cs in self.facts.init_containers:
            if cs.sidecar:
                w = await self._keep_running(cs, "Always")
                if w is not None:
                    wakes.append(w)
                if not (cs.running and cs.probe_started) and not initialized:
                    return _earliest(wakes)   # the next init container waits for this sidecar to start
                continue
            if initialized:
                continue
            if cs.succeeded:
                continue
            if cs.running or cs.stopping:
                return _earliest(wakes)
            if cs.terminated is None:
                w = await self._start(cs)
                return _earliest(wakes + ([w] if w is not None else []))
            if policy == "Never":
                self.facts.terminal = True   # an init container failed: the pod fails
                return None
            w = await self._restart(cs)
            return _earliest(wakes + ([w] if w is not None else []))

        for cs in self.facts.containers:
            w = await self._keep_running(cs, policy)
            if w is not None:
                wakes.append(w)

        if all(self._done_for_good(cs, policy) for cs in self.facts.containers):
            self.facts.terminal = True
            return None
        return _earliest(wakes)

    def _done_for_good(self, cs: CState, policy: str) -> bool:
        if cs.running or cs.stopping or cs.terminated is None or cs.waiting is not None:
            return False
        if cs.restart_now:
            return False
        code = cs.terminated.get("exitCode")
        return policy == "Never" or (policy == "OnFailure" and code == 0)

    async def _keep_running(self, cs: CState, policy: str) -> float | None:
        """Start a container that never ran, restart one that exited if its policy says so."""
        if cs.running or cs.stopping:
            return None
        if cs.terminated is None:
            return await self._start(cs)
        code = cs.terminated.get("exitCode")
        if cs.restart_now or policy == "Always" or (policy == "OnFailure" and code != 0):
            return await self._restart(cs)
        cs.waiting = None
        return None

    # ---- sandbox and volumes ----

    def _pod_with_ips(self) -> dict:
        status = dict(self.pod.get("status") or {})
        status["hostIP"] = self.facts.host_ip
        status["hostIPs"] = [{"ip": self.facts.host_ip}]
        if self.facts.pod_ip:
            status["podIP"] = self.facts.pod_ip
            status["podIPs"] = [{"ip": self.facts.pod_ip}]
        return dict(self.pod, status=status)

    async def _create_sandbox(self) -> bool:
        spec = self.pod.get("spec") or {}
        try:
            hostname = pod_hostname(self.pod)
        except ContainerConfigError:
            hostname = self.name[:63].rstrip("-.")
        try:
            self.sandbox = await self.runtime.create_sandbox(SandboxSpec(
                pod_uid=self.uid, namespace=self.namespace, name=self.name, hostname=hostname,
                host_network=bool(spec.get("hostNetwork"))))
        except Exception as e:
            log.warning("creating the sandbox of %s failed: %s", self.key, e)
            self.agent.recorder.pod_event(self.pod, WARNING, "FailedCreatePodSandBox",
                                          f"Failed to create pod sandbox: {e}")
            return False
        self.facts.pod_ip = self.sandbox.ip or self.facts.host_ip
        self.facts.sandbox_ready = True
        if not self.sandbox.isolated and not self._isolation_reported:
            self._isolation_reported = True
            self.agent.recorder.pod_event(self.pod, WARNING, "IsolationDisabled", self.runtime.isolation_note or
                                          "pod processes run without namespace and cgroup isolation")
        self.request_status()
        return True

    async def _remove_sandbox(self) -> None:
        if self.sandbox is None:
            return
        sandbox, self.sandbox = self.sandbox, None
        self.facts.sandbox_ready = False
        try:
            await self.runtime.remove_sandbox(sandbox)
        except Exception as e:
            log.warning("removing the sandbox of %s failed: %s", self.key, e)

    # ---- starting containers ----

    def _backoff_key(self, cs: CState) -> str:
        return f"{self.uid}/{'init/' if cs.init else ''}{cs.name}"

    async def _restart(self, cs: CState) -> float | None:
        """Restart an exited container, unless it is in its crash-loop back-off."""
        backoff = self.agent.backoff
        key = self._backoff_key(cs)
        finished = self.finished_at.get(cs.name, self.clock.now())
        now = self.clock.now()
        if cs.restart_now:
            cs.restart_now = False
        elif backoff.in_backoff_since(key, finished, now):
            delay = backoff.get(key)
            cs.waiting = ("CrashLoopBackOff", f"back-off {go_duration(delay)} restarting failed container={cs.name} "
                                              f"pod={self.name}_{self.namespace}({self.uid})")
            if self._backoff_reported.get(cs.name) != finished:
                self._backoff_reported[cs.name] = finished
                self.agent.recorder.pod_event(
                    self.pod, WARNING, "BackOff",
                    f"Back-off restarting failed container {cs.name} in pod {self.name}_{self.namespace}({self.uid})",
                    cs.name)
                self.request_status()
            return backoff.release_after(key, finished)
        else:
            backoff.next(key, finished)
        return await self._start(cs)

    def _image_check(self, cs: CState) -> tuple[bool, float | None]:
        """(True, None) when the image can run; else the waiting state is set and (False, retry time)."""
        image = cs.spec.get("image") or ""
        key = self._backoff_key(cs) + "/image"
        backoff = self.agent.backoff
        now = self.clock.now()
        probe = ContainerSpec(name=cs.name, image=image, command=list(cs.spec.get("command") or []),
                              args=list(cs.spec.get("args") or []), env=[], working_dir=cs.spec.get("workingDir"),
                              mounts=[])
        try:
            self.runtime.resolve(probe)
            return True, None
        except ImageError as e:
            err = e
        rec = self.agent.recorder
        if err.reason == "InvalidImageName":
            cs.waiting = (err.reason, err.message)
            rec.pod_event(self.pod, WARNING, "InspectFailed", err.message, cs.name)
            rec.pod_event(self.pod, WARNING, "Failed", f"Error: {err.reason}", cs.name)
            self.request_status()
            return False, None   # only a new image (a pod update) can help
        failed = self._image_failed.get(cs.name)
        if failed is not None and backoff.in_backoff_since(key, failed, now):
            cs.waiting = ("ImagePullBackOff", f'Back-off pulling image "{image}": {err.reason}: {err.message}')
            rec.pod_event(self.pod, NORMAL, "BackOff", f'Back-off pulling image "{image}"', cs.name)
            rec.pod_event(self.pod, WARNING, "Failed", "Error: ImagePullBackOff", cs.name)
            self.request_status()
            return False, backoff.release_after(key, failed)
        backoff.next(key, now)
        self._image_failed[cs.name] = now
        cs.waiting = (err.reason, err.message)
        rec.pod_event(self.pod, WARNING, "Failed", f'Failed to pull image "{image}": {err.message}', cs.name)
        rec.pod_event(self.pod, WARNING, "Failed", f"Error: {err.reason}", cs.name)
        self.request_status()
        # The pod worker syncs again soon after a failed sync; within the back-off window
        # that shows ImagePullBackOff, as users see between two pull attempts.
        return False, now + IMAGE_RESYNC

    async def _start(self, cs: CState) -> float | None:
        """Pull (check), configure and start one container. Returns when to try again, if needed."""
        rec = self.agent.recorder
        image = cs.spec.get("image") or ""
        ok, retry = self._image_check(cs)
        if not ok:
            return retry
        rec.pod_event(self.pod, NORMAL, "Pulled",
                      f'Container image "{image}" already present on machine and can be accessed by the pod', cs.name)
        try:
            env = await container_env(self.agent.client, self._pod_with_ips(), cs.spec, self.agent.node(),
                                      warn=lambda reason, msg: rec.pod_event(self.pod, WARNING, reason, msg),
                                      service_cache=self.agent.services)
            mounts = container_mounts(self.pod, cs.spec, self.volume_paths or {}, env=env)
        except ContainerConfigError as e:
            cs.waiting = ("CreateContainerConfigError", e.message)
            rec.pod_event(self.pod, WARNING, "Failed", f"Error: {e.message}", cs.name)
            self.request_status()
            return self.clock.now() + RETRY
        is_restart = bool(cs.cid)
        count = cs.restart_count + 1 if is_restart else cs.restart_count
        path = log_path(self.dir, cs.name, count)     # the runtime creates its directory
        if self.sandbox is None:
            return self.clock.now()
        try:
            inst = await self.runtime.start(self.sandbox, container_spec(cs.spec, env, mounts), path)
        except ImageError as e:
            cs.waiting = (e.reason, e.message)
            rec.pod_event(self.pod, WARNING, "Failed", f'Failed to pull image "{image}": {e.message}', cs.name)
            self.request_status()
            return self.clock.now() + RETRY
        except (StartError, OSError) as e:
            # Created but not started: a terminated run with StartError, restarted per policy.
            now = self.clock.now()
            cid = uuid.uuid4().hex
            message = getattr(e, "message", None) or str(e)
            self._new_run(cs, cid, path, is_restart)
            cs.terminated = {"exitCode": getattr(e, "exit_code", 128), "reason": getattr(e, "reason", "StartError"),
                             "message": message, "startedAt": "1970-01-01T00:00:00Z",
                             "finishedAt": self.clock.rfc3339(now), "containerID": f"pocketkube://{cid}"}
            self.finished_at[cs.name] = now
            rec.pod_event(self.pod, NORMAL, "Created", "Container created", cs.name)
            rec.pod_event(self.pod, WARNING, "Failed", f"Error: {message}", cs.name)
            self.request_status()
            return now
        self._new_run(cs, inst.id, path, is_restart)
        cs.running_since = self.clock.now()
        self.instances[cs.name] = inst
        rec.pod_event(self.pod, NORMAL, "Created", "Container created", cs.name)
        rec.pod_event(self.pod, NORMAL, "Started", "Container started", cs.name)
        self._exit_tasks[cs.name] = asyncio.get_running_loop().create_task(self._watch_exit(cs, inst))
        post_start = (cs.spec.get("lifecycle") or {}).get("postStart")
        if post_start and not await self._post_start(cs, inst, post_start):
            return None
        self._start_probes(cs, inst)
        self.request_status()
        return None

    def _hook_host(self) -> str:
        sandbox = self.sandbox
        return "127.0.0.1" if sandbox is None or not sandbox.isolated or not sandbox.ip else sandbox.ip

    async def _post_start(self, cs: CState, inst: Container, handler: dict) -> bool:
        """Run the postStart hook; a failure kills the container (restarted per policy)."""
        error = await run_hook(handler, self.runtime, self.sandbox, inst, cs.spec, self._hook_host(),
                               self._grace_for(cs, None), self.clock.sleep)
        if error is None:
            return True
        self.agent.recorder.pod_event(self.pod, WARNING, "FailedPostStartHook", hook_failure_message(
            "PostStart", handler, cs.name, f"{self.name}_{self.namespace}({self.uid})", error), cs.name)
        if self.instances.get(cs.name) is inst:
            self._kill(cs, inst, "FailedPostStartHook", self._grace_for(cs, None), pre_stop=False)
        return False

    async def _pre_stop(self, cs: CState, inst: Container, grace: float) -> float:
        """Run the preStop hook within the grace period; return the time left for SIGTERM."""
        handler = (cs.spec.get("lifecycle") or {}).get("preStop")
        if not handler or grace <= 0:
            return grace
        started = self.clock.now()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            error = await asyncio.wait_for(run_hook(handler, self.runtime, self.sandbox, inst, cs.spec,
                                                    self._hook_host(), grace, self.clock.sleep), grace)
        except asyncio.TimeoutError:
            error = f"PreStopHook did not finish within the grace period of {grace:g}s"
        if error is not None:
            self.agent.recorder.pod_event(self.pod, WARNING, "FailedPreStopHook", hook_failure_message(
                "PreStop", handler, cs.name, f"{self.name}_{self.namespace}({self.uid})", error), cs.name)
        spent = max(self.clock.now() - started, loop.time() - t0)
        return max(float(MIN_GRACE), grace - spent)

    def _new_run(self, cs: CState, cid: str, path: str, is_restart: bool) -> None:
        if is_restart:
            cs.last_terminated = cs.terminated
            cs.restart_count += 1
        cs.terminated = None
        cs.waiting = None
        cs.stopping = False
        cs.cid = cid
        self.log_paths[cid] = path

    async def _watch_exit(self, cs: CState, inst: Container) -> None:
        try:
            status = await self.runtime.wait(inst)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("waiting for container %s of %s failed: %s", cs.name, self.key, e)
            status = None
        if self.instances.get(cs.name) is not inst:
            return
        now = self.clock.now()
        del self.instances[cs.name]
        self._stop_probes(cs.name)
        term: dict = {"exitCode": status.exit_code if status else 137,
                      "reason": (status.reason if status else "Error") or "Error",
                      "startedAt": self.clock.rfc3339(cs.running_since), "finishedAt": self.clock.rfc3339(now),
                      "containerID": f"pocketkube://{inst.id}"}
        if status is not None and status.message:
            term["message"] = status.message
        elif term["exitCode"] != 0 and cs.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            # The end of its output explains a failure best: at most 80 lines or 2 KiB, as upstream.
            path = self.log_paths.get(inst.id)
            tail = await asyncio.to_thread(read_log, path, None, 80, False, None) if path else b""
            if tail:
                term["message"] = tail[-2048:].decode("utf-8", "replace")
        if status is not None and status.signal:
            term["signal"] = status.signal
        cs.terminated = term
        cs.running_since = None
        cs.stopping = False
        self.finished_at[cs.name] = now
        self.request_status()
        self.wake()

    # ---- probes ----

    def _start_probes(self, cs: CState, inst: Container) -> None:
        workers = []
        has = {k: cs.spec.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        # Regular init containers are not probed; sidecars and containers are.
        if cs.init and not cs.sidecar:
            has = {}
        cs.probe_started = not has.get("startupProbe")
        cs.probe_ready = not has.get("readinessProbe")
        for kind, field in ((STARTUP, "startupProbe"), (LIVENESS, "livenessProbe"), (READINESS, "readinessProbe")):
            probe = has.get(field)
            if not probe:
                continue
            pw = ProbeWorker(kind, probe, self.clock, cs.running_since or self.clock.now(),
                             partial(self._probe_action, cs, inst, probe),
                             partial(self._on_probe_result, cs, inst),
                             partial(self._on_probe_failed, cs),
                             partial(self._may_probe, cs, inst))
            pw.start()
            workers.append(pw)
        self._probes[cs.name] = workers

    def _stop_probes(self, name: str) -> None:
        for pw in self._probes.pop(name, []):
            pw.stop()

    def _may_probe(self, cs: CState, inst: Container, kind: str) -> bool:
        if self.instances.get(cs.name) is not inst or cs.stopping:
            return False
        if kind == STARTUP:
            return not cs.probe_started
        return cs.probe_started

    async def _probe_action(self, cs: CState, inst: Container, probe: dict) -> tuple[str, str]:
        timeout = probe_timeout(probe)
        if probe.get("exec") is not None:
            argv = [str(a) for a in probe["exec"].get("command") or []]
            if self.sandbox is None:
                return UNKNOWN, ""
            try:
                code, out = await self.runtime.exec(self.sandbox, inst, argv, timeout)
            except (TimeoutError, asyncio.TimeoutError):
                return FAILURE, f'command "{" ".join(argv)}" timed out'
            except ProcessLookupError:
                return UNKNOWN, ""
            return (SUCCESS if code == 0 else FAILURE), out.decode("utf-8", "replace")
        host = self._hook_host()
        if probe.get("httpGet") is not None:
            return await http_probe(probe["httpGet"], cs.spec, host, timeout)
        if probe.get("tcpSocket") is not None:
            return await tcp_probe(probe["tcpSocket"], cs.spec, host, timeout)
        if probe.get("grpc") is not None:
            # No gRPC health client here: a connection to the port is the best we can check.
            return await tcp_probe({"port": probe["grpc"].get("port")}, cs.spec, host, timeout)
        return UNKNOWN, ""

    def _on_probe_failed(self, cs: CState, kind: str, output: str) -> None:
        self.agent.recorder.pod_event(self.pod, WARNING, "Unhealthy", f"{kind} probe failed: {output}", cs.name)

    def _on_probe_result(self, cs: CState, inst: Container, kind: str, ok: bool) -> None:
        if self.instances.get(cs.name) is not inst:
            return
        if kind == READINESS:
            cs.probe_ready = ok
            self.request_status()
        elif kind == STARTUP and ok:
            cs.probe_started = True
            self.request_status()
            self.wake()   # a sidecar that started lets the next init container go
        elif not ok:
            what = "liveness" if kind == LIVENESS else "startup"
            probe = cs.spec.get("livenessProbe" if kind == LIVENESS else "startupProbe") or {}
            self._kill(cs, inst, f"Container {cs.name} failed {what} probe, will be restarted",
                       self._grace_for(cs, probe))

    # ---- stopping ----

    def _grace_for(self, cs: CState | None, probe: dict | None) -> float:
        spec = self.pod.get("spec") or {}
        grace = spec.get("terminationGracePeriodSeconds")
        if probe and probe.get("terminationGracePeriodSeconds") is not None:
            grace = probe["terminationGracePeriodSeconds"]
        return float(max(MIN_GRACE, 30 if grace is None else grace))

    def _kill(self, cs: CState, inst: Container, message: str, grace: float, pre_stop: bool = True) -> None:
        """Stop one running container in the background; its exit is seen by _watch_exit."""
        cs.stopping = True
        cs.probe_ready = False if cs.spec.get("readinessProbe") else cs.probe_ready
        self.agent.recorder.pod_event(self.pod, NORMAL, "Killing", message, cs.name)
        self.request_status()

        async def stop():
            try:
                left = await self._pre_stop(cs, inst, grace) if pre_stop else grace
                await self.runtime.stop(inst, left)
            except Exception as e:
                log.warning("stopping container %s of %s failed: %s", cs.name, self.key, e)
        t = asyncio.get_running_loop().create_task(stop())
        self._stop_tasks.add(t)
        t.add_done_callback(self._stop_tasks.discard)

    async def _stop_all(self, grace: float, events: bool = True) -> None:
        """Stop every running container (containers first, then sidecars, last started first)."""
        order = [cs for cs in self.facts.containers] + list(reversed(self.facts.init_containers))
        for group in ([cs for cs in order if not cs.init], [cs for cs in order if cs.init]):
            stops = []
            for cs in group:
                inst = self.instances.get(cs.name)
                if inst is None:
                    continue
                cs.stopping = True
                if events:
                    self.agent.recorder.pod_event(self.pod, NORMAL, "Killing", f"Stopping container {cs.name}",
                                                  cs.name)
                stops.append(self._stop_one(cs, inst, grace, pre_stop=events))
            if stops:
                await asyncio.gather(*stops)
        for name in list(self._probes):
            self._stop_probes(name)

    async def _stop_one(self, cs: CState, inst: Container, grace: float, pre_stop: bool = True) -> None:
        try:
            left = await self._pre_stop(cs, inst, grace) if pre_stop else grace
            await self.runtime.stop(inst, left)
        except Exception as e:
            log.warning("stopping container %s of %s failed: %s", cs.name, self.key, e)
        task = self._exit_tasks.get(cs.name)
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), 5.0)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                pass

    async def _deadline_exceeded(self) -> None:
        self.facts.reason = "DeadlineExceeded"
        self.facts.message = DEADLINE_MESSAGE
        self.agent.recorder.pod_event(self.pod, NORMAL, "DeadlineExceeded", DEADLINE_MESSAGE)
        self.request_status()
        await self._stop_all(self._grace_for(None, None))
        self.facts.terminal = True

    async def _finish(self) -> None:
        """The pod is terminal: stop what still runs (sidecars), free the sandbox, report."""
        await self._stop_all(self._grace_for(None, None))
        for cs in self.facts.init_containers + self.facts.containers:
            if cs.terminated is not None:
                cs.waiting = None
        await self._remove_sandbox()
        self.finished = True
        await self.agent.write_status(self)

    def _deletion_grace(self) -> float:
        meta = self.pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            grace = 30 if grace is None else grace
        return float(max(1, grace))

    async def _terminate(self) -> None:
        """Deleted (gracefully, or gone from the API): stop everything, report, finish the deletion."""
        if not self.finished:
            await self._stop_all(self._deletion_grace())
            for cs in self.facts.init_containers + self.facts.containers:
                if cs.terminated is not None:
                    cs.waiting = None
            self.facts.terminal = True
            await self._remove_sandbox()
            self.finished = True
            if not self.removed:
                await self.agent.write_status(self)
        meta = self.pod["metadata"]
        if not self.removed and meta.get("deletionTimestamp"):
            try:
                await self.agent.client.delete("pods", self.namespace, self.name, grace_period_seconds=0,
                                               preconditions={"uid": self.uid})
            except ApiError as e:
                if e.code not in (404, 409):
                    log.warning("deleting pod %s failed: %s", self.key, e)
        await self.cleanup_files()

    async def cleanup_files(self) -> None:
        def rm():
            try:
                remove_volumes(self.dir)
            except Exception as e:
                log.warning("removing the volumes of %s failed: %s", self.key, e)
            if not os.path.isdir(os.path.join(self.dir, "volumes")):
                shutil.rmtree(self.dir, ignore_errors=True)
        await asyncio.to_thread(rm)


def _earliest(times: list[float]) -> float | None:
    return min(times) if times else None
