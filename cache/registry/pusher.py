"""Push: every blob the registry lacks, then the manifest under the tag.

Each blob: HEAD (already there: skip); else a cross-repository mount when the store knows another
repository of the same registry holds it (POST ?mount=&from=; 201 means linked, 202 means the
registry declined and opened an upload); else an upload — monolithic (one PUT) for blobs up to
CHUNKED_ABOVE, chunked (PATCH with Content-Range, then PUT ?digest=) above it. An upload that fails
half-way starts again from a new session. The manifest goes last, its exact stored bytes with its
own media type as Content-Type, so its digest is the one the store has.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable
from urllib.parse import urlencode, urljoin

from .. import mediatypes as mt
from ..image import Descriptor, Image
from ..reference import parse_reference
from .errors import RegistryError, TransientError
from .transport import ATTEMPTS, Client, scope

CHUNKED_ABOVE = 64 << 20
CHUNK_SIZE = 32 << 20
PARALLEL_BLOBS = 4
Progress = Callable[[dict], None]


def push(store, image_or_ref, dest_ref: str, progress: Progress | None = None, *,
         tls_verify: bool | None = None, client: Client | None = None) -> str:
    """Push an image (or a reference the store resolves) to `dest_ref`; returns the manifest digest."""
    progress = progress or (lambda e: None)
    image: Image = store.resolve(image_or_ref) if isinstance(image_or_ref, str) else image_or_ref
    r = parse_reference(dest_ref)
    client = client or Client(r.registry, tls_verify=tls_verify)
    client.ping()  # as Docker: the API version, TLS or not, and how to log in, before anything else
    repo = r.repository
    progress({"kind": "status", "text": f"pushing {r.familiar}"})
    from .sources import known, remember

    sources = known(store, r.registry)
    blobs = [*image.layers, image.config_descriptor]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_BLOBS, len(blobs))) as pool:  # as skopeo: blobs side by side
        for job in [pool.submit(push_blob, store, client, repo, d, progress, mount_from=sources.get(d.digest))
                    for d in blobs]:
            job.result()
    raw = store.blobs.get(image.digest) if image.digest else None
    if raw is None:
        raise RegistryError(f"image {image.short_id} has no stored manifest", hint="commit or tag it first")
    media_type = image.manifest.get("mediaType") or mt.OCI_MANIFEST
    digest = put_manifest(client, repo, r.tag or r.digest or "latest", raw, media_type)
    remember(store, r.registry, repo, [d.digest for d in blobs])
    progress({"kind": "status", "text": f"pushed {r.familiar}: {digest}"})
    return digest


def put_manifest(client: Client, repo: str, reference: str, raw: bytes, media_type: str) -> str:
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    resp = client.request("PUT", f"/v2/{repo}/manifests/{reference}", scopes=[scope(repo, "pull,push")],
                          headers={"Content-Type": media_type}, data=raw, ok=(200, 201, 202),
                          what=f"manifest {reference}")
    said = resp.headers.get("Docker-Content-Digest", "")
    resp.close()
    if said.startswith("sha256:") and said != digest:
        raise RegistryError(f"{client.where(repo)}: the registry stored manifest {reference} as {said}, "
                            f"but its bytes hash to {digest}", hint="the registry rewrote the manifest; push again")
    return digest


def push_blob(store, client: Client, repo: str, desc: Descriptor, progress: Progress,
              mount_from: str | None = None) -> str:
    """'exists', 'mounted' or 'uploaded'."""
    short = desc.digest[7:19]
    if blob_exists(client, repo, desc):
        progress({"kind": "transfer", "id": short, "action": "exists", "done": desc.size, "total": desc.size})
        return "exists"
    for attempt in range(1, ATTEMPTS + 1):
        location = None
        if mount_from and mount_from != repo:
            resp = client.request("POST", f"/v2/{repo}/blobs/uploads/",
                                  params={"mount": desc.digest, "from": mount_from},
                                  scopes=[scope(repo, "pull,push"), scope(mount_from)], ok=(201, 202),
                                  what=f"mount of {desc.digest} from {mount_from}")
            resp.close()
            if resp.status_code == 201:
                progress({"kind": "transfer", "id": short, "action": "mounted", "done": desc.size, "total": desc.size})
                return "mounted"
            location = resp.headers.get("Location")
        try:
            _upload(store, client, repo, desc, progress, location)
            return "uploaded"
        except _UploadCut as cut:
            mount_from = None
            if attempt == ATTEMPTS:
                raise RegistryError(f"{client.where(repo)}: upload of {desc.digest} failed {attempt} times "
                                    f"(last: {cut})", hint="check the network and the registry, then push again") from None
            progress({"kind": "status", "text": f"{short}: upload cut ({cut}); starting again"})
            client.sleep(min(0.2 * 2 ** attempt, 5))
    return "uploaded"


def blob_exists(client: Client, repo: str, desc: Descriptor) -> bool:
    resp = client.request("HEAD", f"/v2/{repo}/blobs/{desc.digest}", scopes=[scope(repo, "pull,push")],
                          ok=(200, 404), what=f"blob {desc.digest}")
    resp.close()
    return resp.status_code == 200


class _UploadCut(Exception):
    pass


def _upload(store, client: Client, repo: str, desc: Descriptor, progress: Progress, location: str | None) -> None:
    import requests

    scopes = [scope(repo, "pull,push")]
    if location is None:
        resp = client.request("POST", f"/v2/{repo}/blobs/uploads/", scopes=scopes, ok=(202,),
                              what=f"upload of {desc.digest}")
        resp.close()
        location = resp.headers.get("Location")
    if not location:
        raise RegistryError(f"{client.where(repo)}: the registry opened an upload without a Location")
    location = urljoin(client.url("/"), location)
    short = desc.digest[7:19]
    try:
        if desc.size <= CHUNKED_ABOVE:
            with store.blobs.open(desc.digest) as f:
                data = f.read()
            resp = client.request("PUT", _with_digest(location, desc.digest), scopes=scopes, data=data,
                                  headers={"Content-Type": "application/octet-stream"}, ok=(201,),
                                  what=f"upload of {desc.digest}", retry=False)
            resp.close()
        else:
            sent = 0
            with store.blobs.open(desc.digest) as f:
                while chunk := f.read(CHUNK_SIZE):
                    resp = client.request("PATCH", location, scopes=scopes, data=chunk,
                                          headers={"Content-Type": "application/octet-stream",
                                                   "Content-Range": f"{sent}-{sent + len(chunk) - 1}",
                                                   "Content-Length": str(len(chunk))},
                                          ok=(202,), what=f"upload of {desc.digest}", retry=False)
                    resp.close()
                    sent += len(chunk)
                    location = urljoin(location, resp.headers.get("Location") or location)
                    progress({"kind": "transfer", "id": short, "action": "push", "done": sent, "total": desc.size})
            resp = client.request("PUT", _with_digest(location, desc.digest), scopes=scopes, ok=(201,),
                                  headers={"Content-Length": "0"}, what=f"upload of {desc.digest}", retry=False)
            resp.close()
    except requests.exceptions.RequestException as err:
        raise _UploadCut(type(err).__name__) from None
    except TransientError as err:
        raise _UploadCut(str(err)) from None
    progress({"kind": "transfer", "id": short, "action": "push", "done": desc.size, "total": desc.size})


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + urlencode({"digest": digest})
