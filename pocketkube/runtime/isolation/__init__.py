"""Linux isolation primitives for ProcessRuntime: syscalls, rtnetlink, pod networks, IPAM."""
