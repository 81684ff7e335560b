"""Layer pack+compress and unpack throughput: pybuild against `tar | gzip` and `tar | pigz`.

    .venv/bin/python bench/bench_layers.py [--size-mb 500] [--tree DIR]

Makes (once) a ~500 MB tree of mixed files — many small text files, medium half-compressible
files, a few large ones — then, in one run, times each tool packing it into a gzip layer and
unpacking that layer again, and prints MB/s (of tree bytes) with the ratio to pybuild.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cache.compression import decompress_reader  # noqa: E402
from cache.extract import extract_tar  # noqa: E402
from cache.layers import pack_diff  # noqa: E402
from cache.store import Store  # noqa: E402


def make_tree(root: str, size_mb: int, seed: int = 7) -> int:
    """Deterministic mixed content; returns the bytes written."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(5000)]
    text = b" ".join(rng.choice(words) for _ in range(400_000))  # ~2.6 MB of compressible text
    budget = size_mb << 20
    total = 0
    plan = [("small", 0.35, lambda: rng.randint(512, 16384)), ("medium", 0.30, lambda: rng.randint(256 << 10, 2 << 20)),
            ("large", 0.35, lambda: 32 << 20)]
    for kind, share, size_of in plan:
        part, n = 0, 0
        while part < budget * share:
            size = size_of()
            d = os.path.join(root, kind, f"d{n // 200:03d}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{n:05d}"), "wb") as f:
                if kind == "small":
                    off = rng.randrange(len(text) - size)
                    f.write(text[off:off + size])
                else:  # half text, half random: realistic mix of binaries and data
                    half = size // 2
                    off = rng.randrange(len(text) - half) if half < len(text) else 0
                    f.write((text * (half // len(text) + 1))[off:off + half] if half >= len(text) else text[off:off + half])
                    f.write(rng.randbytes(size - half))
            part += size
            n += 1
        total += part
    return total


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sh(cmd: str) -> None:
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=500)
    ap.add_argument("--tree", default=None, help="reuse or create the tree here")
    args = ap.parse_args()
    for tool in ("tar", "gzip", "pigz"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    work = tempfile.mkdtemp(prefix="bench-layers-")
    try:
        tree = args.tree or os.path.join(work, "tree")
        if not os.path.isdir(tree):
            os.makedirs(tree)
            make_tree(tree, args.size_mb)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree) for f in fs)
        sh(f"tar -cf - -C {tree} . > /dev/null")  # warm the page cache for everyone alike
        store = Store.open(os.path.join(work, "store"))
        res: dict[str, tuple[float, float, int]] = {}

        layer = None

        def ours_pack():
            nonlocal layer
            layer = pack_diff(tree, store, "gzip")
        t_pack = timed(ours_pack)
        blob = store.blobs.path(layer.descriptor.digest)

        def ours_unpack():
            dest = os.path.join(work, "u-ours")
            os.mkdir(dest)
            with open(blob, "rb") as f:
                extract_tar(decompress_reader(f, "gzip"), dest)
        res["pybuild (isal, threaded)"] = (t_pack, timed(ours_unpack), os.path.getsize(blob))

        for name, comp, decomp in (("tar | gzip", "gzip", "gzip -dc"), ("tar | pigz", "pigz", "pigz -dc")):
            out = os.path.join(work, name.split()[-1] + ".tar.gz")
            dest = os.path.join(work, "u-" + name.split()[-1])
            os.mkdir(dest)
            tp = timed(lambda: sh(f"tar --numeric-owner --xattrs -cf - -C {tree} . | {comp} > {out}"))
            tu = timed(lambda: sh(f"{decomp} {out} | tar --numeric-owner --xattrs -xpf - -C {dest}"))
            res[name] = (tp, tu, os.path.getsize(out))

        mb = size / 1e6
        ours_p, ours_u, _ = res["pybuild (isal, threaded)"]
        print(f"tree: {mb:.0f} MB in {sum(len(fs) for _, _, fs in os.walk(tree))} files, {os.cpu_count()} cores\n")
        print(f"{'tool':<26} {'pack MB/s':>10} {'unpack MB/s':>12} {'gz MB':>8} {'pybuild pack x':>15} {'pybuild unpack x':>17}")
        for name, (tp, tu, gz) in res.items():
            print(f"{name:<26} {mb / tp:>10.0f} {mb / tu:>12.0f} {gz / 1e6:>8.0f} {tp / ours_p:>15.2f} {tu / ours_u:>17.2f}")
        print("\n(x: how many times faster pybuild is than the row's tool; > 1 means pybuild wins)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
