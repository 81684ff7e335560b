"""COPY destinations through the image's symlinks: followed inside the image's root, as BuildKit
does (the last component too: `COPY x /bin/sh` writes what /bin/sh points to), and never out of
it. builder/copyfiles.py works on any root directory, so these run on a plain tree."""
from __future__ import annotations

import os

import pytest

from builder.copyfiles import Request, Source, copy
from builder.mergedview import ChangeError


@pytest.fixture
def image_root(tmp_path):
    """An image's / with links of every kind, inside a `host` dir that stands for the host."""
    root = tmp_path / "host" / "root"
    for d in ("srv/app", "etc", "usr/bin"):
        (root / d).mkdir(parents=True)
    (root / "usr/bin/busybox").write_text("BB")
    os.symlink("/srv/app", root / "app")                    # absolute
    os.symlink("../../../../srv/app", root / "rel")         # relative, climbing above /
    os.symlink("/../../host-secret", root / "escape")       # points "outside": stays inside
    os.symlink("/usr/bin/busybox", root / "sh")             # a link as the destination itself
    os.symlink("/srv/none", root / "dangling")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    (root / "file").write_text("plain")
    return root


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("A")
    return Source(str(src), "the test context")


@pytest.mark.parametrize("dest, lands", [
    ("/app/", "srv/app/a.txt"),
    ("/app/b.txt", "srv/app/b.txt"),
    ("/app", "srv/app/a.txt"),              # a link to a directory: inside it
    ("/rel/x/", "srv/app/x/a.txt"),
    ("/escape/x", "host-secret/x"),         # clamped at the image's /
    ("/app/../x", "srv/x"),                 # `..` after a link: from where the link led
    ("/app/../../../x", "x"),               # and never above /
    ("/sh", "usr/bin/busybox"),             # the last component is followed too (BuildKit)
    ("/dangling", "srv/none"),
])
def test_destination_links_are_followed_inside_the_root(image_root, source, dest, lands):
    copy(str(image_root), source, Request(["a.txt"], dest))
    assert (image_root / lands).read_text() == "A"
    assert not (image_root.parent / "host-secret").exists() and sorted(os.listdir(image_root.parent)) == ["root"]


@pytest.mark.parametrize("dest", ["/file/x", "/loop1/x"])
def test_a_destination_under_a_file_or_a_loop_is_refused(image_root, source, dest):
    with pytest.raises((ChangeError, OSError)):
        copy(str(image_root), source, Request(["a.txt"], dest))


@pytest.mark.parametrize("link_target", ["/etc", "../../../../etc", "/../../etc"])
def test_a_link_written_by_an_earlier_source_is_followed_inside_the_root(tmp_path, link_target):
    """A directory source that writes app/x -> somewhere, then a source written through app/x: the
    file lands inside the root wherever the link leads, never on the host."""
    src, root = tmp_path / "src", tmp_path / "host" / "root"
    (src / "tree").mkdir(parents=True)
    root.mkdir(parents=True)
    (src / "f").write_text("F")
    os.symlink(link_target, src / "tree" / "x")
    copy(str(root), Source(str(src), "ctx"), Request(["tree"], "/app/"))
    copy(str(root), Source(str(src), "ctx"), Request(["f"], "/app/x/passwd"))
    assert os.readlink(root / "app" / "x") == link_target
    assert (root / "etc" / "passwd").read_text() == "F"
    assert sorted(os.listdir(tmp_path / "host")) == ["root"]


@pytest.mark.root
@pytest.mark.namespaces
@pytest.mark.cgroups
@pytest.mark.debootstrap
def test_copy_follows_the_image_links(make_build, base_dir):
    store, result, _ = make_build(
        "FROM debian:bookworm\n"
        "RUN mkdir -p /srv/app && ln -s /srv/app /app && ln -s /../../srv/app /up\n"
        "COPY a.txt /app/\nCOPY a.txt /up/b.txt\n", {"a.txt": "A"}, store_dir=base_dir)
    top = store.unpacked_layer(result.image.diff_ids[-1])
    below = store.unpacked_layer(result.image.diff_ids[-2])
    assert open(os.path.join(top, "srv/app/b.txt")).read() == "A"
    assert open(os.path.join(below, "srv/app/a.txt")).read() == "A"
    for layer in (top, below):
        assert not os.path.lexists(os.path.join(layer, "app")) and not os.path.lexists(os.path.join(layer, "up"))
