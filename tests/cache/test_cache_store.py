"""The store: layout, tags, resolution, commit, build cache, gc, check, sweep."""
from __future__ import annotations

import json
import os
import stat

import pytest

from cache import gc
from cache import mediatypes as mt
from cache.buildcache import CacheEntry
from cache.errors import ImageNotFound, MediaTypeError, StoreError
from cache.image import Descriptor, Image
from cache.layers import Layer
from cache.store import Store


def _layer(store, content: bytes) -> Layer:
    desc = store.blobs.put_bytes(content, mt.OCI_LAYER)
    return Layer(desc, desc.digest, desc.size)


def _image(store, *contents: bytes, **config) -> Image:
    img = Image.empty(architecture="amd64")
    for c in contents:
        img = img.with_layer(_layer(store, c), {"created_by": f"layer {c!r}"})
    return img.with_config(**config) if config else img


def test_layout_is_valid_oci(store, oci_schema):
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700
    for sub in ("blobs/sha256", "layers", "cache", "containers", "work", "tmp", "locks"):
        assert os.path.isdir(os.path.join(store.root, sub))
    store.tag("app:1", _image(store, b"a", Cmd=["sh"]))
    with open(os.path.join(store.root, "oci-layout")) as f:
        oci_schema("layout", json.load(f))
    with open(os.path.join(store.root, "index.json")) as f:
        index = json.load(f)
    oci_schema("index", index)
    assert index["manifests"][0]["annotations"][mt.REF_NAME] == "docker.io/library/app:1"
    img = store.resolve("app:1")
    oci_schema("manifest", img.manifest)
    oci_schema("config", img.config)


def test_tag_resolve_by_name_id_and_digest(store):
    img = store.commit(_image(store, b"a"))
    store.tag("docker.io/library/app", img)
    for name in ("app", "app:latest", "library/app", img.id, img.id[7:], img.short_id, img.id[7:12],
                 img.digest, f"app@{img.digest}"):
        assert store.resolve(name).digest == img.digest, name
    with pytest.raises(ImageNotFound):
        store.resolve("other")
    with pytest.raises(ImageNotFound):
        store.resolve("sha256:" + "f" * 64)


def test_moving_a_tag_leaves_the_old_image_as_none(store):
    a, b = _image(store, b"a"), _image(store, b"b")
    store.tag("app", a)
    store.tag("app", b)
    listed = store.list_images()
    assert [(ref, img.id) for ref, img in listed] == [("docker.io/library/app:latest", b.id), (None, a.id)]
    store.untag("app")
    assert sorted(img.id for _, img in store.list_images()) == sorted([a.id, b.id])
    with pytest.raises(ImageNotFound):
        store.untag("app")


def test_tag_with_digest_is_refused(store):
    with pytest.raises(StoreError):
        store.tag("app@sha256:" + "a" * 64, _image(store, b"a"))


def test_ambiguous_short_id(store):
    seen: dict[str, Image] = {}
    for i in range(100_000):  # ids are computed in memory; only the colliding pair is stored
        img = Image.empty(architecture="amd64").with_config(Labels={"n": str(i)})
        if img.id[7:11] in seen:
            break
        seen[img.id[7:11]] = img
    store.commit(img)
    store.commit(seen[img.id[7:11]])
    with pytest.raises(StoreError, match="ambiguous"):
        store.resolve(img.id[7:11])
    assert store.resolve(img.id[7:30]).id == img.id


@pytest.mark.parametrize("manifest, error", [
    ({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}, "image index, not a manifest"),
    ({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {"mediaType": mt.OCI_LAYER_GZIP, "digest": "sha256:" + "1" * 64, "size": 1}, "layers": []}, "not an image config"),
    ({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {"mediaType": mt.OCI_CONFIG, "digest": "sha256:" + "1" * 64, "size": 1},
      "layers": [{"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "2" * 64, "size": 1}]}, "not a layer"),
    ({"schemaVersion": 2, "mediaType": "text/plain", "config": {}}, "not an image manifest"),
])
def test_media_type_confusion_is_rejected(store, manifest, error):
    desc = store.put_json(manifest, mt.OCI_MANIFEST)
    with pytest.raises(MediaTypeError, match=error):
        store.load_image(desc)


def test_index_holding_layers_is_rejected(store):
    desc = store.put_json({"schemaVersion": 2, "manifests": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": "sha256:" + "1" * 64, "size": 1}]}, mt.OCI_INDEX)
    with pytest.raises(MediaTypeError, match="not a manifest"):
        store.load_image(Descriptor(mt.OCI_INDEX, desc.digest, desc.size))


def test_build_cache_roundtrip_and_gc_keeps_its_blobs(store):
    layer = _layer(store, b"cached layer")
    orphan = _layer(store, b"nobody needs me")
    key = "0123456789abcdef0123456789abcdef"
    store.build_cache.put(key, CacheEntry(layer.descriptor, layer.diff_id, history={"created_by": "RUN x"}))
    store.build_cache.put("f" * 32, CacheEntry(config={"Env": ["A=1"]}, history={"created_by": "ENV A=1"}))
    got = store.build_cache.get(key)
    assert got.layer == layer.descriptor and got.diff_id == layer.diff_id and got.history == {"created_by": "RUN x"}
    assert store.build_cache.get("f" * 32).config == {"Env": ["A=1"]}
    assert store.build_cache.get("e" * 32) is None
    with pytest.raises(ValueError):
        store.build_cache.get("../../etc/passwd")
    result = gc.collect(store)
    assert result.blobs == (orphan.descriptor.digest,)
    assert store.blobs.exists(layer.descriptor.digest)


def test_gc_keeps_tagged_and_frees_removed(store):
    img = store.commit(_image(store, b"x", b"y"))
    store.tag("keep", img)
    other = store.commit(_image(store, b"z"))
    assert gc.collect(store).blobs == ()
    store.remove_image(other.digest)
    freed = set(gc.collect(store).blobs)
    assert freed == {other.digest, other.id, other.layers[0].digest}
    assert gc.check(store) == []


def test_prune_images_drops_only_none(store):
    keep = _image(store, b"k")
    store.tag("keep", keep)
    dangling = store.commit(_image(store, b"d"))
    assert gc.prune_images(store) == [dangling.digest]
    assert [ref for ref, _ in store.list_images()] == ["docker.io/library/keep:latest"]
    kept = store.resolve("keep").digest
    assert gc.prune_images(store, all_images=True) == [kept]


def test_check_names_damage(store):
    img = _image(store, b"a", b"b")
    store.tag("app", img)
    assert gc.check(store) == []
    with open(store.blobs.path(img.layers[0].digest), "ab") as f:
        f.write(b"!")
    os.unlink(store.blobs.path(img.layers[1].digest))
    problems = gc.check(store)
    assert any(img.layers[0].digest in p and "hashes to" in p for p in problems)
    assert any(img.layers[1].digest in p and "missing" in p for p in problems)


def test_commit_refuses_missing_layers(store):
    desc = Descriptor(mt.OCI_LAYER_GZIP, "sha256:" + "9" * 64, 5)
    with pytest.raises(StoreError, match="missing"):
        store.commit(Image.empty().with_layer(Layer(desc, "sha256:" + "8" * 64, 9)))


def test_open_sweeps_dead_temp_files_only(tmp_path):
    s = Store.open(str(tmp_path / "s"))
    dead = os.path.join(s.tmp, "blob-999999999-abc")
    mine = os.path.join(s.tmp, f"blob-{os.getpid()}-abc")
    os.mkdir(os.path.join(s.root, "work", "build-999999999-x"))
    os.mkdir(os.path.join(s.root, "work", "not-made-by-us"))
    for p in (dead, mine):
        open(p, "w").close()
    Store.open(s.root)
    assert os.listdir(s.tmp) == [os.path.basename(mine)]
    assert os.listdir(os.path.join(s.root, "work")) == ["not-made-by-us"]


def test_work_dir_is_removed(store):
    with store.work_dir("build") as d:
        open(os.path.join(d, "f"), "w").close()
    assert not os.path.exists(d)


def test_commit_keeps_a_registry_manifest_digest(store):
    """Pulled images keep the registry's manifest bytes (and so their digest), not canonical JSON."""
    img = _image(store, b"a")
    raw = json.dumps(img.manifest, indent=3).encode()  # not canonical: a registry's own formatting
    stored = store.commit(Image(img.manifest, img.config, None, img.config_bytes), manifest_bytes=raw)
    assert stored.digest == "sha256:" + __import__("hashlib").sha256(raw).hexdigest()
    again = store.commit(store.load_image(stored.manifest_descriptor))
    assert again.digest == stored.digest
    with pytest.raises(StoreError, match="do not match"):
        store.commit(img, manifest_bytes=b'{"schemaVersion": 2}')


@pytest.mark.root
def test_adopt_unpacked_layer(store, tmp_path):
    from cache.layers import pack_diff

    with store.work_dir("build") as work:
        upper = os.path.join(work, "upper")
        os.makedirs(os.path.join(upper, "etc"))
        open(os.path.join(upper, "etc", "f"), "w").close()
        layer = pack_diff(upper, store)
        path = store.adopt_unpacked_layer(layer.diff_id, upper)
        assert not os.path.exists(upper) and os.path.isfile(os.path.join(path, "etc", "f"))
    assert store.unpacked_layer(layer.diff_id) == path


def test_a_damaged_image_does_not_hide_the_others(store):
    good = store.commit(_image(store, b"good"))
    bad = store.commit(_image(store, b"bad"))
    os.unlink(store.blobs.path(bad.id))  # its config is gone
    assert store.resolve(good.short_id).id == good.id
    assert [img.id for _, img in store.list_images()] == [good.id]
    assert any(bad.id in p for p in gc.check(store))


def test_hex_word_can_be_a_repository_name(store):
    img = _image(store, b"c")
    store.tag("cafe", img)
    assert store.resolve("cafe").id == img.id


@pytest.mark.root
def test_reads_docker_schema2_images(store, tmp_path):
    """A manifest as Docker Hub serves it: Docker media types throughout, gzip layer."""
    import gzip
    import io

    from cache import archive
    from cache_tarmaker import entry as E
    from cache_tarmaker import make_tar

    plain = make_tar([E("etc/", "dir"), E("etc/hostname", data=b"docker\n")])
    layer = store.blobs.put_bytes(gzip.compress(plain, mtime=0), mt.DOCKER_LAYER_GZIP)
    diff_id = Descriptor.of_bytes(plain, mt.OCI_LAYER).digest
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"], "Healthcheck": {"Test": ["NONE"]}},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_desc = store.blobs.put_bytes(config, mt.DOCKER_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                "config": {"mediaType": mt.DOCKER_CONFIG, "digest": config_desc.digest, "size": config_desc.size},
                "layers": [{"mediaType": mt.DOCKER_LAYER_GZIP, "digest": layer.digest, "size": layer.size}]}
    raw = json.dumps(manifest, indent=3).encode()
    img = store.commit(Image(manifest, json.loads(config), None, config), manifest_bytes=raw)
    store.tag("hub/image:1", img)
    got = store.resolve("hub/image:1")
    assert got.digest == Descriptor.of_bytes(raw, "").digest and got.id == config_desc.digest
    assert got.manifest_descriptor.media_type == mt.DOCKER_MANIFEST
    assert got.config_section["Healthcheck"] == {"Test": ["NONE"]}
    assert os.path.isfile(os.path.join(store.unpacked_layer(diff_id), "etc", "hostname"))
    archive.unpack(store, got, str(tmp_path / "r"))
    assert (tmp_path / "r" / "etc" / "hostname").read_bytes() == b"docker\n"
    assert gc.check(store) == []
    assert got.with_config(User="x").manifest["mediaType"] == mt.OCI_MANIFEST  # written back as OCI
