"""The store: a valid OCI image layout with pybuild's own state beside it (docs/CONTRACTS.md).

Every write is temp file + fsync + rename; index.json (the tags) is read-modified-written under an
exclusive fcntl lock, so many processes share one store and a tag reported written survives kill -9.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import Callable, Iterator

from grammar.errors import PybuildError

from . import mediatypes as mt
from .blobs import BlobStore
from .buildcache import BuildCache
from .digest import canonical_json, check_digest
from .errors import ImageNotFound, MediaTypeError, StoreError
from .fsutil import atomic_write, pid_alive, pid_of_temp, remove_path, temp_name
from .image import Descriptor, Image, chain_ids, host_architecture
from .leases import Leases, touch
from .locks import file_lock
from .reference import looks_like_id, parse_reference

SUBDIRS = ("blobs/sha256", "layers", "cache", "containers", "work", "tmp", "locks", "diffids", "leases")


class Store:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.tmp = os.path.join(self.root, "tmp")
        self.leases = Leases(os.path.join(self.root, "leases"))
        self.blobs = BlobStore(self.root, self.tmp, self.leases.hold)
        self.build_cache = BuildCache(os.path.join(self.root, "cache"), self.tmp, self.record_layer)

    # --- opening ---
    @classmethod
    def open(cls, root: str) -> "Store":
        """Create the layout if needed (mode 0700: setuid files inside stay out of others' reach)
        and sweep what dead processes left in tmp/ and work/."""
        os.makedirs(root, mode=0o700, exist_ok=True)
        os.chmod(root, 0o700)
        store = cls(root)
        for sub in SUBDIRS:
            os.makedirs(os.path.join(store.root, sub), mode=0o700, exist_ok=True)
        with store.lock("index"):
            if not os.path.exists(store._p("oci-layout")):
                atomic_write(store._p("oci-layout"), canonical_json({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}), store.tmp)
            if not os.path.exists(store._p("index.json")):
                store._write_index({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []})
        store.sweep()
        return store

    def _p(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def sweep(self) -> list[str]:
        """Remove temp files and scratch dirs whose owning process is gone (kill -9 leftovers)."""
        removed = []
        for sub in ("tmp", "work"):
            for name in os.listdir(self._p(sub)):
                pid = pid_of_temp(name)
                # Only names we made (they carry their maker's pid) are ours to judge; a dead maker
                # means a kill -9 or a crash. Anything else is left alone.
                if pid is not None and not pid_alive(pid):
                    path = self._p(sub, name)
                    remove_path(path)
                    removed.append(path)
        return removed

    @contextmanager
    def lock(self, name: str, *, shared: bool = False) -> Iterator[None]:
        with file_lock(self._p("locks"), name, shared=shared):
            yield

    @contextmanager
    def work_dir(self, prefix: str = "work") -> Iterator[str]:
        path = temp_name(self._p("work"), f"{prefix}-")
        os.mkdir(path, 0o700)
        try:
            yield path
        finally:
            remove_path(path)

    # --- JSON blobs ---
    def put_json(self, obj: object, media_type: str) -> Descriptor:
        return self.blobs.put_bytes(canonical_json(obj), media_type)

    def get_json(self, digest: str) -> dict:
        try:
            return json.loads(self.blobs.get(digest))
        except ValueError as err:
            raise StoreError(f"blob {digest} is not valid JSON: {err}", hint="run `pybuild system check`") from None

    # --- index.json ---
    def _read_index(self) -> dict:
        with open(self._p("index.json"), "rb") as f:
            index = json.load(f)
        if index.get("mediaType", mt.OCI_INDEX) not in mt.INDEXES:
            raise MediaTypeError(f"{self._p('index.json')}: media type {index.get('mediaType')!r} is not an image index")
        return index

    def _write_index(self, index: dict) -> None:
        atomic_write(self._p("index.json"), json.dumps(index, indent=2, sort_keys=True).encode(), self.tmp)

    def _entries(self) -> list[dict]:
        return list(self._read_index().get("manifests", []))

    def _update_index(self, change: Callable[[list[dict]], list[dict]]) -> None:
        with self.lock("index"):
            index = self._read_index()
            index["manifests"] = change(list(index.get("manifests", [])))
            self._write_index(index)

    # --- images ---
    def load_image(self, desc: Descriptor, platform: str | None = None) -> Image:
        """Read a manifest (or pick one from an index by platform) and its config."""
        if desc.media_type in mt.INDEXES:
            index = self.get_json(desc.digest)
            _check_index(index, desc.digest)
            return self.load_image(_pick_platform(index, platform, desc.digest), platform)
        manifest = self.get_json(desc.digest)
        _check_manifest(manifest, desc.digest)
        config_desc = Descriptor.from_json(manifest["config"])
        raw = self.blobs.get(config_desc.digest)
        return Image(manifest, json.loads(raw), Descriptor(manifest.get("mediaType") or desc.media_type, desc.digest, desc.size), raw)

    def commit(self, image: Image, manifest_bytes: bytes | None = None, *, source: str | None = None) -> Image:
        """Write config + manifest; the image shows as <none> until tagged. Idempotent.

        A pulled image keeps its registry manifest digest: pass the manifest's exact bytes, or an
        Image whose manifest_descriptor names a blob already stored. Otherwise the manifest is
        written as canonical JSON. Each layer must hold the diff_id the config gives it (see
        record_layer; `source`, e.g. the archive or registry, is named if one does not)."""
        config_desc = self.blobs.put_bytes(image.config_bytes, mt.OCI_CONFIG)
        if config_desc.digest != image.id:
            raise StoreError(f"image {image.id}: its config hashes to {config_desc.digest}")
        for diff_id, layer in zip(image.diff_ids, image.layers):
            if not self.blobs.exists(layer.digest):
                raise StoreError(f"image {image.short_id}: layer blob {layer.digest} is missing", hint="build or pull it again")
            self.record_layer(diff_id, layer, where=source or f"image {image.short_id}")
        media_type = image.manifest.get("mediaType") or mt.OCI_MANIFEST
        if manifest_bytes is not None:
            if json.loads(manifest_bytes) != image.manifest:
                raise StoreError(f"image {image.short_id}: the manifest bytes given do not match its manifest")
            manifest_desc = self.blobs.put_bytes(manifest_bytes, media_type)
        elif image.manifest_descriptor is not None and self.blobs.exists(image.manifest_descriptor.digest) \
                and self.get_json(image.manifest_descriptor.digest) == image.manifest:
            manifest_desc = Descriptor(media_type, image.manifest_descriptor.digest, image.manifest_descriptor.size)
        else:
            manifest_desc = self.put_json(image.manifest, media_type)
        stored = Image(image.manifest, image.config, manifest_desc, image.config_bytes)

        def add_untagged(entries: list[dict]) -> list[dict]:
            if not any(e["digest"] == manifest_desc.digest for e in entries):
                entries.append(_entry(manifest_desc, None))
            return entries
        self._update_index(add_untagged)
        return stored

    def tag(self, ref: str, image: Image) -> None:
        """Point `ref` at the image (committing it first if needed); durable when it returns."""
        r = parse_reference(ref)
        if r.digest:
            raise StoreError(f"cannot tag {ref!r}: a reference with a digest names content, not a tag")
        if image.manifest_descriptor is None:
            image = self.commit(image)
        desc = image.manifest_descriptor
        name = r.name

        def change(entries: list[dict]) -> list[dict]:
            old = [e for e in entries if _ref_name(e) == name]
            kept = [e for e in entries if _ref_name(e) != name and not (e["digest"] == desc.digest and _ref_name(e) is None)]
            kept.append(_entry(desc, name))
            for e in old:  # the image the tag moved away from stays, as <none>
                if not any(k["digest"] == e["digest"] for k in kept):
                    kept.append(_entry(Descriptor.from_json(e), None))
            return kept
        self._update_index(change)

    def untag(self, ref: str) -> None:
        name = parse_reference(ref).name
        found: list[dict] = []

        def change(entries: list[dict]) -> list[dict]:
            found.extend(e for e in entries if _ref_name(e) == name)
            kept = [e for e in entries if _ref_name(e) != name]
            for e in found:
                if not any(k["digest"] == e["digest"] for k in kept):
                    kept.append(_entry(Descriptor.from_json(e), None))
            return kept
        self._update_index(change)
        if not found:
            raise ImageNotFound(ref)

    def remove_image(self, digest: str) -> None:
        """Drop every index entry of a manifest (tags and <none>); gc frees the blobs."""
        self._update_index(lambda entries: [e for e in entries if e["digest"] != digest])

    def list_images(self) -> list[tuple[str | None, Image]]:
        """(full ref name or None for <none>, image), in index order."""
        out: list[tuple[str | None, Image]] = []
        cache: dict[str, Image] = {}
        for e in self._entries():
            if e["digest"] not in cache:
                try:
                    cache[e["digest"]] = self.load_image(Descriptor.from_json(e))
                except PybuildError:
                    continue  # damaged: `system check` names it; the listing goes on
            out.append((_ref_name(e), cache[e["digest"]]))
        return out

    def tags_of(self, image: Image) -> list[str]:
        return [ref for ref, img in self.list_images() if ref and img.digest == image.digest]

    def resolve(self, ref_or_id: str, platform: str | None = None) -> Image:
        """A tag (normalized), a full or short image ID, or a manifest digest; ImageNotFound else."""
        text = ref_or_id
        entries = self._entries()
        if looks_like_id(text):
            found = self._resolve_id(text.removeprefix("sha256:"), entries, platform)
            if found is not None:
                return found
            if text.startswith("sha256:") or len(text) == 64:
                raise ImageNotFound(text)
            # a short hex word that is no ID prefix may still be a repository name ("cafe")
        r = parse_reference(text)  # InvalidReference (a usage error) for malformed names
        for e in entries:
            if (e["digest"] == r.digest) if r.digest else (_ref_name(e) == r.name):
                return self.load_image(Descriptor.from_json(e), platform)
        if r.digest and self.blobs.exists(r.digest):
            raw = self.get_json(r.digest)
            return self.load_image(Descriptor(raw.get("mediaType", mt.OCI_MANIFEST), r.digest, self.blobs.size(r.digest)), platform)
        raise ImageNotFound(text)

    def _resolve_id(self, hexpart: str, entries: list[dict], platform: str | None) -> Image | None:
        """A manifest digest (full) or an image ID prefix; ambiguous prefixes are an error."""
        matches: dict[str, Image] = {}
        for e in entries:
            if len(hexpart) == 64 and e["digest"][7:] == hexpart:
                return self.load_image(Descriptor.from_json(e), platform)
            try:
                img = self.load_image(Descriptor.from_json(e), platform)
            except PybuildError:
                continue  # a damaged image must not hide the others (system check names it)
            if img.id[7:].startswith(hexpart):
                matches[img.id] = img
        if len(matches) > 1:
            raise StoreError(f"image ID {hexpart!r} is ambiguous: it matches {len(matches)} images", hint="give more digits")
        return next(iter(matches.values()), None)

    # --- layers ---
    def record_layer(self, diff_id: str | None, layer: Descriptor, *, verified: bool = False,
                     where: str | None = None) -> None:
        """Remember which blob holds a diff_id, so unpacked_layer can find it.

        Every entry names a blob known to hold its diff_id: `verified` says the caller computed it
        while the blob was written (layers.store_layer, a pull, a load); otherwise the blob is read
        once here, unless the entry already names it. A blob that does not hold the diff_id raises
        DiffIdMismatch (naming `where`) and the entry stays as it was."""
        if not diff_id:
            return
        path = self._p("diffids", check_digest(diff_id))
        data = canonical_json(layer.to_json())
        self.leases.hold()
        try:
            with open(path, "rb") as f:
                current = f.read()
            if (current == data or _names_blob(current, layer.digest)) and touch(path):
                return  # this blob was verified under this diff_id when the entry was written
        except FileNotFoundError:
            pass
        if not verified:
            from .diffids import verify_stored

            verify_stored(self, diff_id, layer, where)
        atomic_write(path, data, self.tmp)

    def layer_descriptor(self, diff_id: str) -> Descriptor:
        recorded = None
        try:
            with open(self._p("diffids", check_digest(diff_id)), "rb") as f:
                desc = recorded = Descriptor.from_json(json.load(f))
            if self.blobs.exists(desc.digest):
                return desc
            # the blob it names went with the last image that had it (another blob of the same
            # diff_id may have been recorded later): an image that still has the layer says where
        except FileNotFoundError:
            pass
        for _, img in self.list_images():
            for d, desc in zip(img.diff_ids, img.layers):
                if d == diff_id and self.blobs.exists(desc.digest):
                    return desc
        if recorded is not None:
            return recorded  # its blob is missing: BlobNotFound says so when it is opened
        raise StoreError(f"layer {diff_id} is not known to the store", hint="pull or build the image again")

    def unpacked_layer(self, diff_id: str) -> str:
        """layers/<hex>: the layer as an overlay lowerdir; extracted once, under a lock, into a temp
        dir that is renamed when complete (a kill -9 leaves only tmp/, swept at next start)."""
        return self._unpacked(diff_id, diff_id)

    def layer_dirs(self, diff_ids: list[str]) -> list[str]:
        """The unpacked dirs of an image's stack, top-most first (overlay lowerdir order), never the
        same dir twice: overlayfs refuses a lowerdir named twice (ELOOP), and an image may hold two
        identical layers (`RUN true` twice, COPY then ADD of one file). See layer_keys."""
        return [self._unpacked(key, diff_id) for key, diff_id in zip(layer_keys(diff_ids), diff_ids)][::-1]

    def _unpacked(self, key: str, diff_id: str) -> str:
        """layers/<key hex>, holding the layer `diff_id` (key is the diff_id or, for a repeat, a chain id)."""
        final = self._p("layers", check_digest(key))
        if os.path.isdir(final):
            return final
        from .extract import unpack_layer_blob  # only now: a cached build never extracts

        with self.lock(f"layer-{key[7:]}"):
            if os.path.isdir(final):
                return final  # another process did it while we waited
            desc = self.layer_descriptor(diff_id)
            tmp = temp_name(self.tmp, "layer-")
            try:
                unpack_layer_blob(self, desc, diff_id, tmp)
                os.rename(tmp, final)
            except BaseException:
                remove_path(tmp)
                raise
        return final

    def adopt_unpacked_layer(self, diff_id: str, directory: str) -> str:
        """Make `directory` (an upperdir just packed into `diff_id`, on the store's filesystem, e.g.
        under work/) the unpacked layer, sparing a re-extraction. If another process got there
        first its copy wins and `directory` is left to the caller. Returns layers/<hex>."""
        final = self._p("layers", check_digest(diff_id))
        self.leases.hold()
        with self.lock(f"layer-{diff_id[7:]}"):
            if not os.path.isdir(final):
                os.rename(directory, final)
            touch(final)
        return final

    def hold(self, image: Image) -> None:
        """Keep `image`'s blobs and unpacked layers from a concurrent gc while this process lives
        (a build on top of an image someone `rmi`s meanwhile still commits)."""
        self.leases.hold()
        for digest in [image.manifest_descriptor.digest if image.manifest_descriptor else None, image.id,
                       *(layer.digest for layer in image.layers)]:
            if digest:
                touch(self.blobs.path(digest))
        for key, diff_id in zip(layer_keys(image.diff_ids), image.diff_ids):
            touch(self._p("layers", check_digest(key)))
            touch(self._p("diffids", check_digest(diff_id)))

    # --- containers (owned by runtime/; read here only to protect what they use) ---
    def containers_text(self) -> str:
        """The container records (runtime/'s containers/<id>/*.json) as one text: whatever image ID
        or diff_id appears in it is in use. A plain scan, so the store needs no runtime import."""
        parts = []
        cdir = self._p("containers")
        for cid in os.listdir(cdir):
            d = os.path.join(cdir, cid)
            if os.path.isdir(d):
                for name in os.listdir(d):
                    if name.endswith(".json"):
                        try:
                            with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                                parts.append(f.read(1 << 20))
                        except OSError:
                            pass
        return "\n".join(parts)

    def container_layer_keys(self) -> set[str]:
        """layer_keys of every stack a container record names (its "diff_ids"): a container keeps
        the chain-id dirs of its image's repeated layers, whose names its records never spell."""
        keys: set[str] = set()
        cdir = self._p("containers")
        for cid in os.listdir(cdir):
            d = os.path.join(cdir, cid)
            for name in os.listdir(d) if os.path.isdir(d) else ():
                if name.endswith(".json"):
                    try:
                        with open(os.path.join(d, name), "rb") as f:
                            doc = json.load(f)
                    except (OSError, ValueError):
                        continue
                    for stack in _diff_id_lists(doc):
                        keys.update(layer_keys(stack))
        return keys

    def images_in_use(self) -> set[str]:
        """Image IDs that a container record names."""
        text = self.containers_text()
        return {img.id for _, img in self.list_images() if img.id[7:] in text}


def layer_keys(diff_ids: list[str]) -> list[str]:
    """What names each layer's unpacked dir, bottom-most first: its diff_id, or for a diff_id that
    already appeared lower in the stack, the chain id of its position (as Docker's overlay2 keys
    every layer). The repeat is the one re-keyed, never the first occurrence: the bottom layer's
    chain id is its own diff_id, so re-keying it would name the same dir again."""
    seen: set[str] = set()
    out = []
    for diff_id, chain_id in zip(diff_ids, chain_ids(diff_ids)):
        out.append(chain_id if diff_id in seen else diff_id)
        seen.add(diff_id)
    return out


def _names_blob(entry: bytes, digest: str) -> bool:
    try:
        return json.loads(entry).get("digest") == digest
    except (ValueError, AttributeError):
        return False


def _diff_id_lists(doc: object) -> Iterator[list[str]]:
    """Every list under a "diff_ids" key, at any depth of a JSON document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "diff_ids" and isinstance(value, list) and all(isinstance(v, str) for v in value):
                yield value
            else:
                yield from _diff_id_lists(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _diff_id_lists(value)


def _entry(desc: Descriptor, ref_name: str | None) -> dict:
    out = {"mediaType": desc.media_type or mt.OCI_MANIFEST, "digest": desc.digest, "size": desc.size}
    if ref_name:
        out["annotations"] = {mt.REF_NAME: ref_name}
    return out


def _ref_name(entry: dict) -> str | None:
    return (entry.get("annotations") or {}).get(mt.REF_NAME)


def _check_manifest(manifest: dict, digest: str) -> None:
    kind = manifest.get("mediaType")
    if kind in mt.INDEXES or "manifests" in manifest:
        raise MediaTypeError(f"manifest {digest} is an image index, not a manifest")
    if kind not in (None, *mt.MANIFESTS) or "config" not in manifest:
        raise MediaTypeError(f"manifest {digest}: media type {kind!r} is not an image manifest")
    if manifest["config"].get("mediaType") not in mt.CONFIGS:
        raise MediaTypeError(f"manifest {digest}: config media type {manifest['config'].get('mediaType')!r} is not an image config")
    for layer in manifest.get("layers", []):
        if layer.get("mediaType") not in mt.LAYERS:
            raise MediaTypeError(f"manifest {digest}: layer {layer.get('digest')} has media type {layer.get('mediaType')!r}, not a layer")


def _check_index(index: dict, digest: str) -> None:
    for m in index.get("manifests", []):
        if m.get("mediaType") not in (*mt.MANIFESTS, *mt.INDEXES):
            raise MediaTypeError(f"index {digest}: entry {m.get('digest')} has media type {m.get('mediaType')!r}, not a manifest")


def _pick_platform(index: dict, platform: str | None, digest: str) -> Descriptor:
    from .platforms import matches

    for m in index.get("manifests", []):
        p = m.get("platform") or {}
        if p.get("os") and matches(p, platform):
            return Descriptor.from_json(m)
    raise ImageNotFound(f"{digest} for platform {platform or 'linux/' + host_architecture()}")


