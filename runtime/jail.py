"""Inside the sandbox's mount namespace, before pivot_root: the container's filesystem view.

The rootfs bound onto itself, extra bind/tmpfs mounts, /proc with Docker's masks, a fresh
read-only /sys, /dev as a small tmpfs, and the generated /etc files. Every mount point is
resolved inside the rootfs by runtime.rootfs_fd and held as an fd: mount(2) is given
/proc/self/fd/N, never a path string that a process sharing a volume could redirect with a symlink
between the check and the mount (runc's CVE-2021-30465). Each mount(2) is reported to --explain
as the mount(8) command a person would type. Runs in the sandbox's forked child only (the fds it
opens are closed before exec).
"""
from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from cache.fsutil import secure_join
from grammar.errors import PybuildError

from . import devices, explain, linux, proc_masks, rootfs_fd

if TYPE_CHECKING:
    from .sandbox import Mount, SandboxSpec


class SandboxError(PybuildError):
    """The sandbox could not be set up (the command never ran)."""


class Reporter:
    """Explain lines and the set-up error, written to the parent's pipe."""

    def __init__(self, fd: int, explain: bool):
        self.fd = fd
        self.on = explain
        self.root = ""
        self.points: dict[str, tuple[str, int, str]] = {}  # fd path -> (container path, parent fd, name)

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int = 0,
              data: str | None = None, shown_source: str | None = None) -> None:
        """mount(2), explained with the path as the container will see it."""
        if self.on:
            self(explain.mount_line(shown_source or self._shown(source), self._shown(target), fstype, flags, data))
        linux.mount(source, target, fstype, flags, data)

    def _shown(self, path: str | None) -> str | None:
        for fd_path, (shown, _parent, _name) in self.points.items():
            if path and (path == fd_path or path.startswith(fd_path + "/")):
                return shown + path[len(fd_path):]
        if path and self.root and (path == self.root or path.startswith(self.root + "/")):
            return "/" + os.path.relpath(path, self.root).removeprefix(".")
        return path

    def __call__(self, line: str) -> None:
        if self.on:
            os.write(self.fd, f"E {line}\n".encode())

    def fail(self, err: BaseException) -> None:
        text = str(err).replace("\n", " ") or type(err).__name__
        try:
            os.write(self.fd, f"X {text}\n".encode())
        except OSError:
            pass


def inside(root: str, path: str, report: Reporter, make: str = "dir") -> str:
    """The mount point `path` of the rootfs, made if missing (a dir, or an empty file with
    make="file"), as /proc/self/fd/N for mount(2). Links on the way, the last one included, are
    followed inside the rootfs only, and the point is pinned by an fd: what the name means after
    this call does not matter. A mount placed on it is reached through on_top()."""
    root_fd = rootfs_fd.open_root(root)
    try:
        try:
            parent, name = rootfs_fd.parent_of(root_fd, path, make_parents=True)
        except ValueError:
            raise SandboxError(f"mount point {path}: a mount needs a path below /") from None
    finally:
        os.close(root_fd)
    try:
        if make == "dir":
            os.mkdir(name, 0o755, dir_fd=parent)
        else:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=parent))
    except FileExistsError:
        pass
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    if stat.S_ISLNK(os.fstat(fd).st_mode):  # a link put there since parent_of looked
        raise SandboxError(f"mount point {path} was replaced by a symlink while being set up")
    point = f"/proc/self/fd/{fd}"
    report.points[point] = ("/" + "/".join(p for p in path.split("/") if p), parent, name)
    return point


def on_top(point: str, report: Reporter) -> str:
    """What is mounted on a point inside() gave, as /proc/self/fd/N: the point's own fd names the
    directory under the mount (a remount there would hit the rootfs), so the name is opened again
    in the pinned parent; a mount point cannot be renamed or replaced (EBUSY), so it is our mount."""
    shown, parent, name = report.points[point]
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    top = f"/proc/self/fd/{fd}"
    report.points[top] = (shown, parent, name)
    return top


def extra_mount(root: str, m: Mount, report: Reporter) -> None:
    if m.type == "tmpfs":
        target = inside(root, m.target, report)
        report.mount("tmpfs", target, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, m.options or "mode=1777")
        return
    make = "dir" if os.path.isdir(m.source) else "file"
    target = inside(root, m.target, report, make)
    report.mount(m.source, target, None, linux.MS_BIND | linux.MS_REC)
    if m.readonly:
        report.mount(None, on_top(target, report), None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)


def mount_proc(root: str, privileged: bool, report: Reporter) -> None:
    target = inside(root, "/proc", report)
    report.mount("proc", target, "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    if privileged:
        return
    for path in proc_masks.MASKED:
        if path.startswith("/proc"):
            _mask(root, path, report)
    for path in proc_masks.READONLY:
        full = root + path
        if os.path.lexists(full):
            report.mount(full, full, None, linux.MS_BIND | linux.MS_REC)
            report.mount(None, full, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)


def _mask(root: str, path: str, report: Reporter) -> None:
    full = root + path  # paths of the fresh /proc or /sys: no image symlink is involved
    if not os.path.lexists(full):
        return
    if os.path.isdir(full):
        report.mount("tmpfs", full, "tmpfs", linux.MS_RDONLY)
    else:
        report.mount("/dev/null", full, None, linux.MS_BIND)


def mount_sys(root: str, spec: SandboxSpec, report: Reporter) -> None:
    target = inside(root, "/sys", report)
    flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC | (0 if spec.privileged else linux.MS_RDONLY)
    # A fresh sysfs, never a bind of the host's: a recursive bind would carry the host's
    # writable cgroup mounts along.
    report.mount("sysfs", target, "sysfs", flags)
    if not spec.privileged:
        for path in proc_masks.MASKED:
            if path.startswith("/sys"):
                _mask(root, path, report)


def mount_dev(root: str, spec: SandboxSpec, in_userns: bool, report: Reporter) -> None:
    dev = inside(root, "/dev", report)
    report.mount("tmpfs", dev, "tmpfs", linux.MS_NOSUID | linux.MS_STRICTATIME, devices.DEV_TMPFS)
    dev = on_top(dev, report)  # the fresh tmpfs, not the image's /dev under it
    for node in devices.NODES:
        path = os.path.join(dev, node.name)
        if in_userns:  # a user namespace may not mknod: bind the host's node, as rootless runc does
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            report.mount(f"/dev/{node.name}", path, None, linux.MS_BIND)
            continue
        report(f"mknod -m {node.mode:o} /dev/{node.name} c {node.major} {node.minor}")
        os.mknod(path, stat.S_IFCHR | node.mode, os.makedev(node.major, node.minor))
        os.chmod(path, node.mode)  # mknod's mode is filtered by the umask
    for name, link in devices.LINKS:
        os.symlink(link, os.path.join(dev, name))
    for sub, mode in (("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o755)):
        os.mkdir(os.path.join(dev, sub), mode)
    report.mount("devpts", os.path.join(dev, "pts"), "devpts", linux.MS_NOSUID | linux.MS_NOEXEC, devices.DEVPTS)
    report.mount("shm", os.path.join(dev, "shm"), "tmpfs",
                 linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, devices.SHM_TMPFS)
    report.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    if spec.tty and spec.stdin is not None and os.isatty(spec.stdin):
        console = os.path.join(dev, "console")
        os.close(os.open(console, os.O_WRONLY | os.O_CREAT, 0o600))
        report.mount(os.ttyname(spec.stdin), console, None, linux.MS_BIND)


def generated_stubs(root: str, paths: tuple[str, ...]) -> list[str]:
    """The mount points bind_generated would create for `paths` (the image lacks them), as host
    paths: the same checks and the same resolution as bind_generated and inside()."""
    etc = secure_join(root, "/etc")
    if not os.path.isdir(etc) or os.path.islink(etc):
        return []
    return [target for target in (secure_join(root, p) for p in paths) if not os.path.lexists(target)]


def bind_generated(root: str, path: str, content: bytes, report: Reporter, readonly: bool = False) -> None:
    """Bind a generated file over path: the container sees it, the layer diff never does
    (unless the image lacked the file: then an empty mount point is left in the upperdir, which a
    build removes after the command: see generated_stubs).

    The file is written in the sandbox's own /dev tmpfs, bound, then unlinked: the bind keeps the
    inode, and nothing of it remains visible in /dev.
    """
    etc = secure_join(root, "/etc")
    if not os.path.isdir(etc) or os.path.islink(etc):
        return
    target = inside(root, path, report, make="file")
    if not os.path.isfile(target):
        return
    scratch = os.path.join(root, "dev", "." + os.path.basename(path))
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)
    report.mount(scratch, target, None, linux.MS_BIND, shown_source=f"<generated {os.path.basename(path)}>")
    os.unlink(scratch)
    if readonly:  # the flags the source tmpfs has stay: in a user namespace they are locked
        target = on_top(target, report)
        kept = os.statvfs(target).f_flag
        flags = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY
        for st_flag, ms_flag in ((os.ST_NOSUID, linux.MS_NOSUID), (os.ST_NODEV, linux.MS_NODEV), (os.ST_NOEXEC, linux.MS_NOEXEC)):
            flags |= ms_flag if kept & st_flag else 0
        report.mount(None, target, None, flags)
