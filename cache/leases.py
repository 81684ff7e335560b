"""Leases: what a live process wrote or is about to use is safe from a concurrent gc.

A build writes a layer blob some seconds before the build-cache entry or the image that makes it
reachable; a `system prune` in between must not take it. So every process that writes to the store
(or holds an image it is about to build on) takes a lease: a file leases/lease-<pid>-<rand> made on
the first write and removed at exit (a kill -9 leaves it; a dead pid's lease is ignored and swept).
Everything a leaseholder writes or re-uses gets a fresh mtime (`touch`), and gc spares every object
whose mtime is not older than the oldest live lease, or than gc's own start. That is BuildKit's
lease idea, keyed by time instead of by per-object records: no bookkeeping on the hot path beyond
one utime per re-used object.
"""
from __future__ import annotations

import atexit
import os

from .fsutil import pid_alive, pid_of_temp, temp_name


class Leases:
    def __init__(self, directory: str):
        self.dir = directory
        self._mine: str | None = None
        self._mine_pid = 0

    def hold(self) -> None:
        """Make sure this process holds a lease (cheap after the first call)."""
        if self._mine is not None and self._mine_pid == os.getpid():
            return
        path = temp_name(self.dir, "lease-")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        self._mine, self._mine_pid = path, os.getpid()
        atexit.register(_remove_if_mine, path, os.getpid())

    def release(self) -> None:
        if self._mine is not None:
            _remove_if_mine(self._mine, self._mine_pid)
            self._mine = None

    def oldest(self) -> float | None:
        """The start (mtime) of the oldest live lease of another process (a process collecting its
        own garbage is not protected from itself); leases of dead processes are removed."""
        oldest = None
        for name in os.listdir(self.dir):
            path = os.path.join(self.dir, name)
            pid = pid_of_temp(name)
            if pid is None or pid == os.getpid():
                continue
            if not pid_alive(pid):
                _unlink(path)
                continue
            try:
                started = os.stat(path).st_mtime
            except FileNotFoundError:
                continue
            oldest = started if oldest is None else min(oldest, started)
        return oldest


def touch(path: str) -> bool:
    """Freshen an object a leaseholder re-uses; False if it is gone (the caller writes it again)."""
    try:
        os.utime(path)
        return True
    except FileNotFoundError:
        return False


def _remove_if_mine(path: str, pid: int) -> None:
    if os.getpid() == pid:  # a forked child inherits atexit handlers; the lease is its parent's
        _unlink(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
