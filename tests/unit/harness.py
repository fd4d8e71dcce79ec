"""A cluster in one event loop for controller tests: API over SQLite, in-process client,
optional simulated nodes with the scheduler, and the controllers under test.

Every controller test needs the same pieces started and stopped in the same order; keeping them
here means a test file only says which controllers it runs and what it checks.
"""

from __future__ import annotations

import asyncio

from pocketkube.agent.simulated import SimulatedNodes
from pocketkube.api.core import Api
from pocketkube.api.errors import ApiError
from pocketkube.client.inprocess import InProcessClient
from pocketkube.clock import FakeClock
from pocketkube.controllers.base import ControllerManager
from pocketkube.scheduler import Scheduler
from pocketkube.store.sqlite import SqliteStore


def run(coro) -> None:
    asyncio.run(coro)


async def until(pred, timeout: float = 10.0, message: str = "condition", clock=None, tick: float = 0.0):
    """Poll `pred` (sync or async) until truthy; with a FakeClock, `tick` seconds pass per poll."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    last = None
    while True:
        last = pred()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {message} (last: {last!r})")
        if clock is not None and tick:
            clock.advance(tick)
        await asyncio.sleep(0.01)


class ControllerEnv:
    """`async with ControllerEnv(tmp_path, [SomeController], nodes=3) as env:`"""

    def __init__(self, tmp_path, controllers=(), nodes: int = 0, clock=None,
                 client_class=InProcessClient):
        self.tmp_path = tmp_path
        self.clock = clock if clock is not None else FakeClock()
        self.nodes = nodes
        self.controllers = list(controllers)
        self.client_class = client_class

    async def __aenter__(self):
        self.store = SqliteStore(str(self.tmp_path / "s.db"))
        self.api = Api(self.store, self.clock)
        await self.api.bootstrap()
        self.c = self.client_class(self.api)
        self.stoppers: list = []
        if self.nodes:
            sim = SimulatedNodes(self.c, self.nodes, clock=self.clock)
            await sim.start()
            self.stoppers.append(sim)
            sched = Scheduler(self.c, self.clock)
            await sched.start()
            self.stoppers.append(sched)
        self.mgr = ControllerManager(self.c, self.clock, self.controllers)
        await self.mgr.start()
        self.stoppers.append(self.mgr)
        return self

    async def __aexit__(self, *exc):
        for s in reversed(self.stoppers):
            await s.stop()
        await self.store.close()

    def controller(self, cls):
        return next(c for c in self.mgr.controllers if isinstance(c, cls))

    async def until(self, pred, timeout: float = 10.0, message: str = "condition", tick: float = 0.0):
        return await until(pred, timeout, message, self.clock if isinstance(self.clock, FakeClock) else None, tick)

    async def get_or_none(self, res: str, ns: str | None, name: str) -> dict | None:
        try:
            return await self.c.get(res, ns, name)
        except ApiError as e:
            if e.code == 404:
                return None
            raise
