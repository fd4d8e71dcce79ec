"""Starting container processes without forking the agent: the client side of spawnd.py.

`HelperSpawner` (Linux) hands each request to the spawn helper over a socket and gets back
the PID, a pidfd (to signal it without PID-reuse races) and later its exit code; no thread
and no fork in the agent. `PopenSpawner` is the portable fallback for systems without the
helper (macOS): a posix_spawn per process and exit polling.

How the helper is started and talked to is shared with the network helper (helper.py).
"""

from __future__ import annotations

import array
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

from .helper import HelperProcess, encode

SPAWND = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spawnd.py")
OnExit = Callable[[int], None]     # called with the exit code (-N: killed by signal N)
MAX_REQUEST = 1 << 20              # spawnd.MAX_MSG: one packet holds one request


class SpawnError(Exception):
    """The process could not be started; the message says why (set-up step or exec)."""


class Spawned(NamedTuple):
    pid: int
    pidfd: int                  # -1 where pidfds are unavailable
    exec_at: float              # wall-clock time of the exec
    start_time: int | None      # the kernel's start time of the process, when the helper read it


class HelperSpawner(HelperProcess):
    script = SPAWND

    def __init__(self, fork: bool = False) -> None:
        """fork: the helper forks and sets up in Python even where _vspawn is built (the
        path it takes without a C compiler, kept for tests)."""
        super().__init__(*(["--fork"] if fork else []))
        self._next = 0
        self._pending: dict[int, tuple[asyncio.Future, OnExit]] = {}
        self._exits: dict[int, OnExit] = {}
        self._pool = 0

    def _ensure(self) -> None:
        fresh = self._sock is None
        super()._ensure()
        if fresh and self._pool:
            self._send({"pool": self._pool})

    def set_pool(self, n: int) -> None:
        """Have the helper keep n isolated children forked ahead of demand (see spawnd.py);
        starts the helper now when n > 0, so they are ready for the first pods. Call it on
        the event loop's thread."""
        self._pool = max(0, n)
        if self._sock is not None:
            self._send({"pool": self._pool})
        elif self._pool:
            self._ensure()

    async def spawn(self, req: dict, fds: list[int], on_exit: OnExit) -> Spawned:
        """Start a process. `fds` may be closed once this returns; `on_exit` may run before
        this returns."""
        self._ensure()
        self._next += 1
        req = dict(req, id=self._next)
        data = encode(req)
        if len(data) > MAX_REQUEST:
            raise SpawnError(f"the container's command line and environment take {len(data)} bytes; "
                             f"at most {MAX_REQUEST} are supported")
        fut = self._loop.create_future()
        self._pending[self._next] = (fut, on_exit)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        while True:
            try:
                self._sock.sendmsg([data], anc)
                break
            except BlockingIOError:
                writable = self._loop.create_future()
                self._loop.add_writer(self._sock.fileno(), writable.set_result, None)
                try:
                    await writable
                finally:
                    self._loop.remove_writer(self._sock.fileno())
            except OSError as e:
                self._pending.pop(self._next, None)
                self._helper_died()
                raise SpawnError(f"the spawn helper is gone: {e}") from None
        return await fut

    def _on_message(self, m: dict, fds: list[int]) -> None:
        if "exit" in m:
            cb = self._exits.pop(m["exit"], None)
            if cb is not None:
                cb(os.waitstatus_to_exitcode(m["status"]))
            return
        fut, on_exit = self._pending.pop(m["id"])
        if "error" in m:
            fut.set_exception(SpawnError(m["error"]))
            return
        pid, pidfd = m["pid"], fds[0] if fds else -1
        if fut.cancelled():     # nobody will track it: do not let it run unseen
            _kill(pid, pidfd)
            if pidfd >= 0:
                os.close(pidfd)
            return
        self._exits[pid] = on_exit
        fut.set_result(Spawned(pid, pidfd, time.time(), m.get("start_time")))

    def _on_helper_gone(self) -> None:
        # on EOF the helper killed every container's process group before exiting
        pending, self._pending = self._pending, {}
        for fut, _ in pending.values():
            if not fut.done():
                fut.set_exception(SpawnError("the spawn helper exited"))
        exits, self._exits = self._exits, {}
        for cb in exits.values():      # PR_SET_PDEATHSIG took them with the helper
            cb(-signal.SIGKILL)


class PopenSpawner:
    """Fallback without the helper: plain host processes, exits found by polling."""

    def __init__(self) -> None:
        self._procs: dict[int, tuple[subprocess.Popen, OnExit]] = {}
        self._polling = False

    @property
    def helper_pid(self) -> int | None:
        return None

    async def spawn(self, req: dict, fds: list[int], on_exit: OnExit) -> Spawned:
        try:
            p = subprocess.Popen(req["argv"], stdin=subprocess.DEVNULL, stdout=fds[req["stdout"]],
                                 stderr=fds[req["stderr"]], env=req["env"], cwd=req.get("cwd") or "/",
                                 start_new_session=bool(req.get("setsid")), close_fds=True)
        except (OSError, subprocess.SubprocessError) as e:
            raise SpawnError(f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}") from None
        self._procs[p.pid] = (p, on_exit)
        if not self._polling:
            self._polling = True
            asyncio.get_running_loop().call_later(0.05, self._poll)
        return Spawned(p.pid, -1, time.time(), None)

    def _poll(self) -> None:
        for pid, (p, cb) in list(self._procs.items()):
            if p.poll() is not None:
                del self._procs[pid]
                cb(p.returncode)
        if self._procs:
            asyncio.get_running_loop().call_later(0.05, self._poll)
        else:
            self._polling = False

    def set_pool(self, n: int) -> None:
        """Nothing to fork ahead: containers here are plain processes."""

    def close(self) -> None:
        for p, _ in self._procs.values():
            _kill(p.pid, -1)


def _kill(pid: int, pidfd: int, sig: int = signal.SIGKILL) -> None:
    try:
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def send_signal(pid: int, pidfd: int, sig: int) -> None:
    """Signal a process through its pidfd when we have one (immune to PID reuse)."""
    _kill(pid, pidfd, sig)


def default_spawner() -> HelperSpawner | PopenSpawner:
    return HelperSpawner() if sys.platform.startswith("linux") else PopenSpawner()
