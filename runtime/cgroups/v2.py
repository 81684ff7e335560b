"""cgroup v2: one unified hierarchy; controllers enabled through cgroup.subtree_control.

pybuild enables controllers only in the subtree_control of directories it made (pybuild/ and
the levels of --cgroup-parent it created): those the host's root does not already pass down are
simply unavailable, never forced.
"""
from __future__ import annotations

import os
import time

from .base import Driver
from .v1 import CFS_PERIOD_US, _swap_total


class V2Driver(Driver):
    def prepare_parent(self, path: str, last: bool) -> None:
        if last:
            return
        wanted = self.controllers & {"memory", "cpu", "pids"}
        try:
            with open(os.path.join(path, "cgroup.controllers")) as f:
                offered = set(f.read().split())
        except OSError:
            offered = set()
        for ctrl in sorted(wanted & offered):
            with open(os.path.join(path, "cgroup.subtree_control"), "w") as f:
                f.write(f"+{ctrl}")

    def set_memory(self, limits, explain) -> None:
        if limits.memory is not None:
            self.write("memory.max", str(limits.memory))
        total = _swap_total(limits)
        if total is not None and self.read("memory.swap.max") is not None:
            swap = "max" if total < 0 else str(max(0, total - (limits.memory or 0)))
            self.write("memory.swap.max", swap)

    def set_cpu(self, limits, explain) -> None:
        if limits.cpus is not None:
            period = limits.cpu_period or CFS_PERIOD_US
            self.write("cpu.max", f"{max(1000, int(limits.cpus * period))} {period}")
        if limits.cpu_shares is not None:
            self.write("cpu.weight", str(shares_to_weight(limits.cpu_shares)))

    def set_pids(self, limits, explain) -> None:
        self.write("pids.max", str(limits.pids) if limits.pids and limits.pids > 0 else "max")

    def freeze(self, explain) -> None:
        self.write("cgroup.freeze", "1")
        for _ in range(500):
            if self.keyed("cgroup.events").get("frozen") == 1:
                return
            time.sleep(0.002)

    def thaw(self, explain, quiet: bool = False) -> None:
        self.write("cgroup.freeze", "0", None if quiet else "cgset")

    def oom_killed(self) -> bool:
        return self.keyed("memory.events").get("oom_kill", 0) > 0

    def memory_usage(self) -> int | None:
        return self.read_int("memory.current")

    def memory_limit(self) -> int | None:
        return self.read_int("memory.max")  # "max" reads as None

    def cpu_ns(self) -> int | None:
        usec = self.keyed("cpu.stat").get("usage_usec")
        return None if usec is None else usec * 1000

    def pids_current(self) -> int | None:
        return self.read_int("pids.current")


def shares_to_weight(shares: int) -> int:
    """v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000], the conversion runc and crun use."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142
