"""RUN --mount: what BuildKit mounts for one RUN step, never part of the layer it makes.

    type=cache,target=/root/.cache[,id=ID][,mode=0755][,uid=0][,gid=0][,sharing=shared]
        a directory kept in the store (ROOT/cache-mounts/) and shared by every build that names
        the same id (default: the target): package caches survive between builds
    type=bind,target=/src[,source=.][,from=STAGE|IMAGE][,rw]
        files of the context (only what .dockerignore lets in) or of a stage/image, copied to a
        scratch dir first, so a write (with rw) is discarded and never reaches the context;
        their content is part of the step's cache key
    type=tmpfs,target=/tmp[,size=64m]
secret and ssh mounts are refused with a clear error (pybuild has no secret store yet).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass

from grammar.errors import PybuildError

KINDS = ("cache", "bind", "tmpfs")


class MountError(PybuildError):
    """A RUN --mount that pybuild cannot honour."""


@dataclass(frozen=True)
class RunMount:
    kind: str
    target: str
    source: str = "."
    from_: str | None = None
    rw: bool = False
    id: str = ""
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    size: str = ""


def parse(spec: str, where: str) -> RunMount:
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, eq, value = part.partition("=")
        fields[key.strip().lower()] = value.strip() if eq else "true"
    kind = fields.pop("type", "bind")
    if kind in ("secret", "ssh"):
        raise MountError(f"{where}: RUN --mount=type={kind} is not supported by pybuild",
                         hint="pass what the step needs as a build arg or a bind mount of a file in the context")
    if kind not in KINDS:
        raise MountError(f"{where}: RUN --mount type {kind!r} is unknown", hint="use cache, bind or tmpfs")
    target = fields.pop("target", None) or fields.pop("dst", None) or fields.pop("destination", None)
    if not target:
        raise MountError(f"{where}: RUN --mount={spec}: a target is required", hint="add target=/path")
    try:
        return RunMount(kind, target, source=fields.get("source") or fields.get("src") or ".",
                        from_=fields.get("from"), rw=fields.get("rw", fields.get("readwrite", "false")) == "true",
                        id=fields.get("id") or target, mode=int(fields.get("mode", "755"), 8),
                        uid=int(fields.get("uid", "0")), gid=int(fields.get("gid", "0")), size=fields.get("size", ""))
    except ValueError as err:
        raise MountError(f"{where}: RUN --mount={spec}: {err}", hint="mode is octal, uid and gid are numbers") from None


def key_part(build, state, m: RunMount) -> tuple[str, str]:
    """What of the mount the step's result depends on: the bound files' contents; a cache or a
    tmpfs is by definition not an input (as BuildKit)."""
    if m.kind != "bind":
        return (f"mount:{m.kind}", m.target)
    files, _root = _tree(build, state, m)
    prefix = _rel(m.source)
    h = hashlib.sha256()
    for rel in sorted(files):
        if rel == prefix or prefix in ("", ".") or rel.startswith(prefix + "/"):
            f = files[rel]
            h.update(f"{rel}\0{f.mode}\0{getattr(f, 'digest', '')}\n".encode("utf-8", "surrogateescape"))
    return (f"mount:bind:{m.target}", h.hexdigest())


def prepare(build, state, m: RunMount, scratch: str):
    """The sandbox Mount for `m` (a cache dir is made on first use)."""
    from runtime.sandbox import Mount

    if m.kind == "tmpfs":
        return Mount(source="tmpfs", target=m.target, type="tmpfs",
                     options=f"mode=1777{',size=' + m.size if m.size else ''}")
    if m.kind == "cache":
        import xxhash

        path = os.path.join(build.store.root, "cache-mounts", xxhash.xxh3_64_hexdigest(m.id.encode()))
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, m.mode)
            os.chown(path, m.uid, m.gid)
        return Mount(source=path, target=m.target)
    files, root = _tree(build, state, m)
    from cache.fsutil import secure_join

    prefix = _rel(m.source)
    copy = os.path.join(scratch, f"bind-{len(os.listdir(scratch))}")
    source = secure_join(root, prefix)  # `source=../x` stays inside the context
    if prefix in ("", ".") or stat.S_ISDIR(files.get(prefix, _Dir).mode):
        os.mkdir(copy, 0o755)
        for rel in sorted(files):
            if prefix not in ("", ".") and not rel.startswith(prefix + "/"):
                continue
            inner = rel if prefix in ("", ".") else rel[len(prefix) + 1:]
            _copy_entry(os.path.join(root, rel), os.path.join(copy, inner))
    elif prefix in files:
        _copy_entry(source, copy)
    else:
        raise MountError(f"RUN --mount=type=bind: source {m.source!r} is not in the "
                         f"{'stage ' + m.from_ if m.from_ else 'build context'}", hint="check the path and .dockerignore")
    return Mount(source=copy, target=m.target, readonly=not m.rw)


class _Dir:
    mode = stat.S_IFDIR


def _tree(build, state, m: RunMount):
    if m.from_:
        return build.from_tree(m.from_, state)
    return build.context.files, build.context.root


def _rel(source: str) -> str:
    parts = [p for p in source.split("/") if p not in ("", ".")]
    out: list[str] = []
    for p in parts:
        if p == "..":
            if out:
                out.pop()
        else:
            out.append(p)
    return "/".join(out) or "."


def _copy_entry(src: str, dst: str) -> None:
    st = os.lstat(src)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if stat.S_ISDIR(st.st_mode):
        os.makedirs(dst, exist_ok=True)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(src, dst, follow_symlinks=False)
