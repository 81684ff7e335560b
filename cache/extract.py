"""Safe extraction of layer tars: every path resolved inside the destination, nothing trusted.

Our own filter rather than tarfile's `data` filter (which drops owners and special modes). An
archive that tries to leave the destination is refused with an error naming the entry, and what
this call created is removed again, so a bad archive leaves nothing behind.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tarfile
import zlib
from typing import BinaryIO

from grammar.errors import PybuildError

from .fsutil import PathEscape, remove_path, secure_join
from .layers import OPAQUE, OVERLAY_XATTR_PREFIX, WHITEOUT_PREFIX

DEFAULT_MAX_BYTES = 64 << 30  # against tar and gzip bombs; callers may lower it
MAX_MAJOR, MAX_MINOR = (1 << 12) - 1, (1 << 20) - 1  # Linux dev_t: 12-bit major, 20-bit minor
CHUNK = 1 << 20
STREAM_BUFSIZE = 16 << 10


class ExtractError(PybuildError):
    """A tar that is damaged, too large, or tries to write outside its destination."""


class HashingReader:
    """Hashes what is read through it (a layer's diff_id is checked while it is unpacked)."""

    def __init__(self, inner: BinaryIO):
        self.inner, self.hash, self.size = inner, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        b = self.inner.read(n)
        self.hash.update(b)
        self.size += len(b)
        return b

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def clean_name(name: str) -> str:
    """A member name as a path relative to the root; `..` that climbs out is refused."""
    if "\x00" in name:
        raise ExtractError(f"tar entry {name!r}: NUL in name")
    parts: list[str] = []
    for c in name.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if not parts:
                raise ExtractError(f"tar entry {name!r} climbs out of the destination with '..'")
            parts.pop()
        else:
            parts.append(c)
    return "/".join(parts)


class _Extractor:
    def __init__(self, dest: str, whiteouts: str, max_bytes: int, same_owner: bool):
        self.dest = os.path.abspath(dest)
        self.whiteouts = whiteouts
        self.max_bytes = max_bytes
        self.same_owner = same_owner
        self.total = 0
        self.created: list[str] = []     # undone on failure
        self.this_layer: set[str] = set()  # what an opaque marker must not remove
        self.dir_times: list[tuple[str, int]] = []
        # Resolved parent dirs. Only a new symlink or a replaced/removed entry can change how a
        # path resolves, and each of those clears this cache.
        self.parents: dict[str, str] = {}

    def _parent(self, rel: str, member: str) -> str:
        key = os.path.dirname(rel)
        if key in self.parents:
            return self.parents[key]
        try:
            parent = secure_join(self.dest, key, escape="error")
        except PathEscape as err:
            raise ExtractError(f"tar entry {member!r}: {err}") from None
        if not os.path.isdir(parent):
            if os.path.lexists(parent):
                raise ExtractError(f"tar entry {member!r}: parent {os.path.relpath(parent, self.dest)} is not a directory")
            self._makedirs(parent)
        self.parents[key] = parent
        return parent

    def _makedirs(self, path: str) -> None:
        missing = []
        while not os.path.lexists(path):
            missing.append(path)
            path = os.path.dirname(path)
        for p in reversed(missing):
            os.mkdir(p, 0o755)
            self.created.append(p)

    def _clear(self, target: str, new_is_dir: bool) -> None:
        """Type changes replace what is there; nothing is ever written through an old link."""
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            return
        self.parents.clear()
        if stat.S_ISDIR(st.st_mode):
            if not new_is_dir:
                shutil.rmtree(target)
        else:
            os.unlink(target)

    def member(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = clean_name(m.name)
        if not rel:
            if not m.isdir():
                raise ExtractError(f"tar entry {m.name!r}: the root entry must be a directory")
            return
        self.total += max(m.size, 0) + 512
        if self.total > self.max_bytes:
            raise ExtractError(f"archive expands beyond {self.max_bytes} bytes (at entry {m.name!r})",
                               hint="a tar or gzip bomb? raise the size cap if the image is real")
        base = os.path.basename(rel)
        if base.startswith(WHITEOUT_PREFIX) and self.whiteouts != "keep":
            return self.whiteout(rel, base, m.name, m.mtime)
        parent = self._parent(rel, m.name)
        target = os.path.join(parent, base)
        self.this_layer.add(target)
        if m.islnk():
            return self.hardlink(m, target)
        self._clear(target, m.isdir())
        if m.isreg():
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            self.created.append(target)
            try:
                self.copy_data(tar, m, fd)
            finally:
                os.close(fd)
        elif m.isdir():
            if not os.path.isdir(target):
                os.mkdir(target, 0o700)
                self.created.append(target)
        elif m.issym():
            self.parents.clear()
            os.symlink(m.linkname, target)
            self.created.append(target)
        elif m.ischr() or m.isblk():
            if not (0 <= m.devmajor <= MAX_MAJOR and 0 <= m.devminor <= MAX_MINOR):
                raise ExtractError(f"tar entry {m.name!r}: device number {m.devmajor}:{m.devminor} out of range")
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(target, kind | 0o600, os.makedev(m.devmajor, m.devminor))
            self.created.append(target)
        elif m.isfifo():
            os.mkfifo(target, 0o600)
            self.created.append(target)
        else:
            raise ExtractError(f"tar entry {m.name!r}: unsupported entry type {m.type!r}")
        self.metadata(m, target)

    @staticmethod
    def copy_data(tar: tarfile.TarFile, m: tarfile.TarInfo, fd: int) -> None:
        # In stream mode the data follows the header: reading the stream directly spares a file
        # object per member (tarfile skips to the next header by itself). Sparse files need tarfile.
        src = tar.fileobj if m.sparse is None else tar.extractfile(m)
        remaining = m.size
        while remaining > 0:
            chunk = src.read(min(CHUNK, remaining))
            if not chunk:
                raise ExtractError(f"tar entry {m.name!r}: archive ends inside the file")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            remaining -= len(chunk)

    def hardlink(self, m: tarfile.TarInfo, target: str) -> None:
        link_rel = clean_name(m.linkname)
        try:
            src = os.path.join(secure_join(self.dest, os.path.dirname(link_rel), escape="error"), os.path.basename(link_rel))
        except PathEscape as err:
            raise ExtractError(f"tar entry {m.name!r}: hardlink target {m.linkname!r}: {err}") from None
        if not link_rel or not os.path.lexists(src) or os.path.isdir(src) and not os.path.islink(src):
            raise ExtractError(f"tar entry {m.name!r}: hardlink to {m.linkname!r}, which is not a file in this archive")
        if os.path.abspath(src) == os.path.abspath(target):
            return
        self._clear(target, False)
        os.link(src, target, follow_symlinks=False)
        self.created.append(target)
        if not os.path.islink(target):
            # The link's own header owner, mode and mtime go to the shared inode, as containerd's
            # and BuildKit's extraction do: the last entry of a hardlink group decides them.
            self.metadata(m, target)

    def whiteout(self, rel: str, base: str, member: str, mtime: float = 0) -> None:
        parent = self._parent(rel, member)
        if base == OPAQUE:
            if self.whiteouts == "overlay":
                os.setxattr(parent, "trusted.overlay.opaque", b"y")
            else:  # apply: the lower layers' content of this directory goes away
                self.parents.clear()
                for name in os.listdir(parent):
                    child = os.path.join(parent, name)
                    if child not in self.this_layer:
                        remove_path(child)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk and the like): meaningless here
        name = base[len(WHITEOUT_PREFIX):]
        if name in ("", ".", ".."):
            raise ExtractError(f"tar entry {member!r}: invalid whiteout (it names {name or 'nothing'!r})")
        target = os.path.join(parent, name)
        self.parents.clear()
        remove_path(target)
        if self.whiteouts == "overlay":
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            # the entry's own time, so packing the unpacked layer again gives the same diff_id
            os.utime(target, ns=(int(mtime * 1e9),) * 2, follow_symlinks=False)
            self.created.append(target)

    def metadata(self, m: tarfile.TarInfo, target: str) -> None:
        if self.same_owner:
            os.chown(target, m.uid, m.gid, follow_symlinks=False)
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                name = key[len("SCHILY.xattr."):]
                if name.startswith(OVERLAY_XATTR_PREFIX):
                    continue  # a layer must not forge overlay whiteouts or redirects
                try:
                    os.setxattr(target, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
                except OSError as err:
                    if err.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise
        if m.issym():
            os.utime(target, ns=(int(m.mtime * 1e9),) * 2, follow_symlinks=False)
            return
        os.chmod(target, m.mode & 0o7777)  # after chown, which clears setuid bits
        if m.isdir():
            self.dir_times.append((target, int(m.mtime * 1e9)))
        else:
            os.utime(target, ns=(int(m.mtime * 1e9),) * 2)

    def finish(self) -> None:
        for path, ns in reversed(self.dir_times):  # children changed the dirs' mtimes
            os.utime(path, ns=(ns, ns), follow_symlinks=False)

    def undo(self) -> None:
        for path in reversed(self.created):
            remove_path(path)


def extract_tar(fileobj: BinaryIO, dest: str, *, whiteouts: str = "overlay", max_bytes: int = DEFAULT_MAX_BYTES,
                same_owner: bool | None = None) -> int:
    """Extract an uncompressed tar stream into `dest` (which must exist). Returns bytes of entries.

    whiteouts: "overlay" (an overlay lowerdir: char 0/0 and the opaque xattr), "apply" (flatten onto
    what is already in dest: delete what they name), "keep" (plain files, as in the tar).
    """
    if whiteouts not in ("overlay", "apply", "keep"):
        raise ValueError(f"whiteouts={whiteouts!r}")
    if os.path.islink(dest) or not os.path.isdir(dest):
        raise ExtractError(f"extraction destination {dest} is not a directory")
    ex = _Extractor(dest, whiteouts, max_bytes, os.geteuid() == 0 if same_owner is None else same_owner)
    try:
        # tarfile re-slices its stream buffer on every read: a modest buffer keeps that copy cheap.
        with tarfile.open(fileobj=fileobj, mode="r|", bufsize=STREAM_BUFSIZE) as tar:
            while (m := tar.next()) is not None:
                ex.member(tar, m)
                tar.members.clear()  # stream mode keeps every TarInfo: a million-entry layer held them all
        ex.finish()
    except ExtractError:
        ex.undo()
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError, UnicodeError) as err:
        ex.undo()
        raise ExtractError(f"damaged or truncated archive: {err}", hint="fetch or save it again") from None
    return ex.total




def unpack_layer_blob(store, desc, diff_id: str, dest: str) -> None:
    """Unpack a stored layer blob into a new directory `dest`, checking its diff_id on the way."""
    from .compression import decompress_reader
    from .errors import DigestMismatch
    from .mediatypes import layer_compression

    os.mkdir(dest, 0o755)
    with store.blobs.open(desc.digest) as f:
        try:
            plain = HashingReader(decompress_reader(f, layer_compression(desc.media_type)))
            extract_tar(plain, dest, whiteouts="overlay")
            plain.drain()
        except (zlib.error, OSError, EOFError) as err:
            raise ExtractError(f"layer {desc.digest}: cannot decompress: {err}") from None
    if plain.digest != diff_id:
        raise DigestMismatch(diff_id, plain.digest, f"layer {desc.digest} (diff_id)")
