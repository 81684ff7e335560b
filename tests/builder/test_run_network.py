"""RUN's network: by default its own namespace with outbound access through slirp4netns (as BuildKit
and buildah give a build), so the host's loopback services, abstract unix sockets and interfaces are
out of reach; `--network=host` and `--network=none` on request (build flag and RUN flag).

Each test listens on the host itself (a TCP port on 127.0.0.1, an abstract unix socket) and counts
who connects: the host modes prove the probe would have got through. The stack (slirp4netns) and
its namespace must be gone after every step, failed or interrupted too: each test marks its
processes with an environment token and looks for any left.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from corpus_paths import busybox_base_tar, default_signals

from corpus_paths import REPO

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups]
TOKEN_VAR = "PYBUILD_NETTEST_TOKEN"


def _pb(root, *args, **kw):
    return subprocess.run([sys.executable, "-m", "builder.cli", "--root", str(root), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, **kw)


@pytest.fixture(scope="module")
def bb_store(tmp_path_factory):
    """A store holding bb:1, the conformance suite's busybox base, imported with `pybuild import`."""
    tar = busybox_base_tar()
    root = tmp_path_factory.mktemp("netbb") / "store"
    out = _pb(root, "import", tar, "bb:1")
    assert out.returncode == 0, out.stderr
    return root


@pytest.fixture(scope="module")
def deb_store(base_dir):
    """A store holding debian:bookworm (the cached debootstrap base): perl, to open a unix socket."""
    return base_dir


@pytest.fixture
def token(monkeypatch):
    """Every process the build starts inherits this variable: how a leftover slirp4netns is found."""
    value = uuid.uuid4().hex
    monkeypatch.setenv(TOKEN_VAR, value)
    yield value
    assert _stacks(value) == [], "a slirp4netns of this test outlived its RUN step"


def _stacks(token: str, comm: str | None = "slirp4netns") -> list[int]:
    """The processes carrying this test's token: its slirp4netns, or (comm None) any of them."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if comm and f.read().strip() != comm:
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"{TOKEN_VAR}={token}".encode() in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def _build(store_root, tmp_path, dockerfile: str, **opts) -> list[str]:
    """Build in this process (its RUN children are ours: the leak check sees them); the log lines."""
    from builder.build import BuildOptions, build
    from cache.store import Store

    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    events: list[dict] = []
    build(Store.open(str(store_root)), BuildOptions(context_dir=str(ctx), no_cache=True, **opts), events.append)
    return [e["text"] for e in events if e["kind"] == "log"]


class Listener:
    """A server on the host that accepts, counts and closes each connection."""

    def __init__(self, family: int, address):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def tcp_listener():
    server = Listener(socket.AF_INET, ("127.0.0.1", 0))
    yield server
    server.close()


PROBE = ("for a in 127.0.0.1 10.0.2.2; do nc -w 2 $a {port} </dev/null >/dev/null 2>&1 "
         "&& echo $a open || echo $a closed; done")


def test_default_run_cannot_reach_the_hosts_loopback(bb_store, tmp_path, tcp_listener, token):
    port = tcp_listener.sock.getsockname()[1]
    lines = _build(bb_store, tmp_path, f"FROM bb:1\nRUN {PROBE.format(port=port)}\n")
    assert lines == ["127.0.0.1 closed", "10.0.2.2 closed"]  # 10.0.2.2: slirp's alias of the host
    assert tcp_listener.accepted == 0


@pytest.mark.parametrize("how", [{"network": "host"}, {"run_flag": "--network=host"}])
def test_network_host_still_reaches_the_hosts_loopback(bb_store, tmp_path, tcp_listener, token, how):
    port = tcp_listener.sock.getsockname()[1]
    flag = how.get("run_flag", "")
    opts = {"network": how["network"]} if "network" in how else {}
    lines = _build(bb_store, tmp_path, f"FROM bb:1\nRUN {flag} nc -w 2 127.0.0.1 {port} </dev/null && echo open\n",
                   **opts)
    assert lines == ["open"] and tcp_listener.accepted == 1


@pytest.mark.parametrize("how", [{"network": "none"}, {"run_flag": "--network=none"}])
def test_network_none_reaches_nothing(bb_store, tmp_path, tcp_listener, token, how):
    port = tcp_listener.sock.getsockname()[1]
    flag = how.get("run_flag", "")
    opts = {"network": how["network"]} if "network" in how else {}
    text = (f"FROM bb:1\nRUN {flag} tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; {PROBE.format(port=port)}; "
            "wget -q -T 3 -O- http://10.0.2.2/ >/dev/null 2>&1 || echo no route\n")
    lines = _build(bb_store, tmp_path, text, **opts)
    assert lines == ["lo", "127.0.0.1 closed", "10.0.2.2 closed", "no route"]
    assert tcp_listener.accepted == 0 and _stacks(token) == []


def test_default_run_sees_only_loopback_and_the_tap(bb_store, tmp_path, token):
    lines = _build(bb_store, tmp_path, "FROM bb:1\nRUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; "
                   "grep nameserver /etc/resolv.conf; cat /sys/class/net/tap0/mtu; ip route | grep default\n",
                   explain=True)
    shown = [line for line in lines if not line.startswith("+ ")]
    assert shown[:2] == ["lo", "tap0"]
    assert shown[2:4] == ["nameserver 10.0.2.3", "65520"]
    assert shown[4].startswith("default via 10.0.2.2 dev tap0")
    assert any(line.startswith("+ slirp4netns --configure --mtu=65520 --disable-host-loopback") for line in lines)


@pytest.mark.network
def test_default_run_reaches_debians_mirror(bb_store, tmp_path, token):
    lines = _build(bb_store, tmp_path, "FROM bb:1\n"
                   "RUN wget -q -O- http://deb.debian.org/debian/dists/bookworm/Release | head -1\n")
    assert lines == ["Origin: Debian"]


def test_a_failed_run_leaves_no_stack(bb_store, tmp_path, token):
    from builder.build import BuildError

    with pytest.raises(BuildError, match="exit code 3"):
        _build(bb_store, tmp_path, "FROM bb:1\nRUN ip link show tap0 >/dev/null && exit 3\n")


def test_unknown_run_network_is_refused(bb_store, tmp_path, token):
    from builder.build import BuildError

    with pytest.raises(BuildError, match=r"Dockerfile:2:1: RUN --network=bridge: unknown"):
        _build(bb_store, tmp_path, "FROM bb:1\nRUN --network=bridge true\n")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_build_leaves_no_stack(bb_store, tmp_path, token, sig):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM bb:1\nRUN sleep 60\n")
    proc = subprocess.Popen([sys.executable, "-m", "builder.cli", "--root", str(bb_store), "build", "--no-cache",
                             "--progress", "plain", str(ctx)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=default_signals)
    try:
        deadline = time.monotonic() + 30
        while not _stacks(token):
            assert time.monotonic() < deadline and proc.poll() is None, "the RUN step never got its network"
            time.sleep(0.05)
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _stacks(token, comm=None) and time.monotonic() < deadline:  # its RUN child cleans up, then goes
            time.sleep(0.05)
        assert _stacks(token) == [] and _stacks(token, comm=None) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.debootstrap
@pytest.mark.parametrize("network, expected", [("default", "refused"), ("host", "connected")])
def test_abstract_unix_sockets_of_the_host(deb_store, tmp_path, token, network, expected):
    """Abstract unix sockets belong to a network namespace: a build's own cannot see the host's."""
    store = deb_store
    name = f"pybuild-nettest-{token}"
    server = Listener(socket.AF_UNIX, "\0" + name)
    try:
        perl = ("use Socket; socket(S, PF_UNIX, SOCK_STREAM, 0) or die; "
                f"print connect(S, pack_sockaddr_un(qq(\\0{name}))) ? qq(connected\\n) : qq(refused\\n)")
        lines = _build(store, tmp_path, f"FROM debian:bookworm\nRUN perl -e '{perl}'\n", network=network)
    finally:
        server.close()
    assert lines == [expected] and server.accepted == (1 if expected == "connected" else 0)


def test_resolv_conf_keeps_search_and_options_and_names_the_forwarder():
    from runtime.slirp import resolv_conf

    host = b"# generated\nnameserver 127.0.0.53\nsearch corp.example\noptions edns0 trust-ad\nnameserver ::1\n"
    assert resolv_conf(host) == b"search corp.example\noptions edns0 trust-ad\nnameserver 10.0.2.3\n"
    assert resolv_conf(b"") == b"nameserver 10.0.2.3\n"


def _dns_answer(query: bytes, address: bytes) -> bytes:
    """A reply to one DNS question: an A record `address` for an A query, no answer otherwise."""
    end = 12
    while query[end]:
        end += query[end] + 1
    question = query[12:end + 5]
    is_a = query[end + 1:end + 3] == b"\x00\x01"
    header = query[:2] + b"\x81\x80\x00\x01" + (b"\x00\x01" if is_a else b"\x00\x00") + b"\x00\x00\x00\x00"
    answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + address if is_a else b""
    return header + question + answer


def test_a_host_resolver_on_loopback_still_resolves(bb_store, tmp_path, token):
    """A host whose resolv.conf names 127.0.0.53 (systemd-resolved, dnsmasq): the build's resolv.conf
    names slirp4netns's forwarder, which asks the host's resolver from the host's side. The host here
    is faked: a private mount namespace whose /etc/resolv.conf names 127.0.0.53, where this test
    answers every A query with 192.0.2.7."""
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        dns.bind(("127.0.0.53", 53))
    except OSError as err:
        dns.close()
        pytest.skip(f"127.0.0.53:53 is taken here ({err})")
    asked: list[bytes] = []

    def serve():
        while True:
            try:
                query, peer = dns.recvfrom(4096)
            except OSError:
                return
            asked.append(query)
            dns.sendto(_dns_answer(query, bytes([192, 0, 2, 7])), peer)
    threading.Thread(target=serve, daemon=True).start()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\nsearch corp.example\n")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM bb:1\nRUN cat /etc/resolv.conf; nslookup -type=a pybuild.test | tail -n 2\n")
    script = (f"mount --make-rprivate / && mount --bind {resolv} /etc/resolv.conf && exec {sys.executable} -m "
              f"builder.cli --root {bb_store} build --no-cache --progress plain {ctx}")
    try:
        out = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, cwd=REPO,
                             timeout=60)
    finally:
        dns.close()
    assert out.returncode == 0, out.stderr
    assert "#2 search corp.example\n#2 nameserver 10.0.2.3\n" in out.stderr
    assert "Address: 192.0.2.7" in out.stderr and asked
