"""Where a destination path really lands in an image: its symlinks followed through the layers.

A COPY writes into a fresh upperdir, but the path it names is read in the merged view of the parent
image: `COPY x /app/` into an image whose /app is a symlink to /srv/app must write /srv/app/x, as
Docker does, and never replace the link with a directory. So every component before the last is
looked up in the unpacked layers, top-most first (an overlay whiteout hides what is below, an opaque
directory hides the layers below for what is inside it), and a symlink found there is followed
inside the image's root: `..` stops at /, absolute targets mean the image's /, never the host's.
"""
from __future__ import annotations

import os
import posixpath
import stat

MAX_LINKS = 255


def _lookup(layers: list[str], rel: str) -> os.stat_result | None:
    """lstat of `rel` in the merged view of `layers` (top-most first); None if it does not exist."""
    for layer in layers:
        full = os.path.join(layer, rel)
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            if _opaque_above(layer, rel):
                return None
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return None  # a whiteout: deleted in this layer
        return st
    return None


def _opaque_above(layer: str, rel: str) -> bool:
    """A directory on the way to `rel` marked opaque in this layer hides every layer below."""
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        try:
            if os.getxattr(os.path.join(layer, *parts[:i]), "trusted.overlay.opaque") == b"y":
                return True
        except OSError:
            continue
    return False


def resolve_parents(layers: list[str], path: str) -> str:
    """`path` (absolute, inside the image) with symlinks in all but its last component followed
    through `layers`; the result is absolute and never above the image's /."""
    todo = [p for p in path.split("/") if p not in ("", ".")]
    last = todo.pop() if todo else ""
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        rel = "/".join(done + [part])
        st = _lookup(layers, rel)
        if st is not None and stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_LINKS:
                break  # a loop: leave the rest as it is; writing will fail inside the root
            target = _readlink(layers, rel)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            continue
        done.append(part)
    return "/" + posixpath.join(*done, last) if (done or last) else "/"


def _readlink(layers: list[str], rel: str) -> str:
    for layer in layers:
        full = os.path.join(layer, rel)
        if os.path.islink(full):
            return os.readlink(full)
    return ""
