"""The build context: a directory (or a tar on stdin, unpacked to a scratch dir), filtered by
.dockerignore, each file hashed with xxh3-128.

A stat cache (path, size, mtime_ns, inode, mode -> hash) kept in the store makes an unchanged
context cost stat calls only: a file is re-read only when one of those changed. The hash never
covers mtime, so `touch` keeps the build cache.
"""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

from grammar.errors import PybuildError

from .dockerignore import PatternMatcher, read_ignore_file


class ContextError(PybuildError):
    """The context is missing, unreadable, or a source reaches outside it."""


@dataclass(frozen=True)
class ContextFile:
    rel: str        # context-relative, forward slashes
    mode: int       # st_mode (type + permissions)
    size: int
    digest: str     # xxh3-128 hex of the content (of the target text for a symlink); "" for dirs


def _hash_file(path: str) -> str:
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def ignore_matcher(context_dir: str, dockerfile: str | None) -> PatternMatcher:
    """`<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's .dockerignore."""
    candidates = [dockerfile + ".dockerignore"] if dockerfile else []
    candidates.append(os.path.join(context_dir, ".dockerignore"))
    for path in candidates:
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                return PatternMatcher(read_ignore_file(f.read()))
    return PatternMatcher([])


class Context:
    """A scanned context: `files` maps a relative path to its ContextFile (dirs included)."""

    def __init__(self, root: str, files: dict[str, ContextFile]):
        self.root = root
        self.files = files

    @classmethod
    def scan(cls, root: str, matcher: PatternMatcher, stat_cache_path: str | None = None) -> "Context":
        if not os.path.isdir(root):
            raise ContextError(f"build context {root!r} is not a directory", hint="pass the project directory, or - for a tar on stdin")
        old = _load_cache(stat_cache_path)
        new: dict[str, list] = {}
        files: dict[str, ContextFile] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir
            keep = []
            for name in sorted(dirnames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                # An ignored directory is still walked when an exception may re-include something in it.
                if not matcher.matches_or_parent_matches(rel) or matcher.has_exclusions:
                    keep.append(name)
            dirnames[:] = keep
            for name in sorted(dirnames) + sorted(filenames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if matcher.matches_or_parent_matches(rel):
                    continue
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                files[rel] = ContextFile(rel, st.st_mode, st.st_size, _digest(full, rel, st, old, new))
        if new != old:  # an unchanged context writes nothing
            _save_cache(stat_cache_path, new)
        return cls(root, files)

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)


def _digest(full: str, rel: str, st: os.stat_result, old: dict, new: dict) -> str:
    if stat.S_ISDIR(st.st_mode):
        return ""
    sig = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode]
    hit = old.get(rel)
    if hit and hit[:4] == sig:
        digest = hit[4]
    elif stat.S_ISLNK(st.st_mode):
        import xxhash

        digest = xxhash.xxh3_128_hexdigest(os.readlink(full).encode("utf-8", "surrogateescape"))
    elif stat.S_ISREG(st.st_mode):
        digest = _hash_file(full)
    else:
        digest = "special"
    new[rel] = sig + [digest]
    return digest


def _load_cache(path: str | None) -> dict:
    if not path:
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}  # a lost or damaged stat cache only costs re-reading the files


def _save_cache(path: str | None, data: dict) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(data, separators=(",", ":")))  # dumps: the C encoder; dump() to a file is not
    os.replace(tmp, path)


def stat_cache_path(store_root: str, context_dir: str) -> str:
    import xxhash

    return os.path.join(store_root, "statcache", xxhash.xxh3_64_hexdigest(os.path.abspath(context_dir).encode()) + ".json")
