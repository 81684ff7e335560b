"""Dockerfile text -> parse tree (BuildKit's, for `pybuild parse`) -> typed instructions.

    parse(text, filename) -> Dockerfile          typed; raises DockerfileSyntaxError
    parse_tree(text, filename) -> ParseTree      BuildKit's generic tree; accepts what BuildKit accepts

The grammar (dockerfile.lark) is compiled once and cached under $XDG_CACHE_HOME/pybuild, so a
process pays only for loading the cached tables. Importing this module loads nothing heavy.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DockerfileSyntaxError
from .gotext import ASCII_BLANKS_RE, go_strip
from .nodes import ArgumentError, Node, decode_flag, json_prefix, split_arguments

if TYPE_CHECKING:
    from .instructions import Dockerfile
    from .lines import LogicalLine

GRAMMAR = Path(__file__).with_name("dockerfile.lark")
_KEYWORD_SPLIT = ASCII_BLANKS_RE.split


@dataclass(frozen=True)
class ParseTree:
    """What BuildKit's parser returns: generic nodes, directives, escape token, warnings."""

    nodes: tuple["Node", ...]
    directives: dict[str, str]
    escape: str
    warnings: tuple[tuple[int, str], ...]
    source: tuple[str, ...]
    filename: str

    def dump(self) -> str:
        """The `result` format: one `(keyword ...)` line per instruction, ending with a newline."""
        return "".join(f"({node.dump()})\n" for node in self.nodes)


def _cache_path(grammar_text: bytes, lark_version: str) -> str | None:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "pybuild")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None  # a read-only home: compile the grammar each time
    digest = hashlib.sha256(grammar_text).hexdigest()[:16]
    return os.path.join(folder, f"dockerfile-{digest}-lark{lark_version}.cache")


@lru_cache(maxsize=1)
def _lark():
    import lark

    class Tokens(lark.Transformer):
        """Each instruction as its list of tokens: no tree objects (LALR calls this inline)."""

        def instruction(self, tokens):
            return tokens

        def start(self, instructions):
            return instructions

    text = GRAMMAR.read_bytes()
    return lark.Lark(text.decode(), parser="lalr", lexer="contextual", start=["start", "instruction"],
                     transformer=Tokens(), cache=_cache_path(text, lark.__version__) or False)


def _node_from_tokens(tokens, original: str, escape: str, line: "LogicalLine | None", file: str) -> Node:
    first = tokens[0]
    flags: list[str] = []
    if first.type == "PLAIN_INSTRUCTION":
        keyword, rest = _KEYWORD_SPLIT(first.lstrip("\n"), 1)
        rest = go_strip(rest)
    else:
        keyword, rest = first.lstrip("\n"), ""
    for token in tokens[1:]:
        kind = token.type
        if kind == "FLAG":
            flags.append(decode_flag(go_strip(token)))
        elif kind == "ARGUMENTS":
            rest = go_strip(token)
    try:
        if keyword.lower() == "onbuild":
            args: tuple = (_node_from_line(rest, escape, None, file),) if rest else ()
            is_json = False
        else:
            args, is_json = split_arguments(keyword, rest, escape)
    except ArgumentError as err:
        raise DockerfileSyntaxError(str(err), file=file, line=line.start_line if line else 0,
                                    column=line.column if line else 1,
                                    source_line=None) from None
    prefix = json_prefix(keyword, rest) if not is_json and "[" in rest else None
    if line is None:
        return Node(keyword, tuple(flags), args, is_json, original, json_prefix=prefix)
    return Node(keyword, tuple(flags), args, is_json, original, line.start_line, line.end_line, line.column,
                line.heredocs, line.comments, prefix)


def _node_from_line(text: str, escape: str, line: "LogicalLine | None", file: str) -> Node:
    stripped = go_strip(text)
    if not stripped:  # a line of blanks joined from continuations: BuildKit keeps an empty keyword
        return Node("", (), ("",), False, text, *((line.start_line, line.end_line, line.column) if line else ()))
    import lark

    try:
        tokens = _lark().parse(stripped, start="instruction")
    except lark.exceptions.LarkError as err:  # as in _nodes: a line the grammar has no rule for
        raise DockerfileSyntaxError(f"cannot parse this instruction: {err}", file=file,
                                    line=line.start_line if line else 0, column=line.column if line else 1) from None
    return _node_from_tokens(tokens, text, escape, line, file)


def parse_tree(text: str, filename: str = "Dockerfile") -> ParseTree:
    """BuildKit's parse of `text`: accepts exactly what BuildKit accepts (bare FROM, unknown words)."""
    from .expand import Expander
    from .lines import heredoc_markers, scan

    marker_lexer = Expander("\\")  # BuildKit reads heredoc markers with `\`, whatever the escape

    def wants_heredocs(line: str) -> list:
        # Only RUN/COPY/ADD (also under ONBUILD) in shell form read heredocs: that needs this
        # line's node now, before the next physical line is read.
        words = line.split(None, 1)
        if not words or words[0].lower() not in ("run", "copy", "add", "onbuild"):
            return []
        if not _node_from_line(line, "\\", None, filename).can_contain_heredoc():
            return []
        return heredoc_markers(line, marker_lexer.raw_words,
                               lambda word, raw: marker_lexer.words_unset_kept(word, raw_quotes=raw))

    scanned = scan(text, filename, wants_heredocs)
    if not scanned.lines:
        raise DockerfileSyntaxError("file with no instructions", file=filename, line=len(scanned.source),
                                    hint="a Dockerfile needs at least a FROM instruction")
    nodes = _nodes(scanned.lines, scanned.escape, filename)
    return ParseTree(tuple(nodes), dict(scanned.directives), scanned.escape, tuple(scanned.warnings),
                     tuple(scanned.source), filename)


def _nodes(lines: "list[LogicalLine]", escape: str, file: str) -> list["Node"]:
    """All lines in one lark parse (one call is much cheaper than one per line)."""
    import lark

    simple = [line for line in lines if go_strip(line.text)]
    if len(simple) != len(lines):
        return [_node_from_line(line.text, escape, line, file) for line in lines]
    try:
        tree = _lark().parse("\n".join(go_strip(line.text) for line in lines), start="start")
    except lark.exceptions.LarkError as err:  # the grammar accepts every line: this is our bug
        line_no = getattr(err, "line", 1) or 1
        where = lines[min(line_no, len(lines)) - 1]
        raise DockerfileSyntaxError(f"cannot parse this instruction: {err}", file=file, line=where.start_line,
                                    column=where.column) from None
    return [_node_from_tokens(t, line.text, escape, line, file) for t, line in zip(tree, lines)]


def parse(text: str, filename: str = "Dockerfile") -> "Dockerfile":
    """Parse and type a Dockerfile. Raises DockerfileSyntaxError naming file:line:col."""
    from .typed import to_dockerfile

    return to_dockerfile(parse_tree(text, filename))


def read_dockerfile(path: str) -> tuple[str, str]:
    """(text, name to show) of a Dockerfile path; `-` is stdin. Invalid UTF-8 is kept byte for byte
    (surrogateescape), as BuildKit keeps bytes."""
    import sys

    from .errors import PybuildError

    if path == "-":
        return sys.stdin.buffer.read().decode("utf-8", "surrogateescape"), "<stdin>"
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape"), path
    except FileNotFoundError:
        raise PybuildError(f"{path}: no such file", hint="name the Dockerfile with -f FILE") from None
    except IsADirectoryError:
        raise PybuildError(f"{path}: is a directory", hint=f"name the file inside it, e.g. {path}/Dockerfile") from None
    except OSError as err:
        raise PybuildError(f"{path}: cannot read: {err.strerror}") from None
