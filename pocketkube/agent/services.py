"""The Services the agent knows of, for the service environment variables of containers.

Every container gets `<SVC>_SERVICE_HOST`-style variables for the services of its namespace
(and the master `kubernetes` service). The kubelet reads them from an informer-fed lister,
not from the API on every start; so does the agent: one watch instead of a LIST and a GET per
container, which at a burst of pod starts was API work on the event loop for each of them.
"""

from __future__ import annotations

from ..client import Client
from ..client.informer import Informer
from .tasks import stop_informer


class ServiceCache:
    def __init__(self, client: Client) -> None:
        self._informer = Informer(client, "services")
        self._by_ns: dict[str, dict[str, dict]] = {}
        self._informer.add_handler(self._on_service)

    def start(self) -> None:
        self._informer.start()

    async def stop(self) -> None:
        await stop_informer(self._informer)

    @property
    def synced(self) -> bool:
        return self._informer.synced.is_set()

    def _on_service(self, kind: str, old: dict | None, new: dict | None) -> None:
        if old is not None:
            meta = old["metadata"]
            self._by_ns.get(meta.get("namespace") or "", {}).pop(meta["name"], None)
        if new is not None:
            meta = new["metadata"]
            self._by_ns.setdefault(meta.get("namespace") or "", {})[meta["name"]] = new

    def in_namespace(self, namespace: str) -> list[dict]:
        return list(self._by_ns.get(namespace, {}).values())

    def get(self, namespace: str, name: str) -> dict | None:
        return self._by_ns.get(namespace, {}).get(name)
