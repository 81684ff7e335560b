"""Spawn-and-exit latency of /bin/true in the sandbox, side by side with crun and runc.

All on the same read-only rootfs: the anchors' debootstrap dir and OCI bundle
(/var/cache/pybuild-bench, made by ../shared/anchors/setup-anchors.sh). Median of 50 each, in
one run. crun cannot run on this hybrid host as is, so (as the anchors do) it runs in a private
mount namespace with /sys/fs/cgroup/unified unmounted; runc is measured bare and so wrapped.

pybuild is measured twice: `run(spec)` called from a warm Python process (what the builder and
the runner's monitor do), and a fresh interpreter that imports the sandbox and runs once (what a
CLI invocation pays). Goal (issue 4): within 3x crun.

    .venv/bin/python bench/bench_spawn.py [--runs 50]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anchors_cleanup import anchors_cleaned_up  # noqa: E402
CACHE = "/var/cache/pybuild-bench"
ROOTFS = f"{CACHE}/bookworm-minbase"
BUNDLE = f"{CACHE}/bundle"
NS = ["unshare", "-m", "--propagation", "private", "sh", "-c"]
UNMOUNT = "umount /sys/fs/cgroup/unified && exec "


def _spec():
    from runtime.sandbox import SandboxSpec

    devnull = os.open(os.devnull, os.O_RDWR)
    return SandboxSpec(rootfs=ROOTFS, argv=["/bin/true"], env={}, readonly_rootfs=True,
                       stdin=devnull, stdout=devnull, stderr=devnull)


def time_pybuild_warm(runs: int) -> list[float]:
    from runtime.sandbox import run

    spec = _spec()
    out = []
    for _ in range(runs + 3):
        t = time.perf_counter()
        result = run(spec)
        out.append(time.perf_counter() - t)
        assert result.exit_code == 0, result
    return out[3:]


COLD = ("import os; from runtime.sandbox import SandboxSpec, run; d = os.open(os.devnull, os.O_RDWR); "
        f"r = run(SandboxSpec(rootfs={ROOTFS!r}, argv=['/bin/true'], env={{}}, readonly_rootfs=True, "
        "stdin=d, stdout=d, stderr=d)); raise SystemExit(r.exit_code)")


def time_command(argv: list[str], runs: int, cwd: str | None = None) -> list[float]:
    out = []
    for i in range(runs + 3):
        t = time.perf_counter()
        subprocess.run([a.replace("{n}", f"{os.getpid()}-{i}") for a in argv], check=True, cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t)
    return out[3:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    runs = ap.parse_args().runs
    if not os.path.isfile(f"{BUNDLE}/config.json") or not os.path.isdir(ROOTFS):
        raise SystemExit(f"no anchors bundle in {CACHE}: run ../shared/anchors/setup-anchors.sh first")
    rows: list[tuple[str, list[float]]] = [("pybuild run() (warm python)", time_pybuild_warm(runs))]
    rows.append(("pybuild (fresh python)", time_command([sys.executable, "-c", COLD], runs, cwd=REPO)))
    for tool in ("crun", "runc"):
        if shutil.which(tool):
            rows.append((f"{tool} run (private mntns)",
                         time_command(NS + [f"{UNMOUNT}{tool} run -b {BUNDLE} bench-{{n}}"], runs)))
    if shutil.which("runc"):
        rows.append(("runc run (bare)", time_command(["runc", "run", "-b", BUNDLE, "bench-{n}"], runs)))
    crun = next((statistics.median(t) for name, t in rows if name.startswith("crun")), None)
    print(f"spawn-and-exit of /bin/true, median of {runs} (ms); ratio to crun")
    print(f"{'tool':32} {'median':>8} {'p10':>8} {'p90':>8} {'x crun':>7}")
    for name, times in rows:
        ms = sorted(x * 1000 for x in times)
        med = statistics.median(ms)
        ratio = f"{med / (crun * 1000):.2f}" if crun else "-"
        print(f"{name:32} {med:8.1f} {ms[len(ms) // 10]:8.1f} {ms[len(ms) * 9 // 10]:8.1f} {ratio:>7}")


if __name__ == "__main__":
    with anchors_cleaned_up():  # the anchors' tools leave their cgroup parents behind
        main()
