"""Pod benchmark: process pods from create to Running, and simulated nodes to Ready.

1. 100 process pods (`sleep 3600`) created at once on the local node: time from each create
   to the watch event that shows it Running (p50/p99), and pods/s overall; beside it, the raw
   posix_spawn rate of the same command in this process, for a ratio. Each create has its own
   connection, opened (TLS handshake done) before the clock starts, as a client keeps its
   connections alive: the figure is pod start-up, not TLS handshakes.
2. A control plane with 5,000 simulated nodes: time from start until all are Ready.

Figures are printed, never asserted.   python bench/pods.py [--pods 100] [--nodes 5000]
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

from api import compile_package, pct, server_env  # shared with the API benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(data_dir: str, *extra: str) -> tuple[subprocess.Popen, str, float]:
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "pocketkube", "up", "--data-dir", data_dir, "--port", "0", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                         env=server_env())
    for line in p.stdout:
        if line.startswith("pocketkube is ready at "):
            return p, line.split()[4], time.perf_counter() - t0
    raise RuntimeError("pocketkube up failed")


class Http:
    def __init__(self, url: str, data_dir: str):
        self.url = url
        self.ctx = ssl.create_default_context(cafile=os.path.join(data_dir, "ca.crt"))
        self.token = open(os.path.join(data_dir, "token")).read().strip()

    def req(self, method: str, path: str, body=None):
        r = urllib.request.Request(self.url + path, method=method,
                                   data=json.dumps(body).encode() if body is not None else None,
                                   headers={"Authorization": f"Bearer {self.token}",
                                            "Content-Type": "application/json"})
        return urllib.request.urlopen(r, context=self.ctx, timeout=120)

    def connection(self) -> http.client.HTTPSConnection:
        """A connection already past its TLS handshake, for requests on the clock."""
        u = urllib.parse.urlsplit(self.url)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=self.ctx, timeout=120)
        conn.connect()
        return conn

    def post(self, conn: http.client.HTTPSConnection, path: str, body) -> None:
        conn.request("POST", path, body=json.dumps(body), headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status >= 300:
            raise RuntimeError(f"POST {path}: {r.status} {r.reason}")


def cpu_seconds(pid: int, children: bool = False, main_thread: bool = False) -> float:
    """CPU time (user+system) of a process, of its main thread (the event loop), or of its
    direct children (helpers) together."""
    def of(p: str) -> tuple[int, float]:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if main_thread:
        return of(f"{pid}/task/{pid}")[1]
    if not children:
        return of(str(pid))[1]
    total = 0.0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid, cpu = of(p)
            except (OSError, ValueError, IndexError):
                continue
            total += cpu if ppid == pid else 0.0
    return total


def cpu_ticks() -> tuple[int, int, int]:
    """(all, stolen, idle) CPU time of the machine so far, in ticks: a VM whose host runs others
    loses "steal" time, which shows up as noise in every figure here."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields), fields[7] if len(fields) > 7 else 0, fields[3] + fields[4]


def raw_spawn_rate(n: int) -> float:
    t0 = time.perf_counter()
    pids = [os.posix_spawn("/bin/sleep", ["sleep", "3600"], os.environ) for _ in range(n)]
    dt = time.perf_counter() - t0
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return n / dt


def process_pods(n: int) -> dict:
    tmp = tempfile.mkdtemp(prefix="pk-bench-pods-")
    proc, url, _ = start(os.path.join(tmp, "data"))
    http = Http(url, os.path.join(tmp, "data"))
    try:
        # Wait for the local node to be Ready.
        deadline = time.time() + 30
        while time.time() < deadline:
            nodes = json.load(http.req("GET", "/api/v1/nodes"))["items"]
            if nodes and any(c["type"] == "Ready" and c["status"] == "True"
                             for c in nodes[0]["status"].get("conditions", [])):
                break
            time.sleep(0.1)
        rv = json.load(http.req("GET", "/api/v1/namespaces/default/pods"))["metadata"]["resourceVersion"]
        created: dict[str, float] = {}
        running: dict[str, float] = {}
        done = threading.Event()

        def watch():
            with http.req("GET", f"/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&timeoutSeconds=120") as r:
                for line in r:
                    ev = json.loads(line)
                    o = ev["object"]
                    if (o.get("status") or {}).get("phase") == "Running" and o["metadata"]["name"] not in running:
                        running[o["metadata"]["name"]] = time.perf_counter()
                        if len(running) >= n:
                            done.set()
                            return
        t = threading.Thread(target=watch, daemon=True)
        t.start()
        conns = [http.connection() for _ in range(n)]
        time.sleep(0.2)
        cpu0 = (cpu_seconds(proc.pid), cpu_seconds(proc.pid, children=True),
                cpu_seconds(proc.pid, main_thread=True))
        ticks0 = cpu_ticks()
        t0 = time.perf_counter()

        def create(i: int):
            name = f"bench-{i}"
            created[name] = time.perf_counter()
            http.post(conns[i], "/api/v1/namespaces/default/pods", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}})
        threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        done.wait(120)
        total = time.perf_counter() - t0
        cpu = (cpu_seconds(proc.pid) - cpu0[0], cpu_seconds(proc.pid, children=True) - cpu0[1],
               cpu_seconds(proc.pid, main_thread=True) - cpu0[2])
        ticks = [b - a for a, b in zip(ticks0, cpu_ticks())]
        for conn in conns:
            conn.close()
        lat = [running[k] - created[k] for k in running if k in created]
        isolated = json.load(http.req("GET", "/api/v1/namespaces/default/events?fieldSelector=reason=IsolationDisabled"))["items"]
        return {"n": n, "running": len(running), "p50": pct(lat, 50), "p99": pct(lat, 99),
                "rate": len(running) / total if total else 0.0, "isolated": not isolated,
                "server_cpu": cpu[0] / n, "helper_cpu": cpu[1] / n, "loop_cpu": cpu[2] / n,
                "steal": ticks[1] / ticks[0] if ticks[0] else 0.0,
                "busy": 1 - ticks[2] / ticks[0] if ticks[0] else 0.0}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def simulated_nodes(n: int) -> dict:
    tmp = tempfile.mkdtemp(prefix="pk-bench-sim-")
    t0 = time.perf_counter()
    proc, url, _ = start(os.path.join(tmp, "data"), "--no-node", "--simulated-nodes", str(n))
    http = Http(url, os.path.join(tmp, "data"))
    try:
        ready = 0
        deadline = time.time() + 120
        while time.time() < deadline:
            nodes = json.load(http.req("GET", "/api/v1/nodes"))["items"]
            ready = sum(1 for nd in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                                 for c in (nd.get("status") or {}).get("conditions", [])))
            if ready >= n:
                break
            time.sleep(0.2)
        return {"n": n, "ready": ready, "seconds": time.perf_counter() - t0}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=5000, help="simulated nodes (0: skip part 2)")
    args = ap.parse_args()
    compile_package()
    raw = raw_spawn_rate(args.pods)
    pods = process_pods(args.pods)
    sim = simulated_nodes(args.nodes) if args.nodes else None
    ms = 1000
    print("pocketkube pod benchmark (2 cores)")
    print(f"  {pods['n']} process pods at once ({'isolated' if pods['isolated'] else 'not isolated'}): "
          f"{pods['running']} Running")
    print(f"    create -> Running  p50 {pods['p50'] * ms:7.1f} ms   p99 {pods['p99'] * ms:7.1f} ms   (target p99 <= 300 ms)")
    print(f"    throughput         {pods['rate']:7.1f} pods/s                  (target >= 200)")
    print(f"    raw posix_spawn of the same command: {raw:7.0f} /s  -> ratio {pods['rate'] / raw:.3f}")
    print(f"    CPU per pod: server process {pods['server_cpu'] * ms:5.1f} ms (its event loop "
          f"{pods['loop_cpu'] * ms:.1f} ms), its helpers {pods['helper_cpu'] * ms:5.1f} ms "
          f"(spawn, network and store-writer helpers, not the containers)")
    print(f"    the machine's CPUs were busy {pods['busy'] * 100:.0f}% of the time until the last pod ran")
    print(f"    CPU time stolen by the VM's host meanwhile: {pods['steal'] * 100:.0f}% (noise in all of the above)")
    if sim is not None:
        print(f"  {sim['n']} simulated nodes: {sim['ready']} Ready in {sim['seconds']:.2f} s from process start "
              f"(target <= 10 s)")


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
