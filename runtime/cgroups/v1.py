"""cgroup v1: one hierarchy per controller set (memory, cpu, cpuacct, pids, freezer...)."""
from __future__ import annotations

import time

from .base import Driver

CFS_PERIOD_US = 100_000
# moby's default device rules: mknod of anything, access only to these (null, zero, full,
# random, urandom, tty, console, ptmx, the pts, tun)
DOCKER_DEVICE_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
                       "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm")


class V1Driver(Driver):
    def set_memory(self, limits, explain) -> None:
        if limits.memory is not None:
            self.write("memory.limit_in_bytes", str(limits.memory))
        swap_total = _swap_total(limits)
        if swap_total is not None and self.read("memory.memsw.limit_in_bytes") is not None:
            self.write("memory.memsw.limit_in_bytes", str(swap_total))

    def set_cpu(self, limits, explain) -> None:
        if limits.cpus is not None:
            period = limits.cpu_period or CFS_PERIOD_US
            self.write("cpu.cfs_period_us", str(period))
            self.write("cpu.cfs_quota_us", str(max(1000, int(limits.cpus * period))))
        if limits.cpu_shares is not None:
            self.write("cpu.shares", str(limits.cpu_shares))

    def set_devices(self, privileged: bool) -> None:
        if privileged:
            self.write("devices.allow", "a")
            return
        self.write("devices.deny", "a")
        for rule in DOCKER_DEVICE_RULES:
            self.write("devices.allow", rule)

    def set_pids(self, limits, explain) -> None:
        self.write("pids.max", str(limits.pids) if limits.pids and limits.pids > 0 else "max")

    def freeze(self, explain) -> None:
        self.write("freezer.state", "FROZEN")
        for _ in range(500):  # FREEZING -> FROZEN once every task stopped
            if (self.read("freezer.state") or "").strip() == "FROZEN":
                return
            time.sleep(0.002)

    def thaw(self, explain, quiet: bool = False) -> None:
        self.write("freezer.state", "THAWED", None if quiet else "cgset")

    def oom_killed(self) -> bool:
        oom = self.keyed("memory.oom_control")
        return oom.get("oom_kill", 0) > 0 or oom.get("under_oom", 0) > 0

    def memory_usage(self) -> int | None:
        return self.read_int("memory.usage_in_bytes")

    def memory_limit(self) -> int | None:
        value = self.read_int("memory.limit_in_bytes")
        return None if value is None or value >= 1 << 62 else value

    def cpu_ns(self) -> int | None:
        return self.read_int("cpuacct.usage")

    def pids_current(self) -> int | None:
        return self.read_int("pids.current")


def _swap_total(limits) -> int | None:
    """memory+swap as Docker: --memory-swap when given (-1 unlimited), else twice --memory."""
    if limits.memory_swap is not None:
        return -1 if limits.memory_swap < 0 else limits.memory_swap
    return None if limits.memory is None else 2 * limits.memory
