"""Which cgroup hierarchies this host has, from /proc/self/mountinfo (per controller)."""
from __future__ import annotations

import os
from dataclasses import dataclass

_MOUNT_OPTS = {"rw", "ro", "nosuid", "nodev", "noexec", "relatime", "noatime", "clone_children",
               "nsdelegate", "memory_recursiveprot", "memory_localevents", "favordynmods"}


@dataclass(frozen=True)
class Hierarchy:
    version: int                   # 1 or 2
    mountpoint: str
    controllers: frozenset[str]    # v1: the mount's controllers; v2: those usable in a child of the root


def find_hierarchies(mountinfo: str = "/proc/self/mountinfo") -> list[Hierarchy]:
    """v1 hierarchies first; the cgroup2 mount with the controllers no v1 hierarchy has (hybrid)."""
    v1: list[Hierarchy] = []
    v2_point = None
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = right.split()
            if len(fields) < 3 or left.split()[3] != "/":  # only a hierarchy's root: never a sub-cgroup bind
                continue
            point = left.split()[4]
            if fields[0] == "cgroup2" and v2_point is None:
                v2_point = point
            elif fields[0] == "cgroup":
                ctrls = frozenset(o for o in fields[2].split(",") if o not in _MOUNT_OPTS and not o.startswith("name="))
                if ctrls and all(ctrls.isdisjoint(h.controllers) for h in v1):
                    v1.append(Hierarchy(1, point, ctrls))
    found = list(v1)
    if v2_point is not None:
        taken = frozenset().union(*(h.controllers for h in v1))
        try:
            with open(os.path.join(v2_point, "cgroup.subtree_control")) as f:
                enabled = frozenset(f.read().split())
        except OSError:
            enabled = frozenset()
        # cgroup.freeze exists in every non-root cgroup2 directory: freezing needs no controller
        ctrls = (enabled - taken) | ({"freezer"} - taken)
        found.append(Hierarchy(2, v2_point, ctrls))
    return found
