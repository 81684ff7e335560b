"""export and cp: a container's files, reached through its PID 1's root while it runs, or through
the overlay mounted in a short-lived child's private mount namespace when it does not. Every
container path is resolved inside that root (secure_join), never against the host."""
from __future__ import annotations

import os
import shutil
import tarfile
from typing import Callable

from grammar.errors import PybuildError

from .records import Container, Records


class CopyError(PybuildError):
    """A cp/export that cannot be done (missing path, failed mount)."""


def _in_rootfs(records: Records, c: Container, action: Callable[[str], None]) -> None:
    """Run action(root) with root the container's merged tree; raise CopyError on failure."""
    if c.state.status in ("running", "paused") and c.state.pid and os.path.exists(f"/proc/{c.state.pid}/root"):
        action(f"/proc/{c.state.pid}/root")
        return
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            from cache.store import Store
            from runtime.mounts import mount_overlay, private_mount_namespace

            store = Store(os.path.dirname(records.dir))
            lowers = store.layer_dirs(list(c.config.diff_ids)) or [records.path(c.id, "empty")]
            os.makedirs(lowers[-1], exist_ok=True)
            private_mount_namespace()
            target = records.path(c.id, "rootfs")
            mount_overlay(lowers, records.path(c.id, "upper"), records.path(c.id, "work"), target)
            action(target)
            os._exit(0)
        except BaseException as err:  # noqa: BLE001 - reported through the pipe
            os.write(w, str(err).encode())
            os._exit(1)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode()
    os.waitpid(pid, 0)
    if msg:
        raise CopyError(f"container {c.name}: {msg}")


def export_rootfs(records: Records, c: Container, output: str) -> None:
    output = os.path.abspath(output)

    def write(root: str) -> None:
        with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(os.listdir(root)):
                if name not in ("proc", "sys", "dev"):
                    tar.add(os.path.join(root, name), arcname=name)  # symlinks stay links
            for name in ("proc", "sys", "dev"):
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)

    _in_rootfs(records, c, write)


def copy_from(records: Records, c: Container, path: str, dest: str) -> None:
    from cache.fsutil import secure_join

    dest = os.path.abspath(dest)

    def copy(root: str) -> None:
        src = secure_join(root, path)
        if not os.path.lexists(src):
            raise CopyError(f"no such file in container {c.name}: {path}")
        target = os.path.join(dest, os.path.basename(src)) if os.path.isdir(dest) else dest
        if os.path.isdir(src) and not os.path.islink(src):
            shutil.copytree(src, target, symlinks=True)
        else:
            shutil.copy2(src, target, follow_symlinks=False)

    _in_rootfs(records, c, copy)


def copy_to(records: Records, c: Container, src: str, path: str) -> None:
    from cache.fsutil import secure_join

    src = os.path.abspath(src)
    if not os.path.lexists(src):
        raise CopyError(f"no such file on the host: {src}")

    def copy(root: str) -> None:
        target = secure_join(root, path)
        if os.path.isdir(target):
            target = secure_join(root, os.path.join(path, os.path.basename(src)))
        if os.path.isdir(src) and not os.path.islink(src):
            shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(src, target, follow_symlinks=False)

    _in_rootfs(records, c, copy)
