"""Per-container cgroups: memory and CPU limits, OOM detection, finding every process.

A container's cgroup is what enforces `resources.limits`, what tells an OOM kill apart from
any other SIGKILL (the kernel counts OOM kills per cgroup), and the one reliable list of a
container's processes, even of those that daemonised. cgroup v1 (memory + cpu controllers)
and v2 are both supported; cgroups are nested under the agent's own cgroup (v1) or beside
it (v2, whose "no internal processes" rule forbids children with controllers under a cgroup
that holds the agent), in a `pocketkube-<tag>` directory private to one runtime.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

from .isolation.cgroupfs import write as _write

CPU_PERIOD_US = 100_000


@dataclass
class CgroupHandle:
    dirs: list[str]                 # every directory created, the tracking one first
    limits_enforced: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def main(self) -> str:
        return self.dirs[0]


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root, fstype, super options) of every cgroup mount."""
    out = []
    try:
        text = _read("/proc/self/mountinfo")
    except OSError:
        return out
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3 or not rfields[0].startswith("cgroup"):
            continue
        out.append((fields[4].replace("\\040", " "), fields[3], rfields[0], set(rfields[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path."""
    out: dict[str, str] = {}
    try:
        text = _read("/proc/self/cgroup")
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for ctrl in parts[1].split(",") if parts[1] else [""]:
            out[ctrl] = parts[2]
    return out


def _join(mountpoint: str, root: str, path: str) -> str:
    rel = os.path.relpath(path, root) if path.startswith(root) else "."
    candidate = os.path.normpath(os.path.join(mountpoint, rel))
    return candidate if os.path.isdir(candidate) else mountpoint


class Cgroups:
    """Creates and inspects the cgroups of one runtime's containers."""

    def __init__(self, tag: str) -> None:
        self.dirname = f"pocketkube-{tag}"
        self.version: int | None = None
        self.bases: dict[str, str] = {}      # "memory"/"cpu" (v1) or "unified" (v2) -> base dir
        self.limits_enforced = False
        self.note = ""
        self._prepared = False
        try:
            self._detect()
        except OSError as e:
            self.version, self.bases = None, {}
            self.note = f"cgroups unavailable: {e}"

    def _detect(self) -> None:
        mounts = _mounts()
        own = _own_paths()
        v1 = {}
        for point, root, fstype, opts in mounts:
            if fstype == "cgroup":
                for ctrl in ("memory", "cpu"):
                    if ctrl in opts and ctrl not in v1:
                        v1[ctrl] = _join(point, root, own.get(ctrl, "/"))
        if "memory" in v1 and os.access(v1["memory"], os.W_OK):
            self.version = 1
            self.bases = {ctrl: os.path.join(d, self.dirname) for ctrl, d in v1.items()
                          if os.access(d, os.W_OK)}
            self.limits_enforced = True
            self.note = "cgroup v1 (" + "+".join(sorted(self.bases)) + ")"
            return
        for point, root, fstype, _ in mounts:
            if fstype != "cgroup2":
                continue
            own_dir = _join(point, root, own.get("", "/"))
            # beside our own cgroup, unless we are at the root (which may hold processes)
            parent = own_dir if own_dir == point else os.path.dirname(own_dir)
            if not os.access(parent, os.W_OK):
                continue
            self.version = 2
            self.bases = {"unified": os.path.join(parent, self.dirname)}
            available = set(_read(os.path.join(parent, "cgroup.controllers")).split())
            self.limits_enforced = "memory" in available
            self.note = "cgroup v2" if self.limits_enforced else \
                "cgroup v2 without the memory controller: limits are not enforced"
            return
        self.note = "no writable cgroup hierarchy: limits are not enforced"

    @property
    def available(self) -> bool:
        return self.version is not None

    def _prepare(self) -> None:
        if self._prepared:
            return
        for base in self.bases.values():
            os.makedirs(base, exist_ok=True)
        if self.version == 2 and self.limits_enforced:
            base = self.bases["unified"]
            wanted = {"memory", "cpu"} & set(_read(os.path.join(base, "cgroup.controllers")).split())
            try:
                parent = os.path.dirname(base)
                _write(os.path.join(parent, "cgroup.subtree_control"), " ".join("+" + c for c in wanted))
                _write(os.path.join(base, "cgroup.subtree_control"), " ".join("+" + c for c in wanted))
            except OSError as e:
                self.limits_enforced = False
                self.note = (f"cgroup v2, but controllers cannot be delegated ({e.strerror}): "
                             f"limits are not enforced")
        self._prepared = True

    # -- lifecycle --------------------------------------------------------------------------

    def plan(self, name: str, memory_limit: int | None,
             cpu_millis: int | None) -> tuple[CgroupHandle | None, list[list]]:
        """The container's cgroup(s), not made yet: the handle and the steps that make them
        (isolation/cgroupfs.py; the spawn helper takes them just before its child joins, so
        that the agent's event loop makes no cgroupfs call). (None, []) without cgroups."""
        if not self.available:
            return None, []
        self._prepare()
        return self._plan(name, memory_limit, cpu_millis)

    def _plan(self, name: str, memory_limit: int | None,
              cpu_millis: int | None) -> tuple[CgroupHandle, list[list]]:
        h = CgroupHandle(dirs=[], limits_enforced=self.limits_enforced)
        steps: list[list] = []
        if self.version == 1:
            mem = os.path.join(self.bases["memory"], name)
            h.dirs.append(mem)
            steps.append(["mkdir", mem])
            if memory_limit:
                steps.append(["write", os.path.join(mem, "memory.limit_in_bytes"), str(memory_limit)])
                # no swapping past the limit, as on a Kubernetes node
                steps.append(["try-write", os.path.join(mem, "memory.memsw.limit_in_bytes"), str(memory_limit)])
            if cpu_millis and "cpu" in self.bases:
                cpu = os.path.join(self.bases["cpu"], name)
                h.dirs.append(cpu)
                quota = max(1000, cpu_millis * CPU_PERIOD_US // 1000)
                steps += [["mkdir", cpu], ["write", os.path.join(cpu, "cpu.cfs_period_us"), str(CPU_PERIOD_US)],
                          ["write", os.path.join(cpu, "cpu.cfs_quota_us"), str(quota)]]
        else:
            d = os.path.join(self.bases["unified"], name)
            h.dirs.append(d)
            steps.append(["mkdir", d])
            if self.limits_enforced and memory_limit:
                steps += [["write", os.path.join(d, "memory.max"), str(memory_limit)],
                          ["try-write", os.path.join(d, "memory.swap.max"), "0"],
                          ["try-write", os.path.join(d, "memory.oom.group"), "1"]]
            if self.limits_enforced and cpu_millis:
                steps.append(["write-if-exists", os.path.join(d, "cpu.max"),
                              f"{max(1000, cpu_millis * CPU_PERIOD_US // 1000)} {CPU_PERIOD_US}"])
        return h, steps

    def join_files(self, h: CgroupHandle | None) -> list[str]:
        """The files a container's first process writes "0" to, to join its cgroups before it
        execs. On v1 that is "tasks" (the writing thread, which is then the whole process),
        not cgroup.procs: a move through cgroup.procs takes the kernel's threadgroup lock for
        writing, and the first one after a quiet moment waits for an RCU grace period (5-12 ms
        on the benchmark VM) while every start behind it queues. v2 has only cgroup.procs."""
        if h is None:
            return []
        name = "tasks" if self.version == 1 else "cgroup.procs"
        return [os.path.join(d, name) for d in h.dirs]

    @staticmethod
    def pids(h: CgroupHandle | None) -> list[int]:
        if h is None:
            return []
        try:
            return [int(p) for p in _read(os.path.join(h.main, "cgroup.procs")).split()]
        except OSError:
            return []

    def oom_killed(self, h: CgroupHandle | None) -> bool:
        if h is None:
            return False
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in _read(os.path.join(h.main, name)).splitlines():
                key, _, value = line.partition(" ")
                if key in ("oom_kill", "oom_group_kill") and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def kill(self, h: CgroupHandle | None, sig: int = signal.SIGKILL) -> int:
        """Signal every process in the cgroup; returns how many were signalled."""
        n = 0
        for pid in self.pids(h):
            try:
                os.kill(pid, sig)
                n += 1
            except ProcessLookupError:
                pass
        return n

    def remove(self, h: CgroupHandle | None, timeout: float = 2.0) -> bool:
        """Kill what is left and remove the directories; False if some stayed busy."""
        if h is None:
            return True
        deadline = time.monotonic() + timeout
        ok = True
        for d in reversed(h.dirs):
            ok = _rmdir_cgroup(d, deadline, self) and ok
        return ok

    def remove_bases(self) -> None:
        """Remove this runtime's (empty) parent directories, e.g. when it shuts down."""
        for base in self.bases.values():
            try:
                os.rmdir(base)
            except OSError:
                pass
        self._prepared = False

    def leftovers(self) -> list[str]:
        """Container cgroup directories under this runtime's bases (for orphan cleanup)."""
        out = []
        for base in self.bases.values():
            try:
                out.extend(os.path.join(base, n) for n in os.listdir(base)
                           if os.path.isdir(os.path.join(base, n)))
            except OSError:
                pass
        return out


def _rmdir_cgroup(d: str, deadline: float, cg: Cgroups) -> bool:
    while True:
        try:
            os.rmdir(d)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            cg.kill(CgroupHandle(dirs=[d]))
            time.sleep(0.01)
