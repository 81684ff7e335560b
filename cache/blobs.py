"""Content-addressed blobs under blobs/sha256/: idempotent, verified, written atomically."""
from __future__ import annotations

import hashlib
import os
import shutil
from typing import BinaryIO, Callable, Iterator

from .digest import check_digest
from .errors import BlobNotFound, DigestMismatch, SizeMismatch
from .fsutil import fsync_dir, temp_name
from .image import Descriptor
from .leases import touch

CHUNK = 1 << 20


class BlobStore:
    def __init__(self, root: str, tmpdir: str, on_write: Callable[[], None] = lambda: None):
        self.dir = os.path.join(root, "blobs", "sha256")
        self.tmpdir = tmpdir
        self.on_write = on_write  # the store's lease: what this process writes is safe from gc

    def path(self, digest: str) -> str:
        return os.path.join(self.dir, check_digest(digest))

    def exists(self, digest: str) -> bool:
        return os.path.isfile(self.path(digest))

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def get(self, digest: str) -> bytes:
        """The whole blob, verified against its digest (for manifests and configs, which are small)."""
        with self.open(digest) as f:
            data = f.read()
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatch(digest, actual, f"blob {digest}")
        return data

    def verify(self, digest: str) -> str | None:
        """None when the blob hashes to its name, else a one-line reason."""
        h = hashlib.sha256()
        try:
            with self.open(digest) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except BlobNotFound:
            return "missing"
        actual = "sha256:" + h.hexdigest()
        return None if actual == digest else f"content hashes to {actual}"

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def digests(self) -> Iterator[str]:
        for name in sorted(os.listdir(self.dir)):
            if len(name) == 64:
                yield "sha256:" + name

    def put_stream(self, fileobj: BinaryIO, *, expected_digest: str | None = None,
                   expected_size: int | None = None, media_type: str = "application/octet-stream",
                   verify=None) -> Descriptor:
        """Copy a stream in, hashing as it goes; checked, then renamed into place. Idempotent: if
        the blob is already there (another process won the race) the copy is simply dropped.

        `verify` (e.g. diffids.DiffIdCheck) sees every chunk as it is written (update), may refuse
        the whole before it is renamed into place (finish), and is closed in any case."""
        self.on_write()
        if expected_digest is not None:
            check_digest(expected_digest)
            if expected_size is not None and self.exists(expected_digest) and touch(self.path(expected_digest)):
                return Descriptor(media_type, expected_digest, expected_size)
        tmp = temp_name(self.tmpdir, "blob-")
        h = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "xb") as out:
                while chunk := fileobj.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    if verify is not None:
                        verify.update(chunk)
                    size += len(chunk)
                    if expected_size is not None and size > expected_size:
                        raise SizeMismatch(expected_digest or "stream", expected_size, size)
                out.flush()
                os.fsync(out.fileno())
            digest = "sha256:" + h.hexdigest()
            if expected_size is not None and size != expected_size:
                raise SizeMismatch(expected_digest or digest, expected_size, size)
            if expected_digest is not None and digest != expected_digest:
                raise DigestMismatch(expected_digest, digest)
            if verify is not None:
                verify.finish()
            return self.adopt(tmp, digest, size, media_type)
        finally:
            if verify is not None:
                verify.close()
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_bytes(self, data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
        import io

        return self.put_stream(io.BytesIO(data), media_type=media_type)

    def adopt(self, tmp: str, digest: str, size: int, media_type: str) -> Descriptor:
        """Move an already hashed and fsynced temp file (in tmp/) into place under its digest."""
        final = self.path(digest)
        if os.path.exists(final) and touch(final):
            os.unlink(tmp)
        else:
            os.chmod(tmp, 0o644)
            os.rename(tmp, final)  # atomic: a racing twin just replaces identical bytes
            fsync_dir(self.dir)
        return Descriptor(media_type, digest, size)

    def copy_to(self, digest: str, dest: BinaryIO) -> None:
        with self.open(digest) as f:
            shutil.copyfileobj(f, dest, CHUNK)
