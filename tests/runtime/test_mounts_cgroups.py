"""overlayfs and its fallback, and the cgroup drivers on the real hierarchies (root)."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

pytestmark = [pytest.mark.root, pytest.mark.namespaces]


def _in_private_ns(fn) -> str:
    """Run fn() in a forked child inside a private mount namespace; return what it returned (str)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os.close(r)
        try:
            from runtime.mounts import private_mount_namespace

            private_mount_namespace()
            text = str(fn())
        except BaseException as err:  # noqa: BLE001
            text = f"{type(err).__name__}: {err}"
        os.write(w, text.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return text


def _dirs(tmp_path, *names):
    out = []
    for n in names:
        (tmp_path / n).mkdir()
        out.append(str(tmp_path / n))
    return out


def test_overlay_mount_merges_and_writes_the_upperdir(tmp_path):
    from runtime.mounts import mount_overlay

    low1, low2, upper, work, merged = _dirs(tmp_path, "low1", "low2", "upper", "work", "merged")
    open(f"{low1}/a", "w").write("top")
    open(f"{low2}/a", "w").write("bottom")
    open(f"{low2}/b", "w").write("b")

    def go():
        mount_overlay([low1, low2], upper, work, merged)
        seen = open(f"{merged}/a").read() + open(f"{merged}/b").read()
        os.unlink(f"{merged}/b")
        open(f"{merged}/c", "w").write("new")
        return seen

    assert _in_private_ns(go) == "topb"
    assert sorted(os.listdir(upper)) == ["b", "c"]   # b is now a whiteout, c new
    assert os.stat(f"{upper}/b").st_rdev == 0 and not os.listdir(merged)  # nothing left on the host


def test_overlay_on_overlay_is_a_clear_error(tmp_path):
    from runtime.mounts import mount_overlay

    low, upper, work, merged = _dirs(tmp_path, "low", "upper", "work", "merged")

    def go():
        mount_overlay([low], upper, work, merged)
        inner = [os.path.join(merged, n) for n in ("l", "u", "w", "m")]
        for d in inner:
            os.mkdir(d)
        mount_overlay([inner[0]], inner[1], inner[2], inner[3])
        return "mounted"

    text = _in_private_ns(go)
    assert text.startswith("OverlayUnsupported") and "on overlayfs" in text and "copy fallback" in text


def test_copy_fallback_applies_layers_and_whiteouts(tmp_path):
    from runtime.mounts import prepare_rootfs_copy

    top, bottom, dest = _dirs(tmp_path, "top", "bottom", "dest")
    os.makedirs(f"{bottom}/etc/gone")
    open(f"{bottom}/etc/keep", "w").write("old")
    open(f"{bottom}/etc/gone/x", "w").write("x")
    os.symlink("keep", f"{bottom}/etc/link")
    os.makedirs(f"{top}/etc")
    open(f"{top}/etc/keep", "w").write("new")
    os.mknod(f"{top}/etc/gone", 0o20000, os.makedev(0, 0))  # overlay whiteout
    prepare_rootfs_copy([top, bottom], dest)
    assert sorted(os.listdir(f"{dest}/etc")) == ["keep", "link"]
    assert open(f"{dest}/etc/keep").read() == "new" and os.readlink(f"{dest}/etc/link") == "keep"


@pytest.mark.cgroups
def test_v1_freezer_and_stats_on_a_real_process():
    from runtime.cgroups import open_cgroups
    from runtime.sandbox import Limits

    cg = open_cgroups("t-v1-freeze")
    proc = subprocess.Popen(["sleep", "100"])
    try:
        cg.set_limits(Limits(memory=64 << 20, pids=10))
        cg.add(proc.pid)
        assert cg.pids() == {proc.pid}
        cg.freeze()
        freezer = next(d for d in cg.dirs if "/freezer/" in d)
        assert open(f"{freezer}/freezer.state").read().strip() == "FROZEN" and cg.stats().pids == 1
        cg.thaw()
        assert cg.stats().memory_limit == 64 << 20
    finally:
        cg.remove()  # kills what is left
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not any(os.path.exists(d) for d in cg.dirs)


@pytest.mark.cgroups
def test_v2_driver_on_the_real_cgroup2_mount():
    """This hybrid host's cgroup2 holds no controller we use, but every cgroup2 directory can
    freeze: the v2 driver creates, fills, freezes and removes pybuild/<id> there."""
    from runtime.cgroups import Cgroups, Hierarchy
    from runtime.cgroups.hierarchy import find_hierarchies
    from runtime.cgroups.v2 import V2Driver

    v2 = next((h for h in find_hierarchies() if h.version == 2), None)
    if v2 is None:
        pytest.skip("no cgroup2 mount on this host")
    driver = V2Driver(Hierarchy(2, v2.mountpoint, frozenset({"freezer"})), "pybuild/t-v2", None)
    driver.create()
    cg = Cgroups([driver], None)
    proc = subprocess.Popen(["sleep", "100"])
    try:
        cg.add(proc.pid)
        cg.freeze()
        assert driver.keyed("cgroup.events")["frozen"] == 1
        cg.thaw()
        assert driver.keyed("cgroup.events")["frozen"] == 0
    finally:
        cg.remove()
        proc.wait()
    assert not os.path.exists(driver.path)


@pytest.mark.cgroups
def test_the_last_cgroup_out_removes_pybuild_root_whoever_made_it():
    """pybuild/ at each hierarchy's root is pybuild's own. It may have been made by another pybuild
    process (one that ended first), so removal must not depend on who made it: whoever removes the
    last cgroup in it removes it too; while another cgroup lives there it stays."""
    from runtime.cgroups import open_cgroups, reopen

    first = open_cgroups("t-root-first")      # makes pybuild/ where it is missing
    second = open_cgroups("t-root-second")    # finds pybuild/ made: not "its own"
    roots = {os.path.dirname(d) for d in first.dirs}
    first.remove()
    assert all(os.path.isdir(r) for r in roots)   # second still lives there
    second.remove()
    assert not any(os.path.exists(r) for r in roots)

    # The runner reopens them by path, from another process than the one that created them.
    third = open_cgroups("t-root-third")
    again = reopen(third.dirs)
    assert again.dirs == third.dirs
    again.remove()
    assert not any(os.path.exists(os.path.dirname(d)) for d in third.dirs)
    # A path outside pybuild's own (the hierarchy root, a parent, `..`) is never taken
    assert reopen([os.path.dirname(d) for d in third.dirs] + ["/sys/fs/cgroup/memory/../x", "/etc"]).dirs == []
