"""ProcessRuntime against real processes: logs, exits, stopping, isolation, crashes, images.

Every test runs real containers. As root on Linux they are isolated (pod netns on a test
bridge, PID/mount/UTS namespaces, cgroups); otherwise the same tests assert the documented
non-isolated behaviour instead, so nothing is silently skipped. Network traffic goes only to
pod IPs in namespaces the test created, and every test checks that it left no netns, veth,
bridge, cgroup or IP allocation behind.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from pocketkube.runtime import (ContainerSpec, ImageError, Mount, ProcessRuntime, SandboxSpec,
                                StartError, follow_log, read_log)
from pocketkube.runtime.images import ImageCatalog, image_key
from pocketkube.runtime.isolation.cgroupfs import apply_steps
from pocketkube.runtime.logs import CRILogWriter
from pocketkube.runtime.process import HOSTS_TEMPLATE, _isolation_unavailable
from pocketkube.runtime import process as process_module
from pocketkube.runtime.spawn import HelperSpawner, PopenSpawner

from tests.unit.harness import until

ISOLATION = _isolation_unavailable() is None
PY = "python3"
CRI_LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] .*$")
VICTIM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runtime", "victim.py")


@pytest.fixture(autouse=True, params=["vspawn", "fork"])
def spawn_path(request, monkeypatch) -> str:
    """Every test runs both ways the spawn helper starts a process: through _vspawn (the C
    extension built at install) and by forking in Python (without a C compiler)."""
    if request.param == "fork" and sys.platform.startswith("linux"):
        monkeypatch.setattr(process_module, "default_spawner", lambda: HelperSpawner(fork=True))
    return request.param


def test_vspawn_is_built():
    # pip install builds it wherever there is a C compiler (setup.py); CI has one
    if sys.platform.startswith("linux"):
        from pocketkube.runtime import _vspawn
        assert callable(_vspawn.spawn)


def spec(name: str, command: list[str], **kw) -> ContainerSpec:
    return ContainerSpec(name=name, image=kw.pop("image", "busybox"), command=command,
                         args=kw.pop("args", []), env=kw.pop("env", []),
                         working_dir=kw.pop("working_dir", None), mounts=kw.pop("mounts", []), **kw)


def test_network() -> tuple[str, str]:
    # a bridge and /24 of the test's own ("pkr", 10.150-199.x: apart from the agent's tests)
    return f"10.{150 + secrets.randbelow(50)}.{secrets.randbelow(250)}.0/24", "pkr" + secrets.token_hex(3)


test_network.__test__ = False     # a helper, not a test


def leftovers(rt: ProcessRuntime) -> list[str]:
    """Everything of this runtime still present on the host."""
    found = []
    prefix = f"pk{rt.tag}"
    for d in ("/run/netns", "/sys/class/net"):
        if os.path.isdir(d):
            found += [os.path.join(d, n) for n in os.listdir(d) if n.startswith(prefix)]
    if os.path.exists(f"/sys/class/net/{rt.bridge}"):
        found.append(f"bridge {rt.bridge}")
    if rt.cgroups is not None:
        found += [b for b in rt.cgroups.bases.values() if os.path.exists(b)]
    if rt.ipam is not None:
        found += [f"ip {ip}" for ip in rt.ipam.allocations()]
    return found


def with_runtime(tmp_path, body, **kw):
    """Run `body(rt)` on a fresh runtime, then remove everything and check nothing is left."""
    cidr, bridge = test_network()

    async def main():
        rt = ProcessRuntime(str(tmp_path / "state"), node_cidr=cidr, bridge=bridge, **kw)
        try:
            return await body(rt)
        finally:
            for state in list(rt._sandboxes.values()):
                await rt.remove_sandbox(state.sandbox)
            await rt.remove_bridge()
            rt.close()
            assert leftovers(rt) == []
    return asyncio.run(main())


async def new_pod(rt: ProcessRuntime, name: str = "pod", **kw):
    return await rt.create_sandbox(SandboxSpec(pod_uid=f"uid-{name}-{secrets.token_hex(4)}",
                                               namespace="default", name=name, hostname=name, **kw))


def processes_with(marker: str) -> list[int]:
    """PIDs of live (non-zombie) processes whose command line contains marker."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{p}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmd and state != b"Z":
            out.append(int(p))
    return out


async def gone(marker: str, timeout: float = 5.0) -> None:
    """Wait until no process carries marker (a SIGKILL takes a moment to land)."""
    deadline = time.monotonic() + timeout
    while processes_with(marker):
        assert time.monotonic() < deadline, f"processes left: {processes_with(marker)}"
        await asyncio.sleep(0.01)


def marker() -> str:
    return f"{1000 + secrets.randbelow(8000)}.{secrets.randbelow(10**6):06d}"


async def wait_for_log(path: str, text: bytes, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in read_log(path):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {read_log(path)!r}"
        await asyncio.sleep(0.02)


def http_get(url: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# -- logs ----------------------------------------------------------------------------------

def test_output_is_logged_in_cri_format_and_read_back(tmp_path):
    log = str(tmp_path / "logs" / "c.log")

    async def body(rt):
        sb = await new_pod(rt)
        c = await rt.start(sb, spec("c", ["sh", "-c", "echo one; sleep 0.05; echo two >&2; "
                                                      "sleep 0.05; printf three"]), log)
        status = await rt.wait(c)
        assert (status.exit_code, status.reason) == (0, "Completed")

    with_runtime(tmp_path, body)
    raw = open(log, "rb").read().splitlines()
    assert len(raw) == 3 and all(CRI_LINE.match(line) for line in raw), raw
    assert [line.split(b" ", 3)[1:] for line in raw] == [
        [b"stdout", b"F", b"one"], [b"stderr", b"F", b"two"], [b"stdout", b"F", b"three"]]
    assert read_log(log) == b"one\ntwo\nthree\n"
    assert read_log(log, tail=1) == b"three\n"
    assert read_log(log, tail=2) == b"two\nthree\n"
    assert read_log(log, tail=0) == b""
    assert read_log(log, limit_bytes=5) == b"one\nt"
    stamped = read_log(log, timestamps=True).splitlines()
    assert [s.split(b" ", 1)[1] for s in stamped] == [b"one", b"two", b"three"]
    ts_two = raw[1].split(b" ")[0].decode()
    since = calendar.timegm(time.strptime(ts_two[:19], "%Y-%m-%dT%H:%M:%S")) + float(ts_two[19:-1]) - 1e-6
    assert read_log(log, since=since) == b"two\nthree\n"
    assert read_log(log, since=since, tail=1, timestamps=True) == raw[2].split(b" ")[0] + b" three\n"


def test_log_rotation_long_lines_and_follow(tmp_path):
    path = str(tmp_path / "r.log")
    w = CRILogWriter(path, max_bytes=4096, max_line=100)
    for i in range(100):
        w.write(b"stdout", b"line %d\n" % i)
    assert os.path.exists(path + ".1") and os.path.getsize(path) < 4096
    w.write(b"stderr", b"x" * 250 + b"\n")              # split in P, P, F records
    records = open(path, "rb").read().splitlines()[-3:]
    assert [r.split(b" ")[2] for r in records] == [b"P", b"P", b"F"]
    text = read_log(path)
    assert text.endswith(b"line 99\n" + b"x" * 250 + b"\n")
    assert read_log(path, tail=2) == b"line 99\n" + b"x" * 250 + b"\n"   # P+P+F is one line
    assert read_log(path, tail=1, timestamps=True).count(b"Z ") == 1

    async def follow():
        done = asyncio.Event()
        got = []

        async def consume():
            async for chunk in follow_log(path, tail=1, poll_interval=0.01, stop=done):
                got.append(chunk)
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        w.write(b"stdout", b"after\n")
        for i in range(60):        # enough to rotate under the follower's feet
            w.write(b"stdout", b"more %d\n" % i)
        w.write(b"stdout", b"last, no newline")
        w.close()
        done.set()
        await asyncio.wait_for(task, 5)
        return b"".join(got)

    followed = asyncio.run(follow())
    assert followed.startswith(b"x" * 250 + b"\nafter\nmore 0\n")
    assert followed.endswith(b"more 59\nlast, no newline\n")


def test_log_file_is_made_at_the_first_output(tmp_path):
    silent = str(tmp_path / "pod_a" / "c" / "0.log")
    w = CRILogWriter(silent)
    w.close()
    assert not os.path.exists(os.path.dirname(silent))      # nothing printed, nothing made
    assert read_log(silent) == b""

    async def follow_silent():
        return [c async for c in follow_log(silent, poll_interval=0.01, stop=lambda: True)]
    assert asyncio.run(follow_silent()) == []

    path = str(tmp_path / "pod_b" / "c" / "1.log")
    w = CRILogWriter(path)
    w.write(b"stdout", b"partial")
    assert not os.path.exists(path)                          # no complete line yet
    w.close()                                                # the last line is still a line
    assert read_log(path) == b"partial\n"
    w.write(b"stdout", b"after close\n")                     # ignored: the container has ended
    assert read_log(path) == b"partial\n"


# -- exits and stopping --------------------------------------------------------------------

def test_exit_codes_and_reasons(tmp_path):
    async def body(rt):
        sb = await new_pod(rt)
        results = []
        # (PID 1 of a namespace cannot SIGKILL itself, hence the inner shell)
        for cmd in (["true"], ["sh", "-c", "exit 3"], ["sh", "-c", "sh -c 'kill -9 $$'; exit $?"],
                    ["sleep", "30"]):
            c = await rt.start(sb, spec("c", cmd), str(tmp_path / "x.log"))
            assert c.pid > 0 and c.started_at > 0
            s = await (rt.stop(c, 0) if cmd[0] == "sleep" else rt.wait(c))
            results.append((s.exit_code, s.reason, s.signal))
            assert s.finished_at >= c.started_at
        assert results == [(0, "Completed", None), (3, "Error", None), (137, "Error", None),
                           (137, "Error", 9)]

    with_runtime(tmp_path, body)


def test_stop_sends_sigterm_then_sigkill_after_grace(tmp_path):
    log = str(tmp_path / "t.log")
    trap = ("import signal, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: print('got SIGTERM', flush=True))\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")

    async def body(rt):
        sb = await new_pod(rt)
        c = await rt.start(sb, spec("t", [PY, "-c", trap]), log)
        await wait_for_log(log, b"ready")
        t0 = time.monotonic()
        status = await rt.stop(c, grace_seconds=1.0)
        elapsed = time.monotonic() - t0
        assert 1.0 <= elapsed < 5, elapsed
        assert (status.exit_code, status.reason) == (137, "Error")
        assert b"got SIGTERM" in read_log(log)
        # without a handler SIGTERM ends it at once, also as PID 1 of a namespace
        c = await rt.start(sb, spec("s", ["sleep", "60"]), log)
        t0 = time.monotonic()
        status = await rt.stop(c, grace_seconds=30)
        assert time.monotonic() - t0 < 3
        assert (status.exit_code, status.signal) == (143, 15)
        assert await rt.stop(c, 30) == status        # stopping twice is harmless

    with_runtime(tmp_path, body)


def test_background_children_never_outlive_the_container(tmp_path):
    m1, m2 = marker(), marker()

    async def body(rt):
        sb = await new_pod(rt)
        # stopped while a forked child runs in the background
        c = await rt.start(sb, spec("a", ["sh", "-c", f"sleep {m1} & sleep {m1} & wait"]),
                           str(tmp_path / "a.log"))
        deadline = time.monotonic() + 5
        while len(processes_with(m1)) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await rt.stop(c, 5)
        assert processes_with(m1) == []
        # the main process exits and leaves a background child behind
        c = await rt.start(sb, spec("b", ["sh", "-c", f"sleep {m2} & echo started"]), str(tmp_path / "b.log"))
        status = await rt.wait(c)
        assert status.reason == "Completed"
        assert processes_with(m2) == []

    with_runtime(tmp_path, body)


# -- isolation -----------------------------------------------------------------------------

def test_pods_have_their_own_ip_and_can_all_listen_on_port_80(tmp_path):
    async def body(rt):
        assert rt.isolated == ISOLATION
        pods = [await new_pod(rt, f"web{i}") for i in range(2)]
        if not rt.isolated:
            assert all(p.ip is None and not p.isolated for p in pods)
            assert "pod isolation is off" in rt.isolation_note
            assert ("not running as root" in rt.isolation_note) == (os.geteuid() != 0)
            return
        ips = [p.ip for p in pods]
        assert len(set(ips)) == 2 and all(ip.startswith(rt.node_cidr.rsplit(".", 1)[0] + ".") for ip in ips)
        assert os.path.exists(f"/run/netns/{pods[0].netns}")
        server = [PY, "-m", "http.server", "80", "--bind", "0.0.0.0"]
        cs = [await rt.start(p, spec("web", server), str(tmp_path / f"{p.netns}.log")) for p in pods]
        loop = asyncio.get_running_loop()
        for ip in ips:
            assert await loop.run_in_executor(None, http_get, f"http://{ip}:80/") == 200
        for c in cs:
            await rt.stop(c, 5)
        assert b"GET / HTTP" in read_log(str(tmp_path / f"{pods[0].netns}.log"))

    with_runtime(tmp_path, body)


def test_warm_pool_hands_out_ready_networks_and_refills_when_pods_stop_arriving(tmp_path):
    async def body(rt):
        rt.start_pool(2)
        if not rt.isolated:
            assert rt.networks is None and (await new_pod(rt)).ip is None
            return
        await until(lambda: rt.networks.spares == 2, message="two spare networks")
        spare_ips = set(rt.ipam.allocations())
        pods = [await new_pod(rt, f"web{i}") for i in range(3)]     # two spares, one made on demand
        assert len({p.ip for p in pods}) == 3 and spare_ips < {p.ip for p in pods}
        assert {rt.ipam.allocations()[p.ip] for p in pods} == {p.pod_uid for p in pods}
        server = [PY, "-m", "http.server", "80", "--bind", "0.0.0.0"]
        c = await rt.start(pods[0], spec("web", server), str(tmp_path / "web.log"))
        assert await asyncio.get_running_loop().run_in_executor(None, http_get, f"http://{pods[0].ip}:80/") == 200
        await rt.stop(c, 5)
        # started by a process the helper forked ahead: as isolated as any (PID 1, own hostname);
        # the hosts file made with the spare network, finished with the pod's own line
        log = str(tmp_path / "who.log")
        c = await rt.start(pods[1], spec("who", ["sh", "-c", "echo pid=$$ host=$(hostname); cat /etc/hosts"]), log)
        assert (await rt.wait(c)).exit_code == 0
        assert read_log(log).decode() == f"pid=1 host=web1\n{HOSTS_TEMPLATE}{pods[1].ip}\tweb1\n"
        await until(lambda: rt.networks.spares == 2, message="the pool refilled")
        assert len(rt.ipam.allocations()) == 5
        assert len(os.listdir(tmp_path / "state" / "hosts")) == 5      # three pods', two spares'
        # with_runtime removes the pods, then remove_bridge() drains the pool: nothing is left

    with_runtime(tmp_path, body)


def test_a_pod_network_abandoned_while_being_made_is_removed_once_made(tmp_path):
    async def body(rt):
        if not rt.isolated:
            return
        task = asyncio.ensure_future(new_pod(rt, "gone"))
        await until(lambda: rt.networks.records, message="the network was asked for")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: not rt.networks.records and not rt.ipam.allocations(),
                    message="the abandoned network removed")
        assert [n for n in leftovers(rt) if not n.startswith("bridge")] == []

    with_runtime(tmp_path, body)


def test_helpers_that_die_are_replaced(tmp_path, spawn_path):
    """The network helper, and processes the spawn helper forked ahead, killed under the
    runtime: the next pod and container start as if nothing happened. With _vspawn the
    helper forks nothing ahead: its only children are containers."""
    async def body(rt):
        if not rt.isolated:
            return
        rt.start_pool(0, 2)
        await new_pod(rt, "first")
        netd = rt.networks.helper.helper_pid
        os.kill(netd, signal.SIGKILL)
        await until(lambda: rt.networks.helper.helper_pid is None, message="the dead helper noticed")
        sb = await new_pod(rt, "second")
        assert rt.networks.helper.helper_pid not in (None, netd)

        helper = rt._spawner.helper_pid

        def forked_ahead() -> list[int]:
            with open(f"/proc/{helper}/task/{helper}/children") as f:
                return [int(p) for p in f.read().split()]
        if spawn_path == "fork":
            stubs = await until(lambda: len(forked_ahead()) == 2 and forked_ahead(), message="two forked ahead")
            for pid in stubs:
                os.kill(pid, signal.SIGKILL)
            await until(lambda: not set(stubs) & set(forked_ahead()), message="the killed ones reaped")
        log = str(tmp_path / "after.log")
        c = await rt.start(sb, spec("after", ["sh", "-c", "echo pid=$$; sleep 30"]), log)
        await until(lambda: read_log(log) == b"pid=1\n", message="the container ran")
        if spawn_path == "vspawn":
            assert forked_ahead() == [c.pid]
        await rt.stop(c, 1)

    with_runtime(tmp_path, body)


def test_close_removes_spare_networks(tmp_path):
    # Documented: without isolation there are no pod networks, so no pool to make or remove.
    plain = ProcessRuntime(str(tmp_path / "plain"), isolate=False)
    try:
        plain.start_pool(3)
        assert not plain.isolated and plain.networks is None
    finally:
        plain.close()
    if not ISOLATION:
        return  # the pool itself needs isolation (root on Linux), which this machine lacks
    cidr, bridge = test_network()

    async def main():
        rt = ProcessRuntime(str(tmp_path / "state"), node_cidr=cidr, bridge=bridge)
        try:
            rt.start_pool(3)
            await until(lambda: rt.networks.spares == 3, message="three spare networks")
            assert len(os.listdir(tmp_path / "state" / "hosts")) == 3      # made with them
        finally:
            await asyncio.to_thread(rt.close)     # as the agent does: from a thread
        assert os.listdir(tmp_path / "state" / "hosts") == []
        # their veths go with the namespaces, as the kernel gets to it
        await until(lambda: [n for n in leftovers(rt) if not n.startswith("bridge")] == [],
                    message="the spares gone", timeout=10)
        again = ProcessRuntime(str(tmp_path / "state"), node_cidr=cidr, bridge=bridge)
        try:
            assert await again.cleanup_orphans() == 0
            assert await again.remove_bridge()
        finally:
            again.close()
        assert leftovers(again) == []

    asyncio.run(main())


def test_memory_limit_ends_in_oomkilled(tmp_path):
    hog = "b = [bytearray(1 << 20) for _ in range(200)]; print('survived')"

    async def body(rt):
        sb = await new_pod(rt)
        c = await rt.start(sb, spec("hog", [PY, "-c", hog], memory_limit=48 << 20, cpu_limit_millis=500),
                           str(tmp_path / "hog.log"))
        status = await rt.wait(c)
        if rt.isolated:
            assert (status.exit_code, status.reason) == (137, "OOMKilled")
        else:       # documented: limits are not applied without isolation
            assert status.reason == "Completed" and "limits are not applied" in rt.isolation_note

    with_runtime(tmp_path, body)


def test_hostname_mounts_and_working_dir(tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "data.txt").write_text("from the volume\n")
    target = f"/pk-test-{secrets.token_hex(4)}/data"
    # the working directory is created when missing, as the kubelet's runtimes do; without
    # isolation it is a host path
    workdir = target if ISOLATION else str(tmp_path / "work" / "dir")
    log = str(tmp_path / "h.log")
    script = (f"hostname; echo HOSTNAME=$HOSTNAME; pwd; cat {target}/data.txt 2>&1; "
              f"touch {target}/new 2>/dev/null && echo writable || echo read-only; tail -n 1 /etc/hosts")
    pod_ip = []

    async def body(rt):
        sb = await new_pod(rt, "pod-host")
        pod_ip.append(sb.ip)
        c = await rt.start(sb, spec("h", ["sh", "-c", script], working_dir=workdir,
                                    mounts=[Mount(str(volume), target, read_only=True)]), log)
        await rt.wait(c)

    with_runtime(tmp_path, body)
    out = read_log(log).decode().splitlines()
    assert out[1] == "HOSTNAME=pod-host" and out[2] == workdir
    if ISOLATION:
        assert out == ["pod-host", "HOSTNAME=pod-host", target, "from the volume", "read-only",
                       f"{pod_ip[0]}\tpod-host"]     # the pod's own /etc/hosts
        assert not os.path.exists(os.path.dirname(target)), "mount point left on the host"
        assert list(volume.iterdir()) == [volume / "data.txt"]
    else:   # documented: no UTS namespace and no mounts without isolation
        assert out[0] == socket.gethostname() and "No such file" in out[3]
        assert not os.path.exists(workdir), "created working directory left behind"


def test_host_mounts_made_later_are_seen_and_not_held(tmp_path, spawn_path):
    """With _vspawn, containers' mount namespaces are copied from a template the spawn
    helper keeps: one made before a host mount must not hide it from later containers, and
    must not keep a filesystem unmounted on the host alive."""
    from pocketkube.runtime.isolation import syscalls

    async def body(rt):
        if not rt.isolated:
            return     # no mount namespaces without isolation
        sb = await new_pod(rt, "late")

        async def run(script: str) -> bytes:
            log = str(tmp_path / f"{secrets.token_hex(4)}.log")
            c = await rt.start(sb, spec("c", ["sh", "-c", script]), log)
            assert (await rt.wait(c)).exit_code == 0, read_log(log)
            return read_log(log)

        def templates_held() -> int:
            fds = f"/proc/{rt._spawner.helper_pid}/fd"
            held = 0
            for fd in os.listdir(fds):
                try:
                    held += os.readlink(f"{fds}/{fd}").startswith("mnt:")
                except FileNotFoundError:     # closed meanwhile (a pipe of a start)
                    pass
            return held

        assert await run("grep -c ' - nsfs ' /proc/self/mountinfo; true") == b"0\n"  # no netns pins
        # one template at most (a mount change anywhere on the host may have dropped it already)
        assert templates_held() <= (1 if spawn_path == "vspawn" else 0)
        late = tmp_path / "late"
        late.mkdir()
        syscalls.mount(b"tmpfs", str(late).encode(), b"tmpfs", 0, b"size=1m")
        try:
            (late / "f").write_text("on the new tmpfs")
            assert await run(f"cat {late}/f") == b"on the new tmpfs\n"
        finally:
            syscalls.umount2(str(late).encode(), 0)
        await until(lambda: templates_held() == 0, message="the template dropped after the host's unmount")
        assert await run(f"ls -A {late}") == b""

    with_runtime(tmp_path, body)


def test_exec_runs_inside_the_container(tmp_path):
    m = marker()

    async def body(rt):
        sb = await new_pod(rt, "exec-pod")
        c = await rt.start(sb, spec("e", ["sleep", "60"], env=[("GREETING", "hi")]), str(tmp_path / "e.log"))
        probe = ["sh", "-c", "echo $GREETING $(hostname); cat /proc/1/cmdline; exit 4"]
        code, out = await rt.exec(sb, c, probe, 5)
        assert code == 4
        lines = out.split(b"\n")
        if rt.isolated:
            assert lines[0] == b"hi exec-pod" and lines[1].startswith(b"sleep\x0060")
        else:
            assert lines[0] == b"hi " + socket.gethostname().encode()
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await rt.exec(sb, c, ["sleep", "30"], 0.3)
        assert time.monotonic() - t0 < 2
        # a probe that leaves a child behind holding its output still returns
        assert await rt.exec(sb, c, ["sh", "-c", f"sleep {m} & echo bg"], 5) == (0, b"bg\n")
        await gone(m)
        await rt.stop(c, 0)
        with pytest.raises(ProcessLookupError):
            await rt.exec(sb, c, ["true"], 1)

    with_runtime(tmp_path, body)


def test_start_errors_say_what_is_wrong(tmp_path):
    async def body(rt):
        sb = await new_pod(rt)
        with pytest.raises(StartError) as e:
            await rt.start(sb, spec("x", ["no-such-program-xyz"]), str(tmp_path / "x.log"))
        assert 'exec: "no-such-program-xyz": executable file not found in $PATH' in e.value.message
        assert e.value.exit_code == 128 and e.value.reason == "StartError"
        if rt.isolated:
            with pytest.raises(StartError, match="does not exist"):
                await rt.start(sb, spec("x", ["true"], mounts=[Mount(str(tmp_path / "missing"), "/x")]),
                               str(tmp_path / "x.log"))
            # found only by the child, inside the container's mounts: its own words come back
            (tmp_path / "ro").mkdir()
            with pytest.raises(StartError, match="Read-only file system") as e:
                await rt.start(sb, spec("x", ["true"], working_dir="/ro/sub",
                                        mounts=[Mount(str(tmp_path / "ro"), "/ro", read_only=True)]),
                               str(tmp_path / "x.log"))
            assert e.value.message.startswith("failed to create container: OSError: ")
            assert not (tmp_path / "ro" / "sub").exists()
        with pytest.raises(ImageError):
            await rt.start(sb, spec("x", [], image="acme/unknown:1"), str(tmp_path / "x.log"))

    with_runtime(tmp_path, body)


# -- crashes -------------------------------------------------------------------------------

def test_killing_the_agent_kills_its_containers_and_cleanup_removes_the_rest(tmp_path, spawn_path):
    state = str(tmp_path / "state")
    cidr, bridge = test_network()
    m = marker()
    victim = subprocess.Popen([sys.executable, VICTIM, state, cidr, bridge, m, "2", spawn_path],
                              stdout=subprocess.PIPE)
    info = {}

    async def cleanup():
        rt = ProcessRuntime(state, node_cidr=cidr, bridge=bridge)
        try:
            found = await rt.cleanup_orphans()
            again = await rt.cleanup_orphans()
            await rt.remove_bridge()
        finally:
            rt.close()
        return rt, found, again

    try:
        info = json.loads(victim.stdout.readline())
        # sleep; sh -c "sleep & sleep" with its two sleeps (and the victim's own command line)
        deadline = time.monotonic() + 10
        while len(set(processes_with(m)) - {victim.pid}) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        deadline = time.monotonic() + 5
        while processes_with(m) or any(_alive(p) for p in [info["helper"], *info["helper_children"]]):
            assert time.monotonic() < deadline, "container processes outlived the agent"
            time.sleep(0.02)
        if info["isolated"]:     # what cannot die with the agent is still there...
            assert os.path.exists(f"/run/netns/{info['netns']}")
            assert os.path.exists(f"/sys/class/net/{info['netns']}")
            assert info["cgroups"] and all(os.path.isdir(d) for d in info["cgroups"])
            assert len(info["spares"]) == 2 and all(os.path.exists(f"/run/netns/{k}") for k in info["spares"])
            # the two containers, and in Python the processes forked ahead for the next ones
            if spawn_path == "fork":
                assert len(info["helper_children"]) > 2
            else:
                assert sorted(info["helper_children"]) == sorted(info["pids"])
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
        rt, found, again = asyncio.run(cleanup())     # ...until the next agent cleans up

    assert found >= (3 if info["isolated"] else 2) and again == 0
    assert leftovers(rt) == []
    assert os.listdir(os.path.join(state, "containers")) == []
    assert os.path.getsize(os.path.join(state, "containers.journal")) == 0
    if info["isolated"]:
        assert not any(os.path.exists(f"/run/netns/{k}") for k in [info["netns"], *info["spares"]])
        assert not any(os.path.exists(d) for d in info["cgroups"])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


# -- images --------------------------------------------------------------------------------

def test_image_names_and_catalog(tmp_path, monkeypatch):
    assert image_key("nginx") == image_key("nginx:1.14") == image_key("docker.io/library/nginx") == "nginx"
    assert image_key("docker.io/library/nginx@sha256:" + "a" * 64) == "nginx"
    assert image_key("localhost:5000/team/app:v2") == "team/app"
    assert image_key("bitnami/nginx:latest") == "bitnami/nginx"
    with pytest.raises(ImageError) as e:
        image_key("Nginx:1.0")
    assert e.value.reason == "InvalidImageName"

    catalog = ImageCatalog([str(tmp_path / "images.yaml")])
    # a command runs as given, whatever the image; args alone replace the image's CMD
    assert catalog.resolve(spec("c", ["echo", "hi"], image="acme/unknown:1")).argv == ["echo", "hi"]
    assert catalog.resolve(spec("c", [], image="busybox:1.36", args=["sleep", "1"])).argv == ["sleep", "1"]
    assert catalog.resolve(spec("c", [], image="ubuntu")).argv == ["sh"]
    assert catalog.resolve(spec("c", [], image="python:3.12-slim")).argv == ["python3"]
    assert catalog.resolve(spec("c", [], image="registry.k8s.io/pause:3.9")).argv == ["sleep", "infinity"]

    with pytest.raises(ImageError) as e:
        catalog.resolve(spec("c", [], image="acme/unknown:1"))
    assert e.value.reason == "ErrImagePull"
    assert 'cannot run image "acme/unknown:1"' in e.value.message
    assert str(tmp_path / "images.yaml") in e.value.message and "nginx" in e.value.message

    nginx = spec("web", [], image="nginx:1.14", ports=[8080])
    if subprocess.run(["sh", "-c", "command -v nginx"], capture_output=True).returncode == 0:
        argv = catalog.resolve(nginx).argv
        assert argv[0] == "nginx" and "{container_dir}/nginx.conf" in argv
        conf = catalog.resolve(nginx, container_dir="/run/x").files["nginx.conf"]
        assert "listen 8080;" in conf and "daemon off;" in conf and "pid /run/x/nginx.pid;" in conf
    else:
        with pytest.raises(ImageError) as e:
            catalog.resolve(nginx)
        assert e.value.reason == "ErrImagePull"
        assert e.value.message == (
            'pocketkube cannot run image "nginx:1.14" on this node: the image maps to host program '
            '"nginx", which is not installed (install it, e.g. apt-get install nginx, or map the '
            f'image in {tmp_path / "images.yaml"})')

    # users map images of their own (YAML here; JSON and $POCKETKUBE_IMAGES work the same)
    (tmp_path / "images.yaml").write_text(
        "images:\n"
        "  acme/tool:\n"
        "    entrypoint: [sh, -c]\n"
        "    cmd: ['echo serving on {port}']\n"
        "    env: {MODE: fast}\n"
        "  nginx: \"sh -c 'echo mapped nginx'\"\n")
    tool = catalog.resolve(spec("c", [], image="ghcr.io/acme/tool:2", ports=[9000]))
    assert tool.argv == ["sh", "-c", "echo serving on 9000"] and tool.env == {"MODE": "fast"}
    with_args = catalog.resolve(spec("c", [], image="acme/tool", args=["echo args"]))
    assert with_args.argv == ["sh", "-c", "echo args"]
    assert catalog.resolve(spec("c", [], image="nginx")).argv == ["sh", "-c", "echo mapped nginx"]
    extra = tmp_path / "more.json"
    extra.write_text(json.dumps({"images": {"acme/other": {"cmd": ["true"]}}}))
    monkeypatch.setenv("POCKETKUBE_IMAGES", str(extra))

    async def body(rt):
        assert rt.resolve(spec("c", [], image="acme/other")) == ["true"]
        sb = await new_pod(rt)
        c = await rt.start(sb, spec("c", [], image="acme/other"), str(tmp_path / "o.log"))
        assert (await rt.wait(c)).reason == "Completed"

    with_runtime(tmp_path, body)


# -- portability ---------------------------------------------------------------------------

def test_portable_spawner_without_the_helper(tmp_path):
    """The path taken off Linux: posix_spawn'd host processes, exits found by polling."""
    async def body(rt):
        rt._spawner = PopenSpawner()
        sb = await new_pod(rt)
        log = str(tmp_path / "p.log")
        c = await rt.start(sb, spec("p", ["sh", "-c", "echo hello; exit 2"]), log)
        assert (await rt.wait(c)).exit_code == 2 and read_log(log) == b"hello\n"
        c = await rt.start(sb, spec("p", ["sleep", "30"]), log)
        assert await rt.exec(sb, c, ["sh", "-c", "echo probe"], 5) == (0, b"probe\n")
        assert (await rt.stop(c, 5)).exit_code == 143

    with_runtime(tmp_path, body, isolate=False)


def test_container_processes_are_in_their_cgroups(tmp_path):
    """Joined before exec (on cgroup v1 through "tasks", see Cgroups.join_files): the
    container's process and what it forks are all in the container's cgroups."""
    async def body(rt):
        if not rt.isolated or rt.cgroups is None or not rt.cgroups.available:
            return     # no cgroups without isolation
        sb = await new_pod(rt)
        c = await rt.start(sb, spec("g", ["sh", "-c", "sleep 30 & exec sleep 30"]), str(tmp_path / "g.log"))
        h = c._run.cgroup
        await until(lambda: len(rt.cgroups.pids(h)) == 2, message="both processes in the cgroup")
        assert c.pid in rt.cgroups.pids(h)
        for d in h.dirs:
            with open(os.path.join(d, "cgroup.procs")) as f:
                assert str(c.pid) in f.read().split(), d
        await rt.stop(c, 1)

    with_runtime(tmp_path, body)


def test_cgroup_v2_tracking(tmp_path, monkeypatch):
    """cgroup v2 code on the unified hierarchy (here without controllers: tracking only)."""
    from pocketkube.runtime import cgroups as cg
    v2 = [m for m in cg._mounts() if m[2] == "cgroup2"]
    monkeypatch.setattr(cg, "_mounts", lambda: v2)
    monkeypatch.setattr(cg, "_own_paths", lambda: {"": "/"})
    groups = cg.Cgroups(secrets.token_hex(3))
    if not v2 or not os.access(v2[0][0], os.W_OK):
        assert not groups.available and "not enforced" in groups.note
        return
    assert groups.version == 2
    h, steps = groups.plan("c1", 64 << 20, 500)
    apply_steps(steps)      # what the spawn helper's child does before joining
    assert groups.join_files(h) == [os.path.join(d, "cgroup.procs") for d in h.dirs]   # v2 has no tasks file
    proc = subprocess.Popen(["sleep", "30"])
    try:
        with open(groups.join_files(h)[0], "w") as f:
            f.write(str(proc.pid))
        assert groups.pids(h) == [proc.pid] and not groups.oom_killed(h)
        assert groups.kill(h) == 1
        assert proc.wait(5) == -signal.SIGKILL
        assert groups.remove(h, timeout=2.0) and groups.leftovers() == []
    finally:
        proc.kill()
        proc.wait()
        groups.remove(h, timeout=2.0)
        groups.remove_bases()
    assert not any(os.path.exists(b) for b in groups.bases.values())
