"""User and group names -> ids from a rootfs' own /etc/passwd and /etc/group, never the host's NSS.

The one parser of these files: `run`'s USER and `exec -u` (resolve_user, Docker's rules) and the
build's `--chown` and WORKDIR owner (builder/owners.py, BuildKit's rules) all look names up here.

`name`, `uid`, `name:group`, `uid:gid` as Docker accepts them. A name missing from the rootfs is an
error; a numeric uid missing from it is allowed (gid 0, as Docker does, HOME "/").
"""
from __future__ import annotations

import os
import stat

from cache.fsutil import secure_join  # at import: callers may resolve after entering a container
from grammar.errors import PybuildError

MAX_DB_BYTES = 16 << 20  # a passwd or group file larger than this is not an account database


class UnknownUser(PybuildError):
    """USER names a user or group that the image's /etc/passwd or /etc/group lacks."""


def read_db(rootfs: str, name: str) -> str:
    """The text of /etc/<name> of the rootfs ('' when it has none). Symlinks are resolved inside the
    rootfs (an absolute target is the rootfs' own path, never the host's); only a regular file is
    read (a FIFO would block, a device could be endless)."""
    path = secure_join(rootfs, f"/etc/{name}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return ""
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        data = f.read(MAX_DB_BYTES + 1)
    if len(data) > MAX_DB_BYTES:
        raise UnknownUser(f"/etc/{name} of the image is larger than {MAX_DB_BYTES >> 20} MiB",
                          hint="an account database is a few kilobytes: check the image")
    return data.decode("utf-8", "replace")


def parse_db(text: str) -> list[list[str]]:
    """passwd/group lines -> their fields (blank lines and # comments skipped)."""
    return [line.split(":") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _id(field: str) -> int | None:
    return int(field) if field.isascii() and field.isdigit() else None


def find_user(passwd: list[list[str]], name: str) -> tuple[str, int, int, str] | None:
    """(login, uid, gid, home) of the first entry named `name` (or, for a number, with that uid)."""
    for p in passwd:
        if len(p) >= 4 and (p[0] == name or (is_id(name) and p[2] == name)):
            uid, gid = _id(p[2]), _id(p[3])
            if uid is not None and gid is not None:
                return p[0], uid, gid, (p[5] if len(p) >= 6 else "")
    return None


def find_group(groups: list[list[str]], name: str) -> int | None:
    """The gid of the first group named `name`."""
    return next((_id(g[2]) for g in groups if len(g) >= 3 and g[0] == name and _id(g[2]) is not None), None)


def member_of(groups: list[list[str]], login: str) -> set[int]:
    """The gids of the groups that list `login` as a member."""
    return {_id(g[2]) for g in groups if len(g) >= 4 and _id(g[2]) is not None and login in g[3].split(",")}


def is_id(text: str) -> bool:
    return _id(text) is not None


def resolve_user(rootfs: str, user: str) -> tuple[int, int, tuple[int, ...], str]:
    """-> (uid, gid, supplementary groups, home) of `user` in the rootfs ("" is root)."""
    name, _, group = (user or "0").partition(":")
    passwd = parse_db(read_db(rootfs, "passwd"))
    groups = parse_db(read_db(rootfs, "group"))
    entry = find_user(passwd, name)
    if entry is None and not is_id(name):
        raise UnknownUser(f"USER {user}: no user {name!r} in the image's /etc/passwd",
                          hint="create it in an earlier RUN (useradd) or use a numeric uid")
    login, uid, gid, home = entry if entry else (None, int(name), 0, "/")
    home = home or "/"
    if group:
        if is_id(group):
            gid = int(group)
        else:
            found = find_group(groups, group)
            if found is None:
                raise UnknownUser(f"USER {user}: no group {group!r} in the image's /etc/group",
                                  hint="create it in an earlier RUN (groupadd) or use a numeric gid")
            gid = found
    extra = member_of(groups, login) if login is not None and not group else set()
    return uid, gid, tuple(sorted(extra | {gid})), home
