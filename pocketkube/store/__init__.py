"""The storage interface: keys, values, one global revision, and watches.

The API layer is the only caller. Nothing here knows what a Pod or a Deployment is: a value is
opaque bytes under a string key. Every successful write gets the next global revision (which the
API exposes as `metadata.resourceVersion`), and every write is also an event that watches can
replay from any revision not yet compacted. SQLite is the embedded implementation; an etcd one
can be added beside it and must pass the same tests (`tests/unit/test_store.py`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import AsyncIterator

PUT = "PUT"
DELETE = "DELETE"


@dataclass(slots=True)
class KV:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(slots=True)
class Event:
    """One change. For DELETE, `value` is the last value before deletion."""

    type: str
    key: str
    value: bytes
    prev_value: bytes | None
    revision: int
    create_revision: int

    @property
    def created(self) -> bool:
        return self.type == PUT and self.prev_value is None


class StoreError(Exception):
    pass


class KeyExists(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class RevisionMismatch(StoreError):
    """The key's mod revision is not the expected one (optimistic concurrency)."""

    def __init__(self, current: int):
        super().__init__(f"current revision {current}")
        self.current = current


class Compacted(StoreError):
    """The requested revision is older than what the change log keeps."""

    def __init__(self, requested: int, oldest: int):
        super().__init__(f"revision {requested} compacted (oldest {oldest})")
        self.requested = requested
        self.oldest = oldest


class Watch(abc.ABC):
    """A stream of events for keys under a prefix, in revision order."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[Event]: ...

    @abc.abstractmethod
    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None on timeout. Raises StoreError if the watch was dropped."""

    @abc.abstractmethod
    def close(self) -> None: ...


class Store(abc.ABC):
    """Kind-agnostic key-value store with revisions. All methods run on the event loop."""

    @property
    @abc.abstractmethod
    def revision(self) -> int:
        """The newest revision whose events have been delivered to watches."""

    @property
    @abc.abstractmethod
    def compacted_revision(self) -> int:
        """Watches must start after this revision."""

    @abc.abstractmethod
    async def get(self, key: str) -> KV | None: ...

    @abc.abstractmethod
    async def list(self, prefix: str, start_after: str = "", limit: int = 0) -> tuple[list[KV], int, bool]:
        """Keys under `prefix` in key order, after `start_after`, at most `limit` (0: all).

        Returns (items, revision of this snapshot, whether more keys follow)."""

    @abc.abstractmethod
    async def count(self, prefix: str, start_after: str = "") -> int:
        """How many keys are under `prefix` (after `start_after`, if given)."""

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> int:
        """Create; returns the new revision. KeyExists if present."""

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> int:
        """Replace; returns the new revision. KeyNotFound, RevisionMismatch."""

    @abc.abstractmethod
    async def delete(self, key: str, expected_revision: int | None = None) -> int:
        """Delete; returns the deletion revision. KeyNotFound, RevisionMismatch."""

    @abc.abstractmethod
    def watch(self, prefix: str, after_revision: int) -> Watch:
        """Events for keys under prefix with revision > after_revision. Compacted if too old."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget change-log entries up to and including `revision`."""

    @abc.abstractmethod
    async def close(self) -> None: ...
