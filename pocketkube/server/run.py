"""Starting and stopping a control plane: store, API, HTTPS server, control loops, a node.

`pocketkube up` calls `run_control_plane`, which owns the event loop for the process: it opens
the store, creates credentials and the kubeconfig on first start, serves HTTPS, starts the
scheduler and controllers and the local node agent (all through the in-process client), and
shuts everything down in reverse order on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import time

from aiohttp import web

from ..api import schema
from ..api.core import Api
from ..client.informer import SharedInformers
from ..client.inprocess import InProcessClient
from ..clock import Clock
from ..components import NodeOptions, control_loops, node_components
from ..store.sqlite import SqliteStore
from .app import Server, ssl_context
from .credentials import (certificates_ready, client_host, default_sans, ensure_credentials, private_dir,
                          write_kubeconfig)

log = logging.getLogger("pocketkube")


class ControlPlane:
    """Everything `pocketkube up` runs in one process."""

    def __init__(self, data_dir: str, port: int = 6443, bind: str = "127.0.0.1",
                 compaction_window: float = 300.0, tls_sans: list[str] | None = None,
                 clock: Clock | None = None, node: NodeOptions | None = None,
                 controllers: bool = True, node_grace_period: float = 40.0):
        self.node_grace_period = node_grace_period
        self.node_options = node
        self.run_controllers = controllers
        self.components: list = []
        self.data_dir = os.path.abspath(data_dir)
        self.port = port
        self.bind = bind
        self.compaction_window = compaction_window
        self.tls_sans = tls_sans or []
        self.clock = clock or Clock()
        self.store: SqliteStore | None = None
        self.api: Api | None = None
        self.server: Server | None = None
        self._runner: web.AppRunner | None = None
        self.kubeconfig = os.path.join(self.data_dir, "kubeconfig")
        self.url = ""

    async def start(self) -> None:
        private_dir(self.data_dir)
        sans = default_sans(self.bind, self.tls_sans)
        # Certificates are made by a child process while the rest starts: cryptography's modules
        # (11 MB) then never enter this process, whose idle memory is a target, and the work runs
        # on the other core. A restart with valid certificates starts none.
        making = None
        if not certificates_ready(self.data_dir, sans):
            making = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pocketkube.server.credentials", self.data_dir, *sans,
                stdin=asyncio.subprocess.DEVNULL)
        try:
            self.store = SqliteStore(os.path.join(self.data_dir, "state.db"),
                                     compaction_window=self.compaction_window, clock=self.clock.now)
            self.api = Api(self.store, self.clock)
            schema.load()
        finally:
            # Reaped whatever happens here: no child is left behind by a start that failed.
            exit_code = 0 if making is None else await making.wait()
        if exit_code != 0:
            raise RuntimeError(f"making the certificates in {self.data_dir} failed (see above)")
        creds = ensure_credentials(self.data_dir, sans)
        host = client_host(self.bind)
        self.server = Server(self.api, creds.token, f"{host}:{self.port}")
        self._runner = web.AppRunner(self.server.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port,
                           ssl_context=ssl_context(creds.server_cert, creds.server_key),
                           reuse_address=True, backlog=1024)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"https://{host}:{self.port}"
        await self.api.bootstrap()
        write_kubeconfig(creds, self.url, self.kubeconfig)
        # /readyz is the API server's own readiness, as kube-apiserver's: it serves from here
        # on, while the controllers and the node start behind it.
        self.server.ready.set()
        client = InProcessClient(self.api)
        # One watch per resource for everything in this process that reads it (the controllers
        # start and stop these informers; without them, each component keeps its own).
        informers = None
        if self.run_controllers:
            informers = SharedInformers(client)
            self.components += control_loops(client, self.clock, self.node_grace_period, informers)
        if self.node_options is not None:
            # Heartbeats must come several times per grace period, or nodes flap.
            self.node_options.lease_interval = min(self.node_options.lease_interval,
                                                   self.node_grace_period / 4)
            self.components += node_components(client, self.node_options, self.clock,
                                               os.path.join(self.data_dir, "node"), self.server.logs,
                                               informers=informers)
        for c in self.components:
            await c.start()

    async def stop(self) -> None:
        for c in reversed(self.components):
            try:
                await c.stop()
            except Exception:
                log.exception("stopping %s", type(c).__name__)
        if self._runner is not None:
            await self._runner.cleanup()
        if self.store is not None:
            await self.store.close()


def settle_heap() -> None:
    """Move what start-up built (schemas, modules, caches: long-lived) out of the collector's
    sight. A full collection walks every tracked object; with the OpenAPI schemas loaded that
    is a pause of tens of milliseconds in the middle of requests. Collect less often, too: a
    control plane allocates many short-lived dicts that reference counting frees anyway, and
    the objects its caches keep survive every young collection that walks them (measured with
    10,000 pods: 140 collections of 10,000 took 1.3 s, 13 of 50,000 took 0.5 s; a rolling update
    of them spent 0.44-0.50 s in young collections at 50,000, 0.13-0.15 s at 100,000 to 400,000,
    with fewer pauses over 10 ms and the same resident memory)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(200_000, 20, 50)


def _install_fast_loop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def setup_process() -> None:
    logging.basicConfig(level=os.environ.get("POCKETKUBE_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _install_fast_loop()


async def wait_for_signal() -> None:
    """Until Ctrl-C or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")


def run_control_plane(data_dir: str, port: int = 6443, bind: str = "127.0.0.1",
                      compaction_window: float = 300.0, tls_sans: list[str] | None = None,
                      print_kubeconfig: bool = True, node: NodeOptions | None = None,
                      node_grace_period: float = 40.0, controllers: bool = True) -> int:
    setup_process()
    started = time.monotonic()

    async def main() -> int:
        cp = ControlPlane(data_dir, port, bind, compaction_window, tls_sans, node=node,
                          node_grace_period=node_grace_period, controllers=controllers)
        try:
            await cp.start()
        except OSError as e:
            print(f"pocketkube: cannot listen on {bind}:{port}: {e.strerror or e}", file=sys.stderr)
            await cp.stop()
            return 1
        except RuntimeError as e:
            print(f"pocketkube: {e}", file=sys.stderr)
            await cp.stop()
            return 1
        settle_heap()
        if print_kubeconfig:
            print(f"pocketkube is ready at {cp.url} ({time.monotonic() - started:.2f}s)", flush=True)
            print(f"export KUBECONFIG={cp.kubeconfig}", flush=True)
        await wait_for_signal()
        await cp.stop()
        return 0

    return asyncio.run(main())
