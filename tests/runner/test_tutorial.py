"""The tutorial end to end, through the CLI as a reader types it: build samples/node-app (node from
Debian's apt mirror), run it detached with --init and -p, ask it over HTTP from the host, stop it;
then the foreground Ctrl-C story with the real node: ignored as PID 1, forwarded by --init."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_run import free_port, wait_for  # the runner tests' helpers (tests/runner is on sys.path)

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap,
              pytest.mark.network, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
REPO_SAMPLE = "samples/node-app"


@pytest.fixture(scope="module")
def node_app(store_root):
    out = subprocess.run([sys.executable, "-m", "builder.cli", "--root", store_root, "-t", "my-node-app:1.0",
                          "--progress", "plain", REPO_SAMPLE], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return "my-node-app:1.0"


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
        return r.read().decode()


def test_build_run_detached_with_a_published_port_and_stop(pb, cleanup, node_app):
    port = free_port()
    cleanup.append("tutorial-web")
    pb("run", "-d", "--init", "--name", "tutorial-web", "-p", f"{port}:3000", node_app, check=True)
    assert wait_for(lambda: _try(port), what="node to answer") == "hi lol"
    assert pb("inspect", "tutorial-web").returncode == 0
    stopped = pb("stop", "tutorial-web")
    assert stopped.returncode == 0
    assert "Exited" in pb("ps", "-a", check=True).stdout


def _try(port: int) -> str | None:
    try:
        return _get(port).strip()
    except OSError:
        return None


@pytest.mark.parametrize("init", [True, False])
def test_ctrl_c_stops_node_only_with_init(pb, cleanup, node_app, init):
    name = f"tutorial-fg-{int(init)}"
    port = free_port()
    cleanup.append(name)
    cmd = [sys.executable, "-m", "builder.cli", "--root", pb.root, "run", "--rm", "--name", name,
           "-p", f"127.0.0.1:{port}:3000", "--stop-timeout", "1", *(["--init"] if init else []), node_app]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _try(port), timeout=30, what="node to answer")
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        start = time.monotonic()
        try:
            rc = proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            rc = None
        if init:
            assert rc is not None and time.monotonic() - start < 1.0
        else:
            assert rc is None and _try(port) == "hi lol"  # node as PID 1 shrugged it off
            assert pb("stop", name).returncode == 0     # SIGTERM ignored too: SIGKILL after 1 s
            assert proc.wait(timeout=10) == 137
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
