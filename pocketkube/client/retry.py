"""Read-modify-write with optimistic concurrency, as client-go's `retry.RetryOnConflict`.

Controllers that change an object someone else also writes (finalizers, taints, namespace
status) must re-read and try again on 409 Conflict; an object that is gone (404) needs nothing
more. Keeping the loop here means every caller gives up the same way.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ..api.errors import ApiError


async def retry_on_conflict(read: Callable[[], Awaitable[dict | None]],
                            write: Callable[[dict], Awaitable[Any]],
                            what: str, attempts: int = 16) -> Any:
    """`write(read())` until it does not conflict. `read` returns None when there is nothing to
    do; `write` may return without writing. Returns what `write` returned, None if gone."""
    for _ in range(attempts):
        obj = await read()
        if obj is None:
            return None
        try:
            return await write(obj)
        except ApiError as e:
            if e.code == 404:
                return None
            if e.code != 409:
                raise
    raise RuntimeError(f"{what}: kept conflicting after {attempts} attempts")


async def get_or_none(client, res, namespace: str | None, name: str) -> dict | None:
    """GET that answers None for 404."""
    try:
        return await client.get(res, namespace, name)
    except ApiError as e:
        if e.code == 404:
            return None
        raise
