"""Container lifecycle hooks: postStart right after a container starts, preStop before it is
stopped, with the kubelet's failure messages.

preStop runs inside the grace period (what it uses is taken from the time left for SIGTERM);
a failed hook is reported (FailedPreStopHook) and the container is stopped anyway. A failed
postStart hook kills the container (FailedPostStartHook), which is then restarted per policy.
Handlers are exec (through the runtime), httpGet (to the pod, as an HTTP probe) and sleep.
"""

from __future__ import annotations

import asyncio

from ..runtime.base import Container, Runtime, Sandbox
from .probes import SUCCESS, http_probe


async def run_hook(handler: dict, runtime: Runtime, sandbox: Sandbox | None, inst: Container, container: dict,
                   host: str, timeout: float, sleep) -> str | None:
    """Run one handler; None on success, else the error the kubelet reports."""
    if handler.get("exec") is not None:
        argv = [str(a) for a in handler["exec"].get("command") or []]
        if sandbox is None:
            return "container is not running"
        try:
            code, out = await runtime.exec(sandbox, inst, argv, timeout)
        except (TimeoutError, asyncio.TimeoutError):
            return f"command {' '.join(argv)!r} timed out"
        except ProcessLookupError as e:
            return str(e)
        if code != 0:
            return (f"command '{' '.join(argv)}' exited with {code}: {out.decode('utf-8', 'replace')}")
        return None
    if handler.get("httpGet") is not None:
        result, output = await http_probe(handler["httpGet"], container, host, timeout)
        return None if result == SUCCESS else output
    if handler.get("sleep") is not None:
        await sleep(min(float(handler["sleep"].get("seconds") or 0), timeout))
        return None
    return "no handler specified"


def hook_failure_message(kind: str, handler: dict, container: str, pod: str, error: str) -> str:
    """The kubelet's event text for a failed hook (handlerRunner in pkg/kubelet/lifecycle)."""
    if handler.get("exec") is not None:
        cmd = "[" + " ".join(str(a) for a in handler["exec"].get("command") or []) + "]"
        return f"Exec lifecycle hook ({cmd}) for Container \"{container}\" in Pod \"{pod}\" failed - error: {error}"
    if handler.get("httpGet") is not None:
        return f"HTTP lifecycle hook ({handler['httpGet'].get('path', '')}) for Container \"{container}\" in Pod " \
               f"\"{pod}\" failed - error: {error}"
    return f"{kind} hook for Container \"{container}\" in Pod \"{pod}\" failed - error: {error}"
