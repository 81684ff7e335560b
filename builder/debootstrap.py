"""Base images from debootstrap: run it into a scratch dir under the store's work/, trim what the
official images trim, and commit the tree through cache.archive.import_rootfs (the store's one
import path). The arguments are recorded as labels so the same arguments reuse the image."""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from typing import Callable

from grammar.errors import PybuildError

UBUNTU_SUITES = {"focal", "jammy", "noble", "oracular", "plucky"}
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the official debian images drop: apt lists and caches are rebuilt by `apt-get update`.
TRIM = ("var/lib/apt/lists", "var/cache/apt/archives", "var/cache/apt", "var/log/apt")


class DebootstrapError(PybuildError):
    pass


def default_ref(suite: str) -> str:
    return f"{'ubuntu' if suite in UBUNTU_SUITES else 'debian'}:{suite}"


def _labels(suite: str, variant: str, mirror: str | None, include: str | None, arch: str | None) -> dict:
    return {"org.pybuild.debootstrap": " ".join(
        f"{k}={v}" for k, v in (("suite", suite), ("variant", variant), ("mirror", mirror or ""),
                                ("include", include or ""), ("arch", arch or "")))}


def _trim(root: str) -> None:
    for rel in TRIM:
        path = os.path.join(root, rel)
        if os.path.isdir(path) and not os.path.islink(path):
            for name in os.listdir(path):
                child = os.path.join(path, name)
                if os.path.isdir(child) and not os.path.islink(child):
                    shutil.rmtree(child) if name != "partial" else None
                elif name != "lock":
                    os.unlink(child)


def commit_tree(store, tarball, ref: str, labels: dict, source: str):
    """A rootfs tarball (file object) as a one-layer image with the official images' config."""
    from cache import archive

    return archive.import_rootfs(store, tarball, ref, source=source,
                                 changes={"Env": [PATH], "Cmd": ["bash"], "Labels": labels})


def debootstrap_image(store, suite: str, ref: str | None = None, *, variant: str = "minbase",
                      mirror: str | None = None, include: str | None = None, arch: str | None = None,
                      no_cache: bool = False, progress: Callable[[str], None] | None = None):
    """The image debootstrap makes for these arguments; reused when the store already has it."""
    ref = ref or default_ref(suite)
    labels = _labels(suite, variant, mirror, include, arch)
    if not no_cache:
        try:
            img = store.resolve(ref)
            if dict(img.config.get("config", {}).get("Labels") or {}) == labels:
                return img
        except PybuildError:
            pass
    with store.work_dir("debootstrap") as work:
        root = os.path.join(work, "rootfs")
        # In its own private mount namespace: the /proc and /sys debootstrap mounts into the target
        # never show on the host and vanish with it, even if it is killed half-way.
        cmd = ["unshare", "--mount", "--propagation", "private", "debootstrap", f"--variant={variant}"]
        cmd += [f"--include={include}"] if include else []
        cmd += [f"--arch={arch}"] if arch else []
        cmd += [suite, root] + ([mirror] if mirror else [])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail: list[str] = []
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-5:]
            if progress:
                progress(line.rstrip())
        if proc.wait() != 0:
            raise DebootstrapError(f"debootstrap {suite}: exit {proc.returncode}: {' | '.join(tail)}",
                                   hint="check --mirror and the suite name")
        _trim(root)
        with tempfile.TemporaryFile(dir=work) as tmp:
            with tarfile.open(fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name in sorted(os.listdir(root)):
                    tar.add(os.path.join(root, name), arcname=name)
            tmp.seek(0)
            return commit_tree(store, tmp, ref, labels, f"debootstrap {suite}")
