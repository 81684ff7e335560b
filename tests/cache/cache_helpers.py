"""Helpers for the store tests (a unique module name: tests/ directories are not packages)."""
from __future__ import annotations

import os
from pathlib import Path


def make_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    """files: relative path -> content (str ending in '/' as key makes a directory)."""
    for rel, content in files.items():
        p = root / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything about a tree that an escape could change: type, mode, owner, size, content, link."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            extra = os.readlink(p) if os.path.islink(p) else (open(p, "rb").read() if os.path.isfile(p) else None)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, extra)
    return out
