"""Re-derive the golden files from a live BuildKit (the anchors' private dockerd, which this script
starts and stops itself, as the benches do; afterwards the cgroup parents dockerd and BuildKit leave
behind (/pybuild-bench-docker) are removed: bench/anchors_cleanup.py).

    .venv/bin/python tests/conformance/refresh.py            # every case (2 at a time)
    .venv/bin/python tests/conformance/refresh.py --only NAME [NAME...]
    .venv/bin/python tests/conformance/refresh.py --check    # rebuild all; report goldens that differ

Each golden file records BuildKit's version, the base layer's digest and the case's input hash, and
is sealed (golden.py)."""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ANCHORS = os.path.join(os.path.dirname(REPO), "shared", "anchors")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "bench"))

from anchors_cleanup import anchors_cleaned_up, docker_client, private_dockerd  # noqa: E402

import golden  # noqa: E402
from base import base_digest, base_tar_path  # noqa: E402
from cases import all_cases  # noqa: E402
from describe import comparable, differences  # noqa: E402
from tools import BuildKit, run_case  # noqa: E402


def _without_message(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "message"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="case names")
    ap.add_argument("--check", action="store_true", help="compare with the stored goldens, write nothing")
    ap.add_argument("--missing", action="store_true", help="only cases without a (current) golden file")
    ap.add_argument("-j", type=int, default=2)
    opts = ap.parse_args()
    with anchors_cleaned_up(), private_dockerd(ANCHORS) as up:
        if not up:
            print(f"refresh: the anchors' dockerd did not start (set them up: {ANCHORS}/setup-anchors.sh)",
                  file=sys.stderr)
            return 2
        docker, env = docker_client(ANCHORS)
        os.environ.update(DOCKER_HOST=env["DOCKER_HOST"])
        return _refresh(opts, docker)


def _refresh(opts, docker: str) -> int:
    cases = [c for c in all_cases() if not opts.only or c.name in opts.only]
    if opts.missing:
        def stale(c):
            try:
                g = golden.read(c.name)
            except ValueError:
                return True
            return g is None or g.get("input") != c.input_hash()
        cases = [c for c in cases if stale(c)]
    tool = BuildKit(docker, no_cache=opts.check)   # a check rebuilds everything, or it checks nothing
    version, base = tool.version(), base_digest(base_tar_path())
    bad = 0

    def one(case):
        result = run_case(tool, case)
        payload = {"case": case.name, "rule": case.rule, "input": case.input_hash(), "buildkit": version,
                   "base": base, "result": result}
        if opts.check:
            old = golden.read(case.name)
            # (an error's message names BuildKit's random scratch paths: whether it failed is the answer)
            diffs = differences(comparable(_without_message(old["result"])), comparable(_without_message(result)),
                                names=("golden", "BuildKit now")) if old else ["no golden file"]
            return case.name, diffs
        golden.write(case.name, payload)
        return case.name, []

    with ThreadPoolExecutor(opts.j) as pool:
        for name, diffs in pool.map(one, cases):
            bad += bool(diffs)
            print(f"{name}: {'differs: ' + '; '.join(diffs) if diffs else 'ok'}", flush=True)
    print(f"{len(cases)} cases, {bad} differ" if opts.check else f"{len(cases)} golden files written")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
