"""Builders for the hostile-archive and hostile-registry tests: a valid image as plain documents
(layer blobs, config, manifest, index) that a test mutates, then writes as an OCI layout archive or
a `docker save` archive, or serves from a fake registry. Everything is in memory and small, except
the bombs, which are generated as streams (never written out whole)."""
from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
for _p in (TESTS / "cache", TESTS / "registry"):   # cache_tarmaker, regservers: reused, not copied
    if str(_p) not in sys.path:
        sys.path.append(str(_p))

from cache_tarmaker import entry as E  # noqa: E402
from cache_tarmaker import make_tar  # noqa: E402

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

__all__ = ["E", "make_tar", "Doc", "sha", "oci_archive", "docker_archive", "one_line_error", "snapshot",
           "zeros_gzip_stream", "tar_header", "many_entries_tar_stream"]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Doc:
    """One image as documents. `layers` are plain tars; blobs are their gzip. Mutate the dicts (or
    set `raw_*` to exact bytes) and call blobs()/index() to get what an archive or registry holds."""
    layers: list[bytes]
    config: dict = field(default_factory=dict)
    manifest_extra: dict = field(default_factory=dict)
    raw_config: bytes | None = None
    raw_manifest: bytes | None = None

    @classmethod
    def simple(cls, *layer_entries: list[dict], arch: str | None = None) -> "Doc":
        layers = [make_tar(entries) for entries in (layer_entries or ([E("hello", data=b"hello\n")],))]
        arch = arch or {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
        config = {"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers]},
                  "history": [{"created_by": f"layer {i}"} for i in range(len(layers))]}
        return cls(layers, config)

    def layer_blobs(self) -> list[bytes]:
        return [gzip.compress(t, mtime=0) for t in self.layers]

    def config_bytes(self) -> bytes:
        return self.raw_config if self.raw_config is not None else dumps(self.config)

    def manifest(self) -> dict:
        c = self.config_bytes()
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": {"mediaType": OCI_CONFIG, "digest": sha(c), "size": len(c)},
             "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha(b), "size": len(b)} for b in self.layer_blobs()]}
        m.update(self.manifest_extra)
        return m

    def manifest_bytes(self) -> bytes:
        return self.raw_manifest if self.raw_manifest is not None else dumps(self.manifest())

    def blobs(self) -> dict[str, bytes]:
        out = {sha(b): b for b in self.layer_blobs()}
        c, m = self.config_bytes(), self.manifest_bytes()
        out[sha(c)] = c
        out[sha(m)] = m
        return out

    def manifest_descriptor(self, ref: str | None = "example.com/hostile:1") -> dict:
        m = self.manifest_bytes()
        d = {"mediaType": OCI_MANIFEST, "digest": sha(m), "size": len(m)}
        if ref:
            d["annotations"] = {"org.opencontainers.image.ref.name": ref}
        return d

    def index(self, ref: str | None = "example.com/hostile:1") -> dict:
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [self.manifest_descriptor(ref)]}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def oci_archive(path, doc: Doc, *, index: object = None, layout: bytes | None = b'{"imageLayoutVersion":"1.0.0"}',
                raw_index: bytes | None = None, blobs: dict[str, bytes] | None = None, extra: dict | None = None) -> str:
    """An OCI layout archive of `doc` (index/layout/blobs overridable; a name -> bytes of `extra` added)."""
    idx = raw_index if raw_index is not None else dumps(index if index is not None else doc.index())
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        if layout is not None:
            _add(tar, "oci-layout", layout)
        _add(tar, "index.json", idx)
        for digest, data in (blobs if blobs is not None else doc.blobs()).items():
            _add(tar, f"blobs/sha256/{digest[7:]}", data)
        for name, data in (extra or {}).items():
            _add(tar, name, data)
    return str(path)


def docker_archive(path, doc: Doc, *, manifest: object = None, raw_manifest: bytes | None = None,
                   repositories: bytes | None = None, config_name: str | None = None,
                   ref: str = "example.com/hostile:1") -> str:
    """A `docker save` archive: manifest.json, <config>.json, <diff_id>/layer.tar (plain)."""
    config = doc.config_bytes()
    cname = config_name or f"{sha(config)[7:]}.json"
    lnames = [f"{sha(t)[7:]}/layer.tar" for t in doc.layers]
    if raw_manifest is None:
        raw_manifest = json.dumps(manifest if manifest is not None else
                                  [{"Config": cname, "RepoTags": [ref], "Layers": lnames}]).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, cname, config)
        for name, t in zip(lnames, doc.layers):
            _add(tar, name, t)
        _add(tar, "manifest.json", raw_manifest)
        if repositories is not None:
            _add(tar, "repositories", repositories)
    return str(path)


# --- what the tests check after every attack ---

def one_line_error(out) -> str | None:
    """None when `out` (a CompletedProcess) failed with one clear line; else what is wrong with it."""
    # a build's progress lines (#N STEP) come before its error: not part of it
    err = "\n".join(line for line in out.stderr.strip().splitlines() if not re.match(r"#\d+ ", line))
    if out.returncode == 0:
        return f"accepted (exit 0): {out.stdout[-300:]}"
    if "Traceback" in out.stderr:
        return f"traceback: {out.stderr[-1500:]}"
    if len(err.splitlines()) != 1 or not err.startswith("pybuild: error: "):
        return f"not one clear line: {err[-1500:]!r}"
    return None


def snapshot(root) -> dict:
    """path -> (type, mode, size, content hash / link) for a tree, without following links."""
    out = {}
    root = str(root)
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            what = (st.st_mode, st.st_size, st.st_nlink, st.st_mtime_ns)
            if os.path.islink(p):
                what += (os.readlink(p),)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    what += (hashlib.sha256(f.read()).hexdigest(),)
            out[os.path.relpath(p, root)] = what
    return out


# --- bombs, as streams ---

def tar_header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    """One PAX-format header (the size may exceed ustar's 8 GiB: PAX `size` carries it)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.type = size, 0o644, 0, kind
    return info.tobuf(format=tarfile.PAX_FORMAT)


def zeros_gzip_stream(total: int, head: bytes = b"", tail: bytes = b"", piece: int = 64 << 20) -> Iterator[bytes]:
    """gzip of head + `total` zero bytes + tail, generated lazily: one member of `piece` zeros is
    compressed once and repeated (a multi-member gzip, as pigz and docker's gzip readers accept)."""
    if head:
        yield gzip.compress(head, 1, mtime=0)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = z.compress(bytes(piece)) + z.flush()
    full, rest = divmod(total, piece)
    for _ in range(full):
        yield member
    if rest:
        yield gzip.compress(bytes(rest), 9, mtime=0)
    if tail:
        yield gzip.compress(tail, 1, mtime=0)


def many_entries_tar_stream(n: int, batch: int = 4096) -> Iterator[bytes]:
    """A plain tar of `n` empty files in 1000-entry directories, in batches (never whole in memory)."""
    buf = []
    for i in range(n):
        if i % 1000 == 0:
            info = tarfile.TarInfo(f"d{i // 1000:04d}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            buf.append(info.tobuf(format=tarfile.USTAR_FORMAT))
        info = tarfile.TarInfo(f"d{i // 1000:04d}/f{i % 1000:03d}")
        info.mode = 0o644
        buf.append(info.tobuf(format=tarfile.USTAR_FORMAT))
        if len(buf) >= batch:
            yield b"".join(buf)
            buf = []
    buf.append(b"\0" * 1024)
    yield b"".join(buf)


def deep_copy(doc: Doc) -> Doc:
    return copy.deepcopy(doc)
