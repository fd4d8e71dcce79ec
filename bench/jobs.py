"""Job benchmark: completions 1,000 with parallelism 100 on simulated nodes, through kubectl.

Starts `pocketkube up --no-node --simulated-nodes 20` in a temporary directory, waits for every
node to be Ready, then times:

1. `kubectl apply` of a Job (completions 1,000, parallelism 100) whose pods finish one second
   after they start (`pocketkube.dev/simulate-exit-after: 1s`), until the Job has the Complete
   condition (`kubectl wait --for=condition=complete` would return); the floor is 10 s, ten
   waves of one-second pods;
2. the raw baseline, measured in the same run on the same warmed-up server: the same 1,000
   one-second pods driven by hand straight through the API, each created already bound to a
   node (no Job controller, no scheduler), keeping 100 in flight and starting the next as soon
   as one is seen Succeeded. The ratio says what the Job controller (its counting through the
   tracking finalizer and status writes) and the scheduler cost on top of the pod pipeline.

Figures are printed, never asserted.   python bench/jobs.py [--completions 1000] [--parallelism 100]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.scale import NS, Cluster, PodWatch

EXIT_AFTER = "pocketkube.dev/simulate-exit-after"


def job(completions: int, parallelism: int, duration: str) -> str:
    return json.dumps({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "crunch", "namespace": NS},
        "spec": {"completions": completions, "parallelism": parallelism,
                 "template": {"metadata": {"annotations": {EXIT_AFTER: duration}},
                              "spec": {"restartPolicy": "Never", "nodeSelector": {"type": "simulated"},
                                       "containers": [{"name": "work", "image": "busybox"}]}}}})


def job_status(c: Cluster) -> dict:
    return c.get(f"/apis/batch/v1/namespaces/{NS}/jobs/crunch").get("status") or {}


def succeeded(watch: PodWatch, prefix: str) -> int:
    with watch.lock:
        return sum(1 for name, phase in watch.phase.items() if name.startswith(prefix) and phase == "Succeeded")


def raw_baseline(c: Cluster, watch: PodWatch, nodes: list[str], n: int, parallel: int, duration: str,
                 timeout: float) -> float | None:
    """Keep `parallel` finishing pods in flight until `n` have succeeded; seconds taken."""
    names = (f"raw-{i}" for i in range(n))
    placement = itertools.cycle(nodes)
    created = 0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        while time.perf_counter() - t0 < timeout:
            done = succeeded(watch, "raw-")
            if done >= n:
                return time.perf_counter() - t0
            want = min(n, done + parallel) - created
            if want > 0:
                batch = [(next(names), next(placement)) for _ in range(want)]
                list(pool.map(lambda a: c.post_pod(a[1], a[0], annotations={EXIT_AFTER: duration},
                                                     restart_policy="Never"), batch))
                created += want
            time.sleep(0.01)
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--completions", type=int, default=1000)
    ap.add_argument("--parallelism", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--duration", default="1s", help="how long each simulated pod runs")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    n, par = args.completions, args.parallelism
    t_start = time.perf_counter()
    c = Cluster(args.nodes)
    try:
        names = c.wait_nodes_ready(args.nodes, 120)
        print(f"pocketkube Job benchmark: completions {n}, parallelism {par}, {args.duration} pods on "
              f"{args.nodes} simulated nodes (control plane up in {time.perf_counter() - t_start:.1f} s)")
        watch = c.watch_namespace()

        # 1. the Job, until Complete.
        t0 = time.perf_counter()
        c.apply(job(n, par, args.duration))
        st: dict = {}
        max_active = 0
        complete = False
        while time.perf_counter() - t0 < args.timeout:
            st = job_status(c)
            max_active = max(max_active, st.get("active") or 0)
            if any(x["type"] == "Complete" and x["status"] == "True" for x in st.get("conditions") or ()):
                complete = True
                break
            time.sleep(0.05)
        t_job = time.perf_counter() - t0
        floor = n / par * float(args.duration.rstrip("s"))
        if complete:
            print(f"  1. apply -> Job Complete ({st.get('succeeded')} succeeded): {t_job:6.1f} s   "
                  f"(floor {floor:.0f} s; at most {max_active} active seen, RSS {c.rss_mb():.0f} MB)")
        else:
            print(f"  1. Job not Complete after {args.timeout:.0f} s: {st.get('succeeded')} succeeded")

        # 2. the raw baseline: the same pods driven by hand.
        c.kubectl("-n", NS, "delete", "job", "crunch", "--cascade=background", timeout=args.timeout)
        watch.wait(lambda total, running: total == 0, args.timeout)
        t_raw = raw_baseline(c, watch, names[:args.nodes], n, par, args.duration, args.timeout)
        if t_raw is not None:
            print(f"  2. raw: {n} bound pods, {par} in flight, until all Succeeded: {t_raw:6.1f} s")
            if complete:
                print(f"     ratio Job (Complete) / raw:                          {t_job / t_raw:6.2f}")
        else:
            print(f"  2. raw: not done after {args.timeout:.0f} s")
    except Exception as e:  # noqa: BLE001 - a benchmark reports, it does not fail
        print(f"  benchmark stopped: {e!r}")
    finally:
        c.stop()


if __name__ == "__main__":
    main()
