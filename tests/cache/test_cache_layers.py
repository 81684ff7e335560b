"""pack_diff: deterministic tars from an upperdir; unpacked_layer turns them back into lowerdirs."""
from __future__ import annotations

import gzip
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from cache import mediatypes as mt
from cache.errors import DigestMismatch
from cache.image import Image
from cache.layers import iter_members, pack_diff

pytestmark = pytest.mark.root

CAP = "cap_net_raw=ep"


def upperdir(root: Path) -> Path:
    """A tree with everything an upperdir can hold: whiteouts, opaque dirs, links, devices, xattrs."""
    (root / "etc" / "app").mkdir(parents=True)
    (root / "etc" / "app" / "conf").write_text("a=1\n")
    os.link(root / "etc" / "app" / "conf", root / "etc" / "conf.hard")
    os.symlink("app/conf", root / "etc" / "conf.link")
    (root / "bin").mkdir()
    (root / "bin" / "ping").write_bytes(b"\x7fELF" + b"\0" * 100)
    os.chmod(root / "bin" / "ping", 0o4755)
    subprocess.run(["setcap", CAP, str(root / "bin" / "ping")], check=True)
    os.setxattr(root / "bin" / "ping", "user.note", b"\xff\x00binary")
    os.mknod(root / "removed", stat.S_IFCHR, os.makedev(0, 0))
    (root / "etc" / "zzz-before").write_text("sibling")
    os.mknod(root / "etc" / "gone", stat.S_IFCHR, os.makedev(0, 0))
    (root / "opaque").mkdir()
    os.setxattr(root / "opaque", "trusted.overlay.opaque", b"y")
    (root / "opaque" / "new").write_text("n")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(root / "fifo")
    long = root / ("d" * 120) / ("f" * 150)
    long.parent.mkdir()
    long.write_text("long name")
    os.chown(root / "etc" / "app" / "conf", 123456789, 70000)
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)
    return root


@pytest.fixture
def upper(tmp_path) -> Path:
    return upperdir(tmp_path / "upper")


def test_tar_content(store, upper):
    layer = pack_diff(str(upper), store, "none")
    members = list(iter_members(store.blobs.path(layer.descriptor.digest)))
    names = [m.name for m in members]
    by = {m.name: m for m in members}
    assert ".wh.removed" in names and "etc/.wh.gone" in names and "opaque/.wh..wh..opq" in names
    assert names.index("etc/.wh.gone") < names.index("etc/app")  # whiteouts before siblings
    assert names.index("opaque/.wh..wh..opq") < names.index("opaque/new")
    assert by["etc/conf.hard"].islnk() and by["etc/conf.hard"].linkname == "etc/app/conf"
    assert by["etc/conf.link"].issym() and by["etc/conf.link"].linkname == "app/conf"
    assert by["bin/ping"].mode == 0o4755 and "SCHILY.xattr.security.capability" in by["bin/ping"].pax_headers
    assert by["bin/ping"].pax_headers["SCHILY.xattr.user.note"].encode("utf-8", "surrogateescape") == b"\xff\x00binary"
    assert not any("trusted.overlay" in k for m in members for k in m.pax_headers)
    assert (by["etc/app/conf"].uid, by["etc/app/conf"].gid, by["etc/app/conf"].uname) == (123456789, 70000, "")
    assert by["null"].ischr() and (by["null"].devmajor, by["null"].devminor) == (1, 3)
    assert by["fifo"].isfifo() and by["tmp"].mode == 0o1777
    assert any(len(n) > 250 for n in names)
    dirs = [n for n in names if "/" not in n]
    assert dirs == sorted(dirs, key=lambda n: (not n.startswith(".wh."), n.encode()))


def test_deterministic_and_clamped(store, tmp_path):
    a, b = upperdir(tmp_path / "a"), upperdir(tmp_path / "b")
    for p in (a / "etc" / "app" / "conf", b / "etc" / "app" / "conf"):
        os.utime(p, (2_000_000_000, 2_000_000_000))
    os.utime(b / "etc" / "app" / "conf", (2_100_000_000, 2_100_000_000))
    la, lb = pack_diff(str(a), store, source_date_epoch=1_000_000), pack_diff(str(b), store, source_date_epoch=1_000_000)
    assert la.diff_id == lb.diff_id and la.descriptor.digest == lb.descriptor.digest
    members = list(iter_members(store.blobs.path(la.descriptor.digest)))
    assert max(m.mtime for m in members) <= 1_000_000
    assert pack_diff(str(a), store).diff_id != pack_diff(str(b), store).diff_id  # without SDE, mtimes count


@pytest.mark.parametrize("compression, media_type, tool", [
    ("gzip", mt.OCI_LAYER_GZIP, ["gzip", "-t"]), ("zstd", mt.OCI_LAYER_ZSTD, ["zstd", "-tq"]), ("none", mt.OCI_LAYER, ["tar", "tf"]),
])
def test_compressions_share_the_diff_id(store, upper, compression, media_type, tool):
    plain = pack_diff(str(upper), store, "none")
    layer = pack_diff(str(upper), store, compression)
    assert layer.diff_id == plain.diff_id and layer.descriptor.media_type == media_type
    assert (layer.descriptor.digest == layer.diff_id) == (compression == "none")
    subprocess.run(tool + [store.blobs.path(layer.descriptor.digest)], check=True, capture_output=True)
    if compression == "gzip":
        with open(store.blobs.path(layer.descriptor.digest), "rb") as f:
            data = gzip.decompress(f.read())
        assert "sha256:" + __import__("hashlib").sha256(data).hexdigest() == layer.diff_id


def test_gnu_tar_reads_it(store, upper, tmp_path):
    layer = pack_diff(str(upper), store, "gzip")
    out = tmp_path / "gnu"
    out.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-xzpf", store.blobs.path(layer.descriptor.digest), "-C", str(out)], check=True)
    assert (out / "etc" / "app" / "conf").read_text() == "a=1\n" and (out / ".wh.removed").exists()
    assert "cap_net_raw" in subprocess.run(["getcap", str(out / "bin" / "ping")], capture_output=True, text=True).stdout


def test_unpacked_layer_roundtrip(store, upper):
    for dirpath, dirnames, filenames in os.walk(upper):  # made long ago: the unpack is "now", so any
        for name in dirnames + filenames:                 # time not restored from the tar shows
            os.utime(os.path.join(dirpath, name), (1_000_000_000, 1_000_000_000), follow_symlinks=False)
    layer = pack_diff(str(upper), store, "gzip")
    path = Path(store.unpacked_layer(layer.diff_id))
    assert path == Path(store.root) / "layers" / layer.diff_id[7:]
    assert store.unpacked_layer(layer.diff_id) == str(path)
    for rel in ("removed", "etc/gone"):
        st = os.lstat(path / rel)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(path / "opaque", "trusted.overlay.opaque") == b"y"
    assert os.stat(path / "bin" / "ping").st_mode & 0o7777 == 0o4755
    assert "cap_net_raw" in subprocess.run(["getcap", str(path / "bin" / "ping")], capture_output=True, text=True).stdout
    assert os.stat(path / "etc" / "conf.hard").st_ino == os.stat(path / "etc" / "app" / "conf").st_ino
    assert os.stat(path / "etc" / "app" / "conf").st_uid == 123456789
    assert os.listdir(store.tmp) == []
    # and packing the unpacked layer again gives the same diff_id: the round trip is exact
    assert pack_diff(str(path), store, "none").diff_id == layer.diff_id


def test_unpacked_layer_checks_the_diff_id(store, upper):
    layer = pack_diff(str(upper), store, "none")
    with open(store.blobs.path(layer.descriptor.digest), "r+b") as f:
        f.seek(2000)
        f.write(b"X")
    with pytest.raises(DigestMismatch):
        store.unpacked_layer(layer.diff_id)
    assert os.listdir(os.path.join(store.root, "layers")) == [] and os.listdir(store.tmp) == []


def test_image_with_packed_layer_commits(store, upper, oci_schema):
    layer = pack_diff(str(upper), store)
    img = store.commit(Image.empty().with_layer(layer, {"created_by": "RUN make"}))
    oci_schema("manifest", img.manifest)
    assert store.resolve(img.id).diff_ids == [layer.diff_id]
