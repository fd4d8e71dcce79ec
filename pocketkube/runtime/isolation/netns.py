"""Pod networks: a network namespace per pod, wired by a veth pair to a host bridge.

The layout is the one the CNI bridge plugin gives: the bridge holds the gateway address (.1
of the node CIDR), every pod gets `eth0` with its own IP and a default route via the
gateway, so the host reaches `http://<pod IP>:80` and any number of pods can listen on the
same port. Namespaces are pinned by a bind mount under /run/netns, exactly where `ip netns`
puts them, so `ip netns exec <name> ...` works for debugging.

Everything here blocks (syscalls, netlink round trips, the RTNL lock) and switches the
calling thread's network namespace for a moment: call it from one dedicated worker thread,
never from the event loop.
"""

from __future__ import annotations

import os
import secrets
import time

from . import syscalls
from .netlink import Netlink

NETNS_DIR = "/run/netns"
SYS_NET = "/sys/class/net"
POD_IFNAME = "eth0"


class PodNetwork:
    def __init__(self, bridge: str, gateway: str, prefix: int, broadcast: str) -> None:
        if len(bridge) > 15:
            raise ValueError(f"bridge name {bridge!r} is longer than 15 characters")
        self.bridge = bridge
        self.gateway = gateway
        self.prefix = prefix
        self.broadcast = broadcast
        self._nl: Netlink | None = None
        self._bridge_index: int | None = None
        self._netns_dir_ready = False

    @property
    def nl(self) -> Netlink:
        # created lazily so it lives in the namespace of the worker thread (the host's)
        if self._nl is None:
            self._nl = Netlink()
        return self._nl

    def close(self) -> None:
        if self._nl is not None:
            self._nl.close()
            self._nl = None

    # -- bridge -------------------------------------------------------------------------

    def ensure_bridge(self) -> int:
        """Create the bridge if missing and make sure it is up and holds the gateway IP."""
        sysdir = os.path.join(SYS_NET, self.bridge)
        if self._bridge_index is not None and os.path.exists(sysdir):
            return self._bridge_index
        if not os.path.exists(sysdir):
            # a fixed MAC: a bridge otherwise takes the lowest MAC of its ports, which
            # changes as pods come and go and makes the host's ARP entries go stale
            mac = bytes([0x02]) + secrets.token_bytes(5)
            try:
                self.nl.add_bridge(self.bridge, mac)
            except FileExistsError:
                pass
        elif not os.path.exists(os.path.join(sysdir, "bridge")):
            raise OSError(17, f"network device {self.bridge!r} exists but is not a bridge; "
                              f"choose another bridge name for pocketkube")
        with open(os.path.join(sysdir, "ifindex")) as f:
            index = int(f.read())
        self.nl.replace_address(index, self.gateway, self.prefix, self.broadcast)
        self.nl.link_up(index=index)
        self._bridge_index = index
        return index

    def remove_bridge(self, wait: float = 5.0) -> bool:
        """Delete the bridge once no pod is attached to it (waiting up to `wait` seconds for
        the kernel to finish tearing down removed pods' veths)."""
        brif = os.path.join(SYS_NET, self.bridge, "brif")
        deadline = time.monotonic() + wait
        while os.path.isdir(brif) and os.listdir(brif) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.isdir(brif) or os.listdir(brif):
            return False
        self._bridge_index = None
        return self.nl.delete_link(self.bridge)

    # -- pod namespaces -------------------------------------------------------------------

    def _prepare_netns_dir(self) -> None:
        # what `ip netns add` does: make /run/netns a shared mount point, so a namespace
        # pinned here later also shows up in mount namespaces copied earlier
        if self._netns_dir_ready:
            return
        os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
        target = NETNS_DIR.encode()
        try:
            syscalls.mount(b"", target, b"none", syscalls.MS_SHARED | syscalls.MS_REC)
        except OSError:
            syscalls.mount(target, target, b"none", syscalls.MS_BIND | syscalls.MS_REC)
            syscalls.mount(b"", target, b"none", syscalls.MS_SHARED | syscalls.MS_REC)
        self._netns_dir_ready = True

    def create(self, name: str, ip: str) -> int:
        """Create netns `name` with eth0=ip, linked to the bridge by veth `name`.

        Returns an open (close-on-exec) fd of the namespace, for setns() in containers.
        """
        bridge_index = self.ensure_bridge()
        self._prepare_netns_dir()
        path = os.path.join(NETNS_DIR, name)
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
        nsfd = -1
        inner: Netlink | None = None
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                syscalls.unshare(syscalls.CLONE_NEWNET)
                try:
                    syscalls.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", syscalls.MS_BIND)
                    nsfd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                    inner = Netlink()    # bound to the new namespace for good
                finally:
                    syscalls.setns(own, syscalls.CLONE_NEWNET)
            finally:
                os.close(own)
            try:
                self.nl.add_veth(name, POD_IFNAME, nsfd, bridge_index)
            except FileExistsError:
                # the same pod's previous veth, still being torn down by the kernel
                self.nl.delete_link(name)
                self.nl.add_veth(name, POD_IFNAME, nsfd, bridge_index)
            inner.link_up(index=1)    # lo is always ifindex 1 in a new namespace
            index = inner.link_index(POD_IFNAME)
            inner.replace_address(index, ip, self.prefix, self.broadcast)
            inner.link_up(index=index)
            inner.add_default_route(self.gateway, index)
        except BaseException:
            if nsfd >= 0:
                os.close(nsfd)
            self.delete(name)
            raise
        finally:
            if inner is not None:
                inner.close()
        return nsfd

    def delete(self, name: str, veth_too: bool = False) -> bool:
        """Unpin netns `name`; True when there was anything to remove.

        Once nothing holds the namespace the kernel destroys it with its eth0 and so the host
        end of the veth, asynchronously and in batches. Deleting the veth here instead costs
        an RCU grace period per pod (~30 ms) under the RTNL lock; `veth_too` is for leftovers
        whose namespace may be gone or still held.
        """
        found = self.nl.delete_link(name) if veth_too else False
        path = os.path.join(NETNS_DIR, name)
        try:
            syscalls.umount2(path.encode(), syscalls.MNT_DETACH)
        except OSError:
            pass
        try:
            os.unlink(path)
            found = True
        except FileNotFoundError:
            pass
        return found

    @staticmethod
    def wait_gone(names: list[str], wait: float = 2.0) -> bool:
        """Wait up to `wait` seconds until the kernel has removed the host veths of these
        unpinned namespaces (it does so in the background); False if some are still there."""
        deadline = time.monotonic() + wait
        left = [n for n in names if os.path.exists(os.path.join(SYS_NET, n))]
        while left and time.monotonic() < deadline:
            time.sleep(0.01)
            left = [n for n in left if os.path.exists(os.path.join(SYS_NET, n))]
        return not left

    @staticmethod
    def names_with_prefix(prefix: str) -> set[str]:
        """Pod netns and veth names currently on the host that start with prefix."""
        names: set[str] = set()
        for directory in (NETNS_DIR, SYS_NET):
            try:
                names.update(n for n in os.listdir(directory) if n.startswith(prefix))
            except OSError:
                pass
        return names
