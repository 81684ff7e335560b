"""grammar.cached: an unchanged Dockerfile is served from the pickle cache without loading lark;
anything else parses afresh, and errors are never cached."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from grammar.cached import parse_and_lint
from grammar.errors import DockerfileSyntaxError
from grammar.lint import lint
from grammar.parser import parse

TEXT = "FROM debian:bookworm\nCMD ['node', 'x.js']\n"  # single quotes: a lint warning


def test_same_result_as_parse_and_lint(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = parse_and_lint(TEXT, "Dockerfile")
    assert first == (parse(TEXT, "Dockerfile"), tuple(lint(parse(TEXT, "Dockerfile"))))
    assert first[1], "the sample must carry a warning, or the cache of warnings is not tested"
    assert len(os.listdir(tmp_path / "pybuild" / "parsed")) == 1
    assert parse_and_lint(TEXT, "Dockerfile") == first
    changed = parse_and_lint(TEXT + "CMD [\"x\"]\n", "Dockerfile")
    assert len(changed[0].instructions) == len(first[0].instructions) + 1
    assert parse_and_lint(TEXT, "other/Dockerfile")[0].instructions[0].span.file == "other/Dockerfile"


def test_a_hit_does_not_load_lark(tmp_path):
    code = ("import sys; from grammar.cached import parse_and_lint; "
            f"parse_and_lint({TEXT!r}, 'Dockerfile'); print('lark' in sys.modules)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert runs == ["True\n", "False\n"]


def test_errors_are_raised_every_time_and_never_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for _ in range(2):
        with pytest.raises(DockerfileSyntaxError, match="Dockerfile:2"):
            parse_and_lint("FROM a\nFOO bar\n", "Dockerfile")
    assert not os.listdir(tmp_path / "pybuild" / "parsed")


def test_a_corrupt_entry_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    good = parse_and_lint(TEXT, "Dockerfile")
    (entry,) = (tmp_path / "pybuild" / "parsed").iterdir()
    entry.write_bytes(b"not a pickle")
    assert parse_and_lint(TEXT, "Dockerfile") == good
