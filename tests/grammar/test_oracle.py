"""dockerfile-parse as a differential oracle over the real-world corpus.

For every real-world Dockerfile both parsers must find the same instructions, on the same lines,
with the same arguments text. Where they differ on purpose, the file is listed below with the
reason; the test also checks that each listed divergence still exists (no stale excuses).
"""
from __future__ import annotations

import io

import pytest

from corpus_paths import corpus_dir
from grammar.gotext import ASCII_BLANKS_RE, go_strip
from grammar.parser import parse_tree

dockerfile_parse = pytest.importorskip("dockerfile_parse")

CORPUS = corpus_dir()
FILES = sorted(p.parent for pattern in ("real-dockerfiles/*/Dockerfile", "kaniko-integration/*/Dockerfile")
               for p in (CORPUS.glob(pattern) if CORPUS else []))

HEREDOCS = ("dockerfile-parse has no heredoc support (BuildKit syntax 1.4+): it reads the lines of a "
            "`<<EOF` body as instructions of their own (SET, CAT, EOF, ...)")
DOUBLE_ESCAPE = ("a line ending in `\\\\` (an escaped escape char) does not continue in BuildKit; "
                 "dockerfile-parse treats the last `\\` as a continuation")

# file -> why we differ from dockerfile-parse (BuildKit is the reference; the `result` tests prove it)
INTENDED = {
    "docker-library+mongo__7.0__windows__nanoserver-ltsc2022__Dockerfile": DOUBLE_ESCAPE,
    "docker-library+mongo__8.2__windows__nanoserver-ltsc2022__Dockerfile": DOUBLE_ESCAPE,
}


def _ours(case):
    tree = parse_tree((case / "Dockerfile").read_text(), "Dockerfile")
    out = []
    for node in tree.nodes:
        parts = ASCII_BLANKS_RE.split(go_strip(node.original), maxsplit=1)
        out.append((node.keyword.upper(), node.start_line, go_strip(parts[1]) if len(parts) > 1 else ""))
    return out, any(node.heredocs for node in tree.nodes)


def _theirs(case):
    parser = dockerfile_parse.DockerfileParser(fileobj=io.BytesIO((case / "Dockerfile").read_bytes()))
    return [(d["instruction"], d["startline"] + 1, d["value"]) for d in parser.structure
            if d["instruction"] != "COMMENT"]


@pytest.mark.skipif(CORPUS is None, reason="no corpus")
@pytest.mark.parametrize("case", FILES, ids=[p.name for p in FILES])
def test_same_instructions_as_dockerfile_parse(case):
    ours, has_heredocs = _ours(case)
    theirs = _theirs(case)
    reason = HEREDOCS if has_heredocs else INTENDED.get(case.name)
    if reason is None:
        assert ours == theirs
    else:
        assert ours != theirs, f"listed as a divergence but both agree now: {reason}"
        # outside the divergence they still agree on which instructions start where
        if has_heredocs:
            assert {(k, line) for k, line, _ in ours} <= {(k, line) for k, line, _ in theirs}
        else:
            assert [(k, line) for k, line, _ in ours] == [(k, line) for k, line, _ in theirs]


def test_every_intended_divergence_names_a_corpus_file():
    if CORPUS is None:
        pytest.skip("no corpus: set PYBUILD_CORPUS or place shared/corpus beside the repository")
    names = {p.name for p in FILES}
    assert set(INTENDED) <= names
