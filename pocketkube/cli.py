"""The `pocketkube` command: `up` runs a cluster in the foreground, `kubectl` talks to it.

Defaults follow k3s: one command, state under a data directory, a kubeconfig written for you.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys


def default_data_dir() -> str:
    return os.environ.get("POCKETKUBE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share", "pocketkube")


def raise_open_files_limit(cap: int = 1 << 20) -> int:
    """Raise the soft limit on open files to the hard one (at most `cap`), as Go programs such
    as the kubelet do at start: a node holds several descriptors per container (output pipes,
    pidfd, log) and per spare pod network, and 110 pods pass the common soft limit of 1024.
    Containers inherit it, as under containerd. Returns the soft limit now in force."""
    try:
        import resource
    except ImportError:     # not on this platform
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def _isolation(value: str) -> bool | None:
    return {"auto": None, "on": True, "off": False}[value]


def _up(args: argparse.Namespace) -> int:
    from .components import NodeOptions, default_node_name
    from .server.run import run_control_plane

    node = NodeOptions(name=None if args.no_node else (args.node_name or default_node_name()),
                       simulated=args.simulated_nodes, isolate=_isolation(args.isolation),
                       pod_cidr=args.pod_cidr)
    return run_control_plane(data_dir=args.data_dir, port=args.port, bind=args.bind,
                             compaction_window=args.compaction_window, tls_sans=args.tls_san,
                             print_kubeconfig=True, node=node,
                             node_grace_period=args.node_monitor_grace_period,
                             controllers=not args.no_controllers)


def _agent(args: argparse.Namespace) -> int:
    from .components import NodeOptions, default_node_name
    from .processes import run_agent

    name = None if args.no_node else (args.name or default_node_name())
    node = NodeOptions(name=name, simulated=args.simulated_nodes,
                       simulated_prefix=args.simulated_prefix or f"sim-{name or 'agent'}",
                       isolate=_isolation(args.isolation), pod_cidr=args.pod_cidr,
                       log_port=args.log_port, lease_interval=args.lease_interval,
                       simulated_start=args.simulated_start)
    data_dir = args.agent_dir or os.path.join(args.data_dir, f"agent-{name or 'simulated'}")
    return run_agent(args.server, args.token, args.ca_file, args.kubeconfig, data_dir, node)


def _controllers(args: argparse.Namespace) -> int:
    from .processes import run_controllers

    return run_controllers(args.kubeconfig)


def find_kubectl() -> str | None:
    """kubectl from PATH, else the one the optional `kubectl` extra installs beside Python."""
    found = shutil.which("kubectl")
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), "kubectl")
    return beside if os.path.exists(beside) else None


def _kubectl(args: argparse.Namespace, rest: list[str]) -> int:
    kubectl = find_kubectl()
    if kubectl is None:
        print("pocketkube: kubectl not found; install it, or: pip install 'pocketkube[kubectl]'",
              file=sys.stderr)
        return 127
    kubeconfig = os.path.join(args.data_dir, "kubeconfig")
    if not os.path.exists(kubeconfig):
        print(f"pocketkube: no kubeconfig at {kubeconfig}; start the cluster with: pocketkube up",
              file=sys.stderr)
        return 1
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    return subprocess.call([kubectl, *rest], env=env)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pocketkube", description="Kubernetes workloads in one Python package.")
    p.add_argument("--data-dir", default=default_data_dir(),
                   help="state, keys and kubeconfig (default: $POCKETKUBE_HOME or ~/.local/share/pocketkube)")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the control plane in the foreground")
    up.add_argument("--data-dir", default=argparse.SUPPRESS, help="as above")
    up.add_argument("--port", type=int, default=6443, help="HTTPS port (default 6443)")
    up.add_argument("--bind", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    up.add_argument("--compaction-window", type=float, default=300.0,
                    help="seconds of change history kept for resuming watches (default 300)")
    up.add_argument("--tls-san", action="append", default=[],
                    help="extra name or IP for the server certificate (repeatable)")
    up.add_argument("--node-name", help="name of this machine's node (default: the host name)")
    up.add_argument("--no-node", action="store_true", help="run no local node (control plane only)")
    up.add_argument("--no-controllers", action="store_true",
                    help="serve only the API: no scheduler or controllers (as envtest)")
    up.add_argument("--simulated-nodes", type=int, default=0, metavar="N",
                    help="also register N simulated nodes whose pods run nothing (see docs/simulated.md)")
    up.add_argument("--isolation", choices=["auto", "on", "off"], default="auto",
                    help="isolate pods with namespaces and cgroups (auto: when root on Linux)")
    up.add_argument("--pod-cidr", help="pod IP range of the local node (default 10.42.0.0/24)")
    up.add_argument("--node-monitor-grace-period", type=float, default=40.0, metavar="SECONDS",
                    help="a node whose lease is this stale becomes NotReady/Unknown (default 40)")
    up.set_defaults(func=_up)
    ag = sub.add_parser("agent", help="join this machine to a cluster as a node")
    ag.add_argument("--data-dir", default=argparse.SUPPRESS, help="as above")
    ag.add_argument("--server", help="the control plane's URL, e.g. https://10.0.0.5:6443")
    ag.add_argument("--token", help="the cluster token: the file 'token' in the control plane's data dir")
    ag.add_argument("--ca-file", help="the control plane's ca.crt (without it the server is not verified)")
    ag.add_argument("--kubeconfig", help="use this kubeconfig instead of --server/--token/--ca-file")
    ag.add_argument("--name", help="node name (default: the host name)")
    ag.add_argument("--no-node", action="store_true", help="only simulated nodes")
    ag.add_argument("--simulated-nodes", type=int, default=0, metavar="N")
    ag.add_argument("--simulated-prefix", help="name prefix of simulated nodes")
    ag.add_argument("--isolation", choices=["auto", "on", "off"], default="auto")
    ag.add_argument("--pod-cidr", help="pod IP range of this node (default: a /24 of 10.42.0.0/16 chosen by name)")
    ag.add_argument("--lease-interval", type=float, default=10.0, metavar="SECONDS",
                    help="how often the node lease is renewed (default 10)")
    ag.add_argument("--simulated-start", type=int, default=10000,
                    help="first index of this agent's simulated nodes (keeps their fake IP ranges apart)")
    ag.add_argument("--log-port", type=int, default=10250, help="HTTPS port serving logs to the control plane")
    ag.add_argument("--agent-dir", help="state directory of this agent (default: <data-dir>/agent-<name>)")
    ag.set_defaults(func=_agent)
    ct = sub.add_parser("controllers", help="run the scheduler and controllers against a server")
    ct.add_argument("--kubeconfig", required=True)
    ct.set_defaults(func=_controllers)
    k = sub.add_parser("kubectl", help="run kubectl against this cluster", add_help=False)
    k.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Everything after "kubectl" belongs to kubectl, flags included.
    if "kubectl" in argv:
        i = argv.index("kubectl")
        args = parser.parse_args(argv[: i + 1])
        return _kubectl(args, argv[i + 1:])
    args = parser.parse_args(argv)
    raise_open_files_limit()
    return args.func(args)
