"""Pod networks for ProcessRuntime: who holds which IP and netns, and a warm pool of spares.

A pod network (netns, veth, address, route) costs ~3 ms of kernel time, one at a time (the
RTNL lock), and 100 pods arriving at once queue behind each other for it. So networks are
made ahead of demand: `start_pool(n)` keeps up to n spare networks, built by the network
helper (netd.py) while the node is idle, and a new pod takes one at once. A pod that finds
the pool empty gets a network made on demand, ahead of any refill; refills wait until pods
have stopped arriving for a moment, so they never compete with a burst for the CPU.

Spares are networks like any other: each is journaled (with no pod) before it exists, holds
an IP from the node CIDR (the pool only grows while plenty of addresses stay free), is
removed by `close()` and, after a crash, by the next runtime's `cleanup()`. The journal and
the IP allocator are only used on the event loop's thread; removal (an unmount, an unlink,
sometimes a netlink call) runs on one worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .isolation.ipam import IPAllocator
from .isolation.netns import NETNS_DIR, PodNetwork
from .nethelper import NetworkHelper
from .state import Journal

log = logging.getLogger(__name__)

REFILL_QUIET = 0.25     # seconds without a new pod before spares are made again
RETRY_AFTER = 5.0       # after a spare could not be made


class PodNetworks:
    def __init__(self, state_dir: str, cidr: str, bridge: str, prefix: str) -> None:
        self.prefix = prefix          # every netns and veth name starts with it
        self.ipam = IPAllocator(cidr)
        self.network = PodNetwork(bridge, self.ipam.gateway, self.ipam.prefix, self.ipam.broadcast)
        self.helper = NetworkHelper(bridge, self.ipam.gateway, self.ipam.prefix, self.ipam.broadcast)
        self.journal = Journal(os.path.join(state_dir, "pods.journal"))
        self.records = self.journal.read()
        for key, rec in self.records.items():      # until cleanup() frees them
            if rec.get("ip"):
                self.ipam.reserve(rec["ip"], rec.get("pod_uid") or key)
        self._executor: ThreadPoolExecutor | None = None
        self._spares: list[tuple[str, str]] = []        # (key, ip), ready
        self._making: dict[str, str] = {}               # key -> ip of spares being made
        self._pool_size = 0
        self._refill: asyncio.Task | None = None
        self._last_demand = 0.0
        self._closed = False
        self._tasks: set[asyncio.Task] = set()
        # called on the loop with (key, ip) when a spare is ready: what else a pod's network
        # needs can be made while the node is quiet too (the runtime's hosts file)
        self.on_spare: Callable[[str, str], None] | None = None

    # -- taking and giving back ---------------------------------------------------------------

    async def acquire(self, pod_uid: str, taken: set[str]) -> tuple[str, str]:
        """A network for the pod: (netns and veth name, IP)."""
        loop = asyncio.get_running_loop()
        self._last_demand = loop.time()
        if self._spares:
            key, ip = self._spares.pop()
            self.ipam.reserve(ip, pod_uid)
            self._record(key, {"pod_uid": pod_uid, "ip": ip})
            self._schedule_refill()
            return key, ip
        key = self._new_key(taken)
        ip = self.ipam.allocate(pod_uid)
        self._record(key, {"pod_uid": pod_uid, "ip": ip})     # before it exists: a crash leaves a trace
        made = asyncio.ensure_future(self.helper.create(key, ip))
        try:
            await asyncio.shield(made)
        except asyncio.CancelledError:
            # the helper goes on making it: remove it once it is there
            made.add_done_callback(lambda f: self._release_later(f, key, ip))
            raise
        except BaseException:
            if not self._closed:     # the helper may have died half-way: the veth too
                await self.release(key, ip, veth_too=True)
            raise
        self._schedule_refill()
        return key, ip

    async def release(self, key: str, ip: str | None, veth_too: bool = False) -> bool:
        """Remove a pod's network and free its IP; True when there was anything to remove."""
        found = await asyncio.get_running_loop().run_in_executor(
            self._thread(), self.network.delete, key, veth_too)
        self._forget(key, ip)
        return found

    def _release_later(self, made: asyncio.Future, key: str, ip: str) -> None:
        if not made.cancelled():
            made.exception()     # retrieved: whether it was made or not, it goes
        if not self._closed:
            task = asyncio.get_running_loop().create_task(self.release(key, ip, veth_too=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _new_key(self, taken: set[str]) -> str:
        # random, not derived from the pod: a spare is made before its pod exists
        for _ in range(100):
            key = self.prefix + secrets.token_hex(4)[:7]
            if key not in taken and key not in self.records and key not in self._making and \
                    not os.path.lexists(os.path.join(NETNS_DIR, key)):
                return key
        raise OSError(17, "cannot find a free network namespace name")

    def _record(self, key: str, record: dict) -> None:
        self.journal.add(key, record)
        self.records[key] = record

    def _forget(self, key: str, ip: str | None) -> None:
        if ip:
            self.ipam.release(ip)
        self.journal.remove(key)
        self.records.pop(key, None)
        if self.journal.needs_compaction:
            self.journal.compact(self.records)

    def _thread(self) -> ThreadPoolExecutor:
        # one thread: netlink requests on the shared socket must not interleave
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="pocketkube-net")
        return self._executor

    # -- the warm pool --------------------------------------------------------------------------

    def start_pool(self, size: int) -> None:
        """Keep up to `size` spare networks from now on (0: none)."""
        self._pool_size = max(0, size)
        self._last_demand = 0.0
        self._schedule_refill()

    @property
    def spares(self) -> int:
        return len(self._spares)

    def _wanted(self) -> bool:
        have = len(self._spares) + len(self._making)
        if have >= self._pool_size:
            return False
        free = self.ipam.size - len(self.ipam.allocations())
        return free > self._pool_size    # spares never take the last addresses pods may need

    def _schedule_refill(self) -> None:
        if self._refill is None and not self._closed and self._wanted():
            self._refill = asyncio.get_running_loop().create_task(self._fill(), name="pocketkube-net-pool")

    async def _fill(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._wanted():
                quiet = self._last_demand + REFILL_QUIET - loop.time()
                if quiet > 0:
                    await asyncio.sleep(quiet)
                    continue
                key = self._new_key(set())
                ip = self.ipam.allocate(key)
                self._record(key, {"pod_uid": "", "ip": ip, "spare": True})
                self._making[key] = ip
                try:
                    await self.helper.create(key, ip)
                except OSError as e:
                    if self._closed:     # close() removed it
                        return
                    self._making.pop(key, None)
                    await self.release(key, ip, veth_too=True)
                    log.warning("cannot make a spare pod network: %s", e)
                    await asyncio.sleep(RETRY_AFTER)
                    continue
                if self._making.pop(key, None) is not None:
                    if self.on_spare is not None:
                        try:
                            self.on_spare(key, ip)
                        except OSError as e:    # only a head start: the pod makes it anyway
                            log.warning("preparing spare pod network %s: %s", key, e)
                    self._spares.append((key, ip))
        finally:
            self._refill = None

    async def drain_pool(self) -> None:
        """Remove every spare (before the bridge goes, or when the node stops)."""
        self._pool_size = 0
        task = self._refill
        if task is not None:
            if not self._making:     # asleep: stop it; else it stops after the network at hand
                task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        spares = self._spares + list(self._making.items())
        self._spares, self._making = [], {}
        for key, ip in spares:
            # unpinned, an unused netns goes with its veth in the kernel's own time, in
            # batches: deleting each veth here would cost ~30 ms apiece (see netns.delete)
            await self.release(key, ip)

    # -- crash leftovers ------------------------------------------------------------------------

    async def cleanup(self, live_keys: set[str], live_uids: set[str]) -> int:
        """Remove networks no live pod or spare holds (journaled or just named like ours)."""
        live_keys = live_keys | {k for k, _ in self._spares} | set(self._making)
        found = 0
        handled = set()
        unpinned = []
        for key, rec in list(self.records.items()):
            if key in live_keys:
                continue
            found += 1
            handled.add(key)
            # a spare never held a process: unpinned, it goes with its veth (see drain_pool);
            # a pod's namespace may be held still, or half made, so its veth goes by name too
            if rec.get("spare"):
                unpinned.append(key)
            await self.release(key, rec.get("ip"), veth_too=not rec.get("spare"))
        self.journal.compact(self.records)
        if unpinned:     # gone for good when this returns, as the veths deleted by name
            await asyncio.get_running_loop().run_in_executor(self._thread(), self.network.wait_gone, unpinned)
        for name in self.network.names_with_prefix(self.prefix) - live_keys - handled:
            found += 1
            await asyncio.get_running_loop().run_in_executor(self._thread(), self.network.delete, name, True)
        owners = live_uids | live_keys
        for ip, owner in self.ipam.allocations().items():
            if owner not in owners:
                self.ipam.release(ip)
        return found

    async def remove_bridge(self) -> bool:
        await self.drain_pool()
        return await asyncio.get_running_loop().run_in_executor(self._thread(), self.network.remove_bridge)

    def close(self) -> None:
        """Stop the helper and remove the spares; pods' networks stay for cleanup().

        May run on another thread than the loop's (the agent closes its runtime in one): a
        refill still under way ends when its request fails with the helper gone."""
        self._closed = True
        self._pool_size = 0
        self.helper.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for key, ip in self._spares + list(self._making.items()):
            self.network.delete(key)      # the kernel removes its veth soon after (see drain_pool)
            self._forget(key, ip)
        self._spares, self._making = [], {}
        self.network.close()
        self.journal.close()
