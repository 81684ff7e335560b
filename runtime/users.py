"""USER resolution from the rootfs' own /etc/passwd and /etc/group, never the host's NSS.

`name`, `uid`, `name:group`, `uid:gid` as Docker accepts them. A name missing from the rootfs is an
error; a numeric uid missing from it is allowed (gid 0, as Docker does, HOME "/").
"""
from __future__ import annotations

import os

from cache.fsutil import secure_join  # at import: callers may resolve after entering a container
from grammar.errors import PybuildError


class UnknownUser(PybuildError):
    """USER names a user or group that the image's /etc/passwd or /etc/group lacks."""


def _read_db(rootfs: str, name: str) -> list[list[str]]:
    # Read through the rootfs with O_NOFOLLOW on the last part: an image's /etc/passwd symlink
    # to a host path must not make us read the host's file.
    path = secure_join(rootfs, f"/etc/{name}")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def resolve_user(rootfs: str, user: str) -> tuple[int, int, tuple[int, ...], str]:
    """-> (uid, gid, supplementary groups, home) of `user` in the rootfs ("" is root)."""
    name, _, group = (user or "0").partition(":")
    passwd = _read_db(rootfs, "passwd")
    groups = _read_db(rootfs, "group")
    entry = next((p for p in passwd if len(p) >= 6 and (p[0] == name or (name.isdigit() and p[2] == name))), None)
    if entry is None and not name.isdigit():
        raise UnknownUser(f"USER {user}: no user {name!r} in the image's /etc/passwd",
                          hint="create it in an earlier RUN (useradd) or use a numeric uid")
    uid = int(entry[2]) if entry else int(name)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry and entry[5] else "/"
    login = entry[0] if entry else None
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((g for g in groups if len(g) >= 3 and g[0] == group), None)
            if g is None:
                raise UnknownUser(f"USER {user}: no group {group!r} in the image's /etc/group",
                                  hint="create it in an earlier RUN (groupadd) or use a numeric gid")
            gid = int(g[2])
    extra = set()
    if login is not None and not group:
        extra = {int(g[2]) for g in groups if len(g) >= 4 and g[2].isdigit() and login in g[3].split(",")}
    return uid, gid, tuple(sorted(extra | {gid})), home
