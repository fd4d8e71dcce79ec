"""Which long-running components a process runs, and how they are built.

`pocketkube up` runs the control loops (scheduler, controllers) and a node; `pocketkube agent`
runs only a node against a remote server; `pocketkube controllers` only the control loops.
Each component has `start()` and `stop()` and talks to the API through a `Client`, so the same
objects run in-process or against a server over HTTPS.
"""

from __future__ import annotations

import os
import socket
import zlib
from dataclasses import dataclass

from .client import Client
from .clock import Clock


@dataclass
class NodeOptions:
    """The node side of a process: a real node running processes, and/or simulated nodes."""

    name: str | None = None            # None: no real node
    simulated: int = 0
    simulated_prefix: str = "sim"
    isolate: bool | None = None        # None: isolate when the OS allows
    pod_cidr: str | None = None        # None: derived from the node name
    log_port: int | None = None        # serve logs to a remote control plane on this port
    lease_interval: float = 10.0       # kept well inside the control plane's node grace period
    simulated_start: int = 0           # first index of simulated nodes (distinct IP ranges per group)


def default_node_name() -> str:
    return socket.gethostname().lower().split(".")[0] or "node"


def pod_cidr_for(name: str, first: bool) -> str:
    """10.42.0.0/24 for the control plane's own node; a stable /24 per name for joined agents."""
    if first:
        return "10.42.0.0/24"
    return f"10.42.{zlib.crc32(name.encode()) % 250 + 1}.0/24"


CONTROLLERS = [
    ("pocketkube.controllers.replicaset", "ReplicaSetController"),
    ("pocketkube.controllers.deployment", "DeploymentController"),
    ("pocketkube.controllers.garbagecollector", "GarbageCollector"),
    ("pocketkube.controllers.namespace", "NamespaceController"),
    ("pocketkube.controllers.serviceaccount", "ServiceAccountController"),
    ("pocketkube.controllers.statefulset", "StatefulSetController"),
    ("pocketkube.controllers.daemonset", "DaemonSetController"),
    ("pocketkube.controllers.job", "JobController"),
    ("pocketkube.controllers.cronjob", "CronJobController"),
    ("pocketkube.controllers.ttlafterfinished", "TTLAfterFinishedController"),
    ("pocketkube.controllers.persistentvolume", "PersistentVolumeController"),
    ("pocketkube.controllers.persistentvolume.provisioner", "LocalPathProvisioner"),
    ("pocketkube.controllers.persistentvolume.protection", "StorageProtectionController"),
]


def _controller_classes() -> list:
    import importlib

    return [getattr(importlib.import_module(module), name) for module, name in CONTROLLERS]


def control_loops(client: Client, clock: Clock, node_grace_period: float = 40.0, informers=None) -> list:
    """The controller manager, the scheduler and the node lifecycle controller over one set of
    informers (`informers`, a SharedInformers, when the caller shares it further)."""
    from .client.informer import SharedInformers
    from .controllers.base import ControllerManager
    from .controllers.nodelifecycle import NodeLifecycleController
    from .scheduler import Scheduler

    informers = informers or SharedInformers(client)
    return [ControllerManager(client, clock, _controller_classes(), informers),
            Scheduler(client, clock, informers=informers),
            NodeLifecycleController(client, clock, grace_period=node_grace_period, informers=informers)]


def node_components(client: Client, opts: NodeOptions, clock: Clock, state_dir: str,
                    log_router=None, first: bool = True, token: str = "",
                    cert: tuple[str, str] | None = None, informers=None) -> list:
    out: list = []
    if opts.name:
        from .agent import Agent
        from .runtime.process import ProcessRuntime

        runtime = ProcessRuntime(os.path.join(state_dir, "runtime"),
                                 node_cidr=opts.pod_cidr or pod_cidr_for(opts.name, first),
                                 isolate=opts.isolate)
        agent = Agent(client, opts.name, runtime, state_dir, clock, log_port=opts.log_port)
        if log_router is not None:
            log_router.register(opts.name, agent)
        out.append(agent)
        if opts.log_port and cert is not None:
            from .agent.logserver import LogServer

            out.append(LogServer(agent, token, cert[0], cert[1], "0.0.0.0", opts.log_port))
    if opts.simulated:
        from .agent.simulated import SimulatedNodes

        out.append(SimulatedNodes(client, opts.simulated, opts.simulated_prefix, clock,
                                  start_index=opts.simulated_start, renew_interval=opts.lease_interval,
                                  informers=informers))
    return out
