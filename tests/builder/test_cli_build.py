"""The build CLI: CliRunner for flags and exit codes, one real subprocess build."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from builder.cli import app
from corpus_paths import REPO


@pytest.fixture
def ctx(tmp_path):
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text('FROM scratch\nCOPY a.txt /a\nCMD ["/a"]\n')
    (d / "a.txt").write_text("a")
    return d


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_build_quiet_tags_iidfile(ctx, tmp_path):
    iid = tmp_path / "iid"
    res = invoke("--root", str(tmp_path / "s"), "build", "-q", "-t", "x:1", "-t", "x:2", "--iidfile", str(iid), str(ctx))
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == iid.read_text() and iid.read_text().startswith("sha256:")


def test_json_progress_events(ctx, tmp_path):
    res = invoke("--root", str(tmp_path / "s"), "build", "--progress", "json", str(ctx))
    events = [json.loads(line) for line in res.stderr.splitlines()]
    assert [e["kind"] for e in events][-1] == "done" and sum(e["kind"] == "step" for e in events) == 3


@pytest.mark.parametrize("args", [["--progress", "fancy"], ["--network", "bridge"], ["--target", "nope"],
                                  ["--label", "novalue"]])
def test_usage_errors_exit_2(ctx, tmp_path, args):
    res = invoke("--root", str(tmp_path / "s"), "build", *args, str(ctx))
    assert res.exit_code == 2 or "exit_code" in dir(res.exception) and res.exception.exit_code == 2


def test_subprocess_build_default_command(ctx, tmp_path):
    out = subprocess.run([sys.executable, "-m", "builder.cli", "--root", str(tmp_path / "s"), "-t", "sub:1",
                          "--progress", "plain", str(ctx)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "#2 COPY a.txt /a" in out.stderr and out.stdout.startswith("sha256:")


def test_failed_step_exit_1_names_line(ctx, tmp_path):
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY missing /m\n")
    out = subprocess.run([sys.executable, "-m", "builder.cli", "--root", str(tmp_path / "s"), str(ctx)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 1 and "Dockerfile:2:1" in out.stderr


def test_context_tar_on_stdin(ctx, tmp_path):
    import tarfile

    archive = tmp_path / "ctx.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("Dockerfile", "a.txt"):
            tar.add(ctx / name, arcname=name)
    with open(archive, "rb") as stdin:
        out = subprocess.run([sys.executable, "-m", "builder.cli", "--root", str(tmp_path / "s"), "build", "-q", "-"],
                             stdin=stdin, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("sha256:")


@pytest.mark.parametrize("fmt,member", [("oci", "oci-layout"), ("docker", "manifest.json")])
def test_output_archive(ctx, tmp_path, fmt, member):
    import tarfile

    dest = tmp_path / "out.tar"
    res = invoke("--root", str(tmp_path / "s"), "build", "-q", "-t", "o:1", "--output", f"type={fmt},dest={dest}", str(ctx))
    assert res.exit_code == 0, res.output
    with tarfile.open(dest) as tar:
        assert member in tar.getnames()
