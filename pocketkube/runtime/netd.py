"""The network helper: a tiny process that builds pod networks, outside the agent's GIL.

Building a pod network is a dozen blocking calls (unshare, mount, netlink round trips). Made
on a thread of the agent, each one gives up the GIL and then waits for it while the API
server's event loop runs: ~3 ms of kernel work took ~10 ms under load, one pod at a time.
Here they run in a process of their own, which also keeps the agent's threads out of the
network namespace switches.

This file runs as a script (`python -I -S netd.py <socket fd> <agent pid> <bridge> <gateway>
<prefix> <broadcast>`) and imports only the standard library and the `isolation` package.
Protocol, one JSON message per SOCK_SEQPACKET packet, answered in order:
  agent -> helper  {"id", "name", "ip"}: create netns `name` with eth0=ip, veth `name`
  helper -> agent  {"id"} once it exists, or {"id", "errno", "error"}
The agent journals each network before asking for it, so the helper keeps no state worth
saving: it dies with the agent (PR_SET_PDEATHSIG) or on EOF, and the next agent's
cleanup_orphans() removes whatever it was making.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from isolation import syscalls  # noqa: E402  (the isolation package, without pocketkube's imports)
from isolation.netns import PodNetwork  # noqa: E402

MAX_MSG = 1 << 16


def serve(sock: socket.socket, network: PodNetwork) -> None:
    while True:
        msg = sock.recv(MAX_MSG)
        if not msg:
            return     # the agent closed the socket
        req = json.loads(msg)
        reply: dict = {"id": req["id"]}
        try:
            os.close(network.create(req["name"], req["ip"]))
        except OSError as e:
            reply.update(errno=e.errno or 0, error=e.strerror or str(e))
        except Exception as e:     # a bug here must not take every later pod with it
            reply.update(errno=0, error=f"{type(e).__name__}: {e}")
        sock.send(json.dumps(reply).encode())


def main() -> None:
    fd, agent = int(sys.argv[1]), int(sys.argv[2])
    bridge, gateway, prefix, broadcast = sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
    os.set_inheritable(fd, False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # only the agent decides when we stop
    syscalls.set_pdeathsig(signal.SIGKILL)
    if os.getppid() != agent:
        return
    network = PodNetwork(bridge, gateway, prefix, broadcast)
    try:
        serve(socket.socket(fileno=fd), network)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        network.close()


if __name__ == "__main__":
    main()
