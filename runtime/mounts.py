"""Mount namespaces and overlayfs for the callers of the sandbox (the builder's RUN, the runner).

The caller enters a private mount namespace first, so every mount it makes afterwards lives and
dies with that process (even under kill -9) and never shows in the host's mount table.
"""
from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from typing import Callable, Iterator

from grammar.errors import PybuildError

from . import linux


class OverlayUnsupported(PybuildError):
    """overlayfs cannot stack these directories (e.g. the store itself on overlayfs)."""


class TooManyLayers(PybuildError):
    """An image deeper than overlay stacks are allowed to be (Docker's overlay2 limit)."""


# Docker's overlay2 refuses a stack deeper than this ("max depth exceeded"); so does pybuild, with
# the same number, so that what builds here runs there.
MAX_LOWERDIRS = 128
# mount(2) copies at most one page of option data (the string and its NUL).
_MOUNT_DATA_MAX = os.sysconf("SC_PAGE_SIZE") - 1


def private_mount_namespace(explain: Callable[[str], None] | None = None) -> None:
    """unshare(CLONE_NEWNS) and make every mount private, for the calling process.

    Call it before any thread starts (unshare of the mount namespace needs a single-threaded
    process); mounts made after it vanish with the process.
    """
    if explain:
        explain("unshare --mount && mount --make-rprivate /")
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)


def mount_overlay(lowerdirs: list[str], upperdir: str, workdir: str, target: str,
                  explain: Callable[[str], None] | None = None, volatile: bool = False) -> None:
    """Mount an overlay of lowerdirs (top-most first) + upperdir at target.

    volatile: for an upper that is thrown away afterwards (`run --rm`, as podman does): overlayfs
    then skips syncing the upper's whole filesystem on unmount (~80 ms on ext4 here).

    Raises OverlayUnsupported, naming the directory and what to do, where overlayfs cannot work;
    callers then use `prepare_rootfs_copy`.
    """
    if not lowerdirs:
        raise OverlayUnsupported(f"overlay at {target}: no lowerdir", hint="pass at least one (an empty dir)")
    _check_depth(lowerdirs)
    for d in (upperdir, workdir):
        if linux.statfs_type(d) == linux.OVERLAYFS_MAGIC:
            raise OverlayUnsupported(
                f"overlay upperdir/workdir {d} is itself on overlayfs",
                hint="put the store (--root) on ext4/xfs/btrfs, or use the copy fallback")
    extra = f",upperdir={upperdir},workdir={workdir}" + (",volatile" if volatile else "")
    if explain:
        explain(f"mount -t overlay overlay -o lowerdir={':'.join(lowerdirs)}{extra} {target}")
    try:
        with _lowerdir_option(lowerdirs, len(extra)) as lower:
            linux.mount("overlay", target, "overlay", 0, lower + extra)
    except OSError as err:
        if err.errno in (errno.EINVAL, errno.ENODEV, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise OverlayUnsupported(
                f"overlay at {target} refused by the kernel ({os.strerror(err.errno)}): upperdir {upperdir}",
                hint="check `modprobe overlay` and that the store's filesystem supports xattrs "
                     "and d_type, or use the copy fallback") from None
        raise


def mount_readonly_view(lowerdirs: list[str], target: str) -> str:
    """A read-only merged view of an image's unpacked layers (top-most first), for reading a stage
    or an image without extracting it (COPY --from). One layer is its own view (returned as is);
    several are stacked as an overlay without upperdir, read-only. Returns the view's path."""
    if len(lowerdirs) == 1:
        return lowerdirs[0]
    _check_depth(lowerdirs)
    with _lowerdir_option(lowerdirs, 0) as lower:
        linux.mount("overlay", target, "overlay", linux.MS_RDONLY, lower)
    return target


def _check_depth(lowerdirs: list[str]) -> None:
    if len(lowerdirs) > MAX_LOWERDIRS:
        raise TooManyLayers(
            f"the image has {len(lowerdirs)} layers; at most {MAX_LOWERDIRS} can be stacked (as Docker's overlay2)",
            hint="use fewer RUN/COPY/ADD steps (join RUN commands with &&), or squash the image "
                 "(e.g. a multi-stage build: COPY --from=<stage> / / onto a fresh base)")


@contextmanager
def _lowerdir_option(lowerdirs: list[str], rest: int) -> Iterator[str]:
    """`lowerdir=a:b:...` for mount(2), whose whole option string must fit one page.

    Absolute store paths (~90 bytes each) overflow it from ~35 layers on. Docker's overlay2 mounts
    through short symlinks relative to its cwd; here each lowerdir is opened (O_PATH) and named by
    its /proc/self/fd/N link, ~18 bytes whatever its real path, so MAX_LOWERDIRS always fit. The
    kernel resolves each name to the same directory at mount time and holds it from then on (the
    fds are closed after): the same layers, in the same order. Short stacks keep their plain paths
    (readable in /proc/self/mountinfo)."""
    plain = "lowerdir=" + ":".join(lowerdirs)
    if len(plain) + rest <= _MOUNT_DATA_MAX and not any(":" in d or "," in d for d in lowerdirs):
        yield plain
        return
    fds: list[int] = []
    try:
        for d in lowerdirs:
            fds.append(os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        option = "lowerdir=" + ":".join(f"/proc/self/fd/{fd}" for fd in fds)
        if len(option) + rest > _MOUNT_DATA_MAX:
            raise OverlayUnsupported(
                f"overlay options are {len(option) + rest} bytes, more than mount(2) takes ({_MOUNT_DATA_MAX})",
                hint="use a store (--root) and scratch paths with shorter names")
        yield option
    finally:
        for fd in fds:
            os.close(fd)


def prepare_rootfs_copy(lowerdirs: list[str], upperdir: str) -> str:
    """The copy fallback for hosts without overlayfs: copy the layers bottom-up into upperdir.

    Slower and without a diff of its own (the caller must compare trees to find a layer's
    changes), but works on any filesystem. Overlay whiteouts (0/0 char devices) in a higher
    layer remove the path below. Returns upperdir, usable as the sandbox rootfs.
    """
    for lower in reversed(lowerdirs):  # bottom-most first
        for dirpath, dirnames, filenames in os.walk(lower):
            rel = os.path.relpath(dirpath, lower)
            dest_dir = os.path.normpath(os.path.join(upperdir, rel))
            for name in dirnames + filenames:
                src, dst = os.path.join(dirpath, name), os.path.join(dest_dir, name)
                st = os.lstat(src)
                if os.path.lexists(dst) and not (os.path.isdir(dst) and not os.path.islink(dst)
                                                  and os.path.isdir(src) and not os.path.islink(src)):
                    _remove(dst)
                if _is_whiteout(st):
                    continue
                if os.path.isdir(src) and not os.path.islink(src):
                    os.makedirs(dst, exist_ok=True)
                    shutil.copystat(src, dst, follow_symlinks=False)
                    os.lchown(dst, st.st_uid, st.st_gid)
                else:
                    _copy_entry(src, dst, st)
    return upperdir


def _is_whiteout(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def make_node(src: str, dst: str, st: os.stat_result) -> None:
    """`dst` as a new copy of the non-directory `src` (lstat `st`): a symlink stays a symlink, a
    file's bytes are copied, a device or fifo is made again. Owner, mode and times are the caller's."""
    import stat

    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
    else:
        os.mknod(dst, st.st_mode, st.st_rdev)


def _copy_entry(src: str, dst: str, st: os.stat_result) -> None:
    import stat

    make_node(src, dst, st)
    if stat.S_ISREG(st.st_mode):
        shutil.copystat(src, dst, follow_symlinks=False)
    os.lchown(dst, st.st_uid, st.st_gid)


def unmount(target: str, lazy: bool = True) -> None:
    """Unmount target (detached when lazy); a target that is not mounted is not an error."""
    try:
        linux.umount2(target, linux.MNT_DETACH if lazy else 0)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOENT):
            raise
