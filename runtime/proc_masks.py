"""Docker's masked and read-only paths under /proc and /sys (moby's oci/defaults.go).

Masked: a directory gets an empty read-only tmpfs over it, a file gets /dev/null bound over it,
so /proc/kcore reads empty. Read-only: bound onto itself, then remounted read-only, so writing
/proc/sysrq-trigger fails. --privileged keeps neither.
"""
from __future__ import annotations

MASKED = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
