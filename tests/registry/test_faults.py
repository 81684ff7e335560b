"""What a registry (or the path to it) gets wrong, through the fault proxy in front of a real
registry: retried when it passes (500, 429 with Retry-After, a cut body resumed with Range),
refused with a clear error when it does not (wrong bytes, wrong manifest digest, a body always
cut), and the store stays clean either way."""
from __future__ import annotations

import hashlib
import json

import pytest

from cache import gc
from cache.errors import DigestMismatch
from cache.registry import RegistryError, TransientError, push
from cache.registry.puller import pull
from cache.registry.transport import Client
from reghelpers import tiny_image
from regservers import Fault

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def small(seed, registry):
    """A two-layer image of a few hundred KB, pushed as small:1; returns (image, digest)."""
    import os

    img = tiny_image(seed.store, None, {"a.bin": os.urandom(200_000)})
    img2 = tiny_image(seed.store, None, {"b.bin": os.urandom(300_000)})
    both = seed.store.commit(img.with_layer(_layer(img2), {"created_by": "second"}))
    digest = push(seed.store, both, f"{registry.host}/small:1")
    return both, digest


def _layer(image):
    from cache.layers import Layer

    return Layer(image.layers[0], image.diff_ids[0], image.layers[0].size)


def _pull(store, faults, ref="small:1", naps=None):
    client = Client(faults.host, sleep=(naps.append if naps is not None else lambda s: None))
    return pull(store, f"{faults.host}/{ref}", client=client)


def _blob(image, n=0):
    return image.layers[n].digest


@pytest.mark.parametrize("status,times", [(500, 2), (502, 1), (503, 3)])
def test_server_errors_are_retried(small, clean_store, faults, status, times):
    image, digest = small
    faults.add(Fault(r"GET /v2/small/manifests/", "status", status, times=times),
               Fault(r"GET /v2/small/blobs/" + _blob(image), "status", status, times=times))
    naps: list[float] = []
    assert _pull(clean_store, faults, naps=naps).digest == digest
    assert len(naps) >= times and gc.check(clean_store) == []


def test_429_waits_as_long_as_retry_after_says(small, clean_store, faults):
    image, digest = small
    faults.add(Fault(r"GET /v2/small/blobs/" + _blob(image, 1), "status", 429, headers={"Retry-After": "7"}))
    naps: list[float] = []
    assert _pull(clean_store, faults, naps=naps).digest == digest
    assert 7.0 in naps


def test_persistent_500_gives_up_naming_the_registry_and_repository(small, clean_store, faults):
    faults.add(Fault(r"GET /v2/small/manifests/", "status", 500, times=None))
    with pytest.raises(TransientError) as err:
        _pull(clean_store, faults)
    assert f"{faults.host}/small" in str(err.value) and "500" in str(err.value)
    assert gc.check(clean_store) == []


def test_a_cut_download_resumes_with_range(small, clean_store, faults):
    image, digest = small
    layer = image.layers[1]
    faults.add(Fault(r"GET /v2/small/blobs/" + layer.digest, "truncate", layer.size // 3))
    assert _pull(clean_store, faults).digest == digest
    gets = faults.requests("GET", layer.digest)
    assert len(gets) == 2
    start = int(gets[1][2]["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= layer.size // 3
    assert gc.check(clean_store) == []


def test_a_layer_always_cut_is_refused_and_nothing_enters_the_store(small, clean_store, faults):
    image, _ = small
    layer = image.layers[0]
    faults.add(Fault(r"GET /v2/small/blobs/" + layer.digest + "$", "truncate", 1000, times=None),
               Fault(r"GET /v2/small/blobs/" + layer.digest, "status", 416, times=None))
    with pytest.raises(RegistryError) as err:
        _pull(clean_store, faults)
    msg = str(err.value)
    assert f"{faults.host}/small" in msg and layer.digest in msg
    assert not clean_store.blobs.exists(layer.digest)
    assert gc.check(clean_store) == []


def test_a_corrupted_blob_is_refused(small, clean_store, faults):
    image, _ = small
    layer = image.layers[1]
    faults.add(Fault(r"GET /v2/small/blobs/" + layer.digest, "corrupt"))
    with pytest.raises(DigestMismatch) as err:
        _pull(clean_store, faults)
    assert layer.digest in str(err.value) and "small" in str(err.value)
    assert not clean_store.blobs.exists(layer.digest)
    assert gc.check(clean_store) == [] and clean_store.list_images() == []


def test_a_corrupted_config_is_refused(small, clean_store, faults):
    image, _ = small
    faults.add(Fault(r"GET /v2/small/blobs/" + image.id, "corrupt"))
    with pytest.raises(DigestMismatch):
        _pull(clean_store, faults)
    assert gc.check(clean_store) == [] and clean_store.list_images() == []


def test_a_manifest_that_does_not_match_its_digest_is_refused(small, clean_store, faults):
    image, digest = small
    other = json.dumps({**image.manifest, "annotations": {"evil": "yes"}}).encode()
    faults.add(Fault(r"GET /v2/small/manifests/" + digest, "replace", other))
    with pytest.raises(DigestMismatch) as err:
        _pull(clean_store, faults, ref=f"small@{digest}")
    assert digest in str(err.value) and "sha256:" + hashlib.sha256(other).hexdigest() in str(err.value)
    assert gc.check(clean_store) == [] and clean_store.list_images() == []


def test_a_tag_whose_manifest_differs_from_docker_content_digest_is_refused(small, clean_store, faults):
    image, digest = small
    other = json.dumps({**image.manifest, "annotations": {"evil": "yes"}}).encode()
    faults.add(Fault(r"GET /v2/small/manifests/1", "replace", other))
    with pytest.raises(DigestMismatch) as err:
        _pull(clean_store, faults)
    assert "Docker-Content-Digest" in str(err.value)


def test_a_slow_stream_still_arrives(small, clean_store, faults):
    image, digest = small
    faults.add(Fault(r"GET /v2/small/blobs/" + _blob(image, 1), "slow", 0.05))
    assert _pull(clean_store, faults).digest == digest


def test_push_retries_a_failed_upload_from_scratch(tmp_path, faults, registry):
    import os

    from cache.store import Store

    src = Store.open(str(tmp_path / "src"))
    img = tiny_image(src, None, {"c.bin": os.urandom(50_000)})
    faults.add(Fault(r"PUT /v2/retried/blobs/uploads/", "status", 500, times=1),
               Fault(r"PUT /v2/retried/manifests/", "status", 503, times=1))
    from cache.registry.pusher import push as push_with

    digest = push_with(src, img, f"{faults.host}/retried:1", client=Client(faults.host, sleep=lambda s: None))
    assert len(faults.requests("POST", "/v2/retried/blobs/uploads/")) >= 3  # 2 blobs + the restarted one
    dst = Store.open(str(tmp_path / "dst"))
    assert _pull(dst, faults, "retried:1").digest == digest


def test_cli_failure_is_one_line_and_check_is_clean(small, faults, pybuild, tmp_path):
    image, _ = small
    faults.add(Fault(r"GET /v2/small/blobs/" + _blob(image, 1), "corrupt", times=None))
    out = pybuild("pull", f"{faults.host}/small:1", root=tmp_path / "s")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert _blob(image, 1) in out.stderr
    check = pybuild("system", "check", root=tmp_path / "s")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("body", [
    b"not json at all",
    b"[1, 2]",
    json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}).encode(),
    json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"digest": "sha256:../../../etc/passwd", "size": 10}, "layers": []}).encode(),
    json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"digest": "sha256:" + "a" * 64}, "layers": []}).encode(),
    json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": "nope"}).encode(),
    json.dumps({"schemaVersion": 1, "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"}).encode(),
    json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "b" * 64,
                           "size": 1 << 40}, "layers": []}).encode(),
], ids=["not-json", "a-list", "no-config", "path-in-digest", "no-size", "manifests-not-a-list", "schema1", "huge-config"])
def test_malformed_manifests_are_refused_cleanly(small, clean_store, faults, body):
    """A manifest from a tag (no digest to check it against) that is broken: an error, no traceback."""
    faults.add(Fault(r"GET /v2/small/manifests/1", "replace", body, headers={"Docker-Content-Digest": ""}))
    with pytest.raises(RegistryError) as err:
        _pull(clean_store, faults)
    assert f"{faults.host}/small" in str(err.value)
    assert gc.check(clean_store) == [] and clean_store.list_images() == []


def test_a_cut_download_restarts_when_the_registry_ignores_range(small, clean_store, faults):
    image, digest = small
    layer = image.layers[1]
    faults.add(Fault(r"GET /v2/small/blobs/" + layer.digest, "truncate", layer.size // 2),
               Fault(r"GET /v2/small/blobs/" + layer.digest, "drop-range"))
    assert _pull(clean_store, faults).digest == digest
    assert len(faults.requests("GET", layer.digest)) == 2
    assert clean_store.blobs.verify(layer.digest) is None and gc.check(clean_store) == []


def test_two_processes_pulling_into_one_store_take_turns(small, faults, tmp_path):
    """The second waits on the blob's lock and finds it done: each blob is fetched once, store clean."""
    import subprocess
    import sys

    image, digest = small
    faults.add(Fault(r"GET /v2/small/blobs/", "slow", 0.02, times=None))
    root = tmp_path / "shared"
    cmd = [sys.executable, "-m", "builder.cli", "--root", str(root), "pull", "-q", f"{faults.host}/small:1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert {o[0].strip() for o in outs} == {digest}
    for layer in image.layers:
        assert len(faults.requests("GET", layer.digest)) == 1
    from cache.store import Store

    assert gc.check(Store.open(str(root))) == []


def test_blobs_redirected_to_another_host_are_followed(small, clean_store, faults):
    """Docker Hub answers a blob GET with 307 to a CDN: followed, and still verified."""
    image, digest = small
    faults.add(Fault(r"GET /v2/small/blobs/", "redirect", times=None))
    assert _pull(clean_store, faults).digest == digest
    assert len(faults.requests("GET", "/blobs/")) == len(image.layers) + 1
    assert gc.check(clean_store) == []
