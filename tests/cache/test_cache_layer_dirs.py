"""Store.layer_dirs: an image's stack as overlay lowerdirs, never the same directory twice, even when
the image holds two identical layers (`RUN true` twice, COPY then ADD of one file); and gc knows the
chain-id directories that repeats get."""
from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from cache import gc
from cache.archive import store_layer_stream
from cache.image import Image, chain_ids
from cache.store import layer_keys

A, B, C = ("sha256:" + c * 64 for c in "abc")


def _chain(diff_ids: list[str], i: int) -> str:
    return chain_ids(diff_ids)[i]


@pytest.mark.parametrize("diff_ids,expected", [
    ([], []),
    ([A], [A]),
    ([A, B, C], [A, B, C]),
    # a repeat is keyed by the chain id of its own position; the first occurrence keeps its diff_id
    ([A, A], [A, _chain([A, A], 1)]),
    ([A, B, A], [A, B, _chain([A, B, A], 2)]),
    ([A, A, A], [A, _chain([A, A, A], 1), _chain([A, A, A], 2)]),
    ([B, A, A], [B, A, _chain([B, A, A], 2)]),
])
def test_layer_keys(diff_ids, expected):
    keys = layer_keys(diff_ids)
    assert keys == expected
    assert len(set(keys)) == len(keys)  # what overlayfs needs: no lowerdir named twice


def _layer(store, name: str, text: str):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text.encode()))
    return store_layer_stream(store, io.BytesIO(buf.getvalue()), "gzip")


def _image_with_a_repeat(store):
    """base, x, x: the top two layers are byte-for-byte the same."""
    base, x = _layer(store, "base", "b"), _layer(store, "x", "x")
    img = Image.empty(architecture="amd64")
    for layer in (base, x, x):
        img = img.with_layer(layer, {"created_by": "test"})
    return store.commit(img)


def test_layer_dirs_top_most_first_and_distinct(store):
    img = _image_with_a_repeat(store)
    dirs = store.layer_dirs(img.diff_ids)
    base, x, _ = img.diff_ids
    layers = os.path.join(store.root, "layers")
    assert dirs == [os.path.join(layers, img.chain_ids[2][7:]), os.path.join(layers, x[7:]),
                    os.path.join(layers, base[7:])]
    assert [sorted(os.listdir(d)) for d in dirs] == [["x"], ["x"], ["base"]]
    assert store.layer_dirs(img.diff_ids) == dirs and os.listdir(store.tmp) == []  # extracted once
    assert store.unpacked_layer(x) == dirs[1]  # the first occurrence is the layer's usual dir


def _age_everything(store) -> None:
    for sub in ("layers", "blobs/sha256", "diffids"):
        for name in os.listdir(store._p(sub)):
            os.utime(store._p(sub, name), (1_000_000_000, 1_000_000_000))


def test_gc_keeps_chain_dirs_while_an_image_or_a_container_names_them(store):
    img = _image_with_a_repeat(store)
    store.tag("twice:1", img)
    repeat_dir = store.layer_dirs(img.diff_ids)[0]
    store.leases.release()
    _age_everything(store)
    assert gc.collect(store).layers == () and os.path.isdir(repeat_dir)

    # untagged, but a container of it still runs: the record names its diff_ids, not the chain id
    os.makedirs(store._p("containers", "c1"))
    with open(store._p("containers", "c1", "config.json"), "w") as f:
        json.dump({"config": {"image_id": img.id, "diff_ids": img.diff_ids}}, f)
    store.untag("twice:1")
    store.remove_image(img.digest)
    assert gc.collect(store).layers == () and os.path.isdir(repeat_dir)

    os.unlink(store._p("containers", "c1", "config.json"))
    collected = gc.collect(store).layers
    assert set(collected) == {img.chain_ids[2], *img.diff_ids} and not os.path.exists(repeat_dir)
    assert os.listdir(store._p("layers")) == []
