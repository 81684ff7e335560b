"""COPY destinations through the parent image's symlinks: followed inside the image, as Docker
does, and never out of it; the link itself stays a link."""
from __future__ import annotations

import os

import pytest

from builder.layerpaths import resolve_parents


@pytest.fixture
def layers(tmp_path):
    """Two unpacked layers (top-most first) with links of every kind."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("srv/app", "etc", "gone"):
        (lower / d).mkdir(parents=True)
    upper.mkdir()
    os.symlink("/srv/app", lower / "app")                    # absolute
    os.symlink("../../../../srv/app", lower / "rel")         # relative, climbing above /
    os.symlink("/etc/../../../srv/app", upper / "deep")      # in the upper layer
    os.symlink("/../../host-secret", lower / "escape")       # points "outside": stays inside
    os.symlink("loop2", lower / "loop1")
    os.symlink("loop1", lower / "loop2")
    os.symlink("/srv/app", lower / "gone" / "link")
    os.mknod(upper / "app2", 0o600 | 0o020000, 0)             # whiteout: deleted in the upper layer
    os.symlink("/srv/app", lower / "app2")
    return [str(upper), str(lower)]


@pytest.mark.parametrize("path, expected", [
    ("/app/x", "/srv/app/x"),
    ("/rel/x", "/srv/app/x"),
    ("/deep/sub/x", "/srv/app/sub/x"),
    ("/escape/x", "/host-secret/x"),        # clamped at the image's /
    ("/app/../x", "/srv/x"),                # `..` after a link: from where the link led
    ("/app/../../../x", "/x"),              # and never above /
    ("/app", "/app"),                       # the last component is not followed
    ("/app2/x", "/app2/x"),                 # whited out above: no link any more
    ("/nothing/here/x", "/nothing/here/x"),
    ("/", "/"),
])
def test_resolve_parents(layers, path, expected):
    assert resolve_parents(layers, path) == expected


def test_a_symlink_loop_ends(layers):
    assert resolve_parents(layers, "/loop1/x").startswith("/")


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


@pytest.mark.parametrize("link_target", ["/etc", "../../../../etc", "/../../etc"])
@pytest.mark.parametrize("with_cache", [False, True])
def test_write_one_follows_a_link_it_wrote_inside_the_layer(tmp_path, link_target, with_cache):
    """A COPY whose first source writes app/x -> somewhere and whose next writes app/x/f: the file
    lands inside the layer wherever the link leads, and the per-parent cache never keeps a stale
    resolution of app/x (it was resolved as a plain dir before the link was written)."""
    from builder.instructions.copy import write_one

    src, upper = tmp_path / "src", tmp_path / "upper"
    src.mkdir()
    upper.mkdir()
    (src / "f").write_text("F")
    os.symlink(link_target, src / "link")
    dirs: dict[str, str] | None = {} if with_cache else None
    write_one(str(src / "f"), str(upper), "app/first", 0, 0, None, dirs)  # caches "app"
    write_one(str(src / "link"), str(upper), "app/x", 0, 0, None, dirs)
    write_one(str(src / "f"), str(upper), "app/x/passwd", 0, 0, None, dirs)
    assert os.readlink(upper / "app" / "x") == link_target
    assert (upper / "etc" / "passwd").read_text() == "F"
    assert not (tmp_path / "etc").exists()
    assert (upper / "app" / "first").read_text() == "F"
