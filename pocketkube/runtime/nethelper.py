"""The agent's side of netd.py: pod networks made by a helper process, awaited on the event loop.

`NetworkHelper.create()` sends one request and awaits its answer; nothing blocks the loop
and no agent thread waits on the GIL between netlink round trips. The helper is started on
first use and again after it died (see helper.py). Removing a network stays in the agent
(an unmount and an unlink, see isolation/netns.py).
"""

from __future__ import annotations

import asyncio
import os

from .helper import HelperProcess

NETD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netd.py")


class NetworkHelper(HelperProcess):
    script = NETD
    wait_on_exit = 5.0     # on EOF it finishes the network at hand, then exits

    def __init__(self, bridge: str, gateway: str, prefix: int, broadcast: str) -> None:
        super().__init__(bridge, gateway, str(prefix), broadcast)
        self._next = 0
        self._pending: dict[int, asyncio.Future] = {}

    async def create(self, name: str, ip: str) -> None:
        """Create netns `name` with eth0=ip behind veth `name` on the bridge; raises OSError."""
        self._ensure()
        self._next += 1
        fut = self._loop.create_future()
        self._pending[self._next] = fut
        try:
            self._send({"id": self._next, "name": name, "ip": ip})
        except OSError as e:
            self._pending.pop(self._next, None)
            self._helper_died()
            raise OSError(e.errno, f"the network helper is gone: {e}") from None
        await fut

    def _on_message(self, m: dict, fds: list[int]) -> None:
        fut = self._pending.pop(m["id"], None)
        if fut is None or fut.done():
            return
        if "error" in m:
            fut.set_exception(OSError(m["errno"] or None, m["error"]))
        else:
            fut.set_result(None)

    def _on_helper_gone(self) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(OSError(None, "the network helper exited"))
