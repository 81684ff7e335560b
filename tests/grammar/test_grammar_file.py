"""The lark grammar file drives the parse, and its compiled tables are cached on disk."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grammar import parser

REPO = Path(__file__).resolve().parents[2]


def test_grammar_is_loaded_from_the_lark_file_and_cached(tmp_path):
    code = ("import grammar.parser as p, sys; p.parse('FROM a\\n'); "
            "l = p._lark(); print(type(l).__module__, l.options.parser, l.options.lexer)")
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, check=True)
    assert out.stdout.split() == ["lark.lark", "lalr", "contextual"]
    cached = list((tmp_path / "pybuild").glob("dockerfile-*.cache"))
    assert len(cached) == 1
    # a second process loads the cached tables (same file, not rewritten)
    mtime = cached[0].stat().st_mtime_ns
    subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=REPO, env=env, check=True)
    assert cached[0].stat().st_mtime_ns == mtime


def test_importing_the_parser_does_not_load_lark():
    code = "import sys, grammar.parser; print('lark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("line, keyword, flags, rest", [
    ("COPY --from=a --chown='x y' -- --odd name", "COPY", ["--from=a", "--chown=x y"], "--odd name"),
    ('CMD --doit -- [ ]', "CMD", ["--doit"], ""),  # [ ] is an empty JSON list: no arguments
    ("RUN --mount=type=cache,target=/x\\ y make", "RUN", ["--mount=type=cache,target=/x y"], "make"),
    ("FROM\talpine", "FROM", [], "alpine"),
    ("X --a", "X", ["--a"], ""),
])
def test_instruction_structure(line, keyword, flags, rest):
    node = parser._node_from_line(line, "\\", None, "Dockerfile")
    assert (node.keyword, list(node.flags)) == (keyword, flags)
    assert node.original == line
    if rest:
        assert rest in " ".join(a for a in node.args if isinstance(a, str))


def test_non_ascii_flags_are_kept_as_written():
    # Intended divergence: BuildKit's flag scanner reads bytes as code points, so `--chown=é` dumps
    # as "--chown=Ã©" there. No upstream test covers it; a build wants the user's real name.
    node = parser._node_from_line("COPY --chown=é a b", "\\", None, "Dockerfile")
    assert node.flags == ("--chown=é",)
