"""A hostile archive whose config claims a diff_id the store already has, over other content, must not
repoint that diff_id (it would break every image with the real layer); `unpack` checks diff_ids as
`run` does; `system check` finds a diffids entry whose blob does not hold its diff_id."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from cache import archive, gc
from cache import mediatypes as mt
from cache.archive import ArchiveError
from cache.digest import canonical_json
from cache.errors import DigestMismatch, DiffIdMismatch
from cache.image import Image
from cache_tarmaker import entry as E
from cache_tarmaker import make_tar

REAL = make_tar([E("etc/", "dir"), E("etc/which", data=b"the real layer\n")])
EVIL = make_tar([E("etc/", "dir"), E("etc/which", data=b"poisoned\n"), E("etc/passwd", data=b"root::0:0::/:/bin/sh\n")])


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def real(store):
    img = archive.import_rootfs(store, io.BytesIO(REAL), "example.com/real:1")
    assert img.diff_ids == [_sha(REAL)]
    return img


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _config(diff_id: str) -> bytes:
    return canonical_json({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                           "rootfs": {"type": "layers", "diff_ids": [diff_id]}})


def oci_archive(path, layer_plain: bytes, claimed: str, ref: str = "example.com/evil:1") -> str:
    """An OCI layout archive: one gzip layer of `layer_plain`, its config claiming diff_id `claimed`."""
    blob = gzip.compress(layer_plain, mtime=0)
    config = _config(claimed)
    manifest = canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                               "config": {"mediaType": mt.OCI_CONFIG, "digest": _sha(config), "size": len(config)},
                               "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": _sha(blob), "size": len(blob)}]})
    index = canonical_json({"schemaVersion": 2, "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": _sha(manifest),
                                                               "size": len(manifest), "annotations": {mt.REF_NAME: ref}}]})
    with tarfile.open(path, "w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", index)
        for data in (blob, config, manifest):
            _add(tar, f"blobs/sha256/{_sha(data)[7:]}", data)
    return str(path)


def docker_archive(path, layer_plain: bytes, claimed: str, ref: str = "example.com/evil:1") -> str:
    """A `docker save` archive whose layer <claimed>/layer.tar holds `layer_plain`."""
    config = _config(claimed)
    with tarfile.open(path, "w") as tar:
        _add(tar, f"{_sha(config)[7:]}.json", config)
        _add(tar, f"{claimed[7:]}/layer.tar", layer_plain)
        _add(tar, "manifest.json", json.dumps([{"Config": f"{_sha(config)[7:]}.json", "RepoTags": [ref],
                                                "Layers": [f"{claimed[7:]}/layer.tar"]}]).encode())
    return str(path)


def _still_intact(store, real, tmp_path) -> None:
    """The real image resolves, unpacks by the diffids index (as `run`) and as a whole (`unpack`),
    the index still names its blob, and system check is clean."""
    assert store.resolve("example.com/real:1").id == real.id
    assert store.layer_descriptor(real.diff_ids[0]).digest == real.layers[0].digest
    layer_dir = store.unpacked_layer(real.diff_ids[0])
    assert open(os.path.join(layer_dir, "etc", "which"), "rb").read() == b"the real layer\n"
    dest = tmp_path / "unpacked"
    archive.unpack(store, real, str(dest))
    assert (dest / "etc" / "which").read_bytes() == b"the real layer\n"
    assert gc.check(store) == []
    assert [ref for ref, _ in store.list_images()] == ["example.com/real:1"]


@pytest.mark.parametrize("make", [oci_archive, docker_archive], ids=["oci", "docker-save"])
def test_load_claiming_a_known_diff_id_over_other_content_is_refused(store, real, tmp_path, make):
    path = make(tmp_path / "evil.tar", EVIL, real.diff_ids[0])
    with pytest.raises((DiffIdMismatch, ArchiveError)) as err:
        archive.load(store, path)
    text = str(err.value)
    assert path in text and real.diff_ids[0] in text and "\n" not in text
    _still_intact(store, real, tmp_path)


def test_load_refused_when_the_hostile_layer_blob_is_already_stored(store, real, tmp_path):
    """The blob is not written again, so nothing hashed it on the way: commit reads it once."""
    archive.load(store, oci_archive(tmp_path / "honest.tar", EVIL, _sha(EVIL), "example.com/other:1"))
    with pytest.raises(DiffIdMismatch, match="evil.tar"):
        archive.load(store, oci_archive(tmp_path / "evil.tar", EVIL, real.diff_ids[0]))
    assert store.layer_descriptor(real.diff_ids[0]).digest == real.layers[0].digest
    assert gc.check(store) == []


def test_load_of_the_same_layer_in_another_compression_is_recorded(store, real, tmp_path):
    """A blob that does hold the diff_id may take over the entry (verified on the way in)."""
    (loaded,) = archive.load(store, oci_archive(tmp_path / "same.tar", REAL, real.diff_ids[0], "example.com/same:1"))
    assert loaded[1].diff_ids == real.diff_ids and loaded[1].layers[0].digest != real.layers[0].digest
    assert gc.check(store) == []
    store.unpacked_layer(real.diff_ids[0])


def test_unpack_checks_each_layer_against_its_diff_id(store, real, tmp_path):
    lying = Image(real.manifest, {**real.config, "rootfs": {"type": "layers", "diff_ids": [_sha(EVIL)]}}, None,
                  canonical_json({}))
    with pytest.raises(DigestMismatch, match=real.layers[0].digest):
        archive.unpack(store, lying, str(tmp_path / "u"))


def test_system_check_finds_a_diffids_entry_whose_blob_holds_another_layer(store, real, tmp_path):
    other = archive.import_rootfs(store, io.BytesIO(EVIL), "example.com/other:1")
    entry = os.path.join(store.root, "diffids", real.diff_ids[0][7:])
    with open(entry, "wb") as f:  # what the unfixed load did: repoint the real diff_id
        f.write(canonical_json(other.layers[0].to_json()))
    problems = gc.check(store)
    assert len(problems) == 1 and f"diffids/{real.diff_ids[0][7:]}" in problems[0]
    assert other.layers[0].digest in problems[0] and other.diff_ids[0] in problems[0]
    out = subprocess.run([sys.executable, "-m", "builder.cli", "--root", store.root, "system", "check"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and f"diffids/{real.diff_ids[0][7:]}" in out.stderr
    # an entry whose blob is not a layer at all is named too
    with open(entry, "wb") as f:
        f.write(canonical_json({"mediaType": mt.OCI_LAYER_GZIP, "digest": real.id, "size": 1}))
    assert "holds no diff_id" in " ".join(gc.check(store))


def test_cli_load_of_a_poisoned_archive_is_one_line_and_exit_1(store, real, tmp_path):
    store.leases.release()
    path = oci_archive(tmp_path / "evil.tar", EVIL, real.diff_ids[0])
    out = subprocess.run([sys.executable, "-m", "builder.cli", "--root", store.root, "load", "-i", path],
                         capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert path in out.stderr and real.diff_ids[0] in out.stderr
    check = subprocess.run([sys.executable, "-m", "builder.cli", "--root", store.root, "system", "check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
