"""The spawn helper: a tiny single-threaded process that starts every container process.

Why not fork from the agent: fork() copies the parent's page tables, so its cost grows with
the agent's memory (about 2 ms at 100 MB, 5 ms at 350 MB on a small VM) while this helper
stays at ~10 MB; and forking a multi-threaded process to run Python code before exec can
deadlock, which a single-threaded helper cannot. Namespace set-up (unshare, setns, mounts)
happens in the child, so the helper itself never changes namespace: it only sets, around
each start, the PID namespace its next child is born in.

This file runs as a script (`python -I -S spawnd.py <socket fd> <agent pid>`) and imports
only the standard library, the `isolation` package and `state.py`, to stay small (each
import makes every fork dearer). Protocol, one JSON message per SOCK_SEQPACKET packet:
  agent -> helper  {"id", "argv", "env", "cwd", "setsid", "stdout", "stderr" (indices into
                   the fds passed with SCM_RIGHTS), "newpid", "netns" (path), "cgroup_steps"
                   (what makes the container's cgroups, see isolation/cgroupfs.py), "cgroups"
                   (the files that join them: "tasks" on v1, cgroup.procs on v2), "newns",
                   "hostname", "mounts" [[src, dst, ro, is_dir]],
                   "hosts" (file for /etc/hosts)}
  helper -> agent  {"id", "pid", "start_time"} + the child's pidfd, once the child has exec'd;
                   {"id", "error"} if set-up or exec failed;
                   {"exit": pid, "status": raw wait status}, always after the pid's reply.
                   {"pool": n}: keep n children forked ahead (see below); no answer.
The agent's death reaches the helper as SIGTERM (PR_SET_PDEATHSIG), and so does EOF on
the socket: the helper then SIGKILLs every container's process group and exits. Each child
also has PR_SET_PDEATHSIG=SIGKILL, in case the helper itself is killed.

Where the package was built with its C extension (`_vspawn`, from _vspawn.c), the helper
does not fork: it makes the container's cgroups itself, then `_vspawn.spawn` starts a child
that shares the helper's memory and makes only system calls until exec, the same set-up in
the same order as the Python child below. That child costs no page-table copy, no
copy-on-write faults and no teardown of an interpreter at exec, which took more CPU than
the rest of a container's start (bench/pods.py, 100 pods at once: p99 426-443 -> 333-373 ms).
The helper waits while the child sets up, so the answer is sent at once.

Without it (no C compiler at install time, or `--fork` after the agent pid), the helper
forks and the child runs Python. A fork costs the helper 1-2 ms on a small VM (page tables,
then copy-on-write faults), one after the other. With a pool, the helper forks isolated
children ahead of demand while it is idle: each such stub is PID 1 of its own new PID
namespace and waits for its request on a socket of its own, so a container start in a burst
is a message to a stub. Stubs die with the helper like any child; an idle one is just a
process waiting.
"""

from __future__ import annotations

import array
import json
import os
import select
import selectors
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from isolation import syscalls  # noqa: E402  (the isolation package, without pocketkube's imports)
from isolation.cgroupfs import apply_steps  # noqa: E402
from state import process_start_time  # noqa: E402

try:    # built from _vspawn.c when the package was installed with a C compiler
    import _vspawn  # noqa: E402
except ImportError:
    _vspawn = None

MAX_MSG = 1 << 20
STUB_QUIET = 0.2     # seconds without a request before the helper forks stubs again


def _child(req: dict, fds: list[int], err_w: int, helper_pid: int) -> None:
    """Runs in the forked child: set up, then exec. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        # the helper ignores SIGPIPE, SIGXFSZ (Python does) and SIGINT: programs must not
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        if syscalls.available:
            syscalls.set_pdeathsig(signal.SIGKILL)
            if not req.get("newpid") and os.getppid() != helper_pid:
                os._exit(137)     # the helper died before prctl took effect
        apply_steps(req.get("cgroup_steps") or [])
        for path in req.get("cgroups") or ():
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            os.write(fd, b"0")
            os.close(fd)
        if req.get("setsid"):
            os.setsid()
        if req.get("netns"):
            fd = os.open(req["netns"], os.O_RDONLY | os.O_CLOEXEC)
            syscalls.setns(fd, syscalls.CLONE_NEWNET)
            os.close(fd)
        if req.get("newns"):
            _mount_namespace(req)
        os.chdir(req.get("cwd") or "/")
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[req["stdout"]], 1)
        os.dup2(fds[req["stderr"]], 2)
        os.closerange(3, err_w)
        os.closerange(err_w + 1, 1 << 20)
        _exec(req["argv"], req["env"])
    except BaseException as e:
        try:
            os.write(err_w, _error_text(e).encode()[:4000])
        finally:
            os._exit(127)


def _error_text(e: BaseException) -> str:
    """What a failed start reports: "FileNotFoundError: No such file or directory"."""
    detail = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    return f"{type(e).__name__}: {detail}"


def _stub(sock: socket.socket, err_w: int, helper_pid: int) -> None:
    """Runs in a pre-forked child: wait for a request, then go on as _child. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)     # not the helper's kill_everything
        if syscalls.available:
            syscalls.set_pdeathsig(signal.SIGKILL)
        keep = sorted((sock.fileno(), err_w))
        os.closerange(3, keep[0])      # the helper's other sockets and pipes are not ours
        os.closerange(keep[0] + 1, keep[1])
        os.closerange(keep[1] + 1, 1 << 20)
        msg, fds, _, _ = socket.recv_fds(sock, MAX_MSG, 16)
        if not msg:
            os._exit(0)     # the helper dropped us (or died)
        sock.close()
        req = json.loads(msg)
    except BaseException:
        os._exit(127)
    _child(req, fds, err_w, helper_pid)


def _exec(argv: list[str], env: dict[str, str]) -> None:
    # os.execvpe would import `warnings` in the child: a millisecond of CPU per container
    error: OSError | None = None
    for path in _exec_paths(argv[0], env):
        try:
            os.execve(path, argv, env)
        except (FileNotFoundError, NotADirectoryError) as e:
            error = error or e
        except PermissionError as e:
            error = e
    raise error or FileNotFoundError(2, f"{argv[0]}: not found")


def _read_to_end(fd: int) -> bytes:
    """What a child wrote on its error pipe (nothing once it has exec'd); closes the pipe."""
    data = b""
    try:
        while chunk := os.read(fd, 4096):
            data += chunk
    finally:
        os.close(fd)
    return data


def _pidfd(pid: int) -> int:
    """A pidfd for the child, or -1 where the kernel has none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return -1


def _exec_paths(program: str, env: dict[str, str]) -> list[str]:
    """Where execvp would look for the program, in order."""
    if "/" in program:
        return [program]
    return [os.path.join(d or ".", program) for d in (env.get("PATH") or os.defpath).split(":")]


def _mount_namespace(req: dict) -> None:
    hostname = req.get("hostname")
    syscalls.unshare(syscalls.CLONE_NEWNS | (syscalls.CLONE_NEWUTS if hostname else 0))
    # slave: our mounts stay private, while unmounts on the host still reach us
    syscalls.mount(None, b"/", None, syscalls.MS_REC | syscalls.MS_SLAVE)
    if hostname:
        syscalls.sethostname(hostname.encode()[:64])
    if req.get("newpid"):    # we are PID 1 of the new PID namespace: this /proc shows it
        syscalls.mount(b"proc", b"/proc", b"proc",
                       syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
    try:    # other pods' netns pins are not ours to hold (they would keep those netns alive)
        syscalls.umount2(b"/run/netns", syscalls.MNT_DETACH)
    except OSError:
        pass
    for source, target, read_only, is_dir in req.get("mounts") or ():
        if not os.path.lexists(target):     # inside an earlier volume: create it there
            if is_dir:
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
        try:
            syscalls.mount(source.encode(), target.encode(), None, syscalls.MS_BIND | syscalls.MS_REC)
            if read_only:
                syscalls.mount(None, target.encode(), None,
                               syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)
        except OSError as e:
            raise OSError(e.errno, f"mount {source} on {target}: {os.strerror(e.errno)}") from None
    if req.get("hosts"):
        syscalls.mount(req["hosts"].encode(), b"/etc/hosts", None, syscalls.MS_BIND)
    cwd = req.get("cwd") or "/"
    if not os.path.isdir(cwd):     # the kubelet's runtimes create a missing workingDir
        os.makedirs(cwd, exist_ok=True)


class MountTemplate:
    """The mount namespace every container's is copied from (`_vspawn.mount_template`): the
    helper's (the host's) without /run/netns. Copying the host's own copied every pod's netns
    pin, only for the child to detach them again: with a hundred pods that was most of a
    container's start in a burst (bench/pods.py).

    It is made at the first start that needs it and dropped whenever the host's mount table
    changes, so a container still sees every mount made on the host before it started, and
    the template never holds on to a filesystem unmounted on the host. Netns pins change the
    table too: after pods come or go, the next start makes the template again, which costs
    what every start cost before."""

    def __init__(self) -> None:
        self.fd = -1
        self.failed = False
        # the host's mount table signals changes as POLLPRI on mountinfo; an epoll of its own
        # turns that into "readable" for the helper's selector
        self.changes = select.epoll()
        self._mountinfo = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
        self.changes.register(self._mountinfo, select.EPOLLPRI)

    def fileno(self) -> int:
        return self.changes.fileno()

    def changed(self) -> None:
        """The selector saw a change (and in seeing it, consumed it): drop the template."""
        self.changes.poll(0)
        self.drop()

    def drop(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def get(self) -> int:
        """The template's fd, made if needed; -1 where it cannot be made (the child copies
        the host's namespace then, as before)."""
        if self.changes.poll(0):
            self.drop()
        if self.fd < 0 and not self.failed:
            try:
                self.fd = _vspawn.mount_template()
            except OSError:
                self.failed = True
        return self.fd


class Helper:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pid = os.getpid()
        self.sel = selectors.DefaultSelector()
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC) \
            if os.path.exists("/proc/self/ns/pid") else -1
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.children: set[int] = set()
        # exec pipe -> id, pid, pidfd, start time
        self.confirming: dict[int, tuple[int, int, int, int | None]] = {}
        self.early_exits: dict[int, int] = {}                  # pid -> status, before reply
        self.stubs: dict[int, tuple[socket.socket, int, int, int | None]] = {}  # pid -> sock, err_r, pidfd, start
        self.stub_target = 0
        self.last_request = 0.0
        self.sel.register(sock, selectors.EVENT_READ, "sock")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.mounts: MountTemplate | None = None
        if _vspawn is not None and os.geteuid() == 0 and os.path.exists("/proc/self/mountinfo"):
            self.mounts = MountTemplate()
            self.sel.register(self.mounts, selectors.EVENT_READ, "mounts")

    def send(self, msg: dict, fds: list[int] = ()) -> None:
        data = json.dumps(msg).encode()
        if fds:
            self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            self.sock.send(data)

    def run(self) -> None:
        while True:
            timeout = None
            if len(self.stubs) < self.stub_target:
                timeout = max(0.0, self.last_request + STUB_QUIET - time.monotonic())
                if timeout == 0.0:
                    self.fork_stub()     # one per turn: a request that comes waits for one fork at most
                    continue
            # a mount change first: a request that came with it must not use the old template
            for key, _ in sorted(self.sel.select(timeout), key=lambda e: e[0].data != "mounts"):
                if key.data == "sock":
                    self.on_request()
                elif key.data == "mounts":
                    self.mounts.changed()
                elif key.data == "wake":
                    try:
                        while os.read(self.wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    self.reap()
                else:
                    self.on_exec_result(key.fd)

    def on_request(self) -> None:
        msg, fds, _, _ = socket.recv_fds(self.sock, MAX_MSG, 16, socket.MSG_CMSG_CLOEXEC)
        if not msg:
            for fd in fds:
                os.close(fd)
            raise SystemExit    # the agent closed the socket: its containers go with us
        try:
            try:
                req = json.loads(msg)
            except ValueError:     # never sent by the agent; not worth dying for
                return
            if "pool" in req:
                self.set_pool(int(req["pool"]))
                return
            self.last_request = time.monotonic()
            self.spawn(req, fds, msg)
        finally:
            for fd in fds:
                os.close(fd)

    def spawn(self, req: dict, fds: list[int], msg: bytes) -> None:
        newpid = bool(req.get("newpid")) and self.own_pidns >= 0
        if _vspawn is not None:
            self.vspawn(req, fds, newpid)
            return
        while newpid and self.stubs:
            pid, (sock, err_r, pidfd, start_time) = self.stubs.popitem()
            try:
                socket.send_fds(sock, [msg], fds)
            except OSError:     # it died meanwhile: reaped as a child we no longer track
                for fd in (err_r, pidfd):
                    if fd >= 0:
                        os.close(fd)
                continue
            finally:
                sock.close()
            self.children.add(pid)
            self.confirming[err_r] = (req["id"], pid, pidfd, start_time)
            self.sel.register(err_r, selectors.EVENT_READ, "exec")
            return
        err_r, err_w = os.pipe()     # close-on-exec: EOF means the exec happened
        try:
            if newpid:
                syscalls.unshare(syscalls.CLONE_NEWPID)    # for the next child only
            pid = os.fork()
            if pid == 0:
                _child(req, fds, err_w, self.pid)
        except OSError as e:
            os.close(err_r)
            os.close(err_w)
            self.send({"id": req["id"], "error": f"fork: {e}"})
            return
        finally:
            if newpid and os.getpid() == self.pid:
                syscalls.setns(self.own_pidns, syscalls.CLONE_NEWPID)
        os.close(err_w)
        self.children.add(pid)
        pidfd = _pidfd(pid)
        # read here, not by the agent: every file it opens costs its event loop a GIL handoff
        self.confirming[err_r] = (req["id"], pid, pidfd, process_start_time(pid))
        self.sel.register(err_r, selectors.EVENT_READ, "exec")

    def vspawn(self, req: dict, fds: list[int], newpid: bool) -> None:
        """The child shares our memory until it execs (_vspawn.c): it is done when this
        returns, so its answer is sent at once."""
        err_r, err_w = os.pipe()
        netns = -1
        pid = 0
        try:
            apply_steps(req.get("cgroup_steps") or [])
            if req.get("netns"):
                netns = os.open(req["netns"], os.O_RDONLY | os.O_CLOEXEC)
            env = req["env"]
            paths = _exec_paths(req["argv"][0], env)
            # made (if need be) before the PID namespace changes: its child must not be the
            # next namespace's PID 1
            template = self.mounts.get() if self.mounts is not None and req.get("newns") else -1
            if newpid:
                syscalls.unshare(syscalls.CLONE_NEWPID)    # for this child only
            try:
                pid = _vspawn.spawn(
                    [os.fsencode(a) for a in req["argv"]],
                    [os.fsencode(f"{k}={v}") for k, v in env.items()],
                    [os.fsencode(p) for p in paths], os.fsencode(req.get("cwd") or "/"),
                    self.devnull, fds[req["stdout"]], fds[req["stderr"]], err_w,
                    [os.fsencode(p) for p in req.get("cgroups") or ()], bool(req.get("setsid")),
                    netns, bool(req.get("newns")),
                    os.fsencode(req["hostname"][:64]) if req.get("hostname") else None,
                    os.fsencode(req["hosts"]) if req.get("hosts") else None,
                    newpid,     # PID 1 of a new PID namespace: a /proc of its own
                    [(os.fsencode(src), os.fsencode(dst), bool(ro), bool(is_dir))
                     for src, dst, ro, is_dir in req.get("mounts") or ()],
                    0 if newpid else self.pid, template)
            finally:
                if newpid:
                    syscalls.setns(self.own_pidns, syscalls.CLONE_NEWPID)
        except (OSError, ValueError, TypeError, KeyError, IndexError) as e:
            self.send({"id": req["id"], "error": _error_text(e)})
            return
        finally:
            os.close(err_w)
            if netns >= 0:
                os.close(netns)
            if not pid:
                os.close(err_r)
        error = _read_to_end(err_r)     # at EOF already: the child exec'd or exited
        if error:
            os.waitpid(pid, 0)
            self.send({"id": req["id"], "error": error.decode(errors="replace")})
            return
        self.children.add(pid)
        pidfd = _pidfd(pid)
        self.send({"id": req["id"], "pid": pid, "start_time": process_start_time(pid)},
                  [pidfd] if pidfd >= 0 else [])
        if pidfd >= 0:
            os.close(pidfd)

    def fork_stub(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        err_r, err_w = os.pipe()
        try:
            syscalls.unshare(syscalls.CLONE_NEWPID)
            try:
                pid = os.fork()
                if pid == 0:
                    ours.close()
                    _stub(theirs, err_w, self.pid)
            finally:
                if os.getpid() == self.pid:
                    syscalls.setns(self.own_pidns, syscalls.CLONE_NEWPID)
        except OSError:
            for fd in (err_r, err_w):
                os.close(fd)
            ours.close()
            theirs.close()
            self.stub_target = 0     # no stubs then: every start forks, as without a pool
            return
        theirs.close()
        os.close(err_w)
        pidfd = _pidfd(pid)
        self.stubs[pid] = (ours, err_r, pidfd, process_start_time(pid))

    def set_pool(self, n: int) -> None:
        # with _vspawn a start costs less than a stub would save
        self.stub_target = max(0, n) if self.own_pidns >= 0 and syscalls.available and _vspawn is None else 0
        while len(self.stubs) > self.stub_target:
            _, (sock, err_r, pidfd, _) = self.stubs.popitem()
            sock.close()       # EOF: the stub exits, and is reaped as any child
            for fd in (err_r, pidfd):
                if fd >= 0:
                    os.close(fd)

    def on_exec_result(self, err_r: int) -> None:
        req_id, pid, pidfd, start_time = self.confirming.pop(err_r)
        self.sel.unregister(err_r)
        error = _read_to_end(err_r)
        if error:
            self.children.discard(pid)
            if pid not in self.early_exits:
                os.waitpid(pid, 0)
            self.early_exits.pop(pid, None)
            self.send({"id": req_id, "error": error.decode(errors="replace")})
        else:
            self.send({"id": req_id, "pid": pid, "start_time": start_time}, [pidfd] if pidfd >= 0 else [])
            if pid in self.early_exits:
                self.send({"exit": pid, "status": self.early_exits.pop(pid)})
        if pidfd >= 0:
            os.close(pidfd)

    def reap(self) -> None:
        waiting = {p for _, p, _, _ in self.confirming.values()}
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in waiting:
                self.early_exits[pid] = status    # reported after the spawn reply
            elif pid in self.children:
                self.children.discard(pid)
                self.send({"exit": pid, "status": status})
            elif pid in self.stubs:     # an idle stub died (killed by someone): one less
                sock, err_r, pidfd, _ = self.stubs.pop(pid)
                sock.close()
                for fd in (err_r, pidfd):
                    if fd >= 0:
                        os.close(fd)


def main() -> None:
    global _vspawn
    fd, agent = int(sys.argv[1]), int(sys.argv[2])
    if "--fork" in sys.argv[3:]:
        _vspawn = None
    os.set_inheritable(fd, False)
    helper = Helper(socket.socket(fileno=fd))

    def kill_everything(*_: object) -> None:
        # each container is its own process group (setsid): this also reaches what a
        # container forked, which PR_SET_PDEATHSIG alone would leave running without a
        # PID namespace
        for pid in [*helper.children, *helper.stubs, *(p for _, p, _, _ in helper.confirming.values())]:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        os._exit(0)

    # the agent's death arrives as SIGTERM, so that we can take the containers with us
    signal.signal(signal.SIGTERM, kill_everything)
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # only the agent decides when we stop
    if syscalls.available:
        syscalls.set_pdeathsig(signal.SIGTERM)
    if os.getppid() != agent:
        kill_everything()
    try:
        helper.run()
    except (BrokenPipeError, ConnectionResetError, KeyboardInterrupt, SystemExit):
        pass
    kill_everything()


if __name__ == "__main__":
    main()
