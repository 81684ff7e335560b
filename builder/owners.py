"""--chown names resolved through the image's own /etc/passwd and /etc/group (never the host's)."""
from __future__ import annotations

import os

from grammar.errors import PybuildError


class OwnerError(PybuildError):
    """A --chown user or group the image does not know."""


def _image_file(store, image, path: str) -> str:
    """The text of a file as the image's top-most layer that has it holds it ('' if none does)."""
    for layer in store.layer_dirs(image.diff_ids):
        full = os.path.join(layer, path)
        if os.path.isfile(full) and not os.path.islink(full):
            with open(full, encoding="utf-8", errors="replace") as f:
                return f.read()
    return ""


def _lookup(text: str, name: str, field: int) -> int | None:
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) > field and parts[0] == name:
            return int(parts[field])
    return None


def resolve(store, image, spec: str) -> tuple[int, int]:
    """`user[:group]`, names or numbers; a user alone uses its primary group (or its uid as gid)."""
    user, _, group = spec.partition(":")
    passwd = None
    if user.isdigit():
        uid = int(user)
        gid = uid
    else:
        passwd = _image_file(store, image, "etc/passwd")
        uid = _lookup(passwd, user, 2)
        if uid is None:
            raise OwnerError(f"--chown={spec}: no user {user!r} in the image's /etc/passwd", hint="use a numeric uid or create the user first")
        gid = _lookup(passwd, user, 3)
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            gid = _lookup(_image_file(store, image, "etc/group"), group, 2)
            if gid is None:
                raise OwnerError(f"--chown={spec}: no group {group!r} in the image's /etc/group", hint="use a numeric gid")
    return uid, gid
