"""`-p [IP:]HOST:CTR[/tcp|udp]`: a userspace proxy from a host port into a container's network.

The container keeps its own network namespace. The host-side socket is bound in the host's
namespace *before* the container starts (a port in use is a clear error, and nothing has been
started yet); then each mapping's thread joins the container's namespace with setns(CLONE_NEWNET),
which moves only that thread, so every socket it opens afterwards (the container side) lives in the
container's namespace, while the listening socket it already holds stays on the host.

TCP bytes are moved with splice(2) through a pipe (no copy through Python); UDP is a small
selector loop with one container-side socket per client address, as docker-proxy does.
"""
from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import selectors
import socket
import threading
from dataclasses import dataclass

from grammar.errors import PybuildError, UsageError

CLONE_NEWNET = 0x40000000
SPLICE_CHUNK = 1 << 20
UDP_MAX = 65535


class PortInUse(PybuildError):
    """The host port of a -p mapping cannot be bound."""


@dataclass(frozen=True)
class PortMapping:
    host_ip: str
    host_port: int           # 0: the kernel picks one (`-p 80`), read back after bind
    container_port: int
    proto: str = "tcp"

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.proto}"


def _port(text: str, which: str) -> int:
    """A port as docker's nat.ParsePortRange reads it (decimal, 0-65535); ranges are not supported."""
    if re.fullmatch(r"[0-9]+-[0-9]+", text):
        raise UsageError(f"{which} {text}: port ranges are not supported by pybuild", hint="publish each port with its own -p")
    if not re.fullmatch(r"[0-9]+", text) or int(text) > 65535:
        raise UsageError(f"Invalid {which}: {text}", hint="use [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]")
    return int(text)


def parse_publish(spec: str) -> PortMapping:
    """Docker's `-p` syntax and messages (nat.ParsePortSpec): `CTR`, `HOST:CTR`, `IP:HOST:CTR`,
    `IP::CTR`, `[IPv6]:HOST:CTR`, each with /tcp or /udp. A host port 0 (or none) lets the kernel
    pick one; a container port 0 forwards nowhere and is refused (dockerd 20.10 took it silently;
    moby 29 refuses it too)."""
    parts = spec.split(":")
    raw_ip = ":".join(parts[:-2]) if len(parts) > 2 else ""
    host = parts[-2] if len(parts) > 1 else ""
    ctr, _, proto = parts[-1].partition("/")
    proto = proto.split("/")[0] or "tcp"
    ip = raw_ip[1:-1] if raw_ip.startswith("[") and raw_ip.endswith("]") else raw_ip
    if ":" in raw_ip and ip == raw_ip:
        raise UsageError(f"Invalid ip address {raw_ip}: address {raw_ip}:: too many colons in address",
                         hint="an IPv6 address goes in brackets: [::1]:8080:80")
    if ip:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise UsageError(f"Invalid ip address: {raw_ip}", hint="an IPv6 address goes in brackets: [::1]:8080:80") from None
    if not ctr:
        raise UsageError(f"No port specified: {spec}<empty>", hint="use [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]")
    container_port = _port(ctr, "containerPort")
    if container_port == 0:
        raise UsageError("Invalid containerPort: 0", hint="a container port is 1-65535")
    host_port = _port(host, "hostPort") if host else 0
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise UsageError(f"Invalid proto: {proto}")
    if proto.lower() == "sctp":
        raise UsageError(f"-p {spec}: sctp is not supported by pybuild's port proxy", hint="use tcp or udp")
    return PortMapping(ip or "0.0.0.0", host_port, container_port, proto.lower())


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def bind_host_socket(m: PortMapping) -> tuple[socket.socket, PortMapping]:
    """Bind (and listen, for TCP) the host side; PortInUse names the mapping and what to do."""
    kind = socket.SOCK_STREAM if m.proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(_family(m.host_ip), kind)
    try:
        if m.proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((m.host_ip, m.host_port))
        if m.proto == "tcp":
            sock.listen(128)
    except OSError as err:
        sock.close()
        raise PortInUse(f"-p {m.host_ip}:{m.host_port}:{m.container_port}/{m.proto}: cannot bind "
                        f"{m.host_ip}:{m.host_port}: {err.strerror}",
                        hint="choose another host port, or stop what uses it") from None
    sock.set_inheritable(False)
    return sock, PortMapping(m.host_ip, sock.getsockname()[1], m.container_port, m.proto)


def _enter_netns(netns_path: str | None) -> None:
    if netns_path is None:
        return
    from runtime import linux

    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Move bytes src -> dst with splice until EOF, then half-close dst."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, SPLICE_CHUNK)  # 64 KiB by default: 16x the splice calls
    except OSError:
        pass  # over /proc/sys/fs/pipe-max-size: the default pipe still works
    try:
        sfd, dfd = src.fileno(), dst.fileno()
        while True:
            n = os.splice(sfd, w, SPLICE_CHUNK)
            if n == 0:
                break
            while n:
                n -= os.splice(r, dfd, n)
    except OSError:
        pass
    finally:
        os.close(r)
        os.close(w)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _serve_connection(client: socket.socket, m: PortMapping) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", m.container_port), timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    upstream.close()
    client.close()


class PortProxy:
    """All the -p mappings of one container. bind() before the container starts, start() after."""

    def __init__(self, mappings: list[PortMapping]):
        self.requested = list(mappings)
        self.bound: list[tuple[socket.socket, PortMapping]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def mappings(self) -> list[PortMapping]:
        return [m for _, m in self.bound]

    def bind(self) -> list[PortMapping]:
        try:
            for m in self.requested:
                self.bound.append(bind_host_socket(m))
        except PybuildError:
            self.close()
            raise
        return self.mappings

    def start(self, netns_path: str | None) -> None:
        """Serve every mapping; container-side sockets are opened inside netns_path."""
        for sock, m in self.bound:
            loop = self._tcp_loop if m.proto == "tcp" else self._udp_loop
            t = threading.Thread(target=loop, args=(sock, m, netns_path), daemon=True, name=f"proxy {m}")
            t.start()
            self._threads.append(t)

    def _tcp_loop(self, listener: socket.socket, m: PortMapping, netns_path: str | None) -> None:
        _enter_netns(netns_path)  # this thread (and the threads it starts) now dial inside the container
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve_connection, args=(client, m), daemon=True).start()

    def _udp_loop(self, host: socket.socket, m: PortMapping, netns_path: str | None) -> None:
        _enter_netns(netns_path)
        sel = selectors.DefaultSelector()
        sel.register(host, selectors.EVENT_READ, None)
        peers: dict[tuple, socket.socket] = {}
        while not self._stop.is_set():
            try:
                events = sel.select(timeout=0.5)
            except (OSError, ValueError):
                return
            for key, _ in events:
                try:
                    if key.data is None:
                        data, addr = host.recvfrom(UDP_MAX)
                        inner = peers.get(addr)
                        if inner is None:
                            inner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            inner.connect(("127.0.0.1", m.container_port))
                            peers[addr] = inner
                            sel.register(inner, selectors.EVENT_READ, addr)
                        inner.send(data)
                    else:
                        host.sendto(key.fileobj.recv(UDP_MAX), key.data)
                except OSError:
                    if key.data is None and host.fileno() < 0:
                        return
        for inner in peers.values():
            inner.close()

    def close(self) -> None:
        self._stop.set()
        for sock, _ in self.bound:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for t in self._threads:
            t.join(timeout=1)
        self.bound = []
