"""COPY's and ADD's rules, in one place, as BuildKit applies them (each rule pinned by a case in
tests/conformance/cases_hand.py, whose golden answer BuildKit gave). Runs inside the merged view of
the parent image (builder/mergedview.py), so `root` is the image's `/` as it is now.

- Sources are taken in order, each wildcard match in order, and each is copied on its own with the
  one-source rule below, against the view as the earlier ones left it (so several files onto a
  name that is not a directory leave the last one there, as BuildKit's builtin frontend does).
- A source path's symlinks, its last component included, are followed inside the source's root.
- A directory source copies its contents, not itself, into the destination directory.
- A file goes inside the destination when the destination ends with `/` (or is `.`) or is an
  existing directory; otherwise it becomes the destination itself.
- The destination's symlinks, its last component included, are followed inside the image's root:
  `COPY x /bin/sh` writes the file /bin/sh points to.
- Directories the destination needs and that do not exist are made 0755, owned by --chown's user
  (else root); existing ones keep their owner and mode. A path under an existing non-directory is
  an error: "cannot copy to non-directory".
- Files keep their mtime, mode (unless --chmod) and, inside one copied directory, their hardlinks
  (two sources, or two matches of a wildcard, are copied apart). Owners become
  --chown's, else root's for the context and the stage's own for --from. --chmod applies to the
  files and the source's subdirectories, not to the destination directory itself.
- A wildcard that matches nothing copies nothing (BuildKit's AllowEmptyWildcard); a plain path
  that names nothing is an error.
- --chmod sets the permission bits only: the source's setuid/setgid/sticky bits stay and those in
  --chmod are dropped, as BuildKit's builtin frontend (dockerd 20.10) does.
- ADD of a local tar (any compression) extracts it into the destination directory.
"""
from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from dataclasses import dataclass, field
from typing import Callable

from cache.fsutil import PathEscape, secure_join

from .mergedview import ChangeError

_GLOB = set("*?[")


@dataclass
class Source:
    """Where the files of one COPY come from."""
    root: str                                   # the context dir, or a stage's mounted view
    where: str                                  # "the build context", "stage build"
    allowed: Callable[[str], bool] | None = None  # the context: not excluded by .dockerignore
    keep_owner: bool = False                    # --from keeps the stage's owners


@dataclass
class Request:
    patterns: list[str]
    dest: str                                   # as written (expanded), relative to workdir
    workdir: str = "/"
    owner: tuple[int, int] | None = None        # --chown, resolved to ids
    chmod: int | None = None
    unpack: bool = False                        # ADD: local tars are extracted
    parents: bool = False                       # COPY --parents: keep the path from the source root
    chown: str = ""                             # --chown as written (expanded), before resolving
    _links: dict = field(default_factory=dict)  # (dev, ino) -> path written: hardlinks kept


def is_wildcard(pattern: str) -> bool:
    return bool(_GLOB & set(pattern))


def wildcard_parent_missing(src: "Source", pattern: str) -> bool:
    """BuildKit looks up a wildcard's fixed leading directories before it globs: when they are
    missing the source is an error, while a glob that matches nothing in them is not."""
    fixed = []
    for part in clean(pattern).split("/"):
        if _GLOB & set(part):
            break
        fixed.append(part)
    prefix = "/".join(fixed)
    return bool(prefix) and not os.path.lexists(os.path.join(src.root, prefix))


def clean(pattern: str) -> str:
    """A source as a path relative to its root: `..` stops at the root, as BuildKit's does."""
    return posixpath.normpath("/" + pattern).lstrip("/")


def select(src: Source, pattern: str) -> list[str]:
    """Root-relative paths a source names: itself, or its wildcard's matches (sorted per level)."""
    pat = clean(pattern)
    if not _GLOB & set(pat):
        if pat and not os.path.lexists(os.path.join(src.root, pat)) or not _allowed(src, pat):
            return []
        return [pat]
    found = [""]
    for part in pat.split("/"):
        step = []
        for prefix in found:
            if _GLOB & set(part):
                try:
                    names = sorted(os.listdir(os.path.join(src.root, prefix) if prefix else src.root))
                except (NotADirectoryError, FileNotFoundError):
                    continue
                step += [posixpath.join(prefix, n) for n in names if fnmatch.fnmatchcase(n, part)]
            elif os.path.lexists(os.path.join(src.root, prefix, part)):
                step.append(posixpath.join(prefix, part))
        found = step
    return [p for p in found if _allowed(src, p)]


def _allowed(src: Source, rel: str) -> bool:
    return rel == "" or src.allowed is None or src.allowed(rel)


def copy(root: str, src: Source, req: Request, is_archive: Callable[[str], bool] = lambda p: False) -> None:
    dest_abs = posixpath.join(req.workdir or "/", req.dest)
    into_dir = req.dest.endswith("/") or req.dest in (".", "") or req.dest.endswith("/.")
    for pattern in req.patterns:
        matches = select(src, pattern)
        if not matches and (not is_wildcard(pattern) or wildcard_parent_missing(src, pattern)):
            raise ChangeError(f"{pattern}: not found in {src.where}",
                              hint="check the path (and .dockerignore for the context)")
        for rel in matches:
            req._links.clear()   # hardlinks are kept inside one copied directory, not across sources
            full = secure_join(src.root, rel)          # the source's own symlinks followed
            if not os.path.lexists(full):
                raise ChangeError(f"{pattern}: {rel} is a symlink to nothing in {src.where}",
                                  hint="copy what it points to")
            dest = posixpath.join(dest_abs, rel) if req.parents else dest_abs
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode):
                target = ensure_dir(root, dest, req.owner)
                _copy_tree(src, full, target, root, req)
            elif req.unpack and stat.S_ISREG(st.st_mode) and is_archive(full):
                from .archives import extract

                extract(full, ensure_dir(root, dest, req.owner))
            else:
                resolved = _resolve(root, dest)
                if (into_dir and not req.parents) or os.path.isdir(resolved):
                    target = _resolve(root, posixpath.join(ensure_dir_path(root, dest, req.owner),
                                                           posixpath.basename(rel)))
                else:
                    ensure_dir(root, posixpath.dirname(dest), req.owner)
                    target = resolved
                _copy_entry(full, st, target, src, req, top=True)


def _resolve(root: str, path: str) -> str:
    try:
        return secure_join(root, path)
    except PathEscape as err:
        raise ChangeError(f"cannot copy to {path}: {err}", hint="a parent of the destination is not a directory") from None


def ensure_dir_path(root: str, path: str, owner) -> str:
    """ensure_dir, returning the image path (for further joining) rather than the host path."""
    real = ensure_dir(root, path, owner)
    return "/" + os.path.relpath(real, root) if real != root else "/"


def ensure_dir(root: str, path: str, owner: tuple[int, int] | None) -> str:
    """`path` as an existing directory of the view (made like `mkdir -p`, new ones 0755 owned by
    `owner` or root); symlinks followed inside the root. Returns the host path."""
    current = root
    done = ""
    for part in [p for p in path.split("/") if p not in ("", ".")]:
        done = posixpath.join(done, part) if part != ".." else posixpath.dirname(done)
        nxt = _resolve(root, done)
        if not os.path.lexists(nxt):
            os.mkdir(nxt, 0o755)                  # (umask 0 in the view's child: the kernel adds
            os.lchown(nxt, *(owner or (0, 0)))    # a setgid parent's bit, as for BuildKit's mkdir)
        elif not os.path.isdir(nxt):
            raise ChangeError(f"cannot copy to non-directory: /{done}",
                              hint="the destination (or one of its parents) is a file in the image")
        current = nxt
        done = os.path.relpath(nxt, root)
        done = "" if done == "." else done
    return current


def _copy_tree(src: Source, top: str, target: str, root: str, req: Request) -> None:
    """The contents of the directory `top` into the existing directory `target`."""
    base_rel = os.path.relpath(top, src.root)
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, top)
        out_dir = target if rel_dir == "." else os.path.join(target, rel_dir)
        keep = []
        for name in sorted(dirnames):
            s = os.path.join(dirpath, name)
            if not _allowed(src, _ctx_rel(base_rel, rel_dir, name)):
                continue
            st = os.lstat(s)
            if stat.S_ISLNK(st.st_mode):   # os.walk lists a symlink to a directory here: a link it stays
                _copy_entry(s, st, os.path.join(out_dir, name), src, req, top=False)
                continue
            d = os.path.join(out_dir, name)
            if os.path.islink(d):
                d = _resolve(root, os.path.relpath(d, root))
            if not os.path.lexists(d):
                os.mkdir(d)
                _set_meta(d, st, src, req, is_dir=True)
            elif not os.path.isdir(d):
                raise ChangeError(f"cannot copy directory {name} over the file /{os.path.relpath(d, root)}",
                                  hint="remove the file first")
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            if not _allowed(src, _ctx_rel(base_rel, rel_dir, name)):
                continue
            s = os.path.join(dirpath, name)
            _copy_entry(s, os.lstat(s), os.path.join(out_dir, name), src, req, top=False)


def _ctx_rel(base_rel: str, rel_dir: str, name: str) -> str:
    parts = [p for p in (base_rel, rel_dir, name) if p not in (".", "")]
    return "/".join(parts)


def _copy_entry(full: str, st: os.stat_result, target: str, src: Source, req: Request, top: bool) -> None:
    if os.path.lexists(target):
        if os.path.isdir(target) and not os.path.islink(target):
            raise ChangeError(f"cannot replace the directory {os.path.basename(target)} with a file", hint="remove it first")
        os.unlink(target)
    key = (st.st_dev, st.st_ino)
    first = req._links.get(key) if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode) else None
    if first is not None and first != target and os.path.lexists(first):
        os.link(first, target)                 # a hardlink of the source stays one
        return
    from runtime.mounts import make_node  # (here: a cached COPY never loads the runtime wing)

    make_node(full, target, st)
    _set_meta(target, st, src, req, is_dir=False)
    if st.st_nlink > 1:
        req._links[key] = target


def _set_meta(path: str, st: os.stat_result, src: Source, req: Request, is_dir: bool) -> None:
    owner = req.owner or ((st.st_uid, st.st_gid) if src.keep_owner else (0, 0))
    os.lchown(path, *owner)
    if not stat.S_ISLNK(st.st_mode):
        # --chmod gives the permission bits; the source's setuid/setgid/sticky bits stay (BuildKit's
        # fsutil: (mode &^ 0777) | (chmod & 0777)), and --chmod's own special bits are dropped.
        mode = stat.S_IMODE(st.st_mode)
        os.chmod(path, mode if req.chmod is None else (mode & 0o7000) | (req.chmod & 0o777))
    if not is_dir:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
