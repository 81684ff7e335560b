"""--explain: each kernel step of the sandbox, written as the command a person would type for it
in the tutorial (`unshare --mount --uts ... --fork`, `mount -t proc proc /proc`, `cgset -r ...`,
`pivot_root`, `capsh --drop=...`), so a reader sees the container being made by hand.

The sandbox calls these formatters right before each call it makes; the lines reach the caller's
`explain` callback (the builder's and runner's --explain flags print them).
"""
from __future__ import annotations

from typing import Callable, TextIO

from . import linux

_UNSHARE = ((linux.CLONE_NEWNS, "--mount"), (linux.CLONE_NEWUTS, "--uts"), (linux.CLONE_NEWIPC, "--ipc"),
            (linux.CLONE_NEWNET, "--net"), (linux.CLONE_NEWUSER, "--user"), (linux.CLONE_NEWCGROUP, "--cgroup"),
            (linux.CLONE_NEWPID, "--pid --fork"))
_OPTIONS = ((linux.MS_RDONLY, "ro"), (linux.MS_NOSUID, "nosuid"), (linux.MS_NODEV, "nodev"),
            (linux.MS_NOEXEC, "noexec"), (linux.MS_STRICTATIME, "strictatime"))


def unshare_line(flags: int) -> str:
    return "unshare " + " ".join(word for bit, word in _UNSHARE if flags & bit)


def mount_line(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> str:
    """The mount(8) command for one mount(2) call."""
    if flags & linux.MS_PRIVATE:
        return f"mount --make-{'r' if flags & linux.MS_REC else ''}private {target}"
    opts = [word for bit, word in _OPTIONS if flags & bit]
    if flags & linux.MS_REMOUNT:
        return f"mount -o {','.join(['remount', 'bind', *opts])} {target}"
    if flags & linux.MS_BIND:
        return f"mount --{'r' if flags & linux.MS_REC else ''}bind {source} {target}" + (
            f" -o {','.join(opts)}" if opts else "")
    opts += [data] if data else []
    return f"mount -t {fstype}{' -o ' + ','.join(opts) if opts else ''} {source} {target}"


def capsh_line(dropped: list[str]) -> str:
    return "capsh --drop=" + ",".join("cap_" + n.lower() for n in dropped) if dropped else "capsh   # all kept"


def printer(stream: TextIO, prefix: str = "+ ") -> Callable[[str], None]:
    """An explain callback for a CLI: one `+ step` line per kernel step, as `sh -x` shows commands."""
    def show(line: str) -> None:
        stream.write(f"{prefix}{line}\n")
        stream.flush()

    return show
