"""--explain on run and build: each kernel step, written as the command a reader would type."""
from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap]

STEPS = [r"^\+ unshare --mount --uts --ipc --net --pid --fork$",
         r"^\+ mount -t overlay overlay -o lowerdir=",
         r"^\+ mount -t proc -o nosuid,nodev,noexec proc /proc$",
         r"^\+ cgset -r (memory\.limit_in_bytes|memory\.max)=83886080 /pybuild/",
         r"^\+ cgset -r (cpu\.cfs_quota_us=5000|cpu\.max=5000 100000) /pybuild/",
         r"^\+ pivot_root .* && umount -l /",
         r"^\+ capsh --drop=.*cap_sys_admin",
         r"^\+ exec sh$"]


def test_run_explain_prints_the_steps_in_order(pb):
    out = pb("run", "--rm", "--explain", "--memory", "80m", "--cpus", "0.05", "runner-test", "sh", "-c", "echo ran",
             check=True)
    assert out.stdout == "ran\n"
    lines = out.stderr.splitlines()
    found = [next((i for i, line in enumerate(lines) if re.search(step, line)), None) for step in STEPS]
    assert None not in found, "\n".join(f"missing {s}" for s, i in zip(STEPS, found) if i is None) + "\n" + out.stderr
    assert found.index(min(found)) in (0, 1) and found[-1] == max(found)  # namespaces first, exec last


def test_without_explain_nothing_is_printed(pb):
    out = pb("run", "--rm", "runner-test", "true", check=True)
    assert out.stderr == ""


def test_build_explain_shows_the_run_steps(pb, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM runner-test\nRUN echo made > /made\n")
    out = pb("build", "--explain", "--no-cache", "--progress", "plain", str(tmp_path), check=True)
    assert re.search(r"^#\d+ \+ unshare --mount --uts --ipc --net --pid --fork|^#\d+ \+ unshare --mount --uts --ipc --pid --fork",
                     out.stderr, re.M), out.stderr
    assert re.search(r"^#\d+ \+ pivot_root ", out.stderr, re.M)
    quiet = pb("build", "--no-cache", "--progress", "plain", str(tmp_path), check=True)
    assert "+ unshare" not in quiet.stderr
