"""Lint: what parses but is likely not what the author meant, each with line:col and a fix.

`lint(dockerfile)` takes a typed `Dockerfile` or a `ParseTree` (it reads BuildKit's generic
nodes, so it also explains files that the typed step rejects, like `FROM node #comment`).
The builder runs it before each build and shows the warnings; `pybuild check --strict` fails on them.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .expand import Expander
from .errors import ExpandError
from .nodes import Node

# ARGs every build defines without a declaration (BuildKit's automatic platform and proxy args).
PREDEFINED_ARGS = frozenset({
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS", "BUILDARCH",
    "BUILDVARIANT", "TARGETSTAGE", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
    "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "BUILDKIT_SYNTAX", "SOURCE_DATE_EPOCH",
})
_EXPANDED = ("add", "copy", "env", "expose", "from", "label", "stopsignal", "user", "volume", "workdir", "arg")
_COMMENT_NOT_ALLOWED = ("from", "copy", "add", "expose", "volume", "workdir", "user", "stopsignal", "env", "label",
                        "arg", "maintainer")
_ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst|tzst|tar\.lz4)$", re.I)
_REMOTE = re.compile(r"^(https?://|git@|git://|ssh://)", re.I)
_JSON_HEADS = ("run", "cmd", "entrypoint", "shell")
_SHELL_TEST = re.compile(r"\]\s*(&&|\|\||;|\|)")
_LIST_INTENT = re.compile(r"\s*\[\s*[\"'\u201c\u2018]")
# Set by nearly every base image, so using them without ARG/ENV is normal.
BASE_IMAGE_ENV = frozenset({"PATH", "HOME", "HOSTNAME", "TERM", "LANG", "PWD", "SHELL", "USER"})


@dataclass(frozen=True)
class LintWarning:
    rule: str
    message: str
    fix: str
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message} [{self.rule}] (fix: {self.fix})"


Warning = LintWarning  # the name docs/CONTRACTS.md gives it


class _Linter:
    def __init__(self, target) -> None:
        self.file: str = target.filename
        self.source: tuple[str, ...] = tuple(target.source)
        self.nodes: tuple[Node, ...] = tuple(target.nodes)
        self.escape: str = target.escape
        self.expander = Expander(target.escape)
        self.out: list[LintWarning] = []
        self.parse_warnings = getattr(target, "warnings", ())

    def warn(self, node: Node, rule: str, message: str, fix: str, near: str | None = None) -> None:
        column = node.column
        line = self.source[node.start_line - 1] if 0 < node.start_line <= len(self.source) else ""
        if near and near in line:
            column = line.index(near) + 1
        self.out.append(LintWarning(rule, message, fix, self.file, node.start_line, column))

    def run(self) -> list[LintWarning]:
        for rule in (self.not_json, self.hash_not_comment, self.from_extra_words, self.as_casing,
                     self.maintainer, self.json_recommended, self.add_for_copy, self.unknown_keyword):
            for node in self.nodes:
                target = node.inner if node.keyword.lower() == "onbuild" and node.inner else node
                rule(target)
        self.undefined_variables()
        self.empty_continuations()
        return sorted(self.out, key=lambda w: (w.line, w.column, w.rule))

    # --- rules, one method each ---

    def not_json(self, node: Node) -> None:
        word = node.keyword.lower()
        args = node.args[1:] if word == "healthcheck" else node.args
        if word not in _JSON_HEADS + ("healthcheck",) or node.is_json or len(args) != 1:
            return
        text = args[0]
        # `[ -f x ] && ...` is the shell's test command: only a quote after `[` means a list was meant
        if not isinstance(text, str) or not _LIST_INTENT.match(text) or _SHELL_TEST.search(text):
            return
        keyword = node.keyword.upper()
        if "'" in text and '"' not in text.replace("\\\"", ""):
            fixed = text.replace("'", '"')
            self.warn(node, "json-single-quotes",
                      f"{keyword} arguments look like an exec-form list but JSON needs double quotes, so this "
                      "runs as a shell command (the shell sees the brackets and quotes)",
                      f"{keyword} {fixed}", near="[")
        elif "]" not in text:
            self.warn(node, "json-unclosed",
                      f"{keyword} arguments look like an exec-form list but the closing ] is missing, so this "
                      "runs as a shell command", f"{keyword} {text.rstrip()}]", near="[")
        elif (tail := text[text.rindex("]") + 1:].strip()).startswith("#"):
            self.warn(node, "comment-in-arguments",
                      f"`{tail}` is not a comment: it follows the list, {_TRAILING_TEXT.format(keyword=keyword)}",
                      f"put `{tail}` on a line of its own above {keyword}", near=tail)
        elif tail[:1] in ("&", "|", ";", ">", "<"):
            return  # `[ "$x" = y ] && ...`: the shell's test command, as meant
        elif node.json_prefix is not None:
            self.warn(node, "json-invalid", f"`{tail}` follows the list, {_TRAILING_TEXT.format(keyword=keyword)}",
                      f"remove `{tail}`", near=tail)
        else:
            reason = _json_problem(text)
            self.warn(node, "json-invalid",
                      f"{keyword} arguments look like an exec-form list but are not valid JSON ({reason}), so "
                      "this runs as a shell command", "write a JSON array of double-quoted strings", near="[")

    def hash_not_comment(self, node: Node) -> None:
        if node.keyword.lower() not in _COMMENT_NOT_ALLOWED:
            return
        words = [a for a in node.args if isinstance(a, str)]
        text = " ".join(words) if node.keyword.lower() not in ("env", "label") else node.original
        m = re.search(r"(?:^|[\t ])(#.*)$", text)
        if not m:
            return
        comment = m.group(1)
        before = node.original[: node.original.find(comment)].rstrip() if comment in node.original else node.original
        self.warn(node, "comment-in-arguments",
                  f"`{comment}` is not a comment: `#` starts a comment only at the beginning of a line, so it "
                  f"becomes arguments of {node.keyword.upper()}",
                  f"put `{comment}` on a line of its own above `{before.strip()}`", near=comment)

    def from_extra_words(self, node: Node) -> None:
        if node.keyword.lower() != "from":
            return
        args = [a for a in node.args if isinstance(a, str)]
        if len(args) == 1 or (len(args) == 3 and args[1].lower() == "as"):
            return
        if len(args) == 0:
            self.warn(node, "from-arguments", "FROM needs an image", "write `FROM image` or `FROM image AS name`")
            return
        extra = args[1]
        self.warn(node, "from-arguments",
                  f"FROM takes an image and optionally `AS name`, not {len(args)} words (extra: {' '.join(args[1:])})",
                  f"FROM {args[0]}" + (f" AS {args[-1]}" if len(args) == 2 else ""), near=extra)

    def as_casing(self, node: Node) -> None:
        args = [a for a in node.args if isinstance(a, str)]
        if node.keyword.lower() != "from" or len(args) != 3 or args[1].lower() != "as":
            return
        keyword_upper = node.keyword == node.keyword.upper()
        as_upper = args[1] == args[1].upper()
        if keyword_upper != as_upper:
            want = "AS" if keyword_upper else "as"
            self.warn(node, "from-as-casing", f"'{args[1]}' and '{node.keyword}' keywords' casing do not match",
                      f"write `{node.keyword} {args[0]} {want} {args[2]}`", near=f" {args[1]} ")

    def maintainer(self, node: Node) -> None:
        if node.keyword.lower() == "maintainer":
            value = node.args[0] if node.args and isinstance(node.args[0], str) else ""
            self.warn(node, "maintainer-deprecated", "MAINTAINER is deprecated",
                      f"LABEL org.opencontainers.image.authors={json.dumps(value)}")

    def json_recommended(self, node: Node) -> None:
        word = node.keyword.lower()
        if word not in ("cmd", "entrypoint") or node.is_json or not node.args:
            return
        text = node.args[0]
        if not isinstance(text, str) or text.lstrip().startswith("["):
            return  # not_json already explains the broken list
        self.warn(node, "json-args-recommended",
                  f"{node.keyword.upper()} in shell form runs under /bin/sh -c: the process does not get "
                  "signals such as SIGTERM (slow stops)",
                  f"{node.keyword.upper()} {json.dumps(text.split())}")

    def add_for_copy(self, node: Node) -> None:
        if node.keyword.lower() != "add" or node.heredocs:
            return
        sources = [a for a in node.args[:-1] if isinstance(a, str)]
        if not sources or any(_REMOTE.search(s) or _ARCHIVE.search(s) or "$" in s for s in sources):
            return
        self.warn(node, "add-for-copy", "ADD of plain local files: COPY does the same without ADD's extra "
                  "behaviour (URL download, archive extraction)", "use COPY")

    def unknown_keyword(self, node: Node) -> None:
        from .typed import KEYWORDS, suggest_keyword

        if node.keyword.lower() in KEYWORDS:
            return
        guess = suggest_keyword(node.keyword)
        self.warn(node, "unknown-instruction", f"unknown instruction: {node.keyword}",
                  f"did you mean {guess}?" if guess else "remove it or use a Dockerfile instruction")

    def undefined_variables(self) -> None:
        global_args: set[str] = set()
        declared: set[str] | None = None  # None: before the first FROM
        for node in self.nodes:
            word = node.keyword.lower()
            if word == "from":
                declared = set()
                scope = global_args | PREDEFINED_ARGS
            else:
                scope = (declared if declared is not None else global_args) | PREDEFINED_ARGS | BASE_IMAGE_ENV
            if word in _EXPANDED:
                for text in self._expanded_words(node):
                    for name in sorted(self.expander.used(text) - scope):
                        self.warn(node, "undefined-variable",
                                  f"variable ${name} is not defined by ARG or ENV before it is used, so it "
                                  "expands to an empty string",
                                  f"add `ARG {name}` (or `ENV {name}=...`) above, or fix the name",
                                  near=f"${{{name}" if f"${{{name}" in node.original else f"${name}")
            names = self._defined_names(node)
            if declared is None:
                global_args |= names
            else:
                declared |= names

    def _expanded_words(self, node: Node) -> Iterator[str]:
        word = node.keyword.lower()
        strings = [a for a in node.args if isinstance(a, str)]
        if word in ("env", "label"):
            yield from strings[1::3]
        elif word == "arg":
            yield from (s.partition("=")[2] for s in strings if "=" in s)
        else:
            yield from strings

    def _defined_names(self, node: Node) -> set[str]:
        word = node.keyword.lower()
        strings = [a for a in node.args if isinstance(a, str)]
        if word == "arg":
            return {s.partition("=")[0] for s in strings}
        if word == "env":
            return set(strings[0::3])
        return set()

    def empty_continuations(self) -> None:
        for entry in self.parse_warnings:
            text = entry[1] if isinstance(entry, tuple) else str(entry)
            line = entry[0] if isinstance(entry, tuple) else 0
            if "Empty continuation line" in text:
                self.out.append(LintWarning("empty-continuation", "an empty line inside a continued instruction "
                                            "(a future BuildKit error)", "remove the empty line or end the "
                                            "instruction before it", self.file, line or 1, 1))


_TRAILING_TEXT = ("so BuildKit in dockerd 20.10 ignores it and runs {keyword} in exec form, while newer "
                  "BuildKit finds the JSON invalid and runs {keyword} as a shell command")


def _json_problem(text: str) -> str:
    try:
        json.loads(text)
    except ValueError as err:
        return str(err).split(":")[0].lower()
    return "unknown"


def lint(dockerfile) -> list[LintWarning]:
    """Warnings for a Dockerfile (typed) or ParseTree, sorted by position."""
    return _Linter(dockerfile).run()


Rule = Callable[[Node], None]
__all__ = ["lint", "LintWarning", "Warning", "PREDEFINED_ARGS", "ExpandError"]
