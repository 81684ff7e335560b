"""What the store keeps, what it can drop, and whether what it keeps is intact.

Roots are index.json's entries (tags and <none> images) and the build-cache entries; everything
they reach is kept, every other blob and unpacked layer is garbage.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field

from . import mediatypes as mt
from .errors import PybuildError
from .fsutil import remove_path, temp_name
from .image import Descriptor
from .store import layer_keys

_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class GcResult:
    blobs: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    bytes_freed: int = 0


@dataclass
class Reachable:
    blobs: set[str] = field(default_factory=set)
    diff_ids: set[str] = field(default_factory=set)
    layer_keys: set[str] = field(default_factory=set)   # names of layers/ dirs (store.layer_keys)
    problems: list[str] = field(default_factory=list)


def reachable(store) -> Reachable:
    """Every blob and diff_id that a root reaches; problems found on the way are collected."""
    out = Reachable()
    for entry in store._entries():
        _walk(store, Descriptor.from_json(entry), out, f"index.json entry {entry.get('digest')}")
    for key, e in store.build_cache.items():
        if e.layer is not None:
            out.blobs.add(e.layer.digest)
            if e.diff_id:
                out.diff_ids.add(e.diff_id)
                out.layer_keys.add(e.diff_id)
            if not store.blobs.exists(e.layer.digest):
                out.problems.append(f"build-cache entry {key}: layer blob {e.layer.digest} is missing")
    return out


def _walk(store, desc: Descriptor, out: Reachable, where: str) -> None:
    out.blobs.add(desc.digest)
    try:
        doc = store.get_json(desc.digest)
    except PybuildError as err:
        out.problems.append(f"{where}: {err}")
        return
    if desc.media_type in mt.INDEXES or "manifests" in doc:
        for m in doc.get("manifests", []):
            _walk(store, Descriptor.from_json(m), out, f"index {desc.digest}")
        return
    try:
        image = store.load_image(desc)
    except PybuildError as err:
        out.problems.append(f"{where}: {err}")
        for d in [doc.get("config", {})] + doc.get("layers", []):
            if "digest" in d:
                out.blobs.add(d["digest"])
        return
    out.blobs.add(image.id)
    for layer in image.layers:
        out.blobs.add(layer.digest)
        if not store.blobs.exists(layer.digest):
            out.problems.append(f"image {image.short_id}: layer blob {layer.digest} is missing")
    out.diff_ids.update(image.diff_ids)
    out.layer_keys.update(layer_keys(image.diff_ids))
    if len(image.diff_ids) != len(image.layers):
        out.problems.append(f"image {image.short_id}: {len(image.layers)} layers but {len(image.diff_ids)} diff_ids")


def collect(store, *, grace_seconds: float = 0, dry_run: bool = False) -> GcResult:
    """Delete unreachable blobs and unpacked layers (not those a container names).

    Spared too: whatever is not older than the oldest live lease (cache/leases.py) or than this
    collection's own start, so a build, pull or load running in another process keeps the blobs it
    has written but not yet tagged; and, with `grace_seconds`, whatever is younger than that."""
    started = time.time()
    with store.lock("index"):
        keep = reachable(store)
        in_use = store.containers_text()
        in_use_keys = store.container_layer_keys()
        leased = store.leases.oldest()
        since = min(started - grace_seconds, leased if leased is not None else started)
        blobs, freed = [], 0
        for digest in list(store.blobs.digests()):
            if digest in keep.blobs:
                continue
            size = _condemn(store, store.blobs.path(digest), since, dry_run, os.unlink)
            if size is not None:
                blobs.append(digest)
                freed += size
        layers = []
        layers_dir = store._p("layers")
        for name in os.listdir(layers_dir):
            key = f"sha256:{name}"
            if _HEX.match(name) and key not in keep.layer_keys and key not in in_use_keys and name not in in_use:
                if _condemn(store, os.path.join(layers_dir, name), since, dry_run, remove_path) is not None:
                    layers.append("sha256:" + name)
        for name in os.listdir(store._p("diffids")):
            if _HEX.match(name) and f"sha256:{name}" not in keep.diff_ids:
                _condemn(store, store._p("diffids", name), since, dry_run, os.unlink)
    return GcResult(tuple(blobs), tuple(layers), freed)


def _condemn(store, path: str, since: float, dry_run: bool, remove) -> int | None:
    """Remove `path` unless it was touched at or after `since`; its size if removed.

    It is first renamed aside and checked again: a leaseholder that touches it between our stat and
    our removal either freshened it before the rename (we see the new mtime and put it back) or
    finds it gone (its touch fails and it writes the object again)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if st.st_mtime >= since:
        return None
    if dry_run:
        return st.st_size
    aside = temp_name(store.tmp, "gc-")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    if os.stat(aside).st_mtime >= since:
        try:
            os.rename(aside, path)
        except OSError:  # a layer dir made again meanwhile: the new one stands, ours goes
            remove_path(aside)
        return None
    remove(aside)
    return st.st_size


def prune_images(store, *, all_images: bool = False) -> list[str]:
    """Drop <none> images (with all_images, every image no container uses). Returns manifest digests."""
    in_use = store.images_in_use()
    removed: list[str] = []

    def change(entries: list[dict]) -> list[dict]:
        tagged = {e["digest"] for e in entries if (e.get("annotations") or {}).get(mt.REF_NAME)}
        kept = []
        for e in entries:
            dangling = e["digest"] not in tagged
            if (dangling or all_images) and _config_digest(store, e) not in in_use:
                removed.append(e["digest"])
            else:
                kept.append(e)
        return kept
    store._update_index(change)
    return sorted(set(removed))


def _config_digest(store, entry: dict) -> str | None:
    try:
        return store.load_image(Descriptor.from_json(entry)).id
    except PybuildError:
        return None


def check(store) -> list[str]:
    """Re-verify every blob digest and every reference; the list of what is damaged (empty: clean)."""
    problems: list[str] = []
    try:
        with open(store._p("oci-layout")) as f:
            if json.load(f).get("imageLayoutVersion") != mt.OCI_LAYOUT_VERSION:
                problems.append("oci-layout: unexpected imageLayoutVersion")
    except (OSError, ValueError) as err:
        problems.append(f"oci-layout: {err}")
    for digest in store.blobs.digests():
        reason = store.blobs.verify(digest)
        if reason:
            problems.append(f"blob {digest}: {reason}")
    for name in os.listdir(store.blobs.dir):
        if not _HEX.match(name):
            problems.append(f"blobs/sha256/{name}: not a digest (a stray file)")
    try:
        keep = reachable(store)
    except (OSError, ValueError, PybuildError) as err:
        return problems + [f"index.json: {err}"]
    problems += keep.problems
    for digest in sorted(keep.blobs):
        if not store.blobs.exists(digest):
            problems.append(f"blob {digest}: referenced but missing")
    return problems + check_diffids(store)


def check_diffids(store) -> list[str]:
    """Every diffids/ entry must name a blob that uncompresses to that diff_id (what `run` unpacks
    for it): one that does not breaks every image with the layer. Reads each such blob once."""
    from .diffids import blob_diff_id

    problems = []
    for name in sorted(os.listdir(store._p("diffids"))):
        if not _HEX.match(name):
            continue
        path = store._p("diffids", name)
        try:
            with open(path, "rb") as f:
                desc = Descriptor.from_json(json.load(f))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            problems.append(f"diffids/{name}: unreadable entry ({err})")
            continue
        if not store.blobs.exists(desc.digest):
            continue  # its blob was collected: the store looks the layer up in the images instead
        actual, why = blob_diff_id(store, desc)
        if actual != f"sha256:{name}":
            holds = f"holds diff_id {actual}" if actual else f"holds no diff_id ({why})"
            problems.append(f"diffids/{name}: names blob {desc.digest}, which {holds}: every image with layer "
                            f"sha256:{name} fails to run (remove {path}; then pull or load that image again)")
    return problems


def disk_usage(store) -> dict:
    """The numbers `system df` shows."""
    images = store.list_images()
    unique = {img.digest: img for _, img in images}
    blob_bytes = sum(store.blobs.size(d) for d in store.blobs.digests())
    keep = reachable(store)
    cache_only = set()
    image_blobs: set[str] = set()
    for img in unique.values():
        image_blobs.update(d.digest for d in img.layers)
    for _, e in store.build_cache.items():
        if e.layer is not None and e.layer.digest not in image_blobs:
            cache_only.add(e.layer.digest)
    reclaimable = sum(store.blobs.size(d) for d in store.blobs.digests() if d not in keep.blobs)
    return {
        "images": len(unique),
        "images_bytes": sum(img.size for img in unique.values()),
        "blobs": sum(1 for _ in store.blobs.digests()),
        "blobs_bytes": blob_bytes,
        "unpacked_layers": len([n for n in os.listdir(store._p("layers")) if _HEX.match(n)]),
        "unpacked_bytes": _du(store._p("layers")),
        "build_cache_entries": sum(1 for _ in store.build_cache.items()),
        "build_cache_bytes": sum(store.blobs.size(d) for d in cache_only if store.blobs.exists(d)),
        "containers": len([n for n in os.listdir(store._p("containers")) if not n.startswith(".")]),
        "reclaimable_bytes": reclaimable,
    }


def _du(path: str) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in filenames + dirnames:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
            except OSError:
                pass
    return total
