"""Line assembly, the context-sensitive half of BuildKit's parser.

Parser directives, comments, continuation lines and heredoc bodies depend on what came before
(the escape directive changes the continuation character; a heredoc marker turns the next lines
into data), so they are read here, line by line. What comes out is one assembled line per
instruction, with its span, for the lark grammar (dockerfile.lark) to split.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import DockerfileSyntaxError
from .gotext import GO_SPACES, go_lstrip
from .nodes import HeredocNode

MAX_LINE_BYTES = 65535
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z", re.S)
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_HEREDOC = re.compile(r"(\d*)<<(-?)[\t\n\f\r ]*([^<]*)\Z", re.S)


@dataclass(frozen=True)
class LogicalLine:
    text: str                    # the assembled line (BuildKit's Node.Original)
    start_line: int              # 1-based, inclusive
    end_line: int                # a continuation or heredoc extends it
    column: int                  # 1-based column of the keyword on start_line
    comments: tuple[str, ...] = ()
    heredocs: tuple[HeredocNode, ...] = ()


@dataclass
class Scan:
    lines: list[LogicalLine] = field(default_factory=list)
    directives: dict[str, str] = field(default_factory=dict)
    escape: str = "\\"
    warnings: list[tuple[int, str]] = field(default_factory=list)   # (line, message)
    source: list[str] = field(default_factory=list)                 # physical lines, for messages


def _continues(piece: str, escape: str) -> tuple[str, bool]:
    """(text without the continuation char, True) when the line continues. A run of two or more
    escape chars at the end never continues: BuildKit's known limitation, kept for agreement."""
    stripped = piece.rstrip(" \t")
    if stripped.endswith(escape) and (len(stripped) == 1 or stripped[-2] != escape):
        return stripped[:-1], True
    return piece, False


class _Directives:
    """BuildKit's directive scanner: `# name=value` lines before anything else."""

    def __init__(self, scan: Scan, file: str) -> None:
        self.scan = scan
        self.file = file
        self.done = False

    def feed(self, token: str, line_no: int) -> bool:
        if self.done:
            return False
        m = _DIRECTIVE.match(go_lstrip(token[1:])) if token.startswith("#") else None
        name = m.group(1).lower() if m else ""
        if name not in _KNOWN_DIRECTIVES:
            self.done = True
            return False
        if name in self.scan.directives:
            raise self._error(f"only one {name} parser directive can be used", line_no, token)
        value = m.group(2)
        if name == "escape":
            if value not in ("`", "\\"):
                raise self._error(f"invalid escape token '{value}' does not match ` or \\", line_no, token,
                                  hint="write `# escape=\\` or `# escape=``")
            self.scan.escape = value
        self.scan.directives[name] = value
        return True

    def _error(self, message: str, line_no: int, text: str, hint: str | None = None) -> DockerfileSyntaxError:
        return DockerfileSyntaxError(message, file=self.file, line=line_no, column=1, source_line=text, hint=hint)


def heredoc_markers(line: str, raw_words: Callable[[str], list[str]],
                    words: Callable[[str, bool], list[str]]) -> list[tuple[str, bool, bool, int]]:
    """(name, expand, chomp, fd) of each `<<MARKER` word of an instruction line."""
    found = []
    for word in raw_words(line):
        m = _HEREDOC.match(word)
        if not m or not m.group(3):
            continue
        plain = words(m.group(3), False)
        if len(plain) != 1:
            continue
        raw = words(m.group(3), True)
        quotes = plain[0].count("'") + plain[0].count('"')
        raw_quotes = raw[0].count("'") + raw[0].count('"') if len(raw) == 1 else -1
        found.append((plain[0], quotes == raw_quotes, m.group(2) == "-", int(m.group(1) or 0)))
    return found


def scan(text: str, file: str, wants_heredocs: Callable[[str], list[tuple[str, bool, bool, int]]]) -> Scan:
    """Assemble `text` into logical lines. `wants_heredocs(line)` is asked about each line that
    holds `<<`; it returns the heredoc markers to read (none unless RUN/COPY/ADD in shell form)."""
    result = Scan()
    directives = _Directives(result, file)
    if text.startswith("\ufeff"):
        text = text[1:]
    physical = text.split("\n")
    ends_with_newline = physical[-1] == ""
    if ends_with_newline:
        physical.pop()
    result.source = physical
    total = len(physical)
    spaces = GO_SPACES
    comments: list[str] = []
    i = 0
    line_no = 0
    while i < total:
        raw = physical[i]
        i += 1
        if len(raw) > MAX_LINE_BYTES // 4 and len(raw.encode("utf-8", "surrogateescape")) > MAX_LINE_BYTES:
            raise DockerfileSyntaxError(f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}",
                                        file=file, line=line_no + 1, hint="split it with continuation lines")
        first = raw.rstrip("\r").lstrip(spaces)
        is_comment = first[:1] == "#"
        if is_comment:
            comment = raw[1:].strip(spaces)
            comments = comments + [comment] if comment else []
        if not directives.done and directives.feed(first, line_no + 1) and comments:
            comments.pop()
        line_no += 1
        start = line_no
        if is_comment or not first:
            continue
        escape = result.escape
        piece, more = _continues(first, escape)
        pieces = [piece]
        empty_continuation = False
        while more and i < total:
            token = physical[i].rstrip("\r")
            i += 1
            line_no += 1
            content = token.lstrip(spaces)
            if not content:
                empty_continuation = True
                continue
            if content[0] == "#":
                continue
            # the escape char at the end (blanks after it allowed) continues, unless it is doubled
            stripped = token.rstrip(" \t")
            if stripped[-1] == escape and stripped[-2:-1] != escape:
                pieces.append(stripped[:-1])
            else:
                pieces.append(token)
                more = False
        assembled = "".join(pieces)
        if empty_continuation:
            result.warnings.append((line_no, f"Empty continuation line found in: {assembled}"))
        column = len(physical[start - 1]) - len(physical[start - 1].lstrip(spaces)) + 1
        heredocs: list[HeredocNode] = []
        if "<<" in assembled:
            for name, expand, chomp, fd in wants_heredocs(assembled):
                content_lines: list[str] = []
                terminated = False
                while i < total:
                    body = physical[i]
                    i += 1
                    line_no += 1
                    candidate = body.rstrip("\r")
                    if (candidate.lstrip("\t") if chomp else candidate) == name:
                        terminated = True
                        break
                    content_lines.append(body + ("\n" if i < total or ends_with_newline else ""))
                if not terminated:
                    raise DockerfileSyntaxError("unterminated heredoc", file=file, line=start, column=column,
                                                source_line=physical[start - 1],
                                                hint=f"end it with a line that reads exactly {name}")
                heredocs.append(HeredocNode(name, "".join(content_lines), expand, chomp, fd))
        result.lines.append(LogicalLine(assembled, start, line_no, column, tuple(comments), tuple(heredocs)))
        comments = []
    return result
