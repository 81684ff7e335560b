"""The blob store: verified, idempotent, atomic, with named errors."""
from __future__ import annotations

import hashlib
import io
import os

import pytest

from cache.errors import BlobNotFound, DigestMismatch, SizeMismatch, StoreError


def _d(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_put_get_exists_delete(store):
    desc = store.blobs.put_bytes(b"hello", "text/plain")
    assert (desc.digest, desc.size, desc.media_type) == (_d(b"hello"), 5, "text/plain")
    assert store.blobs.exists(desc.digest) and store.blobs.get(desc.digest) == b"hello"
    store.blobs.delete(desc.digest)
    assert not store.blobs.exists(desc.digest)
    with pytest.raises(BlobNotFound, match=desc.digest):
        store.blobs.get(desc.digest)
    with pytest.raises(BlobNotFound):
        store.blobs.delete(desc.digest)


def test_put_is_idempotent_and_leaves_no_temp(store):
    a = store.blobs.put_stream(io.BytesIO(b"x" * 3_000_000))
    b = store.blobs.put_stream(io.BytesIO(b"x" * 3_000_000), expected_digest=a.digest, expected_size=a.size)
    assert a.digest == b.digest and list(store.blobs.digests()) == [a.digest]
    assert os.listdir(store.tmp) == []


@pytest.mark.parametrize("data, digest, size, error", [
    (b"abc", _d(b"abd"), None, DigestMismatch),
    (b"abc", _d(b"abc"), 2, SizeMismatch),
    (b"abc", _d(b"abc"), 4, SizeMismatch),
    (b"abc", "sha256:../../etc/passwd", None, StoreError),
    (b"abc", "md5:abc", None, StoreError),
])
def test_put_rejects_wrong_content(store, data, digest, size, error):
    with pytest.raises(error):
        store.blobs.put_stream(io.BytesIO(data), expected_digest=digest, expected_size=size)
    assert list(store.blobs.digests()) == [] and os.listdir(store.tmp) == []


def test_verified_get_and_verify_catch_damage(store):
    desc = store.blobs.put_bytes(b"original")
    with open(store.blobs.path(desc.digest), "wb") as f:
        f.write(b"tampered")
    with pytest.raises(DigestMismatch):
        store.blobs.get(desc.digest)
    assert "hashes to" in store.blobs.verify(desc.digest)


@pytest.mark.parametrize("bad", ["sha256:" + "A" * 64, "sha256:abc", "../x", "sha256:" + "a" * 63 + "/"])
def test_paths_refuse_bad_digests(store, bad):
    with pytest.raises(StoreError):
        store.blobs.path(bad)
