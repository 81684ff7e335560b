"""The store's named errors: each one line that names the blob, reference or entry and what to do."""
from __future__ import annotations

from grammar.errors import PybuildError, UsageError


class StoreError(PybuildError):
    """Something about the store on disk is wrong."""


class InvalidReference(UsageError):
    """An image reference that Docker's rules reject."""


class BlobNotFound(StoreError):
    def __init__(self, digest: str):
        super().__init__(f"blob {digest} is not in the store", hint="pull or load the image again")
        self.digest = digest


class DigestMismatch(StoreError):
    def __init__(self, expected: str, actual: str, what: str = "blob"):
        super().__init__(f"{what}: expected {expected} but the content hashes to {actual}",
                         hint="the data is damaged or was tampered with; fetch it again")
        self.expected, self.actual = expected, actual


class SizeMismatch(StoreError):
    def __init__(self, digest: str, expected: int, actual: int):
        super().__init__(f"blob {digest}: expected {expected} bytes, got {actual}",
                         hint="the transfer was cut short or the descriptor is wrong")


class ImageNotFound(StoreError):
    def __init__(self, ref: str):
        super().__init__(f"image {ref!r} is not in the store", hint="see `pybuild images`, or pull it")
        self.ref = ref


class MediaTypeError(StoreError):
    """A manifest, index or config whose media type does not fit where it is used."""


class ImageInUse(StoreError):
    """rmi of an image a container still uses (without -f)."""
