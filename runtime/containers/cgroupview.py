"""The container's cgroups as the host sees them, found from its PID 1's /proc/<pid>/cgroup.

The sandbox creates the cgroups (runtime.cgroups); the runner only needs to find them again later
(from another process: stop, kill, pause, stats, reconcile), so it records their directories when
the container starts: those of the container's lines in /proc/<pid>/cgroup that differ from the
monitor's own, i.e. the ones the sandbox made for it. Nothing here writes to any other cgroup.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from runtime.cgroups.base import drop_empty_root


def _cgroup_mounts() -> dict[str, str]:
    """controller set ("memory", "cpu,cpuacct", "" for cgroup2) -> mount point."""
    found: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, opts = (right.split() + ["", "", ""])[:3]
            point = left.split()[4]
            if fstype == "cgroup2":
                found.setdefault("", point)
            elif fstype == "cgroup":
                ctrls = [o for o in opts.split(",") if o not in ("rw", "ro", "nosuid", "nodev", "noexec", "relatime", "clone_children")]
                ctrls = [o[5:] if o.startswith("name=") else o for o in ctrls]
                found.setdefault(",".join(ctrls), point)
    return found


def _membership(pid: int | str) -> dict[str, str]:
    with open(f"/proc/{pid}/cgroup") as f:
        return {parts[1].replace("name=", ""): parts[2] for parts in (l.rstrip("\n").split(":", 2) for l in f)}


def container_cgroup_dirs(pid: int) -> list[str]:
    """Directories of every cgroup the process is in that this process is not in (absolute paths)."""
    mine, theirs, mounts = _membership("self"), _membership(pid), _cgroup_mounts()
    dirs = []
    for ctrls, path in theirs.items():
        if mine.get(ctrls) == path or ctrls not in mounts or path in ("/", ""):
            continue
        d = os.path.join(mounts[ctrls], path.lstrip("/"))
        if os.path.isdir(d):
            dirs.append(d)
    return sorted(set(dirs))


def pids_in(dirs: list[str]) -> set[int]:
    pids: set[int] = set()
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids |= {int(x) for x in f.read().split()}
        except (FileNotFoundError, ValueError):
            pass
    return pids


def kill_all(dirs: list[str], sig: int = signal.SIGKILL) -> None:
    """Signal every process of the container (SIGKILL reaches a frozen one too, thawed first)."""
    if sig == signal.SIGKILL:
        thaw(dirs)
    for pid in pids_in(dirs):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _freezer(dirs: list[str]) -> tuple[str, str, str] | None:
    for d in dirs:
        if os.path.exists(os.path.join(d, "freezer.state")):
            return os.path.join(d, "freezer.state"), "FROZEN", "THAWED"
    for d in dirs:
        if os.path.exists(os.path.join(d, "cgroup.freeze")):
            return os.path.join(d, "cgroup.freeze"), "1", "0"
    return None


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def freeze(dirs: list[str]) -> bool:
    fz = _freezer(dirs)
    if fz:
        _write(fz[0], fz[1])
    return fz is not None


def thaw(dirs: list[str]) -> None:
    fz = _freezer(dirs)
    if fz:
        try:
            _write(fz[0], fz[2])
        except OSError:
            pass


def remove(dirs: list[str], timeout_s: float = 5.0) -> None:
    """Kill what is left and rmdir each cgroup (deepest first); an emptied cgroup can take a moment."""
    deadline = time.monotonic() + timeout_s
    for d in sorted(dirs, key=len, reverse=True):
        while os.path.isdir(d):
            kill_all([d])
            try:
                for sub in sorted((os.path.join(r, n) for r, ns, _ in os.walk(d) for n in ns), key=len, reverse=True):
                    os.rmdir(sub)
                os.rmdir(d)
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        drop_empty_root(os.path.dirname(d))


@dataclass(frozen=True)
class Usage:
    memory_bytes: int | None
    memory_limit: int | None
    cpu_ns: int | None          # CPU time used, by the cgroup's own accounting
    pids: int


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return None if text == "max" or not text.lstrip("-").isdigit() else int(text)


def usage(dirs: list[str]) -> Usage:
    mem = lim = cpu = None
    for d in dirs:
        mem = mem if mem is not None else (_read_int(os.path.join(d, "memory.usage_in_bytes")) or _read_int(os.path.join(d, "memory.current")))
        lim = lim if lim is not None else (_read_int(os.path.join(d, "memory.limit_in_bytes")) or _read_int(os.path.join(d, "memory.max")))
        cpu = cpu if cpu is not None else _read_int(os.path.join(d, "cpuacct.usage"))
        if cpu is None:
            try:
                with open(os.path.join(d, "cpu.stat")) as f:
                    for line in f:
                        if line.startswith("usage_usec"):
                            cpu = int(line.split()[1]) * 1000
            except OSError:
                pass
    if lim is not None and lim >= 1 << 62:
        lim = None  # v1's "no limit" is a huge number
    return Usage(mem, lim, cpu, len(pids_in(dirs)))
