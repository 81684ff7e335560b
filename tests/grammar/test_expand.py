"""The word expander against BuildKit's own shell-lexer data (corpus buildkit-shell/)."""
from __future__ import annotations

import json
import sys

import pytest

from grammar.errors import ExpandError, PybuildError
from grammar.expand import Expander, env_from_list

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _env_var_cases(corpus):
    for number, line in enumerate((corpus / "buildkit-shell" / "envVarTest").read_text().splitlines(), 1):
        if line.startswith("#") or not line.strip():
            continue
        tag, source, expected = (f.strip() for f in line.split("|"))
        if tag == "W" or (tag == "U" and sys.platform == "win32"):
            continue
        yield number, source, expected


def _words_cases(corpus):
    env: dict[str, str] = {}
    for number, line in enumerate((corpus / "buildkit-shell" / "wordsTest").read_text().splitlines(), 1):
        if line.startswith("#"):
            continue
        if line.startswith("ENV "):
            key, _, value = line[4:].lstrip().partition("=")
            env[key] = value
            continue
        source, expected = line.split("|")
        yield number, source.strip(), expected.lstrip(), dict(env)


def test_env_var_test_file(corpus):
    expander = Expander("\\")
    failures, count = [], 0
    for number, source, expected in _env_var_cases(corpus):
        count += 1
        try:
            got = expander.expand(source, ENV)
        except ExpandError:
            got = "error"
        if got != expected:
            failures.append(f"line {number}: {source!r} -> {got!r}, expected {expected!r}")
    assert count > 200
    assert not failures, "\n".join(failures)


def test_words_test_file(corpus):
    expander = Expander("\\")
    failures, count = [], 0
    for number, source, expected, env in _words_cases(corpus):
        count += 1
        try:
            got = expander.expand_words(source, env)
        except ExpandError:
            got = "error"
        want = "error" if expected == "error" else expected.split(",")
        if got != want:
            failures.append(f"line {number}: {source!r} -> {got!r}, expected {want!r}")
    assert count > 20
    assert not failures, "\n".join(failures)


def _matches_cases(corpus):
    data = json.loads((corpus / "buildkit-shell" / "process-with-matches.json").read_text())
    return data


def test_process_word_with_matches(corpus):
    expander = Expander("\\")
    failures = []
    cases = _matches_cases(corpus)["process_word_with_matches"]
    assert len(cases) == 47
    for case in cases:
        if case.get("expectedErr"):
            with pytest.raises(ExpandError):
                expander.expand_with_matches(case["input"], case["envs"])
            continue
        got, matched, unmatched = expander.expand_with_matches(case["input"], case["envs"])
        if (got, matched, unmatched) != (case["expected"], set(case["matches"]), set(case["unmatched"])):
            failures.append(f"{case['input']!r}: {(got, matched, unmatched)!r} != {case!r}")
    assert not failures, "\n".join(failures)


def test_platform_filename_cases(corpus):
    for case in _matches_cases(corpus)["platform_filename_cases"]:
        assert Expander().expand(case["input"], case["envs"]) == case["expected"]


def test_mandatory_var_cases(corpus):
    for case in _matches_cases(corpus)["mandatory_var_cases"]:
        env = env_from_list(case["envs"])
        if "error_contains" in case:
            with pytest.raises(ExpandError, match=case["error_contains"]):
                Expander().expand(case["input"], env)
        else:
            assert Expander().expand(case["input"], env) == case["expected"]


def test_env_list_lookup_cases(corpus):
    for case in _matches_cases(corpus)["env_list_lookup_cases"]:
        assert env_from_list(case["envs"]).get(case["get"], "") == case["expected"]


@pytest.mark.parametrize("word, names", [
    ("plain", set()),
    ("$A ${B} ${C:-$D} ${E:+x} ${F#p} ${G/a/$H}", {"A", "B", "C", "D", "E", "F", "G", "H"}),
    ("'$NOT' \\$NOT2 \"$YES\"", {"YES"}),
    ("${REQ:?must be set}", {"REQ"}),
    ("$1 $@ ${#}", set()),
])
def test_used_names_for_cache_keys(word, names):
    assert Expander().used(word) == names


def test_backtick_escape():
    assert Expander("`").expand("a`$B c\\d", {"B": "x"}) == "a$B c\\d"


def test_expand_error_is_a_pybuild_error():
    with pytest.raises(PybuildError, match="is not allowed to be unset"):
        Expander().expand("${X?}", {})
