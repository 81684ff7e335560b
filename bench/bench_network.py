"""What RUN's own network (a netns + slirp4netns, the default) costs against --network=host and none.

    .venv/bin/python bench/bench_network.py [RUNS] [--node-app]     (as root)

tiny: `FROM busybox; RUN true` built with --no-cache (the conformance suite's busybox base), RUNS
times per mode, interleaved. --node-app: samples/node-app cold (`apt-get install nodejs` from
deb.debian.org), on the anchors' bookworm minbase tarball (/var/cache/pybuild-bench, made by
../shared/anchors/setup-anchors.sh), host vs default, 3 runs each. Stores go to a scratch
directory under /var/cache/pybuild-bench that is removed afterwards.
"""
from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYBUILD = [str(REPO / ".venv" / "bin" / "pybuild")]
MINBASE = Path("/var/cache/pybuild-bench/bookworm-minbase.tar")
MODES = ("host", "none", "default")


def pb(root: Path, *args: str) -> None:
    subprocess.run([*PYBUILD, "--root", str(root), *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed_build(root: Path, ctx: Path, network: str) -> float:
    start = time.perf_counter()
    pb(root, "build", "--no-cache", "--progress", "plain", "--network", network, str(ctx))
    return time.perf_counter() - start


def row(name: str, times: list[float]) -> str:
    return (f"| {name} | {statistics.median(times):.3f} | {min(times):.3f}–{max(times):.3f} | {len(times)} |")


def main() -> None:
    runs = int(next((a for a in sys.argv[1:] if a.isdigit()), "10"))
    scratch = Path(tempfile.mkdtemp(prefix="pybuild-bench-net-", dir="/var/cache/pybuild-bench"
                                    if Path("/var/cache/pybuild-bench").is_dir() else None))
    try:
        sys.path.insert(0, str(REPO / "tests" / "conformance"))
        from base import base_tar_path

        store = scratch / "store"
        pb(store, "import", base_tar_path(), "bb:1")
        ctx = scratch / "tiny"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM bb:1\nRUN true\n")
        times: dict[str, list[float]] = {m: [] for m in MODES}
        for m in MODES:  # warm-up: page cache, byte-compiled modules
            timed_build(store, ctx, m)
        for _ in range(runs):
            for m in MODES:
                times[m].append(timed_build(store, ctx, m))
        print("| build | median s | min–max | n |\n|---|---:|---|---:|")
        for m in MODES:
            print(row(f"tiny RUN true --no-cache, --network={m}", times[m]))
        if "--node-app" in sys.argv and MINBASE.exists():
            pb(store, "import", str(MINBASE), "debian:bookworm")
            node: dict[str, list[float]] = {"host": [], "default": []}
            for _ in range(3):
                for m in node:
                    node[m].append(timed_build(store, REPO / "samples" / "node-app", m))
            for m, t in node.items():
                print(row(f"node-app cold --no-cache, --network={m}", t))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
