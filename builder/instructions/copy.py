"""COPY and ADD (local sources): sources from the context (or `--from` a stage or image), the
directory-contents rule, wildcards, trailing-slash rule, --chown (names through the image's
/etc/passwd and /etc/group) and --chmod. Every destination is resolved inside the new layer with
secure_join; nothing outside the context is read (`../x` is clamped to the context root, as
BuildKit does).
"""
from __future__ import annotations

import fnmatch
import os
import posixpath
import shutil
import stat

from .. import archives, owners
from ..cachekey import KeyParts

_GLOB = set("*?[")


def _clean(src: str) -> str:
    return posixpath.normpath("/" + src).lstrip("/")  # clamps `..` at the context root


def _select(tree: dict, pattern: str) -> list[str]:
    """Context-relative paths a source names: itself, or the wildcard's matches at that depth."""
    pat = _clean(pattern)
    if not _GLOB & set(pat):
        return [pat] if pat == "" or pat in tree else []
    depth = pat.count("/")
    return sorted(p for p in tree if p.count("/") == depth and fnmatch.fnmatchcase(p, pat))


def _below(tree: dict, rel: str) -> list[str]:
    if rel == "":
        return sorted(tree)
    prefix = rel + "/"
    return sorted(p for p in tree if p.startswith(prefix))


def plan(tree: dict, sources: list[str], dest: str, workdir: str) -> list[tuple[str, str]]:
    """(source rel path, destination inside the image) pairs, Docker's rules applied."""
    dest_abs = posixpath.join(workdir or "/", dest)
    as_dir = dest.endswith("/") or dest in (".", "") or len(sources) > 1 or any(_GLOB & set(s) for s in sources)
    pairs = []
    for source in sources:
        matches = _select(tree, source)
        if not matches:
            return [("!missing", source)]
        for rel in matches:
            if rel == "" or stat.S_ISDIR(tree[rel].mode):
                base = rel
                for sub in _below(tree, rel):
                    pairs.append((sub, posixpath.join(dest_abs, sub[len(base):].lstrip("/"))))
            else:
                target = posixpath.join(dest_abs, posixpath.basename(rel)) if as_dir else dest_abs
                pairs.append((rel, target))
    return pairs


def _is_dir_dest(dest: str, sources: list[str]) -> bool:
    return dest.endswith("/") or dest in (".", "") or len(sources) > 1


def apply(build, state, ins):
    from ..build import BuildError

    if ins.keyword == "add" and any("://" in s for s in ins.sources):
        return add_url(build, state, ins)
    if getattr(ins, "heredocs", ()):
        return copy_heredocs(build, state, ins)
    scope = state.expansion_env()
    sources = [build.expander.expand(s, scope) for s in ins.sources]
    dest = build.expander.expand(ins.dest, scope)
    chown = build.expander.expand(ins.chown, scope) if ins.chown else ""
    tree, root = source_tree(build, state, ins)
    workdir = state.image.config_section.get("WorkingDir") or "/"
    pairs = plan(tree, sources, dest, workdir)
    if pairs and pairs[0][0] == "!missing":
        raise BuildError(f"{build.where(ins)}: {ins.keyword.upper()} source {pairs[0][1]!r} not found in the build context",
                         hint="check the path and .dockerignore")
    if getattr(ins, "parents", False):
        # --parents: each file keeps its path from the context root under the destination
        if "/./" in "".join(sources):
            raise BuildError(f"{build.where(ins)}: COPY --parents with a /./ pivot is not supported",
                             hint="name the paths from the context root")
        base = posixpath.join(workdir, dest)
        pairs = [(src, posixpath.join(base, src)) for src, _dst in pairs]
    if not getattr(ins, "link", False):
        # (--link: the layer stands on its own, as BuildKit makes it: the parent's links are not read)
        pairs = _through_image_links(build, state, pairs)
    uid, gid = owners.resolve(build.store, state.image, chown) if chown else (0, 0)
    mode = int(ins.chmod, 8) if ins.chmod else None
    archives_ = {src for src, _ in pairs if ins.keyword == "add" and stat.S_ISREG(tree[src].mode)
                 and archives.is_tar(os.path.join(root, src))}
    files = tuple((src, dst, tree[src].mode if mode is None else mode, tree[src].digest) for src, dst in pairs)
    parts = KeyParts(state.key, ins.original.strip(), (), files, f"{uid}:{gid}")

    def make():
        from cache.layers import pack_diff

        from cache.fsutil import secure_join

        with build.store.work_dir("copy") as upper:
            dirs: dict[str, str] = {}
            for src, dst in pairs:
                full = os.path.join(root, src)
                if ins.keyword == "add" and src in archives_ and stat.S_ISREG(tree[src].mode):
                    # ADD of a local tar: its contents go into the destination directory itself.
                    into = posixpath.dirname(dst) if _is_dir_dest(dest, sources) else dst
                    target = secure_join(upper, into)
                    os.makedirs(target, exist_ok=True)
                    archives.extract(full, target)
                    dirs.clear()  # the archive may hold symlinks
                    continue
                write_one(full, upper, dst, uid, gid, mode, dirs)
            layer = pack_diff(upper, build.store, source_date_epoch=build.opts.source_date_epoch)
            build.store.adopt_unpacked_layer(layer.diff_id, upper)
        return layer

    created_by = f"{ins.keyword.upper()} {' '.join(sources)} {dest}"
    return build.lookup_or_make(state, ins, parts, make, created_by)


def _through_image_links(build, state, pairs):
    """Destinations with the parent image's symlinks followed (builder/layerpaths.py)."""
    if not pairs or not state.image.diff_ids:
        return pairs
    from ..layerpaths import resolve_parents

    layers = [build.store.unpacked_layer(d) for d in reversed(state.image.diff_ids)]
    moved: dict[str, str] = {}   # parent as written -> where it really is (itself when no link)
    out = []
    for src, dst in pairs:       # plain string work: a COPY of 20,000 files passes here
        parent, _, name = dst.rpartition("/")
        real = moved.get(parent)
        if real is None:
            real = moved[parent] = resolve_parents(layers, (parent or "") + "/x")[:-2]
        out.append((src, dst if real == parent else f"{real}/{name}"))
    return out


def source_tree(build, state, ins) -> tuple[dict, str]:
    """The files a COPY reads: the context, or the flattened tree of a stage or image (--from)."""
    if not getattr(ins, "from_", None):
        return build.context.files, build.context.root
    return build.from_tree(ins.from_, state)


def write_one(src: str, upper: str, dst: str, uid: int, gid: int, mode: int | None,
              dirs: dict[str, str] | None = None) -> None:
    """Write one source at `dst` inside `upper`. `dirs` (dst's parent -> its resolved, existing dir)
    spares a COPY of 20,000 files a secure_join and a makedirs per file; it is emptied whenever a
    symlink is written, the only thing that can change where a parent resolves to."""
    from cache.fsutil import secure_join

    dirname, _, name = dst.rpartition("/")
    parent = dirs.get(dirname) if dirs is not None else None
    if parent is None:
        parent = secure_join(upper, dirname)
        os.makedirs(parent, mode=0o755, exist_ok=True)
        if dirs is not None:
            dirs[dirname] = parent
    if name in ("", ".", ".."):
        target = secure_join(upper, dst, follow_last=False)
    else:
        target = os.path.join(parent, name)
    st = os.lstat(src)
    if os.path.lexists(target) and not os.path.isdir(target):
        os.unlink(target)
    if stat.S_ISDIR(st.st_mode):
        os.makedirs(target, exist_ok=True)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), target)
        if dirs is not None:
            dirs.clear()
    else:
        shutil.copyfile(src, target, follow_symlinks=False)
    os.lchown(target, uid, gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode) if mode is None else mode)


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
    scope = state.expansion_env()
    dest = build.expander.expand(ins.dest, scope)
    workdir = state.image.config_section.get("WorkingDir") or "/"
    into_dir = _is_dir_dest(dest, list(ins.sources))
    chown = build.expander.expand(ins.chown, scope) if ins.chown else ""
    uid, gid = owners.resolve(build.store, state.image, chown) if chown else (0, 0)
    mode = int(ins.chmod, 8) if ins.chmod else 0o644
    bodies = []
    for h in ins.heredocs:
        text = build.expander.expand(h.text, scope) if h.expand else h.text
        dst = posixpath.join(workdir, dest, h.name) if into_dir else posixpath.join(workdir, dest)
        bodies.append((h.name, dst, text.encode("utf-8", "surrogateescape")))
    resolved = dict(_through_image_links(build, state, [(name, dst) for name, dst, _ in bodies]))
    bodies = [(name, resolved[name], data) for name, _dst, data in bodies]
    files = tuple((f"<<{name}", dst, mode, "sha256:" + hashlib.sha256(data).hexdigest()) for name, dst, data in bodies)
    parts = KeyParts(state.key, ins.original.strip(), (), files, f"{uid}:{gid}")

    def make():
        from cache.layers import pack_diff

        with build.store.work_dir("copy") as upper, build.store.work_dir("heredoc") as scratch:
            for i, (_name, dst, data) in enumerate(bodies):
                src = os.path.join(scratch, str(i))
                with open(src, "wb") as f:
                    f.write(data)
                write_one(src, upper, dst, uid, gid, mode)
            layer = pack_diff(upper, build.store, source_date_epoch=build.opts.source_date_epoch)
            build.store.adopt_unpacked_layer(layer.diff_id, upper)
        return layer

    return build.lookup_or_make(state, ins, parts, make, f"{ins.keyword.upper()} <<heredoc {dest}")


def add_url(build, state, ins):
    """ADD URL DEST: the download is keyed by its sha256 (or --checksum), so an unchanged file hits."""
    from .. import download

    scope = state.expansion_env()
    if len(ins.sources) != 1:
        from ..build import BuildError

        raise BuildError(f"{build.where(ins)}: ADD of a URL takes one source", hint="use one ADD per URL")
    url = build.expander.expand(ins.sources[0], scope)
    dest = build.expander.expand(ins.dest, scope)
    workdir = state.image.config_section.get("WorkingDir") or "/"
    dst = posixpath.join(workdir, dest)
    if dest.endswith("/"):
        dst = posixpath.join(dst, download.file_name(url))
    dst = _through_image_links(build, state, [(url, dst)])[0][1]
    mode = int(ins.chmod, 8) if ins.chmod else 0o600
    uid, gid = owners.resolve(build.store, state.image, build.expander.expand(ins.chown, scope)) if ins.chown else (0, 0)
    scratch = build.cleanup.enter_context(build.store.work_dir("download"))
    fetched = os.path.join(scratch, "file")
    digest = download.fetch(url, fetched, ins.checksum)
    parts = KeyParts(state.key, ins.original.strip(), (), ((url, dst, mode, digest),), f"{uid}:{gid}")

    def make():
        from cache.layers import pack_diff

        with build.store.work_dir("copy") as upper:
            write_one(fetched, upper, dst, uid, gid, mode)
            layer = pack_diff(upper, build.store, source_date_epoch=build.opts.source_date_epoch)
            build.store.adopt_unpacked_layer(layer.diff_id, upper)
        return layer

    return build.lookup_or_make(state, ins, parts, make, f"ADD {url} {dest}")
