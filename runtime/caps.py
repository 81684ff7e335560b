"""Capabilities: Docker's default set, --cap-add/--cap-drop, and dropping the rest for good.

The container keeps Docker's 14 default capabilities as its bounding, permitted and effective
sets (CapBnd 00000000a80425fb); inheritable and ambient are empty, so an exec'd non-root user
keeps none. All of them with --privileged.
"""
from __future__ import annotations

from grammar.errors import UsageError

from . import linux

NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
DOCKER_DEFAULT = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                  "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def _bit(name: str, flag: str) -> int:
    key = name.upper().removeprefix("CAP_")
    if key not in NAMES:
        raise UsageError(f"{flag} {name}: unknown capability", hint="use names like NET_ADMIN or CAP_SYS_TIME, or ALL")
    return 1 << NAMES.index(key)


def wanted_mask(cap_add: list[str], cap_drop: list[str], privileged: bool, top: int) -> int:
    """The capability mask the container keeps (defaults + adds - drops; ALL allowed on either)."""
    everything = (1 << (top + 1)) - 1
    if privileged:
        return everything
    mask = 0
    for name in DOCKER_DEFAULT:
        mask |= _bit(name, "default")
    for name in cap_add:
        mask = everything if name.upper() == "ALL" else mask | _bit(name, "--cap-add")
    for name in cap_drop:
        mask = 0 if name.upper() == "ALL" else mask & ~_bit(name, "--cap-drop")
    return mask & everything


def names_of(mask: int) -> list[str]:
    return [n for i, n in enumerate(NAMES) if mask >> i & 1]


def drop_bounding(mask: int, top: int) -> None:
    """Remove every capability outside mask from the bounding set (and clear ambient): no exec'd
    program, setuid or file-capability one included, can ever regain them."""
    for cap in range(top + 1):
        if not mask >> cap & 1:
            linux.prctl(linux.PR_CAPBSET_DROP, cap)
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)


def set_process(mask: int) -> None:
    """After the user switch: effective = permitted = mask for root, inheritable empty.

    For a non-root USER the kernel already cleared permitted and effective at setuid (no
    keepcaps), exactly as Docker's runtime leaves a non-root process, so nothing is raised.
    """
    _eff, permitted, _inh = linux.capget()
    keep = mask & permitted
    linux.capset(keep, keep, 0)
