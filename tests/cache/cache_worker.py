"""A small program the crash and concurrency tests run in real subprocesses against one store.

    python cache_worker.py crash ROOT UPPERDIR PREFIX      loop: put, pack, commit, tag, unpack
    python cache_worker.py race ROOT UPPERDIR N GO_FILE    one round, started together with the others

Every tag is printed (and flushed) only after store.tag returned: the tests hold the store to it.
"""
from __future__ import annotations

import os
import sys
import time

from cache.image import Image
from cache.layers import pack_diff
from cache.store import Store


def crash(root: str, upper: str, prefix: str) -> None:
    store = Store.open(root)
    n = 0
    while True:
        n += 1
        store.blobs.put_bytes(os.urandom(200_000))
        with open(os.path.join(upper, "counter"), "w") as f:
            f.write(f"{prefix}-{n}")
        layer = pack_diff(upper, store, "gzip" if n % 2 else "zstd")
        img = Image.empty(architecture="amd64").with_layer(layer, {"created_by": f"{prefix} {n}"})
        store.tag(f"crash/{prefix}:{n}", img)
        print(f"TAGGED crash/{prefix}:{n} {img.id}", flush=True)
        store.unpacked_layer(layer.diff_id)


def race(root: str, upper: str, n: str, go: str) -> None:
    store = Store.open(root)
    while not os.path.exists(go):
        time.sleep(0.001)
    same = store.blobs.put_bytes(b"same content in every process" * 1000)
    mine = store.blobs.put_bytes(f"process {n}".encode() * 1000)
    layer = pack_diff(upper, store, source_date_epoch=0)  # identical in every process
    img = Image.empty(architecture="amd64").with_layer(layer, {"created_by": "shared"}).with_config(Env=[f"N={n}"])
    store.tag(f"race/p{n}", img)
    store.tag("race/shared", img)
    path = store.unpacked_layer(layer.diff_id)
    print(same.digest, mine.digest, layer.diff_id, img.id, path, flush=True)


if __name__ == "__main__":
    {"crash": crash, "race": race}[sys.argv[1]](*sys.argv[2:])
