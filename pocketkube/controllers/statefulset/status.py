"""Writing a StatefulSet's status (stateful_set_status_updater.go).

Why it exists: the status is the one thing the controller writes on the StatefulSet itself, and
kubectl (`rollout status`, `get sts`) and the conformance tests read it. It goes through the
status subresource with the resourceVersion of the copy the sync acted on; on a conflict the
latest object is read and the same status is written again, so `observedGeneration` always says
which generation the counts describe. Conditions someone else wrote (the status endpoints are
public) are kept.
"""

from __future__ import annotations

from ...api.errors import ApiError
from ...client import Client

STATEFULSETS = "statefulsets.apps"


class StatusUpdater:
    def __init__(self, client: Client):
        self.client = client

    async def update(self, sts: dict, status: dict, attempts: int = 5) -> dict | None:
        meta = sts["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        current = sts
        for attempt in range(attempts):
            new_status = dict(status)
            conditions = (current.get("status") or {}).get("conditions")
            if conditions:
                new_status["conditions"] = conditions
            try:
                return await self.client.update_status(STATEFULSETS, ns, dict(current, status=new_status))
            except ApiError as e:
                if e.code == 404:
                    return None   # deleted meanwhile
                if e.code != 409 or attempt == attempts - 1:
                    raise
            current = await self.client.get(STATEFULSETS, ns, name)
            if current["metadata"].get("uid") != meta.get("uid"):
                return None
        return None
