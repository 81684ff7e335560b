"""runtime.rootfs_fd: paths resolved inside a root held as an fd, by openat2 and by the fd walk
(what runs where openat2 is missing), which must agree on every case."""
from __future__ import annotations

import errno
import os

import pytest

from runtime import rootfs_fd


@pytest.fixture()
def root(tmp_path):
    """root/a/b/x = "in"; links: a/hl -> HOST (absolute host path), a/b/up -> ../.., abs -> /a/b,
    loop -> loop, file-parent -> a/b/x; HOST/x = "HOST"."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "x").write_text("HOST")
    r = tmp_path / "root"
    (r / "a" / "b").mkdir(parents=True)
    (r / "a" / "b" / "x").write_text("in")
    os.symlink(str(host), r / "a" / "hl")
    os.symlink("../..", r / "a" / "b" / "up")
    os.symlink("/a/b", r / "abs")
    os.symlink("loop", r / "loop")
    os.symlink("a/b/x", r / "file-link")
    fd = rootfs_fd.open_root(str(r))
    yield fd, r, host
    os.close(fd)


def _read(fd: int) -> str:
    with os.fdopen(fd) as f:
        return f.read()


@pytest.mark.parametrize("walk", [False, True], ids=["openat2", "walk"])
@pytest.mark.parametrize("path, want", [
    ("a/b/x", "in"),
    ("/a/b/x", "in"),
    ("/abs/x", "in"),                          # absolute link: the root's /
    ("a/b/up/../../../../a/b/x", "in"),       # `..` stops at the root
    ("a/b/up/abs/x", "in"),
    ("a/hl/x", errno.ENOENT),                 # a host path means the root's, which lacks it
    ("loop", errno.ELOOP),
    ("file-link/more", errno.ENOTDIR),
    ("nothing", errno.ENOENT),
])
def test_resolve(root, walk, path, want):
    fd, _r, _host = root
    if isinstance(want, int):
        with pytest.raises(OSError) as err:
            os.close(rootfs_fd.resolve(fd, path, os.O_RDONLY, walk=walk))
        assert err.value.errno == want
    else:
        assert _read(rootfs_fd.resolve(fd, path, os.O_RDONLY, walk=walk)) == want


@pytest.mark.parametrize("walk", [False, True], ids=["openat2", "walk"])
def test_resolve_without_following_the_last_link(root, walk):
    fd, _r, _host = root
    link = rootfs_fd.resolve(fd, "abs", os.O_PATH, follow=False, walk=walk)
    try:
        assert os.readlink("", dir_fd=link) == "/a/b"
    finally:
        os.close(link)


def test_make_dirs_follows_links_inside_only(root):
    fd, r, host = root
    made = rootfs_fd.make_dirs(fd, "/a/hl/new/deep")
    os.close(made)
    assert (r / host.relative_to("/") / "new" / "deep").is_dir()   # the host path, made inside the root
    assert sorted(os.listdir(host)) == ["x"]


def test_parent_of_follows_the_final_link_inside(root):
    fd, r, _host = root
    parent, name = rootfs_fd.parent_of(fd, "/abs/x")
    assert (os.readlink(f"/proc/self/fd/{parent}"), name) == (str(r / "a" / "b"), "x")
    os.close(parent)
    parent, name = rootfs_fd.parent_of(fd, "/file-link")
    assert (os.readlink(f"/proc/self/fd/{parent}"), name) == (str(r / "a" / "b"), "x")
    os.close(parent)
    parent, name = rootfs_fd.parent_of(fd, "/abs", follow_last=False)
    assert (os.readlink(f"/proc/self/fd/{parent}"), name) == (str(r), "abs")
    os.close(parent)
    with pytest.raises(ValueError):
        rootfs_fd.parent_of(fd, "/")


@pytest.mark.root
@pytest.mark.namespaces
@pytest.mark.parametrize("walk", [False, True], ids=["openat2", "walk"])
def test_proc_magic_links_are_refused(tmp_path, walk):
    """A root with a procfs in it: /proc/self/root would be the host's / (our process's root)."""
    from runtime import linux

    (tmp_path / "proc").mkdir()
    os.symlink("/proc/self/root", tmp_path / "magic")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            linux.mount("proc", str(tmp_path / "proc"), "proc", 0)
            fd = rootfs_fd.open_root(str(tmp_path))
            refused = 0
            for path in ("magic/etc/passwd", "/proc/self/root/etc/passwd", "/proc/self/cwd", "/proc/1/root"):
                try:
                    os.close(rootfs_fd.resolve(fd, path, walk=walk))
                except OSError as err:
                    refused += err.errno in (errno.ELOOP, errno.EACCES, errno.EXDEV)
            code = 0 if refused == 4 else 2
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
