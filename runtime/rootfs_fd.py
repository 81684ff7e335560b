"""Paths inside a LIVE container root, resolved race-free: the ONE place pybuild does it.

A container's processes can rename, swap (renameat2 RENAME_EXCHANGE) or replace any directory of
its root while pybuild works in it. Resolving a path to a string first (secure_join) and opening
that string later lets a swap in between send the open through a symlink to the host's files
(CVE-2018-15664). So nothing here returns a path: every function returns an fd, and callers act
relative to fds (openat/mkdirat/fchownat with dir_fd=, reads and writes through the fd).

    resolve(root_fd, path)       openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): the kernel walks
                                 the path with root_fd as `/` (absolute links and `..` stop there)
                                 and refuses /proc magic links; where openat2 is missing (ENOSYS:
                                 kernel < 5.6, or a seccomp filter), the same walk fd by fd, each
                                 step openat(O_PATH | O_NOFOLLOW) and symlinks read and spliced in
                                 by us, never followed by the kernel.
    make_dirs(root_fd, path)     mkdir -p in the root, each directory made with mkdirat and opened
                                 O_NOFOLLOW relative to its parent's fd.
    parent_of(root_fd, path)     (fd of the parent directory, final name): what mkdirat, openat
                                 O_CREAT|O_EXCL|O_NOFOLLOW, unlinkat and symlinkat need; a final
                                 symlink is followed inside the root first (as `docker cp` does).
    reopen(fd, flags)            an O_PATH fd opened for real (read, write, list) through
                                 /proc/self/fd: the same inode, whatever happened to its name since.

Every fd is close-on-exec; the caller owns (and closes) what it gets.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat

from . import linux

MAX_LINKS = 40          # the kernel's own limit (ELOOP)
_O_PATH = os.O_PATH | os.O_CLOEXEC
_RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
_FALLBACK_ERRNOS = (errno.ENOSYS, errno.EPERM)  # EPERM: a seccomp filter that refuses what it does not know


def open_root(path: str) -> int:
    """An O_PATH fd of a root directory (e.g. /proc/PID/root: the magic link is followed once, here)."""
    return os.open(path, _O_PATH | os.O_DIRECTORY)


def resolve(root_fd: int, path: str, flags: int = os.O_PATH, *, follow: bool = True, walk: bool = False) -> int:
    """An fd of `path` inside the root (flags as open(2), without O_CREAT). FileNotFoundError when
    missing, OSError(ELOOP) for a magic link or too many links. walk=True forces the fd-by-fd walk
    (what runs where openat2 is missing; the tests use it)."""
    if flags & os.O_CREAT:
        raise ValueError("resolve() never creates: use parent_of() and openat with O_EXCL")
    if not walk:
        flags |= os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
        for _ in range(16):
            try:
                return linux.openat2(root_fd, path.lstrip("/") or ".", flags, 0, _RESOLVE)
            except OSError as err:
                if err.errno == errno.EAGAIN:  # a rename raced a `..` step: the kernel asks to retry
                    continue
                if err.errno not in _FALLBACK_ERRNOS:
                    raise
                break
    fd = _walk(root_fd, path, follow_last=follow)
    if flags & ~os.O_CLOEXEC in (os.O_PATH, os.O_PATH | os.O_NOFOLLOW, os.O_PATH | os.O_DIRECTORY):
        if flags & os.O_DIRECTORY and not stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        return fd
    try:
        return reopen(fd, flags)
    finally:
        os.close(fd)


def make_dirs(root_fd: int, path: str, mode: int = 0o755) -> int:
    """mkdir -p `path` inside the root; an O_PATH fd of the directory. Links on the way are followed
    inside the root (a dangling one makes its target, as runc's MkdirAll)."""
    try:
        return resolve(root_fd, path, os.O_PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        return _walk(root_fd, path, follow_last=True, mkdir_mode=mode)


def parent_of(root_fd: int, path: str, *, follow_last: bool = True, make_parents: bool = False) -> tuple[int, str]:
    """(O_PATH fd of the parent directory, final name) of `path` in the root, the final symlink (if
    any) followed inside the root when follow_last. The name may not exist; it is never "", "."
    or "..": a path ending in `..`, or the root itself, is a ValueError."""
    for _ in range(MAX_LINKS):
        parts = _components(path)
        if not parts or parts[-1] == "..":
            raise ValueError(f"{path!r} names a directory by `..` or is the root: it has no final name")
        head, name = "/".join(parts[:-1]), parts[-1]
        parent = make_dirs(root_fd, head) if make_parents else resolve(root_fd, head or ".", os.O_PATH | os.O_DIRECTORY)
        if not follow_last:
            return parent, name
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return parent, name
        if not stat.S_ISLNK(st.st_mode):
            return parent, name
        if linux.fstatfs_type(parent) == linux.PROC_SUPER_MAGIC:
            os.close(parent)
            raise OSError(errno.ELOOP, f"{path}: a /proc link is not followed", path)
        target = os.readlink(name, dir_fd=parent)
        os.close(parent)
        path = target if target.startswith("/") else posixpath.join("/", head, target)
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)


def reopen(fd: int, flags: int) -> int:
    """The file behind an O_PATH fd, opened with `flags` (no O_CREAT): the same inode, race-free."""
    return os.open(f"/proc/self/fd/{fd}", (flags & ~os.O_CREAT) | os.O_CLOEXEC)


def _components(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _walk(root_fd: int, path: str, *, follow_last: bool, mkdir_mode: int | None = None) -> int:
    """RESOLVE_IN_ROOT by hand: one openat(O_PATH | O_NOFOLLOW) per component, relative to the fd of
    the previous one. A symlink is read (readlinkat) and its target spliced into the rest of the
    path: an absolute one restarts from root_fd, `..` pops our own stack of fds (never the kernel's
    `..`, which a directory moved out of the root would escape through); links on /proc (magic)
    are refused. With mkdir_mode, missing directories are made (mkdirat) on the way."""
    stack = [os.dup(root_fd)]
    todo = _components(path)
    links = made = 0
    try:
        while todo:
            part = todo.pop(0)
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            last = not todo
            try:
                fd = os.open(part, _O_PATH | os.O_NOFOLLOW, dir_fd=stack[-1])
            except FileNotFoundError:
                if mkdir_mode is None or made > 1000:
                    raise
                made += 1
                try:
                    os.mkdir(part, mkdir_mode, dir_fd=stack[-1])
                except FileExistsError:
                    pass
                todo.insert(0, part)  # open what is there now (maybe a link someone put instead)
                continue
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                try:
                    if linux.fstatfs_type(stack[-1]) == linux.PROC_SUPER_MAGIC:
                        raise OSError(errno.ELOOP, f"{path}: a /proc link is not followed", path)
                    target = os.readlink("", dir_fd=fd)  # the link we hold, not whatever the name is now
                finally:
                    os.close(fd)
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo = _components(target) + todo
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(fd)
        return os.dup(stack[-1])
    finally:
        for fd in stack:
            os.close(fd)
