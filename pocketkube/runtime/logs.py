"""Container logs in the CRI format the kubelet reads, and the reader behind `kubectl logs`.

Each line a container prints is stored as `<RFC3339Nano UTC timestamp> <stream> <tag> <text>`
(tag F for a full line, P for a chunk of a line longer than 16 KiB), the format containerd
and CRI-O write, so `--timestamps`, `--since` and `--tail` work exactly as on a real node.
Timestamps are always written with nine fractional digits: fixed-width UTC stamps compare
correctly as plain bytes, which makes `--since` a byte comparison instead of a date parse.

A log file is rotated when it reaches `max_bytes` (10 MiB): it becomes `<path>.1` (replacing
the previous one) and a new file starts; readers look at both.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Union

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_LINE = 16 * 1024     # containerd's default max_container_log_line_size
STDOUT, STDERR = b"stdout", b"stderr"

_sec_cache: tuple[int, bytes] = (-1, b"")


def format_ts(ns: int) -> bytes:
    """RFC3339 with nanoseconds, UTC: b"2024-05-01T12:00:00.123456789Z"."""
    global _sec_cache
    sec, frac = divmod(ns, 1_000_000_000)
    cached_sec, prefix = _sec_cache
    if cached_sec != sec:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()
        _sec_cache = (sec, prefix)
    return b"%s.%09dZ" % (prefix, frac)


def make_dirs(path: str) -> None:
    """os.makedirs(path, exist_ok=True) in fewer syscalls for the usual case, a new pod's log
    directory under an existing pods directory: mkdir, fall back to the parent on ENOENT
    (makedirs stats each level first)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path:
            raise
        make_dirs(parent)
        make_dirs(path)


class CRILogWriter:
    """Turns a container's raw stdout/stderr bytes into CRI log records in one file."""

    def __init__(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES, max_line: int = MAX_LINE) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_line = max_line
        # The file (and its directory) is made at the first output, not at start: making an
        # inode can take a tenth of a millisecond or more on the event loop's thread, on the
        # way to Running, and many containers print nothing. Readers treat a missing file as
        # an empty log.
        self._fd = -1
        self._size = 0
        self._closed = False
        self._pending: dict[bytes, bytes] = {}

    def write(self, stream: bytes, data: bytes) -> None:
        """Record what the container wrote; an unterminated last line waits for its end."""
        buf = self._pending.pop(stream, b"") + data
        head = format_ts(time.time_ns()) + b" " + stream + b" "
        lines = buf.split(b"\n")
        rest = lines.pop()
        out = []
        for line in lines:
            while len(line) > self.max_line:
                out.append(head + b"P " + line[:self.max_line] + b"\n")
                line = line[self.max_line:]
            out.append(head + b"F " + line + b"\n")
        while len(rest) >= self.max_line:
            out.append(head + b"P " + rest[:self.max_line] + b"\n")
            rest = rest[self.max_line:]
        if rest:
            self._pending[stream] = rest
        if out:
            self._emit(b"".join(out))

    def flush_partial(self, stream: bytes) -> None:
        """At end of stream, a last line without newline is still a full line (as containerd)."""
        rest = self._pending.pop(stream, b"")
        if rest:
            self._emit(format_ts(time.time_ns()) + b" " + stream + b" F " + rest + b"\n")

    def close(self) -> None:
        if self._closed:
            return
        try:
            for stream in list(self._pending):
                self.flush_partial(stream)
        except OSError:
            pass    # as a write that failed before it: the container's end still counts
        self._closed = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self) -> None:
        make_dirs(os.path.dirname(os.path.abspath(self.path)))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def _emit(self, blob: bytes) -> None:
        if self._fd < 0:
            if self._closed:
                return
            self._open()
        if self._size and self._size + len(blob) > self.max_bytes:
            self._rotate()
        view = memoryview(blob)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(blob)

    def _rotate(self) -> None:
        os.close(self._fd)
        os.replace(self.path, self.path + ".1")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = 0


# -- reading --------------------------------------------------------------------------------

Record = tuple[bytes, bytes, bytes, bytes]     # timestamp, stream, tag, text


def _parse(line: bytes) -> Record | None:
    parts = line.split(b" ", 3)
    if len(parts) == 4 and parts[2] in (b"F", b"P"):
        return parts[0], parts[1], parts[2], parts[3]
    if len(parts) >= 3:          # the pre-tag CRI format
        return parts[0], parts[1], b"F", b" ".join(parts[2:])
    return None


class _Source:
    """A log file's complete records (up to the last newline), memory-mapped."""

    def __init__(self, path: str, end: int | None = None) -> None:
        self.buf: Union[mmap.mmap, bytes] = b""
        self.end = 0
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size if end is None else end
                if size:
                    self.buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                    self.end = self.buf.rfind(b"\n", 0, min(size, len(self.buf))) + 1
        except (FileNotFoundError, ValueError):
            pass

    def close(self) -> None:
        if isinstance(self.buf, mmap.mmap):
            self.buf.close()

    def forward(self) -> list[bytes]:
        return self.buf[:self.end].split(b"\n")[:-1] if self.end else []

    def reverse(self):
        pos = self.end
        while pos > 0:
            start = self.buf.rfind(b"\n", 0, pos - 1) + 1
            yield self.buf[start:pos - 1]
            pos = start


def _select(sources: list[_Source], since: bytes | None, tail: int | None) -> list[Record]:
    if tail is None:
        out = []
        for src in sources:
            for line in src.forward():
                rec = _parse(line)
                if rec and (since is None or rec[0] >= since):
                    out.append(rec)
        return out
    picked: list[Record] = []
    lines = 0
    for src in reversed(sources):
        for line in src.reverse():
            rec = _parse(line)
            if rec is None:
                continue
            if since is not None and rec[0] < since:
                return picked[::-1]
            # walking backwards, an F record starts a line; P chunks before it belong to it
            if rec[2] == b"F" or lines == 0:
                if lines == tail:
                    return picked[::-1]
                lines += 1
            picked.append(rec)
    return picked[::-1]


class _Formatter:
    def __init__(self, timestamps: bool, limit_bytes: int | None) -> None:
        self.timestamps = timestamps
        self.remaining = limit_bytes
        self._mid_line: set[bytes] = set()

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def render(self, records: list[Record]) -> bytes:
        parts = []
        for ts, stream, tag, text in records:
            if self.timestamps and stream not in self._mid_line:
                parts.append(ts + b" ")
            parts.append(text)
            if tag == b"F":
                parts.append(b"\n")
                self._mid_line.discard(stream)
            else:
                self._mid_line.add(stream)
        out = b"".join(parts)
        if self.remaining is not None:
            out = out[:max(0, self.remaining)]
            self.remaining -= len(out)
        return out


def _since_bytes(since: float | None) -> bytes | None:
    return None if since is None else format_ts(int(since * 1_000_000_000))


def read_log(path: str, since: float | None = None, tail: int | None = None,
             timestamps: bool = False, limit_bytes: int | None = None) -> bytes:
    """What `kubectl logs` prints: lines from `since` (unix seconds) on, the last `tail` of
    them, each prefixed with its RFC3339Nano timestamp if asked, cut at `limit_bytes`."""
    if tail is not None and tail < 0:
        tail = None
    sources = [_Source(path + ".1"), _Source(path)]
    try:
        return _Formatter(timestamps, limit_bytes).render(_select(sources, _since_bytes(since), tail))
    finally:
        for s in sources:
            s.close()


StopCondition = Union[Callable[[], bool], asyncio.Event, None]


def _stopped(stop: StopCondition) -> bool:
    if stop is None:
        return False
    return stop.is_set() if isinstance(stop, asyncio.Event) else bool(stop())


async def follow_log(path: str, since: float | None = None, tail: int | None = None,
                     timestamps: bool = False, limit_bytes: int | None = None, *,
                     poll_interval: float = 0.1, stop: StopCondition = None) -> AsyncIterator[bytes]:
    """`kubectl logs -f`: yield what read_log would return, then new output as it is written,
    across rotations, until `stop` (a callable or an asyncio.Event; e.g. "the container has
    exited") holds and everything written has been yielded, or `limit_bytes` is reached.
    Without `stop` it follows until the consumer stops iterating."""
    if tail is not None and tail < 0:
        tail = None
    since_b = _since_bytes(since)
    fmt = _Formatter(timestamps, limit_bytes)
    while True:
        try:
            f = open(path, "rb")
            break
        except FileNotFoundError:
            if _stopped(stop):
                return
            await asyncio.sleep(poll_interval)
    try:
        st = os.fstat(f.fileno())
        ino, size = st.st_ino, st.st_size
        sources = [_Source(path + ".1"), _Source(path, end=size)]
        try:
            first = fmt.render(_select(sources, since_b, tail))
            offset = sources[1].end if sources[1].end else 0
        finally:
            for s in sources:
                s.close()
        if first:
            yield first
        if fmt.exhausted:
            return
        f.seek(offset)
        pending = b""
        while True:
            # checked before reading: whatever was written before `stop` held is still read
            done = _stopped(stop)
            chunk = f.read(1 << 16)
            if chunk:
                pending += chunk
                cut = pending.rfind(b"\n") + 1
                if cut:
                    lines, pending = pending[:cut], pending[cut:]
                    recs = [r for r in map(_parse, lines.split(b"\n")[:-1])
                            if r and (since_b is None or r[0] >= since_b)]
                    out = fmt.render(recs)
                    if out:
                        yield out
                    if fmt.exhausted:
                        return
                continue
            try:
                rotated = os.stat(path).st_ino != ino
            except FileNotFoundError:
                rotated = False    # between the writer's rename and its new file
            if rotated:
                f.close()
                f = open(path, "rb")
                ino, pending = os.fstat(f.fileno()).st_ino, b""
                continue
            if done:
                return
            await asyncio.sleep(poll_interval)
    finally:
        f.close()
