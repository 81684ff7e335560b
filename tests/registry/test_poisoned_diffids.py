"""A registry serving an image whose config claims a diff_id the store already has, over another
layer: the pull fails naming the layer and the registry, the diffids index keeps the real blob, the
real image still unpacks, and `system check` stays clean. The hostile image is pushed with raw HTTP."""
from __future__ import annotations

import gzip
import hashlib
import os

import pytest
import requests

from cache import archive, gc
from cache import mediatypes as mt
from cache.digest import canonical_json
from cache.errors import DiffIdMismatch
from cache.registry import pull, push
from cache.store import Store
from reghelpers import tar_of, tiny_image

pytestmark = pytest.mark.registry


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _put_blob(host: str, repo: str, data: bytes) -> str:
    digest = _sha(data)
    start = requests.post(f"http://{host}/v2/{repo}/blobs/uploads/", timeout=10)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    done = requests.put(f"{location}{sep}digest={digest}", data=data, timeout=10,
                        headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return digest


def push_hostile(host: str, repo: str, tag: str, layer_plain: bytes, claimed: str) -> None:
    """An image whose one layer holds `layer_plain` while its config says diff_id `claimed`."""
    blob = gzip.compress(layer_plain, mtime=0)
    config = canonical_json({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                             "rootfs": {"type": "layers", "diff_ids": [claimed]}})
    _put_blob(host, repo, blob)
    _put_blob(host, repo, config)
    manifest = canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                               "config": {"mediaType": mt.OCI_CONFIG, "digest": _sha(config), "size": len(config)},
                               "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": _sha(blob), "size": len(blob)}]})
    resp = requests.put(f"http://{host}/v2/{repo}/manifests/{tag}", data=manifest, timeout=10,
                        headers={"Content-Type": mt.OCI_MANIFEST})
    assert resp.status_code == 201, resp.text


def _intact(store: Store, real, tmp_path, ref: str) -> None:
    assert store.resolve(ref).id == real.id
    assert store.layer_descriptor(real.diff_ids[0]).digest == real.layers[0].digest
    layer_dir = store.unpacked_layer(real.diff_ids[0])  # what `run` mounts, checked against its diff_id
    assert open(os.path.join(layer_dir, "etc", "which"), "rb").read() == b"real\n"
    archive.unpack(store, real, str(tmp_path / "unpacked"))
    assert gc.check(store) == []


@pytest.mark.parametrize("blob_already_here", [False, True], ids=["streamed", "stored-before"])
def test_pull_claiming_a_known_diff_id_over_another_layer_is_refused(tmp_path, registry, blob_already_here):
    store = Store.open(str(tmp_path / "store"))
    real = tiny_image(store, "example.com/real:1", {"etc/which": b"real\n"})
    evil_plain = tar_of({"etc/which": b"poisoned\n", "etc/passwd": b"root::0:0::/:/bin/sh\n"})
    repo = f"poison/{'stored' if blob_already_here else 'streamed'}"
    push_hostile(registry.host, repo, "1", evil_plain, real.diff_ids[0])
    if blob_already_here:  # the same blob, honestly described, pulled first: commit must read it
        push_hostile(registry.host, repo, "honest", evil_plain, _sha(evil_plain))
        pull(store, f"{registry.host}/{repo}:honest")
    with pytest.raises(DiffIdMismatch) as err:
        pull(store, f"{registry.host}/{repo}:1")
    text = str(err.value)
    assert registry.host in text and real.diff_ids[0] in text and "\n" not in text
    assert f"{registry.host}/{repo}:1" not in [ref for ref, _ in store.list_images()]
    _intact(store, real, tmp_path, "example.com/real:1")


def test_pull_of_the_real_image_still_works_after_a_refused_one(tmp_path, registry):
    """The order reversed: the hostile pull comes first into an empty store, then the real image."""
    src = Store.open(str(tmp_path / "src"))
    real = tiny_image(src, None, {"etc/which": b"real\n"})
    push(src, real, f"{registry.host}/poison/real:1")
    push_hostile(registry.host, "poison/first", "1", tar_of({"etc/which": b"x\n"}), real.diff_ids[0])
    dst = Store.open(str(tmp_path / "dst"))
    with pytest.raises(DiffIdMismatch):
        pull(dst, f"{registry.host}/poison/first:1")
    assert not os.listdir(os.path.join(dst.root, "diffids"))
    got = pull(dst, f"{registry.host}/poison/real:1")
    _intact(dst, got, tmp_path, f"{registry.host}/poison/real:1")
