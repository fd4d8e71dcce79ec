"""What a runtime writes under its state_dir so the next agent can clean up after a crash.

An agent killed with SIGKILL takes its containers with it (PR_SET_PDEATHSIG), but not the
netns, veth, cgroups, IP allocations and mount points it created: each of those is listed
in a small JSON record, written before or right after the thing exists and deleted after it
is gone, and `cleanup_orphans()` works through whatever records remain. Records go to
append-only journals (one for pods, one for containers) rather than a file each: a record is
written on every pod and container start, where a file costs a create, a rename and an unlink.
"""

from __future__ import annotations

import json
import os


class Journal:
    """Records as lines appended to one file: one write() per change, where a file per record
    would cost a create, a rename and an unlink (about 0.3 ms each on a VM disk, per container
    start). A torn last line from a crash is ignored when the journal is read back."""

    def __init__(self, path: str, compact_at: int = 4 << 20) -> None:
        self.path = path
        self.compact_at = compact_at
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _append(self, entry: dict) -> None:
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, line)
        self._size += len(line)

    def add(self, key: str, record: dict) -> None:
        self._append({"+": key, "r": record})

    def remove(self, key: str) -> None:
        self._append({"-": key})

    @property
    def needs_compaction(self) -> bool:
        return self._size > self.compact_at

    def read(self) -> dict[str, dict]:
        records: dict[str, dict] = {}
        with open(self.path, "rb") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if "+" in entry:
                    records[entry["+"]] = entry["r"]
                else:
                    records.pop(entry.get("-"), None)
        return records

    def compact(self, live: dict[str, dict]) -> None:
        """Rewrite the journal to hold just `live`."""
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            for key, record in live.items():
                f.write(json.dumps({"+": key, "r": record}, separators=(",", ":")) + "\n")
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of a process (clock ticks since boot): with the PID it tells
    our process apart from an unrelated one that reused the PID."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None
