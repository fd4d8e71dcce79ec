"""DaemonSet benchmark: one daemon pod on each of 1,000 simulated nodes, through kubectl.

Starts `pocketkube up --no-node --simulated-nodes 1000` in a temporary directory, waits for every
node to be Ready, then times, as a user at a terminal would see them:

1. `kubectl apply` of a DaemonSet until every daemon pod is Running and the DaemonSet's status
   says all 1,000 are ready (numberReady = desiredNumberScheduled = 1,000), and until
   `kubectl rollout status` reports success;
2. a rolling update with maxUnavailable 10% (`kubectl set image`) until `kubectl rollout status`
   reports success;
3. the raw baseline, measured in the same run on the same warmed-up server: the same 1,000 pods
   created directly through the API, each already bound to its node (no controller, no
   scheduler), until all are Running. The ratio says what the DaemonSet controller and the
   scheduler cost on top of the pod pipeline itself.

Figures are printed, never asserted.   python bench/daemonset.py [--nodes 1000] [--timeout 600]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.scale import NS, Cluster


def daemonset(image: str) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"terminationGracePeriodSeconds": 1,
                                       "containers": [{"name": "agent", "image": image}]}}}})


def ds_status(c: Cluster) -> dict:
    return c.get(f"/apis/apps/v1/namespaces/{NS}/daemonsets/agent").get("status") or {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=600.0, help="give up on a step after this many seconds")
    args = ap.parse_args()
    n = args.nodes
    t_start = time.perf_counter()
    c = Cluster(n)
    try:
        names = c.wait_nodes_ready(n, 300)
        print(f"pocketkube DaemonSet benchmark: {n} simulated nodes "
              f"(control plane and nodes up in {time.perf_counter() - t_start:.1f} s, RSS {c.rss_mb():.0f} MB)")
        watch = c.watch_namespace()

        # 1. apply -> a Running pod on every node, status all ready, rollout status done.
        t0 = time.perf_counter()
        c.apply(daemonset("fluentd:v1"))
        ok = watch.wait(lambda total, running: running >= n, args.timeout)
        t_running = time.perf_counter() - t0
        while ok and time.perf_counter() - t0 < args.timeout:
            st = ds_status(c)
            if st.get("desiredNumberScheduled") == n and st.get("numberReady") == n:
                break
            time.sleep(0.05)
        t_ready = time.perf_counter() - t0
        st = c.kubectl("-n", NS, "rollout", "status", "daemonset/agent", f"--timeout={int(args.timeout)}s",
                       timeout=args.timeout + 30)
        t_rollout = time.perf_counter() - t0
        total, running = watch.counts()
        if ok:
            print(f"  1. apply -> {n} daemon pods Running:              {t_running:6.1f} s")
            print(f"     status numberReady = desired = {n}:           {t_ready:6.1f} s")
            print(f"     kubectl rollout status done:                  {t_rollout:6.1f} s  "
                  f"({'ok' if st.returncode == 0 else st.stderr.strip()})")
        else:
            print(f"  1. apply: not done after {args.timeout:.0f} s ({running}/{n} Running)")
        print(f"     control-plane RSS with {total} daemon pods: {c.rss_mb():.0f} MB")

        # 2. rolling update, 10% of the nodes at a time.
        t0 = time.perf_counter()
        c.kubectl("-n", NS, "set", "image", "daemonset/agent", "agent=fluentd:v2")
        st = c.kubectl("-n", NS, "rollout", "status", "daemonset/agent", f"--timeout={int(args.timeout)}s",
                       timeout=args.timeout + 30)
        t_roll = time.perf_counter() - t0
        print(f"  2. set image -> rollout status (maxUnavailable 10%): "
              f"{t_roll:6.1f} s  ({'ok' if st.returncode == 0 else st.stderr.strip()})")

        # 3. the raw baseline: the same pods, bound by hand, straight through the API.
        c.kubectl("-n", NS, "delete", "daemonset", "agent", timeout=args.timeout)
        watch.wait(lambda total, running: total == 0, args.timeout)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(c.post_pod, names[:n]))
        ok = watch.wait(lambda total, running: running >= n, args.timeout)
        t_raw = time.perf_counter() - t0
        if ok:
            print(f"  3. raw: {n} pods created already bound -> Running: {t_raw:6.1f} s")
            print(f"     ratio DaemonSet (all Running) / raw:          {t_running / t_raw:6.2f}")
        else:
            print(f"  3. raw: not done after {args.timeout:.0f} s")
    except Exception as e:  # a benchmark reports, it does not fail
        print(f"  benchmark stopped: {e!r}")
    finally:
        c.stop()


if __name__ == "__main__":
    main()
