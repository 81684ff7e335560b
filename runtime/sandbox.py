"""The sandbox: a command in its own namespaces, pivot_root'ed into a rootfs, under cgroups.

The tutorial's path (chroot -> unshare -> cgroups), one step per line of `_container_setup`:

    parent   make the cgroups (pybuild/<id>) and write the limits
    middle   fork; unshare --mount --uts --ipc --pid [--net] [--user]; mount --make-rprivate /
    pid 1    fork again (the first process of the new PID namespace); the parent puts it in
             the cgroups, then: unshare --cgroup; bind the rootfs; /proc (masked), /sys (ro), /dev;
             /etc/hosts, hostname, resolv.conf; pivot_root; hostname; lo up; fds > 2 closed;
             workdir; capabilities; user; no_new_privs; execve (127 not found, 126 not executable)

Every child runs inside try/except and leaves only through exec or os._exit: a failed set-up step
never goes on, so nothing ever runs outside its jail. A set-up error reaches the parent through a
close-on-exec pipe and becomes a SandboxError. Python imports nothing after pivot_root: every
module used there is imported at the top of this file. Each pybuild process that enters the
container's namespaces is non-dumpable, so the container cannot open /proc/<pid>/exe of the host's
python (runc's CVE-2019-5736).
"""
from __future__ import annotations

import errno
import os
import signal
import termios
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable

from grammar.errors import PybuildError

from . import caps, explain, jail, linux, netns, slirp
from . import seccomp
from .cgroups import Cgroups, Stats, open_cgroups, sweep_stale
from .jail import SandboxError
from .users import resolve_user

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SETUP_FAILED = 125
NOT_EXECUTABLE = 126
NOT_FOUND = 127


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    readonly: bool = False
    type: str = "bind"          # "bind" | "tmpfs"
    options: str = ""           # tmpfs data, e.g. "size=64m"


@dataclass(frozen=True)
class Limits:
    memory: int | None = None         # bytes
    cpus: float | None = None         # CPUs worth of quota per period
    pids: int | None = None
    memory_swap: int | None = None    # memory+swap bytes as Docker's --memory-swap (-1 unlimited)
    cpu_shares: int | None = None     # v1 cpu.shares (converted to cpu.weight on v2)
    cpu_period: int | None = None     # microseconds (default 100 ms)


@dataclass(frozen=True)
class SandboxSpec:
    rootfs: str
    argv: list[str]
    env: dict[str, str]
    user: str = ""
    workdir: str = "/"
    hostname: str = "pybuild"
    network: str = "private"              # "host" | "none" | "private" | "slirp4netns" (private + outbound)
    mounts: list[Mount] = field(default_factory=list)
    limits: Limits | None = None
    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None
    tty: bool = False
    isolation: str = "pivot_root"         # "pivot_root" | "chroot" (escapable: the tutorial's demo)
    userns: str = "host"                  # "host" | "map-root"
    readonly_rootfs: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    init: bool = False
    cgroup_parent: str | None = None
    explain: Callable[[str], None] | None = None
    cgroup_id: str | None = None          # default: a fresh random id
    etc_mounts: str = "run"               # "run" | "build": which generated /etc files (ETC_MOUNTS)
    seccomp: str | None = None            # None: Docker's default profile; "unconfined"; a profile's JSON


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int
    signal: int | None
    oom_killed: bool
    stats: Stats | None = None    # the cgroups' own accounting, read just before their removal


@dataclass(frozen=True)
class _Plan:
    """Everything pid 1 needs, computed in the parent (where errors are still clear)."""
    spec: SandboxSpec
    root: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    env: dict[str, str]
    cap_mask: int
    cap_top: int
    etc_files: tuple[tuple[str, bytes], ...]
    userns_map: str | None
    seccomp_filter: seccomp.Filter | None = None


class SandboxProcess:
    """A started sandbox: `pid` is its PID 1 as the host sees it."""

    network: slirp.Slirp | None = None  # network "slirp4netns": its stack, stopped with the sandbox

    def __init__(self, pid: int, middle: int, cgroups: Cgroups, status_fd: int, reap_fd: int, cap_mask: int = 0):
        self.pid = pid
        self.cap_mask = cap_mask  # the capabilities it was given: `exec` gives each process the same
        self._middle = middle
        self.cgroups = cgroups
        self.cgroup = cgroups.dirs
        self._status_fd = status_fd
        self._reap_fd = reap_fd
        self._result: SandboxResult | None = None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self._result is None:
            os.kill(self.pid, sig)

    def wait(self) -> SandboxResult:
        """Wait for PID 1 (its namespace's other processes die with it), then remove the cgroups.

        The cgroups go on every path: an exception while waiting (KeyboardInterrupt: Ctrl-C reaches
        the whole process group) first SIGKILLs the sandbox and removes its cgroups, then propagates;
        SIGTERM or SIGHUP (while the caller left them at their default) do the same, then end this
        process by that signal as before. Only SIGKILL of this process leaves them, for sweep_stale."""
        if self._result is not None:
            return self._result
        with _interruptible():
            try:
                text = _read_line(self._status_fd)
                kind, _, value = text.partition(" ")
                self._release_middle()
                self._stop_network()
                oom = self.cgroups.oom_killed()
                stats = self.cgroups.stats()
            except BaseException:  # nothing of the sandbox may outlive us, not even its cgroups
                self._abort()
                raise
        self.cgroups.remove()
        if kind == "signal":
            sig = int(value)
            self._result = SandboxResult(128 + sig, sig, oom, stats)
        elif kind == "exit":
            self._result = SandboxResult(int(value), None, oom, stats)
        else:  # the middle process itself was killed: PID 1 died with its namespace
            self._result = SandboxResult(128 + signal.SIGKILL, signal.SIGKILL, oom, stats)
        return self._result

    def _release_middle(self) -> None:
        """Close our ends: the middle may reap PID 1 and exit; reap the middle."""
        for attr in ("_status_fd", "_reap_fd"):
            fd = getattr(self, attr)
            if fd < 0:
                continue
            setattr(self, attr, -1)
            if attr == "_reap_fd":
                try:
                    os.write(fd, b"r")  # now PID 1 may be reaped
                except OSError:
                    pass
            os.close(fd)
        _wait_pid(self._middle)

    def _stop_network(self) -> None:
        network, self.network = self.network, None
        if network is not None:
            network.stop()

    def _abort(self) -> None:
        """SIGKILL the sandbox, reap what is ours and remove the cgroups, whatever fails on the way."""
        steps = [lambda: self.cgroups.kill(signal.SIGKILL), self._release_middle, self._stop_network,
                 self.cgroups.remove]
        if self._reap_fd >= 0:  # PID 1 not released to the middle yet: its pid cannot have been reused
            steps.insert(0, lambda: os.kill(self.pid, signal.SIGKILL))
        for step in steps:
            try:
                step()
            except (OSError, PybuildError):
                pass


class SandboxInterrupted(SandboxError):
    """SIGTERM or SIGHUP arrived while waiting for a sandbox, and could not end this process."""


class _Terminated(BaseException):
    """Raised by the handler _interruptible installs, so that cleanup (except/finally) runs."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _interruptible():
    """SIGTERM/SIGHUP left at their default end a process at once, skipping every cleanup. Inside
    this block they raise _Terminated instead; once the cleanup inside has run, the previous
    handlers come back and the signal is delivered again, so the process still ends by it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}

    def raise_(signum, _frame):
        raise _Terminated(signum)
    raise_.restore_in_child = True  # type: ignore[attr-defined]  (see _default_signals)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            saved[sig] = signal.signal(sig, raise_)
    try:
        yield
    except _Terminated as term:
        for sig, old in saved.items():
            signal.signal(sig, old)
        saved = {}
        os.kill(os.getpid(), term.signum)  # default action: the process ends here
        raise SandboxInterrupted(f"interrupted by {signal.Signals(term.signum).name} while a sandbox ran",
                                 hint="it was killed and its cgroups removed") from None
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def _default_signals() -> None:
    """In a child forked inside _interruptible: SIGTERM/SIGHUP back to their default, as before."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if getattr(signal.getsignal(sig), "restore_in_child", False):
            signal.signal(sig, signal.SIG_DFL)


def run(spec: SandboxSpec) -> SandboxResult:
    return spawn(spec).wait()


def spawn(spec: SandboxSpec) -> SandboxProcess:
    plan = _plan(spec)
    sweep_stale()  # leftovers of a pybuild killed before it could clean up (empty, > 1 min old)
    with _interruptible():  # SIGTERM from here on: the cgroups are removed before we go
        cgroups = open_cgroups(spec.cgroup_id or os.urandom(8).hex(), spec.cgroup_parent, spec.explain)
        try:
            cgroups.set_limits(spec.limits)
            if not cgroups.restrict_devices(spec.privileged):
                plan = _without_mknod(plan)
            return _start(plan, cgroups)
        except BaseException:
            cgroups.remove()  # SIGKILLs what _start put in them (PID 1), then rmdir
            raise


def _without_mknod(plan: _Plan) -> _Plan:
    """No devices cgroup guards this sandbox (a cgroup v2 host): a root that could mknod a block
    device could read the host's disks through it, so the capability goes instead."""
    bit = 1 << caps.NAMES.index("MKNOD")
    if plan.cap_mask & bit and plan.spec.explain:
        plan.spec.explain("# no devices cgroup here (cgroup v2 needs eBPF): CAP_MKNOD dropped instead")
    return replace(plan, cap_mask=plan.cap_mask & ~bit)


def _plan(spec: SandboxSpec) -> _Plan:
    if not spec.argv:
        raise SandboxError("no command to run", hint="give a command (CMD/ENTRYPOINT or argv)")
    if spec.network not in ("host", "none", "private", "slirp4netns"):
        raise SandboxError(f"--network {spec.network}: unknown mode", hint="use host, none, private or slirp4netns")
    if spec.network == "slirp4netns" and not slirp.available():
        raise SandboxError("slirp4netns is not installed: a private network with outbound access needs it",
                           hint="apt-get install slirp4netns (scripts/setup does), or use --network=host or none")
    if spec.isolation not in ("pivot_root", "chroot"):
        raise SandboxError(f"--isolation {spec.isolation}: unknown", hint="use pivot_root or chroot")
    if spec.userns not in ("host", "map-root"):
        raise SandboxError(f"--userns {spec.userns}: unknown", hint="use host or map-root")
    root = os.path.realpath(spec.rootfs)
    if not os.path.isdir(root):
        raise SandboxError(f"rootfs {spec.rootfs} is not a directory")
    for name in ("proc", "sys", "dev"):
        path = os.path.join(root, name)
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            raise SandboxError(f"rootfs {spec.rootfs}: /{name} is not a directory (a symlink?)",
                               hint="the image must have a plain /proc, /sys and /dev (or none)")
    uid, gid, groups, home = resolve_user(root, spec.user)
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", home)
    top = caps.last_cap()
    mask = caps.wanted_mask(spec.cap_add, spec.cap_drop, spec.privileged, top)
    # compiled here, where errors are clear; the child only hands the BPF program to the kernel
    rules = seccomp.compile_profile(spec.seccomp, caps.names_of(mask), privileged=spec.privileged)
    return _Plan(spec, root, uid, gid, groups, env, mask, top, _etc_files(spec), _userns_map(spec), rules)


# Which /etc files the sandbox binds from memory, and whether read-only. `run` is docker run's set.
# `build` is BuildKit's RUN, as dockerd 20.10's BuildKit does it: /etc/hosts and /etc/resolv.conf
# read-only (a write fails with EROFS) and no /etc/hostname at all, so a RUN that writes
# /etc/hostname keeps the write in its layer, and a RUN on an image that has hosts and resolv.conf
# creates no mount point (its layer stays empty).
ETC_MOUNTS = {"run": (("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"), False),
              "build": (("/etc/hosts", "/etc/resolv.conf"), True)}


def etc_mount_stubs(rootfs: str, spec: SandboxSpec) -> list[str]:
    """The files the sandbox will create in `rootfs` as mount points of its generated /etc files,
    as host paths (call before the sandbox starts): a build removes them from the layer after."""
    return jail.generated_stubs(rootfs, ETC_MOUNTS[spec.etc_mounts][0])


def _etc_files(spec: SandboxSpec) -> tuple[tuple[str, bytes], ...]:
    """/etc/hosts, hostname and resolv.conf, bound from memory files: they never land in a layer."""
    wanted = ETC_MOUNTS[spec.etc_mounts][0]
    if spec.network == "host":
        hosts = _read_host("/etc/hosts") or b"127.0.0.1\tlocalhost\n"
    else:
        hosts = (f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 f"127.0.1.1\t{spec.hostname}\n").encode()
    resolv = _read_host("/etc/resolv.conf") or b""
    if spec.network == "slirp4netns":  # the stack's DNS forwarder (a host 127.0.0.53 is not reachable)
        resolv = slirp.resolv_conf(resolv)
    files = (("/etc/hosts", hosts), ("/etc/hostname", f"{spec.hostname}\n".encode()),
             ("/etc/resolv.conf", resolv))
    return tuple((path, content) for path, content in files if path in wanted)


def _read_host(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _userns_map(spec: SandboxSpec) -> str | None:
    """map-root: a user namespace whose ids 0-65535 are the host's same ids (the tutorial's
    --map-root-user, run as root). Files keep their owners, but the container's capabilities
    now belong to its own namespace: no mknod, no host-wide sysctl or device access, even as root."""
    return "0 0 65536\n" if spec.userns == "map-root" else None


# --- the processes ------------------------------------------------------------------------------

def _start(plan: _Plan, cgroups: Cgroups) -> SandboxProcess:
    if plan.spec.init:
        import runtime.init  # noqa: F401 - loaded now: nothing is imported after pivot_root
    status_r, status_w = os.pipe()        # middle -> parent: PID 1's pid, later its status
    go_r, go_w = os.pipe()                # parent -> PID 1: you are in the cgroups, go on
    err_r, err_w = os.pipe2(os.O_CLOEXEC)  # children -> parent: explain lines, a set-up error
    owner = os.getpid()
    middle = os.fork()
    if middle == 0:
        _middle(plan, owner, status_r, status_w, go_r, go_w, err_r, err_w)
    for fd in (status_w, go_r, err_w):
        os.close(fd)
    pid_line = _read_line(status_r)
    network: slirp.Slirp | None = None
    network_error: SandboxError | None = None
    if pid_line.isdigit():
        pid1 = int(pid_line)
        try:
            if plan.userns_map:
                for name in ("uid_map", "gid_map"):
                    with open(f"/proc/{pid1}/{name}", "w") as f:
                        f.write(plan.userns_map)
            cgroups.add(pid1)
            if plan.spec.network == "slirp4netns":  # tap0, address, route: ready before PID 1 goes on
                network = slirp.start(pid1, plan.spec.explain)
            os.write(go_w, b"g")
        except (OSError, SandboxError) as err:
            os.close(go_w)  # PID 1 sees the pipe close without "g" and stops; its error is below
            go_w = -1
            network_error = err if isinstance(err, SandboxError) else None
    try:
        error = _drain(err_r, plan.spec.explain)
    except BaseException:
        if network is not None:
            network.stop()
        raise
    error = str(network_error) if network_error else error
    if error or not pid_line.isdigit():
        if network is not None:
            network.stop()
        os.close(status_r)
        if go_w >= 0:
            os.close(go_w)
        _wait_pid(middle)
        raise SandboxError(f"sandbox set-up for {plan.spec.argv[0]!r} failed: "
                           f"{error or 'the sandbox process died before it started'}",
                           hint="nothing ran; fix the cause above (run with --explain to see each step)")
    proc = SandboxProcess(pid1, middle, cgroups, status_r, go_w, plan.cap_mask)
    proc.network = network
    return proc


def _waitid_nowait(pid: int):
    while True:
        try:
            return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        except InterruptedError:
            continue


def _read_line(fd: int) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


def _drain(fd: int, explain: Callable[[str], None] | None) -> str:
    """Read the children's report until exec closes it: "E line" = an explain step, "X" = error."""
    with os.fdopen(fd, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    error = ""
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "E" and explain:
            explain(rest)
        elif kind == "X":
            error = rest
    return error


def _wait_pid(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue


def _die_with(parent: int) -> None:
    """A sandbox never outlives the process that spawned it: SIGKILL when the parent dies
    (set again after every credential change, which clears it)."""
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the prctl
        os._exit(SETUP_FAILED)


def _middle(plan, owner, status_r, status_w, go_r, go_w, err_r, err_w) -> None:
    """The first child: new namespaces, then PID 1 of the new PID namespace, then its waiter."""
    report = jail.Reporter(err_w, plan.spec.explain is not None)
    try:
        _default_signals()
        spec = plan.spec
        # Carry only what the sandbox needs: the caller's other fds (pipes it waits on, host
        # directories) must neither leak into the container nor be held open by this waiter.
        _close_fds_except({0, 1, 2, status_w, go_r, err_w} | {fd for fd in (spec.stdin, spec.stdout, spec.stderr)
                                                             if fd is not None})
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        _die_with(owner)
        flags = linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWPID
        flags |= linux.CLONE_NEWNET if spec.network != "host" else 0
        flags |= linux.CLONE_NEWUSER if plan.userns_map else 0
        report(explain.unshare_line(flags))
        linux.unshare(flags)
        report.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        pid1 = os.fork()
        if pid1 == 0:
            _pid1(plan, status_w, go_r, report)
        os.close(err_w)
        os.write(status_w, f"{pid1}\n".encode())
        # PID 1 is left a zombie until the parent's wait(): its pid (and /proc/<pid>) cannot be
        # reused under the parent while it still calls kill() or reads the cgroups.
        info = _waitid_nowait(pid1)
        if info.si_code == os.CLD_EXITED:
            os.write(status_w, f"exit {info.si_status}\n".encode())
        else:
            os.write(status_w, f"signal {info.si_status}\n".encode())
        os.read(go_r, 1)  # "r" from wait(), or EOF when the parent is gone
        _wait_pid(pid1)
        os._exit(0)
    except BaseException as err:  # noqa: BLE001 - never go on after a failed step
        report.fail(err)
        os._exit(SETUP_FAILED)


def _close_fds_except(keep: set[int]) -> None:
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = max(low, fd + 1)
    os.closerange(low, 1 << 20)


def _pid1(plan: _Plan, status_w: int, go_r: int, report: jail.Reporter) -> None:
    try:
        os.close(status_w)
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.read(go_r, 1) != b"g":
            raise SandboxError("the parent could not place the sandbox in its cgroups")
        os.close(go_r)
        _container_setup(plan, report)
        _exec(plan, report)
    except BaseException as err:  # noqa: BLE001 - never exec outside the jail
        report.fail(err)
        os._exit(SETUP_FAILED)


def _container_setup(plan: _Plan, report: jail.Reporter) -> None:
    spec, root = plan.spec, plan.root
    if plan.userns_map:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    report("unshare --cgroup")
    linux.unshare(linux.CLONE_NEWCGROUP)
    report.mount(root, root, None, linux.MS_BIND | linux.MS_REC)
    report.root = root
    for m in spec.mounts:
        jail.extra_mount(root, m, report)
    jail.mount_proc(root, spec.privileged, report)
    jail.mount_sys(root, spec, report)
    jail.mount_dev(root, spec, plan.userns_map is not None, report)
    for path, content in plan.etc_files:
        jail.bind_generated(root, path, content, report, readonly=ETC_MOUNTS[spec.etc_mounts][1])
    if spec.readonly_rootfs:
        report.mount(None, root, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)
    if spec.network != "host":
        report("ip link set lo up")
        netns.loopback_up()
    report(f"hostname {spec.hostname}")
    linux.sethostname(spec.hostname)
    os.chdir(root)
    if spec.isolation == "chroot":
        report(f"chroot {root}   # escapable: the old root stays mounted")
        os.chroot(".")
    else:
        report(f"pivot_root {root} {root} && umount -l /   # the host's root is detached")
        linux.pivot_root(".", ".")
        linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")


def _exec(plan: _Plan, report: jail.Reporter) -> None:
    """Inside the jail: stdio, fds, workdir, capabilities, user, no_new_privs, then execve."""
    spec = plan.spec
    for fd, target in ((spec.stdin, 0), (spec.stdout, 1), (spec.stderr, 2)):
        if fd is not None and fd != target:
            os.dup2(fd, target)
    os.setsid()
    if spec.tty and os.isatty(0):
        netns.fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # Close every fd above 2 but the report pipe (close-on-exec): no host directory stays reachable
    # through /proc/self/fd before the workdir is entered (runc's CVE-2024-21626).
    _close_fds_except({0, 1, 2, report.fd})
    workdir = spec.workdir or "/"
    if not workdir.startswith("/"):
        workdir = "/" + workdir
    report(f"mkdir -p {workdir} && cd {workdir}")
    os.makedirs(workdir, exist_ok=True)
    os.chdir(workdir)
    here = os.getcwd()  # raises when the directory is outside the root (unreachable)
    if not here.startswith("/"):
        raise SandboxError(f"WORKDIR {workdir} resolves outside the container")
    confine(Confinement(plan.cap_mask, plan.cap_top, plan.uid, plan.gid, plan.groups, spec.privileged,
                        plan.seccomp_filter), report)
    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if spec.init:
        from runtime.init import run_init  # loaded before pivot_root (see _start)

        os.close(report.fd)
        run_init(list(spec.argv), plan.env)
    report(f"exec {spec.argv[0]}")
    _execvpe(spec.argv, plan.env, report)


@dataclass(frozen=True)
class Confinement:
    """What confines every process pybuild starts in a container: the first one (`_exec`) and each
    `pybuild exec` (runtime/exec.py) alike, so the two cannot drift."""
    cap_mask: int
    cap_top: int
    uid: int
    gid: int
    groups: tuple[int, ...]
    privileged: bool
    seccomp_filter: seccomp.Filter | None = None   # seccomp.compile_profile's; None: unconfined


def confine(c: Confinement, report: jail.Reporter) -> None:
    """The last steps before execve, inside the container: capabilities outside the mask leave the
    bounding set, the user and groups are taken, effective = permitted = the mask (none for a
    non-root user), no_new_privs, then the seccomp filter (after no_new_privs, which lets an
    unprivileged process install it; last, so no set-up call of ours has to pass it).
    PR_SET_PDEATHSIG is cleared by the user switch: set it again."""
    dropped = caps.names_of(((1 << (c.cap_top + 1)) - 1) & ~c.cap_mask)
    report(explain.capsh_line(dropped))
    caps.drop_bounding(c.cap_mask, c.cap_top)
    report(f"setpriv --reuid={c.uid} --regid={c.gid} --groups={','.join(map(str, c.groups)) or '-'}")
    os.setgroups(list(c.groups))
    os.setresgid(c.gid, c.gid, c.gid)
    os.setresuid(c.uid, c.uid, c.uid)
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    caps.set_process(c.cap_mask)
    if not c.privileged:
        report("setpriv --no-new-privs")
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    if c.seccomp_filter is not None:
        f = c.seccomp_filter
        report(f"# seccomp: {f.source}, {f.rules} syscall rules, {f.instructions} BPF instructions")
        linux.seccomp_set_filter(f.program, f.flags)


def _execvpe(argv: list[str], env: dict[str, str], report: jail.Reporter) -> None:
    """PATH search inside the rootfs; 127 when not found, 126 when not executable (as a shell)."""
    name = argv[0]
    candidates = [name] if "/" in name else [os.path.join(d or ".", name) for d in env["PATH"].split(":")]
    last: OSError | None = None
    for path in candidates:
        try:
            os.execve(path, argv, env)
        except OSError as err:
            if last is None or err.errno != errno.ENOENT:
                last = err
    os.close(report.fd)  # from here on the command "ran": its failure is an exit code
    missing = last is None or last.errno in (errno.ENOENT, errno.ENOTDIR)
    what = "not found" if missing else f"cannot execute: {last.strerror}"
    try:
        os.write(2, f"pybuild: {name}: {what}\n".encode())
    finally:
        os._exit(NOT_FOUND if missing else NOT_EXECUTABLE)
