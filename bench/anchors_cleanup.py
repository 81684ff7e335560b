"""The anchors' tools, run by a benchmark, leave none of their cgroups behind.

The anchors (../shared/anchors) point the tools at cgroup parents of their own at the root of every
hierarchy: dockerd.sh starts dockerd with --cgroup-parent=/pybuild-bench-docker (dockerd, and BuildKit
inside it, make cgroups below it), the OCI bundle that crun and runc run has cgroupsPath
/pybuild-bench/oci, and env.sh's $CGP=/pybuild-bench is buildah's --cgroup-parent. The runtimes remove
their leaf cgroups but never those parents. Those trees exist only for the anchors' tools, so when a
bench ends, every empty directory in them is removed, deepest first. rmdir only succeeds on a cgroup
that holds no process: nothing in use is touched, and nothing outside those trees is.
"""
from __future__ import annotations

import glob
import os
import subprocess
import time
from contextlib import contextmanager
from typing import Iterator

ANCHOR_PARENTS = ("pybuild-bench-docker", "pybuild-bench")


@contextmanager
def anchors_cleaned_up() -> Iterator[None]:
    """Around a whole bench: afterwards the anchors' cgroup parents are gone (if empty)."""
    try:
        yield
    finally:
        for name in ANCHOR_PARENTS:
            remove_empty_tree(name)


@contextmanager
def private_dockerd(anchors: str) -> Iterator[bool]:
    """Start the anchors' dockerd; yields whether it came up; always stops it again."""
    script = os.path.join(anchors, "dockerd.sh")
    up = os.path.exists("/usr/sbin/dockerd") and os.path.exists(script) and \
        subprocess.run(["bash", script, "start"], capture_output=True).returncode == 0
    try:
        yield up
    finally:
        if os.path.exists(script):
            subprocess.run(["bash", script, "stop"], capture_output=True)  # also after a half start


def docker_client(anchors: str) -> tuple[str, dict[str, str]]:
    """The docker client env.sh names and an environment pointing it at the private dockerd."""
    out = subprocess.run(["bash", "-c", f'. "{anchors}/env.sh" && echo "$DOCKER_HOST" && echo "$DOCKER"'],
                         capture_output=True, text=True, check=True)
    host, docker = out.stdout.split()
    return docker, {**os.environ, "DOCKER_HOST": host}


def remove_empty_tree(name: str, attempts: int = 50) -> list[str]:
    """rmdir every directory of /sys/fs/cgroup/*/<name> (an emptied cgroup can take a moment)."""
    removed = []
    for top in glob.glob(f"/sys/fs/cgroup/*/{name}"):
        for d in sorted((root for root, _dirs, _files in os.walk(top)), key=len, reverse=True):
            for _ in range(attempts):
                try:
                    os.rmdir(d)
                    removed.append(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY: it still holds a process, or is just being emptied
                    time.sleep(0.02)
    return removed
