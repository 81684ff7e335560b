"""The verbs on containers, for any process (the CLI): they read the records, reconcile a
container whose monitor died, and act on its PID 1 or on its cgroups."""
from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import replace

from grammar.errors import UsageError

from .monitor import process_alive
from .records import Container, ContainerConflict, ContainerNotFound, Records, now_iso

LIVE = ("starting", "running", "paused")


def cgroups_of(c: Container):
    """The container's cgroups, as its sandbox made and its monitor recorded them; before they are
    recorded (a monitor killed while it starts the container), found by their name, the container id."""
    from runtime.cgroups import find, reopen

    dirs = c.state.cgroups or find(c.id, c.config.cgroup_parent)
    return reopen([d for d in dirs if os.path.isdir(d)])


def _signal_pid1(c: Container, sig: int) -> None:
    if c.state.pid <= 0:  # not started yet (or gone): kill(0) would signal our own process group
        return
    try:
        os.kill(c.state.pid, sig)
    except ProcessLookupError:
        pass


def parse_signal(name: str | int) -> int:
    """"TERM", "SIGTERM", "15" -> 15."""
    text = str(name).upper()
    if text.isdigit():
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])
    except KeyError:
        raise UsageError(f"unknown signal {name!r}", hint="use a name such as SIGTERM, KILL or a number") from None


def reconcile(records: Records, c: Container) -> Container:
    """A container whose monitor is gone (kill -9, reboot) is exited: its processes and cgroups go."""
    st = c.state
    if st.status not in LIVE or process_alive(st.monitor_pid, st.monitor_start):
        return c
    if st.status == "starting" and not st.monitor_pid:
        return c
    cgroups_of(c).remove()  # SIGKILL to whatever still runs in them, then rmdir
    new = records.update_state(c.id, status="exited", exit_code=st.exit_code if st.exit_code is not None else 137,
                               pid=0, finished_at=st.finished_at or now_iso(), error="the monitor process died")
    return Container(c.id, c.name, c.created, c.config, new)


def find(records: Records, ref: str) -> Container:
    return reconcile(records, records.find(ref))


def all_containers(records: Records) -> list[Container]:
    sweep_trash(records)
    return [reconcile(records, c) for c in records.all()]


def sweep_trash(records: Records) -> list[str]:
    """Delete `<id>.rm<pid>` directories whose remover died before finishing (kill -9 mid-rm)."""
    from cache.fsutil import pid_alive

    swept = []
    for name in os.listdir(records.dir):
        cid, sep, pid = name.partition(".rm")
        if sep and len(cid) == 64 and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(os.path.join(records.dir, name), ignore_errors=True)
            swept.append(name)
    return swept


def is_running(c: Container) -> bool:
    return c.state.status in LIVE


def wait(records: Records, c: Container, timeout_s: float | None = None, poll_s: float = 0.02) -> Container:
    """Until the container has exited (or the timeout): the monitor writes the final state."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        try:
            c = find(records, c.id)
        except ContainerNotFound:  # --rm: the monitor removed it as it ended
            return Container(c.id, c.name, c.created, c.config, replace(c.state, status="removed", pid=0))
        if not is_running(c) or (deadline is not None and time.monotonic() >= deadline):
            return c
        time.sleep(poll_s)


def kill(records: Records, c: Container, sig: int = signal.SIGKILL) -> None:
    if not is_running(c):
        raise ContainerConflict(f"container {c.name} is not running", hint=f"`pybuild start {c.name}` first")
    if sig == signal.SIGKILL:
        cgroups_of(c).kill(signal.SIGKILL)
    _signal_pid1(c, sig)


def stop(records: Records, c: Container, timeout_s: float | None = None) -> Container:
    """The stop signal to PID 1, up to timeout seconds, then SIGKILL to every process of its cgroup."""
    if not is_running(c):
        return c
    timeout_s = c.config.stop_timeout if timeout_s is None else timeout_s
    if c.state.status == "paused":
        unpause(records, c)
    _signal_pid1(c, parse_signal(c.config.stop_signal))
    c = wait(records, c, timeout_s)
    if is_running(c):
        cgroups_of(c).kill(signal.SIGKILL)
        c = wait(records, c)
    return c


def pause(records: Records, c: Container) -> None:
    if c.state.status != "running":
        raise ContainerConflict(f"container {c.name} is not running")
    cgroups_of(c).freeze()  # CgroupError names what is missing when the host has no freezer
    records.update_state(c.id, status="paused")


def unpause(records: Records, c: Container) -> None:
    if c.state.status != "paused":
        raise ContainerConflict(f"container {c.name} is not paused")
    cgroups_of(c).thaw()
    records.update_state(c.id, status="running")


def retire(records: Records, cid: str) -> str | None:
    """Move the container's directory aside: gone from every listing at once, even if deleting it
    is interrupted. Returns the new path (None: already gone) for `shutil.rmtree`."""
    path = records.path(cid)
    trash = f"{path}.rm{os.getpid()}"
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return None
    return trash


def remove_files(records: Records, cid: str) -> None:
    trash = retire(records, cid)
    if trash:
        shutil.rmtree(trash, ignore_errors=True)


def remove(records: Records, c: Container, force: bool = False) -> None:
    if is_running(c):
        if not force:
            raise ContainerConflict(f"container {c.name} is running", hint="stop it first, or use `rm -f`")
        kill(records, c)
        c = wait(records, c, 10)
    remove_files(records, c.id)


def top(c: Container) -> list[tuple[int, str, str]]:
    """(pid, user, command line) of each process in the container's cgroups."""
    out = []
    for pid in sorted(cgroups_of(c).pids()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        out.append((pid, str(uid), cmd))
    return out
