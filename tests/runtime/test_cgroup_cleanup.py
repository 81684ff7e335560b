"""Every cgroup a sandbox makes is removed on every path its owner can take: a normal exit, and an
owner interrupted while it waits (Ctrl-C's KeyboardInterrupt, SIGTERM, SIGHUP), which used to
leave empty pybuild/<id> cgroups behind (a RUN step of an interrupted `pybuild build`)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from corpus_paths import default_signals

from corpus_paths import REPO

# The owner: spawns `sleep 30` in a sandbox over a busybox-only rootfs, prints its cgroup dirs and
# PID 1, then waits for it.
OWNER = r"""
import sys
from runtime.sandbox import SandboxSpec, spawn
p = spawn(SandboxSpec(rootfs=sys.argv[1], argv=["/bin/sleep", "30"], env={}, network="none"))
print(p.pid, *p.cgroup, flush=True)
p.wait()
print("returned", flush=True)
"""


@pytest.fixture
def rootfs(tmp_path):
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("no busybox binary on this host")
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in ("sh", "sleep"):
        os.symlink("busybox", root / "bin" / applet)
    return str(root)


def _owner(rootfs: str) -> tuple[subprocess.Popen, int, list[str]]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, rootfs], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=default_signals)
    pid, *dirs = proc.stdout.readline().split()
    assert dirs and all(os.path.isdir(d) for d in dirs)
    return proc, int(pid), dirs


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.root
@pytest.mark.cgroups
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_an_interrupted_owner_removes_the_sandbox_and_its_cgroups(rootfs, sig):
    proc, pid1, dirs = _owner(rootfs)
    time.sleep(0.5)  # the owner is in wait() by now (it prints just before)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    assert "returned" not in out
    # SIGTERM/SIGHUP: still ended by that signal, as before (after the cleanup)
    if sig != signal.SIGINT:
        assert proc.returncode == -sig
    deadline = time.monotonic() + 5
    while not _gone(pid1) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(pid1), "the sandbox outlived its owner"
    assert [d for d in dirs if os.path.exists(d)] == []


@pytest.mark.root
@pytest.mark.cgroups
def test_a_normal_wait_removes_the_cgroups(rootfs):
    script = OWNER.replace('"/bin/sleep", "30"', '"/bin/sh", "-c", "exit 3"')
    proc = subprocess.run([sys.executable, "-c", script, rootfs], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=30)
    _pid, *dirs = proc.stdout.split("\n")[0].split()
    assert "returned" in proc.stdout and dirs
    assert [d for d in dirs if os.path.exists(d)] == []


def test_remove_goes_on_to_every_hierarchy_when_one_fails():
    """One hierarchy's rmdir failing (EBUSY past the deadline) must not leave the others."""
    from runtime.cgroups import Cgroups

    class Fake:
        controllers = frozenset()

        def __init__(self, fail):
            self.fail, self.removed = fail, False

        def remove(self, deadline):
            if self.fail:
                raise OSError(16, "busy")
            self.removed = True

    drivers = [Fake(True), Fake(False), Fake(False)]
    with pytest.raises(OSError):
        Cgroups(drivers, None).remove()
    assert [d.removed for d in drivers] == [False, True, True]


@pytest.mark.root
@pytest.mark.cgroups
def test_a_signal_while_the_cgroups_are_made_leaves_none(monkeypatch):
    """A build killed at the moment its RUN step's cgroups are being made (the sandbox turns SIGTERM
    into an exception there): the hierarchies already made go too. Seen in the chaos suite: cpu,
    cpuacct and memory were left when the kill came before the other hierarchies."""
    import runtime.cgroups as cg

    made: list[str] = []
    create = cg.V1Driver.create

    def create_then_interrupt(self):
        create(self)
        made.append(self.path)
        if len(made) == 3:
            raise KeyboardInterrupt  # as the SIGTERM handler's exception would, between two mkdirs
    monkeypatch.setattr(cg.V1Driver, "create", create_then_interrupt)
    cid = os.urandom(8).hex()
    with pytest.raises(KeyboardInterrupt):
        cg.open_cgroups(cid)
    assert len(made) == 3 and [p for p in made if os.path.exists(p)] == []
