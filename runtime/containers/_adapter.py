"""TEMPORARY local adapter until the sandbox wing (runtime/linux.py, mounts.py, sandbox.py) lands:
the smallest subset of their contract (docs/CONTRACTS.md) that the runner needs, used only when the
real modules cannot be imported. Removed as soon as they land."""
from __future__ import annotations

import ctypes
import os
import secrets
import signal
import time
from dataclasses import dataclass, field

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 4096, 16384, 1 << 18
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


def pivot_root(new: str, old: str) -> None:
    _check(_libc.syscall(155, new.encode(), old.encode()), "pivot_root")  # x86_64 SYS_pivot_root


def private_mount_namespace() -> None:
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def mount_overlay(lowerdirs: list[str], upperdir: str, workdir: str, target: str) -> None:
    mount("overlay", target, "overlay", 0, f"lowerdir={':'.join(lowerdirs)},upperdir={upperdir},workdir={workdir}")


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    readonly: bool = False
    type: str = "bind"


@dataclass(frozen=True)
class Limits:
    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None


@dataclass(frozen=True)
class SandboxSpec:
    rootfs: str
    argv: list[str]
    env: dict[str, str]
    user: str = ""
    workdir: str = "/"
    hostname: str = "pybuild"
    network: str = "private"
    mounts: list = field(default_factory=list)
    limits: Limits | None = None
    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None
    tty: bool = False
    readonly_rootfs: bool = False
    cap_add: list = field(default_factory=list)
    cap_drop: list = field(default_factory=list)
    privileged: bool = False
    init: bool = False
    cgroup_parent: str | None = None


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int
    signal: int | None
    oom_killed: bool


_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")


def _make_cgroups(limits: Limits | None) -> list[str]:
    name = secrets.token_hex(8)
    dirs = []
    for ctrl in _CONTROLLERS:
        d = f"/sys/fs/cgroup/{ctrl}/pybuild/{name}"
        for _attempt in range(50):  # a parallel removal may drop an empty pybuild/ under us
            try:
                os.makedirs(d)
                break
            except FileNotFoundError:
                time.sleep(0.01)
        dirs.append(d)
    if limits and limits.memory:
        for f in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
            with open(f"/sys/fs/cgroup/memory/pybuild/{name}/{f}", "w") as fh:
                fh.write(str(limits.memory))
    if limits and limits.cpus:
        with open(f"/sys/fs/cgroup/cpu/pybuild/{name}/cpu.cfs_quota_us", "w") as fh:
            fh.write(str(int(limits.cpus * 100000)))
    if limits and limits.pids:
        with open(f"/sys/fs/cgroup/pids/pybuild/{name}/pids.max", "w") as fh:
            fh.write(str(limits.pids))
    return dirs


def _lo_up() -> None:
    import fcntl
    import socket
    import struct

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s, 0x8913, ifr))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sh14x", b"lo", flags | 1))  # SIOCSIFFLAGS IFF_UP
    finally:
        s.close()


def _resolve_user(user: str) -> tuple[int, int]:
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    uid = gid = None
    if name.isdigit():
        uid = int(name)
    try:
        with open("/etc/passwd") as f:
            for line in f:
                p = line.split(":")
                if p[0] == name or (uid is not None and p[2] == str(uid)):
                    uid, gid = int(p[2]), int(p[3])
                    break
    except OSError:
        pass
    if uid is None:
        raise OSError(f"unable to find user {name}")
    if group:
        gid = int(group) if group.isdigit() else gid
    return uid, gid if gid is not None else uid


def _container_pid1(spec: SandboxSpec) -> None:
    """In the new namespaces, as PID 1: the jail, then the command (or our init)."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    if spec.network != "host":
        _lo_up()
    import socket

    socket.sethostname(spec.hostname)
    root = spec.rootfs
    mount(root, root, None, MS_BIND | MS_REC)
    for m in spec.mounts:
        tgt = os.path.join(root, m.target.lstrip("/"))
        os.makedirs(tgt, exist_ok=True)
        if m.type == "tmpfs":
            mount("tmpfs", tgt, "tmpfs", MS_NOSUID | MS_NODEV)
        else:
            mount(m.source, tgt, None, MS_BIND | MS_REC)
            if m.readonly:
                mount(None, tgt, None, MS_BIND | MS_REC | MS_RDONLY | 0x20)  # MS_REMOUNT
    os.makedirs(f"{root}/proc", exist_ok=True)
    mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(f"{root}/dev", exist_ok=True)
    mount("tmpfs", f"{root}/dev", "tmpfs", MS_NOSUID, "mode=755")
    for dev in ("null", "zero", "full", "random", "urandom", "tty"):
        open(f"{root}/dev/{dev}", "w").close()
        mount(f"/dev/{dev}", f"{root}/dev/{dev}", None, MS_BIND)
    os.makedirs(f"{root}/dev/pts", exist_ok=True)
    os.makedirs(f"{root}/dev/shm", exist_ok=True)
    os.chdir(root)
    pivot_root(".", ".")
    umount2(".", MNT_DETACH)
    os.chdir("/")
    if spec.readonly_rootfs:
        mount(None, "/", None, MS_BIND | MS_REMOUNT_RO)
    os.setsid()
    for fd, target in ((spec.stdin, 0), (spec.stdout, 1), (spec.stderr, 2)):
        if fd is not None:
            os.dup2(fd, target)
    if spec.tty:
        import fcntl
        import termios

        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    uid, gid = _resolve_user(spec.user)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    os.chdir(spec.workdir or "/")
    for sig in range(1, signal.NSIG):
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if spec.init:
        from runtime.init import run_init

        run_init(list(spec.argv), dict(spec.env))
    os.execvpe(spec.argv[0], list(spec.argv), dict(spec.env))


MS_REMOUNT_RO = 0x20 | MS_RDONLY | MS_BIND


class SandboxProcess:
    def __init__(self, pid: int, middle: int, cgroups: list[str]):
        self.pid, self._middle, self.cgroup = pid, middle, cgroups

    def kill(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self) -> SandboxResult:
        _, status = os.waitpid(self._middle, 0)
        code = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        oom = False
        try:
            with open(f"{self.cgroup[0]}/memory.oom_control") as f:
                oom = any(l.startswith("oom_kill ") and int(l.split()[1]) > 0 for l in f)
        except OSError:
            pass
        from .cgroupview import remove

        remove(self.cgroup)
        return SandboxResult(code, None, oom)


def spawn(spec: SandboxSpec) -> SandboxProcess:
    dirs = _make_cgroups(spec.limits)
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            os.close(r)
            for d in dirs:
                with open(f"{d}/cgroup.procs", "w") as f:
                    f.write(str(os.getpid()))
            flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID
            unshare(flags | (CLONE_NEWNET if spec.network != "host" else 0))
            child = os.fork()
            if child == 0:
                try:
                    os.close(w)
                    _container_pid1(spec)
                except BaseException as err:  # noqa: BLE001 - never run outside the jail
                    os.write(2 if spec.stderr is None else spec.stderr, f"pybuild: sandbox: {err}\n".encode())
                    os._exit(127 if isinstance(err, FileNotFoundError) else 126)
            os.write(w, str(child).encode())
            os.close(w)
            _, status = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
        except BaseException:  # noqa: BLE001
            os._exit(126)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        text = f.read().decode()
    if not text:
        os.waitpid(middle, 0)
        from .cgroupview import remove

        remove(dirs)
        raise OSError("the sandbox failed to start")
    return SandboxProcess(int(text), middle, dirs)
