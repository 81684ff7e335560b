"""BuildKit's generic parse tree: one `Node` per instruction, its arguments split by the
instruction's own rule, and the `result` dump format (see corpus buildkit-parser/FORMAT.md).

This is the layer that must agree with BuildKit on everything it accepts; typing and
argument checks happen later, in grammar/typed.py.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

from .errors import DockerfileSyntaxError
from .gotext import ASCII_BLANKS_RE, GO_SPACES, go_lstrip, go_quote, go_strip


@dataclass(frozen=True)
class HeredocNode:
    name: str
    content: str
    expand: bool
    chomp: bool
    fd: int


class Node(NamedTuple):
    """One instruction as BuildKit's parser sees it. `args` hold strings, or one nested Node
    for ONBUILD. `keyword` is as written (BuildKit lower-cases it only when dumping).
    (An immutable NamedTuple rather than a dataclass: it is made once per line, and its
    construction is a measurable part of parsing a large corpus.)"""

    keyword: str
    flags: tuple[str, ...]
    args: tuple["str | Node", ...]
    is_json: bool
    original: str
    start_line: int = 0
    end_line: int = 0
    column: int = 1
    heredocs: tuple[HeredocNode, ...] = ()
    comments: tuple[str, ...] = ()
    # The JSON array that dockerd 20.10's BuildKit reads where this parser (today's BuildKit) sees
    # shell form because text follows the array: see `json_prefix`. Not part of the dump.
    json_prefix: tuple | None = None

    def dump(self) -> str:
        """The `result` line, without the parentheses of the root."""
        parts = [self.keyword.lower()]
        if self.flags:
            parts.append("[" + " ".join(go_quote(f) for f in self.flags) + "]")
        for arg in self.args:
            parts.append(f"({arg.dump()})" if isinstance(arg, Node) else go_quote(arg))
        return " ".join(parts).strip(GO_SPACES)

    @property
    def inner(self) -> "Node | None":
        """The nested instruction of ONBUILD."""
        return self.args[0] if self.args and isinstance(self.args[0], Node) else None

    def can_contain_heredoc(self) -> bool:
        node = self.inner if self.keyword.lower() == "onbuild" and self.inner else self
        return node.keyword.lower() in ("run", "copy", "add") and not node.is_json


class ArgumentError(ValueError):
    """An argument rule failed; the caller adds the location."""


class _NotStrings(ArgumentError):
    pass


NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


def _reject_constant(name: str):
    raise ValueError(f"not JSON: {name}")  # Go's decoder has no NaN/Infinity


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _decode_array(rest: str, prefix: bool) -> list | None:
    """The JSON array at the start of `rest` (all of `rest`, or with `prefix` its first value only),
    None when there is none. Elements may be of any JSON type; lone surrogates become U+FFFD as in Go."""
    rest = go_lstrip(rest)
    if not rest.startswith("["):
        return None
    try:
        value, end = _DECODER.raw_decode(rest)
    except (ValueError, RecursionError):
        return None
    if (not prefix and rest[end:].strip(" \t\n\r")) or not isinstance(value, list):
        return None
    return [v.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            if isinstance(v, str) and _has_surrogate(v) else v for v in value]


def _json_array(rest: str) -> list[str] | None:
    """The elements of a JSON string array, None when `rest` is not JSON (shell form)."""
    value = _decode_array(rest, prefix=False)
    if value is not None and not all(isinstance(v, str) for v in value):
        raise _NotStrings(NOT_STRINGS)
    return value


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def maybe_json(rest: str) -> tuple[tuple[str, ...], bool]:
    """RUN/CMD/ENTRYPOINT/SHELL: a JSON string array, else the whole text as one argument."""
    if not rest:
        return (), False
    arr = _json_array(rest)
    if arr is not None:
        return tuple(arr), True
    return (rest,), False


def maybe_json_list(rest: str) -> tuple[tuple[str, ...], bool]:
    """ADD/COPY/VOLUME: a JSON string array, else words split on ASCII blanks."""
    arr = _json_array(rest)
    if arr is not None:
        return tuple(arr), True
    return blank_separated(rest), False


_JSON_RULES = ("run", "cmd", "entrypoint", "shell", "add", "copy", "volume")


def json_prefix(keyword: str, rest: str) -> tuple | None:
    """dockerd 20.10's BuildKit decodes JSON form with Go's json.Decoder, which reads the first value
    and ignores what follows it: `ENTRYPOINT ["x"] # note` is exec form ["x"] there, shell form in
    today's parser (json.Unmarshal). This is the array that reading gives for an instruction the
    strict rule left in shell form (its elements unchecked: a non-string is the caller's error),
    else None. `rest` is the text after the flags."""
    rule = keyword.lower()
    if rule == "healthcheck":
        sep = 0
        while sep < len(rest) and rest[sep] not in GO_SPACES:  # after the CMD word
            sep += 1
        rest = rest[sep:]
    elif rule not in _JSON_RULES:
        return None
    value = _decode_array(rest, prefix=True)
    return tuple(value) if value is not None else None


def blank_separated(rest: str) -> tuple[str, ...]:
    return tuple(ASCII_BLANKS_RE.split(rest)) if rest else ()


def whole(rest: str) -> tuple[str, ...]:
    return (rest,) if rest else ()


def quoted_words(rest: str, escape: str) -> list[str]:
    """BuildKit's parseWords: split on blanks outside quotes; quotes and escapes stay in the word."""
    words: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = ""
    in_word = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:  # an escape at the very end is dropped
                    break
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
        elif ch in GO_SPACES:
            if in_word and (blank_ok or word):
                words.append("".join(word))
            word, blank_ok, in_word = [], False, False
        else:
            in_word = True
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if i + 1 == n:
                    break
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
        i += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words


def name_values(rest: str, key: str, escape: str) -> tuple[str, ...]:
    """ENV/LABEL: `K v...` -> (K, v, "") ; `K=v K2=v2` -> (K, v, "=", K2, v2, "=")."""
    words = quoted_words(rest, escape)
    if not words:
        return ()
    if "=" not in words[0]:
        parts = ASCII_BLANKS_RE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise ArgumentError(f"{key} must have two arguments")
        return (parts[0], parts[1], "")
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise ArgumentError(f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value")
        k, v = word.split("=", 1)
        out += [k, v, "="]
    return tuple(out)


def healthcheck(rest: str) -> tuple[tuple[str, ...], bool]:
    sep = 0
    while sep < len(rest) and rest[sep] not in GO_SPACES:
        sep += 1
    if sep == 0:
        return (), False
    command, is_json = maybe_json(go_lstrip(rest[sep:]))
    return (rest[:sep],) + command, is_json


def split_arguments(keyword: str, rest: str, escape: str) -> tuple[tuple[str, ...], bool]:
    """The instruction's argument rule (BuildKit's dispatch table). Unknown keywords get one ''."""
    rule = keyword.lower()
    if rule in ("run", "cmd", "entrypoint", "shell"):
        return maybe_json(rest)
    if rule in ("add", "copy", "volume"):
        return maybe_json_list(rest)
    if rule in ("from", "expose"):
        return blank_separated(rest), False
    if rule in ("env", "label"):
        return name_values(rest, rule.upper(), escape), False
    if rule == "arg":
        return tuple(quoted_words(rest, escape)), False
    if rule in ("maintainer", "user", "workdir", "stopsignal"):
        return whole(rest), False
    if rule == "healthcheck":
        return healthcheck(rest)
    return ("",), False


def decode_flag(word: str) -> str:
    """A flag word with its quotes removed and backslash escapes applied."""
    if "'" not in word and '"' not in word and "\\" not in word:
        return word
    out: list[str] = []
    quote = ""
    i, n = 0, len(word)
    while i < n:
        ch = word[i]
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                out.append(word[i])
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def syntax_error(message: str, file: str, line: int, column: int = 1, source_line: str | None = None,
                 hint: str | None = None) -> DockerfileSyntaxError:
    return DockerfileSyntaxError(message, file=file, line=line, column=column, source_line=source_line, hint=hint)


def strip_line(text: str) -> str:
    return go_strip(text)
