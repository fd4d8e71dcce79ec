"""The node side: `Agent` (the kubelet of a real node), `LogServer` (its log endpoint for a
remote control plane) and `simulated.SimulatedNodes` (nodes that run nothing, for scale).

Imports are lazy so that simulated nodes load without the runtime and its dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .kubelet import Agent
    from .logserver import LogServer

__all__ = ["Agent", "LogServer"]


def __getattr__(name: str):
    if name == "Agent":
        from .kubelet import Agent
        return Agent
    if name == "LogServer":
        from .logserver import LogServer
        return LogServer
    raise AttributeError(name)
