"""Shared fixtures: where the corpora are, the cached debootstrap base, and the leak check.

Tests that need root, namespaces, cgroups, a registry or other tools carry markers (see
pyproject.toml); CI runs all of them. A test skips only when what it needs cannot exist here, and
says why.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from corpus_paths import REPO, corpus_dir


@pytest.fixture(scope="session")
def corpus() -> Path:
    found = corpus_dir()
    if found is None:
        pytest.skip("no corpus: set PYBUILD_CORPUS or place shared/corpus beside the repository")
    return found


@pytest.fixture(scope="session")
def base_tarball() -> Path:
    """The debootstrap bookworm minbase tarball, made once by scripts/test-base and cached outside
    the repository (PYBUILD_TEST_BASE when scripts/test already made it)."""
    path = os.environ.get("PYBUILD_TEST_BASE")
    if not path:
        out = subprocess.run([str(REPO / "scripts" / "test-base")], check=True, capture_output=True, text=True)
        path = out.stdout.strip()
    return Path(path)


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (run the suite as root, as CI does)")
        for item in items:
            if any(item.get_closest_marker(m) for m in ("root", "namespaces", "cgroups")):
                item.add_marker(skip)


# --- leak check: a test that needs root must leave no mount, cgroup, network device or process ---

def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        # mount id and parent id change for nothing; what matters is where and what.
        return sorted(" ".join(line.split()[3:5]) + " " + line.split(" - ")[-1].split()[0] for line in f)


def _cgroups() -> list[str]:
    found = []
    for top in Path("/sys/fs/cgroup").iterdir():
        path = top / "pybuild"
        # os.walk ignores a cgroup removed while it walks (another process's container ending)
        for dirpath, _dirs, _files in os.walk(path):
            found.append(dirpath)
    return sorted(found)


def _links() -> list[str]:
    return sorted(os.listdir("/sys/class/net"))


# Session-long helpers that fixtures start (the test registries): not a test's leak. Fixtures add
# their pids through the plugin manager (tests/registry/reghelpers.py: _long_lived).
LONG_LIVED_CHILDREN: set[int] = set()


def _children() -> list[int]:
    me = os.getpid()
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == me and fields[0] != "Z" and int(entry) not in LONG_LIVED_CHILDREN:
                    kids.append(int(entry))
            except (OSError, IndexError):
                pass
    return kids


def machine_state() -> dict:
    return {"mounts": _mounts(), "cgroups": _cgroups(), "links": _links(), "children": _children()}


@pytest.fixture(autouse=True)
def no_leaks(request):
    """For tests marked root/namespaces/cgroups: the machine looks the same before and after."""
    if not any(request.node.get_closest_marker(m) for m in ("root", "namespaces", "cgroups")):
        yield
        return
    before = machine_state()
    yield
    after = machine_state()
    # Only what appeared counts: a mount that a parallel process removed is not our leak.
    leaked = {k: sorted(set(after[k]) - set(before[k])) for k in before}
    leaked = {k: v for k, v in leaked.items() if v}
    assert not leaked, f"test left behind: {leaked}"
