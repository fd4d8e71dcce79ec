"""StatefulSet benchmark: a 200-replica OrderedReady StatefulSet with a claim template, on
simulated nodes, through kubectl.

Starts `pocketkube up --no-node --simulated-nodes 20` in a temporary directory (the same
`Cluster` and pod watch as `bench/scale.py`), then times:

1. `kubectl apply` of the StatefulSet until all 200 pods are Running and Ready and the status
   says so. OrderedReady makes this a chain of 200 steps: claim (provisioned by `local-path`
   once the scheduler picks a node), pod, scheduled, Running and Ready, then the next ordinal;
2. a rolling update (`kubectl set image`) until `kubectl rollout status` reports success: 200
   pods deleted and made again one at a time, from the highest ordinal down;
3. the raw baseline: the same chain driven by hand, without the controller: for each ordinal,
   create the claim and the pod, and wait for the pod to be Running before the next. The ratio
   (1) / (3) is what the controller's bookkeeping costs on top of the chain itself.

Figures are printed, never asserted.   python bench/statefulset.py [--replicas 200] [--nodes 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scale import NS, Cluster, PodWatch  # shared with the scale benchmark


def claim_template() -> dict:
    return {"metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


def statefulset(replicas: int, image: str) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": NS},
        "spec": {"replicas": replicas, "serviceName": "db", "podManagementPolicy": "OrderedReady",
                 "selector": {"matchLabels": {"app": "db"}},
                 "volumeClaimTemplates": [claim_template()],
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"terminationGracePeriodSeconds": 1,
                                       "containers": [{"name": "db", "image": image,
                                                       "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}}})


def sts_ready(c: Cluster, n: int) -> bool:
    s = c.get(f"/apis/apps/v1/namespaces/{NS}/statefulsets/db")
    st = s.get("status") or {}
    return (st.get("readyReplicas") or 0) >= n and (st.get("observedGeneration") or 0) >= s["metadata"]["generation"]


def wait_phase(watch: PodWatch, name: str, phases: tuple[str, ...] | None, end: float) -> float | None:
    """Wait until the pod exists (phases None) or has one of `phases`; the time it did, or None."""
    with watch.lock:
        while True:
            ph = watch.phase.get(name)
            if ph is not None and (phases is None or ph in phases):
                return time.perf_counter()
            left = end - time.monotonic()
            if left <= 0:
                return None
            watch.changed.wait(min(left, 1.0))


def baseline(c: Cluster, watch: PodWatch, n: int, timeout: float) -> float | None:
    """OrderedReady by hand: claim, pod, wait Running; next ordinal."""
    tpl = claim_template()
    t0 = time.perf_counter()
    for i in range(n):
        c.post(f"/api/v1/namespaces/{NS}/persistentvolumeclaims",
             {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
              "metadata": {"name": f"data-base-{i}"}, "spec": tpl["spec"]})
        c.post(f"/api/v1/namespaces/{NS}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"base-{i}", "labels": {"app": "base"}},
            "spec": {"terminationGracePeriodSeconds": 1, "hostname": f"base-{i}",
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"data-base-{i}"}}],
                     "containers": [{"name": "db", "image": "nginx:1.14",
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}})
        if wait_phase(watch, f"base-{i}", ("Running",), time.monotonic() + timeout) is None:
            return None
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=200)
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=600.0, help="give up on a step after this many seconds")
    args = ap.parse_args()
    n = args.replicas
    t_start = time.perf_counter()
    c = Cluster(args.nodes)
    try:
        c.wait_nodes_ready(args.nodes, 120)
        print(f"pocketkube StatefulSet benchmark: {n} OrderedReady replicas with a claim template on "
              f"{args.nodes} simulated nodes (control plane up in {time.perf_counter() - t_start:.1f} s)")
        watch = c.watch_namespace()

        # 1. apply -> every pod Running and Ready, in order.
        t0 = time.perf_counter()
        c.apply(statefulset(n, "nginx:1.14"))
        # Follow the chain: when each ordinal appears and when it runs (Running is Ready here).
        end = time.monotonic() + args.timeout
        created: list[float] = []
        started: list[float] = []
        for i in range(n):
            tc = wait_phase(watch, f"db-{i}", None, end)
            tr = wait_phase(watch, f"db-{i}", ("Running",), end) if tc is not None else None
            if tr is None:
                break
            created.append(tc)
            started.append(tr)
        ok = len(started) == n
        while ok and not sts_ready(c, n) and time.perf_counter() - t0 < args.timeout:
            time.sleep(0.05)
        t_create = time.perf_counter() - t0
        claims = len(c.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims")["items"])
        bound = sum(1 for x in c.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims")["items"]
                    if (x.get("status") or {}).get("phase") == "Bound")
        _, running = watch.counts()
        print(f"  1. apply -> {n} pods Running and Ready (OrderedReady): "
              + (f"{t_create:6.1f} s  ({t_create / n * 1000:.0f} ms per ordinal; {bound}/{claims} claims Bound)"
                 if ok else f"not done after {args.timeout:.0f} s ({running}/{n} Running)"))

        if len(started) > 1:
            react = [created[i + 1] - started[i] for i in range(len(started) - 1)]
            run = [started[i] - created[i] for i in range(len(started))]
            print(f"     per ordinal: previous Running -> next pod created (the controller) "
                  f"{sum(react) / len(react) * 1000:.0f} ms mean, {max(react) * 1000:.0f} ms max; "
                  f"created -> Running (claim, scheduler, node) {sum(run) / len(run) * 1000:.0f} ms mean")

        # 2. rolling update to completion, as `kubectl rollout status` sees it.
        t0 = time.perf_counter()
        c.kubectl("-n", NS, "set", "image", "statefulset/db", "db=nginx:1.16")
        st = c.kubectl("-n", NS, "rollout", "status", "statefulset/db", f"--timeout={int(args.timeout)}s",
                       timeout=args.timeout + 30)
        t_roll = time.perf_counter() - t0
        s = c.get(f"/apis/apps/v1/namespaces/{NS}/statefulsets/db").get("status") or {}
        print("  2. set image -> rollout status complete:             "
              + (f"{t_roll:6.1f} s  ({t_roll / n * 1000:.0f} ms per pod; updatedReplicas "
                 f"{s.get('updatedReplicas')}, currentRevision == updateRevision: "
                 f"{s.get('currentRevision') == s.get('updateRevision')})"
                 if st.returncode == 0 else f"failed after {t_roll:.0f} s: {st.stderr.strip()}"))

        c.kubectl("-n", NS, "delete", "statefulset", "db", timeout=args.timeout)
        watch.wait(lambda total, running: total == 0, args.timeout)

        # 3. the same ordered chain by hand, without the controller.
        raw = baseline(c, watch, n, args.timeout)
        if raw is None:
            print("  3. raw baseline (claim, pod, wait Running; by hand): did not finish")
        else:
            print(f"  3. raw baseline (claim, pod, wait Running; by hand):  {raw:6.1f} s  "
                  f"({raw / n * 1000:.0f} ms per ordinal) -> ratio StatefulSet / raw {t_create / raw:.2f}")
        print(f"     control-plane RSS: {c.rss_mb():.0f} MB")
    except Exception as e:  # noqa: BLE001 - a benchmark reports, it does not fail
        print(f"  benchmark stopped: {e!r}")
    finally:
        c.stop()


if __name__ == "__main__":
    main()
