"""`.dockerignore` with BuildKit's semantics (moby/patternmatcher), so a context holds exactly
what `docker build` would send.

Patterns are compiled to regular expressions the way patternmatcher does: `*` stays inside one
path segment, `**` crosses segments, `?` is one non-slash character, `\\` escapes. A path is
excluded when the last pattern that matches it (or one of its parent directories) is not a `!`
exception.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from grammar.errors import PybuildError


class IgnorePatternError(PybuildError):
    """A .dockerignore pattern that cannot be compiled (an unclosed `[`, a bad range)."""


def read_ignore_file(text: str) -> list[str]:
    """The patterns of a .dockerignore file: comments and blanks dropped, each cleaned, a leading
    `/` removed (the context root is the only root), `!` kept as the exception mark."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip() if not raw.startswith("#") else ""
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if line.startswith("/"):
                line = line.lstrip("/") or "/"
        patterns.append(("!" if invert else "") + line)
    return patterns


def _to_regex(pattern: str) -> str:
    out = "^"
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out += ".*" if i >= n else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in ".$+()|{}":
            out += "\\" + ch
        elif ch == "\\":
            if i < n:
                out += "\\" + pattern[i]
                i += 1
            else:
                out += "\\\\"
        else:
            out += ch
    return out + "$"


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern
    depth: int

    @classmethod
    def compile(cls, raw: str) -> "Pattern":
        exclusion = raw.startswith("!")
        text = raw[1:] if exclusion else raw
        cleaned = posixpath.normpath(text) if text else text
        try:
            regex = re.compile(_to_regex(cleaned), re.DOTALL)
        except re.error as err:
            raise IgnorePatternError(f".dockerignore: bad pattern {raw!r}: {err}",
                                     hint="close the [ ] class or escape it with \\") from None
        return cls(cleaned, exclusion, regex, len(cleaned.split("/")))

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


class PatternMatcher:
    """Matches context-relative paths (forward slashes) against compiled patterns."""

    def __init__(self, patterns: list[str]):
        if "!" in patterns:
            raise IgnorePatternError(".dockerignore: illegal exclusion pattern '!'",
                                     hint="write the path to re-include after the !")
        self.patterns = [Pattern.compile(p) for p in patterns if p]
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def matches_or_parent_matches(self, path: str) -> bool:
        """BuildKit's rule: a pattern that matches a parent directory matches its contents."""
        if not self.patterns:
            return False  # no .dockerignore: the common case costs nothing per file
        path = posixpath.normpath(path) if path not in ("", "/") else path
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent not in ("", ".") else []
        matched = False
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = pat.match(path)
            if not hit:
                hit = any(pat.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pat.exclusion
        return matched

    def matches(self, path: str) -> bool:
        """The legacy (Docker < 23) rule: parents are tried only at the pattern's own depth."""
        path = posixpath.normpath(path)
        if path == ".":
            return False
        parents = posixpath.dirname(path).split("/") if posixpath.dirname(path) else []
        matched = False
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = pat.match(path)
            if not hit and parents and pat.depth <= len(parents):
                hit = pat.match("/".join(parents[: pat.depth]))
            if hit:
                matched = not pat.exclusion
        return matched
