"""`run --rm IMAGE true` latency and `-p` throughput, side by side, in one run.

    .venv/bin/python bench/bench_run.py [--runs 30] [--gigabytes 1] [--no-docker]

Start-up: the whole CLI process each time (median of N after 3 warm-up rounds; the tools take
turns round by round, so a shared machine's load swings hit them alike): `pybuild run --rm`,
`podman run --rm --network=none` (the anchors' containers.conf: runc, host rlimits), `docker run
--rm --network=none` against the anchors' private dockerd (started and stopped here; skipped if it
does not start), and raw `crun run` on the anchors' OCI bundle (in a private mount namespace without
the cgroup2 mount, which crun refuses on this hybrid host). All on the same debootstrap minbase.
Goal (issue 7): pybuild in at most half of docker run's time.

Throughput: N GB from the host into a counting sink (perl, in the base image) through `-p`
(pybuild's userspace proxy into the container's network namespace), against the same sink
listening on the host's loopback directly. Goal: the proxy at >= 50% of direct loopback.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anchors_cleanup import anchors_cleaned_up, private_dockerd  # noqa: E402
C = "/var/cache/pybuild-bench"
ANCHORS = os.path.join(os.path.dirname(REPO), "shared", "anchors")
IMAGE = "debian:bookworm-min"
PACKAGES = ("grammar", "cache", "runtime", "builder")
PODMAN_IMAGE = "localhost/debian:bookworm-min"
SINK = ('use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => $ARGV[0], '
        'Listen => 8, ReuseAddr => 1) or die $!; print "listening\\n"; $| = 1; while (my $c = $s->accept) '
        '{ my ($n, $b, $r) = (0); while (($r = sysread($c, $b, 1048576)) > 0) { $n += $r } print $c "$n\\n"; close $c }')


def pybuild(root: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(REPO, ".venv", "bin", "pybuild"), "--root", root, *args], **kw)


def _timed(argv: list[str], env: dict | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def anchors_env() -> dict:
    env = dict(os.environ)
    env.update(CONTAINERS_CONF=f"{C}/containers.conf", CONTAINERS_REGISTRIES_CONF=f"{ANCHORS}/conf/registries.conf",
               DOCKER_HOST=f"unix://{C}/docker.sock")
    return env


def _docker_image(env: dict) -> None:
    if subprocess.run(["/usr/bin/docker", "image", "inspect", PODMAN_IMAGE], env=env, capture_output=True).returncode:
        subprocess.run(["/usr/bin/docker", "load", "-i", f"{C}/bookworm-min.docker.tar"], env=env,
                       capture_output=True, check=True)


def startup(root: str, runs: int, with_docker: bool) -> list[tuple[str, list[float]]]:
    """Round-robin: each round runs every tool once, so the load of a shared machine (other jobs
    come and go) weighs on all of them alike instead of on whichever ran during a busy minute."""
    env = anchors_env()
    tools: list[tuple[str, list[str], dict | None]] = [
        ("pybuild run --rm", [os.path.join(REPO, ".venv", "bin", "pybuild"), "--root", root, "run", "--rm", IMAGE, "true"],
         None)]
    if shutil.which("podman"):
        tools.append(("podman run --rm --network=none", ["podman", "run", "--rm", "--network=none", PODMAN_IMAGE, "true"], env))
    with private_dockerd(ANCHORS) if with_docker else nullcontext(False) as docker:
        if docker:
            _docker_image(env)
            tools.append(("docker run --rm --network=none",
                          ["/usr/bin/docker", "run", "--rm", "--network=none", PODMAN_IMAGE, "true"], env))
        if shutil.which("crun") and os.path.isfile(f"{C}/bundle/config.json"):
            # in a private mount namespace without the cgroup2 mount, which crun refuses on this hybrid host
            tools.append(("crun run (raw OCI runtime)", ["unshare", "-m", "--propagation", "private", "sh", "-c",
                          f"umount /sys/fs/cgroup/unified && exec crun run -b {C}/bundle bench-run-{os.getpid()}"], None))
        times: dict[str, list[float]] = {name: [] for name, _, _ in tools}
        for i in range(runs + 3):  # the first 3 rounds warm caches up and are dropped
            for name, argv, tool_env in tools:
                took = _timed(argv, tool_env)
                if i >= 3:
                    times[name].append(took)
    return [(name, times[name]) for name, _, _ in tools]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push_bytes(port: int, total: int) -> float:
    """Send `total` bytes to 127.0.0.1:port; MB/s once the sink has counted them all."""
    chunk = b"\0" * (1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        t = time.perf_counter()
        sent = 0
        while sent < total:
            s.sendall(chunk)
            sent += len(chunk)
        s.shutdown(socket.SHUT_WR)
        counted = int(s.makefile().readline() or 0)
        took = time.perf_counter() - t
    assert counted == sent, (counted, sent)
    return sent / took / 1e6


def _wait_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def throughput(root: str, total: int) -> tuple[float, float]:
    port = free_port()
    host_sink = subprocess.Popen(["perl", "-e", SINK, str(port)], stdout=subprocess.DEVNULL)
    proxy_port = free_port()
    name = f"bench-sink-{os.getpid()}"
    try:
        pybuild(root, "run", "-d", "--name", name, "-p", f"127.0.0.1:{proxy_port}:5000", IMAGE, "perl", "-e", SINK,
                "5000", check=True, stdout=subprocess.DEVNULL)
        _wait_port(port)
        _wait_port(proxy_port)
        # alternated, best of 3 each: a busy moment of the shared machine does not pick the winner
        direct, proxied = 0.0, 0.0
        for _ in range(3):
            direct = max(direct, push_bytes(port, total))
            proxied = max(proxied, push_bytes(proxy_port, total))
    finally:
        host_sink.kill()
        host_sink.wait()
        pybuild(root, "rm", "-f", name, stdout=subprocess.DEVNULL)
    return direct, proxied


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--gigabytes", type=float, default=1.0)
    ap.add_argument("--no-docker", action="store_true")
    args = ap.parse_args()
    tarball = f"{C}/bookworm-minbase.tar"
    if not os.path.exists(tarball):
        raise SystemExit(f"no {tarball}: run ../shared/anchors/setup-anchors.sh first")
    # As pip does at install: every module's .pyc up to date. Without it (PYTHONDONTWRITEBYTECODE
    # is set here) a module edited since its last compile is compiled again on every command.
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(os.path.join(REPO, p) for p in PACKAGES)],
                   check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="bench-run-") as tmp:
        root = os.path.join(tmp, "store")
        pybuild(root, "import", tarball, IMAGE, check=True, stdout=subprocess.DEVNULL)
        rows = startup(root, args.runs, not args.no_docker)
        direct, proxied = throughput(root, int(args.gigabytes * 1e9))
    docker = next((statistics.median(t) for n, t in rows if n.startswith("docker")), None)
    ours = statistics.median(rows[0][1])
    print(f"start-up: `run --rm IMAGE true`, whole CLI, median of {args.runs} (ms)")
    print(f"{'tool':34} {'median':>8} {'p10':>8} {'p90':>8} {'pybuild / it':>13}")
    for name, times in rows:
        ms = sorted(x * 1000 for x in times)
        med = statistics.median(ms)
        print(f"{name:34} {med:8.1f} {ms[len(ms) // 10]:8.1f} {ms[len(ms) * 9 // 10]:8.1f} {ours * 1000 / med:13.2f}")
    if docker:
        print(f"goal: pybuild <= 0.5 x docker run: {ours / docker:.2f} x -> {'met' if ours <= docker / 2 else 'NOT met'}")
    print(f"\nthroughput of {args.gigabytes:g} GB into a sink (best of 3, alternated, MB/s)")
    print(f"{'direct loopback':34} {direct:8.0f}")
    print(f"{'through pybuild -p (proxy)':34} {proxied:8.0f}   {proxied / direct:.0%} of direct "
          f"(goal >= 50%: {'met' if proxied >= direct / 2 else 'NOT met'})")


if __name__ == "__main__":
    with anchors_cleaned_up():  # the anchors' tools leave their cgroup parents behind
        main()
