"""What this machine is, in the terms a Node reports: capacity, identity, addresses.

The scheduler places pods by the node's allocatable resources and `kubectl describe node`
shows the system info, so both come from the real machine (CPU cores, memory, the disk
holding the agent's state, /etc/machine-id, the boot id, the kernel and OS release). Nothing
here sends network traffic: the node address is read from the routing table and the
interface list.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import socket
import struct
import uuid
from dataclasses import dataclass

# The kubelet's default hard eviction thresholds, which allocatable subtracts from capacity.
MAX_PODS = 110                         # the kubelet's default maxPods
_MEMORY_RESERVED = 100 * 1024 * 1024   # memory.available<100Mi
_DISK_RESERVED_FRACTION = 0.10         # nodefs.available<10%

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def arch() -> str:
    m = platform.machine().lower()
    return _ARCH.get(m, m)


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.platform()


def _default_interface() -> str | None:
    for line in _read("/proc/net/route").splitlines()[1:]:
        parts = line.split()
        if len(parts) > 2 and parts[1] == "00000000":
            return parts[0]
    return None


def _ipv4(iface: str) -> str | None:
    """The interface's IPv4 address (SIOCGIFADDR on a socket that never sends anything)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            raw = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", iface[:15].encode()))
        except OSError:
            return None
    ip = socket.inet_ntoa(raw[20:24])
    return None if ip.startswith("127.") else ip


def internal_ip() -> str:
    """The IPv4 address of the interface holding the default route (else any other one)."""
    iface = _default_interface()
    ip = _ipv4(iface) if iface else None
    if ip:
        return ip
    for _, name in sorted(socket.if_nameindex()):
        # The pod bridge and veth ends are ours, not the machine's address.
        if name == "lo" or name.startswith(("pk", "veth")):
            continue
        ip = _ipv4(name)
        if ip:
            return ip
    return "127.0.0.1"


def _memory_total() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


@dataclass
class Machine:
    cpu: int
    memory: int                 # bytes
    disk: int                   # bytes of the filesystem holding the state directory
    machine_id: str
    boot_id: str
    system_uuid: str
    kernel: str
    os_image: str
    arch: str

    @classmethod
    def detect(cls, state_dir: str) -> "Machine":
        os.makedirs(state_dir, exist_ok=True)
        machine_id = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id") or uuid.uuid4().hex
        boot_id = _read("/proc/sys/kernel/random/boot_id") or str(uuid.uuid4())
        system_uuid = _read("/sys/class/dmi/id/product_uuid").lower()
        if not system_uuid:
            try:
                system_uuid = str(uuid.UUID(machine_id))
            except ValueError:
                system_uuid = str(uuid.uuid5(uuid.NAMESPACE_OID, machine_id))
        return cls(cpu=os.cpu_count() or 1, memory=_memory_total(),
                   disk=shutil.disk_usage(state_dir).total, machine_id=machine_id, boot_id=boot_id,
                   system_uuid=system_uuid, kernel=platform.release(), os_image=os_image(), arch=arch())

    def capacity(self) -> dict[str, str]:
        return {"cpu": str(self.cpu), "ephemeral-storage": f"{self.disk // 1024}Ki",
                "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                "memory": f"{self.memory // 1024}Ki", "pods": str(MAX_PODS)}

    def allocatable(self) -> dict[str, str]:
        return {"cpu": str(self.cpu),
                "ephemeral-storage": str(int(self.disk * (1 - _DISK_RESERVED_FRACTION))),
                "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                "memory": f"{max(0, self.memory - _MEMORY_RESERVED) // 1024}Ki", "pods": str(MAX_PODS)}
