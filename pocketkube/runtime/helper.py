"""The agent's end of a helper process (spawnd.py, netd.py): one socket, JSON packets, fds.

Work that must not run in the agent's process (forking container processes, building pod
networks) goes to a small single-threaded helper. Each helper is started the same way and
talked to the same way: a SOCK_SEQPACKET socket pair (one JSON message per packet, file
descriptors passed with SCM_RIGHTS), the helper in its own session (a Ctrl-C meant for the
agent does not reach it) and dying with the agent (PR_SET_PDEATHSIG, set by the helper). The
answers are read on the event loop; a subclass handles each message and what to do when the
helper is gone.

A helper is started from the event loop's thread, on first use and again after it died:
PR_SET_PDEATHSIG acts on the thread that forked, so run the runtime on a loop whose thread
lives as long as the agent.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import orjson

MAX_FDS = 4      # file descriptors a helper passes with one message


def encode(msg: dict) -> bytes:
    """One message as a helper reads it. The helpers decode with the standard json module;
    orjson writes the same JSON about 15 times faster, on the event loop, once per pod."""
    return orjson.dumps(msg)


class HelperProcess:
    """Subclasses implement `_on_message(msg, fds)` and `_on_helper_gone()`."""

    script: str
    wait_on_exit = 2.0    # seconds the helper gets to finish up after EOF before SIGKILL

    def __init__(self, *args: str) -> None:
        self._args = list(args)
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _ensure(self) -> None:
        if self._sock is not None:
            return
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (ours, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", self.script, str(theirs.fileno()), str(os.getpid()), *self._args],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        ours.setblocking(False)
        loop.add_reader(ours.fileno(), self._on_readable)
        self._sock, self._loop = ours, loop

    def _send(self, msg: dict) -> None:
        """One message without file descriptors (a few dozen bytes: the socket never blocks)."""
        self._sock.send(encode(msg))

    @property
    def helper_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _on_readable(self) -> None:
        while self._sock is not None:
            try:
                msg, fds, _, _ = socket.recv_fds(self._sock, 1 << 16, MAX_FDS, socket.MSG_CMSG_CLOEXEC)
            except BlockingIOError:
                return
            except OSError:
                msg, fds = b"", []
            if not msg:
                self._helper_died()
                return
            self._on_message(orjson.loads(msg), fds)

    def _on_message(self, msg: dict, fds: list[int]) -> None:
        raise NotImplementedError

    def _on_helper_gone(self) -> None:
        raise NotImplementedError

    def _helper_died(self) -> None:
        if self._sock is None:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        if self._proc is not None:
            try:    # on EOF it finishes what it must, then exits
                self._proc.wait(timeout=self.wait_on_exit)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        self._on_helper_gone()

    def close(self) -> None:
        """Stop the helper."""
        self._helper_died()
