"""CVE-2018-15664 as an attacker plays it: a container swaps a directory and a symlink to a host
path with renameat2(RENAME_EXCHANGE) in a tight loop (race/swap.c, built static at test time)
while `cp` (both ways) and `export` work on a path under that directory. Not one try may read,
write or export a host file. PYBUILD_RACE_TRIES sets the tries per operation (default 200)."""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from test_run import wait_for  # the runner tests' helpers (tests/runner is on sys.path)

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap,
              pytest.mark.slow]

TRIES = int(os.environ.get("PYBUILD_RACE_TRIES", "200"))
HOST_SECRET = b"HOST-SECRET\n"


@pytest.fixture(scope="module")
def race_image(store_root, tmp_path_factory) -> str:
    """An image holding only /swap, the static attacker."""
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the attacker")
    from cache.archive import import_rootfs
    from cache.store import Store

    out = tmp_path_factory.mktemp("swap") / "swap"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(Path(__file__).parent / "race" / "swap.c")],
                   check=True, capture_output=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(out, arcname="swap")
    buf.seek(0)
    import_rootfs(Store.open(store_root), buf, "race-test:latest", changes={"Cmd": ["/swap"]})
    return "race-test:latest"


@pytest.fixture()
def attacker(pb, race_image, tmp_path):
    """A running attacker whose symlink points at a host directory holding x = HOST_SECRET."""
    from runtime.containers import lifecycle
    from runtime.containers.records import Records

    host = tmp_path / "host-dir"
    host.mkdir()
    (host / "x").write_bytes(HOST_SECRET)
    name = f"race-{os.getpid()}-{os.urandom(3).hex()}"
    pb("run", "-d", "--name", name, race_image, "/swap", str(host), check=True)
    try:
        wait_for(lambda: "ready" in pb("logs", name).stdout, what="the attacker")
        records = Records(pb.root)
        yield records, lifecycle.find(records, name), host
    finally:
        pb("rm", "-f", name)


ERRORS: Counter = Counter()


def _try(fn) -> bool:
    """One attempt; the attacker makes many fail (the path is a dangling link half the time)."""
    from grammar.errors import PybuildError

    try:
        fn()
        return True
    except (PybuildError, OSError, shutil.Error) as err:
        ERRORS[re.sub(r"[0-9a-f]{6,}|-[0-9]+", "N", str(err))[:120]] += 1
        return False


def _attack(kind: str, one_try) -> None:
    """TRIES tries of one_try(i) -> (completed, reached_the_host); more (up to 5x) while none has
    completed, so that a loaded machine cannot make the test pass without exercising the copy."""
    done = breached = i = 0
    while i < TRIES or (done == 0 and i < 5 * TRIES):
        completed, reached = one_try(i)
        done += completed
        breached += reached
        i += 1
    print(f"\nrace {kind}: {i} tries, {done} completed, {breached} reached the host; "
          f"failures: {ERRORS.most_common(2)}")
    ERRORS.clear()
    assert breached == 0, f"{kind}: {breached} of {i} tries reached the host"
    assert done > 0, f"{kind}: no try completed: the race was not exercised"


def test_cp_out_never_reads_a_host_file(attacker, tmp_path):
    from runtime.containers.files import copy_from

    records, c, _host = attacker

    def one(i: int) -> tuple[bool, bool]:
        out = tmp_path / f"out-{i}"
        done = _try(lambda: copy_from(records, c, "/data/d/x", str(out)))
        return done, out.is_file() and out.read_bytes() == HOST_SECRET

    _attack("cp-out", one)


def test_cp_in_never_writes_a_host_file(attacker, tmp_path):
    from runtime.containers.files import copy_to

    records, c, host = attacker
    src = tmp_path / "planted"
    src.write_bytes(b"from cp\n")

    def one(i: int) -> tuple[bool, bool]:
        done = _try(lambda: copy_to(records, c, str(src), f"/data/d/planted-{i}"))
        return done, (host / f"planted-{i}").exists()

    _attack("cp-in", one)
    assert sorted(os.listdir(host)) == ["x"] and (host / "x").read_bytes() == HOST_SECRET


def test_export_never_includes_a_host_file(attacker, tmp_path):
    from runtime.containers.files import export_rootfs

    records, c, _host = attacker

    def one(i: int) -> tuple[bool, bool]:
        out = tmp_path / f"fs-{i}.tar"
        done = _try(lambda: export_rootfs(records, c, str(out)))
        reached = False
        if out.exists():
            try:
                with tarfile.open(out) as tar:
                    for member in tar.getmembers():
                        f = tar.extractfile(member) if member.isfile() else None
                        if f is not None and f.read() == HOST_SECRET:
                            reached = True
                            break
            except tarfile.TarError:
                pass
            out.unlink()
        return done, reached

    _attack("export", one)


@pytest.mark.parametrize("walk", [False, True], ids=["openat2", "fd-walk"])
def test_resolver_never_leaves_the_live_root(attacker, walk):
    """rootfs_fd itself, both ways (the fd-by-fd walk is what runs where openat2 is missing)."""
    from runtime import rootfs_fd

    _records, c, _host = attacker
    root = rootfs_fd.open_root(f"/proc/{c.state.pid}/root")

    def one(_i: int) -> tuple[bool, bool]:
        try:
            fd = rootfs_fd.resolve(root, "/data/d/x", os.O_RDONLY, walk=walk)
        except OSError:
            return False, False
        with os.fdopen(fd, "rb") as f:
            return True, f.read() == HOST_SECRET

    try:
        _attack(f"resolve ({'walk' if walk else 'openat2'})", one)
    finally:
        os.close(root)


def test_mount_targets_stay_inside_and_ro_hits_the_volume_only(pb, tmp_path):
    """Volume and tmpfs targets are resolved in the rootfs and mounted through an fd; a :ro
    remount reaches the volume's own mount, never the rootfs under it."""
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "f").write_text("vol\n")
    script = ("touch /data/x 2>/dev/null && echo data-rw || echo data-ro; touch /y && echo root-rw; cat /data/f; "
              "ln -s /tmp/made /lnk 2>/dev/null; grep -c ' /scratch tmpfs' /proc/mounts")
    res = pb("run", "--rm", "-v", f"{vol}:/data:ro", "--tmpfs", "/scratch", "runner-test", "sh", "-c", script)
    assert (res.returncode, res.stdout) == (0, "data-ro\nroot-rw\nvol\n1\n"), res.stderr
    # a target whose parents are missing: made (and mounted) inside the rootfs
    res = pb("run", "--rm", "-v", f"{vol}:/usr/local/made/m", "runner-test", "sh", "-c",
             "cat /usr/local/made/m/f")
    assert (res.returncode, res.stdout) == (0, "vol\n"), res.stderr
