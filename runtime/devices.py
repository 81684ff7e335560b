"""/dev inside the sandbox: a small tmpfs with the nodes a process expects, as runc makes it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    name: str
    major: int
    minor: int
    mode: int = 0o666


NODES = (Node("null", 1, 3), Node("zero", 1, 5), Node("full", 1, 7), Node("random", 1, 8),
         Node("urandom", 1, 9), Node("tty", 5, 0))
LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"))
DEV_TMPFS = "mode=755,size=65536k"
DEVPTS = "newinstance,ptmxmode=0666,mode=0620,gid=5"
SHM_TMPFS = "mode=1777,size=65536k"
