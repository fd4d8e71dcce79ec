"""SQLite store: WAL, durable group commit in a writer thread, and an in-memory watch fan-out.

Why a writer thread: a durable commit waits for fsync, and doing that on the event loop would
stall every watch and request behind the disk. One thread takes all pending writes, applies
them in one transaction, commits once (synchronous=FULL: an acknowledged write survives
`kill -9` and power loss alike) and hands the results back to the loop, which resolves the
callers and delivers the events in revision order.

Gets and lists read the loop thread's copy of the current values (sorted by key), not SQLite:
SQLite already holds what the writer committed before the loop has published it, and a list
that showed a write which a following get did not would make a reader's view go back in time.
Old watch events are read back on a second connection (WAL: no waiting for the writer).

The change log (`log` table) keeps every write with its previous value, so a watch can resume
from any revision after the compaction point; recent events are also kept in memory so the
common case (a watch a few events behind) never touches disk.
"""

from __future__ import annotations

import asyncio
import collections
import os
import queue
import sqlite3
import threading
import time
from typing import AsyncIterator, Callable

from sortedcontainers import SortedDict

from . import (DELETE, KV, PUT, Compacted, Event, KeyExists, KeyNotFound, RevisionMismatch,
               Store, StoreError, Watch)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL, value BLOB NOT NULL,
    prev BLOB, create_rev INTEGER NOT NULL, ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
"""

_MAX_BATCH = 2000
# Bytes of recent events kept in memory for watches that resume slightly behind (older ones
# are read back from the change log): bounded by size, since objects range from 200 B to 1 MB.
_RING_BYTES = 24 * 2**20
# A watcher that falls this far behind is dropped (its client re-lists), as the apiserver does.
_WATCH_BUFFER = 200000


# Rows per multi-row statement: 7 columns x 500 stays far below SQLite's 32,766 parameters.
_ROWS_PER_STATEMENT = 500


def _insert_rows(w: sqlite3.Connection, head: str, width: int, flat: list) -> None:
    """Insert rows given as one flat list of `width` values each, many rows per statement."""
    step = width * _ROWS_PER_STATEMENT
    one = "(" + ",".join("?" * width) + ")"
    for i in range(0, len(flat), step):
        part = flat[i:i + step]
        w.execute(head + ",".join([one] * (len(part) // width)), part)


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
        self._w = self._connect(check_same_thread=False)
        self._w.executescript(_SCHEMA)
        self._r = self._connect()
        row = self._w.execute("SELECT v FROM meta WHERE k='rev'").fetchone()
        self._rev = row[0] if row else 1
        row = self._w.execute("SELECT v FROM meta WHERE k='compact'").fetchone()
        self._compact = row[0] if row else 0
        self._writer_rev = self._rev
        self._ring: collections.deque[Event] = collections.deque()
        self._ring_bytes = 0
        # Current values, as of `self._rev` (loop thread) and as of the last commit (writer
        # thread): gets and the writer's checks need no SQLite read. The bytes objects are
        # shared, so the two maps cost little more than one copy of the data.
        self._current: SortedDict = SortedDict(
            (k, (v, c, m)) for k, v, c, m in self._w.execute("SELECT key, value, create_rev, mod_rev FROM kv"))
        self._wcurrent = dict(self._current)
        self._watchers: set[_SqliteWatch] = set()
        self._ops: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._writer, name="store-writer", daemon=True)
        self._thread.start()
        self._compactor = self._loop.create_task(self._compact_periodically())

    @classmethod
    async def open(cls, path: str, **kw) -> "SqliteStore":
        return cls(path, **kw)

    def _connect(self, check_same_thread: bool = True) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, isolation_level=None, check_same_thread=check_same_thread)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.execute("PRAGMA busy_timeout=5000")
        return c

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
        self._ops.put(_Op(kind, key, value, expected, fut))
        return fut

    async def create(self, key: str, value: bytes) -> int:
        return await self._submit("create", key, value, None)

    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> int:
        return await self._submit("update", key, value, expected_revision)

    async def delete(self, key: str, expected_revision: int | None = None) -> int:
        return await self._submit("delete", key, None, expected_revision)

    async def compact(self, revision: int) -> None:
        await self._submit("compact", "", None, revision)

    def _writer(self) -> None:
        """Writer thread: apply pending ops in one transaction per batch."""
        while True:
            op = self._ops.get()
            if op is None:
                return
            batch = [op]
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._ops.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._ops.put(None)
                    break
                batch.append(nxt)
            results = self._apply(batch)
            try:
                self._loop.call_soon_threadsafe(self._finish, batch, results)
            except RuntimeError:  # loop already closed: nobody is waiting any more
                return

    def _apply(self, batch: list[_Op]) -> list:
        """Check every op against the current rows, then write the whole batch in one
        transaction with a few multi-row statements: sqlite3 gives up the GIL for each
        statement it runs and then waits to get it back from the busy event loop, so one
        statement per row would make the writer crawl (and the loop wait on it)."""
        w = self._w
        rev = self._writer_rev
        results: list = []
        now = self._clock()
        staged: dict[str, tuple[bytes, int, int] | None] = {}
        log: list = []
        compact = None
        for op in batch:
            try:
                res = self._check(op, rev + 1, staged)
            except StoreError as e:
                results.append(e)
                continue
            results.append(res)
            if isinstance(res, Event):
                rev += 1
                log.extend((rev, res.key, 1 if res.type == DELETE else 0, res.value,
                            res.prev_value, res.create_revision, now))
            else:
                compact = res if compact is None else max(compact, res)
        try:
            w.execute("BEGIN IMMEDIATE")
            if compact is not None:
                w.execute("DELETE FROM log WHERE rev <= ?", (compact,))
                w.execute("INSERT OR REPLACE INTO meta VALUES ('compact', ?)", (compact,))
            upserts = [x for key, row in staged.items() if row is not None for x in (key, *row)]
            deletes = [key for key, row in staged.items() if row is None]
            _insert_rows(w, "INSERT OR REPLACE INTO kv VALUES ", 4, upserts)
            _insert_rows(w, "INSERT INTO log VALUES ", 7, log)
            for i in range(0, len(deletes), _ROWS_PER_STATEMENT):
                part = deletes[i:i + _ROWS_PER_STATEMENT]
                w.execute(f"DELETE FROM kv WHERE key IN ({','.join('?' * len(part))})", part)
            w.execute("INSERT OR REPLACE INTO meta VALUES ('rev', ?)", (rev,))
            w.execute("COMMIT")
        except Exception as e:  # disk full, I/O error: nothing of this batch happened
            try:
                w.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            err = StoreError(f"storage failure: {e}")
            return [err for _ in batch]
        self._writer_rev = rev
        for key, row in staged.items():
            if row is None:
                self._wcurrent.pop(key, None)
            else:
                self._wcurrent[key] = row
        return results

    def _check(self, op: _Op, rev: int, staged: dict[str, tuple[bytes, int, int] | None]):
        """The outcome of one op at revision `rev`, given the rows staged by the batch so far."""
        if op.kind == "compact":
            return op.expected
        row = staged[op.key] if op.key in staged else self._wcurrent.get(op.key)
        if op.kind == "create":
            if row is not None:
                raise KeyExists(op.key)
            staged[op.key] = (op.value, rev, rev)
            return Event(PUT, op.key, op.value, None, rev, rev)
        if row is None:
            raise KeyNotFound(op.key)
        prev, create_rev, mod_rev = row
        if op.expected is not None and op.expected != mod_rev:
            raise RevisionMismatch(mod_rev)
        if op.kind == "update":
            staged[op.key] = (op.value, create_rev, rev)
            return Event(PUT, op.key, op.value, prev, rev, create_rev)
        staged[op.key] = None
        return Event(DELETE, op.key, prev, prev, rev, create_rev)

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
            "SELECT rev, key, type, value, prev, create_rev FROM log WHERE rev > ? AND rev <= ? AND key >= ? AND key < ?"
            " ORDER BY rev", (after, self._rev, prefix, _prefix_end(prefix))).fetchall()
        return [Event(DELETE if t else PUT, k, v, p, r, c) for r, k, t, v, p, c in rows]

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
        self._ops.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        for w in list(self._watchers):
            w.close()
        self._w.close()
        self._r.close()
