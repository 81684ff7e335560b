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


class DiffIdMismatch(DigestMismatch):
    """A layer blob that does not uncompress to the diff_id its image's config gives it: refused,
    before that diff_id is recorded (a hostile config must not repoint a layer other images use)."""

    def __init__(self, where: str, layer: str, expected: str, actual: str | None, why: str | None = None):
        holds = f"holds diff_id {actual}" if actual else f"holds no diff_id ({why or 'unreadable'})"
        StoreError.__init__(self, f"{where}: layer {layer} {holds}, but the image config says {expected}",
                            hint="the image is broken or was tampered with; nothing was recorded under that diff_id")
        self.expected, self.actual, self.layer = expected, actual, layer
