"""`pybuild parse` and `pybuild check`: CliRunner for the shapes, one real subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app

TUTORIAL = """FROM node:12-strectch #our base image
COPY index.js index.js # from source to dest
CMD ['node', 'index.js']
"""


@pytest.fixture
def runner():
    return CliRunner()


def test_parse_buildkit_format(runner, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM alpine\nCOPY --chown=a:b x /y\nENV A=1\n")
    result = runner.invoke(app, ["parse", str(tmp_path / "Dockerfile")])
    assert result.exit_code == 0, result.output
    assert result.output == '(from "alpine")\n(copy ["--chown=a:b"] "x" "/y")\n(env "A" "1" "=")\n'


def test_parse_defaults_to_dockerfile_in_cwd(runner, tmp_path, monkeypatch):
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["parse"]).output == '(from "a")\n'


def test_parse_json_from_stdin(runner):
    result = runner.invoke(app, ["parse", "--format", "json", "-"], input="FROM a\nRUN <<EOF\nhi\nEOF\n")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    run = data["instructions"][1]
    assert run["keyword"] == "RUN" and run["heredocs"][0]["content"] == "hi\n" and run["endLine"] == 4


def test_parse_bad_format_is_a_usage_error(runner, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    result = runner.invoke(app, ["parse", "--format", "yaml", str(tmp_path / "Dockerfile")])
    assert result.exit_code != 0


def test_check_lists_warnings_with_fixes(runner, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM a\nCOPY index.js index.js # from source to dest\nCMD ['node', 'index.js']\n")
    result = runner.invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 0
    assert "Dockerfile:2:24:" in result.output and "fix:" in result.output
    assert 'CMD ["node", "index.js"]' in result.output


def test_check_strict_fails_on_warnings(runner, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM a\nMAINTAINER me\n")
    result = runner.invoke(app, ["check", "--strict", str(tmp_path)])
    assert result.exit_code == 1
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "Dockerfile").write_text("FROM a\n")
    assert runner.invoke(app, ["check", "--strict", str(clean)]).exit_code == 0


def _pybuild(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run([sys.executable, "-m", "builder.cli", *args], input=stdin, capture_output=True,
                          text=True, env=env)


def test_subprocess_check_of_the_tutorial_file_shows_the_caret(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text(TUTORIAL)
    out = _pybuild("check", "-f", str(path))
    assert out.returncode == 1
    assert "warning:" in out.stderr and "#our base image" in out.stderr
    assert f"pybuild: error: {path}:1:23: FROM requires either one or three arguments" in out.stderr
    assert "1 | FROM node:12-strectch #our base image" in out.stderr
    assert out.stderr.rstrip().endswith("^")


def test_subprocess_parse_missing_file():
    out = _pybuild("parse", "/nonexistent/Dockerfile")
    assert out.returncode == 1 and "no such file" in out.stderr
