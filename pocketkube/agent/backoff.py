"""Crash-loop and image-pull back-off, as the kubelet counts it (client-go flowcontrol.Backoff).

The kubelet does not count restarts to decide how long to wait: it keeps, per container, the
current back-off and when it was last raised. A container that finished within its back-off
window of the last finish waits ("CrashLoopBackOff"); once allowed to start, the window doubles
(10 s, 20 s, ... 300 s). A container that finished more than twice the maximum (10 minutes)
after the previous raise is treated as healthy again and starts over at 10 s. All times come
from the injected clock, so tests walk through minutes of back-off instantly.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL = 10.0
MAXIMUM = 300.0


@dataclass
class _Entry:
    backoff: float
    last_update: float


class Backoff:
    def __init__(self, initial: float = INITIAL, maximum: float = MAXIMUM):
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, _Entry] = {}

    def _expired(self, event_time: float, entry: _Entry) -> bool:
        return event_time - entry.last_update > 2 * self.maximum

    def in_backoff_since(self, key: str, event_time: float, now: float) -> bool:
        """Is `key`, which last finished at `event_time`, still waiting at `now`?"""
        e = self._entries.get(key)
        if e is None or self._expired(event_time, e):
            return False
        return now - event_time < e.backoff

    def next(self, key: str, event_time: float) -> None:
        """Record a (re)start allowed at `event_time`: the next window doubles."""
        e = self._entries.get(key)
        if e is None or self._expired(event_time, e):
            self._entries[key] = _Entry(self.initial, event_time)
        else:
            e.backoff = min(e.backoff * 2, self.maximum)
            e.last_update = event_time

    def get(self, key: str) -> float:
        e = self._entries.get(key)
        return e.backoff if e else 0.0

    def release_after(self, key: str, event_time: float) -> float:
        """Clock time at which a container that finished at `event_time` may start again."""
        e = self._entries.get(key)
        return event_time + (e.backoff if e else 0.0)

    def forget_prefix(self, prefix: str) -> None:
        for k in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[k]


def go_duration(seconds: float) -> str:
    """Go's time.Duration String() for the whole and fractional seconds kubelet messages show."""
    if seconds < 60:
        if seconds == int(seconds):
            return f"{int(seconds)}s"
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    s = int(seconds)
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"
