"""secure_join: whatever the symlinks and `..`s, the answer is inside the root."""
from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache.fsutil import PathEscape, secure_join

PART = st.sampled_from(["a", "b", "c", "..", ".", "l1", "l2", ""])
PATH = st.lists(PART, max_size=6).map("/".join)
TARGET = st.tuples(st.booleans(), PATH).map(lambda t: ("/" if t[0] else "") + t[1])


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


@settings(max_examples=300, deadline=None)
@given(links=st.lists(st.tuples(st.sampled_from(["l1", "a/l2", "a/b/l1", "l2"]), TARGET), max_size=4),
       unsafe=st.tuples(st.booleans(), PATH).map(lambda t: ("/" if t[0] else "") + t[1]))
def test_never_leaves_the_root(links, unsafe):
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "a", "b"))
        for name, target in links:
            p = os.path.join(root, name)
            if target and not os.path.lexists(p):  # an empty symlink target is not allowed
                os.symlink(target, p)
        for escape in ("clamp", "error"):
            try:
                out = secure_join(root, unsafe, escape=escape)
            except PathEscape as err:
                assert escape == "error" or "too many levels" in str(err)  # clamp mode only stops loops
                continue
            assert _inside(root, out)
            # every existing component of the answer is a real directory or file, not a link out
            probe = out
            while not os.path.lexists(probe):
                probe = os.path.dirname(probe)
            assert _inside(root, os.path.realpath(probe))


@pytest.mark.parametrize("links, path, expected", [
    ({}, "a/b/../c", "a/c"),
    ({}, "../../x", "x"),
    ({"l": "/etc"}, "l/passwd", "etc/passwd"),
    ({"l": "../../.."}, "l/x", "x"),
    ({"d": "a", "a": "b"}, "d/f", "b/f"),
])
def test_clamp_cases(tmp_path, links, path, expected):
    for name, target in links.items():
        os.symlink(target, tmp_path / name)
    assert secure_join(str(tmp_path), path) == str(tmp_path / expected)


@pytest.mark.parametrize("links, path", [({}, "../x"), ({"l": "../out"}, "l/x"), ({"l": "a/../../out"}, "l")])
def test_error_mode_refuses_escapes(tmp_path, links, path):
    for name, target in links.items():
        os.symlink(target, tmp_path / name)
    with pytest.raises(PathEscape):
        secure_join(str(tmp_path), path, escape="error")


def test_symlink_loops_end(tmp_path):
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(PathEscape, match="too many"):
        secure_join(str(tmp_path), "a/x")
