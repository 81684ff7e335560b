"""The small deterministic base every conformance case builds on: Debian's busybox-static binary with
a symlink per applet, a passwd/group with root, a user (1000, home 0700) and nobody, /tmp 1777, and no
Env in its config (so the PATH rule is exercised). Made as one byte-for-byte reproducible tar, so
BuildKit (through `docker import`) and pybuild (through `pybuild import`) stand on the same layer,
whose digest each golden file records. Cached in /var/cache/pybuild-test, keyed by busybox's
package version and this file.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile

from model import BASE_REF, EPOCH

BUSYBOX = "/bin/busybox"   # Debian's busybox-static (scripts/setup installs it)
CACHE = os.environ.get("PYBUILD_TEST_CACHE", "/var/cache/pybuild-test")
# What the base's config holds besides its layer: the command each case's image runs by default.
CHANGES = ('CMD ["sh", "-c", "echo uid=$(id -u) gid=$(id -g) pwd=$(pwd)"]',)

PASSWD = """root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
user:x:1000:
staff:x:50:user
nogroup:x:65534:
"""


def busybox_version() -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", "busybox-static"],
                          capture_output=True, text=True, check=True).stdout


def base_tar_path() -> str:
    """Make (once) and return the base tarball."""
    with open(__file__, "rb") as f:
        me = f.read()
    key = hashlib.sha256(busybox_version().encode() + me).hexdigest()[:16]
    path = os.path.join(CACHE, f"conformance-base-{key}.tar")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(_make())
        os.replace(tmp, path)
    return path


def base_digest(path: str) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.sha256(f.read()).hexdigest()


def _make() -> bytes:
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    entries: list[tuple[str, tarfile.TarInfo, bytes | None]] = []

    def add(name, kind, mode, data=None, link="", uid=0, gid=0):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, EPOCH
        info.uname = info.gname = ""
        info.linkname = link
        if data is not None:
            info.size = len(data)
        entries.append((name, info, data))

    for d, mode, owner in [("bin", 0o755, 0), ("dev", 0o755, 0), ("etc", 0o755, 0), ("home", 0o755, 0),
                           ("home/user", 0o700, 1000), ("proc", 0o555, 0), ("root", 0o700, 0),
                           ("sys", 0o555, 0), ("tmp", 0o1777, 0), ("usr", 0o755, 0),
                           ("usr/bin", 0o755, 0), ("var", 0o755, 0), ("srv", 0o755, 0),
                           ("opt", 0o755, 0), ("opt/data", 0o750, 1000)]:
        add(d, tarfile.DIRTYPE, mode, uid=owner, gid=owner)
    add("bin/busybox", tarfile.REGTYPE, 0o755, binary)
    for applet in applets:
        if applet != "busybox":
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
    add("etc/passwd", tarfile.REGTYPE, 0o644, PASSWD.encode())
    add("etc/group", tarfile.REGTYPE, 0o644, GROUP.encode())
    add("opt/data/keep.txt", tarfile.REGTYPE, 0o640, b"owned by user\n", uid=1000, gid=1000)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for _name, info, data in sorted(entries, key=lambda e: e[0]):
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def import_into_docker(docker: list[str], path: str) -> None:
    args = [a for c in CHANGES for a in ("--change", c)]
    subprocess.run([*docker, "import", *args, path, BASE_REF], check=True, capture_output=True)


def import_into_pybuild(pybuild: list[str], path: str) -> None:
    args = [a for c in CHANGES for a in ("--change", c)]
    subprocess.run([*pybuild, "import", *args, path, BASE_REF], check=True, capture_output=True)
