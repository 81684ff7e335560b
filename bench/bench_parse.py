"""Parse the whole real-world corpus with pybuild and with dockerfile-parse, one run each.

    .venv/bin/python bench/bench_parse.py

Prints the time each takes (best of a few passes over all files, measured in this one run), the
ratio, and pybuild's cold start: `import grammar.parser` + the first parse, in a fresh interpreter.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PASSES = 5


def corpus_files() -> list[bytes]:
    root = Path(os.environ.get("PYBUILD_CORPUS") or REPO.parent / "shared" / "corpus")
    paths = sorted(root.glob("real-dockerfiles/*/Dockerfile")) + sorted(root.glob("kaniko-integration/*/Dockerfile"))
    if not paths:
        sys.exit(f"no corpus at {root}: set PYBUILD_CORPUS")
    return [p.read_bytes() for p in paths]


def best_of(fn, files: list[bytes]) -> float:
    best = float("inf")
    for _ in range(PASSES):
        start = time.perf_counter()
        for data in files:
            fn(data)
        best = min(best, time.perf_counter() - start)
    return best


def pybuild_parse(data: bytes) -> None:
    from grammar.parser import parse

    parse(data.decode("utf-8", "surrogateescape"), "Dockerfile")


def pybuild_tree(data: bytes) -> None:
    from grammar.parser import parse_tree

    parse_tree(data.decode("utf-8", "surrogateescape"), "Dockerfile")


def dockerfile_parse(data: bytes) -> None:
    from dockerfile_parse import DockerfileParser

    DockerfileParser(fileobj=io.BytesIO(data)).structure


def cold_start() -> float:
    code = ("import time; t = time.perf_counter(); import grammar.parser as p; "
            "p.parse('FROM alpine\\nRUN echo hi\\n'); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return float(out.stdout)


def import_only() -> float:
    code = "import time; t = time.perf_counter(); import grammar.parser; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return float(out.stdout)


def main() -> None:
    sys.path.insert(0, str(REPO))
    files = corpus_files()
    size = sum(len(f) for f in files)
    pybuild_parse(files[0])
    dockerfile_parse(files[0])  # imports and grammar loading are not part of the parse figures
    theirs = best_of(dockerfile_parse, files)
    tree = best_of(pybuild_tree, files)
    ours = best_of(pybuild_parse, files)
    cold = min(cold_start() for _ in range(3))
    imp = min(import_only() for _ in range(3))
    print(f"corpus: {len(files)} Dockerfiles, {size / 1024:.0f} KiB; best of {PASSES} passes each")
    print(f"{'what':<44}{'pybuild':>12}{'dockerfile-parse':>18}{'ratio':>8}")
    print(f"{'whole corpus: BuildKit parse tree':<44}{tree * 1000:>10.1f}ms{theirs * 1000:>16.1f}ms"
          f"{theirs / tree:>7.2f}x")
    print(f"{'whole corpus: typed instructions':<44}{ours * 1000:>10.1f}ms{theirs * 1000:>16.1f}ms"
          f"{theirs / ours:>7.2f}x")
    print(f"{'per file':<44}{ours / len(files) * 1e6:>10.0f}us{theirs / len(files) * 1e6:>16.0f}us")
    print(f"{'import grammar.parser (fresh interpreter)':<44}{imp * 1000:>10.1f}ms")
    print(f"{'import + first parse (fresh interpreter)':<44}{cold * 1000:>10.1f}ms")
    print("ratio = dockerfile-parse time / pybuild time (above 1: pybuild is faster)")


if __name__ == "__main__":
    main()
