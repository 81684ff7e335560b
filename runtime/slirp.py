"""Outbound network for a sandbox's own network namespace: slirp4netns, a userspace TCP/IP stack.

RUN steps get what BuildKit and buildah give a build: their own network namespace (the host's
interfaces, its loopback services and its abstract unix sockets are not there) with a way out.
slirp4netns runs in the host's namespace; inside the sandbox's it creates `tap0`, gives it
10.0.2.100/24, a default route via 10.0.2.2 and MTU 65520 (its recommended value, 1500 is slow),
and answers DNS on 10.0.2.3 by forwarding to the host's resolver from the host's side, so a host
whose /etc/resolv.conf names 127.0.0.53 (systemd-resolved, dnsmasq) still resolves. Every
connection the build makes becomes an ordinary socket of that process:

    slirp4netns --configure --mtu=65520 --disable-host-loopback --enable-sandbox --enable-seccomp \\
                --ready-fd=R --exit-fd=E PID tap0

`--disable-host-loopback` refuses 10.0.2.2 -> the host's 127.0.0.1 (libslirp's default maps it);
`--enable-sandbox`/`--enable-seccomp` confine slirp4netns itself (empty root, no capabilities,
a syscall filter). Its lifetime hangs on a pipe: it exits when the write end of `--exit-fd` closes,
which `stop()` does, and the kernel does when this process dies, even by SIGKILL. The tap and the
namespace go with it and with the sandbox's last process.

Why slirp4netns and not pasta (passt): Debian 12's pasta (2023-03) run as root switches to
`nobody` and then cannot open the target namespace; slirp4netns works as root and rootless alike,
has ready/exit fds instead of daemonizing, and is what rootless BuildKit (RootlessKit) and
buildah/podman up to 4.x use. pasta's strength, throughput without NAT, matters little to a build.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
from typing import Callable

from .jail import SandboxError

TOOL = "slirp4netns"
TAP = "tap0"
ADDRESS = "10.0.2.100"
GATEWAY = "10.0.2.2"
DNS = "10.0.2.3"
MTU = 65520
READY_TIMEOUT = 10.0  # seconds; it is ready in a few ms


def available() -> bool:
    return shutil.which(TOOL) is not None


def resolv_conf(host: bytes) -> bytes:
    """The sandbox's /etc/resolv.conf: the host's search/options lines, the stack's DNS forwarder
    as the only nameserver (the host's own nameservers may be loopback addresses, unreachable)."""
    keep = [line for line in host.decode("utf-8", "replace").splitlines()
            if line.split()[:1] and line.split()[0] in ("search", "domain", "options")]
    return ("".join(f"{line}\n" for line in keep) + f"nameserver {DNS}\n").encode()


class Slirp:
    """A running slirp4netns attached to one namespace; stop() ends it and reaps it."""

    def __init__(self, proc: subprocess.Popen, exit_w: int):
        self.proc = proc
        self._exit_w = exit_w

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self._exit_w >= 0:
            os.close(self._exit_w)  # EOF on --exit-fd: slirp4netns exits
            self._exit_w = -1
        if not _exited_within(self.proc, 2.0):
            self.proc.kill()
        self.proc.wait()


def _exited_within(proc: subprocess.Popen, seconds: float) -> bool:
    """Wake as soon as the process ends (a pidfd: Popen.wait(timeout) polls with growing sleeps)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:  # a kernel before 5.3 (or it is reaped already)
        try:
            proc.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


def start(pid: int, explain: Callable[[str], None] | None = None) -> Slirp:
    """Attach slirp4netns to the network namespace of `pid`; return once tap0 is configured."""
    argv = [TOOL, "--configure", f"--mtu={MTU}", "--disable-host-loopback", "--enable-sandbox",
            "--enable-seccomp"]
    if explain:
        explain(" ".join(argv + ["--ready-fd=R", "--exit-fd=E", str(pid), TAP]))
    path = shutil.which(TOOL)
    if path is None:
        raise SandboxError(f"{TOOL} is not installed: RUN's private network needs it",
                           hint="apt-get install slirp4netns (scripts/setup does), or build with --network=host")
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    exit_r, exit_w = os.pipe2(os.O_CLOEXEC)
    log = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen([path, *argv[1:], f"--ready-fd={ready_w}", f"--exit-fd={exit_r}", str(pid), TAP],
                                pass_fds=(ready_w, exit_r), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, close_fds=True)
    except BaseException:
        for fd in (ready_r, ready_w, exit_r, exit_w):
            os.close(fd)
        log.close()
        raise
    os.close(ready_w)
    os.close(exit_r)
    slirp = Slirp(proc, exit_w)
    try:
        ready = _read_ready(ready_r)
        if ready != b"1":
            slirp.stop()
            log.seek(0)
            why = " ".join(log.read().decode("utf-8", "replace").split())[-300:]
            raise SandboxError(f"{TOOL} could not set up the network of the sandbox: {why or 'no output'}",
                               hint="build with --network=host or --network=none to do without it")
    except BaseException:
        slirp.stop()
        raise
    finally:
        os.close(ready_r)
        log.close()
    return slirp


def _read_ready(fd: int) -> bytes:
    r, _, _ = select.select([fd], [], [], READY_TIMEOUT)
    if not r:
        return b""
    try:
        return os.read(fd, 1)
    except OSError:
        return b""
