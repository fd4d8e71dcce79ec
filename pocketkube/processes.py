"""The processes besides `up`: `pocketkube agent` (a node joining a server) and
`pocketkube controllers` (the control loops against any server).

Both are clients of a remote API over HTTPS; they build the same components `up` runs
in-process and stop them cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import sys

from .client.http import HttpClient
from .clock import Clock
from .components import NodeOptions, control_loops, node_components
from .server.run import setup_process, wait_for_signal


async def _run(components: list, client) -> int:
    started: list = []
    try:
        for c in components:
            await c.start()
            started.append(c)
        await wait_for_signal()
    finally:
        for c in reversed(started):
            await c.stop()
        await client.close()
    return 0


def run_agent(server: str, token: str | None, ca_file: str | None, kubeconfig: str | None,
              data_dir: str, node: NodeOptions) -> int:
    setup_process()
    if kubeconfig:
        client = HttpClient.from_kubeconfig(kubeconfig)
    else:
        if not server or not token:
            print("pocketkube agent: --server and --token (or --kubeconfig) are required", file=sys.stderr)
            return 2
        ca = None
        if ca_file:
            with open(ca_file, "rb") as f:
                ca = f.read()
        client = HttpClient(server, token, ca, insecure=ca is None)
    from .server.credentials import default_sans, ensure_credentials

    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    cert = None
    if node.log_port:
        creds = ensure_credentials(data_dir, default_sans("0.0.0.0"))
        cert = (creds.server_cert, creds.server_key)

    async def main() -> int:
        comps = node_components(client, node, Clock(), data_dir, first=False,
                                token=client.token or "", cert=cert)
        return await _run(comps, client)
    print(f"pocketkube agent {node.name or ''} joining {client.server}", flush=True)
    return asyncio.run(main())


def run_controllers(kubeconfig: str) -> int:
    setup_process()

    async def main() -> int:
        client = HttpClient.from_kubeconfig(kubeconfig)
        return await _run(control_loops(client, Clock()), client)
    return asyncio.run(main())
