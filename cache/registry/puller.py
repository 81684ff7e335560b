"""Pull: manifest (or index -> this platform's manifest), config and layers into the store.

Nothing unverified enters the store: a manifest fetched by digest must hash to it (and one fetched
by tag to the Docker-Content-Digest the registry names), every blob is streamed into tmp/ while its
size and sha256 are checked, and only then renamed into blobs/. Layers come down in parallel; a
download cut short resumes with a Range request (or starts again if the registry ignores Range);
a blob the store already has is never fetched; two processes pulling one blob take turns on a lock
and the second finds it done.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from grammar.errors import PybuildError

from .. import mediatypes as mt
from ..errors import DigestMismatch, SizeMismatch
from ..fsutil import temp_name
from ..image import BadDocument, Descriptor, Image, check_config, checked_descriptor
from ..reference import parse_reference
from .errors import RegistryError
from .transport import ATTEMPTS, BACKOFF_START, Client, scope

MANIFEST_ACCEPT = ", ".join([mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST])
MANIFEST_MAX = 4 << 20          # the distribution spec's limit on manifests
CONFIG_MAX = 64 << 20           # a config is read into memory: bigger is an attack, not an image
PARALLEL_LAYERS = 4
CHUNK = 1 << 16         # small reads: a body cut short keeps what came, and the resume starts there
Progress = Callable[[dict], None]


def pull(store, ref: str, platform: str | None = None, progress: Progress | None = None, *,
         tls_verify: bool | None = None, client: Client | None = None) -> Image:
    """Pull `ref` into the store and tag it (a digest-only reference stays untagged)."""
    progress = progress or (lambda e: None)
    r = parse_reference(ref)
    client = client or Client(r.registry, tls_verify=tls_verify)
    client.ping()  # as Docker: the API version, TLS or not, and how to log in, before anything else
    store.leases.hold()
    progress({"kind": "status", "text": f"pulling {r.familiar}"})
    raw, media_type, digest = fetch_manifest(client, r.repository, r.digest or r.tag)
    doc = _json(raw, f"{client.where(r.repository)} manifest {digest}")
    if media_type in mt.INDEXES or "manifests" in doc:
        store.blobs.put_bytes(raw, media_type)  # keep the index: its digest is the one people pin
        child = select_platform(doc, platform, f"{client.where(r.repository)}@{digest}")
        raw, media_type, digest = fetch_manifest(client, r.repository, child.digest)
        doc = _json(raw, f"{client.where(r.repository)} manifest {digest}")
    if media_type not in mt.MANIFESTS:
        raise RegistryError(f"{client.where(r.repository)}: manifest {digest} has media type {media_type!r}",
                            hint="pybuild reads OCI and Docker schema 2 images (schema 1 is long deprecated)")
    where = f"{client.where(r.repository)} manifest {digest}"
    config_desc = descriptor(doc.get("config"), where)
    layers = [descriptor(d, where) for d in _list(doc.get("layers", []), where)]
    for layer in layers:
        if layer.media_type not in mt.LAYERS:
            raise RegistryError(f"{client.where(r.repository)}: layer {layer.digest} has media type "
                                f"{layer.media_type!r}", hint="pybuild reads tar layers: plain, gzip or zstd")
    if config_desc.size > CONFIG_MAX:
        raise RegistryError(f"{where}: its config claims {config_desc.size} bytes (more than {CONFIG_MAX})",
                            hint="the image is broken or hostile; ask its publisher")
    fetch_blob(store, client, r.repository, config_desc, progress, what="config")
    config_bytes = store.blobs.get(config_desc.digest)
    config = _json(config_bytes, f"{client.where(r.repository)} config {config_desc.digest}")
    try:
        diff_ids = check_config(config)["rootfs"]["diff_ids"]
    except BadDocument as err:
        raise RegistryError(f"{client.where(r.repository)}: config {config_desc.digest}: {err}",
                            hint="the image is broken; ask its publisher") from None
    if len(diff_ids) != len(layers):
        raise RegistryError(f"{client.where(r.repository)}: manifest {digest} lists {len(layers)} layers "
                            f"but its config {len(diff_ids)} diff_ids", hint="the image is broken; ask its publisher")
    missing = [(d, diff_id) for d, diff_id in zip(layers, diff_ids) if not store.blobs.exists(d.digest)]
    for d in layers:
        if not any(d == m for m, _ in missing):
            progress({"kind": "transfer", "id": d.digest[7:19], "action": "exists", "done": d.size, "total": d.size})
    if missing:
        # each layer's diff_id is checked as it comes down (one already stored is checked by commit)
        with ThreadPoolExecutor(max_workers=min(PARALLEL_LAYERS, len(missing))) as pool:
            for f in [pool.submit(fetch_blob, store, client, r.repository, d, progress, diff_id=diff_id)
                      for d, diff_id in missing]:
                f.result()
    image = store.commit(Image(doc, config, None, config_bytes), manifest_bytes=raw,
                         source=f"{client.where(r.repository)} manifest {digest}")
    from .sources import remember

    remember(store, r.registry, r.repository, [config_desc.digest] + [d.digest for d in layers])
    if r.tag and not r.digest:
        store.tag(r.name, image)
    progress({"kind": "status", "text": f"pulled {r.familiar}: {image.digest}"})
    return image


def fetch_manifest(client: Client, repository: str, reference: str) -> tuple[bytes, str, str]:
    """(bytes, media type, digest) of a manifest or index, verified as the module says."""
    import urllib3

    where = client.where(repository)
    resp = client.request("GET", f"/v2/{repository}/manifests/{reference}", scopes=[scope(repository)],
                          headers={"Accept": MANIFEST_ACCEPT}, stream=True, what=f"manifest {reference}")
    with resp:
        try:
            raw = resp.raw.read(MANIFEST_MAX + 1, decode_content=True)
        except (OSError, urllib3.exceptions.HTTPError) as err:  # a Content-Length that lies, a cut
            raise RegistryError(f"{where}: manifest {reference}: the body was cut ({type(err).__name__})",
                                hint="try again; if it persists, the registry is broken") from None
        header_digest = resp.headers.get("Docker-Content-Digest", "")
        content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
    if len(raw) > MANIFEST_MAX:
        raise RegistryError(f"{where}: manifest {reference} is larger than {MANIFEST_MAX} bytes")
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if reference.startswith("sha256:") and digest != reference:
        raise DigestMismatch(reference, digest, f"{where}: manifest {reference}")
    if header_digest.startswith("sha256:") and header_digest != digest:
        raise DigestMismatch(header_digest, digest, f"{where}: manifest {reference} (Docker-Content-Digest)")
    media_type = _json(raw, f"{where} manifest {reference}").get("mediaType") or content_type
    return raw, media_type, digest


def select_platform(index: dict, platform: str | None, where: str) -> Descriptor:
    """The manifest for `platform` (os/arch[/variant]; default this host, linux) from an index."""
    from ..platforms import matches, split_platform

    wanted = "/".join(x for x in split_platform(platform) if x)
    offered = []
    for m in _list(index.get("manifests", []), where):
        p = (m.get("platform") if isinstance(m, dict) else None) or {}
        if not isinstance(p, dict) or not all(isinstance(p.get(k), (str, type(None)))
                                              for k in ("os", "architecture", "variant")):
            p = {}   # a platform of the wrong shape names no platform
        offered.append("/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x))
        if p.get("os") and matches(p, platform):
            return descriptor(m, where)
    raise RegistryError(f"{where}: no image for {wanted} (the index offers: {', '.join(offered) or 'nothing'})",
                        hint="pick one of those with --platform")


def fetch_blob(store, client: Client, repository: str, desc: Descriptor, progress: Progress,
               what: str = "layer", *, diff_id: str | None = None) -> None:
    """Stream one blob into the store, verified; resumes with Range after a cut. With `diff_id`
    (a layer), its uncompressed form is hashed on the way too, and the blob is refused unless it
    holds that diff_id; then the diff_id is recorded."""
    if store.blobs.exists(desc.digest):
        return
    with store.lock(f"blob-{desc.digest[7:]}"):
        if store.blobs.exists(desc.digest):
            return  # another process pulled it while we waited
        tmp = temp_name(store.tmp, "pull-")
        try:
            _download(client, repository, desc, tmp, progress, what, diff_id)
            store.leases.hold()
            store.blobs.adopt(tmp, desc.digest, desc.size, desc.media_type)
            store.record_layer(diff_id, desc, verified=True)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _download(client: Client, repository: str, desc: Descriptor, tmp: str, progress: Progress, what: str,
              diff_id: str | None = None) -> None:
    import requests
    import urllib3

    from ..diffids import DiffIdCheck

    where = f"{client.where(repository)}: {what} {desc.digest}"
    short = desc.digest[7:19]
    h = hashlib.sha256()
    got = 0
    cuts = 0
    delay = BACKOFF_START

    def new_check() -> DiffIdCheck | None:
        return DiffIdCheck(diff_id, desc, client.where(repository)) if diff_id else None
    check = new_check()
    try:
        with open(tmp, "wb") as out:
            while True:
                headers = {"Range": f"bytes={got}-"} if got else {}
                resp = client.request("GET", f"/v2/{repository}/blobs/{desc.digest}", scopes=[scope(repository)],
                                      headers=headers, stream=True, ok=(200, 206), what=f"{what} {desc.digest}")
                if got and resp.status_code == 200:  # Range ignored: the whole blob again
                    out.seek(0)
                    out.truncate()
                    h, got = hashlib.sha256(), 0
                    if check is not None:
                        check.close()
                        check = new_check()
                try:
                    with resp:
                        for chunk in resp.iter_content(CHUNK):
                            got += len(chunk)
                            if got > desc.size:
                                raise SizeMismatch(desc.digest, desc.size, got)
                            out.write(chunk)
                            h.update(chunk)
                            if check is not None:
                                check.update(chunk)  # the diff_id, hashed on the way (diffids.py)
                            progress({"kind": "transfer", "id": short, "action": "pull", "done": got, "total": desc.size})
                except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
                    cut = f"{type(err).__name__}"
                else:
                    cut = "" if got == desc.size else f"the body ended at {got} of {desc.size} bytes"
                if not cut:
                    break
                cuts += 1
                if cuts >= ATTEMPTS:
                    raise RegistryError(f"{where}: download failed {cuts} times (last: {cut})",
                                        hint="check the network and the registry, then pull again")
                progress({"kind": "status", "text": f"{short}: {cut}; resuming at byte {got}"})
                client.sleep(delay)
                delay *= 2
            out.flush()
            os.fsync(out.fileno())
        actual = "sha256:" + h.hexdigest()
        if actual != desc.digest:
            raise DigestMismatch(desc.digest, actual, where)
        if check is not None:
            check.finish()
    finally:
        if check is not None:
            check.close()


def descriptor(d: object, where: str) -> Descriptor:
    """A descriptor from a registry's JSON, checked: a malformed one is an error, not a traceback."""
    try:
        return checked_descriptor(d)
    except (KeyError, TypeError, ValueError, AttributeError, PybuildError):
        raise RegistryError(f"{where}: malformed descriptor {json.dumps(d)[:200]}",
                            hint="the image is broken; ask its publisher") from None


def _list(value: object, where: str) -> list:
    if not isinstance(value, list):
        raise RegistryError(f"{where}: expected a list, found {type(value).__name__}")
    return value


def _json(raw: bytes, what: str) -> dict:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise RegistryError(f"{what}: not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{what}: not a JSON object")
    return doc
