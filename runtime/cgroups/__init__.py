"""Cgroups for one sandbox: v1, v2 and hybrid hosts, detected per controller.

As Docker's cgroupfs driver does, a sandbox's cgroup is `pybuild/<id>` at the root of each
hierarchy (or `<cgroup_parent>/<id>`). pybuild never creates, writes or removes anything in a
cgroup it did not create: only directories under `pybuild/` (or the parent it was given, created
by it when missing) are written, and every one made is removed after the process ends.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Callable

from grammar.errors import PybuildError

from .base import drop_empty_root
from .hierarchy import Hierarchy, find_hierarchies
from .v1 import V1Driver
from .v2 import V2Driver

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class CgroupError(PybuildError):
    """A cgroup could not be made or a limit could not be set."""


@dataclass(frozen=True)
class Stats:
    memory_bytes: int | None
    memory_limit: int | None
    cpu_ns: int | None
    pids: int | None
    pids_denied: int | None = None     # forks refused by the pids limit (pids.events "max")


class Cgroups:
    """The set of cgroup directories one sandbox lives in, one per hierarchy pybuild uses."""

    def __init__(self, drivers: list, explain: Callable[[str], None] | None):
        self.drivers = drivers
        self._explain = explain

    @property
    def dirs(self) -> list[str]:
        return [d.path for d in self.drivers]

    def _for(self, controller: str):
        return next((d for d in self.drivers if controller in d.controllers), None)

    def set_limits(self, limits) -> None:
        """Write every limit of `limits` (runtime.sandbox.Limits) into the cgroup files."""
        if limits is None:
            return
        wanted = {"memory": limits.memory is not None or limits.memory_swap is not None,
                  "cpu": limits.cpus is not None or limits.cpu_shares is not None,
                  "pids": limits.pids is not None}
        for ctrl, needed in wanted.items():
            driver = self._for(ctrl)
            if needed and driver is None:
                raise CgroupError(f"the {ctrl} cgroup controller is not available on this host",
                                  hint=f"drop the {ctrl} limit, or enable the controller (cgroup_enable={ctrl})")
            if needed:
                getattr(driver, f"set_{ctrl}")(limits, self._explain)

    def restrict_devices(self, privileged: bool) -> bool:
        """Docker's device rules: only the nodes /dev holds (and any mknod, without access), so a
        container's root with CAP_MKNOD cannot open the host's disks. True when a devices cgroup
        enforces them (v1); cgroup v2 would need an eBPF program, which pybuild does not load, so
        there the caller drops CAP_MKNOD instead."""
        d = self._for("devices")
        if d is not None and hasattr(d, "set_devices"):
            d.set_devices(privileged)
            return True
        return privileged

    def add(self, pid: int) -> None:
        for d in self.drivers:
            d.write("cgroup.procs", str(pid), None)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.drivers:
            found |= d.pids()
        return found

    def oom_killed(self) -> bool:
        d = self._for("memory")
        return bool(d and d.oom_killed())

    def kill(self, sig: int) -> None:
        """Signal every process in the cgroups (SIGKILL reaches a frozen one too: thawed first)."""
        import signal as _signal

        if sig == _signal.SIGKILL and self._for("freezer") is not None:
            try:
                self._for("freezer").thaw(None, quiet=True)
            except OSError:
                pass
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def freeze(self) -> None:
        self._freezer().freeze(self._explain)

    def thaw(self) -> None:
        self._freezer().thaw(self._explain)

    def _freezer(self):
        d = self._for("freezer")
        if d is None:
            raise CgroupError("no freezer cgroup on this host", hint="pause needs cgroup v1 freezer or cgroup v2")
        return d

    def stats(self) -> Stats:
        mem, cpu, pids = self._for("memory"), self._for("cpuacct") or self._for("cpu"), self._for("pids")
        return Stats(mem.memory_usage() if mem else None, mem.memory_limit() if mem else None,
                     cpu.cpu_ns() if cpu else None, pids.pids_current() if pids else None,
                     pids.keyed("pids.events").get("max") if pids else None)

    def remove(self, timeout_s: float = 5.0) -> None:
        """SIGKILL whatever is left (thawed first), then rmdir each cgroup, deepest first."""
        freezer = self._for("freezer")
        try:
            if freezer:
                freezer.thaw(None, quiet=True)  # a frozen task cannot die of SIGKILL
        except OSError:
            pass
        deadline = time.monotonic() + timeout_s
        failed: OSError | None = None
        for d in self.drivers:  # each hierarchy, even when one before it failed
            try:
                d.remove(deadline)
            except OSError as err:
                failed = failed or err
        if failed is not None:
            raise failed


def open_cgroups(cid: str, parent: str | None = None, explain: Callable[[str], None] | None = None,
                 root: str = "/proc/self/mountinfo") -> Cgroups:
    """Create the cgroups of sandbox `cid` (`pybuild/<cid>` or `<parent>/<cid>`) in each hierarchy."""
    if not _ID.match(cid):
        raise CgroupError(f"cgroup id {cid!r} is not a plain name")
    rel = _relative(parent) + "/" + cid
    drivers: list = []
    try:
        for h in find_hierarchies(root):
            used = [c for c in CONTROLLERS if c in h.controllers]
            if not used:  # e.g. the cgroup2 mount of a hybrid host whose controllers v1 holds
                continue
            driver = (V1Driver if h.version == 1 else V2Driver)(h, rel, explain)
            drivers.append(driver)   # before create: a signal right after its mkdir must not lose it
            driver.create()
    except BaseException as err:
        # Whatever stops the loop (a failed mkdir, or a SIGTERM raised in here by the sandbox's
        # _interruptible when the build is killed), what it made so far goes with it: the caller
        # never gets a Cgroups to remove it by. A final directory we did not make is not touched.
        for d in drivers:
            if d.path in d.made:
                d.remove(time.monotonic() + 2)
            else:
                for level in reversed(d.made):  # pybuild/ (or a --cgroup-parent level) we made, if empty
                    try:
                        os.rmdir(level)
                    except OSError:
                        break
        if isinstance(err, OSError):
            raise CgroupError(f"cannot create cgroup {rel}: {err}",
                              hint="run as root on a host with cgroups mounted under /sys/fs/cgroup") from None
        raise
    return Cgroups(drivers, explain)


def reopen(dirs, explain: Callable[[str], None] | None = None, root: str = "/proc/self/mountinfo") -> Cgroups:
    """The Cgroups of a sandbox that another process made, from its recorded `Cgroups.dirs` (the
    runner's stop, kill, pause, stats and reconcile act from other processes). A directory outside
    the hierarchies, or not a sandbox's own (`pybuild/<id>` or `<parent>/<id>`), is ignored; removal
    takes only that directory (and pybuild/ once empty), never a parent."""
    hierarchies = find_hierarchies(root)
    drivers = []
    for d in dirs:
        h = next((h for h in hierarchies if d.startswith(h.mountpoint.rstrip("/") + "/")), None)
        rel = os.path.relpath(d, h.mountpoint) if h else ""
        if h is None or ".." in rel.split("/") or "/" not in rel or not _ID.match(os.path.basename(rel)):
            continue
        driver = (V1Driver if h.version == 1 else V2Driver)(h, rel, explain)
        driver.made = [driver.path]
        drivers.append(driver)
    return Cgroups(drivers, explain)


def find(cid: str, parent: str | None = None, root: str = "/proc/self/mountinfo") -> list[str]:
    """The existing directories of sandbox `cid` (`pybuild/<cid>` or `<parent>/<cid>`), by name: what a
    process killed after it made them, but before it recorded them, left."""
    if not _ID.match(cid):
        return []
    rel = _relative(parent) + "/" + cid
    return [path for h in find_hierarchies(root) if os.path.isdir(path := os.path.join(h.mountpoint, rel))]


def _relative(parent: str | None) -> str:
    if parent is None:
        return "pybuild"
    parts = [p for p in parent.strip("/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise CgroupError(f"--cgroup-parent {parent!r} is not a cgroup path", hint="use e.g. /pybuild-ci")
    return "/".join(parts)


def sweep_stale(max_age_s: float = 60.0, root: str = "/proc/self/mountinfo") -> list[str]:
    """Remove cgroups under pybuild/ whose owner died (no process left, older than max_age_s).

    A live sandbox's cgroup always holds its process; an empty one older than a minute is the
    leftover of a pybuild killed with SIGKILL before it could clean up.
    """
    removed = []
    for h in find_hierarchies(root):
        top = os.path.join(h.mountpoint, "pybuild")
        try:
            names = os.listdir(top)
        except FileNotFoundError:
            continue
        for name in names:
            path = os.path.join(top, name)
            if not os.path.isdir(path) or not _ID.match(name):
                continue
            try:
                old = time.time() - os.stat(path).st_mtime > max_age_s
                empty = not any(_procs(os.path.join(r, "cgroup.procs")) for r, _, _ in os.walk(path))
            except OSError:
                continue
            if old and empty:
                try:
                    for r, _, _ in sorted(os.walk(path), key=lambda e: len(e[0]), reverse=True):
                        os.rmdir(r)
                    removed.append(path)
                except OSError:
                    pass
        drop_empty_root(top)
    return removed


def _procs(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


__all__ = ["Cgroups", "CgroupError", "Hierarchy", "Stats", "open_cgroups", "reopen", "sweep_stale"]
