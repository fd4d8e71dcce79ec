"""Stopping background work for sure.

A cancellation can be lost: in Python 3.11 `asyncio.wait_for` swallows a CancelledError that
arrives while its inner future completes (the store's watch waits that way), and the task then
runs on. The agent must stop even so, or no process would ever be cleaned up on shutdown, so
these helpers cancel again until the task is really gone.
"""

from __future__ import annotations

import asyncio

from ..client.informer import Informer


async def cancel_and_wait(task: asyncio.Task | None, attempt: float = 0.5, attempts: int = 40) -> None:
    if task is None:
        return
    for _ in range(attempts):
        if task.done():
            break
        task.cancel()
        await asyncio.wait([task], timeout=attempt)
    if task.done() and not task.cancelled():
        task.exception()   # retrieved, so asyncio does not log it as never retrieved


async def stop_informer(informer: Informer | None, attempt: float = 0.5, attempts: int = 40) -> None:
    if informer is None:
        return
    for _ in range(attempts):
        stopping = asyncio.ensure_future(informer.stop())
        done, _ = await asyncio.wait([stopping], timeout=attempt)
        if done:
            return
        # The cancellation was lost: Informer.stop() cancels its task again on the next call.
