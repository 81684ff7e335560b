"""The verbs on containers, for any process (the CLI): they read the records, reconcile a
container whose monitor died, and act on its PID 1 or on its cgroups."""
from __future__ import annotations

import os
import shutil
import signal
import time

from grammar.errors import UsageError

from . import cgroupview
from .monitor import process_alive
from .records import Container, ContainerConflict, Records, now_iso

LIVE = ("starting", "running", "paused")


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
    dirs = [d for d in st.cgroups if os.path.isdir(d)]
    cgroupview.kill_all(dirs)
    cgroupview.remove(dirs)
    new = records.update_state(c.id, status="exited", exit_code=st.exit_code if st.exit_code is not None else 137,
                               pid=0, finished_at=st.finished_at or now_iso(), error="the monitor process died")
    return Container(c.id, c.name, c.created, c.config, new)


def find(records: Records, ref: str) -> Container:
    return reconcile(records, records.find(ref))


def all_containers(records: Records) -> list[Container]:
    return [reconcile(records, c) for c in records.all()]


def is_running(c: Container) -> bool:
    return c.state.status in LIVE


def wait(records: Records, c: Container, timeout_s: float | None = None, poll_s: float = 0.02) -> Container:
    """Until the container has exited (or the timeout): the monitor writes the final state."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        c = find(records, c.id)
        if not is_running(c) or (deadline is not None and time.monotonic() >= deadline):
            return c
        time.sleep(poll_s)


def kill(records: Records, c: Container, sig: int = signal.SIGKILL) -> None:
    if not is_running(c):
        raise ContainerConflict(f"container {c.name} is not running", hint=f"`pybuild start {c.name}` first")
    if sig == signal.SIGKILL:
        cgroupview.kill_all(list(c.state.cgroups))
    try:
        os.kill(c.state.pid, sig)
    except ProcessLookupError:
        pass


def stop(records: Records, c: Container, timeout_s: float | None = None) -> Container:
    """The stop signal to PID 1, up to timeout seconds, then SIGKILL to every process of its cgroup."""
    if not is_running(c):
        return c
    timeout_s = c.config.stop_timeout if timeout_s is None else timeout_s
    if c.state.status == "paused":
        unpause(records, c)
    try:
        os.kill(c.state.pid, parse_signal(c.config.stop_signal))
    except ProcessLookupError:
        pass
    c = wait(records, c, timeout_s)
    if is_running(c):
        cgroupview.kill_all(list(c.state.cgroups))
        c = wait(records, c)
    return c


def pause(records: Records, c: Container) -> None:
    if c.state.status != "running":
        raise ContainerConflict(f"container {c.name} is not running")
    if not cgroupview.freeze(list(c.state.cgroups)):
        raise ContainerConflict(f"container {c.name}: no freezer cgroup to pause it with")
    records.update_state(c.id, status="paused")


def unpause(records: Records, c: Container) -> None:
    if c.state.status != "paused":
        raise ContainerConflict(f"container {c.name} is not paused")
    cgroupview.thaw(list(c.state.cgroups))
    records.update_state(c.id, status="running")


def remove_files(records: Records, cid: str) -> None:
    path = records.path(cid)
    trash = f"{path}.rm{os.getpid()}"
    try:
        os.rename(path, trash)  # gone from listings at once, even if the rmtree is interrupted
    except FileNotFoundError:
        return
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
    for pid in sorted(cgroupview.pids_in(list(c.state.cgroups))):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        out.append((pid, str(uid), cmd))
    return out
