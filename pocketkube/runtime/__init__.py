"""Runs pods' containers for the node agent: the `Runtime` contract and its implementations.

`ProcessRuntime` runs each container as a real process tree on this machine (isolated with
namespaces and cgroups when root on Linux); see `base` for the contract, `images` for how
images map to host programs and `logs` for the CRI log format and `kubectl logs` reader.
"""

from .base import (Container, ContainerSpec, ExitStatus, ImageError, Mount, Runtime, Sandbox,
                   SandboxSpec, StartError)
from .logs import follow_log, read_log
from .process import ProcessRuntime

__all__ = ["Container", "ContainerSpec", "ExitStatus", "ImageError", "Mount", "ProcessRuntime",
           "Runtime", "Sandbox", "SandboxSpec", "StartError", "follow_log", "read_log"]
