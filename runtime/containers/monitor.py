"""The monitor: one small process per running container, which owns it.

`launch` double-forks it (setsid, so it outlives the CLI and its terminal). The monitor binds the
-p ports (a port in use fails before anything starts), enters a private mount namespace, mounts the
overlay (the image's unpacked layers + the container's own upper/), spawns the sandbox (with our
init when --init), serves the proxies, relays output to container.log (and to the attached CLI),
waits, records the exit status with OOMKilled, and cleans up. It reports "started" (or the error)
on a pipe to the CLI, and the exit code on a second pipe that an attached CLI waits on.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import struct
import termios
import threading
from dataclasses import dataclass

from grammar.errors import PybuildError

from .logs import LogWriter
from .records import Container, Records, now_iso

LOG_NAME = "container.log"


class ContainerStartError(PybuildError):
    """The monitor could not start the container (the message says which step failed)."""


@dataclass(frozen=True)
class Attach:
    """The CLI's descriptors that an attached run relays; None: not attached (-d)."""
    stdin: int | None
    stdout: int
    stderr: int


@dataclass(frozen=True)
class Started:
    pid: int
    monitor_pid: int
    done_fd: int   # readable: the exit code as text once the container has exited, then EOF


def proc_start_time(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat: with the pid, identifies one process across pid reuse."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def process_alive(pid: int, start: int) -> bool:
    """pid is still that process, and not a zombie: a monitor killed with -9 stays one until the
    host's PID 1 reaps it (late, or never where PID 1 is not an init), and it is dead all the same."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0] not in ("Z", "X") and int(fields[19]) == start
    except (OSError, ValueError, IndexError):
        return False


def launch(root: str, cid: str, attach: Attach | None) -> Started:
    """Start the monitor of container cid; return once the container runs (or raise why not)."""
    from .prefork import Prefork

    return Prefork().launch(root, cid, attach)


def _monitor_main(root: str, cid: str, attach: Attach | None, ready_w: int, done_w: int) -> None:
    """The monitor process. Never returns; every path ends in os._exit."""
    try:
        keep = {ready_w, done_w} | ({attach.stdout, attach.stderr} | ({attach.stdin} if attach.stdin is not None else set()) if attach else set())
        devnull = os.open(os.devnull, os.O_RDWR)
        # The attached CLI's descriptors are moved away from 0-2, then 0-2 become /dev/null: the
        # monitor holds nothing of the terminal or the caller's pipes once the container is gone.
        if attach:
            attach = Attach(*(os.dup(fd) if fd is not None else None for fd in (attach.stdin, attach.stdout, attach.stderr)))
            keep = {ready_w, done_w} | {fd for fd in (attach.stdin, attach.stdout, attach.stderr) if fd is not None}
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        for fd in map(int, os.listdir("/proc/self/fd")):
            if fd > 2 and fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN)
        code = Monitor(Records(root), cid, attach).run(ready_w, done_w)
    except BaseException as err:  # noqa: BLE001 - reported to the CLI, then the monitor ends
        _report(ready_w, {"error": str(err), "hint": getattr(err, "hint", None)})
        os._exit(1)
    os._exit(code)


def _report(fd: int, msg: dict) -> None:
    try:
        os.write(fd, json.dumps(msg).encode() + b"\n")
        os.close(fd)
    except OSError:
        pass


class Monitor:
    def __init__(self, records: Records, cid: str, attach: Attach | None):
        self.records = records
        self.c: Container = records.load(cid)
        self.attach = attach
        self.relays: list[threading.Thread] = []
        self.explain = self._explainer() if self.c.config.explain else None

    def _explainer(self):
        """--explain lines go to the attached CLI's stderr, or (detached) to the log as stderr."""
        from runtime.explain import printer

        if self.attach is not None:
            return printer(os.fdopen(os.dup(self.attach.stderr), "w", buffering=1))
        log = LogWriter(self.path(LOG_NAME))
        return lambda line: log.write("stderr", f"+ {line}\n".encode())

    def path(self, *parts: str) -> str:
        return self.records.path(self.c.id, *parts)

    def run(self, ready_w: int, done_w: int) -> int:
        cfg = self.c.config
        me = os.getpid()
        self.records.update_state(self.c.id, status="starting", monitor_pid=me, monitor_start=proc_start_time(me),
                                  exit_code=None, oom_killed=False, error="", finished_at="")
        lowers = self._lowerdirs()
        proxy = _bound_proxy(cfg.publish)
        try:
            self._mount_rootfs(lowers)
            stdio, parent_ends = self._stdio()
            proc = self._spawn(stdio)
            try:
                for fd in set(stdio.values()):
                    os.close(fd)
                dirs = tuple(proc.cgroup)  # the sandbox's own cgroups: other processes reopen them
                self.records.update_state(self.c.id, status="running", pid=proc.pid, started_at=now_iso(),
                                          ports=tuple(str(m) for m in proxy.mappings) if proxy else (),
                                          cgroups=dirs, cap_mask=proc.cap_mask)
                _report(ready_w, {"pid": proc.pid, "monitor_pid": me})
                if proxy:
                    proxy.start(f"/proc/{proc.pid}/ns/net" if cfg.network != "host" else None)
                self._relay(parent_ends)
            except BaseException:  # the container must not outlive a failed monitor, nor its cgroups
                proc.kill()
                proc.wait()  # reaps it and removes its cgroups
                raise
            result = proc.wait()
        finally:
            if proxy:
                proxy.close()
        for t in self.relays:
            t.join(timeout=5)
        self._unmount_rootfs()
        code = result.exit_code if result.signal is None else 128 + result.signal
        self.records.update_state(self.c.id, status="exited", exit_code=code, oom_killed=bool(result.oom_killed),
                                  finished_at=now_iso(), pid=0)
        trash = None
        if cfg.auto_remove:  # gone from `ps -a` before `run --rm` returns, as with docker
            from .lifecycle import retire

            trash = retire(self.records, self.c.id)
        try:
            os.write(done_w, str(code).encode())
        except OSError:
            pass
        os.close(done_w)
        if trash:
            import shutil

            shutil.rmtree(trash, ignore_errors=True)
        return 0

    def _lowerdirs(self) -> list[str]:
        from cache.store import Store

        store = Store(os.path.dirname(self.records.dir))
        lowers = store.layer_dirs(list(self.c.config.diff_ids))  # top-most first
        if not lowers:  # FROM scratch: overlayfs still wants one lower
            empty = self.path("empty")
            os.makedirs(empty, exist_ok=True)
            lowers = [empty]
        return lowers

    def _mount_rootfs(self, lowers: list[str]) -> None:
        from runtime.mounts import mount_overlay, private_mount_namespace

        private_mount_namespace(self.explain)  # the mount vanishes with this process, whatever kills it
        mount_overlay(lowers, self.path("upper"), self.path("work"), self.path("rootfs"), self.explain,
                      volatile=self.c.config.auto_remove)  # its upper is deleted with it: no sync on unmount

    def _unmount_rootfs(self) -> None:
        from runtime.mounts import unmount

        try:  # it would vanish with this process anyway; --rm must not delete through the mount
            unmount(self.path("rootfs"))
        except OSError:
            pass

    def _stdio(self) -> tuple[dict[str, int], dict[str, int]]:
        """The container's fds and the monitor's ends of them."""
        cfg = self.c.config
        if cfg.tty:
            master, slave = os.openpty()
            if self.attach and self.attach.stdin is not None and os.isatty(self.attach.stdin):
                size = fcntl.ioctl(self.attach.stdin, termios.TIOCGWINSZ, b"\0" * 8)
                fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
            return {"stdin": slave, "stdout": slave, "stderr": slave}, {"pty": master}
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ends = {"stdout": out_r, "stderr": err_r}
        if cfg.interactive and self.attach and self.attach.stdin is not None:
            in_r, in_w = os.pipe()
            ends["stdin"] = in_w
        else:
            in_r = os.open(os.devnull, os.O_RDONLY)
        return {"stdin": in_r, "stdout": out_w, "stderr": err_w}, ends

    def _spawn(self, stdio: dict[str, int]):
        import runtime.init  # noqa: F401 - loaded before pivot_root: the init needs no host file later

        from runtime.sandbox import spawn

        from dataclasses import replace

        return spawn(replace(build_spec(self.c, self.path("rootfs"), stdio), explain=self.explain))

    def _relay(self, ends: dict[str, int]) -> None:
        log = LogWriter(self.path(LOG_NAME))
        a = self.attach

        def copy_out(src: int, stream: str, dst: int | None) -> None:
            while True:
                try:
                    data = os.read(src, 65536)
                except OSError:  # EIO: the pty's last slave is closed
                    data = b""
                if not data:
                    break
                log.write(stream, data)
                if dst is not None:
                    try:
                        os.write(dst, data)
                    except OSError:
                        dst = None  # the attached CLI went away: keep logging
            os.close(src)

        def copy_in(src: int, dst: int, close: bool) -> None:
            try:
                while data := os.read(src, 65536):
                    os.write(dst, data)
            except OSError:
                pass
            if close:
                os.close(dst)

        if "pty" in ends:
            self._thread(copy_out, ends["pty"], "stdout", a.stdout if a else None)
            if a and a.stdin is not None and self.c.config.interactive:
                self._thread(copy_in, a.stdin, ends["pty"], False, daemon=True)
        else:
            self._thread(copy_out, ends["stdout"], "stdout", a.stdout if a else None)
            self._thread(copy_out, ends["stderr"], "stderr", a.stderr if a else None)
            if "stdin" in ends:
                self._thread(copy_in, a.stdin, ends["stdin"], True, daemon=True)

    def _thread(self, fn, *args, daemon: bool = False) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        if not daemon:
            self.relays.append(t)


def _bound_proxy(publish: tuple[str, ...]):
    """The -p listeners, bound now (a port in use fails before the container starts); None without
    -p, and then the proxy module and socket are not even imported."""
    if not publish:
        return None
    from runtime.portproxy import PortProxy, parse_publish

    proxy = PortProxy([parse_publish(p) for p in publish])
    proxy.bind()
    return proxy


def build_spec(c: Container, rootfs: str, stdio: dict[str, int]):
    """The SandboxSpec of a container: its config, over its mounted rootfs."""
    from runtime.sandbox import Limits, Mount, SandboxSpec

    cfg = c.config
    mounts = []
    for v in cfg.volumes:
        host, ctr, *opts = v.split(":")
        # `run` writes HOST:CTR:ro|rw (builder/cli/_runflags.parse_volume); a comma list is read
        # as docker does all the same, so "ro,Z" can never mount read-write
        mounts.append(Mount(source=os.path.abspath(host), target=ctr, readonly="ro" in ",".join(opts).split(",")))
    for t in cfg.tmpfs:
        mounts.append(Mount(source="tmpfs", target=t.split(":")[0], type="tmpfs"))
    limits = None
    if cfg.memory or cfg.cpus or cfg.pids_limit:
        limits = Limits(memory=cfg.memory, cpus=cfg.cpus, pids=cfg.pids_limit)
    return SandboxSpec(rootfs=rootfs, argv=list(cfg.argv), env=dict(cfg.env), user=cfg.user,
                       workdir=cfg.workdir or "/", hostname=cfg.hostname or c.id[:12], network=cfg.network,
                       mounts=mounts, limits=limits, stdin=stdio["stdin"], stdout=stdio["stdout"],
                       stderr=stdio["stderr"], tty=cfg.tty, readonly_rootfs=cfg.read_only,
                       cap_add=list(cfg.cap_add), cap_drop=list(cfg.cap_drop), privileged=cfg.privileged,
                       seccomp=cfg.seccomp,
                       init=cfg.init, cgroup_parent=cfg.cgroup_parent,
                       cgroup_id=c.id)  # pybuild/<id>, as Docker's cgroupfs: found by name if never recorded
