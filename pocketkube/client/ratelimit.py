"""Token buckets: how often something may happen, with a burst allowance.

Kubernetes paces several things this way and the pacing is visible to users, so we keep the same
numbers: a component's API client sends at most `qps` requests a second after a burst of `burst`
(client-go's flowcontrol; the kubelet's and the scheduler's event clients use 50 and 100), and
client-go's event spam filter lets an object collect 25 events, then one more every five
minutes. One bucket type serves both: `allow` answers at once (drop what does not fit),
`wait` sleeps until a token is due (send later).
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; starts full."""

    __slots__ = ("rate", "burst", "tokens", "last", "_now")

    def __init__(self, rate: float, burst: int, now: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = float(burst)
        self._now = now
        self.tokens = float(burst)
        self.last = now()

    def _refill(self) -> None:
        now = self._now()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def allow(self) -> bool:
        """Take a token if one is there."""
        self._refill()
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def reserve(self) -> float:
        """Take a token now, owing it if need be: the seconds until it is really due."""
        self._refill()
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0.0 else -self.tokens / self.rate

    async def wait(self) -> None:
        """Until a token is ours (concurrent waiters are served in turn, as rate.Limiter.Wait)."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
