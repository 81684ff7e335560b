"""gc against work in flight: a live process's unreferenced blobs, re-used blobs and held images
survive `system prune`; a dead process's leftovers do not (cache/leases.py)."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap

import pytest

from cache import gc
from cache.archive import import_rootfs
from cache.store import Store

# A second process that writes (or holds) through the store API, reports what it did on stdout,
# then waits for a line on stdin: the "build still running" that gc must not undercut.
WORKER = textwrap.dedent("""
    import sys
    from cache.store import Store
    store = Store.open(sys.argv[1])
    what = sys.argv[2]
    if what == "put":
        print(store.blobs.put_bytes(b"layer in flight " + sys.argv[3].encode()).digest, flush=True)
    elif what == "hold":
        store.hold(store.resolve(sys.argv[3]))
        print("held", flush=True)
    sys.stdin.readline()
""")


@pytest.fixture
def worker():
    procs = []

    def start(root, *args):
        p = subprocess.Popen([sys.executable, "-c", WORKER, str(root), *args], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        procs.append(p)
        return p, p.stdout.readline().strip()
    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _age(path: str) -> None:
    os.utime(path, (1_000_000_000, 1_000_000_000))  # 2001: older than any lease


def test_blob_written_by_a_live_build_survives_gc(tmp_path, worker):
    store = Store.open(str(tmp_path / "s"))
    proc, digest = worker(store.root, "put", "a")
    assert store.blobs.exists(digest)
    assert digest not in gc.collect(store).blobs
    assert store.blobs.exists(digest)
    proc.communicate("done\n")  # the build ends without ever tagging it: now it is garbage
    assert digest in gc.collect(store).blobs and not store.blobs.exists(digest)
    assert os.listdir(store._p("leases")) == []


def test_killed_writer_leaves_a_stale_lease_that_gc_ignores_and_sweeps(tmp_path, worker):
    store = Store.open(str(tmp_path / "s"))
    proc, digest = worker(store.root, "put", "b")
    leases = os.listdir(store._p("leases"))
    assert len(leases) == 1 and str(proc.pid) in leases[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.listdir(store._p("leases")) == leases  # kill -9: no atexit
    assert digest in gc.collect(store).blobs
    assert os.listdir(store._p("leases")) == []


def test_old_blob_re_used_by_a_live_build_is_freshened_and_kept(tmp_path, worker):
    store = Store.open(str(tmp_path / "s"))
    digest = store.blobs.put_bytes(b"layer in flight c").digest
    store.leases.release()
    _age(store.blobs.path(digest))  # garbage from long ago, e.g. a layer of a removed image
    proc, again = worker(store.root, "put", "c")  # a build makes the identical layer again
    assert again == digest
    assert digest not in gc.collect(store).blobs and store.blobs.exists(digest)
    proc.communicate("done\n")


def test_held_base_image_survives_rmi_and_gc_until_the_build_ends(tmp_path, worker):
    store = Store.open(str(tmp_path / "s"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc/os-release")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"base"))
    image = import_rootfs(store, io.BytesIO(buf.getvalue()), "base:1")
    layer_dir = store.unpacked_layer(image.diff_ids[0])
    store.leases.release()
    for digest in (image.manifest_descriptor.digest, image.id, image.layers[0].digest):
        _age(store.blobs.path(digest))
    _age(layer_dir)
    proc, said = worker(store.root, "hold", "base:1")
    assert said == "held"
    store.untag("base:1")
    store.remove_image(image.manifest_descriptor.digest)
    result = gc.collect(store)
    assert result.blobs == () and result.layers == ()
    assert os.path.isdir(layer_dir) and store.blobs.exists(image.layers[0].digest)
    proc.communicate("done\n")
    result = gc.collect(store)
    assert image.layers[0].digest in result.blobs and image.diff_ids[0] in result.layers
    assert gc.check(store) == []


def test_unreferenced_old_blob_goes_and_dry_run_removes_nothing(store):
    digest = store.blobs.put_bytes(b"orphan").digest
    store.leases.release()
    _age(store.blobs.path(digest))
    assert gc.collect(store, dry_run=True).blobs == (digest,) and store.blobs.exists(digest)
    assert gc.collect(store, grace_seconds=10 ** 10).blobs == ()  # grace: younger than ~300 years
    assert gc.collect(store).blobs == (digest,) and not store.blobs.exists(digest)
    assert os.listdir(store.tmp) == []  # nothing renamed aside is left behind
