"""Every case of the shared dockerignore corpus (transcribed from moby/patternmatcher and
BuildKit's tests) holds for builder.dockerignore."""
from __future__ import annotations

import json

import pytest

from builder.dockerignore import IgnorePatternError, PatternMatcher, read_ignore_file


def _cases(corpus, table):
    return json.loads((corpus / "dockerignore" / "cases.json").read_text())[table]


def test_single_patterns(corpus):
    cases = _cases(corpus, "match_or_parent_matches_single") + _cases(corpus, "match_or_parent_matches_single_unix_only")
    wrong = [c for c in cases if PatternMatcher([c["pattern"]]).matches_or_parent_matches(c["path"]) != c["match"]]
    assert not wrong


def test_pattern_lists(corpus):
    cases = _cases(corpus, "match_or_parent_matches_multi")
    wrong = [c for c in cases if PatternMatcher(c["patterns"]).matches_or_parent_matches(c["path"]) != c["match"]]
    assert not wrong


def test_legacy_matches(corpus):
    wrong = []
    for c in _cases(corpus, "legacy_matches_func"):
        try:
            got = PatternMatcher(c["patterns"]).matches(c["path"])
        except IgnorePatternError:
            got = "error"
        if got != ("error" if c["error"] else c["match"]):
            wrong.append((c, got))
    assert not wrong


def test_read_ignore_file(corpus):
    case = _cases(corpus, "ignorefile_readall")
    assert read_ignore_file(case["input"]) == case["expected"]
