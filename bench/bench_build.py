"""Build benchmark, side by side in one run: pybuild vs BuildKit (`DOCKER_BUILDKIT=1 docker build`
against the anchors' private dockerd, started and stopped here) and `buildah bud --layers` (the anchors'
configuration) on samples/node-app and the COPY-heavy project (20,000 files, ~200 MB, generated
into /var/cache/pybuild-bench, never the repository). Cases: cold (no cache), fully cached
rebuild, one-file-changed rebuild. Prints a table with both tools' seconds and the ratio.

    .venv/bin/python bench/bench_build.py [RUNS]     (as root; the anchors' setup must have run)
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchors_cleanup import anchors_cleaned_up, private_dockerd  # noqa: E402
BENCH = Path("/var/cache/pybuild-bench")
ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"  # ../shared beside the repository
WORK = BENCH / "pybuild-bench-build"
BASE_REF = "localhost/debian:bookworm-min"
PYBUILD = [str(REPO / ".venv" / "bin" / "pybuild"), "--root", str(WORK / "store")]
ENV_SH = f". {ANCHORS}/env.sh && "


def sh(cmd: str) -> None:
    subprocess.run(["bash", "-c", ENV_SH + cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed(cmd: str) -> float:
    start = time.perf_counter()
    sh(cmd)
    return time.perf_counter() - start


def prepare() -> dict[str, tuple[Path, Path]]:
    """Contexts: name -> (context dir, file changed by the one-file case)."""
    node = WORK / "ctx" / "node-app"
    if node.exists():
        shutil.rmtree(node)
    shutil.copytree(REPO / "samples" / "node-app", node)
    text = (node / "Dockerfile").read_text().replace("FROM debian:bookworm", f"FROM {BASE_REF}")
    (node / "Dockerfile").write_text(text)
    heavy = WORK / "ctx" / "copy-heavy"
    heavy.mkdir(parents=True, exist_ok=True)
    shutil.copy(ANCHORS / "samples" / "copy-heavy" / "Dockerfile", heavy / "Dockerfile")
    subprocess.run([sys.executable, str(ANCHORS / "samples" / "copy-heavy" / "gen-context.py"), str(heavy)], check=True)
    store = WORK / "store"
    if not (store / "index.json").exists():
        sh(f"{' '.join(PYBUILD)} import {BENCH}/bookworm-minbase.tar {BASE_REF} || "
           f"{REPO}/.venv/bin/python -c \"from cache.store import Store; from cache.archive import import_rootfs; "
           f"import_rootfs(Store.open('{store}'), open('{BENCH}/bookworm-minbase.tar','rb'), ref='{BASE_REF}')\"")
    return {"node-app": (node, node / "index.js"), "copy-heavy": (heavy, heavy / "data" / "d100" / "f0050.txt")}


def commands(tool: str, name: str, ctx: Path) -> tuple[str, str, str]:
    """(cold clean-up, cold build, warm build) for a tool."""
    if tool == "pybuild":
        build = f"{' '.join(PYBUILD)} build -q -t bench/{name}:pybuild {ctx}"
        return "true", build.replace(" build ", " build --no-cache "), build
    if tool == "buildkit":
        build = f"DOCKER_BUILDKIT=1 $DOCKER build -q --network=host -t bench/{name}:buildkit {ctx}"
        clean = f"$DOCKER rmi -f bench/{name}:buildkit >/dev/null 2>&1; $DOCKER builder prune -af >/dev/null 2>&1; true"
        return clean, build, build
    build = f"buildah bud --layers --cgroup-parent=$CGP -q -t bench/{name}:buildah {ctx}"
    clean = f"podman rmi -f bench/{name}:buildah >/dev/null 2>&1; buildah rmi --prune >/dev/null 2>&1; true"
    return clean, build, build


def load_base_into_docker() -> bool:
    try:
        sh(f"$DOCKER image inspect {BASE_REF} >/dev/null 2>&1 || $DOCKER load -i {BENCH}/bookworm-min.docker.tar")
        return True
    except subprocess.CalledProcessError:
        return False


def measure(runs: int, tools: list[str]) -> list[tuple[str, str, dict[str, float]]]:
    rows = []
    for name, (ctx, changed) in prepare().items():
        figures: dict[str, dict[str, float]] = {}
        for tool in tools:
            clean, cold_cmd, warm = commands(tool, name, ctx)
            sh(clean)
            figures.setdefault("cold", {})[tool] = timed(cold_cmd)
            sh(warm)  # warm-up
            figures.setdefault("cached", {})[tool] = statistics.median(timed(warm) for _ in range(runs))
            times = []
            for i in range(runs):
                with open(changed, "a") as f:
                    f.write(f"// change {tool} {i} {time.time()}\n")
                times.append(timed(warm))
            figures.setdefault("one-file", {})[tool] = statistics.median(times)
        rows += [(name, case, v) for case, v in figures.items()]
    return rows


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tools = ["pybuild", "buildah"]
    with private_dockerd(str(ANCHORS)) as up:  # BuildKit lives in the anchors' dockerd
        with_buildkit = up and load_base_into_docker()
        if with_buildkit:
            tools.insert(1, "buildkit")
        rows = measure(runs, tools)
    others = tools[1:]
    print(f"{'project':<11} {'case':<9} " + " ".join(f"{t + ' s':>11}" for t in tools)
          + " " + " ".join(f"{'x ' + t:>10}" for t in others))
    for name, case, v in rows:
        print(f"{name:<11} {case:<9} " + " ".join(f"{v[t]:>11.2f}" for t in tools)
              + " " + " ".join(f"{v['pybuild'] / v[t]:>10.2f}" for t in others))
    print("x TOOL = pybuild's time / that tool's time (below 1: pybuild is faster)")
    if not with_buildkit:
        print("BuildKit: the anchors' dockerd did not start; not measured")


if __name__ == "__main__":
    with anchors_cleaned_up():  # the anchors' tools leave their cgroup parents behind
        main()
