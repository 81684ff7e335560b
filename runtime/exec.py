"""`exec`: run a command inside a running container, as `nsenter` + a cgroup move would.

A forked child joins the container's cgroups (the ones the sandbox made for it), then its
namespaces with setns (the pid namespace takes effect for children only, hence a second fork). The
grandchild takes the user (resolved in the container's own /etc/passwd) and the working directory
inside the container's root, and is confined by the very function that confines the container's
first process (`sandbox.confine`: capabilities, groups, no_new_privs), so the two cannot drift.
Masked and read-only paths are mounts of the container's mount namespace: joining it applies them.
Setup failures end the child with 126/127 and a message; it never goes on outside the container.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

# Imported now, not after setns: inside the container's mount namespace the host's Python files
# are not there to import.
from grammar.errors import PybuildError
from runtime import caps, jail, linux, seccomp
from runtime.sandbox import DEFAULT_PATH, Confinement, confine
from runtime.users import resolve_user

NAMESPACES = ("user", "cgroup", "ipc", "uts", "net", "pid", "mnt")


class ExecError(PybuildError):
    """The container cannot be entered (not running, or its namespaces are gone)."""


@dataclass(frozen=True)
class ExecSpec:
    argv: tuple[str, ...]
    env: dict[str, str]
    cap_mask: int                # the container's capabilities (container_caps)
    privileged: bool = False
    user: str = ""               # "" is the container's root, as for its first process
    workdir: str = ""
    seccomp: str | None = None   # the container's profile (RunConfig.seccomp): None Docker's default


def container_caps(recorded: int | None, pid: int, cap_add=(), cap_drop=(), privileged: bool = False) -> int:
    """The capability mask the container's first process was given, as its record holds it. A record
    written before masks were recorded: the mask its flags give, never more than PID 1's bounding set
    (on a host without a devices cgroup the sandbox also dropped MKNOD)."""
    if recorded is not None:
        return recorded
    mask = caps.wanted_mask(list(cap_add), list(cap_drop), privileged, caps.last_cap())
    try:
        with open(f"/proc/{pid}/status") as f:
            bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError):
        return 0
    return mask & bounding


def _same_ns(pid: int, ns: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/{ns}").st_ino == os.stat(f"/proc/self/ns/{ns}").st_ino
    except FileNotFoundError:
        return True


def _join_cgroups(dirs: tuple[str, ...]) -> None:
    for d in dirs:
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))


def _enter(pid: int, cgroups: tuple[str, ...]) -> None:
    fds = [(ns, os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC))
           for ns in NAMESPACES if not _same_ns(pid, ns)]
    _join_cgroups(cgroups)
    for _, fd in fds:
        linux.setns(fd, 0)
        os.close(fd)


def _become(spec: ExecSpec, cap_top: int, rules: seccomp.Filter | None) -> dict[str, str]:
    """Inside the container (root and cwd are its root now): workdir, then the same confinement as
    its first process. -> the environment, with PATH and HOME defaulted as for `run`."""
    uid, gid, groups, home = resolve_user("/", spec.user)
    os.chdir(spec.workdir or "/")
    confine(Confinement(spec.cap_mask, cap_top, uid, gid, groups, spec.privileged, rules), jail.Reporter(2, False))
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", home)
    return env


def _child(pid: int, cgroups: tuple[str, ...], spec: ExecSpec, cap_top: int, rules: seccomp.Filter | None) -> None:
    """The forked child; leaves only through os._exit or exec."""
    try:
        # No host fd may reach the container (runc's CVE-2024-21626), and no process of ours in its
        # namespaces may be dumpable (/proc/<pid>/exe of the host's python: CVE-2019-5736).
        os.closerange(3, 1 << 20)
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        _enter(pid, cgroups)
        inner = os.fork()
        if inner == 0:
            try:
                env = _become(spec, cap_top, rules)
                os.execvpe(spec.argv[0], list(spec.argv), env)
            except FileNotFoundError as err:
                os.write(2, f"pybuild exec: {spec.argv[0]}: {err.strerror}\n".encode())
                os._exit(127)
            except BaseException as err:  # noqa: BLE001
                os.write(2, f"pybuild exec: {err}\n".encode())
                os._exit(126)
        _, status = os.waitpid(inner, 0)
        os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    except BaseException as err:  # noqa: BLE001
        os.write(2, f"pybuild exec: cannot enter the container: {err}\n".encode())
        os._exit(126)


def exec_in(pid: int, cgroups: tuple[str, ...], spec: ExecSpec) -> int:
    """Run spec inside the container whose PID 1 is pid; return its exit code (128+sig if killed)."""
    if not os.path.exists(f"/proc/{pid}/ns/mnt"):
        raise ExecError(f"the container's PID 1 ({pid}) is gone", hint="`pybuild ps -a` shows its state")
    cap_top = caps.last_cap()  # the host's /proc: read before entering
    # compiled here, as the sandbox does for the first process (the profile file is the host's)
    rules = seccomp.compile_profile(spec.seccomp, caps.names_of(spec.cap_mask), privileged=spec.privileged)
    child = os.fork()
    if child == 0:
        _child(pid, cgroups, spec, cap_top, rules)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
