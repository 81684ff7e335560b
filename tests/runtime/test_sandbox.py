"""The sandbox's must-show checks (issue 4), each on a fresh overlay over the debootstrap base.

They run real namespaces, mounts and cgroups; the autouse leak check (tests/conftest.py) proves
that each leaves no mount, cgroup, network device or process behind.
"""
from __future__ import annotations

import os
import signal
import socket
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap]


def test_only_the_sandbox_processes_are_visible(sandbox):
    out = sandbox.run("sleep 100 & echo /proc/[0-9]*; cat /proc/2/cmdline")
    assert out.exit_code == 0, out
    # the shell is PID 1, its sleep PID 2; nothing of the host (when PID 1 ends, the sleep dies)
    assert out.output.split("\n")[0].split() == ["/proc/1", "/proc/2"]
    assert out.output.split("\n")[1] == "sleep\x00100\x00"


def test_hostname_set_inside_does_not_reach_the_host(sandbox):
    before = socket.gethostname()
    # changing the hostname needs CAP_SYS_ADMIN, outside Docker's default set
    denied = sandbox.run("hostname changed-inside || echo DENIED", hostname="box")
    assert "DENIED" in denied.output
    out = sandbox.run("hostname; hostname changed-inside; hostname", hostname="box", cap_add=["SYS_ADMIN"])
    assert out.output.split() == ["box", "changed-inside"], out
    assert socket.gethostname() == before


def test_the_host_sees_and_kills_the_sandboxed_process(sandbox):
    seen = {}

    def kill(pid: int) -> None:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            seen["cmdline"] = f.read().split(b"\0")
        os.kill(pid, signal.SIGKILL)

    out = sandbox.run(["/bin/sleep", "1000"], on_start=kill)
    assert seen["cmdline"][:2] == [b"/bin/sleep", b"1000"]
    assert (out.exit_code, out.signal) == (137, signal.SIGKILL)


def test_a_private_network_has_only_loopback_and_it_is_up(sandbox):
    out = sandbox.run("ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags")
    names = out.output.split()
    assert names[0] == "lo" and len(names) == 3, out.output
    assert int(names[2], 16) & 1  # IFF_UP


def test_network_host_shares_the_host_links(sandbox):
    out = sandbox.run("ls /sys/class/net", network="host")
    assert sorted(out.output.split()) == sorted(os.listdir("/sys/class/net"))


@pytest.mark.parametrize("path", ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts"])
def test_masked_proc_files_read_empty(sandbox, path):
    if not os.path.exists(path):
        pytest.skip(f"this kernel has no {path}")
    out = sandbox.run(f"wc -c < {path}")
    assert out.output.strip() == "0", out.output
    assert os.path.getsize(path) > 0 or path == "/proc/kcore" or open(path, "rb").read()


@pytest.mark.parametrize("path", ["/proc/sysrq-trigger", "/proc/sys/kernel/hostname", "/sys/kernel/uevent_helper"])
def test_read_only_paths_refuse_writes(sandbox, path):
    out = sandbox.run(f"echo x > {path} && echo WROTE")
    assert "WROTE" not in out.output and out.exit_code != 0, out.output


def test_mount_inside_fails(sandbox):
    out = sandbox.run("mkdir -p /mnt/p && mount -t proc proc /mnt/p && echo MOUNTED")
    assert "MOUNTED" not in out.output and out.exit_code != 0


def test_no_mount_reaches_the_host_namespace(sandbox):
    def mounts() -> list[str]:
        with open("/proc/self/mountinfo") as f:
            return sorted(" ".join(l.split()[4:5]) for l in f)

    before = mounts()
    during = {}
    out = sandbox.run(["/bin/sleep", "1000"], on_start=lambda pid: (during.setdefault("m", mounts()),
                                                                     os.kill(pid, signal.SIGKILL)))
    assert out.signal == signal.SIGKILL
    assert during["m"] == before


CHROOT_ESCAPE = (  # the classic: chroot into a subdirectory while the cwd stays outside, climb, chroot .
    "perl -e 'mkdir \"x\"; chroot \"x\" or die \"chroot: $!\"; chdir \"..\" for 1..64; chroot \".\" or die;"
    " print((-d \"{marker}\") ? \"ESCAPED\\n\" : \"JAILED\\n\")'"
)


@pytest.mark.parametrize("isolation,expected", [("pivot_root", "JAILED"), ("chroot", "ESCAPED")])
def test_the_classic_chroot_escape(sandbox, base_rootfs, isolation, expected):
    """Under pivot_root the host's root is detached: climbing out of a nested chroot ends at the
    container's /. Under a plain chroot the old root is still there, and the climb reaches it
    (which is why --isolation=chroot is documented as escapable)."""
    out = sandbox.run(CHROOT_ESCAPE.format(marker=base_rootfs), isolation=isolation, workdir="/tmp")
    assert out.output.strip() == expected, out


def test_default_capabilities_are_dockers(sandbox):
    out = sandbox.run("grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status")
    fields = dict(line.split(":\t") for line in out.output.strip().splitlines())
    assert fields == {"CapInh": "0000000000000000", "CapPrm": "00000000a80425fb", "CapEff": "00000000a80425fb",
                      "CapBnd": "00000000a80425fb", "CapAmb": "0000000000000000", "NoNewPrivs": "1"}


def test_cap_drop_and_add(sandbox):
    out = sandbox.run("grep CapBnd /proc/self/status; chown nobody /tmp && echo CHOWNED",
                      cap_drop=["CHOWN"], cap_add=["SYS_TIME"])
    bnd = int(out.output.split()[1], 16)
    assert not bnd & 1 and bnd & (1 << 25)
    assert "CHOWNED" not in out.output


def test_a_non_root_user_has_no_capabilities_and_its_groups(sandbox):
    out = sandbox.run("id -u; id -g; grep -E '^Cap(Eff|Bnd)' /proc/self/status; echo ~", user="nobody")
    uid, gid, eff, bnd, home = out.output.split("\n")[:5]
    assert (uid, gid) == ("65534", "65534")
    assert eff.split()[1] == "0000000000000000" and bnd.split()[1] == "00000000a80425fb"
    assert home == "/nonexistent"


def test_unknown_user_is_a_clear_error(sandbox):
    out = sandbox.run("true", user="nosuchuser")
    assert out.error and "nosuchuser" in out.error and "/etc/passwd" in out.error


@pytest.mark.parametrize("argv,code,words", [
    (["/no/such/cmd"], 127, "/no/such/cmd: not found"),
    (["nosuchcmd"], 127, "nosuchcmd: not found"),
    (["/etc/passwd"], 126, "/etc/passwd: cannot execute"),
    (["/etc"], 126, "/etc: cannot execute"),
])
def test_exec_failures(sandbox, argv, code, words):
    out = sandbox.run(argv)
    assert out.exit_code == code and words in out.output, out


def test_path_is_searched_inside_the_rootfs(sandbox):
    out = sandbox.run(["mkdir", "-p", "/tmp/made"], env={"PATH": "/usr/bin:/bin"})
    assert out.exit_code == 0, out


def test_workdir_is_created_and_entered(sandbox):
    out = sandbox.run("pwd; ls -ld . | cut -c1", workdir="/srv/new/dir")
    assert out.output.split() == ["/srv/new/dir", "d"]


@pytest.mark.parametrize("fd", range(3, 12))
def test_workdir_through_an_inherited_fd_cannot_reach_the_host(sandbox, fd):
    """runc's CVE-2024-21626: a host directory fd left open lets WORKDIR /proc/self/fd/N escape."""
    held = os.open("/", os.O_RDONLY)  # a host directory fd the sandbox must not carry in
    try:
        out = sandbox.run("pwd; ls /", workdir=f"/proc/self/fd/{fd}")
    finally:
        os.close(held)
    assert out.error and f"/proc/self/fd/{fd}" in out.error or out.exit_code != 0, out
    assert "work" not in out.output  # /work is on the host, not in the image


def test_host_python_is_not_reachable_through_proc_exe(sandbox):
    """runc's CVE-2019-5736: with --init, PID 1 is pybuild's python; it is non-dumpable, so the
    container cannot open /proc/1/exe (the host's interpreter) to overwrite it."""
    out = sandbox.run(["/bin/sh", "-c", "cat /proc/1/exe > /dev/null && echo OPENED; readlink /proc/1/exe || echo DENIED"],
                      init=True)
    assert "OPENED" not in out.output and "DENIED" in out.output, out


def test_dev_has_the_expected_nodes(sandbox):
    out = sandbox.run("ls -la /dev; echo x > /dev/null && head -c 4 /dev/zero | wc -c; mount | grep -c devpts; ls /dev/shm")
    for name in ("null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue", "fd", "stdin"):
        assert f" {name}" in out.output, name
    assert "\n4\n1\n" in out.output


def test_etc_files_are_provided_and_stay_out_of_the_layer(sandbox, tmp_path):
    out = sandbox.run("cat /etc/hostname; grep -c box /etc/hosts", hostname="box")
    assert out.output.split() == ["box", "1"]
    uppers = [os.path.join(r, "upper") for r, ds, _ in os.walk(tmp_path) if "upper" in ds]
    assert uppers and all(not os.path.exists(os.path.join(u, "etc", "hostname")) for u in uppers)


def test_bind_mounts_and_tmpfs(sandbox, tmp_path):
    from runtime.sandbox import Mount

    host = tmp_path / "vol"
    host.mkdir()
    (host / "in.txt").write_text("from host\n")
    out = sandbox.run("cat /data/in.txt; echo out > /data/out.txt; touch /ro/x || echo RO; mount | grep -c ' /scratch '",
                      mounts=[Mount(str(host), "/data"), Mount(str(host), "/ro", readonly=True),
                              Mount("tmpfs", "/scratch", type="tmpfs")])
    assert out.output.split("\n")[0] == "from host"
    assert (host / "out.txt").read_text() == "out\n"
    assert "RO" in out.output and out.output.strip().endswith("1")


def test_readonly_rootfs(sandbox):
    out = sandbox.run("touch /x || echo RO; echo ok > /dev/shm/y && echo SHM", readonly_rootfs=True)
    assert "RO" in out.output and "SHM" in out.output


def test_rootfs_whose_proc_is_a_symlink_is_refused(sandbox, tmp_path):
    lower = tmp_path / "evil"
    lower.mkdir()
    os.symlink("/", lower / "proc")
    out = sandbox.run("true", lowers=[str(lower), sandbox.base])
    assert out.error and "/proc" in out.error


def test_explain_names_each_kernel_step(sandbox):
    from runtime.sandbox import Limits

    out = sandbox.run("true", limits=Limits(memory=64 << 20, pids=50))
    text = "\n".join(out.explain)
    for step in ("cgcreate -g memory:/pybuild/", "cgset -r memory.limit_in_bytes=67108864",
                 "cgset -r pids.max=50", "unshare --mount --uts --ipc --net --pid --fork",
                 "mount -t proc -o nosuid,nodev,noexec proc /proc", "pivot_root", "ip link set lo up", "capsh --drop=",
                 "exec /bin/sh"):
        assert step in text, step


# --- cgroups, for real (v1 on this host) ---

def test_memory_limit_oom_kill_is_reported(sandbox):
    from runtime.sandbox import Limits

    # the tutorial's line; GNU head spells the suffix 1G (busybox also took 1g)
    out = sandbox.run("yes | tr \\\\n x | head -c 1G | grep n", limits=Limits(memory=80 << 20))
    assert out.exit_code == 137 and out.oom_killed, out


def test_cpu_quota_limits_a_busy_loop(sandbox):
    from runtime.sandbox import Limits

    started = time.monotonic()
    out = sandbox.run("timeout 3 sh -c 'while :; do :; done'; true", limits=Limits(cpus=0.05))
    wall = time.monotonic() - started
    assert out.exit_code == 0 and wall >= 3
    cpu_ns = out.stats["cpu_ns"]
    assert 0 < cpu_ns <= 0.10 * 3e9, out.stats  # <= 10% of one CPU over the 3 s, by the cgroup's count


def test_pids_limit_stops_a_fork_bomb(sandbox):
    from runtime.sandbox import Limits

    out = sandbox.run("bomb() { bomb | bomb & }; bomb; sleep 2; echo SURVIVED", limits=Limits(pids=30))
    assert out.stats["pids_denied"] > 0, out.stats
    assert out.stats["pids"] == 0  # PID 1 ended: the kernel killed the rest of its namespace


def test_cgroups_are_made_under_pybuild_and_removed(sandbox):
    seen = {}

    def look(pid: int) -> None:
        with open(f"/proc/{pid}/cgroup") as f:
            seen["lines"] = f.read().splitlines()
        os.kill(pid, signal.SIGKILL)

    sandbox.run(["/bin/sleep", "1000"], on_start=look, cgroup_id="t-cgroup-check")
    memory = next(l for l in seen["lines"] if ":memory:" in l)
    assert memory.endswith(":/pybuild/t-cgroup-check")
    assert not os.path.exists("/sys/fs/cgroup/memory/pybuild/t-cgroup-check")


def test_cgroup_parent(sandbox):
    seen = {}
    sandbox.run(["/bin/sh", "-c", "cat /proc/self/cgroup"], cgroup_parent="/pybuild/t-parent",
                on_start=lambda pid: seen.setdefault("x", os.path.isdir("/sys/fs/cgroup/pids/pybuild/t-parent")))
    assert seen["x"]
    assert not os.path.exists("/sys/fs/cgroup/pids/pybuild/t-parent")


def test_userns_map_root(sandbox):
    """--userns=map-root: root inside, but its capabilities belong to its own user namespace."""
    out = sandbox.run("cat /proc/self/uid_map; id -u; mknod /tmp/n c 1 3 || echo NOMKNOD; echo x > /dev/null && echo DEV",
                      userns="map-root")
    lines = out.output.split("\n")
    assert lines[0].split() == ["0", "0", "65536"] and lines[1] == "0"
    assert "NOMKNOD" in out.output and "DEV" in out.output
    host = sandbox.run("cat /proc/self/uid_map; mknod /tmp/n c 1 3 && echo MKNOD")
    assert host.output.split()[:3] == ["0", "0", "4294967295"] and "MKNOD" in host.output


def test_the_sandbox_dies_with_its_owner(sandbox):
    """kill -9 of the process that spawned it (here: the test's child) ends the whole sandbox; the
    cgroup it leaves is empty, which is what sweep_stale removes on the next start."""
    from runtime.cgroups.hierarchy import find_hierarchies

    seen = {}

    def kill_owner(pid: int) -> None:
        with open(f"/proc/{pid}/stat") as f:
            middle = int(f.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{middle}/stat") as f:
            owner = int(f.read().rsplit(")", 1)[1].split()[1])
        os.kill(owner, signal.SIGKILL)
        for _ in range(500):
            if not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.01)
        seen["gone"] = not os.path.exists(f"/proc/{pid}")

    out = sandbox.run(["/bin/sleep", "1000"], on_start=kill_owner, cgroup_id="t-owner-dies")
    assert seen["gone"] and out.exit_code is None  # the owner never reported
    left = [os.path.join(h.mountpoint, "pybuild", "t-owner-dies") for h in find_hierarchies()]
    left = [d for d in left if os.path.isdir(d)]
    assert left and all(not open(f"{d}/cgroup.procs").read().strip() for d in left)
    for d in left:  # what sweep_stale does once they are a minute old (tested in test_units)
        os.rmdir(d)
        try:
            os.rmdir(os.path.dirname(d))  # pybuild/ itself, when this test made it and it is empty
        except OSError:
            pass


def test_device_rules_allow_only_the_dev_nodes(sandbox):
    """CAP_MKNOD is in Docker's default set; the devices cgroup keeps a made node unusable."""
    seen = {}

    def rules(pid: int) -> None:
        path = next(l.split(":", 2)[2] for l in open(f"/proc/{pid}/cgroup").read().splitlines() if ":devices:" in l)
        seen["list"] = open(f"/sys/fs/cgroup/devices{path}/devices.list").read().split("\n")

    out = sandbox.run("sleep 0.3; mknod /tmp/kmsg c 1 11 && echo MADE; head -c1 /tmp/kmsg || echo DENIED; "
                      "echo x > /dev/null && echo NULL", on_start=rules)
    assert out.output.split("\n")[0] == "MADE" and "DENIED" in out.output and "NULL" in out.output
    assert "c 1:3 rwm" in seen["list"] and "a *:* rwm" not in seen["list"]
