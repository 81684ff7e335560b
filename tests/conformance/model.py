"""A conformance case: a Dockerfile plus a context tree, described as data so that the very same
bytes, modes, owners, links and mtimes reach BuildKit (at refresh time) and pybuild (in CI).

A context is a dict of relative path -> entry. Git cannot keep owners, hardlinks, setuid bits or
mtimes, so contexts are made by `materialize` into a temp dir, never stored as trees.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field

# Every context path (and every member of a generated tar) gets this mtime: far in the past, so
# describe.py can tell "kept from the source" (this value) from "made at build time" (now).
EPOCH = 1000000000          # 2001-09-09
BASE_REF = "conformance-base"


@dataclass(frozen=True)
class F:
    """A regular file."""
    content: str | bytes = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = EPOCH


@dataclass(frozen=True)
class D:
    """A directory (also made implicitly for a file's parents, as 0755)."""
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class L:
    """A symlink."""
    target: str


@dataclass(frozen=True)
class H:
    """A hardlink to another path of the context (which must come first in the dict)."""
    source: str


@dataclass(frozen=True)
class Tar:
    """A tar archive made at materialize time from `members` (same entry kinds), compressed with
    `compression` ("", "gz", "bz2", "xz"). Deterministic: sorted, numeric, mtime EPOCH."""
    members: dict
    compression: str = ""
    mode: int = 0o644


@dataclass(frozen=True)
class Case:
    name: str
    dockerfile: str
    files: dict = field(default_factory=dict)
    build_args: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    rule: str = ""              # what the case pins down, in one line (the README table)
    # Hand cases say whether BuildKit must refuse them, so a case meant to build that BuildKit
    # refuses for another reason (a missing tool in the base) cannot pass as "both failed".
    # None: not said (generated and corpus cases, where either answer is the answer).
    fails: bool | None = None

    def input_hash(self) -> str:
        """What the golden answer was made from: changing the case makes its golden stale."""
        blob = json.dumps({"dockerfile": self.dockerfile, "files": _spec(self.files),
                           "build_args": list(self.build_args), "target": self.target},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def _spec(files: dict) -> list:
    out = []
    for path, entry in files.items():
        if isinstance(entry, (str, bytes)):
            entry = F(entry)
        if isinstance(entry, Tar):
            value = {"tar": _spec(entry.members), "compression": entry.compression, "mode": entry.mode}
        else:
            value = {k: (v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in vars(entry).items()}
        out.append([path, type(entry).__name__, value])
    return out


def _bytes(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


def materialize(case: Case, root: str) -> str:
    """Write the case's context under `root` (which must exist and be empty); returns root."""
    with open(os.path.join(root, "Dockerfile"), "w") as f:
        f.write(case.dockerfile)
    os.utime(os.path.join(root, "Dockerfile"), (EPOCH, EPOCH))
    dirs = {"": D()}
    for rel, entry in case.files.items():
        if isinstance(entry, (str, bytes)):
            entry = F(entry)
        full = os.path.join(root, rel)
        parent = os.path.dirname(full)
        os.makedirs(parent, exist_ok=True)
        if isinstance(entry, D):
            os.makedirs(full, exist_ok=True)
            dirs[rel] = entry
        elif isinstance(entry, F):
            with open(full, "wb") as f:
                f.write(_bytes(entry.content))
        elif isinstance(entry, L):
            os.symlink(entry.target, full)
        elif isinstance(entry, H):
            os.link(os.path.join(root, entry.source), full)
        elif isinstance(entry, Tar):
            with open(full, "wb") as f:
                f.write(make_tar(entry.members, entry.compression))
        else:
            raise TypeError(f"{case.name}: {rel}: unknown entry {entry!r}")
        if isinstance(entry, F):
            os.chown(full, entry.uid, entry.gid)      # before chmod: chown clears setuid/setgid
        if isinstance(entry, (F, Tar)):
            os.chmod(full, entry.mode)
        if not isinstance(entry, (D, H)):
            t = entry.mtime if isinstance(entry, F) else EPOCH
            os.utime(full, (t, t), follow_symlinks=False)
    # directories last, deepest first: creating their children changed their mtimes
    for dirpath, dirnames, _ in sorted(os.walk(root), key=lambda w: -w[0].count("/")):
        rel = os.path.relpath(dirpath, root)
        spec = dirs.get("" if rel == "." else rel, D())
        os.chown(dirpath, spec.uid, spec.gid)
        os.chmod(dirpath, spec.mode)
        os.utime(dirpath, (EPOCH, EPOCH))
    return root


def make_tar(members: dict, compression: str = "") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, entry in members.items():
            if isinstance(entry, (str, bytes)):
                entry = F(entry)
            info = tarfile.TarInfo(rel)
            info.mtime, info.uname, info.gname = EPOCH, "", ""
            data = None
            if isinstance(entry, D):
                info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, entry.mode, entry.uid, entry.gid
            elif isinstance(entry, F):
                data = _bytes(entry.content)
                info.size, info.mode, info.uid, info.gid, info.mtime = len(data), entry.mode, entry.uid, entry.gid, entry.mtime
            elif isinstance(entry, L):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.target, 0o777
            elif isinstance(entry, H):
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, entry.source, 0o644
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    data = raw.getvalue()
    if compression == "gz":
        import gzip
        return gzip.compress(data, mtime=0)
    if compression == "bz2":
        import bz2
        return bz2.compress(data)
    if compression == "xz":
        import lzma
        return lzma.compress(data)
    if compression:
        raise ValueError(f"unknown compression {compression!r}")
    return data
