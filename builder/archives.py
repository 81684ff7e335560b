"""ADD of a local archive: recognised by its magic number (tar, gzip, bzip2, xz, zstd), opened
with Python's own decompressors (never a tool from the image) and extracted with cache.extract,
which resolves every entry inside the destination."""
from __future__ import annotations

import tarfile
from typing import BinaryIO

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


def kind(path: str) -> str | None:
    """The compression of a tar archive at `path`, "none" for a plain tar, None if no archive."""
    with open(path, "rb") as f:
        head = f.read(512)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none" if len(head) == 512 and head[257:262] == b"ustar" else None


def open_plain(path: str, compression: str) -> BinaryIO:
    if compression == "gzip":
        import gzip

        return gzip.open(path, "rb")
    if compression == "bzip2":
        import bz2

        return bz2.open(path, "rb")
    if compression == "xz":
        import lzma

        return lzma.open(path, "rb")
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def is_tar(path: str) -> bool:
    compression = kind(path)
    if compression is None:
        return False
    try:
        with open_plain(path, compression) as f:
            head = f.read(512)
        return len(head) == 512 and head[257:262] == b"ustar" or tarfile.TarInfo.frombuf(head, "utf-8", "strict") is not None
    except Exception:  # noqa: BLE001 - a file that only looks compressed is copied as it is
        return False


def extract(path: str, dest: str) -> None:
    from cache.extract import extract_tar

    with open_plain(path, kind(path) or "none") as f:
        extract_tar(f, dest, whiteouts="keep")
