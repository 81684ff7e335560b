"""Images of many layers build and run (the overlay options used to overflow mount(2)'s one page
from ~35 layers on), and one deeper than Docker's 128 is refused with what to do."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from corpus_paths import busybox_base_tar

REPO = Path(__file__).resolve().parents[2]
PYBUILD = [sys.executable, "-m", "builder.cli"] if not (REPO / ".venv/bin/pybuild").exists() else [str(REPO / ".venv/bin/pybuild")]

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups]


def _pb(root, *args, cwd=None):
    return subprocess.run([*PYBUILD, "--root", str(root), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def _context(path: Path, base: str, n: int, tail: str = "") -> Path:
    path.mkdir()
    lines = [f"FROM {base}"]
    for i in range(n):
        (path / f"f{i}").write_text(f"f{i}\n")
        lines.append(f"COPY f{i} /f{i}")
    (path / "Dockerfile").write_text("\n".join(lines) + "\n" + tail)
    return path


@pytest.fixture
def busybox_base(tmp_path):
    tar = busybox_base_tar()
    root = tmp_path / "store"
    out = _pb(root, "import", tar, "bb:1")
    assert out.returncode == 0, out.stderr
    return root


def test_sixty_copies_from_scratch_build(tmp_path):
    ctx = _context(tmp_path / "ctx", "scratch", 60)
    out = _pb(tmp_path / "store", "build", "-t", "s60:1", str(ctx))
    assert out.returncode == 0, out.stderr


def test_sixty_layers_on_busybox_then_run_and_pybuild_run(busybox_base, tmp_path):
    ctx = _context(tmp_path / "ctx", "bb:1", 60, "RUN cat /f0 /f59 > /both\n")
    out = _pb(busybox_base, "build", "-t", "bb60:1", str(ctx))
    assert out.returncode == 0, out.stderr
    out = _pb(busybox_base, "run", "--rm", "--network=none", "bb60:1", "cat", "/f59", "/both")
    assert (out.returncode, out.stdout) == (0, "f59\nf0\nf59\n"), out.stderr


def test_more_than_128_layers_are_refused_by_name(tmp_path):
    ctx = _context(tmp_path / "ctx", "scratch", 130)
    out = _pb(tmp_path / "store", "build", "-t", "deep:1", str(ctx))
    assert out.returncode != 0
    assert "129 layers" in out.stderr and "at most 128" in out.stderr, out.stderr
