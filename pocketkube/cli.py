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


def _up(args: argparse.Namespace) -> int:
    from .server.run import run_control_plane

    return run_control_plane(data_dir=args.data_dir, port=args.port, bind=args.bind,
                             compaction_window=args.compaction_window, tls_sans=args.tls_san,
                             print_kubeconfig=True)


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
    up.set_defaults(func=_up)
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
    return args.func(args)
