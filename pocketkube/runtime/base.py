"""The contract between the node agent and whatever actually runs containers.

The agent only ever talks to a `Runtime`: it creates one sandbox per pod, starts each
container in it, waits for or stops the containers and removes the sandbox. Keeping this
contract free of API types lets the same agent drive real processes (`ProcessRuntime`) or a
simulation, and lets the runtime be tested without an API server.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Mount:
    """A host path (an already materialised volume) bind-mounted into a container."""

    host_path: str
    container_path: str
    read_only: bool = False


@dataclass
class SandboxSpec:
    """What a pod needs before any of its containers can start."""

    pod_uid: str
    namespace: str
    name: str
    hostname: str
    host_network: bool = False


@dataclass
class Sandbox:
    """A pod's shared environment.

    `ip` is None when the pod shares the host's network (hostNetwork, or isolation off): the
    agent then reports the node's IP as the pod IP, as the kubelet does for hostNetwork pods.
    """

    pod_uid: str
    ip: str | None
    isolated: bool
    hostname: str
    netns: str | None = None          # name under /run/netns, so `ip netns exec` works too
    veth: str | None = None           # host end of the pod's veth pair
    host_network: bool = False


@dataclass
class ContainerSpec:
    name: str
    image: str
    command: list[str]
    args: list[str]
    env: list[tuple[str, str]]
    working_dir: str | None
    mounts: list[Mount]
    memory_limit: int | None = None      # bytes
    cpu_limit_millis: int | None = None
    ports: list[int] = field(default_factory=list)


@dataclass
class ExitStatus:
    """How a container run ended, in the terms of a ContainerStateTerminated.

    reason is what the kubelet reports: "Completed" (exit 0), "Error" (non-zero) or
    "OOMKilled". A process killed by signal N has exit_code 128+N, as with Docker.
    """

    exit_code: int
    reason: str
    signal: int | None
    finished_at: float
    message: str = ""


class ImageError(Exception):
    """The image cannot be run on this node.

    `reason` is a waiting reason the kubelet uses ("ErrImagePull", "InvalidImageName"), so
    the agent can put it in the container status and an Event unchanged; `message` says
    what to install or how to map the image.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class StartError(Exception):
    """The container could not be started (missing executable, bad working directory...).

    The kubelet reports this as a terminated run with reason "StartError" and exit code 128,
    then restarts per the pod's restartPolicy; `exit_code` and `reason` carry those values.
    """

    def __init__(self, message: str, reason: str = "StartError", exit_code: int = 128) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.exit_code = exit_code


@dataclass(eq=False)
class Container:
    """Handle for one container run. `pid` is the host PID of the container's first process
    (its init when isolated). Runtime-private state lives in `_run`."""

    id: str
    pid: int
    started_at: float
    name: str = ""
    pod_uid: str = ""
    log_path: str = ""
    _run: Any = field(default=None, repr=False, compare=False)


class Runtime(abc.ABC):
    """Runs a pod's containers. Every method runs on the agent's event loop and never blocks
    it for long."""

    name: str
    isolated: bool
    isolation_note: str    # why isolation is off, or what it covers when on

    @abc.abstractmethod
    async def create_sandbox(self, spec: SandboxSpec) -> Sandbox: ...

    @abc.abstractmethod
    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Kill anything left in the pod, free its IP and remove its netns and cgroups."""

    @abc.abstractmethod
    def resolve(self, spec: ContainerSpec) -> list[str]:
        """The argv the container will run, or raise ImageError."""

    @abc.abstractmethod
    async def start(self, sandbox: Sandbox, spec: ContainerSpec, log_path: str) -> Container:
        """Start the container, writing its output to log_path in the CRI log format.
        Raises ImageError or StartError."""

    @abc.abstractmethod
    async def wait(self, c: Container) -> ExitStatus:
        """Return once the container's whole process tree is gone and its log is flushed."""

    @abc.abstractmethod
    async def stop(self, c: Container, grace_seconds: float) -> ExitStatus:
        """SIGTERM the container's processes, SIGKILL them after grace_seconds."""

    @abc.abstractmethod
    async def exec(self, sandbox: Sandbox, c: Container, argv: list[str],
                   timeout: float) -> tuple[int, bytes]:
        """Run argv inside the container (as an exec probe does); return the exit code and
        the combined stdout+stderr. Raises TimeoutError after `timeout` seconds (the process is
        killed) and ProcessLookupError when the container is not running."""

    @abc.abstractmethod
    async def cleanup_orphans(self) -> int:
        """Remove what a previous agent run left behind; return how many leftovers were found."""
