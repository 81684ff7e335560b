"""Image archives: `save` (OCI layout or Docker's `docker save` format), `load` (both, as docker and
podman write them), `import` (a plain rootfs tarball, as `docker export` makes) and `unpack`
(an image's flattened filesystem, as the tutorial's `tar xf ... -C container-root`).

Archives are read by member name only: nothing in them is written to disk except through the
blob store (verified digests) or the safe extractor.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
import zlib
from typing import BinaryIO, Iterable

from . import mediatypes as mt
from .compression import decompress_reader
from .diffids import DiffIdCheck
from .digest import canonical_json
from .errors import DigestMismatch, StoreError
from .extract import ExtractError, extract_tar
from .fsutil import temp_name
from .image import BadDocument, Descriptor, Image, check_config, checked_descriptor, now_iso
from .layers import Layer, store_layer
from .reference import parse_reference

CHUNK = 1 << 20
_EPOCH = 0  # archive member mtimes: fixed, so the same images give the same archive


class ArchiveError(StoreError):
    """An image archive that is not one we can read, or whose content does not match its manifest."""


# --- writing ---

def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), _EPOCH, 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mtime, info.mode = tarfile.DIRTYPE, _EPOCH, 0o755
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, path: str) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = os.path.getsize(path), _EPOCH, 0o644
    with open(path, "rb") as f:
        tar.addfile(info, f)


def save(store, refs: Iterable[tuple[str | None, Image]], out: BinaryIO, fmt: str = "oci") -> None:
    """Write the images (with the references to record) as one archive into `out`."""
    items = list(refs)
    from .layers import _Told

    # "w" on a counting writer, not the "w|" stream mode (see layers.write_tar): same bytes, faster
    with tarfile.open(fileobj=_Told(out), mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.copybufsize = CHUNK
        if fmt == "oci":
            _save_oci(store, items, tar)
        elif fmt == "docker":
            _save_docker(store, items, tar)
        else:
            from grammar.errors import UsageError

            raise UsageError(f"unknown archive format {fmt!r}", hint="use oci or docker")


def _save_oci(store, items: list[tuple[str | None, Image]], tar: tarfile.TarFile) -> None:
    blobs: list[str] = []
    entries = []
    for ref, img in items:
        for d in [img.manifest_descriptor.digest, img.id, *(x.digest for x in img.layers)]:
            if d not in blobs:
                blobs.append(d)
        entry = {"mediaType": mt.OCI_MANIFEST, "digest": img.digest, "size": img.manifest_descriptor.size}
        if ref:
            entry["annotations"] = {mt.REF_NAME: ref, "io.containerd.image.name": ref}
        entries.append(entry)
    _add_bytes(tar, "oci-layout", canonical_json({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}))
    _add_bytes(tar, "index.json", canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}))
    _add_dir(tar, "blobs")
    _add_dir(tar, "blobs/sha256")
    for d in blobs:
        _add_file(tar, f"blobs/sha256/{d[7:]}", store.blobs.path(d))


def _save_docker(store, items: list[tuple[str | None, Image]], tar: tarfile.TarFile) -> None:
    """docker-image-spec v1.2 `docker save`: manifest.json, <config>.json, <layer>/layer.tar (plain)."""
    manifest, repositories, written = [], {}, set()
    for ref, img in items:
        layer_paths = []
        for diff_id, desc in zip(img.diff_ids, img.layers):
            hexid = diff_id[7:]
            layer_paths.append(f"{hexid}/layer.tar")
            if hexid in written:
                continue
            written.add(hexid)
            _add_dir(tar, hexid)
            _add_bytes(tar, f"{hexid}/VERSION", b"1.0")
            _add_bytes(tar, f"{hexid}/json", canonical_json({"id": hexid}))
            tmp = temp_name(store.tmp, "save-")
            try:
                with store.blobs.open(desc.digest) as src, open(tmp, "xb") as dst:
                    plain = decompress_reader(src, mt.layer_compression(desc.media_type))
                    while chunk := plain.read(CHUNK):
                        dst.write(chunk)
                _add_file(tar, f"{hexid}/layer.tar", tmp)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        config_name = f"{img.id[7:]}.json"
        if config_name not in written:
            written.add(config_name)
            _add_bytes(tar, config_name, store.blobs.get(img.id))
        tags = []
        if ref:
            # Full names: docker load normalizes them the same, and podman does not read a short
            # name as docker.io (it would load `node:1` as localhost/node:1).
            r = parse_reference(ref)
            tags.append(r.name)
            if r.tag and layer_paths:
                repositories.setdefault(r.repo_name, {})[r.tag] = layer_paths[-1].split("/")[0]
        manifest.append({"Config": config_name, "RepoTags": tags or None, "Layers": layer_paths})
    _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    if repositories:
        _add_bytes(tar, "repositories", json.dumps(repositories).encode())


# --- reading ---

def store_layer_stream(store, plain: BinaryIO, compression: str = "gzip", source: str = "-") -> Layer:
    """Store an uncompressed tar stream as a layer blob (compressed), hashing both forms."""
    def copy(out: BinaryIO) -> None:
        while True:
            try:
                chunk = plain.read(CHUNK)
            except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
                raise ArchiveError(f"{source}: cannot decompress: {str(err)[:200] or type(err).__name__}",
                                   hint="the file is damaged or not what it claims to be") from None
            except Exception as err:  # zstandard.ZstdError has no common base with the others
                if type(err).__module__.startswith("zstd"):
                    raise ArchiveError(f"{source}: cannot decompress: {err}") from None
                raise
            if not chunk:
                return
            out.write(chunk)
    return store_layer(store, copy, compression)


def _open_archive(path: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as err:
        reason = "; ".join(line.strip(" -") for line in str(err).splitlines() if line.strip())  # one line
        raise ArchiveError(f"{path}: not a tar archive ({reason})", hint="give a file made by `save`, `docker save` or `podman save`") from None


def _member(tar: tarfile.TarFile, name: str, path: str) -> BinaryIO:
    name = name.removeprefix("./")
    for candidate in (name, "./" + name):
        try:
            m = tar.getmember(candidate)
        except KeyError:
            continue
        if not m.isreg():
            raise ArchiveError(f"{path}: {name} is not a regular file in the archive")
        return tar.extractfile(m)
    raise ArchiveError(f"{path}: {name} is missing from the archive")


def _parse(data: bytes, what: str, kind: type = dict):
    """A JSON document from an archive: malformed, too deep, or of the wrong kind is one-line error."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError and the int-digits limit are ValueErrors
        raise ArchiveError(f"{what}: not valid JSON ({str(err)[:200]})") from None
    if not isinstance(doc, kind):
        raise ArchiveError(f"{what}: a JSON {type(doc).__name__}, not {'an object' if kind is dict else 'a list'}")
    return doc


def _json_member(tar, name: str, path: str, kind: type = dict):
    return _parse(_member(tar, name, path).read(), f"{path}: {name}", kind)


def _checked(what: str, check, value):
    try:
        return check(value)
    except BadDocument as err:
        raise ArchiveError(f"{what}: {err}", hint="the archive is broken or was tampered with") from None


def _list(value: object, what: str) -> list:
    if not isinstance(value, list):
        raise ArchiveError(f"{what}: expected a list, found {type(value).__name__}")
    return value


def load(store, path: str) -> list[tuple[str | None, Image]]:
    """Load every image of an OCI or Docker archive; returns (ref, image) as stored and tagged."""
    with _open_archive(path) as tar:
        names = {n.removeprefix("./") for n in tar.getnames()}
        if "oci-layout" in names and "index.json" in names:
            loaded = _load_oci(store, tar, path)
        elif "manifest.json" in names:
            loaded = _load_docker(store, tar, path)
        else:
            raise ArchiveError(f"{path}: neither an OCI layout (oci-layout, index.json) nor a docker save (manifest.json)")
    for ref, img in loaded:
        if ref:
            store.tag(ref, img)
    return loaded


def _put_blob_member(store, tar, path: str, desc: Descriptor, verify=None) -> None:
    try:
        if store.blobs.exists(desc.digest):
            return
        f = _member(tar, f"blobs/sha256/{desc.digest[7:]}", path)
        store.blobs.put_stream(f, expected_digest=desc.digest, expected_size=desc.size, media_type=desc.media_type,
                               verify=verify)
    finally:
        if verify is not None:
            verify.close()


def _load_oci(store, tar, path: str) -> list[tuple[str | None, Image]]:
    index = _json_member(tar, "index.json", path)
    out = []
    for entry in _list(index.get("manifests"), f"{path}: index.json manifests"):
        desc = _checked(f"{path}: index.json", checked_descriptor, entry)
        if desc.media_type in mt.INDEXES:
            # docker save (containerd store) names a multi-platform index: keep this host's image
            _put_blob_member(store, tar, path, desc)
            desc = _platform_manifest(store, desc, path)
        _put_blob_member(store, tar, path, desc)
        where = f"{path}: manifest {desc.digest}"
        manifest = _parse(store.blobs.get(desc.digest), where)
        if manifest.get("mediaType", mt.OCI_MANIFEST) not in mt.MANIFESTS:
            raise ArchiveError(f"{where}: media type {str(manifest.get('mediaType'))[:80]!r} is not an image manifest")
        config_desc = _checked(f"{where}: config", checked_descriptor, manifest.get("config"))
        layers = [_checked(f"{where}: layer", checked_descriptor, d) for d in _list(manifest.get("layers"), f"{where}: layers")]
        _put_blob_member(store, tar, path, config_desc)
        config = _checked(f"{path}: config {config_desc.digest}", check_config,
                          _parse(store.blobs.get(config_desc.digest), f"{path}: config {config_desc.digest}"))
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(layers):
            raise ArchiveError(f"{path}: manifest {desc.digest} lists {len(layers)} layers but its config {len(diff_ids)} diff_ids")
        for diff_id, layer in zip(diff_ids, layers):
            if not store.blobs.exists(layer.digest):  # (one already stored is verified by commit)
                # its diff_id is checked as it is written; a mismatch leaves neither blob nor entry
                _put_blob_member(store, tar, path, layer, DiffIdCheck(diff_id, layer, path))
                store.record_layer(diff_id, layer, verified=True)
        img = store.commit(store.load_image(desc), source=path)
        out.append((_ref_from_annotations(entry.get("annotations") or {}), img))
    return out


def _platform_manifest(store, index_desc: Descriptor, path: str) -> Descriptor:
    from .image import host_architecture
    from .platforms import matches

    where = f"{path}: index {index_desc.digest}"
    index = _parse(store.blobs.get(index_desc.digest), where)
    for m in _list(index.get("manifests"), f"{where}: manifests"):
        desc = _checked(where, checked_descriptor, m)
        if desc.media_type in mt.MANIFESTS and isinstance(desc.platform, dict) \
                and all(isinstance(v, str) for k, v in desc.platform.items() if k in ("os", "architecture", "variant")) \
                and matches(desc.platform, None):
            return desc
    raise ArchiveError(f"{path}: index {index_desc.digest} has no linux/{host_architecture()} image")


def _ref_from_annotations(ann: dict) -> str | None:
    for key in ("io.containerd.image.name", mt.REF_NAME):
        value = ann.get(key)
        if value:
            try:
                r = parse_reference(value)
            except StoreError:
                continue
            except Exception:
                continue  # an OCI short name such as "latest" names no repository
            if r.digest is None and ("/" in value or ":" in value):
                return r.name
    return None


def _load_docker(store, tar, path: str) -> list[tuple[str | None, Image]]:
    out = []
    for item in _json_member(tar, "manifest.json", path, list):
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise ArchiveError(f"{path}: manifest.json: an entry without a Config file name: {json.dumps(item)[:200]}")
        names = _list(item.get("Layers"), f"{path}: manifest.json Layers of {item['Config']}")
        tags = item.get("RepoTags") or [None]
        if not all(isinstance(x, str) for x in names) or not isinstance(tags, list) \
                or not all(isinstance(t, str) or t is None for t in tags):
            raise ArchiveError(f"{path}: manifest.json: Layers and RepoTags of {item['Config']} must be lists of names")
        raw_config = _member(tar, item["Config"], path).read()
        config = _checked(f"{path}: {item['Config']}", check_config, _parse(raw_config, f"{path}: {item['Config']}"))
        config_desc = store.blobs.put_bytes(raw_config, mt.OCI_CONFIG)
        expected = config["rootfs"]["diff_ids"]
        layers = []
        for i, name in enumerate(names):
            layer = store_layer_stream(store, decompress_reader(_peekable(_member(tar, name, path))), source=f"{path}: {name}")
            if i >= len(expected) or layer.diff_id != expected[i]:
                raise ArchiveError(f"{path}: layer {name} has diff_id {layer.diff_id}, but the config says "
                                   f"{expected[i] if i < len(expected) else 'nothing'}")
            layers.append(layer.descriptor.to_json())
        if len(expected) != len(layers):
            raise ArchiveError(f"{path}: {item['Config']} lists {len(expected)} diff_ids but the archive {len(layers)} layers")
        manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config_desc.to_json(), "layers": layers}
        img = store.commit(Image(manifest, config, None, raw_config), source=path)
        out += [(parse_reference(t).name if t else None, img) for t in tags]
    return out


def _peekable(f: BinaryIO) -> io.BufferedReader:
    return f if hasattr(f, "peek") else io.BufferedReader(f, CHUNK)


def import_rootfs(store, fileobj: BinaryIO, ref: str | None = None, *, source: str = "-",
                  changes: dict | None = None) -> Image:
    """A plain filesystem tarball (maybe compressed) as a one-layer image."""
    plain = decompress_reader(_peekable(fileobj))
    layer = store_layer_stream(store, plain, source=source)
    _check_is_tar(store, layer, source)
    created = now_iso()
    img = Image.empty().with_fields(created=created).with_layer(
        layer, {"created": created, "created_by": f"pybuild import {source}", "comment": "imported"})
    if changes:
        img = img.with_config(**changes)
    img = store.commit(img)
    if ref:
        store.tag(ref, img)
    return img


def _check_is_tar(store, layer: Layer, source: str) -> None:
    with store.blobs.open(layer.descriptor.digest) as f:
        try:
            with tarfile.open(fileobj=decompress_reader(f, "gzip"), mode="r|") as tar:
                tar.next()
        except (tarfile.TarError, EOFError, OSError) as err:
            raise ArchiveError(f"{source}: not a tar archive ({err})", hint="give a rootfs tarball, as `docker export` makes") from None


def unpack(store, image: Image, dest: str, *, max_bytes: int | None = None) -> None:
    """The image's flattened filesystem in `dest`: layers in order, whiteouts applied."""
    os.makedirs(dest, mode=0o755, exist_ok=True)
    from .extract import HashingReader

    for diff_id, desc in zip(image.diff_ids, image.layers):
        with store.blobs.open(desc.digest) as f:
            plain = HashingReader(decompress_reader(f, mt.layer_compression(desc.media_type)))
            kwargs = {"max_bytes": max_bytes} if max_bytes else {}
            try:
                extract_tar(plain, dest, whiteouts="apply", **kwargs)
                plain.drain()
            except ExtractError as err:
                raise ExtractError(f"layer {desc.digest}: {err}") from None
            except (zlib.error, OSError, EOFError) as err:
                raise ExtractError(f"layer {desc.digest}: cannot decompress: {err}") from None
        if plain.digest != diff_id:  # as `run` checks each layer it unpacks (extract.unpack_layer_blob)
            raise DigestMismatch(diff_id, plain.digest, f"image {image.short_id}: layer {desc.digest} (diff_id)")
