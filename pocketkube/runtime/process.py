"""ProcessRuntime: each container is a real process tree on this machine.

As root on Linux a pod gets what a container runtime would give it, built from kernel
primitives rather than images: a network namespace with its own IP on a host bridge, and per
container PID, mount and UTS namespaces plus a cgroup with the memory and CPU limits. Without
root (or off Linux) containers are plain host processes in their own session and process
group, and `isolation_note` says so.

How a container runs (isolated):
- the spawn helper (spawnd.py) forks a child that is PID 1 of a new PID namespace; the child
  joins the container's cgroup and the pod's netns, unshares mount and UTS namespaces, mounts
  /proc and the volumes, and execs the command. As in Docker without --init, the command is
  PID 1: when it exits, the kernel kills whatever is left in its PID namespace, so no process
  outlives its container;
- stopping sends SIGTERM to every process in the container's cgroup. PID 1 of a namespace
  only receives signals it handles, so one without a SIGTERM handler (sh, sleep...), which as
  an ordinary process would die of SIGTERM, is killed and reported as dead of SIGTERM (143):
  pods stop at once instead of sitting out their grace period;
- the helper dies with the agent (PR_SET_PDEATHSIG), killing every container's process group
  on the way out, and every container's PID 1 dies with the helper: even a SIGKILL of the
  agent leaves no container process. What cannot die with it (netns, veth, cgroups, IPs,
  mount points) is journaled under state_dir and removed by `cleanup_orphans()` on the next
  start.
Output arrives through non-blocking pipes and exits as messages from the helper, all on the
event loop: no thread and no fork of the agent per container. Pod networks are built by a
helper process, ahead of demand when a warm pool is on (see podnets.py).

Without isolation the same helper starts each container in its own session; stopping signals
the process group, and when the main process exits the rest of its group is killed, as a
PID namespace would do.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field

from .base import (Container, ContainerSpec, ExitStatus, Runtime, Sandbox, SandboxSpec,
                   StartError)
from .cgroups import CgroupHandle, Cgroups
from .images import DEFAULT_PATH, ImageCatalog, find_program
from .isolation import syscalls
from .isolation.ipam import IPAllocator
from .logs import DEFAULT_MAX_BYTES, STDERR, STDOUT, CRILogWriter
from .spawn import SpawnError, default_spawner, send_signal
from .state import Journal, process_start_time

log = logging.getLogger(__name__)

NSENTER = "nsenter"
EXEC_OUTPUT_LIMIT = 1 << 20     # an exec probe's output is for a message, not for storage

HOSTS_TEMPLATE = """# Kubernetes-managed hosts file (written by pocketkube).
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
"""


@dataclass(eq=False)
class _Run:
    """Everything the runtime tracks about one running container."""

    container: Container
    isolated: bool
    cgroup: CgroupHandle | None
    writer: CRILogWriter
    env: dict[str, str]
    working_dir: str
    container_dir: str | None
    mount_points: list[str]
    fds: dict[int, bytes] = field(default_factory=dict)     # output pipe -> stream
    done: asyncio.Future = None      # type: ignore[assignment]  # -> ExitStatus
    streams_closed: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pid: int = 0
    pidfd: int = -1
    returncode: int | None = None
    term_killed: bool = False       # SIGKILL stood in for a SIGTERM that PID 1 cannot receive
    record: dict | None = None      # what cleanup_orphans needs if the agent dies
    exited_at: float = 0.0


@dataclass(eq=False)
class _SandboxState:
    sandbox: Sandbox
    key: str
    netns_path: str | None = None
    hosts_path: str | None = None


def _isolation_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"not running on Linux ({sys.platform})"
    if os.geteuid() != 0:
        return "not running as root"
    if not syscalls.available:
        return "the C library's namespace calls are unavailable"
    try:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        return f"cannot open /proc/self/ns/pid ({e.strerror})"
    try:
        syscalls.unshare(syscalls.CLONE_NEWPID)
        syscalls.setns(own, syscalls.CLONE_NEWPID)
    except OSError as e:
        return f"creating namespaces is not permitted ({e.strerror}; a container without CAP_SYS_ADMIN?)"
    finally:
        os.close(own)
    return None


def _under(path: str, parent: str) -> bool:
    parent = parent.rstrip("/") or "/"
    return path == parent or path.startswith(parent + "/") or parent == "/"


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p])


class ProcessRuntime(Runtime):
    name = "process"

    def __init__(self, state_dir: str, node_cidr: str = "10.42.0.0/24", bridge: str = "pk0",
                 isolate: bool | None = None, log_max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.state_dir = os.path.abspath(state_dir)
        os.makedirs(self.state_dir, exist_ok=True)
        self.node_cidr = node_cidr
        self.bridge = bridge
        self.log_max_bytes = log_max_bytes
        # names of everything this runtime creates start with pk<tag>: another runtime
        # (another state_dir) on the same host never touches them
        self.tag = _runtime_tag(self.state_dir)
        self.catalog = ImageCatalog([p for p in (os.path.join(self.state_dir, "images.yaml"),
                                                 os.path.join(self.state_dir, "images.json"),
                                                 os.environ.get("POCKETKUBE_IMAGES")) if p])
        self._container_dirs = os.path.join(self.state_dir, "containers")
        os.makedirs(self._container_dirs, exist_ok=True)
        self._journal = Journal(os.path.join(self.state_dir, "containers.journal"))
        self._hosts_dir = os.path.join(self.state_dir, "hosts")
        os.makedirs(self._hosts_dir, exist_ok=True)
        self._spare_hosts: dict[str, int] = {}     # key -> open hosts file of a spare network
        self._runs: dict[str, _Run] = {}
        self._sandboxes: dict[str, _SandboxState] = {}
        self._mount_refs: dict[str, int] = {}
        self._created_paths: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._spawner = default_spawner()
        self.cgroups: Cgroups | None = None
        self.networks = None

        reason = _isolation_unavailable()
        if isolate is None:
            self.isolated = reason is None
        elif isolate and reason:
            raise RuntimeError(f"pod isolation was requested but is unavailable: {reason}")
        else:
            self.isolated = bool(isolate)
            if not isolate:
                reason = "disabled by configuration (isolate=False)"

        if self.isolated:
            from .isolation.netns import NETNS_DIR
            from .podnets import PodNetworks
            self._netns_dir = NETNS_DIR
            self.cgroups = Cgroups(self.tag)
            self.networks = PodNetworks(self.state_dir, node_cidr, bridge, f"pk{self.tag}")
            self.networks.on_spare = self._make_spare_hosts
            self.isolation_note = (
                f"pods get their own network namespace ({node_cidr} on bridge {bridge}, gateway "
                f"{self.ipam.gateway}) and each container its own PID, mount and UTS namespaces; "
                f"limits: {self.cgroups.note}")
        else:
            self.isolation_note = (
                f"pod isolation is off: {reason}; pods run as plain host processes (no pod IPs: "
                f"ports and hostname are the host's, volume mounts and memory/CPU limits are not "
                f"applied)")

    # -- helpers ----------------------------------------------------------------------------

    @property
    def ipam(self) -> IPAllocator | None:
        """The pod IP allocator (None without isolation)."""
        return self.networks.ipam if self.networks is not None else None

    def _key(self, pod_uid: str) -> str:
        """A name for a pod without a network of its own, unique among this runtime's pods."""
        taken = {s.key for s in self._sandboxes.values()}
        for n in range(100):
            digest = hashlib.sha1(f"{pod_uid}#{n}".encode() if n else pod_uid.encode()).hexdigest()
            key = f"pk{self.tag}{digest[:7]}"
            if key not in taken:
                return key
        raise StartError(f"cannot find a free name for pod {pod_uid}")

    def start_pool(self, networks: int, processes: int | None = None) -> None:
        """Keep up to `networks` pod networks made (~0.3 MB of kernel memory each) and
        `processes` container processes forked (~0.9 MB each; as many as networks when None)
        ahead of demand, see podnets.py and spawnd.py. Call it on the event loop. Without
        isolation there is nothing to make."""
        if self.networks is not None:
            self.networks.start_pool(networks)
            self._spawner.set_pool(networks if processes is None else processes)

    async def drain_pool(self) -> None:
        """Remove the spare pod networks and forked processes (the node is stopping)."""
        if self.networks is not None:
            self._spawner.set_pool(0)
            await self.networks.drain_pool()

    def close(self) -> None:
        """Release the runtime's own resources. Containers still running are killed (they
        cannot outlive the spawn helper); spare networks are removed; pods' sandboxes stay for
        cleanup_orphans()."""
        self._spawner.close()
        self._journal.close()
        if self.networks is not None:
            self.networks.close()
            self._remove_hosts_files({s.key for s in self._sandboxes.values()})
        if self.cgroups is not None and not self._runs:
            self.cgroups.remove_bases()

    # -- sandboxes --------------------------------------------------------------------------

    async def create_sandbox(self, spec: SandboxSpec) -> Sandbox:
        existing = self._sandboxes.get(spec.pod_uid)
        if existing is not None:
            return existing.sandbox
        if not self.isolated or spec.host_network:
            sandbox = Sandbox(pod_uid=spec.pod_uid, ip=None, isolated=self.isolated,
                              hostname=spec.hostname, host_network=spec.host_network)
            self._sandboxes[spec.pod_uid] = _SandboxState(sandbox, self._key(spec.pod_uid))
            return sandbox
        key, ip = await self.networks.acquire(spec.pod_uid, {s.key for s in self._sandboxes.values()})
        existing = self._sandboxes.get(spec.pod_uid)
        if existing is not None:     # made meanwhile by a concurrent call: ours is not needed
            await self._delete_network(key, ip)
            return existing.sandbox
        hosts = os.path.join(self._hosts_dir, key)
        line = f"{ip}\t{spec.hostname}\n" if spec.hostname else ""
        fd = self._spare_hosts.pop(key, None)
        if fd is not None:
            try:
                _write_all(fd, line)
            finally:
                os.close(fd)
        else:
            _write_file(hosts, HOSTS_TEMPLATE + line)
        sandbox = Sandbox(pod_uid=spec.pod_uid, ip=ip, isolated=True, hostname=spec.hostname,
                          netns=key, veth=key)
        self._sandboxes[spec.pod_uid] = _SandboxState(
            sandbox, key, netns_path=os.path.join(self._netns_dir, key), hosts_path=hosts)
        return sandbox

    def _make_spare_hosts(self, key: str, ip: str) -> None:
        # Making a file (an inode) took 0.1-0.5 ms of the loop's time per pod in a burst, and
        # even opening one that exists took about 0.15 ms then. A spare network gets its hosts
        # file while the node is quiet, kept open, and create_sandbox() only appends the pod's
        # line through it. Files of spares that no pod took are removed by close() or the next
        # cleanup_orphans().
        fd = os.open(os.path.join(self._hosts_dir, key),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, HOSTS_TEMPLATE)
        except BaseException:
            os.close(fd)
            raise
        self._forget_spare_hosts(key)
        self._spare_hosts[key] = fd

    def _forget_spare_hosts(self, key: str) -> None:
        fd = self._spare_hosts.pop(key, None)
        if fd is not None:
            os.close(fd)

    async def _delete_network(self, key: str, ip: str | None, veth_too: bool = False) -> bool:
        found = await self.networks.release(key, ip, veth_too)
        self._remove_hosts_file(key)
        return found

    def _remove_hosts_file(self, key: str) -> None:
        self._forget_spare_hosts(key)
        try:
            os.unlink(os.path.join(self._hosts_dir, key))
        except FileNotFoundError:
            pass

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        runs = [r for r in self._runs.values() if r.container.pod_uid == sandbox.pod_uid]
        for run in runs:
            self._signal(run, signal.SIGKILL)
        if runs:
            await asyncio.gather(*(asyncio.shield(r.done) for r in runs), return_exceptions=True)
        self._sandboxes.pop(sandbox.pod_uid, None)
        if self.isolated and sandbox.netns:
            await self._delete_network(sandbox.netns, sandbox.ip)

    async def remove_bridge(self) -> bool:
        """Delete the pod bridge when no pod uses it (the agent keeps it across restarts)."""
        if not self.isolated:
            return False
        return await self.networks.remove_bridge()

    # -- containers -------------------------------------------------------------------------

    def resolve(self, spec: ContainerSpec) -> list[str]:
        """The argv start() will run (see images.py). Paths private to one run, such as the
        generated nginx.conf, read "{container_dir}/..." until start() picks the directory."""
        return self.catalog.resolve(spec).argv

    def _base_env(self, sandbox: Sandbox) -> dict[str, str]:
        path = DEFAULT_PATH
        if not self.isolated:
            # plain host processes: programs installed for this user (Homebrew, ~/.local) too
            extra = [p for p in os.environ.get("PATH", "").split(os.pathsep)
                     if p and p not in DEFAULT_PATH.split(":")]
            path = os.pathsep.join([DEFAULT_PATH, *extra])
        home = "/root" if self.isolated else os.environ.get("HOME", "/")
        return {"PATH": path, "HOSTNAME": sandbox.hostname, "HOME": home}

    def _host_view(self, path: str, mounts: list) -> str:
        """Where a container path is on the host, through the container's mounts."""
        if not self.isolated:
            return path
        for m in sorted(mounts, key=lambda m: -_depth(m.container_path)):
            if m.container_path != "/" and _under(path, m.container_path):
                rest = os.path.relpath(path, m.container_path)
                return m.host_path if rest == "." else os.path.join(m.host_path, rest)
        return path

    def _check_program(self, argv: list[str], env: dict[str, str], spec: ContainerSpec) -> None:
        program = argv[0]
        if "/" in program:
            if not os.path.isabs(program):
                return     # relative to the working directory: exec will tell
            host = self._host_view(program, spec.mounts)
            if not os.path.exists(host):
                raise StartError(f'exec: "{program}": stat {program}: no such file or directory')
            if not os.access(host, os.X_OK) or os.path.isdir(host):
                raise StartError(f'exec: "{program}": permission denied')
            return
        if not find_program(program, env.get("PATH", DEFAULT_PATH)):
            raise StartError(
                f'exec: "{program}": executable file not found in $PATH (pocketkube runs containers '
                f'as host programs: install "{program}" on this node, e.g. apt-get install {program})')

    def _make_path(self, path: str, is_dir: bool) -> list[str]:
        """Create a mount point or working directory on the host; returns what was created."""
        created = []
        missing = []
        parent = path if is_dir else os.path.dirname(path)
        while parent and parent != "/" and not os.path.lexists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for d in reversed(missing):
            try:
                os.mkdir(d)
                created.append(d)
            except FileExistsError:
                pass
        if not is_dir and not os.path.lexists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            created.append(path)
        return created

    def _prepare_paths(self, spec: ContainerSpec, working_dir: str) -> tuple[list, list[str], list[str]]:
        """Mount list for the child, the host paths this container pins, and those we created."""
        mounts = sorted(spec.mounts, key=lambda m: (_depth(m.container_path), m.container_path))
        plan, pinned, created = [], [], []
        for i, m in enumerate(mounts):
            if not os.path.exists(m.host_path):
                raise StartError(f'failed to mount volume: source "{m.host_path}" for '
                                 f'"{m.container_path}" does not exist')
            is_dir = os.path.isdir(m.host_path)
            target = os.path.normpath(m.container_path)
            nested = any(_under(target, os.path.normpath(o.container_path)) for o in mounts[:i])
            if not nested:
                created += self._make_path(target, is_dir)
                pinned.append(target)
            plan.append((m.host_path, target, m.read_only, is_dir))
        wd_in_volume = any(_under(working_dir, os.path.normpath(m.container_path)) for m in mounts)
        if not wd_in_volume and not os.path.isdir(working_dir):
            created += self._make_path(working_dir, True)
            pinned.append(working_dir)
        return plan, pinned, created

    def _request(self, state: _SandboxState, argv: list[str], env: dict[str, str],
                 working_dir: str, mounts: list, cgroup: CgroupHandle | None,
                 cgroup_steps: list[list]) -> dict:
        """What the spawn helper does for this container (see spawnd.py)."""
        req = {"argv": argv, "env": env, "cwd": working_dir, "setsid": True,
               "stdout": 0, "stderr": 1}
        if not self.isolated:
            return req
        sandbox = state.sandbox
        has_hosts = any(m[1] == "/etc/hosts" for m in mounts)
        req.update({
            "newpid": True, "newns": True,
            "netns": state.netns_path,
            "cgroup_steps": cgroup_steps,
            "cgroups": self.cgroups.join_files(cgroup),
            "hostname": None if sandbox.host_network else (sandbox.hostname or "localhost"),
            "mounts": mounts,
            "hosts": state.hosts_path if not has_hosts else None,
        })
        return req

    async def start(self, sandbox: Sandbox, spec: ContainerSpec, log_path: str) -> Container:
        state = self._sandboxes.get(sandbox.pod_uid)
        if state is None:
            raise StartError(f"pod sandbox {sandbox.pod_uid} does not exist (was it removed?)")
        cid = secrets.token_hex(32)
        container_dir = os.path.join(self._container_dirs, cid)
        resolved = self.catalog.resolve(spec, container_dir=container_dir)
        env = self._base_env(sandbox)
        env.update(resolved.env)
        env.update(spec.env)
        argv = resolved.argv
        self._check_program(argv, env, spec)
        working_dir = os.path.normpath(spec.working_dir or resolved.working_dir or "/")
        if not os.path.isabs(working_dir):
            raise StartError(f'working directory "{spec.working_dir}" must be an absolute path')

        writer = CRILogWriter(log_path, max_bytes=self.log_max_bytes)
        cgroup = None
        cgroup_steps: list[list] = []
        pinned: list[str] = []
        created: list[str] = []
        pipes: list[int] = []
        run = None
        try:
            if resolved.files:
                os.makedirs(container_dir, exist_ok=True)
                for name, text in resolved.files.items():
                    with open(os.path.join(container_dir, name), "w") as f:
                        f.write(text)
            else:
                container_dir = None
            mounts: list = []
            if self.isolated:
                mounts, pinned, created = self._prepare_paths(spec, working_dir)
                # made by the spawn helper: no cgroupfs call on this thread
                cgroup, cgroup_steps = self.cgroups.plan(cid, spec.memory_limit, spec.cpu_limit_millis)
            elif not os.path.isdir(working_dir):
                created = self._make_path(working_dir, True)
                pinned = [working_dir]
            for p in pinned:
                self._mount_refs[p] = self._mount_refs.get(p, 0) + 1
            self._created_paths.update(created)
            r_out, w_out = os.pipe()
            r_err, w_err = os.pipe()
            pipes = [r_out, w_out, r_err, w_err]
            container = Container(id=cid, pid=0, started_at=0.0, name=spec.name,
                                  pod_uid=sandbox.pod_uid, log_path=log_path)
            run = _Run(container=container, isolated=self.isolated, cgroup=cgroup, writer=writer,
                       env=env, working_dir=working_dir, container_dir=container_dir,
                       mount_points=pinned, fds={r_out: STDOUT, r_err: STDERR})
            run.done = asyncio.get_running_loop().create_future()
            container._run = run
            req = self._request(state, argv, env, working_dir, mounts, cgroup, cgroup_steps)
            try:
                spawned = await self._spawner.spawn(req, [w_out, w_err], lambda rc: self._on_exit(run, rc))
            finally:
                os.close(w_out)
                os.close(w_err)
                pipes = [r_out, r_err]
        except BaseException as e:
            writer.close()
            for fd in pipes:
                os.close(fd)
            self._release_paths(pinned)
            if self.cgroups is not None:
                self.cgroups.remove(cgroup, timeout=0)
            if container_dir:
                shutil.rmtree(container_dir, ignore_errors=True)
            if isinstance(e, SpawnError):
                raise StartError(f"failed to create container: {e}") from None
            if isinstance(e, OSError):     # mount point, cgroup or pipe creation
                raise StartError(f"failed to create container: {e}") from e
            raise
        pid = run.pid = container.pid = spawned.pid
        run.pidfd = spawned.pidfd
        container.started_at = spawned.exec_at
        self._runs[cid] = run
        try:
            loop = asyncio.get_running_loop()
            for fd in run.fds:
                os.set_blocking(fd, False)
                loop.add_reader(fd, self._on_output, run, fd)
            run.record = {
                "pod_uid": sandbox.pod_uid, "pid": pid, "isolated": self.isolated,
                "start_time": spawned.start_time if spawned.start_time is not None else process_start_time(pid),
                "cgroups": cgroup.dirs if cgroup else [],
                "created": created, "container_dir": container_dir}
            self._journal.add(cid, run.record)
        except BaseException:      # it runs, but we could not track it: it must not run on
            self._signal(run, signal.SIGKILL)
            raise
        finally:
            run.ready.set()
        return container

    # -- watching ---------------------------------------------------------------------------

    def _on_output(self, run: _Run, fd: int) -> None:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            try:
                run.writer.write(run.fds[fd], data)
            except OSError as e:
                log.warning("container %s: cannot write log %s: %s", run.container.id[:12],
                            run.container.log_path, e)
            return
        self._close_stream(run, fd)

    def _close_stream(self, run: _Run, fd: int) -> None:
        stream = run.fds.pop(fd, None)
        if stream is None:
            return
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        try:
            run.writer.flush_partial(stream)
        except OSError:
            pass
        if not run.fds:
            run.streams_closed.set()

    def _on_exit(self, run: _Run, returncode: int) -> None:
        run.returncode = returncode
        run.exited_at = time.time()
        loop = run.done.get_loop()
        if loop.is_closed():
            return
        task = loop.create_task(self._finish(run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, run: _Run) -> None:
        await run.ready.wait()     # the exit can be reported before start() has returned
        rc = run.returncode
        if run.term_killed and rc == -signal.SIGKILL:
            rc = -signal.SIGTERM
        try:
            if run.isolated:
                # the init's exit already emptied its PID namespace; anything else in the
                # cgroup (there should be nothing) goes too
                await self._drain_cgroup(run.cgroup)
            else:
                # the main process is gone: so is the rest of its process group, as in a
                # PID namespace
                await self._kill_group(run.pid)
            try:
                await asyncio.wait_for(run.streams_closed.wait(), 2.0)
            except asyncio.TimeoutError:   # a daemon that escaped still holds the pipe
                for fd in list(run.fds):
                    self._close_stream(run, fd)
            run.writer.close()
            oom = self.cgroups.oom_killed(run.cgroup) if self.cgroups else False
            status = _exit_status(rc, oom, run.exited_at)
            await self._release(run)
        except BaseException as e:   # the waiter must always hear about the exit
            log.exception("container %s: cleanup failed", run.container.id[:12])
            status = _exit_status(rc, False, run.exited_at, message=f"cleanup failed: {e}")
        if run.pidfd >= 0:
            os.close(run.pidfd)
            run.pidfd = -1
        self._runs.pop(run.container.id, None)
        if not run.done.done():
            run.done.set_result(status)

    async def _drain_cgroup(self, h: CgroupHandle | None) -> None:
        if self.cgroups is None or h is None:
            return
        for _ in range(200):
            if not self.cgroups.kill(h):
                return
            await asyncio.sleep(0.01)

    @staticmethod
    async def _kill_group(pgid: int) -> None:
        for _ in range(200):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                return
            await asyncio.sleep(0.01)

    async def _release(self, run: _Run) -> None:
        if self.cgroups is not None and not self.cgroups.remove(run.cgroup, timeout=0):
            await asyncio.get_running_loop().run_in_executor(None, self.cgroups.remove, run.cgroup, 2.0)
        self._release_paths(run.mount_points)
        if run.container_dir:
            shutil.rmtree(run.container_dir, ignore_errors=True)
        self._journal.remove(run.container.id)
        if self._journal.needs_compaction:
            self._journal.compact({cid: r.record for cid, r in self._runs.items()
                                   if r is not run and r.record})

    def _release_paths(self, pinned: list[str]) -> None:
        # a mount point we created goes once no container of ours uses it: removing it while
        # one does would detach that container's mount
        for p in pinned:
            n = self._mount_refs.get(p, 0) - 1
            if n > 0:
                self._mount_refs[p] = n
                continue
            self._mount_refs.pop(p, None)
            path = p
            while path in self._created_paths and path not in self._mount_refs:
                if not _remove_if_empty(path):
                    break
                self._created_paths.discard(path)
                path = os.path.dirname(path)

    # -- stopping ---------------------------------------------------------------------------

    def _signal(self, run: _Run, sig: int) -> None:
        if not run.isolated:
            if run.returncode is None and run.pid:
                try:
                    os.killpg(run.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            return
        if sig != signal.SIGTERM:
            if run.returncode is None and run.pid:
                send_signal(run.pid, run.pidfd, sig)   # PID 1's death takes the namespace
            if sig == signal.SIGKILL and self.cgroups:
                self.cgroups.kill(run.cgroup)
            return
        for pid in self.cgroups.pids(run.cgroup) if self.cgroups else ():
            if pid != run.pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        if run.returncode is None and run.pid:
            caught, ignored = _signal_masks(run.pid)
            if caught & _TERM_BIT or ignored & _TERM_BIT:
                send_signal(run.pid, run.pidfd, signal.SIGTERM)
            else:
                run.term_killed = True
                send_signal(run.pid, run.pidfd, signal.SIGKILL)

    async def wait(self, c: Container) -> ExitStatus:
        return await asyncio.shield(c._run.done)

    async def stop(self, c: Container, grace_seconds: float) -> ExitStatus:
        run: _Run = c._run
        if run.done.done():
            return run.done.result()
        if grace_seconds > 0:
            self._signal(run, signal.SIGTERM)
            try:
                return await asyncio.wait_for(asyncio.shield(run.done), grace_seconds)
            except asyncio.TimeoutError:
                pass
        self._signal(run, signal.SIGKILL)
        return await asyncio.shield(run.done)

    # -- exec -------------------------------------------------------------------------------

    async def exec(self, sandbox: Sandbox, c: Container, argv: list[str],
                   timeout: float) -> tuple[int, bytes]:
        run: _Run | None = c._run
        if run is None or run.returncode is not None or run.done.done():
            raise ProcessLookupError(f"container {c.name or c.id[:12]} is not running")
        if not argv:
            raise ValueError("exec needs a command")
        req = {"argv": list(argv), "env": run.env, "cwd": run.working_dir, "setsid": True,
               "stdout": 0, "stderr": 0}
        if run.isolated:
            req.update(argv=[NSENTER, "-t", str(run.pid), "-m", "-u", "-n", "-p",
                             f"--wdns={run.working_dir}", "--", *argv], cwd="/",
                       cgroups=self.cgroups.join_files(run.cgroup))
        loop = asyncio.get_running_loop()
        exited: asyncio.Future = loop.create_future()
        r, w = os.pipe()
        try:
            pid, pidfd, _, _ = await self._spawner.spawn(
                req, [w], lambda rc: exited.done() or exited.set_result(rc))
        except SpawnError as e:
            os.close(r)
            return 127, f"{e}\n".encode()
        finally:
            os.close(w)
        if pidfd >= 0:
            os.close(pidfd)
        out = bytearray()
        eof = loop.create_future()

        def readable() -> None:
            try:
                data = os.read(r, 1 << 16)
            except BlockingIOError:
                return
            if data:
                out.extend(data[:max(0, EXEC_OUTPUT_LIMIT - len(out))])
            elif not eof.done():
                eof.set_result(None)

        def kill_session() -> None:
            try:
                os.killpg(pid, signal.SIGKILL)    # nsenter and whatever the command forked
            except (ProcessLookupError, PermissionError):
                pass

        os.set_blocking(r, False)
        loop.add_reader(r, readable)
        try:
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout)
            except asyncio.TimeoutError:
                kill_session()
                raise TimeoutError(f"command {argv!r} timed out after {timeout:g}s") from None
            try:    # output still in the pipe; a background child may hold it open
                await asyncio.wait_for(eof, 0.5)
            except asyncio.TimeoutError:
                kill_session()
        finally:
            loop.remove_reader(r)
            os.close(r)
        rc = exited.result()
        return (128 - rc if rc < 0 else rc), bytes(out)

    # -- orphans ----------------------------------------------------------------------------

    async def cleanup_orphans(self) -> int:
        live_ids = set(self._runs)
        live_keys = {s.key for s in self._sandboxes.values()}
        live_uids = set(self._sandboxes)
        found = await asyncio.get_running_loop().run_in_executor(
            None, self._cleanup_sync, live_ids, live_keys)
        # here, not in the worker thread: starts append to the journal on this thread
        self._journal.compact({cid: r.record for cid, r in self._runs.items() if r.record})
        if self.networks is not None:
            found += await self.networks.cleanup(live_keys, live_uids)
        return found

    def _cleanup_sync(self, live_ids: set[str], live_keys: set[str]) -> int:
        found = 0
        for cid, rec in self._journal.read().items():
            if cid in live_ids:
                continue
            found += 1
            pid, start = rec.get("pid"), rec.get("start_time")
            alive_start = process_start_time(pid) if pid else None
            try:
                if rec.get("isolated"):
                    if alive_start is not None and alive_start == start:
                        os.kill(pid, signal.SIGKILL)
                elif pid and (alive_start is None or alive_start == start):
                    os.killpg(pid, signal.SIGKILL)     # the group can outlive its leader
            except (ProcessLookupError, PermissionError):
                pass
            if self.cgroups is not None:
                self.cgroups.remove(CgroupHandle(dirs=list(rec.get("cgroups") or [])), timeout=2.0)
            for p in reversed(rec.get("created") or []):
                if p not in self._mount_refs:
                    _remove_if_empty(p)
            if rec.get("container_dir"):
                shutil.rmtree(rec["container_dir"], ignore_errors=True)
        for name in os.listdir(self._container_dirs):     # per-run directories without a record
            full = os.path.join(self._container_dirs, name)
            if os.path.isdir(full) and name not in live_ids:
                shutil.rmtree(full, ignore_errors=True)
        if not self.isolated:
            return found
        live_cgroups = {d for r in self._runs.values() if r.cgroup for d in r.cgroup.dirs}
        for d in self.cgroups.leftovers():
            if d not in live_cgroups:
                found += 1
                self.cgroups.remove(CgroupHandle(dirs=[d]), timeout=2.0)
        self._remove_hosts_files(live_keys)
        return found

    def _remove_hosts_files(self, keep: set[str]) -> None:
        for name in os.listdir(self._hosts_dir):
            if name not in keep:
                self._remove_hosts_file(name)


def _runtime_tag(state_dir: str) -> str:
    """A random id kept in state_dir: unlike a hash of the path, a state_dir deleted and
    made again gets a new one, and 24 bits keep runtimes on one host apart."""
    path = os.path.join(state_dir, "runtime-id")
    try:
        with open(path) as f:
            tag = f.read().strip()
        if len(tag) == 6 and all(c in "0123456789abcdef" for c in tag):
            return tag
    except FileNotFoundError:
        pass
    tag = secrets.token_hex(3)
    with open(path + ".tmp", "w") as f:
        f.write(tag + "\n")
    os.replace(path + ".tmp", path)
    return tag


_TERM_BIT = 1 << (signal.SIGTERM - 1)


def _signal_masks(pid: int) -> tuple[int, int]:
    """(caught, ignored) signal masks of a process, from /proc/<pid>/status."""
    caught = ignored = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigIgn:"):
                    ignored = int(line.split()[1], 16)
                elif line.startswith(b"SigCgt:"):
                    caught = int(line.split()[1], 16)
                    break
    except (OSError, ValueError, IndexError):
        pass
    return caught, ignored


def _write_file(path: str, text: str) -> None:
    # os.open, not open(): a text file object costs four more syscalls (fstat, ioctl, two
    # lseeks) on the event loop's thread, once per pod
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        _write_all(fd, text)
    finally:
        os.close(fd)


def _write_all(fd: int, text: str) -> None:
    data = memoryview(text.encode())
    while data:
        data = data[os.write(fd, data):]


def _remove_if_empty(path: str) -> bool:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        elif os.path.isfile(path) and os.path.getsize(path) == 0:
            os.unlink(path)
        else:
            return False
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _exit_status(rc: int, oom: bool, finished_at: float, message: str = "") -> ExitStatus:
    sig = -rc if rc < 0 else None
    code = 128 + sig if sig else rc
    if oom and code != 0:
        reason = "OOMKilled"
    else:
        reason = "Completed" if code == 0 else "Error"
    return ExitStatus(exit_code=code, reason=reason, signal=sig, finished_at=finished_at, message=message)
