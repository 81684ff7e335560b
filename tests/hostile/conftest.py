"""Shared fixtures of the hostile suite (issue 12, item 8): a scratch store holding the small busybox
base (tests/conformance/base.py) as `hostile-base:latest`, a `pb` helper that runs the real CLI on
it, and `record(attack, held)`, which appends one line per attempt to a results file so the run
ends with a tried / held / failed summary (also kept in $PYBUILD_HOSTILE_RESULTS when set).

Each test file adds its own attackers; this file stays small and shared."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from corpus_paths import cli_runner

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO / "tests" / "conformance"
BASE_REF = "hostile-base:latest"


def _results_path(config) -> Path:
    if getattr(config, "_hostile_results", None) is None:
        chosen = os.environ.get("PYBUILD_HOSTILE_RESULTS")
        if chosen:
            config._hostile_results = Path(chosen)
        else:
            config._hostile_results = Path(config._tmp_path_factory.getbasetemp()) / "hostile-results.tsv"
    return config._hostile_results


@pytest.fixture(scope="session")
def busybox_tar() -> str:
    """The conformance base tarball (Debian's busybox-static, one symlink per applet), made once."""
    if str(CONFORMANCE) not in sys.path:
        sys.path.insert(0, str(CONFORMANCE))   # base.py imports its sibling model.py
    import base  # tests/conformance/base.py
    if not os.path.exists(base.BUSYBOX):
        pytest.skip(f"{base.BUSYBOX} (Debian's busybox-static) is needed for the hostile base")
    return base.base_tar_path()


@pytest.fixture(scope="session")
def hostile_store(tmp_path_factory, busybox_tar) -> str:
    """A scratch store with the busybox base tagged hostile-base:latest; returns its root."""
    from cache.archive import import_rootfs
    from cache.store import Store

    root = str(tmp_path_factory.mktemp("hostile") / "store")
    with open(busybox_tar, "rb") as f:
        import_rootfs(Store.open(root), f, BASE_REF, changes={"Cmd": ["sh"]})
    return root


@pytest.fixture()
def pb(hostile_store):
    """pb("run", "--rm", ...) -> CompletedProcess of the real CLI on the hostile store."""
    return cli_runner(hostile_store)


@pytest.fixture()
def record(request):
    """record(attack, held) -> None: one line per attempt (test id, attack, held|FAILED).
    Record before asserting, so a failed attack is counted too."""
    path = _results_path(request.config)

    def write(attack: str, held: bool) -> None:
        line = f"{request.node.nodeid}\t{attack}\t{'held' if held else 'FAILED'}\n"
        with open(path, "a") as f:
            f.write(line)
    return write


def pytest_terminal_summary(terminalreporter, config):
    path = getattr(config, "_hostile_results", None)
    if path is None or not path.exists():
        return
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line.count("\t") == 2]
    if not rows:
        return
    failed = [r for r in rows if r[2] != "held"]
    terminalreporter.section("hostile suite")
    terminalreporter.write_line(f"tried {len(rows)}  held {len(rows) - len(failed)}  failed {len(failed)}")
    per: dict[str, list[int]] = {}
    for _, attack, verdict in rows:
        counts = per.setdefault(attack.split(" [")[0], [0, 0])
        counts[verdict == "held"] += 1
    for attack, (bad, good) in sorted(per.items()):
        terminalreporter.write_line(f"  {attack:<48} tried {bad + good:>3}  held {good:>3}  failed {bad:>3}")
    for nodeid, attack, _ in failed:
        terminalreporter.write_line(f"FAILED  {attack}  ({nodeid})")
