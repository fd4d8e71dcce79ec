"""Pod IP allocation from the node CIDR.

Allocations live in memory; what survives a crash is the runtime's pod journal, which
records each pod's IP before its network exists. A new runtime marks the IPs of pods still
in the journal as taken until `cleanup_orphans` frees them, so a restarted agent never hands
out an address a leftover namespace still holds. Addresses are handed out round-robin, like
CNI host-local, so a just-freed IP is not reused at once (clients may still hold
connections to it).
"""

from __future__ import annotations

import ipaddress


class IPAllocator:
    def __init__(self, cidr: str) -> None:
        self.net = ipaddress.IPv4Network(cidr, strict=False)
        if self.net.num_addresses < 4:
            raise ValueError(f"node CIDR {cidr} is too small for pods")
        self.gateway = str(self.net.network_address + 1)
        self.prefix = self.net.prefixlen
        self.broadcast = str(self.net.broadcast_address)
        self._first = int(self.net.network_address) + 2
        self._last = int(self.net.broadcast_address) - 1
        self._next = self._first
        self._owners: dict[str, str] = {}

    @property
    def size(self) -> int:
        """How many pod addresses the CIDR holds."""
        return self._last - self._first + 1

    def allocate(self, owner: str) -> str:
        size = self.size
        for i in range(size):
            n = self._first + (self._next - self._first + i) % size
            ip = str(ipaddress.IPv4Address(n))
            if ip not in self._owners:
                self._owners[ip] = owner
                self._next = n + 1 if n < self._last else self._first
                return ip
        raise OSError(28, f"no free pod IP left in {self.net} ({size} addresses in use)")

    def reserve(self, ip: str, owner: str) -> None:
        """Mark an address as taken (by a pod a previous agent left behind)."""
        if ipaddress.IPv4Address(ip) in self.net:
            self._owners[ip] = owner

    def release(self, ip: str) -> None:
        self._owners.pop(ip, None)

    def allocations(self) -> dict[str, str]:
        """ip -> owner for every address currently held."""
        return dict(self._owners)
