"""SQLite store: WAL, durable group commit in a writer process, and an in-memory watch fan-out.

Why a writer process: a durable commit waits for fsync, and doing that on the event loop would
stall every watch and request behind the disk; doing it on a thread makes SQLite wait for the
GIL (see sqlwriter.py). Writes made while the loop runs its ready callbacks go together as one
batch: one transaction, one commit (synchronous=FULL: an acknowledged write survives `kill -9`
and power loss alike). The loop checks the writes of a batch against the current values and
assigns their revisions as it sends it, so it needs no answer from SQLite but "committed". A few
batches can be with the writer: while it commits one, the loop checks the next against the
earlier ones' rows and sends it, so neither waits for the other. When the writer answers, the loop
publishes the batch's events in revision order and resolves the callers; if a batch fails, so
do those checked after it. A writer that dies is replaced by the next batch; which of its
batches were committed is read back from the file.

Gets and lists read the loop thread's copy of the current values (sorted by key), not SQLite:
SQLite already holds what the writer committed before the loop has published it, and a list
that showed a write which a following get did not would make a reader's view go back in time.
Old watch events are read back on the loop's own connection (WAL: no waiting for the writer).

The change log (`log` table) keeps every write, so a watch can resume from any revision after
the compaction point; recent events are also kept in memory so the common case (a watch a few
events behind) never touches disk. An event's previous value is the key's row at its previous
revision, which the log already holds: a row names it (`prev_rev`) instead of storing the bytes
again, and a deletion's row stores no value at all (its value is that previous one).
"""

from __future__ import annotations

import asyncio
import collections
import marshal
import os
import socket
import subprocess
import sys
import time
from typing import AsyncIterator, Callable

from sortedcontainers import SortedDict

from . import sqlwriter
from . import (DELETE, KV, PUT, Compacted, Event, KeyExists, KeyNotFound, RevisionMismatch,
               Store, StoreError, Watch)

# `live` holds no values: a key's value is the change-log row written at its mod_rev, which
# compaction keeps. Values stored once and only appended: a row of `live` is ~60 bytes, so an
# update rewrites one small B-tree cell instead of a ~2 KB one with its overflow pages (the
# writer's cost per write fell from ~100 us to ~40 us, and with it the commit's latency).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS live (
    key TEXT PRIMARY KEY, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL, value BLOB NOT NULL,
    prev BLOB, create_rev INTEGER NOT NULL, ts REAL NOT NULL, prev_rev INTEGER
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
"""
# Rows written before `prev_rev` carry their previous value (`prev`) and a deletion's value
# themselves; both kinds of rows are read alike.
_ADD_PREV_REV = "ALTER TABLE log ADD COLUMN prev_rev INTEGER"
# Databases written before `live` kept each value in a `kv` table. The values the log no longer
# has (compaction passed their revision, so no watch reads them as events) go back in at their
# own revision; the log's other rows stay as they are.
_MIGRATE_KV = """
BEGIN IMMEDIATE;
INSERT OR IGNORE INTO log (rev, key, type, value, create_rev, ts) SELECT mod_rev, key, 0, value, create_rev, 0 FROM kv;
INSERT OR REPLACE INTO live SELECT key, create_rev, mod_rev FROM kv;
DROP TABLE kv;
COMMIT;
"""

_MAX_BATCH = 2000
# Batches with the writer at once: while it commits one, the next are checked and sent, so
# neither the loop nor the writer waits for the other. Three rather than two: in a rolling
# update of 10,000 pods the loop waited for the writer 0.3 s instead of 0.5 s, for batches of
# 57 writes instead of 65 (each batch wakes every watcher once; more in flight, smaller ones).
_MAX_INFLIGHT = 3
_AFTER_FAILURE = "an earlier write failed"
_WRITER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sqlwriter.py")
# Bytes of recent events kept in memory for watches that resume slightly behind (older ones
# are read back from the change log): bounded by size, since objects range from 200 B to 1 MB.
_RING_BYTES = 24 * 2**20
# A watcher that falls this far behind is dropped (its client re-lists), as the apiserver does.
_WATCH_BUFFER = 200000


def _prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


class _Op:
    __slots__ = ("kind", "key", "value", "expected", "future")

    def __init__(self, kind: str, key: str, value: bytes | None, expected: int | None,
                 future: asyncio.Future):
        self.kind = kind
        self.key = key
        self.value = value
        self.expected = expected
        self.future = future


class _Batch:
    """Writes checked together: their outcomes, and what the writer commits for them."""
    __slots__ = ("seq", "batch", "results", "rev", "compact", "staged")

    def __init__(self, seq: int, batch: list[_Op], results: list, rev: int, compact: int | None,
                 staged: dict):
        self.seq = seq
        self.batch = batch
        self.results = results
        self.rev = rev
        self.compact = compact
        self.staged = staged

    @property
    def sent(self) -> bool:
        """Whether it goes to the writer: rows or a compaction (a batch whose writes all failed
        their checks has nothing to send)."""
        return bool(self.staged) or self.compact is not None


class _SqliteWatch(Watch):
    def __init__(self, store: "SqliteStore", prefix: str, after: int):
        self._store = store
        self.prefix = prefix
        self.last = after
        self._queue: collections.deque[Event] = collections.deque()
        self._wakeup = asyncio.Event()
        self._error: StoreError | None = None
        self.closed = False

    def push(self, ev: Event) -> None:
        if ev.revision <= self.last or self.closed:
            return
        self.last = ev.revision
        if len(self._queue) >= _WATCH_BUFFER:
            self._error = StoreError("watcher fell too far behind")
            self.close()
        else:
            self._queue.append(ev)
        self._wakeup.set()

    async def next(self, timeout: float | None = None) -> Event | None:
        while not self._queue:
            if self._error is not None:
                raise self._error
            if self.closed:
                return None
            self._wakeup.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the wait completes, and the watching task would never stop.
            try:
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                return None
        return self._queue.popleft()

    def drain(self) -> list[Event]:
        """Everything already queued, without waiting (lets callers batch their writes)."""
        out = list(self._queue)
        self._queue.clear()
        return out

    async def __aiter__(self) -> AsyncIterator[Event]:  # type: ignore[override]
        while True:
            ev = await self.next()
            if ev is None:
                return
            yield ev

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._store._watchers.discard(self)
            self._wakeup.set()


class SqliteStore(Store):
    def __init__(self, path: str, compaction_window: float = 300.0,
                 clock: Callable[[], float] = time.time):
        self.path = path
        self.compaction_window = compaction_window
        self._clock = clock
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._loop = asyncio.get_running_loop()
        self._r = sqlwriter.connect(path)
        self._r.executescript(_SCHEMA)
        if "prev_rev" not in {row[1] for row in self._r.execute("PRAGMA table_info(log)")}:
            self._r.execute(_ADD_PREV_REV)
        if self._r.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='kv'").fetchone():
            self._r.executescript(_MIGRATE_KV)
        self._rev, self._compact = sqlwriter.committed(self._r)
        self._ring: collections.deque[Event] = collections.deque()
        self._ring_bytes = 0
        # Current values as of `self._rev`: gets, lists and the checks of new writes need no
        # SQLite read.
        self._current: SortedDict = SortedDict(
            (k, (v, c, m)) for k, v, c, m in self._r.execute(
                "SELECT live.key, log.value, live.create_rev, mod_rev FROM live JOIN log ON log.rev = mod_rev"))
        self._watchers: set[_SqliteWatch] = set()
        self._closed = False
        # Group commit: writes wait in `_pending` while batches are with the writer process.
        self._pending: list[_Op] = []
        self._flush_due = False
        self._inflight: collections.deque[_Batch] = collections.deque()
        # Rows of the batches with the writer, newest per key (None: deleted): the next batch
        # is checked against them, not against what is published.
        self._unpublished: dict[str, tuple[int, tuple[bytes, int, int] | None]] = {}
        self._assigned = self._rev      # the last revision given to a write sent to the writer
        self._seq = 0                   # batches numbered in order
        self._doomed = 0                # batches up to this number fail (one before them did)
        self._drained: asyncio.Future | None = None
        self._writer: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._inbuf = bytearray()
        self._out = memoryview(b"")
        self._compactor = self._loop.create_task(self._compact_periodically())

    @classmethod
    async def open(cls, path: str, **kw) -> "SqliteStore":
        return cls(path, **kw)

    # ---- reads (loop thread) -------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._rev

    @property
    def compacted_revision(self) -> int:
        return self._compact

    async def get(self, key: str) -> KV | None:
        row = self._current.get(key)
        if row is None:
            return None
        return KV(key, row[0], row[1], row[2])

    async def list(self, prefix: str, start_after: str = "", limit: int = 0) -> tuple[list[KV], int, bool]:
        lo, hi = self._span(prefix, start_after)
        more = bool(limit) and hi - lo > limit
        current = self._current
        out: list[KV] = []
        for k in current.islice(lo, lo + limit if more else hi):
            v, c, m = current[k]
            out.append(KV(k, v, c, m))
        return out, self._rev, more

    async def count(self, prefix: str, start_after: str = "") -> int:
        lo, hi = self._span(prefix, start_after)
        return hi - lo

    def _span(self, prefix: str, start_after: str) -> tuple[int, int]:
        """Positions in key order of the keys under `prefix` (after `start_after` when given)."""
        cur = self._current
        lo = cur.bisect_right(start_after) if start_after and start_after >= prefix else cur.bisect_left(prefix)
        return lo, max(lo, cur.bisect_left(_prefix_end(prefix)))

    # ---- writes ----------------------------------------------------------------------------

    def _submit(self, kind: str, key: str, value: bytes | None, expected: int | None) -> asyncio.Future:
        if self._closed:
            raise StoreError("store is closed")
        fut = self._loop.create_future()
        self._pending.append(_Op(kind, key, value, expected, fut))
        self._flush_soon()
        return fut

    def _flush_soon(self) -> None:
        """Send what is pending once the callbacks ready now have run: the writes they make
        join the same batch. A write alone in its batch would wake every watcher on its own."""
        if not self._flush_due and self._may_send():
            self._flush_due = True
            self._loop.call_soon(self._flush)

    async def create(self, key: str, value: bytes) -> int:
        return await self._submit("create", key, value, None)

    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> int:
        return await self._submit("update", key, value, expected_revision)

    async def delete(self, key: str, expected_revision: int | None = None) -> int:
        return await self._submit("delete", key, None, expected_revision)

    async def compact(self, revision: int) -> None:
        await self._submit("compact", "", None, revision)

    def _may_send(self) -> bool:
        """Room with the writer, and no failed batch still being answered."""
        return len(self._inflight) < _MAX_INFLIGHT and not (self._doomed and self._inflight)

    def _flush(self) -> None:
        """Check the pending ops against the current values and send the rows to the writer;
        ops that all fail their checks are answered in their turn."""
        self._flush_due = False
        while self._pending and self._may_send():
            batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
            base = rev = self._assigned
            now = self._clock()
            results: list = []
            staged: dict[str, tuple[bytes, int, int] | None] = {}
            log: list = []
            compact = None
            for op in batch:
                try:
                    res, prev_rev = self._check(op, rev + 1, staged)
                except StoreError as e:
                    results.append(e)
                    continue
                results.append(res)
                if isinstance(res, Event):
                    rev += 1
                    deleted = res.type == DELETE   # its value is the row at prev_rev
                    log.extend((rev, res.key, 1 if deleted else 0, b"" if deleted else res.value, None,
                                res.create_revision, now, prev_rev))
                else:
                    compact = res if compact is None else max(compact, res)
            self._seq += 1
            entry = _Batch(self._seq, batch, results, rev, compact, staged)
            if not entry.sent and not self._inflight:
                self._finish(batch, results)
                continue
            self._inflight.append(entry)
            if not entry.sent:
                continue   # answered after the batches before it
            for key, row in staged.items():
                self._unpublished[key] = (rev, row)
            self._assigned = rev
            upserts = [x for key, row in staged.items() if row is not None for x in (key, row[1], row[2])]
            deletes = [key for key, row in staged.items() if row is None]
            try:
                self._send(marshal.dumps((base, rev, compact, upserts, deletes, log)))
            except OSError as e:
                self._writer_failed(f"cannot start the store's writer: {e}")
        self._note_drained()

    def _check(self, op: _Op, rev: int, staged: dict[str, tuple[bytes, int, int] | None]) -> tuple:
        """The outcome of one op at revision `rev`, given the rows staged by the batch so far,
        and the revision of the value it replaces (None for a create or a compaction)."""
        if op.kind == "compact":
            return op.expected, None
        if op.key in staged:
            row = staged[op.key]
        else:
            unpublished = self._unpublished.get(op.key)
            row = unpublished[1] if unpublished is not None else self._current.get(op.key)
        if op.kind == "create":
            if row is not None:
                raise KeyExists(op.key)
            staged[op.key] = (op.value, rev, rev)
            return Event(PUT, op.key, op.value, None, rev, rev), None
        if row is None:
            raise KeyNotFound(op.key)
        prev, create_rev, mod_rev = row
        if op.expected is not None and op.expected != mod_rev:
            raise RevisionMismatch(mod_rev)
        if op.kind == "update":
            staged[op.key] = (op.value, create_rev, rev)
            return Event(PUT, op.key, op.value, prev, rev, create_rev), mod_rev
        staged[op.key] = None
        return Event(DELETE, op.key, prev, prev, rev, create_rev), mod_rev

    # ---- the writer process (sqlwriter.py) ------------------------------------------------

    def _send(self, body: bytes) -> None:
        if self._sock is None:
            ours, theirs = socket.socketpair()
            try:
                self._writer = subprocess.Popen(
                    [sys.executable, "-I", "-S", _WRITER, str(theirs.fileno()), self.path],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, start_new_session=True)
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            ours.setblocking(False)
            self._sock = ours
            self._loop.add_reader(ours.fileno(), self._on_readable)
        msg = sqlwriter.HEADER.pack(len(body)) + body
        if self._out:   # the last batch is still being written: this one follows it
            self._out = memoryview(bytes(self._out) + msg)
            return
        self._out = memoryview(msg)
        self._on_writable()

    def _on_writable(self) -> None:
        sock = self._sock
        try:
            while self._out:
                self._out = self._out[sock.send(self._out):]
        except BlockingIOError:
            self._loop.add_writer(sock.fileno(), self._on_writable)
            return
        except OSError:
            self._out = memoryview(b"")   # the writer is gone: its EOF tells the rest
        self._loop.remove_writer(sock.fileno())

    def _on_readable(self) -> None:
        try:
            data = self._sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._writer_gone()
            return
        buf = self._inbuf
        buf += data
        size = sqlwriter.HEADER.size
        while len(buf) >= size:
            end = size + sqlwriter.HEADER.unpack_from(buf)[0]
            if len(buf) < end:
                break
            answer = marshal.loads(buf[size:end])
            del buf[:end]
            self._answered(answer)

    def _answered(self, error: str | None) -> None:
        """The writer's answer for the oldest batch it has (None: committed)."""
        entry = self._inflight.popleft()
        if entry.seq <= self._doomed:
            error = _AFTER_FAILURE
        elif error is not None:
            # Every later batch was checked as if this one had happened: they fail with it (the
            # writer refuses those it has, as they do not follow its last commit).
            self._doomed = self._seq
        self._publish(entry, error)
        while self._inflight and not self._inflight[0].sent:
            entry = self._inflight.popleft()
            self._publish(entry, _AFTER_FAILURE if entry.seq <= self._doomed else None)
        if not self._inflight and self._doomed:
            # All that failed is answered: go on from what is published.
            self._doomed = 0
            self._assigned = self._rev
        if self._pending:
            self._flush_soon()
        self._note_drained()

    def _note_drained(self) -> None:
        if not self._inflight and not self._pending and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _publish(self, entry: "_Batch", error: str | None) -> None:
        for key in entry.staged:
            unpublished = self._unpublished.get(key)
            if unpublished is not None and unpublished[0] == entry.rev:
                del self._unpublished[key]
        results = entry.results
        if error is not None:   # disk full, I/O error: nothing of this batch happened
            err = StoreError(f"storage failure: {error}")
            results = [err for _ in entry.batch]
        self._finish(entry.batch, results)

    def _writer_failed(self, error: str) -> None:
        """No writer could take the batches sent: they all fail."""
        while self._inflight:
            self._answered(error)

    def _writer_gone(self) -> None:
        """The writer exited (killed, or out of memory): a new one starts with the next batch.
        Which of the batches it had were committed is read back from the database."""
        proc = self._stop_writer()
        if proc is not None:
            self._loop.run_in_executor(None, proc.wait)   # reaped, not left a zombie
        if self._inflight:
            rev, compact = sqlwriter.committed(self._r)
            while self._inflight:
                # The oldest is always a sent batch: those with nothing to send are answered
                # with the batch before them.
                entry = self._inflight[0]
                done = rev >= entry.rev and (entry.compact is None or compact >= entry.compact)
                self._answered(None if done else "the store's writer process exited")

    def _stop_writer(self) -> subprocess.Popen | None:
        sock, self._sock = self._sock, None
        proc, self._writer = self._writer, None
        self._inbuf.clear()
        self._out = memoryview(b"")
        if sock is not None:
            self._loop.remove_reader(sock.fileno())
            self._loop.remove_writer(sock.fileno())
            sock.close()
        return proc

    def _finish(self, batch: list[_Op], results: list) -> None:
        """Loop thread: publish events in revision order, then wake the writers' callers."""
        watchers = self._watchers
        for op, res in zip(batch, results):
            if isinstance(res, Event):
                self._rev = res.revision
                if res.type == DELETE:
                    self._current.pop(res.key, None)
                else:
                    self._current[res.key] = (res.value, res.create_revision, res.revision)
                self._remember(res)
                for w in watchers:
                    if res.key.startswith(w.prefix):
                        w.push(res)
            elif op.kind == "compact" and not isinstance(res, Exception):
                self._compact = max(self._compact, res)
        for op, res in zip(batch, results):
            if op.future.done():
                continue
            if isinstance(res, Exception):
                op.future.set_exception(res)
            elif isinstance(res, Event):
                op.future.set_result(res.revision)
            else:
                op.future.set_result(res)

    def _remember(self, ev: Event) -> None:
        ring = self._ring
        ring.append(ev)
        self._ring_bytes += len(ev.value) + (len(ev.prev_value) if ev.prev_value is not None else 0)
        while self._ring_bytes > _RING_BYTES and len(ring) > 1:
            old = ring.popleft()
            self._ring_bytes -= len(old.value) + (len(old.prev_value) if old.prev_value is not None else 0)

    # ---- watch -----------------------------------------------------------------------------

    def watch(self, prefix: str, after_revision: int) -> Watch:
        if after_revision < self._compact:
            raise Compacted(after_revision, self._compact)
        w = _SqliteWatch(self, prefix, after_revision)
        self._watchers.add(w)
        for ev in self._history(prefix, after_revision):
            w.push(ev)
        return w

    def _history(self, prefix: str, after: int) -> list[Event]:
        if after >= self._rev:
            return []
        ring = self._ring
        if ring and ring[0].revision <= after + 1:
            return [e for e in ring if e.revision > after and e.key.startswith(prefix)]
        rows = self._r.execute(
            "SELECT l.rev, l.key, l.type, l.value, coalesce(p.value, l.prev), l.create_rev, l.prev_rev FROM log l"
            " LEFT JOIN log p ON p.rev = l.prev_rev WHERE l.rev > ? AND l.rev <= ? AND l.key >= ? AND l.key < ?"
            " ORDER BY l.rev", (after, self._rev, prefix, _prefix_end(prefix))).fetchall()
        # A deletion's value is the one it removed: in the row itself only in older rows.
        return [Event(DELETE, k, p if pr is not None else v, p, r, c) if t else Event(PUT, k, v, p, r, c)
                for r, k, t, v, p, c, pr in rows]

    async def _compact_periodically(self) -> None:
        """Drop change-log entries older than the compaction window."""
        while True:
            await asyncio.sleep(min(60.0, max(1.0, self.compaction_window / 5)))
            cutoff = self._clock() - self.compaction_window
            row = self._r.execute("SELECT max(rev) FROM log WHERE ts < ?", (cutoff,)).fetchone()
            if row and row[0] and row[0] > self._compact:
                try:
                    await self.compact(row[0])
                except StoreError:
                    pass

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._compactor.cancel()
        while self._inflight or self._pending:   # writes already accepted are finished first
            self._drained = self._loop.create_future()
            await self._drained
        proc = self._stop_writer()   # EOF: the writer exits
        if proc is not None:
            await self._loop.run_in_executor(None, proc.wait)
        for w in list(self._watchers):
            w.close()
        self._r.close()
