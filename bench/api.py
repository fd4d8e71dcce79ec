"""API benchmark: start-up, idle memory, create throughput, write and watch latency.

Prints its figures and, measured in the same run, the raw durable-commit rate of SQLite for
the same objects, so the ratio says how much of the disk's speed the API keeps. It never
fails: targets are printed beside the figures, not asserted.

    python bench/api.py [--seconds 5] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time

import aiohttp
import psutil

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"labels": {"app": "bench", "tier": "load"}},
    "spec": {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"],
                             "ports": [{"containerPort": 8080}],
                             "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def server_env() -> dict:
    """The server's environment as after `pip install`: bytecode compiled and used (a sandbox
    that sets PYTHONDONTWRITEBYTECODE would otherwise compile every module at every start)."""
    env = dict(os.environ, POCKETKUBE_LOG="WARNING")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_package() -> None:
    """What pip does at install time: byte-compile the package once."""
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pocketkube")
    subprocess.run([sys.executable, "-m", "compileall", "-q", root], env=server_env(), check=False)


def start_server(data_dir: str, *extra: str) -> tuple[subprocess.Popen, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pocketkube", "up", "--data-dir", data_dir, "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=server_env())
    url = ""
    for line in proc.stdout:
        if line.startswith("pocketkube is ready at "):
            url = line.split()[4]
            break
    ready = time.perf_counter() - t0
    return proc, url, ready


def raw_sqlite_rate(objs: list[bytes], path: str) -> float:
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB)")
    t0 = time.perf_counter()
    for i, v in enumerate(objs):
        c.execute("BEGIN")
        c.execute("INSERT INTO kv VALUES (?, ?)", (f"/core/pods/bench/p{i}", v))
        c.execute("COMMIT")
    dt = time.perf_counter() - t0
    c.close()
    return len(objs) / dt


async def time_to_ready(data_dir: str, *extra: str) -> tuple[float, float]:
    """Seconds from process spawn to /readyz answering 200 as a client sees it, and the idle RSS
    one second later; the server is stopped again."""
    t0 = time.perf_counter()
    proc, url, _ = start_server(data_dir, *extra)
    ctx = ssl.create_default_context(cafile=os.path.join(data_dir, "ca.crt"))
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(url + "/readyz", ssl=ctx) as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.005)
    ready = time.perf_counter() - t0
    await asyncio.sleep(1.0)
    rss = psutil.Process(proc.pid).memory_info().rss / 2**20
    proc.terminate()
    proc.wait(10)
    return ready, rss


async def main(args, tmp: str) -> None:
    compile_package()
    # Start-up as users run it: `pocketkube up` with controllers, scheduler and the local node.
    full_dir = os.path.join(tmp, "full")
    ready, idle_rss = await time_to_ready(full_dir)
    restart_ready, restart_rss = await time_to_ready(full_dir)
    # Load on the API alone (as kube-apiserver benchmarks do): with a node, every created pod
    # would also start a real process, and that is bench/pods.py's measure.
    data_dir = os.path.join(tmp, "data")
    proc, url, _ = start_server(data_dir, "--no-node", "--no-controllers")
    ctx = ssl.create_default_context(cafile=os.path.join(data_dir, "ca.crt"))
    ps = psutil.Process(proc.pid)
    token = open(os.path.join(data_dir, "token")).read().strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    base = f"{url}/api/v1/namespaces/default/pods"
    conn = aiohttp.TCPConnector(ssl=ctx, limit=64)
    results = {}
    async with aiohttp.ClientSession(connector=conn, headers=headers) as s:
        # 1. create throughput, N concurrent clients, for a fixed time.
        counter = [0]
        stop_at = time.perf_counter() + args.seconds

        async def creator(cid: int):
            i = 0
            while time.perf_counter() < stop_at:
                body = dict(POD, metadata={**POD["metadata"], "name": f"c{cid}-{i}"})
                async with s.post(base, data=json.dumps(body)) as r:
                    await r.read()
                    if r.status == 201:
                        counter[0] += 1
                i += 1
        tstart = time.perf_counter()
        await asyncio.gather(*(creator(c) for c in range(args.clients)))
        results["create_rate"] = counter[0] / (time.perf_counter() - tstart)
        results["cpu_server"] = ps.cpu_percent(None)

        # 2. steady writes at 200/s with a watch open: write latency and watch delivery.
        async with s.get(base, params={"limit": "1"}) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        acked: dict[str, float] = {}
        sent: dict[str, float] = {}
        delivered: dict[str, float] = {}
        write_lat: list[float] = []
        watch_ready = asyncio.Event()

        async def watcher():
            async with s.get(base, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "60"},
                             timeout=aiohttp.ClientTimeout(total=None)) as r:
                watch_ready.set()
                async for line in r.content:
                    ev = json.loads(line)
                    name = ev["object"]["metadata"]["name"]
                    if ev["type"] == "ADDED" and name.startswith("s-"):
                        delivered[name] = time.perf_counter()
                        if len(delivered) >= n_steady:
                            return
        n_steady = int(200 * args.seconds)
        wt = asyncio.create_task(watcher())
        await watch_ready.wait()
        interval = 1 / 200
        t_next = time.perf_counter()
        pending = []

        async def one(i: int):
            name = f"s-{i}"
            body = dict(POD, metadata={**POD["metadata"], "name": name})
            t = time.perf_counter()
            sent[name] = t
            async with s.post(base, data=json.dumps(body)) as r:
                await r.read()
            acked[name] = time.perf_counter()
            write_lat.append(acked[name] - t)
        for i in range(n_steady):
            now = time.perf_counter()
            if t_next > now:
                await asyncio.sleep(t_next - now)
            t_next += interval
            pending.append(asyncio.create_task(one(i)))
        await asyncio.gather(*pending)
        try:
            await asyncio.wait_for(wt, 10)
        except asyncio.TimeoutError:
            pass
        after_ack = [delivered[n] - acked[n] for n in delivered if n in acked]
        e2e = [delivered[n] - sent[n] for n in delivered if n in sent]
        results.update(write_p50=pct(write_lat, 50), write_p99=pct(write_lat, 99),
                       watch_p50=pct(after_ack, 50), watch_p99=pct(after_ack, 99),
                       e2e_p50=pct(e2e, 50), e2e_p99=pct(e2e, 99), delivered=len(delivered), n=n_steady)
    busy_rss = ps.memory_info().rss / 2**20
    proc.terminate()
    proc.wait(10)
    objs = [json.dumps(dict(POD, metadata={**POD["metadata"], "name": f"r{i}"})).encode() for i in range(3000)]
    raw = raw_sqlite_rate(objs, os.path.join(tmp, "raw.db"))
    ms = 1000
    print("pocketkube API benchmark (2-core machine; client and server share it)")
    print("  `pocketkube up` (API, controllers, scheduler, local node):")
    print(f"  up -> /readyz, first start      {ready:8.3f} s      (target <= 0.5 s; certificates made)")
    print(f"  idle RSS                        {idle_rss:8.1f} MB     (target <= 60 MB)")
    print(f"  restart -> /readyz              {restart_ready:8.3f} s")
    print(f"  idle RSS after restart          {restart_rss:8.1f} MB")
    print("  load on `pocketkube up --no-node --no-controllers` (the API alone):")
    print(f"  create throughput, {args.clients} clients   {results['create_rate']:8.0f} obj/s  (target >= 2000)")
    print(f"  raw SQLite durable commits      {raw:8.0f} commit/s (one transaction each, same objects)")
    print(f"  ratio API creates / raw commits {results['create_rate'] / raw:8.2f}")
    print(f"  write latency @200/s  p50 {results['write_p50'] * ms:6.2f} ms  p99 {results['write_p99'] * ms:6.2f} ms  (target p99 <= 10 ms)")
    print(f"  watch delivery after ack  p50 {results['watch_p50'] * ms:6.2f} ms  p99 {results['watch_p99'] * ms:6.2f} ms  (target p99 <= 5 ms)")
    print(f"  watch end-to-end from send p50 {results['e2e_p50'] * ms:6.2f} ms  p99 {results['e2e_p99'] * ms:6.2f} ms")
    print(f"  events delivered {results['delivered']}/{results['n']}; RSS after load {busy_rss:.1f} MB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=16)
    tmp = tempfile.mkdtemp(prefix="pk-bench-")
    try:
        asyncio.run(main(ap.parse_args(), tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
