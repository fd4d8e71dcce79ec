"""`kubectl logs` on the node: which run's file to read, and the kubelet's refusals.

The kubelet decides from the container's status which instance a log request means
(`validateContainerLogStatus`): the running or terminated instance, or, with `previous`, the
one in lastState; a container still waiting has nothing to show and the request fails with
400 and the kubelet's message ("container "c" in pod "p" is waiting to start:
ContainerCreating"). Each run's output is its own file, `<container>/<restartCount>.log`, so
`--previous` is simply the file of the run before.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import AsyncIterator, Callable

from ..api.errors import ApiError
from ..clock import parse_rfc3339
from ..runtime.logs import follow_log, read_log


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def pick_container(pod: dict, container: str | None) -> tuple[str, bool]:
    """(container name, is init container), with the apiserver's messages for a bad choice."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    name = meta["name"]
    containers = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    if not container:
        if len(containers) == 1:
            return containers[0], False
        msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if inits:
            msg += f" or one of the init containers: [{' '.join(inits)}]"
        raise bad_request(msg)
    if container in containers:
        return container, False
    if container in inits:
        return container, True
    raise bad_request(f"container {container} is not valid for pod {name}")


def choose_run(status: dict | None, container: str, pod_name: str, previous: bool) -> tuple[str, int]:
    """(container id, run index) of the instance whose log the request means."""
    if status is None:
        raise bad_request(f'container "{container}" in pod "{pod_name}" is not available')
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated")
    count = int(status.get("restartCount") or 0)
    running, terminated, waiting = state.get("running"), state.get("terminated"), state.get("waiting")
    # The run in lastState is the one before the current one, unless nothing runs now (back-off).
    last_index = count if waiting is not None else count - 1
    if previous:
        if not last or not last.get("containerID"):
            raise bad_request(f'previous terminated container "{container}" in pod "{pod_name}" not found')
        return last["containerID"], max(0, last_index)
    if running is not None:
        return status.get("containerID") or "", count
    if terminated is not None:
        if terminated.get("containerID"):
            return terminated["containerID"], count
        if last and last.get("containerID"):
            return last["containerID"], max(0, last_index)
        raise bad_request(f'container "{container}" in pod "{pod_name}" is terminated')
    if last is not None:
        if not last.get("containerID"):
            raise bad_request(f'container "{container}" in pod "{pod_name}" is terminated')
        return last["containerID"], max(0, last_index)
    if waiting is not None:
        reason = waiting.get("reason") or ""
        if reason == "ErrImagePull":
            why = "image can't be pulled"
        elif reason == "ImagePullBackOff":
            why = "trying and failing to pull image"
        else:
            why = reason
        raise bad_request(f'container "{container}" in pod "{pod_name}" is waiting to start: {why}')
    raise bad_request(f'container "{container}" in pod "{pod_name}" is waiting to start - no logs yet')


def since_from(since_seconds: int | None, since_time: str | None) -> float | None:
    # Log records carry the wall-clock time the runtime wrote them, so --since is measured on
    # the wall clock too, not on the agent's (possibly fake) clock.
    if since_seconds is not None:
        return time.time() - since_seconds
    if since_time:
        return parse_rfc3339(since_time)
    return None


async def stream(path: str, since: float | None, tail: int | None, timestamps: bool, limit_bytes: int | None,
                 follow: bool, stopped: Callable[[], bool]) -> AsyncIterator[bytes]:
    if not follow:
        data = await asyncio.to_thread(read_log, path, since, tail, timestamps, limit_bytes)
        if data:
            yield data
        return
    async for chunk in follow_log(path, since, tail, timestamps, limit_bytes, stop=stopped):
        yield chunk


def run_log_path(pod_dir: str, container: str, index: int) -> str:
    return os.path.join(pod_dir, container, f"{index}.log")
