"""Scale benchmark: a 10,000-replica Deployment on 100 simulated nodes, through kubectl.

Starts `pocketkube up --no-node --simulated-nodes 100` in a temporary directory, then times,
as a user at a terminal would see them:

1. `kubectl apply` of a 10,000-replica Deployment until every pod is Running and the
   Deployment is Available (all replicas available, Available=True);
2. a rolling update (`kubectl set image`) until `kubectl rollout status` reports success;
3. `kubectl delete deployment` until no pod is left;

and reports the control plane's resident memory with 10,000 pods (psutil). One pod watch,
started before step 1, counts Running and existing pods, so the benchmark does not load the
server with lists. Targets: each step <= 10 s, RSS <= 300 MB. Figures are printed, never
asserted.   python bench/scale.py [--replicas 10000] [--nodes 100] [--timeout 900] [--timeline]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS = "bench"
_local = threading.local()


def kubectl_binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "kubectl")
    return beside if os.path.exists(beside) else "kubectl"


class Cluster:
    def __init__(self, nodes: int):
        self.tmp = tempfile.mkdtemp(prefix="pk-bench-scale-")
        self.data = os.path.join(self.tmp, "data")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pocketkube", "up", "--data-dir", self.data, "--port", "0", "--no-node",
             "--simulated-nodes", str(nodes)],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.tmp, "server.log"), "w"), text=True,
            start_new_session=True, env=dict(os.environ, POCKETKUBE_LOG="WARNING"), cwd=ROOT)
        self.url = ""
        self.stopping = False
        for line in self.proc.stdout:
            if line.startswith("pocketkube is ready at "):
                self.url = line.split()[4]
            if line.startswith("export KUBECONFIG="):
                self.kubeconfig = line.strip().split("=", 1)[1]
                break
        if not self.url:
            raise RuntimeError(f"pocketkube up failed; see {self.tmp}/server.log")
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.data, "ca.crt"))
        with open(os.path.join(self.data, "token")) as f:
            self.token = f.read().strip()

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([kubectl_binary(), "--kubeconfig", self.kubeconfig,
                               "--cache-dir", os.path.join(self.tmp, "kcache"), *args],
                              input=input, capture_output=True, text=True, timeout=timeout)

    def req(self, path: str, timeout: float = 120):
        r = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        return urllib.request.urlopen(r, context=self.ctx, timeout=timeout)

    def get(self, path: str) -> dict:
        with self.req(path) as r:
            return json.load(r)

    def post(self, path: str, body: dict) -> dict:
        """POST over a kept-alive connection per thread (no TLS handshake per request)."""
        conn = getattr(_local, "conn", None)
        if conn is None:
            u = urllib.parse.urlsplit(self.url)
            conn = _local.conn = http.client.HTTPSConnection(u.hostname, u.port, context=self.ctx, timeout=120)
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"POST {path}: HTTP {resp.status}: {data[:200]!r}")
        return json.loads(data)

    def post_pod(self, node: str, name: str = "", image: str = "busybox", annotations: dict | None = None,
                 restart_policy: str = "Always") -> dict:
        """A pod posted already bound to `node` (no controller, no scheduler): the raw baselines."""
        meta: dict = {"labels": {"app": "raw"}}
        meta.update({"name": name} if name else {"generateName": "raw-"})
        if annotations:
            meta["annotations"] = annotations
        return self.post(f"/api/v1/namespaces/{NS}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node, "restartPolicy": restart_policy, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": image}]}})

    def apply(self, manifest: str) -> None:
        p = self.kubectl("apply", "-f", "-", input=manifest)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)

    def watch_namespace(self) -> "PodWatch":
        """Create the benchmark's namespace and start the one pod watch over it."""
        self.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        return PodWatch(self)

    def wait_nodes_ready(self, n: int, timeout: float = 300) -> list[str]:
        """Names of the Ready nodes, once there are `n` of them (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        names: list[str] = []
        while time.monotonic() < deadline:
            names = [nd["metadata"]["name"] for nd in self.get("/api/v1/nodes")["items"]
                     if any(x["type"] == "Ready" and x["status"] == "True"
                            for x in (nd.get("status") or {}).get("conditions", []))]
            if len(names) >= n:
                break
            time.sleep(0.2)
        return names

    def revision(self) -> int:
        """The store's revision: how many writes happened between two readings of it."""
        return int(self.get(f"/api/v1/namespaces/{NS}/pods?limit=1")["metadata"]["resourceVersion"])

    def rss_mb(self) -> float:
        import psutil
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.stopping = True
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except Exception:
            os.killpg(self.proc.pid, signal.SIGKILL)
        # A 10,000-pod store is hundreds of MB: runs must not fill the disk.
        shutil.rmtree(self.tmp, ignore_errors=True)


class PodWatch:
    """One watch on the namespace's pods: how many exist, how many are Running."""

    def __init__(self, cluster: Cluster):
        self.c = cluster
        self.phase: dict[str, str] = {}
        self.running = 0  # kept as events arrive: a count over 10,000 pods per event would eat a core
        self.timeline: list[tuple[float, int, int]] = []  # (time, pods, running) once per 0.5 s
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.rv = cluster.get(f"/api/v1/namespaces/{NS}/pods?limit=1")["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                with self.c.req(f"/api/v1/namespaces/{NS}/pods?watch=1&allowWatchBookmarks=true"
                                f"&resourceVersion={self.rv}&timeoutSeconds=3600", timeout=3600) as r:
                    for line in r:
                        ev = json.loads(line)
                        o = ev["object"]
                        self.rv = o["metadata"].get("resourceVersion", self.rv)
                        if ev["type"] == "BOOKMARK":
                            continue
                        if ev["type"] == "ERROR":
                            raise RuntimeError(o.get("message"))
                        name = o["metadata"]["name"]
                        with self.lock:
                            old = self.phase.pop(name, None) if ev["type"] == "DELETED" else self.phase.get(name)
                            if ev["type"] != "DELETED":
                                deleting = o["metadata"].get("deletionTimestamp")
                                self.phase[name] = "Terminating" if deleting else (o.get("status") or {}).get(
                                    "phase", "Pending")
                            self.running += (self.phase.get(name) == "Running") - (old == "Running")
                            now = time.perf_counter()
                            if not self.timeline or now - self.timeline[-1][0] >= 0.5:
                                self.timeline.append((now, len(self.phase), self.running))
                            self.changed.notify_all()
            except Exception as e:  # reconnect from the last revision seen
                if self.c.stopping or self.c.proc.poll() is not None:
                    return  # the server is gone: the benchmark is over
                print(f"  (pod watch restarted: {e})", file=sys.stderr)
                time.sleep(0.5)

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.phase), self.running

    def wait(self, pred, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self.lock:
            while not pred(len(self.phase), self.running):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 1.0))
        return True


def deployment(replicas: int, image: str) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"terminationGracePeriodSeconds": 1,
                                       "containers": [{"name": "app", "image": image}]}}}})


def available(c: Cluster, replicas: int) -> bool:
    d = c.get(f"/apis/apps/v1/namespaces/{NS}/deployments/web")
    st = d.get("status") or {}
    cond = next((x for x in st.get("conditions") or [] if x.get("type") == "Available"), {})
    return (st.get("availableReplicas") or 0) >= replicas and cond.get("status") == "True" \
        and (st.get("observedGeneration") or 0) >= d["metadata"]["generation"]


def writes(c: Cluster, since: int, pods: int) -> None:
    w = c.revision() - since
    print(f"     store writes in the step: {w} ({w / pods:.2f} per pod)")


def print_timeline(watch: PodWatch, since: float) -> None:
    with watch.lock:
        points = [x for x in watch.timeline if x[0] >= since]
    print("     " + " ".join(f"{t - since:.1f}s:{p}/{r}" for t, p, r in points))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=10000)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--timeline", action="store_true", help="print pods and Running pods every 0.5 s of each step")
    ap.add_argument("--timeout", type=float, default=900.0, help="give up on a step after this many seconds")
    args = ap.parse_args()
    n = args.replicas
    t_start = time.perf_counter()
    c = Cluster(args.nodes)
    results: dict[str, str] = {}
    try:
        # Wait for every simulated node to be Ready, so the clock starts with a settled cluster.
        c.wait_nodes_ready(args.nodes)
        print(f"pocketkube scale benchmark: {n} replicas on {args.nodes} simulated nodes "
              f"(control plane up in {time.perf_counter() - t_start:.1f} s, RSS {c.rss_mb():.0f} MB idle)")
        watch = c.watch_namespace()

        # 1. apply -> every pod Running and the Deployment Available.
        rev0 = c.revision()
        t0 = time.perf_counter()
        c.apply(deployment(n, "nginx:1.14"))
        ok = watch.wait(lambda total, running: running >= n, args.timeout)
        t_running = time.perf_counter() - t0
        while ok and not available(c, n) and time.perf_counter() - t0 < args.timeout:
            time.sleep(0.05)
        t_avail = time.perf_counter() - t0
        rss = c.rss_mb()
        if args.timeline:
            print_timeline(watch, t0)
        total, running = watch.counts()
        results["create"] = (f"{t_avail:6.1f} s  (all {running} pods Running after {t_running:.1f} s)"
                             if ok else f"not done after {args.timeout:.0f} s ({running}/{n} Running)")
        print(f"  1. apply -> {n} pods Running, Deployment Available: {results['create']}   (target <= 10 s)")
        print(f"     control-plane RSS with {total} pods: {rss:.0f} MB   (target <= 300 MB)")
        writes(c, rev0, n)

        # 2. rolling update to completion, as `kubectl rollout status` sees it.
        rev0 = c.revision()
        t0 = time.perf_counter()
        c.kubectl("-n", NS, "set", "image", "deployment/web", "app=nginx:1.16")
        st = c.kubectl("-n", NS, "rollout", "status", "deployment/web", f"--timeout={int(args.timeout)}s",
                       timeout=args.timeout + 30)
        t_roll = time.perf_counter() - t0
        if args.timeline:
            print_timeline(watch, t0)
        ok = st.returncode == 0
        total, running = watch.counts()
        roll_ok = ok
        results["rollout"] = f"{t_roll:6.1f} s" if ok else f"failed after {t_roll:.0f} s: {st.stderr.strip()}"
        print(f"  2. set image -> rollout status complete:          {results['rollout']}   (target <= 10 s)")
        watch.wait(lambda total, running: total <= n, args.timeout)
        print(f"     old pods gone after {time.perf_counter() - t0:.1f} s; RSS {c.rss_mb():.0f} MB")
        writes(c, rev0, n)

        # 3. delete -> no pods left.
        rev0 = c.revision()
        t0 = time.perf_counter()
        c.kubectl("-n", NS, "delete", "deployment", "web", timeout=args.timeout)
        ok = watch.wait(lambda total, running: total == 0, args.timeout)
        t_del = time.perf_counter() - t0
        if args.timeline:
            print_timeline(watch, t0)
        total, _ = watch.counts()
        del_ok = ok
        results["delete"] = f"{t_del:6.1f} s" if ok else f"not done after {args.timeout:.0f} s ({total} pods left)"
        print(f"  3. delete deployment -> zero pods:                 {results['delete']}   (target <= 10 s)")
        print(f"     control-plane RSS after: {c.rss_mb():.0f} MB")
        writes(c, rev0, n)

        # Raw baseline, same run: the same number of pods posted already bound to the nodes
        # (no controller, no scheduler), 16 at a time, until all are Running.
        nodes = c.wait_nodes_ready(args.nodes, 10)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: c.post_pod(nodes[i % len(nodes)], f"raw-{i}", "nginx:1.14"), range(n)))
        ok = watch.wait(lambda total, running: running >= n, args.timeout)
        t_raw = time.perf_counter() - t0
        if ok and "create" in results and t_avail:
            print(f"  raw baseline: {n} pods posted bound, all Running: {t_raw:6.1f} s; "
                  f"ratio apply-to-Available / raw {t_avail / t_raw:.2f}")
            # The machine's speed moves by tens of percent from one minute to the next: the
            # ratios to the baseline of the same run compare runs made at different times.
            steps = [(name, t) for name, t, done in (("rolling update", t_roll, roll_ok), ("delete", t_del, del_ok))
                     if done]
            if steps:
                print("  ratios to the raw baseline: " + ", ".join(f"{name} {t / t_raw:.2f}" for name, t in steps))
        else:
            print(f"  raw baseline: not done after {t_raw:.0f} s")
    except Exception as e:  # a benchmark reports, it does not fail
        print(f"  benchmark stopped: {e!r}")
    finally:
        c.stop()


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
