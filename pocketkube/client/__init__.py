"""One client interface for everything that is not the API: controllers, scheduler, agents.

Two implementations: `InProcessClient` calls the `Api` directly (the control plane's own
components, no HTTP, same rules), and `HttpClient` speaks HTTPS to any pocketkube server (an
agent on another machine, `pocketkube controllers --kubeconfig`). Both raise `ApiError` with the
server's Status, so callers handle 404/409/422 the same way everywhere.

Resources are named as kubectl does: "pods", "nodes", "deployments.apps", "leases",
"events" (core) or "events.events.k8s.io".
"""

from __future__ import annotations

import abc
from typing import AsyncIterator

from ..api.resources import RESOURCES, Resource

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

_BY_NAME: dict[str, Resource] = {}
for _r in RESOURCES:
    _BY_NAME.setdefault(f"{_r.plural}.{_r.group}" if _r.group else _r.plural, _r)
    _BY_NAME.setdefault(_r.plural, _r)


def resource(name: str | Resource) -> Resource:
    """'pods' / 'deployments.apps' / 'deployments' -> the registry entry."""
    if isinstance(name, Resource):
        return name
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown resource {name!r}") from None


class Client(abc.ABC):
    """The Kubernetes verbs, on plain dict objects.

    A write with `result=False` says the caller will not change what it returns, nor the body it
    passed: the in-process client gives the object written (which may share parts of that body)
    to the watchers as their decoded copy (one decode fewer per event; see
    DecodedEvents.expect), and returns it only from a create (read-only: the created name is
    what callers want), None otherwise. Hot paths that only write use it.
    """

    @abc.abstractmethod
    async def get(self, res: str | Resource, namespace: str | None, name: str) -> dict: ...

    @abc.abstractmethod
    async def list(self, res: str | Resource, namespace: str | None = None, label_selector: str = "",
                   field_selector: str = "", limit: int = 0, continue_token: str = "") -> dict: ...

    @abc.abstractmethod
    async def create(self, res: str | Resource, namespace: str | None, obj: dict,
                     result: bool = True) -> dict | None: ...

    @abc.abstractmethod
    async def update(self, res: str | Resource, namespace: str | None, obj: dict,
                     subresource: str | None = None, result: bool = True) -> dict | None: ...

    @abc.abstractmethod
    async def patch(self, res: str | Resource, namespace: str | None, name: str, patch: dict | list,
                    patch_type: str = MERGE, subresource: str | None = None) -> dict: ...

    @abc.abstractmethod
    async def delete(self, res: str | Resource, namespace: str | None, name: str,
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     preconditions: dict | None = None, result: bool = True,
                     current: dict | None = None) -> dict | None:
        """`current`: the object as the caller's watch gave it (unchanged), which a server in the
        same process may read instead of its own copy when it is the stored revision."""

    @abc.abstractmethod
    def watch(self, res: str | Resource, namespace: str | None = None, resource_version: str = "",
              label_selector: str = "", field_selector: str = "", timeout: float | None = None,
              allow_bookmarks: bool = True) -> AsyncIterator[dict]:
        """Watch events ({"type", "object"}); an expired revision arrives as an ERROR event."""

    @abc.abstractmethod
    async def bind(self, namespace: str, name: str, node: str, uid: str | None = None) -> None: ...

    async def update_status(self, res: str | Resource, namespace: str | None, obj: dict,
                            result: bool = True) -> dict | None:
        return await self.update(res, namespace, obj, subresource="status", result=result)

    async def close(self) -> None:
        pass
