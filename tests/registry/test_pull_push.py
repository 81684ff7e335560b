"""Pull and push against a real docker-registry: digests kept, nothing fetched twice, blobs the
registry has never sent again, cross-repository mounts, chunked uploads, media types."""
from __future__ import annotations

import json
import os

import pytest
import requests

from cache import gc
from cache import mediatypes as mt
from cache.registry import pull, push
from cache.store import Store
from reghelpers import tiny_image

pytestmark = pytest.mark.registry


def test_clean_store_pulls_the_pushed_base_with_its_digest(seed, clean_store, faults):
    remote = seed.remote.replace(seed.remote.split("/")[0], faults.host)
    events: list[dict] = []
    img = pull(clean_store, remote, progress=events.append)
    assert img.digest == seed.digest == seed.base.digest
    assert img.id == seed.base.id
    assert clean_store.resolve(remote).digest == seed.digest
    assert gc.check(clean_store) == []
    layer = seed.base.layers[0]
    done = [e for e in events if e["kind"] == "transfer" and e["action"] == "pull" and e["done"] == e["total"]]
    assert {e["id"] for e in done} >= {layer.digest[7:19]}
    # pulled again: the manifest is read, no blob is fetched
    faults.clear()
    assert pull(clean_store, remote).digest == seed.digest
    assert faults.requests("GET", "/blobs/") == []


def test_pull_by_digest_stays_untagged(seed, clean_store, registry):
    name = f"{registry.host}/debian@{seed.digest}"
    img = pull(clean_store, name)
    assert img.digest == seed.digest
    assert [r for r, _ in clean_store.list_images() if r] == []


def test_second_push_only_asks(seed, faults):
    dest = f"{faults.host}/debian:bookworm"
    assert push(seed.store, seed.base, dest) == seed.digest
    assert faults.requests("HEAD", "/blobs/")
    assert faults.requests("POST") == [] and faults.requests("PATCH") == []
    assert [r[1] for r in faults.requests("PUT")] == ["/v2/debian/manifests/bookworm"]


def test_push_mounts_blobs_from_another_repository(seed, faults, registry):
    digest = push(seed.store, seed.base, f"{faults.host}/copies/debian:mounted")
    assert digest == seed.digest
    mounts = faults.requests("POST", r"mount=sha256")
    assert mounts and all("from=debian" in path for _, path, _ in mounts)
    assert faults.requests("PATCH") == []
    manifest = requests.get(f"http://{registry.host}/v2/copies/debian/manifests/mounted",
                            headers={"Accept": mt.OCI_MANIFEST}, timeout=10)
    assert manifest.headers["Docker-Content-Digest"] == seed.digest


def test_manifest_put_with_its_media_type_and_exact_bytes(seed, registry):
    resp = requests.get(f"http://{registry.host}/v2/debian/manifests/bookworm",
                        headers={"Accept": f"{mt.OCI_MANIFEST}, {mt.DOCKER_MANIFEST}"}, timeout=10)
    assert resp.headers["Content-Type"] == seed.base.manifest.get("mediaType", mt.OCI_MANIFEST)
    assert resp.content == seed.store.blobs.get(seed.digest)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_layers_of_each_compression_round_trip(tmp_path, registry, compression):
    from cache.archive import store_layer_stream
    from cache.image import Image
    from reghelpers import tar_of
    import io

    src = Store.open(str(tmp_path / "src"))
    layer = store_layer_stream(src, io.BytesIO(tar_of({"etc/which": compression.encode()})), compression=compression)
    img = src.commit(Image.empty().with_layer(layer, {"created_by": "test"}))
    ref = f"{registry.host}/compressions:{compression}"
    digest = push(src, img, ref)
    dst = Store.open(str(tmp_path / "dst"))
    got = pull(dst, ref)
    assert got.digest == digest and got.layers[0].media_type == img.layers[0].media_type
    assert gc.check(dst) == []


def test_chunked_upload_of_a_big_blob(tmp_path, registry, faults, monkeypatch):
    """Blobs above CHUNKED_ABOVE go up in PATCHes with Content-Range, then PUT ?digest=."""
    from cache.registry import push as push_mod_api  # noqa: F401  (the public name stays importable)
    import cache.registry.pusher as push_mod

    monkeypatch.setattr(push_mod, "CHUNKED_ABOVE", 1000)
    monkeypatch.setattr(push_mod, "CHUNK_SIZE", 4096)
    src = Store.open(str(tmp_path / "src"))
    img = tiny_image(src, None, {f"f{i}": os.urandom(4096) for i in range(8)})  # incompressible
    digest = push(src, img, f"{faults.host}/chunked:1")
    patches = faults.requests("PATCH")
    assert len(patches) >= 2
    ranges = [h.get("Content-Range") for _, _, h in patches]
    assert ranges[0].startswith("0-") and all(ranges)
    dst = Store.open(str(tmp_path / "dst"))
    assert pull(dst, f"{registry.host}/chunked:1").digest == digest


def test_unknown_tag_and_repository_are_clear_errors(registry, clean_store):
    from cache.registry import NotFound

    with pytest.raises(NotFound) as err:
        pull(clean_store, f"{registry.host}/debian:no-such-tag")
    message = str(err.value)
    assert registry.host in message and "debian" in message and "no-such-tag" in message


def test_unreachable_registry_gives_up_with_a_clear_error(clean_store):
    from regservers import free_port

    from cache.registry import RegistryError
    from cache.registry.puller import pull as pull_with
    from cache.registry.transport import Client

    host = f"127.0.0.1:{free_port()}"
    naps: list[float] = []
    with pytest.raises(RegistryError) as err:
        pull_with(clean_store, f"{host}/x:1", client=Client(host, sleep=naps.append))
    assert host in str(err.value) and "giving up" in str(err.value)
    assert len(naps) >= 3 and naps == sorted(naps)  # exponential backoff


def test_cli_pull_and_push(pybuild, seed, registry, tmp_path):
    out = pybuild("pull", "-q", seed.remote, root=tmp_path / "a")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == seed.digest
    out = pybuild("push", seed.remote, f"{registry.host}/cli/debian:pushed", root=tmp_path / "a")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == seed.digest
    out = pybuild("pull", f"{registry.host}/debian:nope", root=tmp_path / "a")
    assert out.returncode == 1 and "nope" in out.stderr and "Traceback" not in out.stderr


def test_registry_manifest_is_an_oci_image_skopeo_reads(seed, registry):
    import subprocess

    out = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{seed.remote}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["config"]["digest"] == seed.base.id


@pytest.mark.parametrize("policy,present,fetches_manifest", [
    ("missing", True, False), ("missing", False, True),
    ("always", True, True), ("always", False, True),
    ("never", True, False),
])
def test_ensure_image_policies(seed, clean_store, faults, policy, present, fetches_manifest):
    from cache.registry import ensure_image

    ref = f"{faults.host}/debian:bookworm"
    if present:
        pull(clean_store, ref)
        faults.clear()
    img = ensure_image(clean_store, ref, policy)
    assert img.digest == seed.digest
    assert bool(faults.requests("GET", "/manifests/")) == fetches_manifest
    if present:
        assert faults.requests("GET", "/blobs/") == []  # always re-checks the tag, never refetches blobs


def test_ensure_image_never_and_a_bad_policy(clean_store, registry):
    from cache.errors import ImageNotFound
    from cache.registry import ensure_image
    from grammar.errors import UsageError

    with pytest.raises(ImageNotFound):
        ensure_image(clean_store, f"{registry.host}/debian:bookworm", "never")
    with pytest.raises(UsageError):
        ensure_image(clean_store, f"{registry.host}/debian:bookworm", "sometimes")


def test_cli_build_pull_flag(pybuild, seed, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {seed.remote}\nENV GREETING=hi\n")
    out = pybuild("build", "--pull=sometimes", str(ctx))
    assert out.returncode == 2 and "--pull" in out.stderr
    out = pybuild("build", "--pull=never", str(ctx))
    assert out.returncode == 1 and "--pull=never" in out.stderr and "Traceback" not in out.stderr
    out = pybuild("build", "--pull=missing", "-t", "greet", str(ctx))
    assert out.returncode == 0, out.stderr
    out = pybuild("build", "--pull=always", "--progress", "plain", "-t", "greet", str(ctx))
    assert out.returncode == 0, out.stderr
    assert "already there" in out.stderr  # the tag re-read; its blobs not fetched again


def test_a_server_that_is_no_registry(clean_store):
    """A web server answering 404 on /v2/: named as not a registry."""
    from http.server import BaseHTTPRequestHandler

    from cache.registry import RegistryError
    from regservers import serve

    class NotARegistry(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    server, host = serve(NotARegistry)
    try:
        with pytest.raises(RegistryError) as err:
            pull(clean_store, f"{host}/x:1")
        assert "no registry API" in str(err.value) and host in str(err.value)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.interop
@pytest.mark.parametrize("fmt,media_type", [("v2s2", mt.DOCKER_MANIFEST), ("oci", mt.OCI_MANIFEST)])
def test_pull_what_skopeo_pushed(tmp_path, registry, fmt, media_type):
    """skopeo pushes a tiny image as Docker schema 2 or OCI; pybuild pulls and unpacks it."""
    import subprocess

    from cache.reference import parse_reference

    src = Store.open(str(tmp_path / "src"))
    tiny_image(src, "skopeo/tiny:1", {"etc/from-skopeo": fmt.encode()})
    remote = f"{registry.host}/skopeo/tiny:{fmt}"
    out = subprocess.run(["skopeo", "copy", "-q", "--format", fmt, "--dest-tls-verify=false",
                          f"oci:{src.root}:{parse_reference('skopeo/tiny:1').name}", f"docker://{remote}"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    dst = Store.open(str(tmp_path / "dst"))
    img = pull(dst, remote)
    assert img.manifest["mediaType"] == media_type
    layer_dir = dst.unpacked_layer(img.diff_ids[0])  # the diff_id checked while unpacking
    with open(os.path.join(layer_dir, "etc", "from-skopeo")) as f:
        assert f.read() == fmt
    assert gc.check(dst) == []


def test_an_impossible_host_name_is_named(clean_store):
    from cache.registry import RegistryError

    host = "a" * 64 + ".test:5000"
    with pytest.raises(RegistryError) as err:
        pull(clean_store, f"{host}/x:1")
    assert "not a valid host name" in str(err.value) and host in str(err.value)


def test_cache_from_a_ref_not_exported_yet_warns_and_builds(pybuild, seed, registry, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {seed.remote}\nENV A=1\n")
    out = pybuild("build", "--progress", "plain", "--cache-from", f"{registry.host}/cache/none:yet", str(ctx))
    assert out.returncode == 0, out.stderr
    assert "warning: --cache-from" in out.stderr and "cache/none" in out.stderr
