"""`exec`: run a command inside a running container, as `nsenter` + a cgroup move would.

A forked child joins the container's cgroups (the ones the sandbox made for it), then its
namespaces with setns (the mount namespace last but one, so /proc paths stay readable; the pid
namespace takes effect for children only, hence a second fork). The grandchild takes the user and
working directory inside the container's root and execs. Setup failures end the child with 126/127
and a message; it never goes on outside the container.
"""
from __future__ import annotations

# Imported now, not after setns: inside the container's mount namespace the host's Python files
# are not there to import.
from runtime.users import resolve_user  # noqa: E402

import os
from dataclasses import dataclass

from grammar.errors import PybuildError

NAMESPACES = ("user", "cgroup", "ipc", "uts", "net", "pid", "mnt")


class ExecError(PybuildError):
    """The container cannot be entered (not running, or its namespaces are gone)."""


@dataclass(frozen=True)
class ExecSpec:
    argv: tuple[str, ...]
    env: dict[str, str]
    user: str = ""
    workdir: str = ""


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
    from runtime import linux

    fds = [(ns, os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC))
           for ns in NAMESPACES if not _same_ns(pid, ns)]
    _join_cgroups(cgroups)
    for _, fd in fds:
        linux.setns(fd, 0)
        os.close(fd)


def _become(spec: ExecSpec) -> None:
    if spec.user:
        uid, gid, groups, _home = resolve_user("/", spec.user)
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)
    os.chdir(spec.workdir or "/")


def _child(pid: int, cgroups: tuple[str, ...], spec: ExecSpec) -> None:
    """The forked child; leaves only through os._exit or exec."""
    try:
        _enter(pid, cgroups)
        inner = os.fork()
        if inner == 0:
            try:
                _become(spec)
                os.execvpe(spec.argv[0], list(spec.argv), spec.env)
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
    child = os.fork()
    if child == 0:
        _child(pid, cgroups, spec)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
