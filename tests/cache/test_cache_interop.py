"""Other tools read our store and archives, and we read theirs: skopeo, umoci, podman."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cache import archive, gc
from cache.store import Store
from foreign_tools import Podman

pytestmark = [pytest.mark.interop, pytest.mark.root]

REF = "docker.io/library/interop:1"


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (../shared/anchors/setup-anchors.sh installs it)")


@pytest.fixture
def small_image(store, tmp_path):
    from cache_tarmaker import entry as E
    from cache_tarmaker import make_tar
    import io

    data = make_tar([E("etc/", "dir"), E("etc/hello", data=b"hello\n"), E("bin/", "dir"),
                     E("bin/tool", data=b"#!/bin/sh\n", mode=0o4755, uid=1000), E("link", "symlink", link="etc/hello")])
    img = archive.import_rootfs(store, io.BytesIO(data), REF, changes={"Cmd": ["/bin/tool"], "Env": ["A=1"]})
    return store.resolve(REF)


def test_skopeo_inspects_and_copies_the_store(store, small_image, tmp_path):
    _need("skopeo")
    out = subprocess.run(["skopeo", "inspect", f"oci:{store.root}:{REF}"], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert info["Digest"] == small_image.digest and info["Layers"] == [d.digest for d in small_image.layers]
    assert "A=1" in info["Env"]
    dest = tmp_path / "copy.tar"
    subprocess.run(["skopeo", "copy", "-q", f"oci:{store.root}:{REF}", f"docker-archive:{dest}:interop:copied"],
                   check=True, capture_output=True)
    other = Store.open(str(tmp_path / "other"))
    loaded = archive.load(other, str(dest))
    assert [img.id for _, img in loaded] == [small_image.id]
    assert other.resolve("interop:copied").diff_ids == small_image.diff_ids


def test_umoci_unpacks_from_the_store(store, small_image, tmp_path):
    _need("umoci")
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{store.root}:{REF}", str(bundle)], check=True, capture_output=True)
    rootfs = bundle / "rootfs"
    assert (rootfs / "etc" / "hello").read_bytes() == b"hello\n"
    assert os.readlink(rootfs / "link") == "etc/hello"
    assert os.stat(rootfs / "bin" / "tool").st_mode & 0o7777 == 0o4755
    assert json.loads((bundle / "config.json").read_text())["process"]["args"] == ["/bin/tool"]
    assert gc.check(store) == []  # umoci only read


@pytest.mark.slow
@pytest.mark.debootstrap
@pytest.mark.cgroups
def test_podman_loads_and_runs_our_docker_archive_and_we_load_podman_save(store, tmp_path, base_tarball):
    _need("podman")
    with open(base_tarball, "rb") as f:
        archive.import_rootfs(store, f, "docker.io/library/debmin:1", changes={"Cmd": ["/bin/sh"]})
    ours = store.resolve("debmin:1")
    saved = tmp_path / "ours.tar"
    with open(saved, "wb") as f:
        archive.save(store, [("docker.io/library/debmin:1", ours)], f, "docker")
    podman = Podman(tmp_path / "podman")
    try:
        loaded_as = podman("load", "-i", str(saved)).stdout.strip().rsplit("Loaded image: ", 1)[-1]
        assert loaded_as == "docker.io/library/debmin:1"
        run = podman("run", "--rm", "--network", "none", "--cgroup-parent", f"/{podman.cgroup}",
                     loaded_as, "/bin/sh", "-c", "echo hello from $(cat /etc/debian_version | cut -c1-2)")
        assert run.stdout.strip().startswith("hello from 12"), run.stderr
        for fmt in ("docker-archive", "oci-archive"):
            out = tmp_path / f"podman-{fmt}.tar"
            podman("save", "--format", fmt, "-o", str(out), loaded_as)
            other = Store.open(str(tmp_path / f"from-{fmt}"))
            loaded = archive.load(other, str(out))
            assert loaded and loaded[0][1].diff_ids == ours.diff_ids, fmt
            assert gc.check(other) == []
    finally:
        podman.cleanup()
