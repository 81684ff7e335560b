"""Random and mutated Dockerfiles: the parser returns, or raises pybuild's own error; nothing else."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus_paths import corpus_dir
from grammar.errors import PybuildError
from grammar.expand import Expander
from grammar.lint import lint
from grammar.parser import parse, parse_tree

KEYWORDS = ["FROM", "RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "USER", "WORKDIR", "STOPSIGNAL",
            "MAINTAINER", "ENV", "LABEL", "ARG", "EXPOSE", "VOLUME", "HEALTHCHECK", "ONBUILD", "onbuild run", "frm"]
PIECES = ["\\", "`", "#", "# escape=`", "# syntax=x", "<<EOF", "<<-'E'", "EOF", "E", "\t", " ", "\r", "--", "--a=b",
          "--mount=type=cache,target=/x", "'", '"', "[", "]", '["a",', '"b"]', "[1]", "[[", "${A:-b}", "$", "=",
          "a=b", "\u00a0", "\u2028", "é", "\x00", "AS", "x"]

line = st.one_of(
    st.lists(st.sampled_from(KEYWORDS + PIECES), min_size=0, max_size=6).map(" ".join),
    st.text(max_size=40),
)
dockerfile = st.lists(line, max_size=12).map("\n".join)


def _exercise(text: str) -> None:
    try:
        tree = parse_tree(text, "Dockerfile")
    except PybuildError:
        return
    tree.dump()
    lint(tree)
    try:
        parse(text, "Dockerfile")
    except PybuildError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dockerfile)
def test_random_dockerfiles(text):
    _exercise(text)


def _seeds() -> list[str]:
    root = corpus_dir()
    if root is None:
        return ["FROM a\nRUN b\n"]
    files = sorted(root.glob("buildkit-parser/testfiles/*/Dockerfile")) + \
        sorted(root.glob("buildkit-parser/extra/*/Dockerfile"))
    return [f.read_text(errors="surrogateescape") for f in files]


SEEDS = _seeds()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.integers(min_value=0), st.integers(min_value=0, max_value=8),
       st.sampled_from(PIECES + ["\n", "\\\n", "<<EOF\n"]))
def test_mutated_corpus_files(seed, where, cut, insert):
    at = where % (len(seed) + 1)
    _exercise(seed[:at] + insert + seed[at + cut:])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=list("ab $\\{}:-+?#%/'\"`*"), max_size=20))
def test_expander_returns_or_raises_its_error(word):
    expander = Expander()
    try:
        expander.expand(word, {"a": "x y", "b": ""})
        expander.expand_words(word, {"a": "x y"})
    except PybuildError:
        pass
    assert isinstance(expander.used(word), set)


@pytest.mark.parametrize("text", ["", "\n\n", "# only\n", "\\", "`", "RUN <<EOF", "FROM a\n" + "x" * 70000])
def test_edge_inputs_raise_pybuild_errors(text):
    with pytest.raises(PybuildError):
        parse(text)
