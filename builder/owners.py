"""--chown (and WORKDIR's USER) names resolved through the image's own /etc/passwd and /etc/group.

The files are read in a read-only merged view of the image's layers (builder/mergedview.py), so the
kernel applies the layers as the build will see them (whiteouts, opaque directories, a passwd that a
later layer removed or replaced by a symlink), and every symlink resolves inside the image
(runtime.users.read_db: an image whose /etc is a symlink to /etc never reads the host's files).
Names are looked up by the one parser that `run`'s USER uses (runtime/users.py).

BuildKit's rules (llb.WithUser's parseUID, then its file op's readUser): "root" is id 0 and, like
any number, needs no file at all; a numeric user alone is uid and gid; a user name alone takes its
passwd gid; a group, by name or number, replaces the gid.
"""
from __future__ import annotations

from functools import lru_cache

from grammar.errors import PybuildError
from runtime import users


class OwnerError(PybuildError):
    """A --chown user or group the image does not know (or whose account files cannot be read)."""


def _read(root: str) -> bytes:
    return "\0".join(users.read_db(root, name) for name in ("passwd", "group")).encode("utf-8", "surrogateescape")


@lru_cache(maxsize=32)
def _image_text(store, diff_ids: tuple[str, ...]) -> str:
    """passwd NUL group of a layer stack: layers are immutable, so one read per stack and store
    (a mount in a forked child costs ~10-30 ms; a cached rebuild with several --chown pays it once)."""
    from .mergedview import read_in_view

    return read_in_view(store, diff_ids, _read).decode("utf-8", "replace")


def _image_dbs(store, image, what: str) -> tuple[list[list[str]], list[list[str]]]:
    """(passwd, group) entries of the image, as its merged root holds them."""
    from .mergedview import ChangeError

    try:
        text = _image_text(store, tuple(image.diff_ids))
    except ChangeError as err:
        raise OwnerError(f"{what}: cannot read the image's /etc/passwd or /etc/group: {err.message}",
                         hint="the image's /etc must be a directory (its links may point only inside it)") from None
    passwd, _, group = text.partition("\0")
    return users.parse_db(passwd), users.parse_db(group)


def _number(part: str) -> int | None:
    """BuildKit's parseUID: "root" or a decimal id; None for a name to look up."""
    return 0 if part == "root" else int(part) if users.is_id(part) else None


def resolve(store, image, spec: str, what: str | None = None) -> tuple[int, int]:
    """`user[:group]`, names or numbers; a user alone uses its primary group (or its uid as gid).
    `what` names the spec in errors (default `--chown=SPEC`; WORKDIR says `USER SPEC`)."""
    what = what or f"--chown={spec}"
    user, _, group = spec.partition(":")
    uid, want_gid = _number(user), _number(group) if group else None
    if uid is not None and (not group or want_gid is not None):
        return uid, uid if want_gid is None else want_gid
    passwd, groups = _image_dbs(store, image, what)
    if uid is not None:
        gid = uid
    else:
        entry = users.find_user(passwd, user)
        if entry is None:
            raise OwnerError(f"{what}: no user {user!r} in the image's /etc/passwd",
                             hint="use a numeric uid or create the user first")
        _login, uid, gid, _home = entry
    if group:
        found = want_gid if want_gid is not None else users.find_group(groups, group)
        if found is None:
            raise OwnerError(f"{what}: no group {group!r} in the image's /etc/group", hint="use a numeric gid")
        gid = found
    return uid, gid
