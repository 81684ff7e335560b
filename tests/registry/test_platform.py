"""A multi-arch index, pushed by hand (two tiny images + an index): pull picks this host's
platform by default, another with --platform, and says what is offered when nothing fits."""
from __future__ import annotations

import json

import pytest

from cache import mediatypes as mt
from cache.image import host_architecture
from cache.registry import RegistryError, pull, push
from cache.registry.pusher import put_manifest
from cache.registry.transport import Client
from cache.store import Store
from reghelpers import tiny_image

pytestmark = pytest.mark.registry

PLATFORMS = [("amd64", None), ("arm64", "v8")]


@pytest.fixture(scope="module", params=[mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST], ids=["oci-index", "docker-list"])
def multi(request, tmp_path_factory, registry):
    """repository multi-oci / multi-docker: tag 1 is an index of an amd64 and an arm64/v8 image."""
    index_type = request.param
    repo = "multi-oci" if index_type == mt.OCI_INDEX else "multi-docker"
    store = Store.open(str(tmp_path_factory.mktemp("multi") / "store"))
    manifests, digests = [], {}
    for arch, variant in PLATFORMS:
        fields = {"architecture": arch, **({"variant": variant} if variant else {})}
        img = tiny_image(store, None, {"arch": arch.encode()}, **fields)
        digest = push(store, img, f"{registry.host}/{repo}@{img.digest}")
        platform = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        manifests.append({"mediaType": img.manifest.get("mediaType", mt.OCI_MANIFEST), "digest": digest,
                          "size": len(store.blobs.get(digest)), "platform": platform})
        digests[arch] = digest
    index = {"schemaVersion": 2, "mediaType": index_type, "manifests": manifests}
    raw = json.dumps(index, indent=2).encode()
    index_digest = put_manifest(Client(registry.host), repo, "1", raw, index_type)
    return f"{registry.host}/{repo}:1", digests, index_digest


def test_default_is_this_host(multi, clean_store):
    ref, digests, _ = multi
    img = pull(clean_store, ref)
    assert img.config["architecture"] == host_architecture()
    assert img.digest == digests[host_architecture()]


@pytest.mark.parametrize("platform,arch", [("linux/arm64", "arm64"), ("linux/arm64/v8", "arm64"),
                                           ("linux/amd64", "amd64")])
def test_platform_flag_picks_the_manifest(multi, clean_store, platform, arch):
    ref, digests, index_digest = multi
    img = pull(clean_store, ref, platform)
    assert img.digest == digests[arch] and img.config["architecture"] == arch
    assert clean_store.blobs.exists(index_digest)  # the index is kept too


def test_a_platform_not_offered_is_named_with_what_is(multi, clean_store):
    ref, _, _ = multi
    with pytest.raises(RegistryError) as err:
        pull(clean_store, ref, "linux/s390x")
    msg = str(err.value)
    assert "linux/s390x" in msg and "linux/amd64" in msg and "linux/arm64/v8" in msg


def test_bad_platform_is_a_usage_error(multi, clean_store):
    from grammar.errors import UsageError

    with pytest.raises(UsageError):
        pull(clean_store, multi[0], "arm64")


def test_pull_by_index_digest(multi, clean_store, registry):
    ref, digests, index_digest = multi
    repo = ref.split("/", 1)[1].split(":")[0]
    img = pull(clean_store, f"{registry.host}/{repo}@{index_digest}", "linux/arm64")
    assert img.digest == digests["arm64"]


def test_cli_platform(multi, pybuild, tmp_path):
    ref, digests, _ = multi
    out = pybuild("pull", "-q", "--platform", "linux/arm64", ref, root=tmp_path / "s")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == digests["arm64"]


@pytest.mark.parametrize("policy", ["missing", "never"])
def test_ensure_image_pulls_again_for_another_platform(multi, clean_store, policy):
    from cache.errors import ImageNotFound
    from cache.registry import ensure_image

    ref, digests, _ = multi
    assert ensure_image(clean_store, ref).digest == digests[host_architecture()]
    assert ensure_image(clean_store, ref, policy).digest == digests[host_architecture()]  # no platform: the store's
    other = "arm64" if host_architecture() != "arm64" else "amd64"
    if policy == "never":
        with pytest.raises(ImageNotFound):
            ensure_image(clean_store, ref, policy, f"linux/{other}")
    else:
        assert ensure_image(clean_store, ref, policy, f"linux/{other}").digest == digests[other]


def test_build_platform_picks_the_base(multi, pybuild, tmp_path):
    ref, digests, _ = multi
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {ref}\nENV X=1\n")
    root = tmp_path / "s"
    for arch in ("arm64", "amd64", "arm64"):
        out = pybuild("build", "-q", "--platform", f"linux/{arch}", "-t", f"t:{arch}", str(ctx), root=root)
        assert out.returncode == 0, out.stderr
        assert Store.open(str(root)).resolve(f"t:{arch}").config["architecture"] == arch
