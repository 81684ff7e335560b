"""save / load / import / unpack, and the image commands through the CLI."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from cache import archive, gc
from cache.archive import ArchiveError
from cache.image import Image
from cache.layers import pack_diff
from cache.store import Store
from cache_tarmaker import entry as E
from cache_tarmaker import make_tar

pytestmark = pytest.mark.root


def _two_layer_image(store, tmp_path) -> Image:
    a = tmp_path / "l1"
    (a / "etc").mkdir(parents=True)
    (a / "etc" / "keep").write_text("keep")
    (a / "etc" / "old").write_text("old")
    (a / "bin").mkdir()
    (a / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chown(a / "bin" / "tool", 1000, 2000)
    os.chmod(a / "bin" / "tool", 0o4711)  # after chown, which clears setuid
    b = tmp_path / "l2"
    (b / "etc").mkdir(parents=True)
    os.mknod(b / "etc" / "old", 0o020000, os.makedev(0, 0))
    (b / "etc" / "new").write_text("new")
    img = Image.empty().with_layer(pack_diff(str(a), store), {"created_by": "COPY a"})
    img = img.with_layer(pack_diff(str(b), store, "zstd"), {"created_by": "RUN b"}).with_config(Cmd=["/bin/tool"])
    store.tag("example.com/ns/app:1", img)
    return store.resolve("example.com/ns/app:1")


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_save_load_roundtrip(store, tmp_path, fmt, oci_schema):
    img = _two_layer_image(store, tmp_path)
    path = tmp_path / f"out-{fmt}.tar"
    with open(path, "wb") as f:
        archive.save(store, [("example.com/ns/app:1", img)], f, fmt)
    other = Store.open(str(tmp_path / "other"))
    loaded = archive.load(other, str(path))
    assert [(ref, i.id) for ref, i in loaded] == [("example.com/ns/app:1", img.id)]
    again = other.resolve("example.com/ns/app:1")
    assert again.id == img.id and again.diff_ids == img.diff_ids
    oci_schema("manifest", again.manifest)
    assert gc.check(other) == []
    with tarfile.open(path) as tar:
        names = tar.getnames()
    if fmt == "docker":
        manifest = json.load(tarfile.open(path).extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["example.com/ns/app:1"]
        assert manifest[0]["Layers"] == [f"{d[7:]}/layer.tar" for d in img.diff_ids]
        assert "repositories" in names
    else:
        assert {"oci-layout", "index.json"} <= set(names)


def test_save_is_deterministic(store, tmp_path):
    img = _two_layer_image(store, tmp_path)
    outs = []
    for _ in range(2):
        buf = io.BytesIO()
        archive.save(store, [("example.com/ns/app:1", img)], buf, "oci")
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]


def test_unpack_flattens_with_whiteouts(store, tmp_path):
    img = _two_layer_image(store, tmp_path)
    dest = tmp_path / "rootfs"
    archive.unpack(store, img, str(dest))
    assert sorted(os.listdir(dest / "etc")) == ["keep", "new"]
    st = os.stat(dest / "bin" / "tool")
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o4711, 1000, 2000)


def test_import_rootfs(store, tmp_path):
    data = make_tar([E("bin/", "dir"), E("bin/sh", data=b"#!", mode=0o755), E("etc/", "dir"), E("etc/os-release", data=b"ID=x\n")])
    img = archive.import_rootfs(store, io.BytesIO(data), "imported:1", changes={"Cmd": ["/bin/sh"]})
    assert store.resolve("imported:1").id == img.id and img.config_section["Cmd"] == ["/bin/sh"]
    dest = tmp_path / "r"
    archive.unpack(store, img, str(dest))
    assert (dest / "etc" / "os-release").read_bytes() == b"ID=x\n"


@pytest.mark.parametrize("content", [b"", b"not a tar at all" * 100, make_tar([E("x", data=b"x")])])
def test_load_rejects_what_is_not_an_image_archive(store, tmp_path, content):
    path = tmp_path / "bad.tar"
    path.write_bytes(content)
    with pytest.raises(ArchiveError):
        archive.load(store, str(path))
    assert store.list_images() == []


def test_load_rejects_layer_that_does_not_match_config(store, tmp_path):
    img = _two_layer_image(store, tmp_path)
    path = tmp_path / "d.tar"
    with open(path, "wb") as f:
        archive.save(store, [("example.com/ns/app:1", img)], f, "docker")
    with tarfile.open(path) as src, tarfile.open(tmp_path / "evil.tar", "w") as dst:
        for m in src.getmembers():
            f = src.extractfile(m) if m.isreg() else None
            if m.name.endswith("layer.tar") and m.name.startswith(img.diff_ids[1][7:]):
                evil = make_tar([E("etc/passwd", data=b"root::0:0::/:/bin/sh\n")])
                m.size, f = len(evil), io.BytesIO(evil)
            dst.addfile(m, f)
    other = Store.open(str(tmp_path / "o"))
    with pytest.raises(ArchiveError, match="diff_id"):
        archive.load(other, str(tmp_path / "evil.tar"))
    assert other.list_images() == []


# --- CLI --------------------------------------------------------------------------------------

def pybuild(root, *args, input=None):
    return subprocess.run([sys.executable, "-m", "builder.cli", "--root", str(root), *args],
                          capture_output=True, text=True, input=input)


def test_cli_image_commands(store, tmp_path):
    img = _two_layer_image(store, tmp_path)
    root = store.root
    store.leases.release()  # this process wrote the image: done, as a finished build would be
    out = pybuild(root, "images")
    assert out.returncode == 0 and out.stdout.split("\n")[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert "example.com/ns/app" in out.stdout and img.short_id in out.stdout
    assert pybuild(root, "images", "-q").stdout.split() == [img.short_id]
    assert json.loads(pybuild(root, "images", "--format", "json").stdout)[0]["ID"] == img.id
    assert pybuild(root, "tag", "example.com/ns/app:1", "other:2").returncode == 0
    inspect = json.loads(pybuild(root, "inspect", "other:2").stdout)[0]
    assert inspect["Id"] == img.id and sorted(inspect["RepoTags"]) == ["example.com/ns/app:1", "other:2"]
    assert inspect["Config"]["Cmd"] == ["/bin/tool"]
    hist = pybuild(root, "history", "other:2").stdout
    assert hist.index("RUN b") < hist.index("COPY a")
    assert "Untagged: other:2" in pybuild(root, "rmi", "other:2").stdout
    rmi = pybuild(root, "rmi", img.short_id)
    assert rmi.returncode == 0 and f"Deleted: {img.id}" in rmi.stdout
    assert pybuild(root, "images", "-q").stdout == "" and list(Store.open(root).blobs.digests()) == []


def test_cli_errors(store):
    missing = pybuild(store.root, "rmi", "nothere")
    assert missing.returncode == 1 and "nothere" in missing.stderr and missing.stderr.count("\n") == 1
    bad = pybuild(store.root, "tag", "x", "Bad Name")
    assert bad.returncode == 2 and "invalid reference" in bad.stderr


def test_cli_system_check_names_damage(store, tmp_path):
    img = _two_layer_image(store, tmp_path)
    assert pybuild(store.root, "system", "check").returncode == 0
    with open(store.blobs.path(img.layers[0].digest), "ab") as f:
        f.write(b"x")
    out = pybuild(store.root, "system", "check")
    assert out.returncode == 1 and img.layers[0].digest in out.stderr


def test_cli_rmi_refuses_image_used_by_container(store, tmp_path):
    img = _two_layer_image(store, tmp_path)
    cdir = os.path.join(store.root, "containers", "c1")
    os.makedirs(cdir)
    with open(os.path.join(cdir, "config.json"), "w") as f:
        json.dump({"image": img.id}, f)
    out = pybuild(store.root, "rmi", "example.com/ns/app:1")
    assert out.returncode == 1 and "container" in out.stderr
    assert pybuild(store.root, "rmi", "-f", "example.com/ns/app:1").returncode == 0


def test_cli_save_load_import_unpack(store, tmp_path):
    img = _two_layer_image(store, tmp_path)
    path = tmp_path / "s.tar"
    assert pybuild(store.root, "save", "-o", str(path), "--format", "docker", "example.com/ns/app:1").returncode == 0
    other = tmp_path / "other"
    out = pybuild(other, "load", "-i", str(path))
    assert out.returncode == 0 and "Loaded image: example.com/ns/app:1" in out.stdout
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(make_tar([E("hello", data=b"hi")]))
    imp = pybuild(other, "import", str(rootfs), "plain:1", "-c", 'CMD ["/hello"]')
    assert imp.returncode == 0, imp.stderr
    assert pybuild(other, "unpack", "plain:1", str(tmp_path / "u")).returncode == 0
    assert (tmp_path / "u" / "hello").read_bytes() == b"hi"
    assert pybuild(other, "system", "prune", "-a").returncode == 0
    df = pybuild(other, "system", "df")
    assert df.returncode == 0 and "Images" in df.stdout


def test_load_oci_archive_whose_index_names_a_multi_platform_index(store, tmp_path):
    """What `docker save` writes with the containerd image store: index.json -> image index -> manifest."""
    from cache import mediatypes as mt
    from cache.digest import canonical_json

    img = _two_layer_image(store, tmp_path)
    nested = canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "0" * 64, "size": 10, "platform": {"os": "linux", "architecture": "s390x"}},
        {"mediaType": mt.OCI_MANIFEST, "digest": img.digest, "size": img.manifest_descriptor.size,
         "platform": {"os": "linux", "architecture": img.architecture}}]})
    desc = store.blobs.put_bytes(nested, mt.OCI_INDEX)
    path = tmp_path / "docker25.tar"
    with tarfile.open(path, "w") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": mt.OCI_INDEX, "digest": desc.digest, "size": desc.size,
             "annotations": {"io.containerd.image.name": "docker.io/library/multi:1", mt.REF_NAME: "1"}}]}).encode())
        for d in [desc.digest, img.digest, img.id, *(x.digest for x in img.layers)]:
            add(f"blobs/sha256/{d[7:]}", open(store.blobs.path(d), "rb").read())
    other = Store.open(str(tmp_path / "other"))
    assert [(r, i.id) for r, i in archive.load(other, str(path))] == [("docker.io/library/multi:1", img.id)]
