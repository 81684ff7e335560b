"""parse + lint, remembered: a Dockerfile that did not change costs one small file read.

A cached rebuild should not pay for lark (loading it and its tables is most of a parse) nor for the
linter. The typed result and the warnings are pickled under $XDG_CACHE_HOME/pybuild/parsed/, keyed
by the text, the name it is shown under, the Python version and the grammar's own sources (size and
mtime of every file in grammar/), so a changed grammar never serves an old parse. The folder is the
user's own (0700), like the compiled grammar beside it; an unreadable or stale entry is a miss.
"""
from __future__ import annotations

import os
import pickle
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .instructions import Dockerfile
    from .lint import LintWarning

_HERE = os.path.dirname(os.path.abspath(__file__))


def parse_and_lint(text: str, filename: str = "Dockerfile") -> "tuple[Dockerfile, tuple[LintWarning, ...]]":
    """(typed Dockerfile, lint warnings) as grammar.parser.parse and grammar.lint.lint give them."""
    path = _entry_path(text, filename)
    if path is not None:
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
            pass
    from .lint import lint
    from .parser import parse

    parsed = parse(text, filename)  # a syntax error raises here and is never cached
    result = (parsed, tuple(lint(parsed)))
    if path is not None:
        _store(path, result)
    return result


def _entry_path(text: str, filename: str) -> str | None:
    import xxhash

    h = xxhash.xxh3_128()
    h.update(f"{sys.version_info[:2]}\0{filename}\0".encode("utf-8", "surrogateescape"))
    for name in sorted(os.listdir(_HERE)):
        if name.endswith((".py", ".lark")):
            st = os.stat(os.path.join(_HERE, name))
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}\0".encode())
    h.update(text.encode("utf-8", "surrogateescape"))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "pybuild", "parsed")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return os.path.join(folder, h.hexdigest() + ".pickle")


def _store(path: str, result: object) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # atomic: a concurrent build reads the old entry or the new one
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
