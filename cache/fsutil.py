"""Durable writes and path resolution that never leaves a root."""
from __future__ import annotations

import errno
import os
import shutil
import stat

from grammar.errors import PybuildError

MAX_SYMLINKS = 255


class PathEscape(PybuildError):
    """A path that resolves (through `..` or a symlink) outside the root it must stay in."""


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(directory: str, prefix: str = "") -> str:
    """A fresh name in `directory` that says which process made it (the sweep checks the pid)."""
    return os.path.join(directory, f"{prefix}{os.getpid()}-{os.urandom(6).hex()}")


def pid_of_temp(name: str) -> int | None:
    head = os.path.basename(name).rsplit("-", 1)[0].rsplit("-", 1)[-1]
    return int(head) if head.isdigit() else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: str, data: bytes, tmpdir: str | None = None, mode: int = 0o644) -> None:
    """temp file + fsync + rename + directory fsync: readers see the old or the new file, never half."""
    directory = os.path.dirname(path)
    tmp = temp_name(tmpdir or directory, ".tmp-" if tmpdir is None else "")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(directory)


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c and c != "."]


def secure_join(root: str, unsafe: str, *, escape: str = "clamp", follow_last: bool = True) -> str:
    """Resolve `unsafe` inside `root`, following symlinks as if `root` were `/`.

    escape="clamp" (as filepath-securejoin): `..` and absolute symlink targets stop at the root.
    escape="error": a `..` (in the path or a symlink's target) that would climb above the root raises
    PathEscape instead — what extraction wants, since a layer that tries it is hostile. The result may not exist yet.
    """
    root = os.path.abspath(root)
    todo = _components(unsafe)
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if not done:
                if escape == "error":
                    raise PathEscape(f"path {unsafe!r} leaves the root {root}")
                continue
            done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if not follow_last and not todo:
            done.append(part)
            break
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            done.append(part)
            continue
        except NotADirectoryError:
            raise PathEscape(f"path {unsafe!r}: {os.path.join(*done) if done else '/'} is not a directory") from None
        if not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise PathEscape(f"path {unsafe!r}: too many levels of symbolic links", hint=os.strerror(errno.ELOOP))
        target = os.readlink(candidate)
        if target.startswith("/"):
            done = []  # absolute targets mean the root's own /, never the host's
        todo = _components(target) + todo
    return os.path.join(root, *done)


def remove_path(path: str) -> None:
    """rm -rf one path, never following a symlink; a missing path is fine."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
