"""The sandbox's pure parts, without root: cgroup detection and file writing against tmp dirs,
user resolution, capability masks. (The real kernel paths are in test_sandbox.py.)"""
from __future__ import annotations

import os
import stat

import pytest

from grammar.errors import PybuildError, UsageError
from runtime import caps
from runtime.cgroups import CgroupError, Hierarchy, open_cgroups, sweep_stale
from runtime.cgroups.hierarchy import find_hierarchies
from runtime.cgroups.v1 import V1Driver
from runtime.cgroups.v2 import V2Driver, shares_to_weight
from runtime.sandbox import Limits
from runtime.users import UnknownUser, resolve_user

HYBRID = """\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / {v2} rw,relatime - cgroup2 cgroup2 rw
50 31 0:32 /sub /mnt/memsub rw,relatime - cgroup cgroup rw,memory
"""


def _mountinfo(tmp_path, text: str) -> str:
    path = tmp_path / "mountinfo"
    path.write_text(text)
    return str(path)


def test_hybrid_detection_per_controller(tmp_path):
    v2 = tmp_path / "unified"
    v2.mkdir()
    (v2 / "cgroup.subtree_control").write_text("memory pids hugetlb\n")
    found = find_hierarchies(_mountinfo(tmp_path, HYBRID.format(v2=v2)))
    assert [(h.version, h.mountpoint, sorted(h.controllers)) for h in found] == [
        (1, "/sys/fs/cgroup/cpu", ["cpu"]),
        (1, "/sys/fs/cgroup/memory", ["memory"]),     # the bind of a sub-cgroup is ignored
        (1, "/sys/fs/cgroup/freezer", ["freezer"]),
        (2, str(v2), ["hugetlb", "pids"]),            # memory and freezer stay with v1
    ]


def test_pure_v2_host(tmp_path):
    v2 = tmp_path / "cg"
    v2.mkdir()
    (v2 / "cgroup.subtree_control").write_text("cpu memory pids\n")
    found = find_hierarchies(_mountinfo(tmp_path, f"1 0 0:1 / {v2} rw - cgroup2 cgroup2 rw\n"))
    assert found == [Hierarchy(2, str(v2), frozenset({"cpu", "memory", "pids", "freezer"}))]


def _read(d, name):
    return (d / name).read_text()


def test_v2_driver_writes_limits(tmp_path):
    top = tmp_path / "cg"
    top.mkdir()
    (top / "cgroup.controllers").write_text("cpu memory pids\n")
    drv = V2Driver(Hierarchy(2, str(top), frozenset({"cpu", "memory", "pids"})), "pybuild/abc", None)
    drv.create()
    d = top / "pybuild" / "abc"
    assert d.is_dir() and drv.made == [str(top / "pybuild"), str(d)]
    (d / "memory.swap.max").write_text("max\n")
    limits = Limits(memory=100 << 20, cpus=1.5, pids=64, cpu_shares=512)
    drv.set_memory(limits, None), drv.set_cpu(limits, None), drv.set_pids(limits, None)
    assert _read(d, "memory.max") == str(100 << 20)
    assert _read(d, "memory.swap.max") == str(100 << 20)  # Docker: memory-swap defaults to twice memory
    assert _read(d, "cpu.max") == "150000 100000"
    assert _read(d, "cpu.weight") == "20"
    assert _read(d, "pids.max") == "64"


def test_v1_driver_writes_limits(tmp_path):
    top = tmp_path / "memory"
    top.mkdir()
    drv = V1Driver(Hierarchy(1, str(top), frozenset({"memory", "cpu", "pids"})), "ci/abc", None)
    drv.create()
    d = top / "ci" / "abc"
    (d / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    limits = Limits(memory=80 << 20, memory_swap=-1, cpus=0.05, pids=0, cpu_shares=512)
    drv.set_memory(limits, None), drv.set_cpu(limits, None), drv.set_pids(limits, None)
    assert _read(d, "memory.limit_in_bytes") == str(80 << 20)
    assert _read(d, "memory.memsw.limit_in_bytes") == "-1"
    assert _read(d, "cpu.shares") == "512"
    drv.set_memory(Limits(memory=10 << 20), None)
    assert _read(d, "memory.memsw.limit_in_bytes") == str(20 << 20)  # Docker's default: twice --memory
    assert (_read(d, "cpu.cfs_period_us"), _read(d, "cpu.cfs_quota_us")) == ("100000", "5000")
    assert _read(d, "pids.max") == "max"


def test_an_existing_cgroup_is_never_adopted(tmp_path):
    top = tmp_path / "memory"
    (top / "pybuild" / "taken").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        V1Driver(Hierarchy(1, str(top), frozenset({"memory"})), "pybuild/taken", None).create()


@pytest.mark.parametrize("shares,weight", [(2, 1), (1024, 39), (262144, 10000), (1, 1), (10**7, 10000)])
def test_shares_to_weight(shares, weight):
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize("cid,parent", [("../x", None), ("a/b", None), ("ok", "/a/../b"), ("ok", "/")])
def test_bad_cgroup_names_are_refused(tmp_path, cid, parent):
    with pytest.raises(CgroupError):
        open_cgroups(cid, parent, root=_mountinfo(tmp_path, ""))


def test_missing_controller_is_a_clear_error(tmp_path):
    top = tmp_path / "pids"
    top.mkdir()
    cg = open_cgroups("x1", root=_mountinfo(tmp_path, f"1 0 0:1 / {top} rw - cgroup cgroup rw,pids\n"))
    with pytest.raises(CgroupError, match="memory cgroup controller is not available"):
        cg.set_limits(Limits(memory=1 << 20))


def test_sweep_stale_removes_only_empty_old_cgroups(tmp_path):
    top = tmp_path / "pids"
    for name in ("dead", "alive"):
        (top / "pybuild" / name).mkdir(parents=True)
    (top / "pybuild" / "alive" / "cgroup.procs").write_text("123\n")
    os.utime(top / "pybuild" / "dead", (0, 0))
    removed = sweep_stale(max_age_s=60, root=_mountinfo(tmp_path, f"1 0 0:1 / {top} rw - cgroup cgroup rw,pids\n"))
    assert removed == [str(top / "pybuild" / "dead")]
    assert (top / "pybuild" / "alive").is_dir()


# --- users: from the rootfs' own files, never the host's NSS ---

@pytest.fixture
def etc_root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\nnohome:x:1001:1001::::\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app,other\naudio:x:29:app\n")
    return str(tmp_path)


@pytest.mark.parametrize("user,expected", [
    ("", (0, 0, (0,), "/root")),
    ("app", (1000, 1000, (29, 50, 1000), "/home/app")),
    ("1000", (1000, 1000, (29, 50, 1000), "/home/app")),
    ("app:staff", (1000, 50, (50,), "/home/app")),
    ("app:7", (1000, 7, (7,), "/home/app")),
    ("4242", (4242, 0, (0,), "/")),
    ("4242:4343", (4242, 4343, (4343,), "/")),
    ("nohome", (1001, 1001, (1001,), "/")),
])
def test_resolve_user(etc_root, user, expected):
    assert resolve_user(etc_root, user) == expected


@pytest.mark.parametrize("user,words", [("ghost", "no user 'ghost'"), ("app:ghosts", "no group 'ghosts'")])
def test_unknown_users_and_groups(etc_root, user, words):
    with pytest.raises(UnknownUser, match=words):
        resolve_user(etc_root, user)


def test_passwd_symlink_does_not_reach_the_host(tmp_path):
    outside = tmp_path / "host-passwd"
    outside.write_text("ghost:x:7:7::/:/bin/sh\n")
    (tmp_path / "root" / "etc").mkdir(parents=True)
    os.symlink(str(outside), tmp_path / "root" / "etc" / "passwd")  # resolved inside the rootfs: missing there
    with pytest.raises(UnknownUser):
        resolve_user(str(tmp_path / "root"), "ghost")


# --- capabilities ---

@pytest.mark.parametrize("add,drop,privileged,mask", [
    ([], [], False, 0xA80425FB),
    (["NET_ADMIN"], [], False, 0xA80425FB | 1 << 12),
    (["cap_sys_admin"], ["CHOWN", "KILL"], False, (0xA80425FB | 1 << 21) & ~1 & ~(1 << 5)),
    ([], ["ALL"], False, 0),
    (["ALL"], [], False, (1 << 41) - 1),
    ([], [], True, (1 << 41) - 1),
])
def test_capability_masks(add, drop, privileged, mask):
    assert caps.wanted_mask(add, drop, privileged, 40) == mask


def test_unknown_capability_is_a_usage_error():
    with pytest.raises(UsageError, match="--cap-add SYS_WIZARD"):
        caps.wanted_mask(["SYS_WIZARD"], [], False, 40)


# --- --explain: each kernel call as the command a person would type ---

def test_explain_lines():
    from runtime import explain, linux

    assert explain.unshare_line(linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWNET) == \
        "unshare --mount --net --pid --fork"
    assert explain.mount_line("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC) == \
        "mount -t proc -o nosuid,nodev,noexec proc /proc"
    assert explain.mount_line(None, "/", None, linux.MS_REC | linux.MS_PRIVATE) == "mount --make-rprivate /"
    assert explain.mount_line("/a", "/b", None, linux.MS_BIND | linux.MS_REC) == "mount --rbind /a /b"
    assert explain.mount_line(None, "/b", None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY) == \
        "mount -o remount,bind,ro /b"
    assert explain.capsh_line(["SYS_ADMIN", "NET_ADMIN"]) == "capsh --drop=cap_sys_admin,cap_net_admin"


def test_without_a_devices_cgroup_the_sandbox_loses_mknod(tmp_path):
    """A cgroup v2 host has no devices controller (it needs eBPF): then CAP_MKNOD goes, or the
    container's root could mknod the host's disk and read it. v1 keeps Docker's set."""
    from runtime.cgroups import Cgroups
    from runtime.sandbox import SandboxSpec, _plan, _without_mknod

    top = tmp_path / "devices"
    top.mkdir()
    v1 = V1Driver(Hierarchy(1, str(top), frozenset({"devices"})), "pybuild/dev", None)
    v1.create()
    assert Cgroups([v1], None).restrict_devices(False) is True
    assert _read(top / "pybuild" / "dev", "devices.deny") == "a"  # then the allow list, one rule per write
    v2 = V2Driver(Hierarchy(2, str(tmp_path / "v2"), frozenset({"memory"})), "pybuild/dev", None)
    assert Cgroups([v2], None).restrict_devices(False) is False
    assert Cgroups([v2], None).restrict_devices(True) is True  # --privileged: every device anyway
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    lines: list[str] = []
    plan = _plan(SandboxSpec(rootfs=str(root), argv=["true"], env={}, explain=lines.append))
    assert "MKNOD" in caps.names_of(plan.cap_mask)
    kept = caps.names_of(_without_mknod(plan).cap_mask)
    assert "MKNOD" not in kept and len(kept) == 13
    assert any("CAP_MKNOD dropped" in line for line in lines)
