"""What a RUN step's layer holds, as BuildKit (dockerd 20.10) makes it, and images whose stack holds
the same layer twice.

BuildKit, checked with `docker save` + `tar -tv` of each layer: a RUN binds /etc/hosts and
/etc/resolv.conf read-only and has no /etc/hostname; the mount points it had to create are removed
after the command, /etc staying copied up (its mtime changed). So `RUN true` on an image without
hosts/resolv.conf gives a layer of just `etc/`; on an image that has both, an empty layer; a write
to /etc/hostname is kept, one to /etc/hosts fails (read-only file system).
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile

import pytest

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups]

BUSYBOX = "/bin/busybox"


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A store holding `tiny`: a static busybox as /bin/sh, the mount points /dev, /proc and /sys
    (made and kept by a RUN otherwise, as BuildKit does), and an /etc with only passwd and group
    (no hosts, hostname or resolv.conf), so which mount points a RUN makes is known."""
    if not os.path.exists(BUSYBOX):
        pytest.skip(f"needs a static busybox at {BUSYBOX} (Debian's busybox-static)")
    from cache.archive import import_rootfs
    from cache.store import Store

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_000_000_000
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "cat", "echo", "true"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(text), 1_000_000_000
            tar.addfile(info, io.BytesIO(text.encode()))
    root = tmp_path_factory.mktemp("tiny") / "store"
    buf.seek(0)
    import_rootfs(Store.open(str(root)), buf, ref="tiny")
    return root


FILES = {"hosts": "10.0.0.1 base\n", "resolv": "nameserver 10.0.0.53\n", "a": "same bytes\n"}

# (Dockerfile after FROM tiny, the last layer's entries, text of files in that layer)
RUN_LAYER_CASES = [
    ("RUN true", {"etc"}, {}),
    ("COPY hosts /etc/hosts\nCOPY resolv /etc/resolv.conf\nRUN true", set(), {}),
    ("COPY hosts /etc/hosts\nRUN true", {"etc"}, {}),
    ("COPY hosts /etc/hosts\nRUN echo h > /etc/hostname; echo x >> /etc/hosts || echo ro > /etc/ro",
     {"etc", "etc/hostname", "etc/ro"}, {"etc/hostname": "h\n", "etc/ro": "ro\n"}),
]


def top_layer(store, image) -> dict[str, str | None]:
    """The entries of an image's top layer: a file's text, None for anything else."""
    from cache.compression import decompress_reader

    out = {}
    with store.blobs.open(image.layers[-1].digest) as f, tarfile.open(fileobj=decompress_reader(f, None), mode="r|") as tar:
        for m in tar:
            out[m.name.rstrip("/")] = tar.extractfile(m).read().decode() if m.isfile() else None
    return out


@pytest.mark.parametrize("steps,entries,texts", RUN_LAYER_CASES)
def test_run_layer_keeps_no_mount_points(make_build, tiny_base, steps, entries, texts):
    store, result, _ = make_build(f"FROM tiny\n{steps}\n", FILES, store_dir=tiny_base)
    layer = top_layer(store, result.image)
    assert set(layer) == entries
    assert {name: layer[name] for name in texts} == texts


# Two identical layers in one image: SOURCE_DATE_EPOCH makes the two `RUN true` layers byte-for-byte
# the same (their /etc mtime is clamped); COPY then ADD of one file are the same layer anyway.
TWICE_CASES = [
    ("RUN true\nRUN true", 1, 2),
    ("COPY a /a\nADD a /a", 1, 2),
]


@pytest.mark.parametrize("steps,first,second", TWICE_CASES)
def test_an_image_with_two_identical_layers_builds_on_and_runs(make_build, tiny_base, steps, first, second):
    text = f"FROM tiny\n{steps}\nRUN echo ok > /ok\n"
    # no_cache: the store is shared with the other cases, whose `RUN true` was made without the epoch
    store, result, _ = make_build(text, FILES, store_dir=tiny_base, source_date_epoch=1_700_000_000,
                                  tags=("twice:1",), no_cache=True)
    diff_ids = result.image.diff_ids
    assert diff_ids[first] == diff_ids[second]  # the case this test is about
    dirs = store.layer_dirs(diff_ids)
    assert len(set(dirs)) == len(dirs) == len(diff_ids)
    out = subprocess.run([sys.executable, "-m", "builder.cli", "--root", str(tiny_base), "run", "--rm", "twice:1",
                          "cat", "/ok"], capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stdout) == (0, "ok\n"), out.stderr
