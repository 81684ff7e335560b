"""What diff_id a layer blob holds: the sha256 of its uncompressed tar, computed by the very reader
that unpacks it (compression.decompress_reader), so what is verified here is what `run` gets.

A diff_id is recorded in the store (diffids/) only once its blob is known to hold it: computed
while the blob is written (PlainDigest, fed the compressed bytes on their way to disk) or, for a
blob already in the store, by reading it once (blob_diff_id). A config that claims a diff_id over
other content is refused (DiffIdMismatch) and never repoints the diff_id for other images.
"""
from __future__ import annotations

import hashlib
import os
import threading

from .errors import DiffIdMismatch
from .image import Descriptor
from .mediatypes import layer_compression

CHUNK = 1 << 20
MAX_PLAIN = 64 << 30  # extract.DEFAULT_MAX_BYTES: a bomb stops here, as unpacking it would


class _Unreadable(Exception):
    pass


def _hash_plain(raw, compression: str) -> str:
    """sha256 of what decompress_reader gives for `raw` (a binary reader of the blob)."""
    from .compression import decompress_reader

    h, total = hashlib.sha256(), 0
    try:
        plain = decompress_reader(raw, compression)
        try:
            while chunk := plain.read(CHUNK):
                total += len(chunk)
                if total > MAX_PLAIN:
                    raise _Unreadable(f"it uncompresses to more than {MAX_PLAIN} bytes")
                h.update(chunk)
        finally:
            plain.close()  # igzip's reader thread ends here
    except _Unreadable:
        raise
    except Exception as err:  # zlib.error, zstd errors, EOFError, OSError: all mean "not this layer"
        raise _Unreadable(f"it does not decompress as {compression}: {err or type(err).__name__}") from None
    return "sha256:" + h.hexdigest()


class PlainDigest:
    """Fed a layer blob's (compressed) bytes as they are written, hashes the uncompressed stream in a
    thread, through a pipe: one pass over the data, bounded memory, and the same decoder as unpack.

    update(chunk) for each piece; finish() -> the plain digest, or raises DiffIdMismatch via
    check(); close() (idempotent) ends the thread when the write is abandoned."""

    def __init__(self, media_type: str):
        self.compression = layer_compression(media_type)
        self.digest: str | None = None
        self.error: str | None = None
        r, w = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, CHUNK)  # fewer wake-ups; the default 64 KiB works too
        except (OSError, AttributeError):
            pass
        self._w = open(w, "wb", buffering=0)
        self._thread = threading.Thread(target=self._run, args=(r,), name="diff_id", daemon=True)
        self._thread.start()

    def _run(self, r: int) -> None:
        raw = open(r, "rb", buffering=CHUNK, closefd=False)
        try:
            self.digest = _hash_plain(raw, self.compression)
        except _Unreadable as err:
            self.error = str(err)
        finally:
            # whatever the decoder left (or all of it, after an error) is drained, so the writer
            # never blocks on a reader that stopped
            try:
                while os.read(r, CHUNK):
                    pass
            finally:
                os.close(r)

    def update(self, chunk: bytes) -> None:
        try:
            self._w.write(chunk)
        except BrokenPipeError:
            pass  # cannot happen while _run drains; finish() reports what the reader found

    def close(self) -> None:
        if not self._w.closed:
            self._w.close()
        self._thread.join()

    def finish(self) -> str | None:
        """The plain digest (None when the blob does not decompress: see .error)."""
        self.close()
        return self.digest


class DiffIdCheck:
    """A PlainDigest that must come to `diff_id`: BlobStore.put_stream's `verify`, and the puller's."""

    def __init__(self, diff_id: str, desc: Descriptor, where: str):
        self.diff_id, self.desc, self.where = diff_id, desc, where
        self._plain = PlainDigest(desc.media_type)

    def update(self, chunk: bytes) -> None:
        self._plain.update(chunk)

    def close(self) -> None:
        self._plain.close()

    def finish(self) -> None:
        actual = self._plain.finish()
        if actual != self.diff_id:
            raise DiffIdMismatch(self.where, self.desc.digest, self.diff_id, actual, self._plain.error)


def blob_diff_id(store, desc: Descriptor) -> tuple[str | None, str | None]:
    """(diff_id, None) of a stored layer blob, or (None, why it has none). Reads the blob once."""
    with store.blobs.open(desc.digest) as f:
        try:
            return _hash_plain(f, layer_compression(desc.media_type)), None
        except _Unreadable as err:
            return None, str(err)


def verify_stored(store, diff_id: str, desc: Descriptor, where: str | None = None) -> None:
    """Raise DiffIdMismatch unless the stored blob `desc` uncompresses to `diff_id`."""
    actual, why = blob_diff_id(store, desc)
    if actual != diff_id:
        raise DiffIdMismatch(where or "image", desc.digest, diff_id, actual, why)
