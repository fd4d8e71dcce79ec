"""The SQLite store's writer: a tiny process that commits the batches the store has checked.

Why a process and not a thread: sqlite3 gives up the GIL while SQLite works, but every
statement must get it back from the server's event loop, which holds it almost all the time
under load. Measured with 10,000 pods, a writer thread spent three quarters of its time waiting
for the GIL, and the whole control plane waited on the writer. Here SQLite runs on the other
core, and the event loop only sends bytes and reads a short answer per batch.

The store (sqlite.py) keeps every rule: it checks each write against its current values,
assigns revisions, and sends only the rows to write. This process just writes them in one
transaction and says whether it committed. It has no state worth keeping: it exits on EOF,
which is also how it dies with the server (its socket closes), after the transaction at hand.

Runs as a script (`python -I -S sqlwriter.py <socket fd> <database path>`), standard library
only. Protocol over a stream socket, each message a 4-byte big-endian length then a marshal:
  store -> writer  (base, rev, compact, upserts, deletes, log): `upserts` and `log` are flat
                   lists (3 and 8 values per row, as the live and log tables' columns), `deletes`
                   keys, `compact` a revision to drop the change log up to, or None; `base` the
                   revision the batch follows and `rev` the revision after it. A batch whose
                   base is not the last commit's revision is refused: it was checked as if an
                   earlier batch, which failed, had happened.
  writer -> store  None once committed, or the error's text (nothing of the batch happened)
"""

import marshal
import socket
import sqlite3
import struct
import sys

# Rows per multi-row statement: 8 columns x 500 stays far below SQLite's 32,766 parameters.
ROWS_PER_STATEMENT = 500
HEADER = struct.Struct(">I")


def insert_rows(db: sqlite3.Connection, head: str, width: int, flat: list) -> None:
    """Insert rows given as one flat list of `width` values each, many rows per statement."""
    step = width * ROWS_PER_STATEMENT
    one = "(" + ",".join("?" * width) + ")"
    for i in range(0, len(flat), step):
        part = flat[i:i + step]
        db.execute(head + ",".join([one] * (len(part) // width)), part)


def connect(path: str) -> sqlite3.Connection:
    """A connection to the store's database, as both the store and this writer open it."""
    db = sqlite3.connect(path, isolation_level=None)
    # Set before the first table exists (a database keeps the size it was made with): a commit
    # writes its pages to the WAL one frame at a time, and the change log's rows hold kilobytes
    # each; 16 KB pages made the writer's work for a rolling update of 10,000 pods a fifth less.
    db.execute("PRAGMA page_size=16384")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")   # an acknowledged write survives power loss
    db.execute("PRAGMA busy_timeout=5000")
    return db


def committed(db: sqlite3.Connection) -> tuple[int, int]:
    """(revision, compaction revision) of the last commit; a new database starts at (1, 0)."""
    meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
    return meta.get("rev", 1), meta.get("compact", 0)


def write(db: sqlite3.Connection, batch: tuple) -> None:
    _, rev, compact, upserts, deletes, log = batch
    db.execute("BEGIN IMMEDIATE")
    try:
        if compact is not None:
            # A live key's value is its row at mod_rev: kept however old; so is a row that holds
            # the previous value of an event still in the log.
            db.execute("DELETE FROM log WHERE rev <= ? AND rev NOT IN (SELECT mod_rev FROM live)"
                       " AND rev NOT IN (SELECT prev_rev FROM log WHERE rev > ? AND prev_rev IS NOT NULL)",
                       (compact, compact))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('compact', ?)", (compact,))
        insert_rows(db, "INSERT OR REPLACE INTO live VALUES ", 3, upserts)
        insert_rows(db, "INSERT INTO log VALUES ", 8, log)
        for i in range(0, len(deletes), ROWS_PER_STATEMENT):
            part = deletes[i:i + ROWS_PER_STATEMENT]
            db.execute(f"DELETE FROM live WHERE key IN ({','.join('?' * len(part))})", part)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('rev', ?)", (rev,))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:   # a failed COMMIT may already have ended it
            db.execute("ROLLBACK")
        raise


def read_exactly(f, n: int) -> bytes | None:
    try:
        data = f.read(n)
    except OSError:   # the store's process is gone
        return None
    return data if len(data) == n else None


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    db = connect(sys.argv[2])
    last, _ = committed(db)
    f = sock.makefile("rb")
    while True:
        head = read_exactly(f, HEADER.size)
        body = read_exactly(f, HEADER.unpack(head)[0]) if head else None
        if body is None:   # the store closed, or its process is gone
            return
        batch = marshal.loads(body)
        if batch[0] != last:
            # Checked as if a batch that failed had happened: refused with it.
            answer = f"the batch follows revision {batch[0]}, the last commit is {last}"
        else:
            try:
                write(db, batch)
                answer = None
                last = batch[1]
            except Exception as e:   # disk full, I/O error: the store fails the batch's writes
                answer = f"{type(e).__name__}: {e}"
        out = marshal.dumps(answer)
        sock.sendall(HEADER.pack(len(out)) + out)


if __name__ == "__main__":
    main()
