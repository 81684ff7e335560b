"""COPY and ADD: the cache key from the sources' content, and on a miss the files written into the
merged view of the parent image by builder/copyfiles.py, where the rules themselves live.

The key covers each source file's path, mode and content (never its mtime) and --chown as written
(expanded): what it resolves to is fixed by the image, which the parent key covers, so the image's
passwd/group are read only on a miss. For `--from` the key covers the source stage's or image's
layers (their diff_ids), so a cached COPY --from never reads, mounts or extracts the stage.
"""
from __future__ import annotations

import os
import posixpath
import stat

from .. import copyfiles, owners
from ..cachekey import KeyParts
from ..copyfiles import Request, Source


def apply(build, state, ins):
    if ins.keyword == "add" and any("://" in s for s in ins.sources):
        return add_url(build, state, ins)
    if getattr(ins, "heredocs", ()):
        return copy_heredocs(build, state, ins)
    patterns = [build.expand(state, s) for s in ins.sources]
    req = _request(build, state, ins, patterns)
    req.unpack = ins.keyword == "add"
    req.parents = bool(getattr(ins, "parents", False))
    if getattr(ins, "from_", None):
        name, image = _from_image(build, state, ins)
        files = tuple(("from", name, 0, d) for d in image.diff_ids)
        views = (tuple(image.diff_ids),)

        def source(view_roots):
            return Source(view_roots[0], f"{name} (COPY --from)", keep_owner=True)
    else:
        files = _context_key(build, ins, patterns)
        views = ()
        context = build.context

        def source(view_roots):
            return Source(context.root, "the build context", allowed=in_context(context.files))

    def change(root, view_roots):
        from ..archives import is_tar

        copyfiles.copy(root, source(view_roots), req, is_archive=is_tar)

    parts = KeyParts(state.key, ins.original.strip(), (), files, _owner_text(req))
    make = _maker(build, state, ins, change, views=views, req=req)
    created_by = f"{ins.keyword.upper()} {' '.join(patterns)} {req.dest}"
    return build.layer(state, ins, parts, make, created_by)


def _request(build, state, ins, patterns) -> Request:
    dest = build.expand(state, ins.dest)
    chown = build.expand(state, ins.chown) if ins.chown else ""
    mode = int(ins.chmod, 8) if ins.chmod else None
    workdir = state.image.config_section.get("WorkingDir") or "/"
    return Request(patterns, dest, workdir, None, mode, chown=chown)


def _owner_text(req: Request) -> str:
    return req.chown


def _maker(build, state, ins, change, *, views=(), req: Request | None = None):
    """make() for build.layer: the layer, or a BuildError naming the line. `req.chown`, if any, is
    resolved to ids here, on a miss only (a cached step never reads the image's passwd)."""
    def make():
        from ..build import BuildError
        from ..mergedview import ChangeError, layer_from_changes

        try:
            if req is not None and req.chown:
                what = f"USER {req.chown}" if ins.keyword == "workdir" else None
                req.owner = owners.resolve(build.store, state.image, req.chown, what)
            return layer_from_changes(build, state, change, parent=not getattr(ins, "link", False), views=views)
        except (ChangeError, owners.OwnerError) as err:
            raise BuildError(f"{build.where(ins)}: {ins.keyword.upper()}: {err.message}", hint=err.hint) from None
    return make


def _from_image(build, state, ins):
    ref = build.expand(state, ins.from_)
    found = build.stages.get(ref.lower())
    if found is not None:
        return f"stage {ref}", found.image
    return f"image {ref}", build.base_image(ref, ins)


def in_context(files: dict):
    """Whether a context path is sent (not .dockerignore'd): listed, or a directory above a listed
    path (an ignored directory with an exception inside it is still walked)."""
    above: set[str] = set()

    def allowed(rel: str) -> bool:
        if rel in files:
            return True
        if not above:
            for path in files:
                while "/" in path:
                    path = path.rsplit("/", 1)[0]
                    if path in above:
                        break
                    above.add(path)
            above.add("")
        return rel in above
    return allowed


def _context_key(build, ins, patterns) -> tuple:
    """(path, pattern, mode, digest) of every context file the sources name, symlinks followed as the
    copy will follow them; a source that names nothing is an error here, before any work."""
    from cache.fsutil import secure_join

    from ..build import BuildError

    context = build.context
    tree = context.files
    src = Source(context.root, "the build context", allowed=in_context(tree))
    out = []
    for pattern in patterns:
        matches = copyfiles.select(src, pattern)
        if not matches and (not copyfiles.is_wildcard(pattern) or copyfiles.wildcard_parent_missing(src, pattern)):
            raise BuildError(f"{build.where(ins)}: {ins.keyword.upper()} source {pattern!r} not found in the build context",
                             hint="check the path and .dockerignore")
        for rel in matches:
            real = os.path.relpath(secure_join(context.root, rel), context.root)
            real = "" if real == "." else real
            entry = tree.get(real)
            if real == "" or (entry is not None and stat.S_ISDIR(entry.mode)):
                prefix = real + "/" if real else ""
                below = sorted(p for p in tree if p.startswith(prefix)) if prefix else sorted(tree)
                out += [(p, pattern, tree[p].mode, tree[p].digest) for p in below]
            elif entry is not None:
                out.append((real, pattern, entry.mode, entry.digest))
            else:
                out.append((rel, pattern, 0, "missing"))   # a dangling link: the copy says so
    return tuple(out)


def copy_heredocs(build, state, ins):
    """COPY <<EOF /path: each heredoc becomes a file (named after its marker when the destination is
    a directory); an unquoted marker's body has the build's ARG/ENV expanded, as BuildKit does."""
    import hashlib

    from ..build import BuildError

    names = {h.name for h in ins.heredocs}
    plain = [src for src in ins.sources if src.lstrip("0123456789").lstrip("<-").strip("'\"") not in names]
    if plain:
        raise BuildError(f"{build.where(ins)}: {ins.keyword.upper()} mixes heredocs with other sources ({plain[0]})",
                         hint="use one COPY for the heredocs and another for the files")
    bodies = [(h.name, (build.expand(state, h.text) if h.expand else h.text).encode("utf-8", "surrogateescape"))
              for h in ins.heredocs]
    req = _request(build, state, ins, [f"{i}/{name}" for i, (name, _) in enumerate(bodies)])
    if len(bodies) > 1 and not req.dest.endswith("/"):
        req.dest += "/"
    if req.chmod is None:
        req.chmod = 0o644
    files = tuple((f"<<{name}", req.dest, req.chmod, "sha256:" + hashlib.sha256(data).hexdigest())
                  for name, data in bodies)

    def change(root, _views):
        with build.store.work_dir("heredoc") as scratch:
            for i, (name, data) in enumerate(bodies):
                os.makedirs(os.path.join(scratch, str(i)))
                with open(os.path.join(scratch, str(i), name), "wb") as f:
                    f.write(data)
            copyfiles.copy(root, Source(scratch, "the heredocs"), req)

    parts = KeyParts(state.key, ins.original.strip(), (), files, _owner_text(req))
    return build.layer(state, ins, parts, _maker(build, state, ins, change, req=req),
                                f"{ins.keyword.upper()} <<heredoc {req.dest}")


def add_url(build, state, ins):
    """ADD URL DEST: the download is keyed by its sha256 (or --checksum), so an unchanged file hits."""
    from .. import download
    from ..build import BuildError

    if len(ins.sources) != 1:
        raise BuildError(f"{build.where(ins)}: ADD of a URL takes one source", hint="use one ADD per URL")
    url = build.expand(state, ins.sources[0])
    name = download.file_name(url)
    req = _request(build, state, ins, [name])
    if req.chmod is None:
        req.chmod = 0o600
    scratch = build.cleanup.enter_context(build.store.work_dir("download"))
    fetched = os.path.join(scratch, name)
    digest = download.fetch(url, fetched, ins.checksum, where=build.where(ins))
    files = ((url, posixpath.join(req.workdir, req.dest), req.chmod, digest),)

    def change(root, _views):
        copyfiles.copy(root, Source(scratch, url), req)

    parts = KeyParts(state.key, ins.original.strip(), (), files, _owner_text(req))
    return build.layer(state, ins, parts, _maker(build, state, ins, change, req=req), f"ADD {url} {req.dest}")
