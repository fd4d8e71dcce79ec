"""A stand-in agent for the crash test: starts a pod (and SPARES spare pod networks), reports
what it created, then waits to be killed with SIGKILL.
Usage: victim.py STATE_DIR CIDR BRIDGE MARKER [SPARES [fork|vspawn]]"""

import asyncio
import json
import sys

from pocketkube.runtime import ContainerSpec, ProcessRuntime, SandboxSpec
from pocketkube.runtime.spawn import HelperSpawner


async def main() -> None:
    state_dir, cidr, bridge, marker = sys.argv[1:5]
    spares = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    fork = len(sys.argv) > 6 and sys.argv[6] == "fork"
    rt = ProcessRuntime(state_dir, node_cidr=cidr, bridge=bridge)
    if fork:    # the spawn helper's Python path, which forks processes ahead
        rt._spawner = HelperSpawner(fork=True)
    rt.start_pool(spares)
    sandbox = await rt.create_sandbox(SandboxSpec("victim-pod", "default", "victim", "victim"))
    deadline = asyncio.get_running_loop().time() + 10
    while rt.networks is not None and rt.networks.spares < spares:    # refilled after the pod
        assert asyncio.get_running_loop().time() < deadline, "the pool did not refill"
        await asyncio.sleep(0.01)
    started = []
    for name, command in (("main", ["sleep", marker]),
                          ("forker", ["sh", "-c", f"sleep {marker} & sleep {marker}"])):
        spec = ContainerSpec(name=name, image="busybox", command=command, args=[], env=[],
                             working_dir=None, mounts=[], memory_limit=64 << 20)
        started.append(await rt.start(sandbox, spec, f"{state_dir}/{name}.log"))
    helper = rt._spawner.helper_pid

    def helper_children() -> list[int]:
        with open(f"/proc/{helper}/task/{helper}/children") as f:
            return [int(p) for p in f.read().split()]
    while fork and rt.isolated and spares and len(helper_children()) <= len(started):   # forked ahead again
        assert asyncio.get_running_loop().time() < deadline + 10, "the helper forked nothing ahead"
        await asyncio.sleep(0.01)
    print(json.dumps({
        "isolated": rt.isolated, "netns": sandbox.netns, "ip": sandbox.ip,
        "spares": [k for k, _ in rt.networks._spares] if rt.networks is not None else [],
        "pids": [c.pid for c in started], "helper": rt._spawner.helper_pid,
        "helper_children": helper_children(),
        "cgroups": [d for c in started if c._run.cgroup for d in c._run.cgroup.dirs],
    }), flush=True)
    await asyncio.sleep(3600)


asyncio.run(main())
