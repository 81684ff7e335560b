"""--chown names are looked up in the image's merged root, never the host's (issue 12, item 6): an
image whose /etc is a symlink to /etc must not make pybuild read the host's /etc/passwd; a symlink
that stays inside the image is followed as BuildKit follows it; a passwd removed by a later layer
is gone. Images are made from hand-written layer tars, so each trick is exactly what a hostile
image would ship."""
from __future__ import annotations

import io
import tarfile

import pytest

from builder import owners

pytestmark = [pytest.mark.root, pytest.mark.namespaces]

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1234:4321::/home/app:/bin/sh\n"
GROUP = "root:x:0:\nstaff:x:50:app\n"


def _tar(entries: list[tuple[str, str, str]]) -> bytes:
    """(kind, path, text-or-link-target) -> an uncompressed layer tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, path, value in entries:
            info = tarfile.TarInfo(path)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                data = value.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def image_of(tmp_path):
    """image_of(layer, layer, ...) -> (store, image); each layer is a list of _tar entries."""
    from cache.archive import store_layer_stream
    from cache.image import Image
    from cache.store import Store

    store = Store.open(str(tmp_path / "store"))

    def make(*layers):
        image = Image.empty()
        for entries in layers:
            image = image.with_layer(store_layer_stream(store, io.BytesIO(_tar(entries)), "none"))
        return store, image
    return make


def test_an_etc_symlink_to_the_host_etc_never_reads_the_host_passwd(image_of):
    store, image = image_of([("link", "etc", "/etc")])  # resolved in the image: /etc -> /etc, a loop
    with open("/etc/passwd") as f:
        assert "\ndaemon:x:1:1:" in f.read()  # the host has a daemon, so a wrong read would resolve it
    for spec in ("daemon", "daemon:daemon", "0:daemon", "1:daemon"):
        with pytest.raises(owners.OwnerError, match="cannot read the image's /etc/passwd"):
            owners.resolve(store, image, spec)
    # BuildKit's parseUID: "root" is 0 without reading anything (docker build does the same here)
    assert owners.resolve(store, image, "root") == (0, 0)
    assert owners.resolve(store, image, "root:1") == (0, 1)


def test_a_passwd_symlink_to_a_host_path_resolves_inside_the_image(image_of, tmp_path):
    host = tmp_path / "host-etc"
    host.mkdir()
    (host / "passwd").write_text("daemon:x:1:1:daemon:/:/bin/sh\n")
    (host / "group").write_text("daemon:x:1:\n")
    store, image = image_of([("dir", "etc", ""), ("link", "etc/passwd", str(host / "passwd")),
                             ("link", "etc/group", f"../../../..{host}/group")])
    with pytest.raises(owners.OwnerError, match="no user 'daemon'"):
        owners.resolve(store, image, "daemon")
    with pytest.raises(owners.OwnerError, match="no group 'daemon'"):
        owners.resolve(store, image, "0:daemon")


def test_an_etc_symlink_inside_the_image_is_followed(image_of):
    store, image = image_of([("dir", "real", ""), ("file", "real/passwd", PASSWD), ("file", "real/group", GROUP),
                             ("link", "etc", "/real")])
    assert owners.resolve(store, image, "app") == (1234, 4321)
    assert owners.resolve(store, image, "app:staff") == (1234, 50)
    assert owners.resolve(store, image, "7:staff") == (7, 50)


def test_layers_apply_as_the_kernel_merges_them(image_of):
    """A later layer's passwd wins; a whiteout removes it; numbers need no file (BuildKit)."""
    first = [("dir", "etc", ""), ("file", "etc/passwd", PASSWD), ("file", "etc/group", GROUP)]
    store, image = image_of(first, [("dir", "etc", ""), ("file", "etc/passwd", "app:x:99:98::/:/bin/sh\n")])
    assert owners.resolve(store, image, "app") == (99, 98)
    assert owners.resolve(store, image, "app:staff") == (99, 50)  # group from the lower layer
    store, image = image_of(first, [("dir", "etc", ""), ("file", "etc/.wh.passwd", "")])
    with pytest.raises(owners.OwnerError, match="no user 'app'"):
        owners.resolve(store, image, "app")
    assert owners.resolve(store, image, "42") == (42, 42)
    assert owners.resolve(store, image, "42:7") == (42, 7)


def test_a_copy_chown_by_name_on_a_hostile_image_fails_the_build_cleanly(image_of, make_build, tmp_path):
    from builder.build import BuildError

    store, image = image_of([("link", "etc", "/etc")])
    store.commit(image)
    store.tag("hostile:etc", image)
    with pytest.raises((BuildError, owners.OwnerError), match="/etc/passwd"):
        make_build("FROM hostile:etc\nCOPY --chown=daemon a /a\n", {"a": "A"},
                   store_dir=tmp_path / "store", tags=["out:1"])
    _, result, _ = make_build("FROM hostile:etc\nCOPY --chown=root:root a /a\n", {"a": "A"},
                              store_dir=tmp_path / "store", tags=["out:2"])  # as docker build: no lookup
    assert result.image.diff_ids[:1] == image.diff_ids
