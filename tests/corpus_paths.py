"""Where the external corpora are: importable by test modules at collection time.

(A module of its own, not conftest: several conftest.py files exist, and `from conftest import`
would pick whichever one pytest put first on sys.path.)
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path | None:
    """$PYBUILD_CORPUS, else ../shared/corpus beside the repository."""
    env = os.environ.get("PYBUILD_CORPUS")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "corpus"]:
        if candidate.is_dir():
            return candidate
    return None


def default_signals() -> None:
    """preexec_fn for a child the test interrupts: SIGINT and SIGHUP back to their defaults. A test
    run started in the background (`cmd &` ignores SIGINT) or under nohup (SIGHUP) passes those
    dispositions on, and the child would never see the signal the test sends."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def busybox_base_tar() -> str:
    """The conformance suite's busybox-static base tarball (tests/conformance/base.py makes and
    caches it), for tests that want a tiny real image; skips the test where it cannot be made."""
    import subprocess
    import sys

    import pytest

    sys.path.insert(0, str(REPO / "tests" / "conformance"))
    try:
        from base import base_tar_path

        return base_tar_path()
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"no busybox base: {err}")
    finally:
        sys.path.pop(0)


def cli_runner(root: str):
    """pb("run", "--rm", ...) -> CompletedProcess of the real CLI on the store at `root` (the
    runner's and the hostile suite's `pb` fixtures); pb.root and pb.argv for tests that Popen."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "builder.cli", "--root", root]

    def run(*args: str, check: bool = False, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        out = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, **kw)
        if check and out.returncode != 0:
            raise AssertionError(f"{[*argv, *args]} -> {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out
    run.root = root
    run.argv = argv
    return run
