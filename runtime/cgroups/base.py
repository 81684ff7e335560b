"""What the v1 and v2 drivers share: one cgroup directory that pybuild made, and its files."""
from __future__ import annotations

import errno
import os
import signal
import time
from typing import Callable

from .hierarchy import Hierarchy


def drop_empty_root(root: str) -> None:
    """`pybuild/` at a hierarchy's root is pybuild's own: once the cgroup just removed from it was
    its last, remove it too, whichever process made it. rmdir fails harmlessly while another
    sandbox still lives there; a creator racing us re-makes it (Driver.create retries).
    Anything else (a --cgroup-parent) is left alone."""
    if os.path.basename(root) == "pybuild" and os.path.ismount(os.path.dirname(root)):
        try:
            os.rmdir(root)
        except OSError:
            pass


class Driver:
    def __init__(self, hierarchy: Hierarchy, rel: str, explain: Callable[[str], None] | None):
        self.hierarchy = hierarchy
        self.controllers = hierarchy.controllers
        self.path = os.path.join(hierarchy.mountpoint, rel)
        self.made: list[str] = []      # directories this driver created, outermost first
        self._explain = explain

    def create(self) -> None:
        """mkdir each missing level; an existing final directory is not ours, so it is refused."""
        rel = os.path.relpath(self.path, self.hierarchy.mountpoint)
        cur = self.hierarchy.mountpoint
        parts = rel.split("/")
        for i, part in enumerate(parts):
            cur = os.path.join(cur, part)
            for _attempt in range(50):  # a parallel sweep may rmdir an empty pybuild/ under us
                try:
                    os.mkdir(cur)
                    self.made.append(cur)
                    self.prepare_parent(cur, last=i == len(parts) - 1)
                    break
                except FileExistsError:
                    if i == len(parts) - 1:
                        raise
                    break
                except FileNotFoundError:  # a parent was removed under us: make it again
                    os.makedirs(os.path.dirname(cur), exist_ok=True)
                    time.sleep(0.01)
        if self._explain:
            names = ",".join(sorted(self.controllers)) or "unified"
            self._explain(f"cgcreate -g {names}:/{rel}")

    def prepare_parent(self, path: str, last: bool) -> None:
        """Hook: v2 enables controllers in the levels it made."""

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def write(self, name: str, value: str, explain_as: str | None = "cgset") -> None:
        if self._explain and explain_as:
            rel = os.path.relpath(self.path, self.hierarchy.mountpoint)
            self._explain(f"cgset -r {name}={value} /{rel}")
        with open(self.file(name), "w") as f:
            f.write(value)

    def read(self, name: str) -> str | None:
        try:
            with open(self.file(name)) as f:
                return f.read()
        except OSError:
            return None

    def read_int(self, name: str) -> int | None:
        text = (self.read(name) or "").strip()
        return int(text) if text.lstrip("-").isdigit() else None

    def keyed(self, name: str) -> dict[str, int]:
        out = {}
        for line in (self.read(name) or "").splitlines():
            k, _, v = line.partition(" ")
            if v.strip().lstrip("-").isdigit():
                out[k] = int(v)
        return out

    def pids(self) -> set[int]:
        found: set[int] = set()
        for root, _dirs, _files in os.walk(self.path):
            try:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    found |= {int(x) for x in f.read().split()}
            except (OSError, ValueError):
                pass
        return found

    def remove(self, deadline: float) -> None:
        """Kill what is left in it, rmdir it (children first) and the levels it made, if empty."""
        while os.path.isdir(self.path):
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                for root, _d, _f in sorted(os.walk(self.path), key=lambda e: len(e[0]), reverse=True):
                    os.rmdir(root)
            except FileNotFoundError:
                break
            except OSError as err:
                if err.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        for made in reversed(self.made[:-1]):  # pybuild/ and parents we made: only when empty
            try:
                os.rmdir(made)
            except OSError:
                break
        drop_empty_root(os.path.dirname(self.path))
