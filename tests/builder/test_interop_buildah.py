"""interop: the same Dockerfile built by buildah (`bud --layers`, the anchors' configuration) and by
pybuild gives the same tree under the paths the build wrote (paths, types, modes, owners, contents)."""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from builder.build import BuildOptions, build

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.interop, pytest.mark.debootstrap]
ANCHORS = Path(__file__).resolve().parents[3] / "shared" / "anchors"  # ../shared beside the repository
BASE = "localhost/debian:bookworm-min"
DOCKERFILE = f"""FROM {BASE}
ENV GREETING=hi
WORKDIR /app
COPY src/ ./src/
COPY --chown=1000:1000 --chmod=640 top.txt /app/
RUN mkdir -p /app/made && echo "$GREETING" > /app/made/g && chmod 700 /app/made && ln -s made/g /app/link
"""


def _sh(cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f". {ANCHORS}/env.sh && {cmd}"], capture_output=True, text=True)


def _entry(kind: str, mode: int, uid: int, gid: int, data: bytes | str) -> tuple:
    body = data if isinstance(data, str) else hashlib.sha256(data).hexdigest()
    return (kind, oct(stat.S_IMODE(mode)), uid, gid, body)


def _tree_from_tar(path: Path) -> dict:
    out = {}
    with tarfile.open(path) as tar:
        for m in tar:
            name = m.name.lstrip("./").rstrip("/")
            if name == "app" or name.startswith("app/"):
                kind = "dir" if m.isdir() else "link" if m.issym() else "file"
                data = m.linkname if m.issym() else b"" if m.isdir() else tar.extractfile(m).read()
                out[name] = _entry(kind, m.mode, m.uid, m.gid, data)
    return out


def _tree_from_dir(root: str) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "app")):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, root)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = _entry("link", st.st_mode, st.st_uid, st.st_gid, os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = _entry("dir", st.st_mode, st.st_uid, st.st_gid, b"")
            else:
                out[rel] = _entry("file", st.st_mode, st.st_uid, st.st_gid, Path(full).read_bytes())
    st = os.lstat(os.path.join(root, "app"))
    out["app"] = _entry("dir", st.st_mode, st.st_uid, st.st_gid, b"")
    return out


def test_same_tree_as_buildah(tmp_path, base_tarball):
    if shutil.which("buildah") is None or _sh(f"podman image exists {BASE}").returncode != 0:
        pytest.skip("buildah or the anchors' base image is missing (run ../shared/anchors/setup-anchors.sh)")
    ctx = tmp_path / "ctx"
    (ctx / "src" / "sub").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "src" / "a.txt").write_text("a\n")
    (ctx / "src" / "sub" / "b.sh").write_text("#!/bin/sh\n")
    os.chmod(ctx / "src" / "sub" / "b.sh", 0o755)
    (ctx / "top.txt").write_text("top\n")

    tag = f"pybuild-interop-{os.getpid()}"
    from foreign_tools import ScratchCgroup

    scratch = ScratchCgroup("buildah")  # not the anchors' $CGP, which buildah's runtime leaves behind
    try:
        res = _sh(f"buildah bud --layers --cgroup-parent=/{scratch.path} -q -t {tag} {ctx} && "
                  f"c=$(podman create {tag} true) && podman export -o {tmp_path}/theirs.tar $c; podman rm -f $c")
        assert res.returncode == 0, res.stderr
        theirs = _tree_from_tar(tmp_path / "theirs.tar")
    finally:
        _sh(f"podman rmi -f {tag}")
        scratch.cleanup()

    from cache.archive import import_rootfs, unpack
    from cache.store import Store

    store = Store.open(str(tmp_path / "store"))
    with open(base_tarball, "rb") as f:
        import_rootfs(store, f, ref=BASE)
    result = build(store, BuildOptions(context_dir=str(ctx)))
    ours_dir = tmp_path / "ours"
    unpack(store, result.image, str(ours_dir))
    ours = _tree_from_dir(str(ours_dir))
    assert {"app/src/sub/b.sh", "app/top.txt", "app/made/g", "app/link"} <= set(ours)
    assert ours == theirs
