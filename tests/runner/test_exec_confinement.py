"""`pybuild exec` is confined exactly like the container's first process (issue 12, item 1): the same
capability sets, groups, no_new_privs and seccomp filter (one code path, sandbox.confine), and the same masked and
read-only paths (mounts of the namespace it joins). Compared field by field with PID 1's
/proc/<pid>/status, as `docker exec` is on the same host."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap]

FIELDS = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs",
          "Seccomp", "Seccomp_filters")


def status(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if k in FIELDS}


def both(pb, name: str, *exec_args: str) -> tuple[dict[str, str], dict[str, str]]:
    """(exec'd process, PID 1) status fields, read by one exec."""
    out = pb("exec", *exec_args, name, "sh", "-c", "cat /proc/self/status; echo ===; cat /proc/1/status",
             check=True).stdout
    mine, _, first = out.partition("===\n")
    return status(mine), status(first)


@pytest.fixture()
def sleeper(pb, cleanup):
    def start(name: str, *flags: str) -> str:
        cleanup.append(name)
        pb("run", "-d", "--name", name, *flags, "runner-test", "sleeper", check=True)
        return name
    return start


def test_exec_has_the_first_process_capabilities_groups_and_no_new_privs(pb, sleeper):
    name = sleeper("conf-default")
    mine, first = both(pb, name)
    assert mine == first, (mine, first)
    assert mine["CapBnd"] == mine["CapEff"] == "00000000a80425fb"  # Docker's default 14
    assert mine["CapInh"] == mine["CapAmb"] == "0000000000000000"
    assert mine["NoNewPrivs"] == "1"
    assert mine["Seccomp"] == "2" and mine["Seccomp_filters"] == "1"  # the one filter PID 1 has
    assert mine["Groups"] == "0"  # the container's root groups, not the caller's


def test_exec_cannot_mount_proc_nor_write_proc_sys(pb, sleeper):
    name = sleeper("conf-mount")
    res = pb("exec", name, "sh", "-c", "mkdir -p /x && mount -t proc proc /x && echo MOUNTED")
    assert res.returncode != 0 and "MOUNTED" not in res.stdout
    assert "permission denied" in res.stderr.lower()
    res = pb("exec", name, "sh", "-c", "echo 1 > /proc/sys/vm/drop_caches")
    assert res.returncode != 0 and "Read-only file system" in res.stderr
    # the masks are the mount namespace's: /proc/keys and /proc/timer_list are /dev/null there
    out = pb("exec", name, "sh", "-c", "stat -c %t,%T /proc/keys /proc/timer_list", check=True).stdout
    assert out.split() == ["1,3", "1,3"]


def test_exec_cannot_raise_capabilities(pb, sleeper):
    name = sleeper("conf-raise")
    # not in the bounding set: no inheritable (nor ambient) SYS_ADMIN for what it execs
    res = pb("exec", name, "setpriv", "--inh-caps", "+sys_admin", "--ambient-caps", "+sys_admin", "true")
    assert res.returncode != 0 and "not permitted" in res.stderr
    # a non-root user keeps nothing, and no_new_privs makes setuid binaries give nothing back
    mine, _ = both(pb, name, "-u", "nobody")
    assert mine["Uid"].split()[0] == "65534"
    assert mine["CapEff"] == mine["CapPrm"] == "0000000000000000" and mine["NoNewPrivs"] == "1"
    assert mine["CapBnd"] == "00000000a80425fb"


def test_cap_add_and_cap_drop_reach_exec(pb, sleeper):
    name = sleeper("conf-capadd", "--cap-add", "SYS_ADMIN", "--cap-drop", "CHOWN")
    mine, first = both(pb, name)
    assert mine == first and mine["CapEff"] == "00000000a82425fa"
    out = pb("exec", name, "sh", "-c", "mkdir -p /x && mount -t tmpfs t /x && echo MOUNTED; chown 1 /tmp; echo $?")
    assert out.stdout.split() == ["MOUNTED", "1"]


def test_exec_user_defaults_to_the_container_user(pb, sleeper):
    name = sleeper("conf-user", "--user", "nobody")
    mine, first = both(pb, name)
    assert mine == first and mine["Uid"].split()[0] == "65534" and mine["CapEff"] == "0000000000000000"
    assert pb("exec", name, "sh", "-c", "echo $HOME", check=True).stdout == "/nonexistent\n"


def test_a_record_written_before_masks_were_recorded_gets_its_flags_within_pid1s_bounding_set():
    import os

    from runtime.exec import container_caps

    assert container_caps(0x5, os.getpid()) == 0x5  # the recorded mask is the answer
    with open(f"/proc/{os.getpid()}/status") as f:
        bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    assert container_caps(None, os.getpid(), ("SYS_ADMIN",), ("CHOWN",)) == 0xa82425fa & bounding
    assert container_caps(None, 2 ** 22 + 12345) == 0  # PID 1 gone: nothing rather than a guess
