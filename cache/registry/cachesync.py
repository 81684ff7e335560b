"""The build cache through a registry (`build --cache-to REF` / `--cache-from REF`).

What goes up is an OCI image manifest used as an artifact, so any OCI registry stores it:
  config  application/vnd.pybuild.buildcache.v1+json: {"entries": {key: CacheEntry JSON}}
  layers  every layer blob those entries name (as they are in the store: same digests)
The keys are the builder's own (xxh3 of parent key + instruction + what it read), so a machine
that builds the same Dockerfile on the same base and context computes the same keys and finds
them here. Import fetches the artifact, every layer it lacks (verified by digest like any pull;
a layer's diff_id is checked again when it is first unpacked), and only then writes each entry.
An imported entry says "this step gives that layer": trust a cache as you trust a base image, and
import only caches your own builds (or people you would build FROM) exported.
"""
from __future__ import annotations

from typing import Callable, Iterable

from .. import mediatypes as mt
from ..buildcache import CacheEntry
from ..digest import canonical_json
from ..image import Descriptor
from ..reference import parse_reference
from .errors import RegistryError

CACHE_CONFIG = "application/vnd.pybuild.buildcache.v1+json"
Progress = Callable[[dict], None]


def export_cache(store, ref: str, progress: Progress | None = None, *, tls_verify: bool | None = None,
                 keys: Iterable[str] | None = None) -> str:
    """Push the build cache (all of it, or only `keys`) to `ref`; returns the manifest digest."""
    from .pusher import push_blob, put_manifest
    from .transport import Client

    progress = progress or (lambda e: None)
    wanted = set(keys) if keys is not None else None
    entries: dict[str, dict] = {}
    layers: dict[str, Descriptor] = {}
    for key, entry in store.build_cache.items():
        if wanted is not None and key not in wanted:
            continue
        if entry.layer is not None:
            if not store.blobs.exists(entry.layer.digest):
                continue  # a dangling entry helps nobody
            layers[entry.layer.digest] = entry.layer
        entries[key] = entry.to_json()
    config = canonical_json({"entries": entries})
    config_desc = store.blobs.put_bytes(config, CACHE_CONFIG)
    config_desc = Descriptor(CACHE_CONFIG, config_desc.digest, config_desc.size)
    manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config_desc.to_json(),
                "layers": [layers[d].to_json() for d in sorted(layers)],
                "annotations": {"org.opencontainers.image.title": "pybuild build cache"}}
    raw = canonical_json(manifest)
    r = parse_reference(ref)
    client = Client(r.registry, tls_verify=tls_verify)
    for desc in [*layers.values(), config_desc]:
        push_blob(store, client, r.repository, desc, progress)
    digest = put_manifest(client, r.repository, r.tag or "latest", raw, mt.OCI_MANIFEST)
    progress({"kind": "status", "text": f"exported {len(entries)} cache entries ({len(layers)} layers) to {r.familiar}"})
    return digest


def import_cache(store, ref: str, progress: Progress | None = None, *, tls_verify: bool | None = None) -> int:
    """Fetch the cache artifact at `ref` into the store's build cache; returns the entries added."""
    from .puller import _json, _list, descriptor, fetch_blob, fetch_manifest
    from .transport import Client

    progress = progress or (lambda e: None)
    r = parse_reference(ref)
    client = Client(r.registry, tls_verify=tls_verify)
    store.leases.hold()
    raw, media_type, digest = fetch_manifest(client, r.repository, r.digest or r.tag)
    manifest = _json(raw, f"{client.where(r.repository)} cache {digest}")
    where = f"{client.where(r.repository)} cache {digest}"
    config_desc = descriptor(manifest.get("config"), where)
    if config_desc.media_type != CACHE_CONFIG:
        raise RegistryError(f"{r.familiar} is not a pybuild build cache (its config is {config_desc.media_type!r})",
                            hint="name the REF a `--cache-to` wrote")
    fetch_blob(store, client, r.repository, config_desc, progress, what="cache index")
    doc = _json(store.blobs.get(config_desc.digest), f"{r.familiar} cache index")
    listed = {d.digest: d for d in (descriptor(x, where) for x in _list(manifest.get("layers", []), where))}
    added = 0
    for key, data in sorted((doc.get("entries") or {}).items()):
        try:
            entry = CacheEntry.from_json(data)
        except (KeyError, TypeError, ValueError):
            continue
        if entry.layer is not None:
            if entry.layer.digest not in listed:
                continue  # the artifact does not carry that layer: the entry would dangle
            fetch_blob(store, client, r.repository, entry.layer, progress, diff_id=entry.diff_id)
        try:
            store.build_cache.put(key, entry)
        except ValueError:
            continue  # not a key this builder makes
        added += 1
    progress({"kind": "status", "text": f"imported {added} cache entries from {r.familiar}"})
    return added
