"""kill -9 at random moments, and 8 processes at once: the store stays consistent and keeps every
tag it reported written. Real subprocesses against a real store."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cache import gc
from cache.store import Store

pytestmark = [pytest.mark.root, pytest.mark.slow]

WORKER = str(Path(__file__).with_name("cache_worker.py"))
ITERATIONS = 50


def _upper(tmp_path: Path) -> Path:
    up = tmp_path / "upper"
    (up / "etc").mkdir(parents=True)
    for i in range(30):
        (up / "etc" / f"f{i}").write_bytes(os.urandom(20_000))
    os.mknod(up / "gone", 0o020000, os.makedev(0, 0))
    return up


def test_kill_9_at_random_moments(tmp_path):
    root, upper = str(tmp_path / "store"), _upper(tmp_path)
    Store.open(root)
    rng = random.Random(1234)
    reported: dict[str, str] = {}
    for i in range(ITERATIONS):
        proc = subprocess.Popen([sys.executable, WORKER, "crash", root, str(upper), f"i{i}"],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.15, 0.6))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        for line in out.splitlines():
            _, ref, image_id = line.split()
            reported[ref] = image_id
        store = Store.open(root)  # sweeps what the killed process left
        assert os.listdir(store.tmp) == [], f"iteration {i}: temp files survived the sweep"
        assert all(len(n) == 64 for n in os.listdir(os.path.join(root, "layers")))
    assert len(reported) >= ITERATIONS // 2, "the worker was killed before it could tag anything"
    store = Store.open(root)
    assert gc.check(store) == []
    for ref, image_id in reported.items():
        assert store.resolve(ref).id == image_id, f"{ref} was reported written but is lost"
    for name in os.listdir(os.path.join(root, "layers")):
        with open(os.path.join(root, "diffids", name)) as f:
            assert json.load(f)["digest"]  # every complete layer dir has its blob recorded


def test_eight_processes_at_once(tmp_path):
    root, upper = str(tmp_path / "store"), _upper(tmp_path)
    Store.open(root)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, WORKER, "race", root, str(upper), str(n), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(8)]
    time.sleep(1.0)  # let every process reach the start line
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(out.split())
    same, diff_ids, paths = {r[0] for r in results}, {r[2] for r in results}, {r[4] for r in results}
    assert len(same) == 1 and len(diff_ids) == 1 and len(paths) == 1
    assert len({r[1] for r in results}) == 8 and len({r[3] for r in results}) == 8
    store = Store.open(root)
    assert gc.check(store) == []
    for n, r in enumerate(results):
        assert store.resolve(f"race/p{n}").id == r[3]
    assert store.resolve("race/shared").id in {r[3] for r in results}
    refs = [ref for ref, _ in store.list_images() if ref]
    assert sorted(refs) == sorted([f"docker.io/race/p{n}:latest" for n in range(8)] + ["docker.io/race/shared:latest"])
    assert os.listdir(store.tmp) == [] and os.listdir(os.path.join(root, "layers")) == [next(iter(diff_ids))[7:]]
    layer = Path(next(iter(paths)))
    assert sorted(os.listdir(layer / "etc")) == sorted(os.listdir(upper / "etc"))
