"""export and cp: a container's files, reached through its PID 1's root while it runs, or through
the overlay mounted in a short-lived child's private mount namespace when it does not.

A running container can swap any of its directories for a symlink at any moment (renameat2
RENAME_EXCHANGE), so no container path is ever turned into a host path string: the root is held
as an fd, every path is resolved inside it by runtime.rootfs_fd (openat2 RESOLVE_IN_ROOT, or an fd
walk), and the copy goes entry by entry through fds: each entry opened O_PATH|O_NOFOLLOW relative
to its parent's fd, its type taken from that pinned inode (a device is recreated, never read), then
reopened to read, list or write. The host side of a copy is walked the same way, so a link the
container planted by an earlier copy cannot redirect a later one."""
from __future__ import annotations

import errno
import os
import posixpath
import select
import stat
import tarfile
from typing import Callable

from grammar.errors import PybuildError
from runtime import rootfs_fd

from .records import Container, Records

_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class CopyError(PybuildError):
    """A cp/export that cannot be done (missing path, failed mount)."""


def _live_root(pid: int) -> int | None:
    """An fd of PID 1's root, or None when it is gone. A pidfd taken first proves the root we
    opened is that process's and not that of a later one given the same pid."""
    try:
        pidfd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return None
    try:
        try:
            root = rootfs_fd.open_root(f"/proc/{pid}/root")
        except OSError:
            return None
        if select.select([pidfd], [], [], 0)[0]:  # it exited meanwhile
            os.close(root)
            return None
        return root
    finally:
        os.close(pidfd)


def _in_rootfs(records: Records, c: Container, action: Callable[[int], None]) -> None:
    """Run action(root_fd) with an fd of the container's merged tree; raise CopyError on failure."""
    if c.state.status in ("running", "paused") and c.state.pid:
        root = _live_root(c.state.pid)
        if root is not None:
            try:
                _guarded(c, action, root)
            finally:
                os.close(root)
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
            _guarded(c, action, rootfs_fd.open_root(target))
            os._exit(0)
        except BaseException as err:  # noqa: BLE001 - reported through the pipe
            os.write(w, str(err).encode())
            os._exit(1)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode()
    os.waitpid(pid, 0)
    if msg:
        raise CopyError(msg if msg.startswith("container ") else f"container {c.name}: {msg}")


def _guarded(c: Container, action: Callable[[int], None], root: int) -> None:
    try:
        action(root)
    except (OSError, ValueError) as err:
        text = f"{err.filename}: {err.strerror}" if isinstance(err, OSError) and err.filename else str(err)
        raise CopyError(f"container {c.name}: {text}") from None


# --- export -------------------------------------------------------------------------------------

def export_rootfs(records: Records, c: Container, output: str) -> None:
    output = os.path.abspath(output)

    def write(root: int) -> None:
        top = rootfs_fd.reopen(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as tar:
                _tar_dir(tar, top, "", {}, skip=("proc", "sys", "dev"))
                for name in ("proc", "sys", "dev"):
                    info = tarfile.TarInfo(name)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
        finally:
            os.close(top)

    _in_rootfs(records, c, write)


def _tar_dir(tar: tarfile.TarFile, dfd: int, prefix: str, links: dict, skip: tuple[str, ...] = ()) -> None:
    """Add the entries of the directory open as dfd, each through an O_PATH fd of its own."""
    for name in sorted(os.listdir(dfd)):
        if name in skip:
            continue
        try:
            fd = os.open(name, _PATH, dir_fd=dfd)
        except FileNotFoundError:  # gone meanwhile
            continue
        try:
            _tar_entry(tar, fd, prefix + name, links)
        finally:
            os.close(fd)


def _tar_entry(tar: tarfile.TarFile, fd: int, arc: str, links: dict) -> None:
    st = os.fstat(fd)  # of the inode we hold: what the name points to now does not matter
    info = tarfile.TarInfo(arc)
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        sub = rootfs_fd.reopen(fd, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _tar_dir(tar, sub, arc + "/", links)
        finally:
            os.close(sub)
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
            tar.addfile(info)
            return
        links[key] = arc
        info.size = st.st_size
        with os.fdopen(rootfs_fd.reopen(fd, os.O_RDONLY), "rb") as f:
            tar.addfile(info, f)
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink("", dir_fd=fd)
        tar.addfile(info)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        info.type = (tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else
                     tarfile.BLKTYPE if stat.S_ISBLK(st.st_mode) else tarfile.FIFOTYPE)
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(info)
    # sockets are left out, as tar does


# --- cp -----------------------------------------------------------------------------------------

def copy_from(records: Records, c: Container, path: str, dest: str) -> None:
    dest = os.path.abspath(dest)
    name = posixpath.basename(posixpath.normpath("/" + path))

    def copy(root: int) -> None:
        try:
            src = rootfs_fd.resolve(root, path)  # a final link is followed, inside the root
        except (FileNotFoundError, NotADirectoryError):
            raise CopyError(f"no such file in container {c.name}: {path}") from None
        try:
            if os.path.isdir(dest) and name:
                ddir, dname = os.open(dest, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), name
            else:
                ddir, dname = os.open(os.path.dirname(dest), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), os.path.basename(dest)
            try:
                _copy_node(src, ddir, dname)
            finally:
                os.close(ddir)
        finally:
            os.close(src)

    _in_rootfs(records, c, copy)


def copy_to(records: Records, c: Container, src: str, path: str) -> None:
    src = os.path.abspath(src)
    try:
        sfd = os.open(src, _PATH)
    except FileNotFoundError:
        raise CopyError(f"no such file on the host: {src}") from None

    def copy(root: int) -> None:
        try:
            ddir, dname = rootfs_fd.resolve(root, path, os.O_PATH | os.O_DIRECTORY), os.path.basename(src)
        except (FileNotFoundError, NotADirectoryError):
            try:
                ddir, dname = rootfs_fd.parent_of(root, path, make_parents=stat.S_ISDIR(os.fstat(sfd).st_mode))
            except (FileNotFoundError, NotADirectoryError):
                raise CopyError(f"container {c.name}: the directory of {path} does not exist",
                                hint="create it first (pybuild exec CTR mkdir -p DIR)") from None
        try:
            _copy_node(sfd, ddir, dname)
        finally:
            os.close(ddir)

    try:
        _in_rootfs(records, c, copy)
    finally:
        os.close(sfd)


def _copy_node(src: int, ddir: int, dname: str) -> None:
    """Copy the entry held by the O_PATH fd `src` to dname in the directory ddir (a tree for a
    directory; links as links; device nodes and fifos recreated, never opened). Nothing is followed
    on either side: a link where a directory is wanted is an error, a non-directory is replaced."""
    st = os.fstat(src)
    if stat.S_ISDIR(st.st_mode):
        try:
            os.mkdir(dname, 0o700, dir_fd=ddir)
        except FileExistsError:
            pass
        try:
            out = os.open(dname, _DIR, dir_fd=ddir)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                raise CopyError(f"cannot copy the directory over {dname!r}: it is not a directory") from None
            raise
        try:
            listing = rootfs_fd.reopen(src, os.O_RDONLY | os.O_DIRECTORY)
            try:
                for name in sorted(os.listdir(listing)):
                    try:
                        child = os.open(name, _PATH, dir_fd=listing)
                    except FileNotFoundError:
                        continue
                    try:
                        _copy_node(child, out, name)
                    finally:
                        os.close(child)
            finally:
                os.close(listing)
            os.fchmod(out, stat.S_IMODE(st.st_mode))
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(out)
        return
    _clear(ddir, dname)
    if stat.S_ISREG(st.st_mode):
        fin = rootfs_fd.reopen(src, os.O_RDONLY)
        try:
            out = os.open(dname, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=ddir)
            try:
                _copy_bytes(fin, out)
                os.fchmod(out, stat.S_IMODE(st.st_mode))
                os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(out)
        finally:
            os.close(fin)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink("", dir_fd=src), dname, dir_fd=ddir)
        os.utime(dname, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=ddir, follow_symlinks=False)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        os.mknod(dname, st.st_mode, st.st_rdev, dir_fd=ddir)
        node = os.open(dname, _PATH, dir_fd=ddir)
        try:
            os.chmod(f"/proc/self/fd/{node}", stat.S_IMODE(st.st_mode))  # mknod's mode had the umask
        finally:
            os.close(node)
    # sockets are not copied, as docker cp


def _clear(ddir: int, dname: str) -> None:
    """Make room for a non-directory: unlink what is there, refuse to replace a directory."""
    try:
        st = os.stat(dname, dir_fd=ddir, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise CopyError(f"cannot overwrite the directory {dname!r} with a non-directory")
    os.unlink(dname, dir_fd=ddir)


def _copy_bytes(fin: int, fout: int) -> None:
    while True:
        try:
            n = os.sendfile(fout, fin, None, 1 << 24)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOSYS):
                raise
            break
        if n == 0:
            return
    while chunk := os.read(fin, 1 << 20):
        os.write(fout, chunk)
