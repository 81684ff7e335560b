"""sha256 digests and canonical JSON: the two things every blob and value is named by."""
from __future__ import annotations

import hashlib
import json
import re

_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """The hex part of a valid sha256 digest; anything else (path tricks included) is refused."""
    from .errors import StoreError

    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise StoreError(f"invalid digest {digest!r}", hint="digests are sha256:<64 lower-case hex>")
    return digest[7:]


def canonical_json(obj: object) -> bytes:
    """Sorted keys, no spaces: the same value always gives the same bytes (and digest)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
