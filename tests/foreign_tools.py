"""Other container tools run by the tests (podman, buildah), kept inside what a test may touch.

Their cgroups go under `pybuild/<name>-<pid>` (never their defaults, /libpod_parent or the anchors'
/pybuild-bench, which they would leave behind), and `ScratchCgroup.cleanup()` removes that tree, and
pybuild/ itself if the test made it and nobody else uses it.
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path


class ScratchCgroup:
    def __init__(self, name: str):
        self.path = f"pybuild/{name}-{os.getpid()}"   # relative to each hierarchy's root
        self.had_root = {h: os.path.isdir(f"/sys/fs/cgroup/{h}/pybuild") for h in os.listdir("/sys/fs/cgroup")}

    def cleanup(self) -> None:
        for h in os.listdir("/sys/fs/cgroup"):
            top = Path(f"/sys/fs/cgroup/{h}/{self.path}")
            if top.is_dir():
                for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
                    os.rmdir(d)
            if not self.had_root.get(h) and os.path.isdir(f"/sys/fs/cgroup/{h}/pybuild"):
                try:
                    os.rmdir(f"/sys/fs/cgroup/{h}/pybuild")  # only if we made it and nobody else uses it
                except OSError:
                    pass


class Podman:
    """podman with its own throw-away storage (vfs: no mounts left), no systemd, no network."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.run_dir = Path(tempfile.mkdtemp(prefix="pbp-"))  # podman wants a runroot under 50 characters
        self.scratch = ScratchCgroup("podman")
        self.cgroup = self.scratch.path
        self.conf = tmp / "containers.conf"
        tmp.mkdir(parents=True, exist_ok=True)
        # podman's default nofile/nproc exceed this machine's hard limits (root lacks CAP_SYS_RESOURCE)
        limits = [f'"{n}={min(h, 16384)}:{min(h, 16384)}"' for n, r in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC))
                  for h in [resource.getrlimit(r)[1]] if h != resource.RLIM_INFINITY]
        self.conf.write_text(f"[containers]\ndefault_ulimits = [{', '.join(limits)}]\n")

    def __call__(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        base = ["podman", "--root", str(self.tmp / "root"), "--runroot", str(self.run_dir), "--storage-driver", "vfs",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc"]
        env = dict(env or os.environ, CONTAINERS_CONF=str(self.conf))
        out = subprocess.run(base + list(args), capture_output=True, text=True, env=env)
        if check and out.returncode:
            raise AssertionError(f"podman {args[0]} failed: {out.stderr.strip()}")
        return out

    def cleanup(self) -> None:
        self("rm", "-af", check=False)
        self("rmi", "-af", check=False)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.scratch.cleanup()
