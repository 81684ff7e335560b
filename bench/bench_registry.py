"""Push and pull of a ~300 MB image (uncompressed) against a local docker-registry: pybuild side
by side with `skopeo copy`, in one run.

The image: the debootstrap bookworm base (128 MB as a tar, ~50 MB gzip) plus a layer of 170 MB of
random bytes (incompressible: gzip leaves it ~170 MB), made with the store API. Each tool pushes
into a registry of its own, started empty (no blob is already there), and pulls from it into an
empty destination: pybuild into a fresh store, skopeo into a fresh OCI layout (both keep the
blobs as the registry has them, verified). Both run as a CLI process, so start-up counts for both.

    .venv/bin/python bench/bench_registry.py [--random-mb 170] [--runs 1]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests", "registry"))  # the test registry launcher
PYBUILD = [sys.executable, "-m", "builder.cli"]


def make_image(root: str, random_mb: int) -> tuple[str, int]:
    """The store at root gets bench:1 = base + random layer; returns (ref, uncompressed bytes)."""
    from builder.debootstrap import _labels, commit_tree
    from cache.archive import store_layer_stream
    from cache.store import Store

    base_tar = subprocess.run([os.path.join(REPO, "scripts", "test-base")], check=True, capture_output=True,
                              text=True).stdout.strip()
    store = Store.open(root)
    with open(base_tar, "rb") as f:
        base = commit_tree(store, f, "debian:bookworm", _labels("bookworm", "minbase", None, None, None), "bench")
    tar = os.path.join(root, "tmp", "random.tar")
    _random_tar(tar, random_mb << 20)
    with open(tar, "rb") as f:
        layer = store_layer_stream(store, f)
    os.unlink(tar)
    image = store.commit(base.with_layer(layer, {"created_by": f"bench: {random_mb} MB of random bytes"}))
    store.tag("bench:1", image)
    return "bench:1", os.path.getsize(base_tar) + layer.size


def _random_tar(path: str, size: int) -> None:
    import tarfile

    with open(path + ".data", "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    with tarfile.open(path, "w") as tar:
        tar.add(path + ".data", arcname="random.bin")
    os.unlink(path + ".data")


def timed(argv: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    took = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{out.stderr}")
    return took


def main() -> None:
    from regservers import start_registry

    from cache.reference import parse_reference

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random-mb", type=int, default=170)
    ap.add_argument("--runs", type=int, default=1, help="best of N for each figure")
    args = ap.parse_args()
    top = tempfile.mkdtemp(prefix="bench-registry-")
    registries = []
    try:
        src = os.path.join(top, "src")
        ref, size = make_image(src, args.random_mb)
        env = {**os.environ, "DOCKER_CONFIG": os.path.join(top, "docker")}
        os.makedirs(env["DOCKER_CONFIG"])
        results: dict[str, list[float]] = {k: [] for k in ("push/pybuild", "push/skopeo", "pull/pybuild", "pull/skopeo")}
        for run in range(args.runs):
            for tool in ("pybuild", "skopeo"):
                reg = start_registry(os.path.join(top, f"reg-{tool}-{run}"))
                registries.append(reg)
                remote = f"{reg.host}/bench:1"
                if tool == "pybuild":
                    push = [*PYBUILD, "--root", src, "push", "-q", ref, remote]
                    dest = os.path.join(top, f"pulled-{run}")
                    pull = [*PYBUILD, "--root", dest, "pull", "-q", remote]
                else:
                    push = ["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{src}:{parse_reference(ref).name}",
                            f"docker://{remote}"]
                    dest = os.path.join(top, f"skopeo-{run}")
                    pull = ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{remote}", f"oci:{dest}:bench"]
                results[f"push/{tool}"].append(timed(push, env))
                results[f"pull/{tool}"].append(timed(pull, env))
                shutil.rmtree(dest, ignore_errors=True)
                reg.stop()
        print(f"image: {size / 1e6:.0f} MB uncompressed, 2 layers; best of {args.runs} run(s)")
        print(f"{'operation':<10} {'pybuild':>10} {'skopeo':>10} {'ratio':>8}")
        for op in ("push", "pull"):
            ours, theirs = min(results[f"{op}/pybuild"]), min(results[f"{op}/skopeo"])
            print(f"{op:<10} {ours:>9.2f}s {theirs:>9.2f}s {ours / theirs:>7.2f}x")
    finally:
        for reg in registries:
            reg.stop()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
